package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/tests/testenv"
)

// BenchmarkPeerMongoKafkaConnector (issue 21, item 6; `make bench-peer`):
// logbridge and the MongoDB Kafka Connector side by side, on the same
// stack and the same data, in one run.
//
// Each round runs both pipelines, one after the other (alternating which
// goes first, so neither always finds the servers warmer), on the
// benchmark's data set (LOGBRIDGE_BENCH_COLLS × LOGBRIDGE_BENCH_DOCS ~1 KiB
// documents) plus an "events" collection of one document:
//
//   - logbridge: the source and sink connectors as two processes, started
//     together, as in the other benchmarks (4 partitions per topic, the
//     benchmark's parallelism);
//   - the peer: the MongoDB Kafka Connector 2.0.1 in one Kafka Connect
//     4.1.2 standalone worker (one JVM, run with the heap and GC flags
//     connect-standalone.sh uses), both resolved from Maven Central with
//     tests/consumers/testdata/mongo-connect/pom.xml into
//     .cache/mongo-connect-jars. Its MongoSourceConnector runs with
//     startup.mode=copy_existing (the snapshot, then the change stream from a
//     resume point taken before the copy) and writes raw BSON
//     (output.format.key/value=bson through ByteArrayConverter: lossless,
//     as logbridge's log); its MongoSinkConnector applies those change
//     events with the connector's own ChangeStreamHandler (the MongoDB
//     documentation's replication setup), into the same database name as
//     the source (FieldPathNamespaceMapper on ns). Its topics are created
//     beforehand with one partition: the source connector keys records by
//     the event's resume token, not the document key, so with more
//     partitions one document's events could be applied out of order. The
//     source connector has a single task in any case; the sink gets one.
//
// For each it measures: the time from starting the processes to the first
// document on the destination; the snapshot's end-to-end rate from that
// first document to the last (and from the start, "wall"); the CPU the
// processes used from their start until the destination held every
// document (/proc/<pid>/stat; for the JVM its start-up and JIT included,
// which a fresh deployment pays); then inserts into the events collection
// at LOGBRIDGE_LAG_RATE (default 500/s) for LOGBRIDGE_LAG_WARMUP (default
// 15s) unmeasured and LOGBRIDGE_LAG_DURATION (default 60s) measured, each
// document's lag (its appearance in a change stream on the destination
// minus its write's start, one clock; also minus the source's
// acknowledgement, which leaves out a source slow to take the write) and the
// processes' CPU per event over that window; and each process's peak RSS
// (VmHWM) over the whole run. A sample of the copied documents must be
// byte-equal on both sides and every streamed document must arrive.
//
// On a shared stack, read the lag rows with the two conditions the table
// prints: the rate the writers reached (their late ticks mean a machine too
// busy to keep the rate, and the lag then measures that), and the other
// clients' events logbridge's source read meanwhile (it reads one
// cluster-wide change stream and filters it itself; the connector, given a
// database, opens a database-level stream the server filters).
//
// LOGBRIDGE_PEER_ROUNDS (default 2) sets the rounds; the table shows the
// median with the minimum and maximum of the rounds. The benchmark runs only
// with LOGBRIDGE_BENCH_PEER=1 (make bench-peer): it downloads Kafka Connect
// on a first run and takes minutes per round, so `make bench` leaves it out.
func BenchmarkPeerMongoKafkaConnector(b *testing.B) {
	if os.Getenv("LOGBRIDGE_BENCH_PEER") != "1" {
		b.Skip("the comparison with the MongoDB Kafka Connector runs with LOGBRIDGE_BENCH_PEER=1 (make bench-peer)")
	}
	env := testenv.New(b)
	jars := peerJars(b)
	sz := benchSizes()
	rounds := envInt("LOGBRIDGE_PEER_ROUNDS", 2)
	lag := lagSettings{
		rate: envInt("LOGBRIDGE_LAG_RATE", 500),
		warm: envDuration("LOGBRIDGE_LAG_WARMUP", 15*time.Second),
		dur:  envDuration("LOGBRIDGE_LAG_DURATION", 60*time.Second),
		par:  sz.par,
	}
	db := seed(b, env, sz)
	src, dst := pipeline(b, env)
	b.Cleanup(func() { _ = dst.Database(db).Drop(context.Background()) })
	pipelines := []peerPipeline{
		{name: "logbridge", start: func(prefix string) []peerProc { return startLogbridge(b, env, prefix, db, sz) }},
		{name: "peer", start: func(prefix string) []peerProc { return startPeer(b, env, jars, prefix, db, sz) }},
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		results := map[string][]peerResult{}
		for r := 0; r < rounds; r++ {
			order := []peerPipeline{pipelines[0], pipelines[1]}
			if r%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, p := range order {
				fmt.Printf("ROUND %d %s: starting (%s)\n", r+1, p.name, time.Now().Format("15:04:05"))
				res := runPeerRound(b, env, src, dst, db, sz, lag, p)
				fmt.Printf("ROUND %d %s: %s\n", r+1, p.name, res)
				results[p.name] = append(results[p.name], res)
			}
		}
		printPeerTable(b, sz, lag, rounds, results["logbridge"], results["peer"])
	}
}

// peerPipeline is one side of the comparison: start runs its processes
// against the topic prefix (the first process's start is the run's start).
type peerPipeline struct {
	name  string
	start func(prefix string) []peerProc
}

// peerProc is a process of a pipeline with its name in the report.
type peerProc struct {
	*proc
	name string
}

// lagSettings is the change-stream lag measurement: rate inserts/s from par
// writers, warm unmeasured, then dur measured.
type lagSettings struct {
	rate      int
	warm, dur time.Duration
	par       int
}

// peerResult is one run of one pipeline.
type peerResult struct {
	firstDoc time.Duration // start → first document on the destination
	copyRate float64       // docs/s, first document → all
	wallRate float64       // docs/s, start → all
	copyCPU  time.Duration // every process, start → all documents
	// every process, first document → all documents
	copyOnlyCPU time.Duration
	peakRSS     []int64  // per process, over the whole run
	names       []string // the processes
	lagStats
}

func (r peerResult) String() string {
	var rss []string
	for i, n := range r.names {
		rss = append(rss, fmt.Sprintf("%s %.0f MiB", n, mib(r.peakRSS[i])))
	}
	return fmt.Sprintf("first document after %s | snapshot %.0f docs/s (%.0f incl. start-up), CPU %.1f s (%.1f s from the first document) | peak RSS %s | lag p50 %.0f ms p99 %.0f ms max %.0f ms (from the source's ack p50 %.0f ms p99 %.0f ms) over %d events at %.0f/s (%d missing, %d late writer ticks; %.0f events of other clients read and filtered), %.0f µs CPU per event",
		r.firstDoc.Round(time.Millisecond), r.copyRate, r.wallRate, r.copyCPU.Seconds(), r.copyOnlyCPU.Seconds(), strings.Join(rss, ", "),
		ms(r.p50), ms(r.p99), ms(r.pmax), ms(r.ack50), ms(r.ack99), r.events, r.achieved, r.missing, r.late, r.foreign, r.cpuPerEvent)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func (r peerResult) totalRSS() int64 {
	var t int64
	for _, v := range r.peakRSS {
		t += v
	}
	return t
}

// runPeerRound runs one pipeline from an empty destination and new topics:
// the snapshot of db, then the lag measurement on db.events.
func runPeerRound(b *testing.B, env testenv.Env, src, dst *mongo.Client, db string, sz sizes, lag lagSettings, p peerPipeline) peerResult {
	b.Helper()
	ctx := context.Background()
	_ = dst.Database(db).Drop(ctx)
	// The events collection starts with one document in every run (the
	// previous run's inserts would otherwise grow the next snapshot).
	events := src.Database(db).Collection("events")
	_ = events.Drop(ctx)
	if _, err := events.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(-1)}, {Key: "warm", Value: true}}); err != nil {
		b.Fatal(err)
	}
	prefix := testenv.TopicPrefix(b)
	defer deleteTopics(env, prefix)

	procs := p.start(prefix)
	start := procs[0].started
	failed := func() error {
		for _, pr := range procs {
			if err := pr.exited(); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
		return nil
	}
	defer func() {
		for _, pr := range procs {
			pr.stop()
		}
	}()
	cpu := func() time.Duration { return totalCPU(procs) }
	// As waitConverged, reading the CPU when the first document shows: the
	// copy's CPU without the start-up (for the JVM, most of its class
	// loading; its JIT keeps compiling during the copy).
	var firstAt, doneAt time.Time
	var cpuAtFirst time.Duration
	want := int64(sz.colls * sz.docs)
	for deadline := time.Now().Add(30 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		n := countDocs(ctx, dst, db, sz)
		if n > 0 && firstAt.IsZero() {
			firstAt, cpuAtFirst = time.Now(), cpu()
		}
		if n >= want {
			doneAt = time.Now()
			break
		}
		if err := failed(); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: the destination did not converge: %d of %d documents", p.name, n, want)
		}
	}
	var res peerResult
	res.copyCPU = cpu()
	res.copyOnlyCPU = res.copyCPU - cpuAtFirst
	for _, pr := range procs {
		res.names = append(res.names, pr.name)
	}
	docs := float64(sz.colls * sz.docs)
	res.firstDoc = firstAt.Sub(start)
	res.copyRate = docs / doneAt.Sub(firstAt).Seconds()
	res.wallRate = docs / doneAt.Sub(start).Seconds()

	sameSample(b, p.name, src, dst, db, sz)

	dcoll := dst.Database(db).Collection("events")
	waitFor(b, "the events collection's first document on the destination", procs[len(procs)-1].proc, func() bool {
		n, _ := dcoll.CountDocuments(ctx, bson.D{})
		return n >= 1
	})
	res.lagStats = measureLag(b, events, dcoll, lag, procs)
	if err := failed(); err != nil {
		b.Fatalf("stopped during the run: %v", err)
	}
	for _, pr := range procs {
		_, rss := pr.usage()
		res.peakRSS = append(res.peakRSS, rss)
	}
	if res.missing > 0 {
		b.Errorf("%s: %d of %d change-stream documents never reached the destination within 60 s of the end", p.name, res.missing, res.events)
	}
	return res
}

// sameSample checks that a few copied documents of each collection (the
// first, the middle and the last _id) are byte-equal on both sides: the
// counts alone would not show a pipeline that writes something else.
func sameSample(b *testing.B, name string, src, dst *mongo.Client, db string, sz sizes) {
	b.Helper()
	ctx := context.Background()
	for c := 0; c < sz.colls; c++ {
		for _, id := range []int64{0, int64(sz.docs / 2), int64(sz.docs - 1)} {
			filter := bson.D{{Key: "_id", Value: id}}
			want, err1 := src.Database(db).Collection(collName(c)).FindOne(ctx, filter).Raw()
			got, err2 := dst.Database(db).Collection(collName(c)).FindOne(ctx, filter).Raw()
			if err1 != nil || err2 != nil || !bytes.Equal(want, got) {
				b.Fatalf("%s: document %s.%s _id %d differs on the destination (source %v, destination %v):\n source %s\n destination %s",
					name, db, collName(c), id, err1, err2, want, got)
			}
		}
	}
}

// startLogbridge starts the source and the sink connector together.
func startLogbridge(b *testing.B, env testenv.Env, prefix, db string, sz sizes) []peerProc {
	b.Helper()
	s := startSnapshotSource(b, env, prefix, db, sz)
	k := startSinkProc(b, env, prefix, sz.par)
	return []peerProc{{s, "source"}, {k, "sink"}}
}

// startPeer writes the Kafka Connect worker and connector settings, creates
// the topics and starts the standalone worker with both connectors.
func startPeer(b *testing.B, env testenv.Env, jars, prefix, db string, sz sizes) []peerProc {
	b.Helper()
	colls := []string{"events"}
	for c := 0; c < sz.colls; c++ {
		colls = append(colls, collName(c))
	}
	var topics []string
	for _, c := range colls {
		topics = append(topics, prefix+"."+db+"."+c)
	}
	createTopics(b, env, topics, 1)

	dir := b.TempDir()
	worker := filepath.Join(dir, "worker.properties")
	source := filepath.Join(dir, "mongo-source.properties")
	sink := filepath.Join(dir, "mongo-sink.properties")
	log4j := filepath.Join(dir, "log4j2.properties")
	writeProps(b, worker,
		"bootstrap.servers", strings.Join(env.KafkaBrokers, ","),
		"key.converter", "org.apache.kafka.connect.converters.ByteArrayConverter",
		"value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter",
		"offset.storage.file.filename", filepath.Join(dir, "offsets"),
		"listeners", "http://"+freeAddr(b),
		"consumer.auto.offset.reset", "earliest")
	writeProps(b, source,
		"name", prefix+"-mongo-source",
		"connector.class", "com.mongodb.kafka.connect.MongoSourceConnector",
		"tasks.max", "1",
		"connection.uri", env.SourceURI,
		"database", db,
		"startup.mode", "copy_existing",
		"topic.prefix", prefix,
		"output.format.key", "bson",
		"output.format.value", "bson")
	writeProps(b, sink,
		"name", prefix+"-mongo-sink",
		"connector.class", "com.mongodb.kafka.connect.MongoSinkConnector",
		"tasks.max", "1",
		"topics", strings.Join(topics, ","),
		"connection.uri", env.DestURI,
		"database", db,
		"namespace.mapper", "com.mongodb.kafka.connect.sink.namespace.mapping.FieldPathNamespaceMapper",
		"namespace.mapper.value.database.field", "ns.db",
		"namespace.mapper.value.collection.field", "ns.coll",
		"change.data.capture.handler", "com.mongodb.kafka.connect.sink.cdc.mongodb.ChangeStreamHandler")
	// Warnings, and the connectors' own progress at info.
	writeProps(b, log4j,
		"appender.console.type", "Console",
		"appender.console.name", "stdout",
		"appender.console.layout.type", "PatternLayout",
		"appender.console.layout.pattern", "[%d] %p %m (%c)%n",
		"rootLogger.level", "warn",
		"rootLogger.appenderRef.stdout.ref", "stdout",
		"logger.mongo.name", "com.mongodb.kafka",
		"logger.mongo.level", "info")
	java, err := exec.LookPath("java")
	if err != nil {
		b.Fatal("java is not installed: the comparison runs Kafka Connect (a JDK 17 or later)")
	}
	// connect-standalone.sh's heap (KAFKA_HEAP_OPTS) and
	// kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS: what a user of the
	// distribution runs.
	args := []string{"-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + log4j,
		"-cp", jars + "/*", "org.apache.kafka.connect.cli.ConnectStandalone", worker, source, sink}
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(java, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	b.Cleanup(func() {
		p.stop()
		if b.Failed() || tracing {
			fmt.Printf("kafka connect log:\n%s\n", tail(p.output(), 8000))
		}
	})
	return []peerProc{{p, "connect"}}
}

// createTopics creates topics with n partitions (replication 1, the local
// broker's).
func createTopics(b *testing.B, env testenv.Env, topics []string, n int32) {
	b.Helper()
	cl, err := kgoClient(env)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, n, 1, nil, topics...)
	if err != nil {
		b.Fatalf("creating the peer's topics: %v", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			b.Fatalf("creating topic %s: %v", r.Topic, r.Err)
		}
	}
}

func writeProps(b *testing.B, path string, kv ...string) {
	b.Helper()
	var sb strings.Builder
	for i := 0; i < len(kv); i += 2 {
		fmt.Fprintf(&sb, "%s=%s\n", kv[i], kv[i+1])
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

// peerJars resolves Kafka Connect and the MongoDB Kafka Connector from
// Maven Central with mvn (tests/consumers/testdata/mongo-connect/pom.xml,
// the pom tests/consumers runs the connector's sink from) into
// <repo>/.cache/mongo-connect-jars, once per pom content; both packages
// share that directory and its stamp.
func peerJars(b *testing.B) string {
	b.Helper()
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is not installed: the comparison with the MongoDB Kafka Connector needs it to fetch and run Kafka Connect (install a JDK 17+ and Maven)", tool)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	pom := filepath.Join(root, "tests", "consumers", "testdata", "mongo-connect", "pom.xml")
	want, err := os.ReadFile(pom)
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, ".cache", "mongo-connect-jars")
	stamp := filepath.Join(dir, "pom.resolved")
	if have, err := os.ReadFile(stamp); err == nil && bytes.Equal(have, want) {
		return dir
	}
	_ = os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", pom,
		"org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
		"-DoutputDirectory="+dir, "-DincludeScope=runtime")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("resolving Kafka Connect and the MongoDB Kafka Connector from Maven Central (mvn -f %s): %v\n%s\ncheck that Maven can reach Maven Central (a proxy in ~/.m2/settings.xml)", pom, err, out)
	}
	if err := os.WriteFile(stamp, want, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// lagStats is one lag measurement.
type lagStats struct {
	p50, p99, pmax        time.Duration // from the write's start
	ack50, ack99          time.Duration // from the source's acknowledgement
	events, missing, late int64         // late: writer ticks more than one interval late
	achieved              float64       // inserts/s written
	foreign               float64       // other clients' events logbridge's source read and filtered
	cpuPerEvent           float64       // µs, every process
}

// measureLag inserts into coll at lag.rate (first lag.warm unmeasured, with
// negative _ids, then lag.dur measured), watches dcoll on the destination
// and returns each measured document's lag from its write's start (what a
// user sees) and from the source's acknowledgement (which leaves out a
// source server slow to take the write: on a busy machine the writers fall
// behind, counted as late ticks), and the CPU procs used per measured event.
// totalCPU is the CPU the processes used so far, together.
func totalCPU(procs []peerProc) time.Duration {
	var t time.Duration
	for _, p := range procs {
		c, _ := p.usage()
		t += c
	}
	return t
}

func measureLag(b *testing.B, coll, dcoll *mongo.Collection, lag lagSettings, procs []peerProc) lagStats {
	b.Helper()
	ctx := context.Background()
	arrived := watchArrivals(b, ctx, dcoll)
	var mu sync.Mutex // ackedAt
	ackedAt := map[int64]time.Time{}
	var late atomic.Int64
	interval := time.Duration(float64(lag.par) / float64(lag.rate) * float64(time.Second))
	paced := func(d time.Duration, measured bool) (int64, time.Duration) {
		var seq atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		stopAt := start.Add(d)
		for w := 0; w < lag.par; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := time.Now().Add(time.Duration(w) * interval / time.Duration(lag.par))
				for {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					} else if d < -interval && measured {
						late.Add(1)
					}
					if time.Now().After(stopAt) {
						return
					}
					id := seq.Add(1) - 1
					if !measured {
						id = -2 - id
					}
					doc := append(benchDoc(int(id)), bson.E{Key: "ts", Value: time.Now().UnixNano()})
					if _, err := coll.InsertOne(ctx, doc); err != nil {
						b.Errorf("insert: %v", err)
						return
					}
					if measured {
						acked := time.Now()
						mu.Lock()
						ackedAt[id] = acked
						mu.Unlock()
					}
					next = next.Add(interval)
				}
			}()
		}
		wg.Wait()
		return seq.Load(), time.Since(start)
	}
	cpu := func() time.Duration { return totalCPU(procs) }
	// logbridge's source reads one cluster-wide change stream (DESIGN.md)
	// and filters the namespaces it does not sync: other clients' writes
	// on a shared stack cost it reads and CPU. The connector, given a
	// database, opens a database-level stream that the server filters.
	filtered := func() float64 {
		var n float64
		for _, p := range procs {
			if p.http != "" {
				n += p.metrics()["logbridge_source_events_filtered_total"]
			}
		}
		return n
	}
	paced(lag.warm, false)
	cpu0, filtered0 := cpu(), filtered()
	written, took := paced(lag.dur, true)
	arrived.waitFor(written, 60*time.Second)
	cpu1, filtered1 := cpu(), filtered()
	arrived.stop(ctx)

	mu.Lock()
	defer mu.Unlock()
	all := make([]time.Duration, 0, len(arrived.lag))
	var fromAck []time.Duration
	for s := int64(0); s < written; s++ {
		if l, ok := arrived.lag[s]; ok {
			all = append(all, l)
			if a, ok := ackedAt[s]; ok {
				fromAck = append(fromAck, arrived.at[s].Sub(a))
			}
		}
	}
	all, fromAck = sortedCopy(all), sortedCopy(fromAck)
	return lagStats{
		p50: percentile(all, 0.5), p99: percentile(all, 0.99), pmax: percentile(all, 1),
		ack50: percentile(fromAck, 0.5), ack99: percentile(fromAck, 0.99),
		achieved: float64(written) / took.Seconds(),
		foreign:  filtered1 - filtered0,
		events:   written, missing: written - int64(len(all)), late: late.Load(),
		cpuPerEvent: float64((cpu1 - cpu0).Microseconds()) / float64(max(written, 1)),
	}
}

// printPeerTable prints issue 21's table: for each row the median of the
// rounds (min–max when more than one) for both pipelines and the ratio of
// the medians.
func printPeerTable(b *testing.B, sz sizes, lag lagSettings, rounds int, lb, peer []peerResult) {
	type row struct {
		name   string
		unit   string
		get    func(peerResult) float64
		better int // +1: higher is better, -1: lower, 0: a condition of the run
		format string
	}
	rows := []row{
		{"snapshot, end to end (first → last document)", "docs/s", func(r peerResult) float64 { return r.copyRate }, 1, "%.0f"},
		{"snapshot incl. start-up (start → last document)", "docs/s", func(r peerResult) float64 { return r.wallRate }, 1, "%.0f"},
		{"CPU for the copy (all processes, start → last document)", "s", func(r peerResult) float64 { return r.copyCPU.Seconds() }, -1, "%.1f"},
		{"… of it from the first to the last document (start-up left out)", "s", func(r peerResult) float64 { return r.copyOnlyCPU.Seconds() }, -1, "%.1f"},
		{"CPU per copied document", "µs", func(r peerResult) float64 { return float64(r.copyCPU.Microseconds()) / float64(sz.colls*sz.docs) }, -1, "%.1f"},
		{"peak RSS, all processes", "MiB", func(r peerResult) float64 { return mib(r.totalRSS()) }, -1, "%.0f"},
		{fmt.Sprintf("change-stream lag p50 at %d/s", lag.rate), "ms", func(r peerResult) float64 { return ms(r.p50) }, -1, "%.0f"},
		{fmt.Sprintf("change-stream lag p99 at %d/s", lag.rate), "ms", func(r peerResult) float64 { return ms(r.p99) }, -1, "%.0f"},
		{"… from the source's acknowledgement, p50", "ms", func(r peerResult) float64 { return ms(r.ack50) }, -1, "%.0f"},
		{"… from the source's acknowledgement, p99", "ms", func(r peerResult) float64 { return ms(r.ack99) }, -1, "%.0f"},
		{"inserts written per second (late writer ticks: a busy machine)", "/s", func(r peerResult) float64 { return r.achieved }, 0, "%.0f"},
		{"other clients' events read by the source meanwhile (logbridge: cluster-wide stream)", "", func(r peerResult) float64 { return r.foreign }, 0, "%.0f"},
		{"CPU per streamed event (all processes)", "µs", func(r peerResult) float64 { return r.cpuPerEvent }, -1, "%.0f"},
		{"first document on the destination after start", "s", func(r peerResult) float64 { return r.firstDoc.Seconds() }, -1, "%.2f"},
	}
	cell := func(rs []peerResult, get func(peerResult) float64, format string) (string, float64) {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = get(r)
		}
		m := median(xs)
		if len(xs) == 1 {
			return fmt.Sprintf(format, m), m
		}
		sort.Float64s(xs)
		return fmt.Sprintf(format+" ("+format+"–"+format+")", m, xs[0], xs[len(xs)-1]), m
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nSUMMARY peer: logbridge vs MongoDB Kafka Connector 2.0.1 (Kafka Connect 4.1.2), %d colls × %d docs of ~1 KiB, %d round(s), lag at %d inserts/s for %s after %s; median (min–max) of the rounds\n\n",
		sz.colls, sz.docs, rounds, lag.rate, lag.dur, lag.warm)
	fmt.Fprintf(&sb, "| | unit | logbridge | MongoDB Kafka Connector | logbridge / connector |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		lc, lm := cell(lb, r.get, r.format)
		pc, pm := cell(peer, r.get, r.format)
		ratio := "–"
		if pm > 0 && lm > 0 {
			ratio = fmt.Sprintf("%.2f", lm/pm)
			switch {
			case r.better == 0:
			case lm == pm:
				ratio += " (level)"
			case (lm > pm) == (r.better > 0):
				ratio += " (logbridge better)"
			default:
				ratio += " (connector better)"
			}
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", r.name, r.unit, lc, pc, ratio)
	}
	// Peak RSS per process, the row.
	rssCell := func(rs []peerResult) string {
		if len(rs) == 0 {
			return ""
		}
		var parts []string
		for i, n := range rs[0].names {
			c, _ := cell(rs, func(r peerResult) float64 { return mib(r.peakRSS[i]) }, "%.0f")
			parts = append(parts, n+" "+c)
		}
		return strings.Join(parts, ", ")
	}
	fmt.Fprintf(&sb, "| peak RSS per process | MiB | %s | %s | |\n", rssCell(lb), rssCell(peer))
	fmt.Print(sb.String())
	for _, set := range []struct {
		name string
		rs   []peerResult
	}{{"logbridge", lb}, {"connector", peer}} {
		for _, m := range []struct {
			unit string
			get  func(peerResult) float64
		}{
			{"snapshot_docs/s", func(r peerResult) float64 { return r.copyRate }},
			{"lag_p50_ms", func(r peerResult) float64 { return ms(r.p50) }},
			{"lag_p99_ms", func(r peerResult) float64 { return ms(r.p99) }},
			{"first_doc_s", func(r peerResult) float64 { return r.firstDoc.Seconds() }},
		} {
			xs := make([]float64, len(set.rs))
			for i, r := range set.rs {
				xs[i] = m.get(r)
			}
			b.ReportMetric(median(xs), set.name+"_"+m.unit)
		}
	}
}
