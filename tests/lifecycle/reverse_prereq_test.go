package lifecycle

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/tests/testenv"
)

// TestReversibleRefusedWithLegacyUniqueIndex: mongosync's reverse
// prerequisite that unique indexes on the source are not in the legacy
// format. A reversible start whose source holds a unique index of index
// version 1 in an included namespace is refused with 400 naming the index,
// nothing is written or blocked; a legacy unique index in a namespace the
// sync leaves out does not matter; rebuilt as v: 2, the same start runs.
// It blocks writes when accepted, so it runs on servers of its own.
func TestReversibleRefusedWithLegacyUniqueIndex(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, true)
	createUnique := func(db, coll, name string, v int32) {
		t.Helper()
		err := h.c0.Database(db).RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{
			bson.D{{Key: "key", Value: bson.D{{Key: "s", Value: 1}}}, {Key: "name", Value: name}, {Key: "unique", Value: true}, {Key: "v", Value: v}},
		}}}).Err()
		if err != nil {
			t.Fatalf("creating the unique index %s.%s %s (v: %d): %v", db, coll, name, v, err)
		}
		var spec struct {
			V int32 `bson:"v"`
		}
		cur, err := h.c0.Database(db).Collection(coll).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			if n, _ := cur.Current.Lookup("name").StringValueOK(); n == name {
				_ = bson.Unmarshal(cur.Current, &spec)
			}
		}
		if spec.V != v {
			t.Skipf("the source server keeps index version %d for an index created with v: %d: the legacy-format check cannot be exercised here (it is unit-tested on listIndexes replies, TestLegacyUnique)", spec.V, v)
		}
	}
	createUnique(h.db, "items", "s_legacy", 1)
	createUnique(h.db+"_other", "x", "s_legacy", 1) // not included
	body := map[string]any{"source": "cluster0", "destination": "cluster1", "reversible": true,
		"enableUserWriteBlocking": "sourceAndDestination", "includeNamespaces": []map[string]any{{"database": h.db}}}

	ans := h.post("/api/v1/start", body, 400)
	desc := str(ans, "errorDescription")
	want := `the source cluster0 has unique indexes in the legacy format, built before MongoDB 4.2 (index version v < 2) (1: ` + h.db + `.items index s_legacy (v: 1))`
	if str(ans, "error") != "InvalidRequest" || !strings.Contains(desc, want) || !strings.Contains(desc, "drop it and create it again") {
		t.Fatalf("reversible start with a legacy unique index: got %v, want InvalidRequest containing %q and the fix", ans, want)
	}
	t.Logf("refused: %s", desc)
	if st := h.controlState(); st.State != "IDLE" {
		t.Fatalf("control state %s after the refused start, want IDLE", st.State)
	}
	if _, err := h.c1.Database(h.db+"_probe").Collection("probe").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatalf("the destination refuses user writes after a refused start (it must not have been blocked): %v", err)
	}
	_ = h.c1.Database(h.db + "_probe").Drop(ctx)

	// Rebuilt in the current format, the same start is accepted.
	if err := h.c0.Database(h.db).Collection("items").Indexes().DropOne(ctx, "s_legacy"); err != nil {
		t.Fatal(err)
	}
	createUnique(h.db, "items", "s_current", 2)
	h.post("/api/v1/start", body, 200)
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
}

// TestWriteBlockingThatFailsIsNotIgnored: enableUserWriteBlocking asks for
// blocked writes, and a reversal relies on them, so a cluster that refuses
// setUserWriteBlockMode (a user without the privilege, here mongod's
// failCommand fail point answering Unauthorized) is an error, not a warning:
// the start is refused with 400 naming the cluster and the fix, nothing is
// recorded; at commit, the final cluster time is not taken (no marker, still
// COMMITTING, the source still writable) until the source can be blocked,
// and then the commit completes. Private servers: it blocks writes.
func TestWriteBlockingThatFailsIsNotIgnored(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, true)
	failBlocking := func(c *mongo.Client, on bool) {
		t.Helper()
		mode := any("off")
		if on {
			mode = "alwaysOn"
		}
		_, err := testenv.ConfigureFailPoint(ctx, c, "failCommand", mode,
			bson.D{{Key: "failCommands", Value: bson.A{"setUserWriteBlockMode"}}, {Key: "errorCode", Value: 13}})
		if err != nil {
			t.Fatalf("configuring the failCommand fail point: %v", err)
		}
	}
	body := map[string]any{"source": "cluster0", "destination": "cluster1", "reversible": true,
		"enableUserWriteBlocking": "sourceAndDestination", "includeNamespaces": []map[string]any{{"database": h.db}}}

	failBlocking(h.c1, true)
	ans := h.post("/api/v1/start", body, 400)
	desc := str(ans, "errorDescription")
	if str(ans, "error") != "InvalidRequest" || !strings.Contains(desc, "could not block user writes on cluster1") || !strings.Contains(desc, "setUserWriteBlockMode privilege") {
		t.Fatalf("start with a destination that cannot be blocked: got %v, want InvalidRequest naming cluster1 and the privilege", ans)
	}
	if st := h.controlState(); st.State != "IDLE" {
		t.Fatalf("control state %s after the refused start, want IDLE", st.State)
	}
	failBlocking(h.c1, false)

	h.post("/api/v1/start", body, 200)
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	failBlocking(h.c0, true)
	h.post("/api/v1/commit", nil, 200)
	time.Sleep(5 * time.Second) // several commit attempts (the first is immediate)
	if st := h.controlState(); st.State != "COMMITTING" || st.MarkerID != "" {
		t.Fatalf("commit while the source cannot be blocked: control state %s, marker %q; want COMMITTING without a marker", st.State, st.MarkerID)
	}
	if _, err := h.c0.Database(h.db).Collection("items").InsertOne(ctx, bson.D{{Key: "late", Value: true}}); err != nil {
		t.Fatalf("the source refuses writes although blocking it failed: %v", err)
	}
	failBlocking(h.c0, false)
	h.waitSource("COMMITTED once the source can be blocked", 3*time.Minute, func(p map[string]any) bool { return str(p, "state") == "COMMITTED" })
	if err := h.check(); err != nil {
		t.Fatalf("after the commit: %v", err)
	}
	// The write made while blocking failed precedes the commit point.
	if n, err := h.c1.Database(h.db).Collection("items").CountDocuments(ctx, bson.D{{Key: "late", Value: true}}); err != nil || n != 1 {
		t.Fatalf("the write made before the source could be blocked: %d copies on the destination (%v), want 1", n, err)
	}
	userWritesRefused(t, ctx, h.c0, h.db, "cluster0 (the committed source)")
}
