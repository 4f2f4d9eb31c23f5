package lifecycle

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestReverseWithFilterAndRemap: a sync of one database (one collection
// excluded) remapped to <db>_v2 is committed and reversed; writes on the new
// source (cluster1) under the remapped names flow back into the original
// names on cluster0, while what the first sync did not write there (the
// excluded collection, a collection under the original name on cluster1)
// stays where it is. Reversible needs write blocking on both sides: it runs
// on servers of its own.
func TestReverseWithFilterAndRemap(t *testing.T) {
	ctx := testenv.Context(t, 15*time.Minute)
	h := newHarness(t, ctx, true)
	v2 := h.db[:len(h.db)-3] + "_v2" // DBName uses all 63 bytes MongoDB allows
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = h.c0.Database(v2).Drop(cctx)
		_ = h.c1.Database(v2).Drop(cctx)
	})
	skipped := []any{bson.D{{Key: "_id", Value: 1}, {Key: "origin", Value: "cluster0"}}}
	if _, err := h.c0.Database(h.db).Collection("skip").InsertMany(ctx, skipped); err != nil {
		t.Fatal(err)
	}
	h.post("/api/v1/start", map[string]any{
		"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": "sourceAndDestination",
		"includeNamespaces": []map[string]any{{"database": h.db}},
		"excludeNamespaces": []map[string]any{{"database": h.db, "collections": []string{"skip"}}},
		"namespaceRemap":    []map[string]any{{"from": map[string]any{"database": h.db}, "to": map[string]any{"database": v2}}},
	}, 200)
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.post("/api/v1/commit", nil, 200)
	h.waitSource("COMMITTED", 3*time.Minute, func(p map[string]any) bool { return str(p, "state") == "COMMITTED" })
	remapped(t, ctx, h.c0, h.db, h.c1, v2, 2)
	if n, _ := h.c1.Database(v2).Collection("skip").CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("the excluded collection reached cluster1: %d documents in %s.skip", n, v2)
	}

	h.post("/api/v1/reverse", nil, 200)
	h.waitSource("RUNNING epoch 2 from cluster1", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && num(p, "epoch") == 2 && str(p, "phase") == "streaming"
	})
	w := startWriter(ctx, h.c1, v2, 7, 500_000)
	var fresh []any
	for i := range 50 {
		fresh = append(fresh, bson.D{{Key: "_id", Value: i}, {Key: "epoch", Value: 2}})
	}
	if _, err := h.c1.Database(v2).Collection("fresh").InsertMany(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	// Neither of these was written by the first sync: the reversal must leave them.
	if _, err := h.c1.Database(v2).Collection("skip").InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "origin", Value: "cluster1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c1.Database(h.db).Collection("stray").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := w.stop(); err != nil {
		t.Fatalf("writer on cluster1: %v", err)
	}
	t.Logf("writer on cluster1 (%s): %d operations", v2, w.ops.Load())
	h.waitSource("canCommit (epoch 2)", 3*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.waitSource("lagTimeSeconds 0 (epoch 2)", time.Minute, caughtUp)
	h.post("/api/v1/commit", nil, 200)
	h.waitSource("COMMITTED epoch 2", 3*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && num(p, "epoch") == 2
	})
	remapped(t, ctx, h.c1, v2, h.c0, h.db, 3)
	if n, err := h.c0.Database(h.db).Collection("fresh").CountDocuments(ctx, bson.D{}); err != nil || n != 50 {
		t.Fatalf("cluster0 %s.fresh holds %d documents (%v), want the 50 written to %s.fresh on cluster1", h.db, n, err, v2)
	}
	if n, _ := h.c0.Database(h.db).Collection("skip").CountDocuments(ctx, bson.D{{Key: "origin", Value: "cluster1"}}); n != 0 {
		t.Fatal("the collection the first sync excluded flowed back into cluster0")
	}
	if n, _ := h.c0.Database(h.db).Collection("stray").CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatal("a collection under the original name on cluster1 (not written by the first sync) flowed into cluster0")
	}
	names, err := h.c0.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, v2) {
		t.Fatalf("the reversal created %s on cluster0: it must write the original names", v2)
	}
}

// remapped checks with pkg/verify that every collection of srcDB on src
// except "skip" and "stray" equals its copy in dstDB on dst.
func remapped(t *testing.T, ctx context.Context, src *mongo.Client, srcDB string, dst *mongo.Client, dstDB string, minPairs int) {
	t.Helper()
	pairs, err := verify.ListPairs(ctx, src, func(db, coll string) bool { return db == srcDB && coll != "skip" && coll != "stray" },
		func(_, coll string) (string, string) { return dstDB, coll })
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) < minPairs {
		t.Fatalf("verify: %d collections in %s, want at least %d", len(pairs), srcDB, minPairs)
	}
	for _, p := range pairs {
		if r := verify.Namespace(ctx, src, dst, p, verify.Options{}); !r.Equal() {
			t.Errorf("verify %s: %s", p, r.Summary())
		} else {
			t.Logf("verify %s: %d documents equal", p, r.SourceCount)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
