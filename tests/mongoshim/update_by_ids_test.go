package mongoshim_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestUpdateByIDsSameEvents: a batch of operator updates by _id (the sink's
// form) is forwarded as one command with its images read in bulk (finds of
// idChunk _ids); its events must be exactly those of the same updates sent
// one by one (one statement: the shim's per-statement path). Each update
// runs on two documents, as a two-statement bulk write on collection "bulk"
// and as two updateOne calls on collection "one", and the events (operation
// type, documentKey, updateDescription, fullDocument) are compared.
func TestUpdateByIDsSameEvents(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	db := cl.Database(dbn)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	updates := []bson.D{
		{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}, {Key: "n", Value: 6}}}}, // a new field before an existing one
		{{Key: "$unset", Value: bson.D{{Key: "s", Value: ""}}}, {Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
		{{Key: "$rename", Value: bson.D{{Key: "n", Value: "m"}}}},
		{{Key: "$push", Value: bson.D{{Key: "arr", Value: 3}}}},
		{{Key: "$set", Value: bson.D{{Key: "a.c", Value: 2}}}},
		{{Key: "$set", Value: bson.D{{Key: "n", Value: 5}}}}, // no-op: no event
		{{Key: "$pull", Value: bson.D{{Key: "arr", Value: 1}}}},
		{{Key: "$set", Value: bson.D{{Key: "arr.4", Value: 9}}}},
		{{Key: "$max", Value: bson.D{{Key: "n", Value: 100}}}, {Key: "$set", Value: bson.D{{Key: "a.b", Value: "new"}}}},
		// plain $set of top-level scalars: post-images predicted (setpost.go)
		{{Key: "$set", Value: bson.D{{Key: "s", Value: "k2"}}}},
		{{Key: "$set", Value: bson.D{{Key: "s", Value: "k"}, {Key: "n", Value: 5}}}}, // no-op
		{{Key: "$set", Value: bson.D{{Key: "w", Value: true}, {Key: "s", Value: "é✓"}, {Key: "z", Value: nil}, {Key: "neg", Value: math.Copysign(0, -1)},
			{Key: "dt", Value: bson.DateTime(1700000000000)}, {Key: "oid", Value: bson.ObjectID{1, 2, 3}}, {Key: "l", Value: int64(7)}}}},
		{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(5)}}}}, // a type change: read back
		{{Key: "$set", Value: bson.D{{Key: "n", Value: 5.0}}}},      // a double over an int: read back
		{{Key: "$set", Value: bson.D{{Key: "n", Value: 6}, {Key: "nan", Value: math.NaN()}}}},
	}
	const noops = 4 // the $set n 5 below, and the backend's: n 5 as int64, as 5.0
	doc := func(id int) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "big", Value: strings.Repeat("x", 900)},
			{Key: "a", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "arr", Value: bson.A{1, 2}}, {Key: "n", Value: 5}, {Key: "s", Value: "k"}}
	}
	bulk, one := db.Collection("bulk"), db.Collection("one")
	var docs []any
	for i := range 2 * len(updates) {
		docs = append(docs, doc(i))
	}
	for _, c := range []*mongo.Collection{bulk, one} {
		if _, err := c.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := cl.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: bson.D{{Key: "$in", Value: bson.A{"update", "replace"}}}}}}}}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	for i, u := range updates {
		var ms []mongo.WriteModel // one batch per update: a batch of one form
		for _, id := range []int{2 * i, 2*i + 1} {
			ms = append(ms, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetUpdate(u))
			if _, err := one.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, u); err != nil {
				t.Fatalf("update %v: %v", u, err)
			}
		}
		if _, err := bulk.BulkWrite(ctx, ms, options.BulkWrite().SetOrdered(true)); err != nil {
			t.Fatal(err)
		}
	}
	want := 2 * (len(updates) - noops)
	evs := collect(t, ctx, cs, dbn, 2*want)
	got := map[string][]string{}
	for _, ev := range evs {
		c := lookupStr(ev, "ns", "coll")
		var parts []string
		for _, f := range []string{"operationType", "documentKey", "updateDescription", "fullDocument"} {
			if v, err := ev.LookupErr(f); err == nil {
				parts = append(parts, f+"="+v.String())
			}
		}
		got[c] = append(got[c], strings.Join(parts, " "))
	}
	if len(got["bulk"]) != want || len(got["one"]) != want {
		t.Fatalf("%d events from the bulk write, %d one by one, want %d each", len(got["bulk"]), len(got["one"]), want)
	}
	for i := range got["one"] {
		if got["bulk"][i] != got["one"][i] {
			t.Errorf("event %d differs:\n bulk        %s\n one by one  %s", i, got["bulk"][i], got["one"][i])
		}
	}
}
