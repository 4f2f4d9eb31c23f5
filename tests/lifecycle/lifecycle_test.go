// Package lifecycle drives a whole mongosync-style sync through the control
// API of real source-connector and sink-connector processes: start → sync
// with live writes → pause → resume → commit → convergence → reverse → writes
// on the new source flow back → commit again → convergence → a second
// reversal and commit, with every invalid transition refused with HTTP 409
// and kill -9 restarts of each service in every state (IDLE, RUNNING of
// epochs 1 and 2, PAUSED, COMMITTING while the commit waits for a stopped
// sink and right after the request, COMMITTED, REVERSING); the run fails
// unless every (state, service) pair was restarted. It also checks that
// progress.lagTimeSeconds grows while the sink is down and is 0 once the
// destination has applied the whole log.
//
// It needs the local stack (tests/testenv) with servers that serve
// cluster-wide change streams and cluster time on both clusters (the
// replica-set shim, tests/mongoshim); otherwise it skips, or fails with
// LOGBRIDGE_REQUIRE_STACK=1.
//
// A reversible sync needs enableUserWriteBlocking "sourceAndDestination"
// (as in mongosync), and setUserWriteBlockMode blocks a whole server: on the
// shared servers it would break every other test writing to them. So every
// sync that blocks writes (TestLifecycle, TestReverseWithFilterAndRemap,
// TestWriteBlockingModes) runs between a pair of servers of its own
// (testenv.Private: mongo-java-server + mongoshim processes on free ports,
// as scripts/stack.sh starts the shared ones), and checks that user writes
// are refused where they must be. Only Kafka is shared.
//
// security_test.go checks invariant 7 on the same real processes: 401 and an
// unchanged control log for every mutating endpoint without a valid token,
// the token and TLS client certificates accepted, 413 for an oversize body,
// and exit status 2 for an exposed listener without authentication.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/testenv"
)

const (
	seedItems  = 1500
	seedOrders = 300
)

// harness is one sync: its two processes, their APIs and the clusters.
type harness struct {
	t          *testing.T
	ctx        context.Context
	env        testenv.Env
	c0, c1     *mongo.Client
	db, prefix string
	group      string
	blocking   bool // the sync blocks user writes (the cleanup unblocks)
	src, snk   *proc
	sapi, kapi *api
	clog       *control.Log
	// restarted records each (state, service) a service was (re)started
	// in, as "STATE/name"; the lifecycle checks every pair is covered.
	restarted map[string]bool
}

func (h *harness) check() error {
	if err := errors.Join(h.src.Exited(), h.snk.Exited()); err != nil {
		return err
	}
	if h.blocking {
		// A server that blocks the sink's writes too (no bypassWriteBlockingMode
		// for it) cannot run a write-blocking sync; the sink says so.
		if p, err := h.kapi.progress(); err == nil && strings.Contains(str(p, "error"), "bypassWriteBlockingMode") {
			h.t.Skipf("the destination blocks the sink's writes as well, so a write-blocking sync cannot proceed on this server (it offers no bypassWriteBlockingMode privilege, e.g. the test shim): %s", str(p, "error"))
		}
	}
	return nil
}

// requireCapable skips (or fails) unless the cluster serves what a mongosync
// lifecycle needs of a source: cluster time and a cluster-wide change stream.
func requireCapable(t *testing.T, ctx context.Context, cl *mongo.Client, name, uri string) {
	t.Helper()
	var missing []string
	raw, err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		missing = append(missing, "hello ("+err.Error()+")")
	} else if _, err := raw.LookupErr("operationTime"); err != nil {
		if _, err := raw.LookupErr("$clusterTime"); err != nil {
			missing = append(missing, "cluster time (operationTime/$clusterTime)")
		}
	}
	if cs, err := cl.Watch(ctx, mongo.Pipeline{}); err != nil {
		missing = append(missing, "a cluster-wide change stream ("+err.Error()+")")
	} else {
		_ = cs.Close(ctx)
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s at %s cannot be a sync source: it lacks %s (the lifecycle test needs the replica-set shim in front of both servers, see docs/testing.md)",
			name, uri, strings.Join(missing, "; "))
		if os.Getenv("LOGBRIDGE_REQUIRE_STACK") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// newHarness checks the stack, builds and starts both services on a fresh
// topic prefix, sink group and database, and seeds the database on cluster0.
// A sync that blocks user writes runs between private servers.
func newHarness(t *testing.T, ctx context.Context, blocking bool) *harness {
	t.Helper()
	srcBin, sinkBin := binaries(t)
	return newHarnessWith(t, ctx, harnessOpts{blocking: blocking, private: blocking, srcBin: srcBin, sinkBin: sinkBin})
}

// harnessOpts: what newHarnessWith starts.
type harnessOpts struct {
	blocking        bool
	srcBin, sinkBin string
	// beforeStart runs after the seed, before the services start.
	beforeStart func(h *harness)
	// srcArgs are extra source-connector flags.
	srcArgs []string
	// cluster1 is another URI the services know as cluster1 (a proxy).
	cluster1 string
	// private runs the sync between a pair of servers of the test's own
	// (testenv.Private) instead of the shared ones: for syncs that block
	// user writes (setUserWriteBlockMode is server-wide).
	private bool
}

// newHarnessWith is newHarness with the given binaries and options.
func newHarnessWith(t *testing.T, ctx context.Context, o harnessOpts) *harness {
	t.Helper()
	blocking := o.blocking
	env := testenv.New(t)
	if o.private {
		pair := testenv.Private(t)
		env.SourceURI, env.DestURI = pair.SourceURI, pair.DestURI
	}
	h := &harness{t: t, ctx: ctx, env: env, c0: env.Source(t), c1: env.Dest(t),
		db: testenv.DBName(t), prefix: testenv.TopicPrefix(t), blocking: blocking, restarted: map[string]bool{}}
	h.group = h.prefix + "-sink"
	requireCapable(t, ctx, h.c0, "cluster0", env.SourceURI)
	requireCapable(t, ctx, h.c1, "cluster1", env.DestURI)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, cl := range []*mongo.Client{h.c0, h.c1} {
			if h.blocking { // never leave a shared server blocked, whatever happened
				_ = cl.Database("admin").RunCommand(cctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: false}}).Err()
			}
			_ = cl.Database(h.db).Drop(cctx)
		}
	})
	srcBin, sinkBin := o.srcBin, o.sinkBin
	if srcBin == "" || sinkBin == "" {
		srcBin, sinkBin = binaries(t)
	}
	seed(t, ctx, h.c0, h.db)
	if o.beforeStart != nil {
		o.beforeStart(h)
	}
	// The test reads the control log itself, to know the state a service
	// is killed in, and writes to it where only a crash could stop there.
	clog, err := control.NewLog(ctx, []kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)}, h.prefix)
	if err != nil {
		t.Fatal(err)
	}
	h.clog = clog
	t.Cleanup(clog.Close)

	brokers := strings.Join(env.KafkaBrokers, ",")
	srcAddr, sinkAddr := freePort(t), freePort(t)
	// The mutating endpoints need the API token, on loopback too.
	tf, token := tokenFile(t)
	cluster1 := env.DestURI
	if o.cluster1 != "" {
		cluster1 = o.cluster1
	}
	srcArgs := []string{"--cluster0", env.SourceURI, "--cluster1", cluster1,
		"--kafka-brokers", brokers, "--topic-prefix", h.prefix, "--sink-group", h.group,
		"--http-addr", srcAddr, "--api-token-file", tf, "--heartbeat-interval", "1s"}
	h.src = startProc(t, "source", srcBin, append(srcArgs, o.srcArgs...)...)
	h.snk = startProc(t, "sink", sinkBin, "--cluster0", env.SourceURI, "--cluster1", cluster1,
		"--kafka-brokers", brokers, "--topic-prefix", h.prefix, "--group", h.group,
		"--http-addr", sinkAddr, "--api-token-file", tf, "--session-timeout", "6s")
	h.sapi, h.kapi = newAPI(t, srcAddr, token), newAPI(t, sinkAddr, token)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log tail:\n%s", h.src.Tail(6000))
			t.Logf("sink log tail:\n%s", h.snk.Tail(6000))
		}
	})
	h.waitSource("the source's API to answer", time.Minute, func(p map[string]any) bool { return p["state"] != nil })
	h.waitSink("the sink's API to answer", time.Minute, func(p map[string]any) bool { return p["state"] != nil })
	return h
}

func (h *harness) waitSource(what string, timeout time.Duration, cond func(map[string]any) bool) map[string]any {
	h.t.Helper()
	var last map[string]any
	d := waitFor(h.t, h.ctx, "source: "+what, timeout, h.check, func() (bool, string) {
		p, err := h.sapi.progress()
		if err != nil {
			return false, err.Error()
		}
		last = p
		return cond(p), brief(p)
	})
	h.t.Logf("source: %s (%v)", what, d.Round(10*time.Millisecond))
	return last
}

func (h *harness) waitSink(what string, timeout time.Duration, cond func(map[string]any) bool) map[string]any {
	h.t.Helper()
	var last map[string]any
	d := waitFor(h.t, h.ctx, "sink: "+what, timeout, h.check, func() (bool, string) {
		p, err := h.kapi.progress()
		if err != nil {
			return false, err.Error()
		}
		last = p
		return cond(p), brief(p)
	})
	h.t.Logf("sink: %s (%v)", what, d.Round(10*time.Millisecond))
	return last
}

func stateIs(s string) func(map[string]any) bool {
	return func(p map[string]any) bool { return str(p, "state") == s }
}

// post expects code from POST path.
func (h *harness) post(path string, body any, code int) map[string]any {
	h.t.Helper()
	got, ans := h.sapi.post(path, body)
	if got != code {
		h.t.Fatalf("POST %s: HTTP %d, want %d: %v", path, got, code, ans)
	}
	return ans
}

// refused expects 409 with an InvalidStateTransition error that says why.
func (h *harness) refused(path string, body any, why string) {
	h.t.Helper()
	ans := h.post(path, body, 409)
	desc := str(ans, "errorDescription")
	if str(ans, "error") != "InvalidStateTransition" || !strings.Contains(desc, why) {
		h.t.Fatalf("POST %s: refused with %v, want InvalidStateTransition mentioning %q", path, ans, why)
	}
	h.t.Logf("POST %s refused: %s", path, desc)
}

// states are mongosync's; every service must be restarted in each.
var states = []control.State{control.Idle, control.Running, control.Paused, control.Committing, control.Committed, control.Reversing}

// controlState folds the control log, the state both services derive.
func (h *harness) controlState() control.Status {
	h.t.Helper()
	st, _, err := h.clog.Load(h.ctx)
	if err != nil {
		h.t.Fatalf("reading the control log: %v", err)
	}
	return st
}

// restart kills each of ps with SIGKILL (unless it is already down) and
// starts it again, once the control log says state; it records the pair.
func (h *harness) restart(state control.State, ps ...*proc) {
	h.t.Helper()
	if st := h.controlState(); st.State != state {
		h.t.Fatalf("restart in %s: the control log says %s", state, st.State)
	}
	for _, p := range ps {
		if p.Running() {
			p.Kill9()
		}
		p.Start()
		h.restarted[string(state)+"/"+p.Name] = true
		h.t.Logf("%s killed (-9) and restarted in %s", p.Name, state)
	}
}

// checkRestartCoverage fails unless both services were restarted in every state.
func (h *harness) checkRestartCoverage() {
	h.t.Helper()
	for _, st := range states {
		for _, p := range []*proc{h.src, h.snk} {
			if !h.restarted[string(st)+"/"+p.Name] {
				h.t.Errorf("the %s service was never restarted in %s", p.Name, st)
			}
		}
	}
}

// sinkOf is the "sink" object of the source's progress.
func sinkOf(p map[string]any) map[string]any {
	s, _ := p["sink"].(map[string]any)
	return s
}

// caughtUp: the source's progress says the destination applied the whole log.
func caughtUp(p map[string]any) bool {
	s := sinkOf(p)
	return s != nil && num(p, "lagTimeSeconds") == 0 && num(s, "lagSeconds") == 0 && num(s, "pendingPartitions") == 0 && s["partitions"] != nil && num(s, "partitions") > 0
}

func seed(t *testing.T, ctx context.Context, cl *mongo.Client, db string) {
	t.Helper()
	d := cl.Database(db)
	var items, orders []any
	for i := range seedItems {
		items = append(items, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}, {Key: "s", Value: fmt.Sprintf("item %d", i)},
			{Key: "tags", Value: bson.A{"a", i % 7}}, {Key: "sub", Value: bson.D{{Key: "x", Value: i * 2}}}})
	}
	for i := range seedOrders {
		orders = append(orders, bson.D{{Key: "_id", Value: i}, {Key: "cust", Value: i % 37}, {Key: "total", Value: float64(i) * 1.25}})
	}
	if _, err := d.Collection("items").InsertMany(ctx, items); err != nil {
		t.Fatalf("seeding items: %v", err)
	}
	if _, err := d.Collection("orders").InsertMany(ctx, orders); err != nil {
		t.Fatalf("seeding orders: %v", err)
	}
	if _, err := d.Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "cust", Value: 1}}}); err != nil {
		t.Fatalf("seeding an index: %v", err)
	}
}

// writer applies a seeded random mix of inserts, updates, replaces and
// deletes to two collections until stopped.
type writer struct {
	cl     *mongo.Client
	db     string
	rng    *rand.Rand
	nextID int
	ids    []int
	ops    atomic.Int64
	stopc  chan struct{}
	done   chan struct{}
	err    error
	errMu  sync.Mutex
}

func startWriter(ctx context.Context, cl *mongo.Client, db string, seed uint64, firstID int) *writer {
	w := &writer{cl: cl, db: db, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), nextID: firstID,
		stopc: make(chan struct{}), done: make(chan struct{})}
	for i := range seedItems {
		w.ids = append(w.ids, i)
	}
	go w.run(ctx)
	return w
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	colls := []string{"items", "orders"}
	for {
		select {
		case <-w.stopc:
			return
		case <-ctx.Done():
			return
		default:
		}
		c := w.cl.Database(w.db).Collection(colls[w.rng.IntN(len(colls))])
		id := w.ids[w.rng.IntN(len(w.ids))]
		var err error
		switch r := w.rng.IntN(10); {
		case r < 4:
			_, err = c.InsertOne(ctx, bson.D{{Key: "_id", Value: w.nextID}, {Key: "v", Value: r}, {Key: "s", Value: "live"},
				{Key: "tags", Value: bson.A{w.rng.IntN(100)}}})
			w.ids = append(w.ids, w.nextID)
			w.nextID++
		case r < 7:
			_, err = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
				{Key: "$set", Value: bson.D{{Key: "v", Value: w.rng.IntN(1000)}, {Key: "sub.y", Value: "upd"}}},
				{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}},
				{Key: "$push", Value: bson.D{{Key: "tags", Value: w.rng.IntN(100)}}}})
		case r < 8:
			_, err = c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "v", Value: -1}, {Key: "s", Value: "replaced"}},
				options.Replace().SetUpsert(true))
		default:
			_, err = c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.errMu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.errMu.Unlock()
			return
		}
		w.ops.Add(1)
		time.Sleep(3 * time.Millisecond)
	}
}

// stop ends the writer and returns its first error.
func (w *writer) stop() error {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// converged checks with pkg/verify that every collection of db on src equals
// its copy on dst (documents, indexes, options).
func converged(t *testing.T, ctx context.Context, src, dst *mongo.Client, db string, minPairs int) {
	t.Helper()
	start := time.Now()
	pairs, err := verify.ListPairs(ctx, src, func(d, _ string) bool { return d == db }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) < minPairs {
		t.Fatalf("verify: %d collections in %s, want at least %d", len(pairs), db, minPairs)
	}
	var docs int64
	for _, p := range pairs {
		r := verify.Namespace(ctx, src, dst, p, verify.Options{})
		if !r.Equal() {
			t.Errorf("verify %s: %s", p, r.Summary())
		}
		docs += r.SourceCount
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("verify: %d collections, %d documents equal (%v)", len(pairs), docs, time.Since(start).Round(time.Millisecond))
}

// userWritesRefused checks that an ordinary write to cl fails (write blocking on).
func userWritesRefused(t *testing.T, ctx context.Context, cl *mongo.Client, db, name string) {
	t.Helper()
	_, err := cl.Database(db).Collection("blocked_probe").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	if err == nil {
		t.Fatalf("a user write to %s succeeded while user writes should be blocked there", name)
	}
	t.Logf("user write to %s refused as expected: %v", name, err)
}

// TestLifecycle is reversible, so it blocks user writes on both sides (as
// mongosync requires), on servers of its own.
func TestLifecycle(t *testing.T) {
	ctx := testenv.Context(t, 25*time.Minute)
	h := newHarness(t, ctx, true)
	begin := time.Now()
	phase := func(name string) func() {
		s := time.Now()
		return func() {
			t.Logf("phase %s: %v (total %v)", name, time.Since(s).Round(time.Millisecond), time.Since(begin).Round(time.Second))
		}
	}

	// IDLE: a restart changes nothing; nothing but start is allowed.
	done := phase("kill -9 in IDLE")
	h.restart(control.Idle, h.src, h.snk)
	h.waitSource("still IDLE after kill -9", 2*time.Minute, stateIs("IDLE"))
	h.waitSink("still IDLE after kill -9", 2*time.Minute, func(p map[string]any) bool { return str(p, "state") == "IDLE" && !flag(p, "running") })
	for _, a := range []string{"pause", "resume", "commit", "reverse"} {
		h.refused("/api/v1/"+a, nil, "IDLE")
	}
	done()

	done = phase("start + initial sync")
	startBody := map[string]any{
		"source": "cluster0", "destination": "cluster1",
		"includeNamespaces":       []map[string]any{{"database": h.db}},
		"reversible":              true,
		"enableUserWriteBlocking": "sourceAndDestination",
	}
	h.post("/api/v1/start", startBody, 200)
	h.refused("/api/v1/start", startBody, "already started")
	h.refused("/api/v1/resume", nil, "RUNNING")
	h.refused("/api/v1/reverse", nil, "COMMITTED") // reverse before commit

	w := startWriter(ctx, h.c0, h.db, 1, 100_000)
	p := h.waitSource("initial copy done, change event application", 5*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && str(p, "info") == "change event application"
	})
	if dm, _ := p["directionMapping"].(map[string]any); dm == nil || !strings.HasPrefix(str(dm, "Source"), "cluster0") {
		t.Fatalf("directionMapping %v, want Source cluster0", p["directionMapping"])
	}
	h.waitSink("RUNNING epoch 1 sink into cluster1", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && flag(p, "running") && num(p, "epoch") == 1 && str(p, "destination") == "cluster1"
	})
	for path, want := range map[string]string{"/metrics": "logbridge_sink_bulk_write_documents", "/healthz": "ok"} {
		if body := h.kapi.get(path); !strings.Contains(body, want) {
			t.Fatalf("sink GET %s: %q not in %.300s", path, want, body)
		}
	}
	done()

	done = phase("kill -9 in RUNNING")
	h.waitSink("applying (partitions assigned)", time.Minute, func(p map[string]any) bool {
		return flag(p, "running") && len(asList(p["partitions"])) > 0
	})
	h.restart(control.Running, h.src, h.snk)
	h.waitSource("RUNNING again after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && str(p, "phase") == "streaming"
	})
	h.waitSink("RUNNING again after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && flag(p, "running") && num(p, "lagRecords") >= 0 && len(asList(p["partitions"])) > 0
	})
	time.Sleep(2 * time.Second) // let writes flow through the restarted pair
	done()

	// lagTimeSeconds is the destination's lag: with the sink down and the
	// writer going on it grows with the downtime, and it falls back once the
	// sink is up again.
	done = phase("sink down in RUNNING: lagTimeSeconds")
	h.snk.Kill9()
	time.Sleep(5 * time.Second)
	p = h.waitSource("lagTimeSeconds ≥ 4 with the sink down for 5 s", 30*time.Second, func(p map[string]any) bool {
		return num(p, "lagTimeSeconds") >= 4 && num(sinkOf(p), "pendingPartitions") > 0
	})
	t.Logf("sink down: %s", brief(p))
	if lag := num(p, "lagTimeSeconds"); lag > 60 {
		t.Fatalf("lagTimeSeconds %v after 5 s of sink downtime: the lag is not measured from the first unapplied change", lag)
	}
	h.snk.Start()
	h.waitSource("lagTimeSeconds back under 3 s after the sink restarted", 2*time.Minute, func(p map[string]any) bool {
		return sinkOf(p) != nil && num(p, "lagTimeSeconds") < 3
	})
	done()

	done = phase("pause, kill -9 in PAUSED, resume")
	h.post("/api/v1/pause", nil, 200)
	h.waitSource("PAUSED", 30*time.Second, stateIs("PAUSED"))
	h.waitSink("PAUSED, no sink running", 90*time.Second, func(p map[string]any) bool {
		return str(p, "state") == "PAUSED" && !flag(p, "running")
	})
	h.refused("/api/v1/commit", nil, "PAUSED")
	h.refused("/api/v1/pause", nil, "PAUSED")
	time.Sleep(time.Second) // writes go on while paused
	h.restart(control.Paused, h.src, h.snk)
	h.waitSource("still PAUSED after kill -9", 2*time.Minute, stateIs("PAUSED"))
	h.waitSink("still PAUSED after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "PAUSED" && !flag(p, "running")
	})
	time.Sleep(2 * time.Second)
	if p, err := h.kapi.progress(); err != nil || flag(p, "running") {
		t.Fatalf("sink runs while PAUSED: %v %v", brief(p), err)
	}
	// Nothing is captured while paused: the lag is at least the pause's age.
	h.waitSource("lagTimeSeconds ≥ 2 after 3 s PAUSED", 10*time.Second, func(p map[string]any) bool {
		return str(p, "state") == "PAUSED" && num(p, "lagTimeSeconds") >= 2
	})
	h.post("/api/v1/resume", nil, 200)
	h.waitSource("RUNNING after resume", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && str(p, "phase") == "streaming"
	})
	h.waitSink("RUNNING after resume", time.Minute, func(p map[string]any) bool { return str(p, "state") == "RUNNING" && flag(p, "running") })
	time.Sleep(3 * time.Second)
	done()

	done = phase("commit epoch 1, kill -9 in COMMITTING")
	if err := w.stop(); err != nil {
		t.Fatalf("writer on cluster0: %v", err)
	}
	t.Logf("writer on cluster0: %d operations", w.ops.Load())
	h.waitSource("canCommit", 3*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	p = h.waitSource("lagTimeSeconds 0: the destination applied the whole log", time.Minute, caughtUp)
	t.Logf("caught up: %s", brief(p))
	// With the sink down, the commit writes its markers and then waits for
	// the sink: the source is killed in that wait, then the sink comes back
	// (and is killed again while it applies up to the markers).
	h.snk.Kill9()
	h.post("/api/v1/commit", nil, 200)
	h.refused("/api/v1/commit", nil, "COMMITTING")
	p = h.waitSource("COMMITTING, markers written", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTING" && p["commitClusterTime"] != nil
	})
	commitTime := fmt.Sprint(p["commitClusterTime"])
	time.Sleep(2 * time.Second)
	if st := h.controlState(); st.State != control.Committing || st.MarkerID == "" || st.SinkCommitted {
		t.Fatalf("with the sink down the commit must wait for it: control state %s, marker %q, sinkCommitted %v", st.State, st.MarkerID, st.SinkCommitted)
	}
	h.restart(control.Committing, h.src)
	h.waitSource("still COMMITTING after kill -9, same commit point", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTING" && fmt.Sprint(p["commitClusterTime"]) == commitTime
	})
	h.restart(control.Committing, h.snk)
	h.waitSink("the sink runs in COMMITTING", time.Minute, func(p map[string]any) bool {
		return str(p, "state") != "COMMITTING" || flag(p, "running")
	})
	if st := h.controlState(); st.State == control.Committing && !st.SinkCommitted {
		h.restart(control.Committing, h.snk) // in the middle of applying up to the markers
	} else {
		t.Logf("the sink applied the markers before it could be killed again (%s)", st.State)
	}
	p = h.waitSource("COMMITTED, canWrite", 3*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && flag(p, "canWrite")
	})
	t.Logf("commit 1: %s", brief(p))
	if got := fmt.Sprint(p["commitClusterTime"]); got != commitTime {
		t.Fatalf("commit point moved across the restarts: %s, first %s", got, commitTime)
	}
	h.waitSink("COMMITTED, no sink running", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && flag(p, "sinkCommitted") && !flag(p, "running")
	})
	done()
	converged(t, ctx, h.c0, h.c1, h.db, 2)
	userWritesRefused(t, ctx, h.c0, h.db, "cluster0 (the committed source)")

	done = phase("kill -9 in COMMITTED")
	h.refused("/api/v1/commit", nil, "COMMITTED")
	h.refused("/api/v1/pause", nil, "COMMITTED")
	h.refused("/api/v1/start", startBody, "already started")
	h.restart(control.Committed, h.src, h.snk)
	h.waitSource("still COMMITTED after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && flag(p, "canWrite")
	})
	h.waitSink("still COMMITTED after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && !flag(p, "running")
	})
	done()

	done = phase("reverse + writes on cluster1, kill -9 of each service in RUNNING epoch 2")
	h.post("/api/v1/reverse", nil, 200)
	p = h.waitSource("RUNNING epoch 2 from cluster1", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && num(p, "epoch") == 2 && str(p, "phase") == "streaming"
	})
	if dm, _ := p["directionMapping"].(map[string]any); dm == nil || !strings.HasPrefix(str(dm, "Source"), "cluster1") || !strings.HasPrefix(str(dm, "Destination"), "cluster0") {
		t.Fatalf("directionMapping after reverse %v, want cluster1 → cluster0", p["directionMapping"])
	}
	h.refused("/api/v1/reverse", nil, "RUNNING")
	epoch2Sink := func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && flag(p, "running") && num(p, "epoch") == 2 && str(p, "destination") == "cluster0" &&
			strings.HasSuffix(str(p, "topicPrefix"), "-e2")
	}
	h.waitSink("RUNNING epoch 2 sink into cluster0", time.Minute, epoch2Sink)
	w2 := startWriter(ctx, h.c1, h.db, 2, 200_000)
	var fresh []any
	for i := range 50 {
		fresh = append(fresh, bson.D{{Key: "_id", Value: i}, {Key: "epoch", Value: 2}})
	}
	if _, err := h.c1.Database(h.db).Collection("fresh").InsertMany(ctx, fresh); err != nil {
		t.Fatalf("writing a new collection on cluster1: %v", err)
	}
	// Each service alone, in the reversed epoch (the source resumes from its
	// own state, not again from the epoch's start time).
	time.Sleep(2 * time.Second)
	h.restart(control.Running, h.src)
	h.waitSource("RUNNING epoch 2 again after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && num(p, "epoch") == 2 && str(p, "phase") == "streaming"
	})
	time.Sleep(2 * time.Second)
	h.restart(control.Running, h.snk)
	h.waitSink("RUNNING epoch 2 sink again after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return epoch2Sink(p) && len(asList(p["partitions"])) > 0
	})
	time.Sleep(2 * time.Second)
	if err := w2.stop(); err != nil {
		t.Fatalf("writer on cluster1: %v", err)
	}
	t.Logf("writer on cluster1: %d operations", w2.ops.Load())
	done()

	done = phase("commit epoch 2")
	h.waitSource("canCommit (epoch 2)", 3*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.waitSource("lagTimeSeconds 0 (epoch 2)", time.Minute, caughtUp)
	h.post("/api/v1/commit", nil, 200)
	h.waitSource("COMMITTED epoch 2", 3*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && num(p, "epoch") == 2 && flag(p, "canWrite")
	})
	h.waitSink("COMMITTED epoch 2", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && num(p, "epoch") == 2 && flag(p, "sinkCommitted")
	})
	done()
	converged(t, ctx, h.c1, h.c0, h.db, 3)
	if n, err := h.c0.Database(h.db).Collection("fresh").CountDocuments(ctx, bson.D{}); err != nil || n != 50 {
		t.Fatalf("cluster0 has %d documents of the collection created on cluster1 after the reversal (%v), want 50", n, err)
	}
	userWritesRefused(t, ctx, h.c1, h.db, "cluster1 (the source of epoch 2, committed)")
	if _, err := h.c0.Database(h.db).Collection("after").InsertOne(ctx, bson.D{{Key: "ok", Value: true}}); err != nil {
		t.Fatalf("cluster0 is not writable after the second commit: %v", err)
	}

	// REVERSING lasts only until the source acts on the reverse event, so
	// the test stops there the only way a real run can: the source dies
	// after recording the event (written here exactly as POST /reverse
	// writes it) and before acting on it. The sink is killed in that state,
	// then the source comes back in it and must finish the reversal.
	done = phase("second reversal, kill -9 in REVERSING")
	h.src.Kill9()
	if err := h.clog.Append(ctx, control.Event{Type: control.EvReverse}); err != nil {
		t.Fatal(err)
	}
	h.waitSink("REVERSING, no sink running", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "REVERSING" && !flag(p, "running")
	})
	h.restart(control.Reversing, h.snk)
	h.waitSink("still REVERSING after kill -9", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "REVERSING" && !flag(p, "running")
	})
	h.restart(control.Reversing, h.src)
	p = h.waitSource("RUNNING epoch 3 from cluster0", 2*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && num(p, "epoch") == 3 && str(p, "phase") == "streaming"
	})
	if dm, _ := p["directionMapping"].(map[string]any); dm == nil || !strings.HasPrefix(str(dm, "Source"), "cluster0") || !strings.HasPrefix(str(dm, "Destination"), "cluster1") {
		t.Fatalf("directionMapping after the second reverse %v, want cluster0 → cluster1", p["directionMapping"])
	}
	h.waitSink("RUNNING epoch 3 sink into cluster1", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "RUNNING" && flag(p, "running") && num(p, "epoch") == 3 && str(p, "destination") == "cluster1" &&
			strings.HasSuffix(str(p, "topicPrefix"), "-e3")
	})
	w3 := startWriter(ctx, h.c0, h.db, 3, 300_000)
	time.Sleep(3 * time.Second)
	if err := w3.stop(); err != nil {
		t.Fatalf("writer on cluster0 (epoch 3): %v", err)
	}
	t.Logf("writer on cluster0 (epoch 3): %d operations", w3.ops.Load())
	done()

	// Both killed right after the commit request: wherever the commit was
	// (markers written or not), the restarted pair completes it.
	done = phase("commit epoch 3, kill -9 of both right after the request")
	h.waitSource("canCommit (epoch 3)", 3*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.post("/api/v1/commit", nil, 200)
	h.restart(control.Committing, h.src, h.snk)
	h.waitSource("COMMITTED epoch 3", 3*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && num(p, "epoch") == 3 && flag(p, "canWrite")
	})
	h.waitSink("COMMITTED epoch 3", time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && num(p, "epoch") == 3 && flag(p, "sinkCommitted") && !flag(p, "running")
	})
	done()
	converged(t, ctx, h.c0, h.c1, h.db, 3)
	h.checkRestartCoverage()
	t.Logf("lifecycle complete in %v", time.Since(begin).Round(time.Second))
}

// TestCommitNotReversible commits a sync started without "reversible" and
// checks that reverse is refused with the reason.
func TestCommitNotReversible(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, false)
	h.post("/api/v1/start", map[string]any{
		"source": "cluster0", "destination": "cluster1",
		"includeNamespaces": []map[string]any{{"database": h.db}},
	}, 200)
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.post("/api/v1/commit", nil, 200)
	h.waitSource("COMMITTED", 3*time.Minute, func(p map[string]any) bool { return str(p, "state") == "COMMITTED" })
	converged(t, ctx, h.c0, h.c1, h.db, 2)
	h.refused("/api/v1/reverse", nil, "reversible")
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
