package mongoshim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/mongoshim"
)

// deleteByIDs deletes _ids 1, 2 and 99 (which does not exist) from c in one
// ordered bulk write of deleteOne {_id}, the sink's form, which the shim
// forwards as one command (doDeleteByIDs).
func deleteByIDs(t *testing.T, ctx context.Context, c *mongo.Collection) {
	t.Helper()
	res, err := c.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: 1}}),
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: 99}}),
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: 2}}),
	}, options.BulkWrite().SetOrdered(true))
	if err != nil {
		t.Fatal(err)
	}
	if res.DeletedCount != 2 {
		t.Fatalf("deleted %d, want 2", res.DeletedCount)
	}
}

// TestDeleteByIDsEvents: the by-_id delete batch reads only the _ids of a
// collection without pre-images (and skips the read of what is left when
// the reply's n says every document found was deleted), yet its events are
// what they were: one per deleted document, none for the missing _id, and
// on a collection with changeStreamPreAndPostImages the whole deleted
// document as fullDocumentBeforeChange.
func TestDeleteByIDsEvents(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	db := cl.Database(dbn)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	if err := db.CreateCollection(ctx, "img", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.D{{Key: "enabled", Value: true}})); err != nil {
		t.Fatal(err)
	}
	img, plain := db.Collection("img"), db.Collection("plain")
	for _, c := range []*mongo.Collection{img, plain} {
		if _, err := c.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "one"}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "two"}}, bson.D{{Key: "_id", Value: 3}}}); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetFullDocumentBeforeChange(options.WhenAvailable).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	deleteByIDs(t, ctx, img)
	deleteByIDs(t, ctx, plain)
	evs := collect(t, ctx, cs, dbn, 4)
	var got []string
	for _, ev := range evs {
		got = append(got, lookupStr(ev, "operationType")+" "+lookupStr(ev, "ns", "coll")+" "+ev.Lookup("documentKey", "_id").String())
	}
	want := []string{`delete img {"$numberInt":"1"}`, `delete img {"$numberInt":"2"}`, `delete plain {"$numberInt":"1"}`, `delete plain {"$numberInt":"2"}`}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %q, want %q", got, want)
		}
	}
	for i, a := range []string{"one", "two"} {
		pre, err := evs[i].LookupErr("fullDocumentBeforeChange")
		wantPre := mustMarshal(t, bson.D{{Key: "_id", Value: i + 1}, {Key: "a", Value: a}})
		if err != nil || string(pre.Value) != string(wantPre) {
			t.Errorf("img delete %d: fullDocumentBeforeChange %v, want the whole document %v", i+1, pre, wantPre)
		}
	}
	for _, ev := range evs[2:] {
		if v, err := ev.LookupErr("fullDocumentBeforeChange"); err == nil && v.Type != bson.TypeNull {
			t.Errorf("plain delete has a pre-image: %s", ev)
		}
	}
}

// TestMongosDeleteByIDsDocumentKey: presenting a mongos, the by-_id delete
// batch still reads whole documents, because a sharded collection's
// documentKey takes the shard key from the deleted document.
func TestMongosDeleteByIDsDocumentKey(t *testing.T) {
	cl, _ := mongos(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	t.Cleanup(func() { _ = cl.Database(dbn).Drop(context.Background()) })
	admin := cl.Database("admin")
	if err := admin.RunCommand(ctx, bson.D{{Key: "enableSharding", Value: dbn}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "shardCollection", Value: dbn + ".sh"}, {Key: "key", Value: bson.D{{Key: "region", Value: 1}, {Key: "_id", Value: 1}}}}).Err(); err != nil {
		t.Fatal(err)
	}
	sh := cl.Database(dbn).Collection("sh")
	if _, err := sh.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "region", Value: "eu"}}, bson.D{{Key: "_id", Value: 2}, {Key: "region", Value: "us"}}}); err != nil {
		t.Fatal(err)
	}
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	deleteByIDs(t, ctx, sh)
	evs := collect(t, ctx, cs, dbn, 2)
	for i, region := range []string{"eu", "us"} {
		want := mustMarshal(t, bson.D{{Key: "region", Value: region}, {Key: "_id", Value: i + 1}})
		if lookupStr(evs[i], "operationType") != "delete" || string(evs[i].Lookup("documentKey").Document()) != string(want) {
			t.Errorf("event %d: %s documentKey %v, want delete %v", i, lookupStr(evs[i], "operationType"), evs[i].Lookup("documentKey"), bson.Raw(want))
		}
	}
}

// TestWritesOnly: with Config.WritesOnly the sink's by-_id $set updates and
// deletes of a known collection land as they do without it (the documents
// are what they must be) but record no change events, while inserts and a
// replacement (whose field order the shim corrects) still do.
func TestWritesOnly(t *testing.T) {
	_, cl := startShim(t, mongoshim.Config{WritesOnly: true})
	ctx := ctxT(t)
	dbn := dbName(t)
	db := cl.Database(dbn)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	c := db.Collection("c")
	if _, err := c.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "one"}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "two"}},
		bson.D{{Key: "_id", Value: 3}, {Key: "a", Value: "three"}}}); err != nil {
		t.Fatal(err)
	}
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	if _, err := c.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 1}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 2}}).SetUpdate(bson.D{{Key: "$unset", Value: bson.D{{Key: "a", Value: ""}}}}),
	}, options.BulkWrite().SetOrdered(true)); err != nil {
		t.Fatal(err)
	}
	deleteByIDs(t, ctx, c) // deletes 1 and 2
	if _, err := c.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: 3}}).SetReplacement(bson.D{{Key: "z", Value: 1}, {Key: "a", Value: "new"}}),
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: 4}}).SetReplacement(bson.D{{Key: "n", Value: 4}}).SetUpsert(true),
	}, options.BulkWrite().SetOrdered(true)); err != nil {
		t.Fatal(err)
	}
	cur, err := c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var got []bson.Raw
	if err := cur.All(ctx, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"_id": {"$numberInt":"3"},"z": {"$numberInt":"1"},"a": "new"}`, `{"_id": {"$numberInt":"4"},"n": {"$numberInt":"4"}}`}
	if len(got) != len(want) {
		t.Fatalf("documents %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("document %d: %s, want %s", i, got[i], want[i])
		}
	}
	var ops []string
	for _, ev := range collect(t, ctx, cs, dbn, 2) {
		ops = append(ops, ev.Lookup("operationType").StringValue())
	}
	if strings.Join(ops, ",") != "replace,insert" {
		t.Errorf("change events %v, want only the replacement's and the upsert's [replace insert]", ops)
	}
}
