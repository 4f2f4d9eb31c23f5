package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// BenchmarkCatchUp (issue 21, item 3): the change stream catching up on a
// backlog, source → Kafka → destination, next to the snapshot of the same
// documents.
//
// The pipeline first copies empty collections and streams; then the source
// connector stops and LOGBRIDGE_CATCHUP_EVENTS (default 100,000) change
// events are written into LOGBRIDGE_BENCH_COLLS collections: 60% inserts
// (unordered insertMany of 1000), then 25% updates ($set on existing
// documents, one updateMany per collection: one event per document), then
// 15% deletes (one deleteMany per collection). The source connector starts
// again (the sink ran all along) and the catch-up time runs from its
// "change stream open" to the moment the destination holds the final state
// (every collection's count, and every updated document's new field). Then
// the final documents are copied by a snapshot into a new topic prefix and a
// new sink (started once the snapshot is planned), timed from "snapshot
// starting" to the same final state.
//
// It reports events/s against snapshot docs/s, the source connector's CPU
// per event (its whole process, start-up included) against its CPU per
// copied document, the sink's the same way, each process's peak RSS, and
// (private servers) the destination server's CPU per event and per
// document with the cores it used: where the destination needs more than
// the catch-up/snapshot ratio allows, it sets the pace.
//
// Its servers are its own by default (catchUpEnv): Kafka is shared, the
// source and destination are a private pair.
//
// LOGBRIDGE_CATCHUP_WARMUP_ROUNDS (default 1) whole rounds run first,
// printed and not counted: the servers are JVMs, several times slower
// until their JIT compilers have caught up (15,000 inserts, 6,250 $set
// updates and 3,750 deletes in bulk writes of 500 on a just started
// mongo-java-server: 74, 189 and 49 µs per document; the same again right
// after: 29, 33 and 29), and the catch-up, which comes first in a round,
// would pay for it and the snapshot not. A warm-up of bulk writes alone
// (10,000 documents) was not enough: the first measured round's catch-up
// still cost the destination 53 µs of CPU per event against 33–40 in the
// next two, and its ratio was the lowest of the three in most runs
// (docs/benchmarks.md).
func BenchmarkCatchUp(b *testing.B) {
	env, cpu := catchUpEnv(b)
	sz := benchSizes()
	events := envInt("LOGBRIDGE_CATCHUP_EVENTS", 100_000)
	rounds := envInt("LOGBRIDGE_CATCHUP_ROUNDS", 3)
	src, dst := pipeline(b, env)
	for r := range envInt("LOGBRIDGE_CATCHUP_WARMUP_ROUNDS", 1) {
		runCatchUp(b, env, src, dst, cpu, sz, events, fmt.Sprintf("warm-up_%d", r))
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var rs []catchUpRound
		for r := 0; r < rounds; r++ {
			rs = append(rs, runCatchUp(b, env, src, dst, cpu, sz, events, fmt.Sprintf("%d_%d", it, r)))
		}
		m := medianRound(rs)
		ratios := make([]string, len(rs))
		for i, r := range rs {
			ratios[i] = fmt.Sprintf("%.0f%%", r.ratio())
		}
		b.ReportMetric(m.evRate, "catchup_events/s")
		b.ReportMetric(m.docRate, "snapshot_docs/s")
		b.ReportMetric(m.ratioMedian, "catchup/snapshot_%")
		b.ReportMetric(m.srcEvUS, "source_cpu_us/event")
		b.ReportMetric(m.srcDocUS, "source_cpu_us/doc")
		b.ReportMetric(m.sinkEvUS, "sink_cpu_us/event")
		b.ReportMetric(m.sinkDocUS, "sink_cpu_us/doc")
		for i, srv := range servers {
			if m.srvEv[i] >= 0 {
				b.ReportMetric(m.srvEv[i], srv.metric+"_cpu_us/event")
				b.ReportMetric(m.srvDoc[i], srv.metric+"_cpu_us/doc")
			}
		}
		b.ReportMetric(m.srcRSS, "source_peak_rss_MiB")
		b.ReportMetric(m.sinkRSS, "sink_peak_rss_MiB")
		fmt.Printf("SUMMARY catch-up, median of %d rounds: ratio %.0f%% (rounds %s; goal ≥ 90%%) | catch-up %.0f events/s, snapshot %.0f docs/s | source CPU %.1f µs/event vs %.1f µs/doc (goal ≤ 2×) | peak RSS source %.0f, sink %.0f MiB\n",
			len(rs), m.ratioMedian, strings.Join(ratios, " / "), m.evRate, m.docRate, m.srcEvUS, m.srcDocUS, m.srcRSS, m.sinkRSS)
	}
}

// catchUpRound is what one round of BenchmarkCatchUp measured.
type catchUpRound struct {
	evRate, docRate     float64 // catch-up events/s, snapshot docs/s
	srcEvUS, srcDocUS   float64 // source connector CPU per event, per document (µs)
	sinkEvUS, sinkDocUS float64
	srvEv, srvDoc       serverUS // the servers' CPU per event, per document
	srcRSS, sinkRSS     float64  // peak of both phases, MiB
}

func (r catchUpRound) ratio() float64 { return 100 * r.evRate / r.docRate }

// roundMedians are the medians of the rounds' figures (the ratio's median
// taken over the rounds' ratios), with the peak RSS the largest of all.
type roundMedians struct {
	catchUpRound
	ratioMedian float64
}

func medianRound(rs []catchUpRound) roundMedians {
	med := func(f func(catchUpRound) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	m := roundMedians{ratioMedian: med(catchUpRound.ratio)}
	m.evRate = med(func(r catchUpRound) float64 { return r.evRate })
	m.docRate = med(func(r catchUpRound) float64 { return r.docRate })
	m.srcEvUS = med(func(r catchUpRound) float64 { return r.srcEvUS })
	m.srcDocUS = med(func(r catchUpRound) float64 { return r.srcDocUS })
	m.sinkEvUS = med(func(r catchUpRound) float64 { return r.sinkEvUS })
	m.sinkDocUS = med(func(r catchUpRound) float64 { return r.sinkDocUS })
	for i := range servers {
		m.srvEv[i] = med(func(r catchUpRound) float64 { return r.srvEv[i] })
		m.srvDoc[i] = med(func(r catchUpRound) float64 { return r.srvDoc[i] })
	}
	for _, r := range rs {
		m.srcRSS, m.sinkRSS = max(m.srcRSS, r.srcRSS), max(m.sinkRSS, r.sinkRSS)
	}
	return m
}

// runCatchUp is one round: a fresh database, the backlog, its catch-up,
// then the snapshot of the final documents. It prints the round's summary.
func runCatchUp(b *testing.B, env testenv.Env, src, dst *mongo.Client, cpu func() serverCPU, sz sizes, events int, round string) catchUpRound {
	b.Helper()
	ctx := context.Background()
	db := fmt.Sprintf("logbridge_catchup_%d_%s", time.Now().Unix(), round)
	defer func() { // each round's documents go: the private servers hold them in memory
		_ = src.Database(db).Drop(context.Background())
		_ = dst.Database(db).Drop(context.Background())
	}()
	w := newBacklog(sz, events)
	// One document per collection (_id -1), which the first snapshot copies.
	for c := 0; c < sz.colls; c++ {
		if _, err := src.Database(db).Collection(collName(c)).InsertOne(ctx, bson.D{{Key: "_id", Value: int64(-1)}}); err != nil {
			b.Fatal(err)
		}
	}

	// 1. The pipeline, streaming an empty database.
	prefix := testenv.TopicPrefix(b)
	p := startSnapshotSource(b, env, prefix, db, sz)
	p.waitLog(b, "phase=streaming", 5*time.Minute)
	sk := startSinkProc(b, env, prefix, sz.par)
	waitFor(b, "the first snapshot on the destination", sk, func() bool {
		return countDocs(ctx, dst, db, sz) >= int64(sz.colls)
	})
	p.stop()

	// 2. The backlog, written while the source connector is stopped.
	t0 := time.Now()
	w.write(b, src.Database(db))
	b.Logf("wrote %d events (%d inserts, %d updates, %d deletes) in %s", w.events(), w.inserts, w.updates, w.deletes, time.Since(t0).Round(time.Millisecond))

	// 3. Catch up.
	sinkCPU0, _ := sk.usage()
	cpu0 := cpu()
	p = startSource(b, env, prefix, "--include", db+".*", "--partitions", "4", "--log-level", "info")
	profiled := profile(b, "catchup", 10*time.Second, map[string]*proc{"source": p, "sink": sk})
	stopHeap := heapAtPeak(b, "catchup-sink", sk)
	_, openAt := p.waitLog(b, "change stream open", 2*time.Minute)
	stopTrace := traceCatchUp(p, sk, openAt)
	doneAt := w.waitFinal(b, dst.Database(db), sk)
	cpu1 := cpu()
	stopHeap()
	stopTrace()
	if err := p.exited(); err != nil {
		b.Fatalf("the source connector stopped during the catch-up: %v", err)
	}
	srcCPU, srcRSS := p.usage()
	sinkCPU1, sinkRSS := sk.usage()
	profiled()
	traceLog(p)
	p.stop()
	sk.stop()
	catchUp := doneAt.Sub(openAt)
	nev := w.events()
	evRate := float64(nev) / catchUp.Seconds()
	srcEvUS := float64(srcCPU.Microseconds()) / float64(nev)
	sinkEvUS := float64((sinkCPU1 - sinkCPU0).Microseconds()) / float64(nev)

	// 4. The snapshot of the same (final) documents.
	_ = dst.Database(db).Drop(ctx)
	prefix2 := testenv.TopicPrefix(b) + "s"
	// As in BenchmarkEndToEndVsDirectCopy: the sink starts once the
	// topics exist (a sink started before them finds them only at
	// its next metadata refresh, up to 5 s later: time to first
	// document, not throughput), the time runs from "snapshot
	// starting".
	cpu2 := cpu()
	p2 := startSnapshotSource(b, env, prefix2, db, sz)
	p2.waitLog(b, "snapshot planned", 5*time.Minute)
	sk2 := startSinkProc(b, env, prefix2, sz.par)
	_, snapAt := p2.waitLog(b, "snapshot starting", 5*time.Minute)
	snapDone := w.waitFinal(b, dst.Database(db), sk2)
	cpu3 := cpu()
	snapSrcCPU, snapSrcRSS := p2.usage()
	snapSinkCPU, snapSinkRSS := sk2.usage()
	p2.stop()
	sk2.stop()
	deleteTopics(env, prefix, prefix2)
	snap := snapDone.Sub(snapAt)
	docs := w.finalDocs()
	docRate := float64(docs) / snap.Seconds()
	srcDocUS := float64(snapSrcCPU.Microseconds()) / float64(docs)
	sinkDocUS := float64(snapSinkCPU.Microseconds()) / float64(docs)

	res := catchUpRound{evRate: evRate, docRate: docRate, srcEvUS: srcEvUS, srcDocUS: srcDocUS, sinkEvUS: sinkEvUS, sinkDocUS: sinkDocUS,
		srvEv: cpu1.perItem(cpu0, nev), srvDoc: cpu3.perItem(cpu2, docs),
		srcRSS: float64(max(srcRSS, snapSrcRSS)) / (1 << 20), sinkRSS: float64(max(sinkRSS, snapSinkRSS)) / (1 << 20)}
	// Where a server needs more CPU per event than per document, with
	// the cores it had in the snapshot it allows docUS/evUS of the
	// snapshot's rate.
	srvLine := ""
	for i, srv := range servers {
		if ev, doc := res.srvEv[i], res.srvDoc[i]; ev >= 0 {
			srvLine += fmt.Sprintf(" | %s CPU %.1f µs/event (%.2f cores) vs %.1f µs/doc (%.2f cores): allows %.0f%%",
				srv.name, ev, (cpu1[i]-cpu0[i]).Seconds()/catchUp.Seconds(), doc, (cpu3[i]-cpu2[i]).Seconds()/snap.Seconds(), 100*doc/ev)
		}
	}
	fmt.Printf("SUMMARY catch-up round %s: %d events (%d inserts, %d updates, %d deletes) in %d collections, parallelism %d | catch-up %s: %.0f events/s | snapshot of the %d final documents %s: %.0f docs/s | ratio %.0f%% (goal ≥ 90%%) | source CPU %.1f µs/event vs %.1f µs/doc (%.1f×, goal ≤ 2×) | sink CPU %.1f µs/event vs %.1f µs/doc | peak RSS source %.0f / %.0f MiB, sink %.0f / %.0f MiB (catch-up / snapshot)%s\n",
		round, nev, w.inserts, w.updates, w.deletes, sz.colls, sz.par, catchUp.Round(time.Millisecond), evRate, docs, snap.Round(time.Millisecond), docRate,
		res.ratio(), srcEvUS, srcDocUS, srcEvUS/srcDocUS, sinkEvUS, sinkDocUS,
		float64(srcRSS)/(1<<20), float64(snapSrcRSS)/(1<<20), float64(sinkRSS)/(1<<20), float64(snapSinkRSS)/(1<<20), srvLine)
	return res
}

// catchUpEnv is the benchmark's servers. By default
// (LOGBRIDGE_CATCHUP_SERVERS=private) a source and a destination of its own
// (testenv.Private: mongo-java-server's memory back end behind the shim built
// from this tree, on free ports), because on the shared stack the ratio
// measured the test servers more than the pipeline: the shared destination
// is the h2 back end, every update and delete costs the shim reads around
// the write, the shared source's cluster-wide stream carries every other
// client's writes, and the shared shims run whatever build started the
// stack. Both phases (catch-up and snapshot) use the same pair, so the ratio
// stays a like-for-like comparison. The destination's shim runs with
// --writes-only (mongoshim.Config.WritesOnly): nothing reads its change
// stream here, and recording events (reading the documents before and after
// every update and delete) made the sink's $set cost the test destination
// three times an insert, a cost a mongod does not have; the source's shim
// records events as always. LOGBRIDGE_CATCHUP_SERVERS=shared runs on
// SOURCE_URI and DEST_URI (else the stack's), like the other benchmarks.
// docs/benchmarks.md has the measurements behind this.
//
// cpu reads the CPU time the servers' processes have used so far.
func catchUpEnv(b *testing.B) (env testenv.Env, cpu func() serverCPU) {
	b.Helper()
	env = testenv.New(b)
	var pair testenv.PrivatePair
	switch v := os.Getenv("LOGBRIDGE_CATCHUP_SERVERS"); v {
	case "", "private":
		pair = testenv.Private(b, "--writes-only")
		env.SourceURI, env.DestURI = pair.SourceURI, pair.DestURI
	case "shared":
	default:
		b.Fatalf("LOGBRIDGE_CATCHUP_SERVERS=%q: use private (the default: a source and a destination of the benchmark's own) or shared (SOURCE_URI and DEST_URI, else the local stack's)", v)
	}
	sum := func(role string, ps []*procs.Proc) time.Duration {
		if len(ps) == 0 {
			return -1
		}
		var d time.Duration
		for _, p := range ps {
			cpu, ok := procCPU(strconv.Itoa(p.Pid()))
			if !ok {
				b.Fatalf("reading the CPU time of the %s's process %d", role, p.Pid())
			}
			d += cpu
		}
		return d
	}
	return env, func() serverCPU {
		c := serverCPU{srvDest: sum("destination", pair.DestProcs), srvSource: sum("source", pair.SourceProcs), srvKafka: -1}
		if pid, err := stackPID("kafka/kafka.pid"); err == nil {
			if d, ok := procCPU(pid); ok {
				c[srvKafka] = d
			}
		}
		return c
	}
}

// servers are the processes whose CPU the catch-up reads besides the
// connectors: the private pair's destination and source (server and shim
// each) and the local stack's Kafka broker (shared: other benchmarks' work
// would be in it, so a run on a busy stack shows it). Indexed by srvDest,
// srvSource, srvKafka.
var servers = [...]struct{ name, metric string }{
	{"destination server", "dest_server"},
	{"source server", "source_server"},
	{"Kafka", "kafka"},
}

const (
	srvDest = iota
	srvSource
	srvKafka
)

// serverCPU is the CPU time each server's processes used; -1: unknown
// (shared MongoDB servers, a broker not started by scripts/stack.sh).
type serverCPU [len(servers)]time.Duration

// serverUS is the CPU each server used per item (event or document), in
// µs; -1 where unknown.
type serverUS [len(servers)]float64

// perItem is the CPU each server used between c0 and c1 per item.
func (c1 serverCPU) perItem(c0 serverCPU, n int64) serverUS {
	var us serverUS
	for i := range c1 {
		us[i] = -1
		if c0[i] >= 0 && c1[i] >= 0 {
			us[i] = float64((c1[i] - c0[i]).Microseconds()) / float64(n)
		}
	}
	return us
}

// backlog is the catch-up benchmark's workload, per collection: documents
// [0, inserts) inserted, [0, updates) updated with {v: 1}, [inserts-deletes,
// inserts) deleted; the document -1 was there before.
type backlog struct {
	sz                        sizes
	inserts, updates, deletes int // per collection
}

func newBacklog(sz sizes, events int) *backlog {
	per := max(events/sz.colls, 20)
	return &backlog{sz: sz, inserts: per * 60 / 100, updates: per * 25 / 100, deletes: per * 15 / 100}
}

func (w *backlog) events() int64 {
	return int64(w.sz.colls * (w.inserts + w.updates + w.deletes))
}

func (w *backlog) finalDocs() int64 { return int64(w.sz.colls * (w.inserts - w.deletes + 1)) }

// write runs the workload, one writer per collection.
func (w *backlog) write(b *testing.B, db *mongo.Database) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, w.sz.colls)
	for c := 0; c < w.sz.colls; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			coll := db.Collection(collName(c))
			for lo := 0; lo < w.inserts; lo += 1000 {
				docs := make([]any, 0, 1000)
				for i := lo; i < min(lo+1000, w.inserts); i++ {
					docs = append(docs, benchDoc(i))
				}
				if _, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
					errs <- fmt.Errorf("inserting into %s: %w", collName(c), err)
					return
				}
			}
			if _, err := coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int64(0)}, {Key: "$lt", Value: int64(w.updates)}}}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(1)}}}}); err != nil {
				errs <- fmt.Errorf("updating %s: %w", collName(c), err)
				return
			}
			if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int64(w.inserts - w.deletes)}}}}); err != nil {
				errs <- fmt.Errorf("deleting from %s: %w", collName(c), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitFinal polls (every 20 ms) until db holds the workload's final state
// and returns when it first did: every collection's estimated count, then
// (checked only once the counts match, as it scans) every updated
// document's new field.
func (w *backlog) waitFinal(b *testing.B, db *mongo.Database, sink *proc) time.Time {
	b.Helper()
	ctx := context.Background()
	want := int64(w.inserts - w.deletes + 1)
	var done time.Time
	waitFor(b, "the final state on the destination", sink, func() bool {
		at := time.Now()
		for c := 0; c < w.sz.colls; c++ {
			if n, err := db.Collection(collName(c)).EstimatedDocumentCount(ctx); err != nil || n != want {
				return false
			}
		}
		for c := 0; c < w.sz.colls; c++ {
			n, err := db.Collection(collName(c)).CountDocuments(ctx, bson.D{{Key: "v", Value: int32(1)}})
			if err != nil || n != int64(w.updates) {
				return false
			}
		}
		done = at
		return true
	})
	return done
}

// waitFor polls cond every 20 ms for up to 30 minutes; it fails when the
// sink process exits.
func waitFor(b *testing.B, what string, sink *proc, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for !cond() {
		if err := sink.exited(); err != nil {
			b.Fatalf("waiting for %s: the sink %v", what, err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s:\n%s", what, tail(strings.TrimSpace(sink.output()), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// traceCatchUp (LOGBRIDGE_BENCH_TRACE) prints, every 500 ms of the
// catch-up, how far each stage is: events captured and published by the
// source, its Kafka transactions and their total time, records consumed and
// applied by the sink, its bulk writes and their total time. Where the
// counts part shows which stage holds the rate back.
func traceCatchUp(src, sink *proc, from time.Time) (stop func()) {
	if !tracing {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s, k := src.metrics(), sink.metrics()
			fmt.Printf("trace catch-up %5.1fs: source captured %6.0f published %6.0f in %4.0f txns (%5.2f s) | sink consumed %6.0f applied %6.0f in %5.0f bulk writes (%5.2f s)\n",
				time.Since(from).Seconds(), s["logbridge_source_events_captured_total"], s["logbridge_source_events_published_total"],
				s["logbridge_source_transaction_commits_total"], s["logbridge_source_publish_latency_seconds_sum"],
				k["logbridge_sink_records_consumed_total"], k["logbridge_sink_records_applied_total"],
				k["logbridge_sink_bulk_write_seconds_count"], k["logbridge_sink_bulk_write_seconds_sum"])
		}
	}()
	return func() { close(done); <-stopped }
}
