package lifecycle

// mongosync parity on real processes and the local stack: the start body's
// buildIndexes modes (checked by the order of events on the destination),
// the destination-data policy, a refused version pair, the read and write
// throttles, and the progress fields (pingLatencyMs, copy byte estimates,
// verification on commit). Write-blocking modes are in TestWriteBlockingModes,
// on servers of its own (setUserWriteBlockMode blocks a whole server).

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/testenv"
)

// destEvents records the destination's change events of db (with DDL) from
// now on: "insert orders", "createIndexes orders"...
type destEvents struct {
	cs   *mongo.ChangeStream
	evs  chan string
	list []string
}

func watchDest(t *testing.T, ctx context.Context, cl *mongo.Client, db string) *destEvents {
	t.Helper()
	cs, err := cl.Database(db).Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	if err != nil {
		t.Fatalf("watching the destination: %v", err)
	}
	d := &destEvents{cs: cs, evs: make(chan string, 100000)}
	// A change stream is not safe for concurrent use: the cleanup stops
	// the reader before it closes the stream.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(d.evs)
		for cs.Next(rctx) {
			var ev struct {
				Op string `bson:"operationType"`
				NS struct {
					Coll string `bson:"coll"`
				} `bson:"ns"`
				Desc bson.Raw `bson:"operationDescription"`
			}
			if cs.Decode(&ev) != nil {
				continue
			}
			s := ev.Op + " " + ev.NS.Coll
			if ev.Op == "createIndexes" {
				s += " " + ev.Desc.String()
			}
			d.evs <- s
		}
	}()
	t.Cleanup(func() { stop(); <-done; _ = cs.Close(context.Background()) })
	return d
}

// drain returns the events recorded so far.
func (d *destEvents) drain() []string {
	for {
		select {
		case s, ok := <-d.evs:
			if !ok {
				return d.list
			}
			d.list = append(d.list, s)
		default:
			return d.list
		}
	}
}

// indexOrder says where the createIndexes of coll falls among its inserts:
// how many inserts come before and after it (-1, -1 without one).
func indexOrder(evs []string, coll string) (before, after int) {
	before, after = -1, -1
	inserts := 0
	for _, e := range evs {
		switch {
		case strings.HasPrefix(e, "createIndexes "+coll+" ") && before < 0:
			before = inserts
		case e == "insert "+coll || e == "replace "+coll || e == "update "+coll:
			inserts++
		}
	}
	if before >= 0 {
		after = inserts - before
	}
	return before, after
}

func destIndexes(t *testing.T, ctx context.Context, cl *mongo.Client, db, coll string) []string {
	t.Helper()
	cur, err := cl.Database(db).Collection(coll).Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for cur.Next(ctx) {
		out = append(out, cur.Current.Lookup("name").StringValue())
	}
	return out
}

func TestBuildIndexesModes(t *testing.T) {
	for _, tc := range []struct {
		mode string // "" is the default (afterDataCopy)
		// where the orders index lands among the 300 orders inserts
		check func(before, after int) bool
		want  string
		// indexes the destination ends with
		indexes string
	}{
		{"", func(b, a int) bool { return b == seedOrders && a == 0 }, "after every insert", "_id_,cust_1"},
		{"beforeDataCopy", func(b, a int) bool { return b == 0 && a == seedOrders }, "before every insert", "_id_,cust_1"},
		{"excludeHashedAfterCopy", func(b, a int) bool { return b == seedOrders && a == 0 }, "after every insert", "_id_,cust_1"},
		{"never", func(b, a int) bool { return b == -1 }, "nowhere", "_id_"},
	} {
		name := tc.mode
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testenv.Context(t, 8*time.Minute)
			h := newHarness(t, ctx, false)
			if tc.mode == "excludeHashedAfterCopy" {
				// A hashed index on the source: left out on the destination.
				if _, err := h.c0.Database(h.db).Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "total", Value: "hashed"}}}); err != nil {
					t.Skipf("the source cannot create a hashed index (%v): excludeHashed is only covered by the sink's unit test", err)
				}
			}
			evs := watchDest(t, ctx, h.c1, h.db)
			body := map[string]any{"source": "cluster0", "destination": "cluster1", "includeNamespaces": []map[string]any{{"database": h.db}}}
			if tc.mode != "" {
				body["buildIndexes"] = tc.mode
			}
			h.post("/api/v1/start", body, 200)
			h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
			time.Sleep(time.Second) // the last destination events reach the watcher
			got := evs.drain()
			b, a := indexOrder(got, "orders")
			t.Logf("buildIndexes %q: createIndexes of orders after %d inserts, before %d (%d destination events)", tc.mode, b, a, len(got))
			if !tc.check(b, a) {
				t.Fatalf("buildIndexes %q: the orders index came after %d and before %d of its %d inserts, want it %s", tc.mode, b, a, seedOrders, tc.want)
			}
			if got := strings.Join(slices.Sorted(slices.Values(destIndexes(t, ctx, h.c1, h.db, "orders"))), ","); got != tc.indexes {
				t.Fatalf("buildIndexes %q: destination indexes %s, want %s", tc.mode, got, tc.indexes)
			}
		})
	}
}

func TestDestinationDataPolicy(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, false)
	// The destination already holds one included namespace.
	if _, err := h.c1.Database(h.db).Collection("items").InsertOne(ctx, bson.D{{Key: "_id", Value: "stray"}}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"source": "cluster0", "destination": "cluster1", "includeNamespaces": []map[string]any{{"database": h.db}}}
	ans := h.post("/api/v1/start", body, 400)
	desc := str(ans, "errorDescription")
	if !strings.Contains(desc, "already holds included namespaces (1: "+h.db+".items)") || !strings.Contains(desc, "dropDestinationData") {
		t.Fatalf("start onto a non-empty destination: %v, want a refusal naming %s.items and the options", ans, h.db)
	}
	if st := h.controlState(); st.Events != 0 {
		t.Fatalf("the refused start wrote %d control events", st.Events)
	}
	t.Logf("refused: %s", desc)

	// Merge: the stray document stays, the source's are copied next to it.
	merge := map[string]any{"preExistingDestinationData": true}
	for k, v := range body {
		merge[k] = v
	}
	ans = h.post("/api/v1/start", merge, 200)
	if w := fmt.Sprint(ans["warnings"]); !strings.Contains(w, "merging into namespaces the destination already holds (1: ") {
		t.Fatalf("merge start answered %v, want a warning that it merges", ans)
	}
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	n, err := h.c1.Database(h.db).Collection("items").CountDocuments(ctx, bson.D{})
	if err != nil || n != seedItems+1 {
		t.Fatalf("merged items: %d documents (%v), want the %d copied and the stray one", n, err, seedItems)
	}
	// Commit: the verifier runs by itself (verification enabled by
	// default) and, with the stray document, says different.
	h.post("/api/v1/commit", nil, 200)
	p := h.waitSource("verification after commit", 5*time.Minute, func(p map[string]any) bool {
		v, _ := p["verification"].(map[string]any)
		return str(p, "state") == "COMMITTED" && v != nil && str(v, "state") != "running"
	})
	v := p["verification"].(map[string]any)
	src, _ := v["source"].(map[string]any)
	if str(v, "state") != "different" || str(v, "trigger") != "commit" || str(src, "phase") != "complete" || num(src, "totalCollectionCount") != 2 ||
		num(src, "hashedDocumentCount") != seedItems+seedOrders {
		t.Fatalf("verification on commit: %v, want different (the stray document), triggered by the commit, 2 collections and %d source documents", v, seedItems+seedOrders)
	}
}

func TestDestinationDataDropped(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, false)
	if _, err := h.c1.Database(h.db).Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: "stray"}}); err != nil {
		t.Fatal(err)
	}
	ans := h.post("/api/v1/start", map[string]any{"source": "cluster0", "destination": "cluster1",
		"includeNamespaces": []map[string]any{{"database": h.db}}, "dropDestinationData": true}, 200)
	if w := fmt.Sprint(ans["warnings"]); !strings.Contains(w, "before the copy (1: ") {
		t.Fatalf("drop start answered %v, want a warning naming the drop", ans)
	}
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.post("/api/v1/commit", nil, 200)
	p := h.waitSource("COMMITTED and verified", 5*time.Minute, func(p map[string]any) bool {
		v, _ := p["verification"].(map[string]any)
		return str(p, "state") == "COMMITTED" && v != nil && str(v, "state") != "running"
	})
	if v := p["verification"].(map[string]any); str(v, "state") != "equal" {
		t.Fatalf("verification after a start that dropped the destination's copy: %v, want equal", v)
	}
	converged(t, ctx, h.c0, h.c1, h.db, 2)
}

// TestVersionPairRefused presents the destination as MongoDB 5.0 (a proxy
// rewrites its buildInfo) behind a 7.0 source: the start is refused.
func TestVersionPairRefused(t *testing.T) {
	ctx := testenv.Context(t, 5*time.Minute)
	env := testenv.New(t)
	u, err := url.Parse(env.DestURI)
	if err != nil {
		t.Fatal(err)
	}
	px := startVersionProxy(t, u.Host, "5.0.9", "5.0")
	h := newHarnessWith(t, ctx, harnessOpts{cluster1: "mongodb://" + px.addr() + "/?directConnection=true"})
	ans := h.post("/api/v1/start", map[string]any{"source": "cluster0", "destination": "cluster1",
		"includeNamespaces": []map[string]any{{"database": h.db}}}, 400)
	desc := str(ans, "errorDescription")
	if !strings.Contains(desc, "the destination cluster1 runs MongoDB 5.0.9, older than the source cluster0") {
		t.Fatalf("start onto an older destination: %v, want it refused as older than the source", ans)
	}
	if st := h.controlState(); st.Events != 0 {
		t.Fatalf("the refused start wrote %d control events", st.Events)
	}
	t.Logf("refused: %s", desc)
	// The 5.0 cluster as the source, asked to block writes: refused by name
	// (setUserWriteBlockMode is 6.0+).
	ans = h.post("/api/v1/start", map[string]any{"source": "cluster1", "destination": "cluster0",
		"includeNamespaces": []map[string]any{{"database": h.db + "_none"}}, "enableUserWriteBlocking": "sourceAndDestination"}, 400)
	if desc := str(ans, "errorDescription"); !strings.Contains(desc, `blocks user writes on the source cluster1 from commit on, but it runs MongoDB 5.0.9: setUserWriteBlockMode needs 6.0 or later`) {
		t.Fatalf("write blocking on a 5.0 source: %v, want it refused by name", ans)
	}
}

// copyRate is the documents per second of the copy as the source's
// progress reports it, from the first copied document to the last.
func copyRate(h *harness, total int64) float64 {
	h.t.Helper()
	var first, last time.Time
	var firstDocs int64
	h.waitSource("the copy of every document", 5*time.Minute, func(p map[string]any) bool {
		var copied int64
		for _, n := range asList(p["namespaces"]) {
			copied += int64(num(n.(map[string]any), "copiedDocuments"))
		}
		if copied > 0 && first.IsZero() {
			first, firstDocs = time.Now(), copied
		}
		if copied >= total {
			last = time.Now()
			return true
		}
		return false
	})
	return float64(total-firstDocs) / last.Sub(first).Seconds()
}

func TestThrottleHoldsRate(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	// Small find batches: the pacing steps are 50 documents.
	h := newHarnessWith(t, ctx, harnessOpts{srcArgs: []string{"--snapshot-batch-size", "50", "--progress-interval", "2s"}})
	const rate = 300.0
	// Set before the start (any state): recorded, and the epoch starts with it.
	h.post("/api/v1/throttle", map[string]any{"maxReadRate": map[string]any{"docs": rate}}, 200)
	h.post("/api/v1/start", map[string]any{"source": "cluster0", "destination": "cluster1",
		"includeNamespaces": []map[string]any{{"database": h.db}}}, 200)
	got := copyRate(h, seedItems+seedOrders)
	t.Logf("snapshot read rate %.0f docs/s with maxReadRate docs=%.0f", got, rate)
	if got < 0.9*rate || got > 1.1*rate {
		t.Fatalf("snapshot read rate %.0f docs/s, want %.0f ± 10%%", got, rate)
	}
	p := h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	if th, _ := p["throttle"].(map[string]any); th == nil || num(th["maxReadRate"].(map[string]any), "docs") != rate {
		t.Fatalf("progress.throttle %v, want maxReadRate docs=%.0f", p["throttle"], rate)
	}
	if body := h.sapi.get("/metrics"); !strings.Contains(body, `logbridge_source_max_read_rate_per_second{unit="docs"} 300`) {
		t.Fatalf("source /metrics lacks the read throttle gauge at 300")
	}

	// The write throttle, changed while running: the destination receives
	// new documents at that rate.
	const wrate = 200.0
	h.post("/api/v1/throttle", map[string]any{"maxWriteRate": map[string]any{"docs": wrate}}, 200)
	h.waitSink("maxWriteRate in force", time.Minute, func(p map[string]any) bool {
		r, _ := p["maxWriteRate"].(map[string]any)
		return r != nil && num(r, "docs") == wrate
	})
	const burst = 1200
	var docs []any
	for i := range burst {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "w", Value: true}})
	}
	if _, err := h.c0.Database(h.db).Collection("burst").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	var firstN int64
	waitFor(t, ctx, "the burst on the destination", 3*time.Minute, h.check, func() (bool, string) {
		n, err := h.c1.Database(h.db).Collection("burst").CountDocuments(ctx, bson.D{})
		if err != nil {
			return false, err.Error()
		}
		if n > 0 && first.IsZero() {
			first, firstN = time.Now(), n
		}
		if n >= burst {
			last = time.Now()
			return true, ""
		}
		time.Sleep(50 * time.Millisecond)
		return false, fmt.Sprintf("%d of %d", n, burst)
	})
	wgot := float64(burst-firstN) / last.Sub(first).Seconds()
	t.Logf("destination write rate %.0f docs/s with maxWriteRate docs=%.0f", wgot, wrate)
	if wgot < 0.9*wrate || wgot > 1.1*wrate {
		t.Fatalf("destination write rate %.0f docs/s, want %.0f ± 10%%", wgot, wrate)
	}
	// The progress lines: the sink's (every 10 s by default; this test
	// runs longer) and the source's mongomirror line once streaming.
	if tail := h.snk.Tail(1 << 20); !strings.Contains(tail, "behind the source") || !strings.Contains(tail, "ratePerSecond=") {
		t.Fatalf("the sink logged no progress line (records applied, rate, destination lag); log tail:\n%s", h.snk.Tail(3000))
	}
	if tail := h.src.Tail(1 << 20); !strings.Contains(tail, "Current lag from source:") || !strings.Contains(tail, "destinationLagSeconds=") {
		t.Fatalf("the source logged no 'Current lag from source' line; log tail:\n%s", h.src.Tail(3000))
	}
}

// TestProgressFields: after a copy and commit, collectionCopy holds the
// copy's byte totals (the sum of the copied documents' BSON sizes, and of
// the collections' sizes as the source reported them), the ping latency of
// both clusters is measured, and totalEventsApplied counts the change
// events the sink applied.
func TestProgressFields(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, false)
	var docBytes, collBytes int64
	for _, coll := range []string{"items", "orders"} {
		cur, err := h.c0.Database(h.db).Collection(coll).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			docBytes += int64(len(cur.Current))
		}
		cur.Close(ctx)
		sc, err := h.c0.Database(h.db).Collection(coll).Aggregate(ctx, mongo.Pipeline{{{Key: "$collStats", Value: bson.D{{Key: "storageStats", Value: bson.D{}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Next(ctx) {
			n, _ := sc.Current.Lookup("storageStats", "size").AsInt64OK()
			collBytes += n
		}
		sc.Close(ctx)
	}
	h.post("/api/v1/start", map[string]any{"source": "cluster0", "destination": "cluster1",
		"includeNamespaces": []map[string]any{{"database": h.db}}}, 200)
	p := h.waitSource("canCommit and both pings measured", 5*time.Minute, func(p map[string]any) bool {
		s, _ := p["source"].(map[string]any)
		d, _ := p["destination"].(map[string]any)
		return flag(p, "canCommit") && s != nil && d != nil && num(s, "pingLatencyMs") > 0 && num(d, "pingLatencyMs") > 0
	})
	if str(p, "mongosyncID") != h.prefix {
		t.Fatalf("mongosyncID %q, want the topic prefix %q", str(p, "mongosyncID"), h.prefix)
	}
	// totalEventsApplied counts change events the sink applied, not the
	// copy: 0 now, then exactly the 45 writes below (no sink restarts, so
	// no replays to count twice).
	if v, ok := p["totalEventsApplied"].(float64); !ok || v != 0 {
		t.Fatalf("totalEventsApplied %v after the copy (%d documents copied), want 0: the copy is not change events", p["totalEventsApplied"], seedItems+seedOrders)
	}
	items := h.c0.Database(h.db).Collection("items")
	for i := range 30 {
		if _, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "e", Value: i}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, err := items.InsertOne(ctx, bson.D{{Key: "_id", Value: 10_000 + i}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := items.DeleteOne(ctx, bson.D{{Key: "_id", Value: 100 + i}}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitSource("totalEventsApplied 45", time.Minute, func(p map[string]any) bool { return num(p, "totalEventsApplied") >= 45 })
	time.Sleep(3 * time.Second) // longer than the sink's recording interval: nothing more comes
	if p := h.waitSource("progress", 10*time.Second, func(map[string]any) bool { return true }); num(p, "totalEventsApplied") != 45 {
		t.Fatalf("totalEventsApplied %v, want exactly the 45 change events written", p["totalEventsApplied"])
	}
	h.post("/api/v1/commit", nil, 200)
	p = h.waitSource("COMMITTED", 3*time.Minute, stateIs("COMMITTED"))
	cc, _ := p["collectionCopy"].(map[string]any)
	t.Logf("collectionCopy %v; documents %d bytes, collections %d bytes", cc, docBytes, collBytes)
	if int64(num(cc, "estimatedCopiedBytes")) != docBytes || int64(num(cc, "estimatedTotalBytes")) != collBytes {
		t.Fatalf("collectionCopy after commit %v, want estimatedCopiedBytes %d (the copied documents) and estimatedTotalBytes %d (the collections' sizes)", cc, docBytes, collBytes)
	}
	// After a restart in COMMITTED the totals come from the control log.
	h.src.Kill9()
	h.src.Start()
	p = h.waitSource("COMMITTED after a restart", 2*time.Minute, stateIs("COMMITTED"))
	if cc2, _ := p["collectionCopy"].(map[string]any); int64(num(cc2, "estimatedCopiedBytes")) != docBytes {
		t.Fatalf("collectionCopy after a restart in COMMITTED %v, want the copy's %d bytes", cc2, docBytes)
	}
	p = h.waitSource("totalEventsApplied after a restart", 30*time.Second, func(p map[string]any) bool { return num(p, "totalEventsApplied") > 0 })
	if num(p, "totalEventsApplied") != 45 {
		t.Fatalf("totalEventsApplied after a restart in COMMITTED %v, want the 45 kept on the destination", p["totalEventsApplied"])
	}
}

// TestWriteBlockingModes runs a sync per write-blocking form of mongosync's
// start body and checks where user writes are refused. Each runs between
// servers of its own: setUserWriteBlockMode blocks a whole server.
func TestWriteBlockingModes(t *testing.T) {
	for _, tc := range []struct {
		value                    any
		blockDest, blockSrcAfter bool
	}{
		{"destinationOnly", true, false},
		{"sourceAndDestination", true, true},
		{true, true, true},
		{"none", false, false},
		{false, false, false},
	} {
		t.Run(fmt.Sprint(tc.value), func(t *testing.T) {
			ctx := testenv.Context(t, 10*time.Minute)
			h := newHarness(t, ctx, true) // private servers
			h.post("/api/v1/start", map[string]any{"source": "cluster0", "destination": "cluster1",
				"includeNamespaces": []map[string]any{{"database": h.db}}, "enableUserWriteBlocking": tc.value}, 200)
			h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
			_, err := h.c1.Database(h.db).Collection("probe").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
			if blocked := err != nil; blocked != tc.blockDest {
				t.Fatalf("enableUserWriteBlocking %v: a user write to the destination while RUNNING: err %v, want blocked %v", tc.value, err, tc.blockDest)
			}
			h.post("/api/v1/commit", nil, 200)
			h.waitSource("COMMITTED", 3*time.Minute, func(p map[string]any) bool { return str(p, "state") == "COMMITTED" && flag(p, "canWrite") })
			if _, err := h.c1.Database(h.db).Collection("probe").InsertOne(ctx, bson.D{{Key: "x", Value: 2}}); err != nil {
				t.Fatalf("the destination is not writable after the commit: %v", err)
			}
			_, err = h.c0.Database(h.db).Collection("probe").InsertOne(ctx, bson.D{{Key: "x", Value: 3}})
			if blocked := err != nil; blocked != tc.blockSrcAfter {
				t.Fatalf("enableUserWriteBlocking %v: a user write to the source after the commit: err %v, want blocked %v", tc.value, err, tc.blockSrcAfter)
			}
		})
	}
}
