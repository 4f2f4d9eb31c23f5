package snapshot

import (
	"bytes"
	"github.com/logbridge/logbridge/pkg/mongox"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

func val(t *testing.T, v any) bson.RawValue {
	t.Helper()
	b, _ := bson.Marshal(bson.D{{Key: "v", Value: v}})
	return bson.Raw(b).Lookup("v")
}

func TestBoundariesAndRanges(t *testing.T) {
	var sorted []bson.RawValue
	for i := 0; i < 100; i++ {
		sorted = append(sorted, val(t, int32(i/10))) // many repeats
	}
	b := Boundaries(sorted, 4)
	if len(b) != 3 {
		t.Fatalf("boundaries %v", b)
	}
	b = Boundaries(append(sorted[:0:0], val(t, 1), val(t, 1), val(t, 1)), 3)
	if len(b) != 1 {
		t.Fatalf("repeats not dropped: %v", b)
	}
	if Boundaries(nil, 5) != nil || Boundaries(sorted, 1) != nil {
		t.Fatal("no boundaries expected")
	}
	// Mixed types: boundaries are index bounds, so any BSON type works.
	mixed := []bson.RawValue{val(t, int32(5)), val(t, "abc"), val(t, bson.ObjectID{1})}
	rs := Ranges(checkpoint.RangeState{NS: "a.b", DB: "a", Coll: "b"}, mixed)
	if len(rs) != 4 {
		t.Fatalf("%d ranges", len(rs))
	}
	if rs[0].Min != nil || rs[3].Max != nil {
		t.Error("first range must start at MinKey and last end at MaxKey")
	}
	for i := 1; i < len(rs); i++ {
		if !bytes.Equal(rs[i].Min, rs[i-1].Max) || rs[i].ID != i {
			t.Errorf("range %d does not start where %d ends", i, i-1)
		}
	}
	if !bytes.Equal(rs[1].Min, IDDoc(mixed[0])) {
		t.Errorf("bound %v", bson.Raw(rs[1].Min))
	}
}

func TestIDDocAndDocumentKey(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(7)}, {Key: "a", Value: bson.D{{Key: "b", Value: "x"}}}, {Key: "c", Value: 1}})
	id := bson.Raw(doc).Lookup("_id")
	want, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(7)}})
	if got := IDDoc(id); !bytes.Equal(got, want) {
		t.Errorf("IDDoc = %v", got)
	}
	sk, _ := bson.Marshal(bson.D{{Key: "a.b", Value: "hashed"}, {Key: "missing", Value: 1}})
	want, _ = bson.Marshal(bson.D{{Key: "a.b", Value: "x"}, {Key: "_id", Value: int64(7)}})
	if got := DocumentKey(doc, sk, id); !bytes.Equal(got, want) {
		t.Errorf("DocumentKey = %v, want %v", got, bson.Raw(want))
	}
	sk, _ = bson.Marshal(bson.D{{Key: "_id", Value: 1}, {Key: "c", Value: 1}})
	want, _ = bson.Marshal(bson.D{{Key: "_id", Value: int64(7)}, {Key: "c", Value: 1}})
	if got := DocumentKey(doc, sk, id); !bytes.Equal(got, want) {
		t.Errorf("DocumentKey with _id in the shard key = %v", got)
	}
}

func TestResponseTime(t *testing.T) {
	ts := bson.Timestamp{T: 10, I: 2}
	tests := []struct {
		name string
		d    bson.D
		ok   bool
	}{
		{name: "operationTime", d: bson.D{{Key: "ok", Value: 1}, {Key: "operationTime", Value: ts}}, ok: true},
		{name: "$clusterTime", d: bson.D{{Key: "$clusterTime", Value: bson.D{{Key: "clusterTime", Value: ts}}}}, ok: true},
		{name: "lastWrite", d: bson.D{{Key: "lastWrite", Value: bson.D{{Key: "opTime", Value: bson.D{{Key: "ts", Value: ts}, {Key: "t", Value: 1}}}}}}, ok: true},
		{name: "none (standalone or test server)", d: bson.D{{Key: "ismaster", Value: true}}, ok: false},
	}
	for _, tc := range tests {
		b, _ := bson.Marshal(tc.d)
		got, ok := mongox.ResponseTime(b)
		if ok != tc.ok || ok && got != ts {
			t.Errorf("%s: got %v %v", tc.name, got, ok)
		}
	}
}

// Committed arenas are reused (no 2 MiB allocation and zeroing per chunk),
// the free list keeps at most arenasKept, and an arena that grew for a
// large document is not kept.
func TestArenaReuse(t *testing.T) {
	r := &Reader{arenas: make(chan []byte, arenasKept)}
	a := r.arena()
	a = append(a, "value"...)
	r.recycler(a)()
	b := r.arena()
	if len(b) != 0 || cap(b) != arenaBytes || &b[:1][0] != &a[0] {
		t.Fatalf("a recycled arena was not reused: len %d cap %d", len(b), cap(b))
	}
	for i := 0; i < arenasKept+5; i++ {
		r.recycler(make([]byte, 0, arenaBytes))()
	}
	if n := len(r.arenas); n != arenasKept {
		t.Fatalf("the free list holds %d arenas, want %d", n, arenasKept)
	}
	for len(r.arenas) > 0 {
		<-r.arenas
	}
	r.recycler(make([]byte, 0, 2*arenaBytes))()
	if n := len(r.arenas); n != 0 {
		t.Fatalf("a grown arena was kept (%d in the list)", n)
	}
}
