package sink_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkCollectionOptionsConverge (invariant 1, "same collection options"):
// a collection created with a collation, a validator and pre- and post-images
// is copied by the snapshot; a second one is created with options while the
// stream runs; then collMod changes the first one's validator. Through the
// real source-connector and sink, the destination must list the same options
// and hold the same documents for both (verify.Namespace).
func TestSinkCollectionOptionsConverge(t *testing.T) {
	env, src, dest, ctx, db := sourceAndDest(t, 3*time.Minute)
	run := func(cmd bson.D) {
		t.Helper()
		if err := src.Database(db).RunCommand(ctx, cmd).Err(); err != nil {
			t.Fatalf("source %v: %v", cmd, err)
		}
	}
	insert := func(coll string, from, to int) {
		t.Helper()
		var docs []any
		for i := from; i < to; i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "a", Value: int32(i)}, {Key: "b", Value: int32(i)}})
		}
		if _, err := src.Database(db).Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	run(bson.D{{Key: "create", Value: "snap"},
		{Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}, {Key: "strength", Value: int32(2)}}},
		{Key: "validator", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$exists", Value: true}}}}},
		{Key: "validationLevel", Value: "moderate"},
		{Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}}})
	insert("snap", 0, 100)

	prefix := testenv.TopicPrefix(t)
	startSourceProc(t, ctx, env, prefix, db, "snapshot done", "--heartbeat-interval", "1s")
	runSink(t, sourceSinkCfg(env, prefix))

	run(bson.D{{Key: "create", Value: "live"},
		{Key: "collation", Value: bson.D{{Key: "locale", Value: "de"}}},
		{Key: "validator", Value: bson.D{{Key: "b", Value: bson.D{{Key: "$type", Value: "int"}}}}}})
	insert("live", 0, 50)
	run(bson.D{{Key: "collMod", Value: "snap"},
		{Key: "validator", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$type", Value: "int"}}}}},
		{Key: "validationAction", Value: "warn"}})
	insert("snap", 100, 150)

	for _, coll := range []string{"snap", "live"} {
		p := verify.Pair{SourceDB: db, SourceColl: coll, DestDB: db, DestColl: coll}
		deadline := time.Now().Add(60 * time.Second)
		for {
			r := verify.Namespace(ctx, src, dest, p, verify.Options{})
			if r.Err == nil && r.Equal() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not converge: %s (err %v)", p, r.Summary(), r.Err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
