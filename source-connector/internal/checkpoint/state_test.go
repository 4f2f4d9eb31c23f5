package checkpoint

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/pkg/version"
)

func TestStateApply(t *testing.T) {
	st := NewState()
	id, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.Decimal128{}}})
	rs := &RangeState{NS: "a.b", DB: "a", Coll: "b", ID: 3, Min: id, Last: id, Docs: 7}
	for _, u := range []StateUpdate{
		{KeyMeta, &Meta{Version: 1, T0: bson.Timestamp{T: 5, I: 6}}},
		{rs.Key(), rs},
		{KeyStream, &StreamState{Token: id, ClusterTime: bson.Timestamp{T: 9, I: 1}, TxnNumber: 4, TxnIndex: 2}},
		{KeySnapshot, &SnapshotState{Done: true}},
	} {
		b, err := EncodeState(u.Value)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(u.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	if !st.Planned() || !st.SnapshotDone() || st.Stream.TxnIndex != 2 || st.Ranges["range/a.b/3"].Docs != 7 ||
		!bytes.Equal(st.Ranges["range/a.b/3"].Min, id) || st.Ranges["range/a.b/3"].Max != nil {
		t.Fatalf("state = %+v", st)
	}
	if err := st.Apply(KeySnapshot, nil); err != nil || st.SnapshotDone() {
		t.Fatalf("tombstone not applied: %v", err)
	}
	b, _ := EncodeState(&Meta{Version: int32(version.Metadata() + 1)})
	if err := st.Apply(KeyMeta, b); err == nil {
		t.Fatal("newer state version accepted")
	}
}

// TestEncodeStateFastPath: the hand-built stream and producer records are
// byte for byte what bson.Marshal makes of them (with "v" first), so the
// state topic reads the same whichever path wrote it.
func TestEncodeStateFastPath(t *testing.T) {
	tok, _ := bson.Marshal(bson.D{{Key: "_data", Value: "8263A1B2C3000000012B0229296E04"}})
	lsid, _ := bson.Marshal(bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}, {Key: "uid", Value: bson.Binary{Data: []byte{1, 2}}}})
	reflective := func(v any) []byte {
		t.Helper()
		b, err := bson.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out := bsoncore.AppendInt32Element(make([]byte, 4), "v", int32(version.Metadata()))
		out = append(out, b[4:]...)
		binary.LittleEndian.PutUint32(out, uint32(len(out)))
		return out
	}
	for _, v := range []any{
		&StreamState{Token: tok, ClusterTime: bson.Timestamp{T: 1796536921, I: 9}},
		&StreamState{Token: tok, ClusterTime: bson.Timestamp{T: 1, I: 2}, TxnLSID: lsid, TxnNumber: 7, TxnIndex: 3, TxnPublished: 2},
		&StreamState{Token: tok, TxnLSID: lsid, TxnNumber: -1},
		ProducerState{Seq: 42, At: time.Date(2026, 12, 6, 6, 45, 1, 123456789, time.UTC)},
		ProducerState{},
	} {
		got, err := EncodeState(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := reflective(v); !bytes.Equal(got, want) {
			t.Errorf("%+v: got %s, want %s", v, bson.Raw(got), bson.Raw(want))
		}
	}
}

func BenchmarkEncodeStreamState(b *testing.B) {
	tok, _ := bson.Marshal(bson.D{{Key: "_data", Value: "8263A1B2C3000000012B0229296E04"}})
	s := &StreamState{Token: tok, ClusterTime: bson.Timestamp{T: 1796536921, I: 9}}
	p := ProducerState{Seq: 42, At: time.Now()}
	for b.Loop() {
		if _, err := EncodeState(s); err != nil {
			b.Fatal(err)
		}
		if _, err := EncodeState(p); err != nil {
			b.Fatal(err)
		}
	}
}
