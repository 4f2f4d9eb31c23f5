package apply

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
)

// TestMergedGenerations: batches of different partitions merged into one
// flush keep each key's writes in order (a delta after an insert of the same
// key goes in a later round) and put every key's first write in the first
// round, whichever batch it came from.
func TestMergedGenerations(t *testing.T) {
	ns := schema.Namespace{DB: "db", Coll: "c"}
	key := func(id int32) bson.Raw { return raw(t, bson.D{{Key: "_id", Value: id}}) }
	add := func(b *Batch, part int32, off int64, ev *schema.Event) { addAt(t, b, ns, part, off, ev) }
	a, b := NewBatch(NSMap{}), NewBatch(NSMap{})
	add(a, 0, 10, &schema.Event{Op: schema.OpInsert, DocumentKey: key(1), FullDocument: raw(t, bson.D{{Key: "_id", Value: 1}})})
	add(a, 0, 11, &schema.Event{Op: schema.OpUpdate, DocumentKey: key(1), Update: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "x", Value: 1}})}})
	add(a, 0, 12, &schema.Event{Op: schema.OpDelete, DocumentKey: key(2)})
	add(b, 1, 20, &schema.Event{Op: schema.OpInsert, DocumentKey: key(3), FullDocument: raw(t, bson.D{{Key: "_id", Value: 3}})})

	got := [][]Ref{}
	for _, gen := range mergedGenerations([]*Batch{a, b}) {
		var refs []Ref
		for _, w := range gen {
			refs = append(refs, w.ref)
		}
		got = append(got, refs)
	}
	ref := func(part int32, off int64, op schema.Op) Ref {
		return Ref{Topic: "t", Partition: part, Offset: off, Op: op}
	}
	want := [][]Ref{
		{ref(0, 10, schema.OpInsert), ref(0, 12, schema.OpDelete), ref(1, 20, schema.OpInsert)},
		{ref(0, 11, schema.OpUpdate)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rounds %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("round %d: got %v, want %v", i, got[i], want[i])
		}
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("round %d: got %v, want %v", i, got[i], want[i])
			}
		}
	}
}

// addAt adds ev on ns to b as the record at offset off of partition part
// of topic "t".
func addAt(t *testing.T, b *Batch, ns schema.Namespace, part int32, off int64, ev *schema.Event) {
	t.Helper()
	ev.NS = ns
	if err := b.Add(ev, Ref{Topic: "t", Partition: part, Offset: off, Op: ev.Op}); err != nil {
		t.Fatal(err)
	}
}
