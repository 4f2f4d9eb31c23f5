package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
	"github.com/logbridge/logbridge/tests/testenv"
)

// destColl returns collection name in the test's own database on the real
// destination, dropped before and after the test.
func destColl(t testing.TB, name string) (context.Context, *mongo.Client, schema.Namespace, *mongo.Collection) {
	t.Helper()
	env := testenv.New(t)
	ctx := testenv.Context(t, time.Minute)
	dest := env.Dest(t)
	ns := schema.Namespace{DB: testenv.DBName(t), Coll: name}
	_ = dest.Database(ns.DB).Drop(ctx)
	t.Cleanup(func() { _ = dest.Database(ns.DB).Drop(context.Background()) })
	return ctx, dest, ns, dest.Database(ns.DB).Collection(name)
}

// TestWriterSnapshotInserts runs a snapshot batch through the raw insert
// path on the real destination: documents already there are replaced
// (duplicate key fallback), a document that breaks a unique index comes back
// as a Failure with its own record's Ref (the write error's index maps to the
// right document), and every other document is inserted byte-equal.
func TestWriterSnapshotInserts(t *testing.T) {
	ctx, dest, ns, coll := destColl(t, "snap")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	doc := func(id int32, email, v string) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "email", Value: email}, {Key: "v", Value: v}}
	}
	// Documents 3 and 7 exist already, with old contents.
	for _, id := range []int32{3, 7} {
		if _, err := coll.InsertOne(ctx, doc(id, fmt.Sprintf("e%d", id), "old")); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	const clash = 25 // takes document 24's email
	b := NewBatch(NSMap{})
	want := map[int32]bson.Raw{}
	for id := int32(0); id < n; id++ {
		email := fmt.Sprintf("e%d", id)
		if id == clash {
			email = fmt.Sprintf("e%d", clash-1)
		}
		d := raw(t, doc(id, email, "new"))
		if id != clash {
			want[id] = d
		}
		ev := &schema.Event{Op: schema.OpSnapshot, NS: ns, DocumentKey: raw(t, bson.D{{Key: "_id", Value: id}}), FullDocument: d}
		if err := b.Add(ev, Ref{Topic: "t", Partition: 0, Offset: int64(100 + id), Op: schema.OpSnapshot}); err != nil {
			t.Fatal(err)
		}
	}
	w := NewWriter(dest, writeconcern.Majority(), metrics.New(nil), slog.New(slog.DiscardHandler))
	res, err := w.Flush(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Ref.Offset != 100+clash || !errors.Is(res.Failures[0].Err, ErrRejected) {
		t.Fatalf("failures %+v, want exactly offset %d rejected", res.Failures, 100+clash)
	}
	t.Logf("rejected as expected: %v", res.Failures[0].Err)
	requireDocs(t, ctx, coll, want)
}

// TestWriterShardKeyChange: a sharded source's document whose shard key
// changed is in the log as a delete under its old key and an insert under
// its new key, in two partitions, so the two may be applied in either
// order. Insert first: the upsert by the new key meets the document's _id
// with the old shard key value and must replace it by _id; the late delete,
// filtered by the old key, then matches nothing. Both orders end with the
// new document.
func TestWriterShardKeyChange(t *testing.T) {
	ctx, dest, ns, coll := destColl(t, "moved")
	w := NewWriter(dest, writeconcern.Majority(), metrics.New(nil), slog.New(slog.DiscardHandler))
	key := func(region string, id int32) bson.Raw {
		return raw(t, bson.D{{Key: "region", Value: region}, {Key: "_id", Value: id}})
	}
	apply := func(evs ...*schema.Event) {
		t.Helper()
		for i, ev := range evs {
			b := NewBatch(NSMap{})
			if err := b.Add(ev, Ref{Topic: "t", Offset: int64(i), Op: ev.Op}); err != nil {
				t.Fatal(err)
			}
			res, err := w.Flush(ctx, b)
			if err != nil || len(res.Failures) > 0 {
				t.Fatalf("applying %s of %s: %v %+v", ev.Op, ev.DocumentKey, err, res.Failures)
			}
		}
	}
	for id, insertFirst := range map[int32]bool{1: true, 2: false} {
		old := raw(t, bson.D{{Key: "_id", Value: id}, {Key: "region", Value: "eu"}, {Key: "v", Value: 1}})
		moved := raw(t, bson.D{{Key: "_id", Value: id}, {Key: "region", Value: "us"}, {Key: "v", Value: 2}})
		apply(&schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: key("eu", id), FullDocument: old})
		del := &schema.Event{Op: schema.OpDelete, NS: ns, DocumentKey: key("eu", id)}
		ins := &schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: key("us", id), FullDocument: moved}
		if insertFirst {
			apply(ins, del)
		} else {
			apply(del, ins)
		}
		got, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		if err != nil {
			t.Fatalf("document %d (insert first: %v): %v", id, insertFirst, err)
		}
		if !bytes.Equal(got, moved) {
			t.Fatalf("document %d (insert first: %v): got %s, want %s", id, insertFirst, got, moved)
		}
	}
}

// TestWriterMixedRound: one round of change events of every kind on the
// real destination. The inserts go as raw insert commands and the rest as
// one BulkWrite (Writer.mixed): an insert of a document that is there
// already (a replay) replaces it, an insert and an update that break a
// unique index come back as Failures with their own records' Refs (the
// write errors of both commands map to the right writes), and every other
// write lands.
func TestWriterMixedRound(t *testing.T) {
	ctx, dest, ns, coll := destColl(t, "mixed")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	doc := func(id int32, email, v string) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "email", Value: email}, {Key: "v", Value: v}}
	}
	for id := int32(0); id < 10; id++ { // 0-9 exist: updated, replaced, deleted, re-inserted
		if _, err := coll.InsertOne(ctx, doc(id, fmt.Sprintf("e%d", id), "old")); err != nil {
			t.Fatal(err)
		}
	}
	key := func(id int32) bson.Raw { return raw(t, bson.D{{Key: "_id", Value: id}}) }
	want := map[int32]bson.Raw{}
	b := NewBatch(NSMap{})
	off := int64(0)
	add := func(ev *schema.Event) int64 {
		t.Helper()
		off++
		if err := b.Add(ev, Ref{Topic: "t", Offset: off, Op: ev.Op}); err != nil {
			t.Fatal(err)
		}
		return off
	}
	for id := int32(10); id < 20; id++ { // new documents
		d := raw(t, doc(id, fmt.Sprintf("e%d", id), "new"))
		want[id] = d
		add(&schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: key(id), FullDocument: d})
	}
	badInsert := add(&schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: key(20), FullDocument: raw(t, doc(20, "e11", "clash"))})
	replayed := raw(t, doc(0, "e0", "replayed")) // an insert of a document that is there
	want[0] = replayed
	add(&schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: key(0), FullDocument: replayed})
	for id := int32(1); id < 4; id++ {
		want[id] = raw(t, append(doc(id, fmt.Sprintf("e%d", id), "old"), bson.E{Key: "w", Value: int32(1)}))
		add(&schema.Event{Op: schema.OpUpdate, NS: ns, DocumentKey: key(id),
			Update: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "w", Value: int32(1)}})}})
	}
	badUpdate := add(&schema.Event{Op: schema.OpUpdate, NS: ns, DocumentKey: key(4),
		Update: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "email", Value: "e12"}})}})
	want[4] = raw(t, doc(4, "e4", "old"))
	for id := int32(5); id < 7; id++ {
		want[id] = raw(t, doc(id, fmt.Sprintf("e%d", id), "replaced"))
		add(&schema.Event{Op: schema.OpReplace, NS: ns, DocumentKey: key(id), FullDocument: want[id]})
	}
	for id := int32(7); id < 10; id++ {
		add(&schema.Event{Op: schema.OpDelete, NS: ns, DocumentKey: key(id)})
	}
	if gens := b.generations(); len(gens) != 1 {
		t.Fatalf("the batch makes %d rounds, want 1", len(gens))
	}
	w := NewWriter(dest, writeconcern.Majority(), metrics.New(nil), slog.New(slog.DiscardHandler))
	res, err := w.Flush(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	rejected := map[int64]bool{}
	for _, f := range res.Failures {
		if !errors.Is(f.Err, ErrRejected) {
			t.Fatalf("failure %+v does not wrap ErrRejected", f)
		}
		rejected[f.Ref.Offset] = true
	}
	if len(res.Failures) != 2 || !rejected[badInsert] || !rejected[badUpdate] {
		t.Fatalf("failures %+v, want exactly offsets %d and %d rejected", res.Failures, badInsert, badUpdate)
	}
	requireDocs(t, ctx, coll, want)
}

// TestWriterFlushMergesBatches: the batches of two partitions flushed
// together go to the real destination in one bulk write per round (the
// bulk-writes histogram counts two: the first write of every key, then the
// delta of a key already in the first), a rejected write comes back with its own
// partition's Ref, and every other write is applied in order.
func TestWriterFlushMergesBatches(t *testing.T) {
	ctx, dest, ns, coll := destColl(t, "merged")
	doc := func(id int32, email string) bson.Raw {
		return raw(t, bson.D{{Key: "_id", Value: id}, {Key: "email", Value: email}})
	}
	key := func(id int32) bson.Raw { return raw(t, bson.D{{Key: "_id", Value: id}}) }
	add := func(b *Batch, part int32, off int64, ev *schema.Event) { addAt(t, b, ns, part, off, ev) }
	p0, p1 := NewBatch(NSMap{}), NewBatch(NSMap{})
	add(p0, 0, 1, &schema.Event{Op: schema.OpInsert, DocumentKey: key(1), FullDocument: doc(1, "a")})
	add(p0, 0, 2, &schema.Event{Op: schema.OpUpdate, DocumentKey: key(1), Update: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "v", Value: 2}})}})
	add(p1, 1, 7, &schema.Event{Op: schema.OpInsert, DocumentKey: key(2), FullDocument: doc(2, "b")})
	// Changing _id is refused by the destination.
	add(p1, 1, 8, &schema.Event{Op: schema.OpUpdate, DocumentKey: key(3), Update: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "_id", Value: 4}})}})
	if _, err := coll.InsertOne(ctx, doc(3, "c")); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	w := NewWriter(dest, writeconcern.Majority(), metrics.New(reg), slog.New(slog.DiscardHandler))
	res, err := w.Flush(ctx, p0, p1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Ref != (Ref{Topic: "t", Partition: 1, Offset: 8, Op: schema.OpUpdate}) || !errors.Is(res.Failures[0].Err, ErrRejected) {
		t.Fatalf("failures %+v, want exactly partition 1 offset 8 rejected", res.Failures)
	}
	if n := histogramCount(t, reg, "logbridge_sink_bulk_write_documents"); n != 2 {
		t.Fatalf("%d bulk writes, want 2 (one per round, the partitions merged)", n)
	}
	got, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Lookup("v").Int32OK(); !ok || v != 2 {
		t.Fatalf("document 1 is %s: the delta after its insert was not applied after it", got)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 3 {
		t.Fatalf("destination holds %d documents (%v), want 3 (documents 1, 2 and 3)", n, err)
	}
}

// requireDocs fails t unless coll holds exactly want (by int32 _id),
// byte for byte.
func requireDocs(t *testing.T, ctx context.Context, coll *mongo.Collection, want map[int32]bson.Raw) {
	t.Helper()
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]bson.Raw{}
	for cur.Next(ctx) {
		got[cur.Current.Lookup("_id").Int32()] = append(bson.Raw(nil), cur.Current...)
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("destination holds %d documents, want %d: %v", len(got), len(want), got)
	}
	for id, d := range want {
		if !bytes.Equal(got[id], d) {
			t.Fatalf("document %d: got %s, want %s", id, got[id], d)
		}
	}
}

// histogramCount is the sample count of the histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0
}
