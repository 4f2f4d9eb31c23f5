package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sys/unix"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/sink-connector/sink"
	"github.com/logbridge/logbridge/tests/testenv"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// sizes of the seeded data set.
type sizes struct {
	colls, docs, par int
}

func benchSizes() sizes {
	return sizes{
		colls: envInt("LOGBRIDGE_BENCH_COLLS", 4),
		docs:  envInt("LOGBRIDGE_BENCH_DOCS", 50000),
		par:   envInt("LOGBRIDGE_BENCH_PARALLELISM", 4),
	}
}

func collName(i int) string { return fmt.Sprintf("c%d", i) }

// benchDoc is a document of about 1 KiB with the usual field types.
func benchDoc(i int) bson.D {
	return bson.D{
		{Key: "_id", Value: int64(i)},
		{Key: "customer", Value: fmt.Sprintf("c-%07d", i%100000)},
		{Key: "total", Value: int64(i * 37 % 100000)},
		{Key: "createdAt", Value: bson.DateTime(1700000000000 + int64(i))},
		{Key: "paid", Value: i%3 == 0},
		{Key: "price", Value: bson.NewDecimal128(uint64(i), 1)},
		{Key: "address", Value: bson.D{{Key: "city", Value: "Lisbon"}, {Key: "zip", Value: "1100-001"}}},
		{Key: "tags", Value: bson.A{"a", "b", int32(i % 7)}},
		{Key: "notes", Value: strings.Repeat(string(rune('a'+i%26)), 840)},
	}
}

var (
	seedMu   sync.Mutex
	seededDB string
)

// seed creates the data set on the source once per process (benchmarks share
// it) and returns its database; TestMain drops it.
func seed(b *testing.B, env testenv.Env, sz sizes) string {
	b.Helper()
	seedMu.Lock()
	defer seedMu.Unlock()
	if seededDB != "" {
		return seededDB
	}
	db := fmt.Sprintf("logbridge_bench_%d", os.Getpid())
	cl := connect(b, env.SourceURI)
	ctx := context.Background()
	start := time.Now()
	for c := 0; c < sz.colls; c++ {
		for lo := 0; lo < sz.docs; lo += 1000 {
			var docs []any
			for i := lo; i < min(lo+1000, sz.docs); i++ {
				docs = append(docs, benchDoc(i))
			}
			if _, err := cl.Database(db).Collection(collName(c)).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
				b.Fatalf("seeding %s.%s: %v", db, collName(c), err)
			}
		}
	}
	b.Logf("seeded %s: %d collections × %d documents in %s", db, sz.colls, sz.docs, time.Since(start).Round(time.Millisecond))
	seededDB = db
	cleanups = append(cleanups, func() { dropSourceDB(env, db) })
	return db
}

// unseed drops the shared data set, if there is one; the next seed creates
// it again. For a benchmark that fills the source itself: the test source
// keeps every document in its JVM's heap.
func unseed(env testenv.Env) {
	seedMu.Lock()
	defer seedMu.Unlock()
	if seededDB != "" {
		dropSourceDB(env, seededDB)
		seededDB = ""
	}
}

func dropSourceDB(env testenv.Env, db string) {
	cl, err := mongo.Connect(options.Client().ApplyURI(env.SourceURI))
	if err == nil {
		_ = cl.Database(db).Drop(context.Background())
		_ = cl.Disconnect(context.Background())
	}
}

var cleanups []func()

var (
	buildMu  sync.Mutex
	binDir   string
	binaries = map[string]string{} // package → built binary
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// sourceBinary is the source connector the benchmarks run: built once from
// this tree (its packages are internal, so it runs as the binary users
// run), or LOGBRIDGE_BENCH_SOURCE_BIN, to compare another build (A/B).
func sourceBinary(b *testing.B) string {
	return binary(b, "source-connector", "LOGBRIDGE_BENCH_SOURCE_BIN")
}

// sinkBinary is the sink connector run as a process (its CPU and memory are
// then its own): built once, or LOGBRIDGE_BENCH_SINK_BIN.
func sinkBinary(b *testing.B) string {
	return binary(b, "sink-connector", "LOGBRIDGE_BENCH_SINK_BIN")
}

func binary(b *testing.B, name, env string) string {
	b.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := binaries[name]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "logbridge-bench-bin")
		if err != nil {
			b.Fatal(err)
		}
		binDir = d
	}
	out := filepath.Join(binDir, name)
	if msg, err := exec.Command("go", "build", "-o", out, "github.com/logbridge/logbridge/"+name).CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", name, err, msg)
	}
	binaries[name] = out
	return out
}

// pipeline connects to env's source and destination and builds both
// connectors, so that a benchmark of the whole pipeline pays neither
// inside its timer.
func pipeline(b *testing.B, env testenv.Env) (src, dst *mongo.Client) {
	b.Helper()
	src, dst = connect(b, env.SourceURI), connect(b, env.DestURI)
	sourceBinary(b)
	sinkBinary(b)
	return src, dst
}

func connect(b *testing.B, uri string) *mongo.Client {
	b.Helper()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetMaxPoolSize(64))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running connector process.
type proc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	started time.Time
	done    chan struct{}
	pprof   string // its --pprof-addr, when LOGBRIDGE_BENCH_PROFILE is set
	http    string // its --http-addr (/metrics)
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// profileDir (LOGBRIDGE_BENCH_PROFILE) is where the lag and catch-up
// benchmarks write CPU profiles of both connectors over their measured
// window (go tool pprof <dir>/<benchmark>-source.pprof).
var profileDir = os.Getenv("LOGBRIDGE_BENCH_PROFILE")

func startProc(b *testing.B, bin string, args []string) *proc {
	b.Helper()
	p := &proc{done: make(chan struct{}), http: freeAddr(b)}
	args = append([]string{"--http-addr", p.http}, args...)
	if profileDir != "" {
		p.pprof = freeAddr(b)
		args = append(args, "--pprof-addr", p.pprof)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	b.Cleanup(func() { p.stop() })
	return p
}

func startSource(b *testing.B, env testenv.Env, prefix string, args ...string) *proc {
	b.Helper()
	all := append([]string{"--source-uri", env.SourceURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","),
		"--topic-prefix", prefix}, args...)
	// LOGBRIDGE_BENCH_SOURCE_ARGS: extra source flags, for tuning experiments.
	all = append(all, strings.Fields(os.Getenv("LOGBRIDGE_BENCH_SOURCE_ARGS"))...)
	return startProc(b, sourceBinary(b), all)
}

// startSinkProc runs the sink connector as a process in the consumer group
// <prefix>-sink (the lag and catch-up benchmarks: its CPU and peak memory
// are then read from /proc). LOGBRIDGE_BENCH_SINK_ARGS applies as for
// startSink, each name=value as --name value.
func startSinkProc(b *testing.B, env testenv.Env, prefix string, par int, args ...string) *proc {
	b.Helper()
	all := append([]string{"--dest-uri", env.DestURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","),
		"--topic-prefix", prefix, "--group", prefix + "-sink",
		"--parallelism", strconv.Itoa(par), "--log-level", "warn"}, args...)
	for _, kv := range strings.Fields(os.Getenv("LOGBRIDGE_BENCH_SINK_ARGS")) {
		k, v, _ := strings.Cut(kv, "=")
		all = append(all, "--"+k, v)
	}
	return startProc(b, sinkBinary(b), all)
}

// exited reports the process's exit with its output, once it has exited.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("exited (%v):\n%s", p.cmd.ProcessState, tail(p.output(), 4000))
	default:
		return nil
	}
}

// usage is the CPU time (user + system) the process used so far and its
// peak resident memory, from /proc.
func (p *proc) usage() (cpu time.Duration, peakRSS int64) {
	pid := strconv.Itoa(p.cmd.Process.Pid)
	cpu, _ = procCPU(pid)
	return cpu, procPeakRSS(pid)
}

// procPeakRSS is VmHWM of /proc/<pid>/status in bytes (0 when unknown).
func procPeakRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// metrics reads the process's Prometheus metrics: each metric name (with
// its _sum/_count suffix for histograms) → the sum over its label sets. Nil
// when they cannot be read.
func (p *proc) metrics() map[string]float64 {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			name = line[:i]
			_, rest, ok = strings.Cut(line[strings.LastIndexByte(line, '}'):], " ")
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out[name] += v
		}
	}
	return out
}

// delta is after − before of one metric.
func delta(before, after map[string]float64, name string) float64 { return after[name] - before[name] }

// profile fetches a CPU profile of d from each process (with
// LOGBRIDGE_BENCH_PROFILE) into <dir>/<name>-<key>.pprof, in the
// background; wait for it with the returned func.
func profile(b *testing.B, name string, d time.Duration, procs map[string]*proc) (wait func()) {
	if profileDir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for key, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.pprof, int(d.Seconds()))
			resp, err := http.Get(url)
			// a process started just now may not listen yet
			for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				resp, err = http.Get(url)
			}
			if err != nil {
				b.Logf("profile of %s: %v", key, err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Logf("profile of %s: %v %s", key, err, resp.Status)
				return
			}
			out := filepath.Join(profileDir, name+"-"+key+".pprof")
			if err := os.WriteFile(out, body, 0o644); err != nil {
				b.Logf("profile of %s: %v", key, err)
				return
			}
			fmt.Printf("profile: %s\n", out)
		}()
	}
	return wg.Wait
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLog waits until the output has a line containing s and returns the
// time it was first seen (polled every 10 ms).
func (p *proc) waitLog(b *testing.B, s string, d time.Duration) (string, time.Time) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		out := p.output()
		if i := strings.Index(out, s); i >= 0 {
			line := out[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			return line, time.Now()
		}
		select {
		case <-p.done:
			b.Fatalf("the source connector exited:\n%s", tail(p.output(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("the source connector did not log %q within %s:\n%s", s, d, tail(p.output(), 4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

var elapsedRe = regexp.MustCompile(`elapsed=([0-9.a-zµ]+)`)

// logDuration parses elapsed=<duration> from a log line.
func logDuration(line string) time.Duration {
	m := elapsedRe.FindStringSubmatch(line)
	if m == nil {
		return 0
	}
	d, _ := time.ParseDuration(m[1])
	return d
}

// deleteTopics removes the topics of the prefixes (the benchmarks' logs are
// large and of no use afterwards).
func deleteTopics(env testenv.Env, prefixes ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgoClient(env)
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tl, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var names []string
	for _, n := range tl.Names() {
		for _, prefix := range prefixes {
			if strings.HasPrefix(n, prefix+".") {
				names = append(names, n)
				break
			}
		}
	}
	if len(names) > 0 {
		_, _ = adm.DeleteTopics(ctx, names...)
	}
}

// startSink runs the sink connector in-process until the benchmark ends,
// with its metrics in reg (nil: a registry of its own).
// failed reports the sink's error once it has stopped; stop stops it.
func startSink(b *testing.B, env testenv.Env, prefix string, par int, reg *prometheus.Registry) (failed func() error, stop func()) {
	b.Helper()
	cfg := sink.DefaultConfig()
	cfg.Kafka.Brokers = env.KafkaBrokers
	cfg.Group = prefix + "-sink"
	cfg.TopicPrefix = prefix
	cfg.DestURI = env.DestURI
	cfg.HTTP.Addr = ""
	cfg.Parallelism = par
	// LOGBRIDGE_BENCH_SINK_ARGS: sink settings for tuning experiments
	// (parallelism=N, batch-size=N, write-concern=W, flush-interval=D, and
	// the memory bounds: fetch-max-bytes=S, fetch-max-partition-bytes=S,
	// max-concurrent-fetches=N, queue-max-bytes=S; 0 lifts a bound).
	for _, kv := range strings.Fields(os.Getenv("LOGBRIDGE_BENCH_SINK_ARGS")) {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "parallelism":
			cfg.Parallelism = n
		case "batch-size":
			cfg.BatchSize = n
		case "write-concern":
			cfg.WriteConcern = v
		case "fetch-max-bytes", "fetch-max-partition-bytes", "queue-max-bytes":
			var sz config.Bytes
			if err := sz.Set(v); err != nil {
				b.Fatalf("LOGBRIDGE_BENCH_SINK_ARGS: %s=%q: %v", k, v, err)
			}
			*map[string]*config.Bytes{"fetch-max-bytes": &cfg.FetchMaxBytes, "fetch-max-partition-bytes": &cfg.FetchMaxPartitionBytes, "queue-max-bytes": &cfg.QueueMaxBytes}[k] = sz
		case "max-concurrent-fetches":
			cfg.MaxConcurrentFetches = n
		case "flush-interval":
			d, err := time.ParseDuration(v)
			if err != nil {
				b.Fatalf("LOGBRIDGE_BENCH_SINK_ARGS: flush-interval=%q: %v", v, err)
			}
			cfg.FlushInterval = d
		default:
			b.Fatalf("LOGBRIDGE_BENCH_SINK_ARGS: unknown setting %q (parallelism, batch-size, write-concern, flush-interval, fetch-max-bytes, fetch-max-partition-bytes, max-concurrent-fetches, queue-max-bytes)", k)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := sink.New(ctx, cfg, log, reg)
	if err != nil {
		cancel()
		b.Fatalf("sink.New: %v", err)
	}
	stopped := make(chan struct{})
	var runErr error
	go func() { runErr = svc.Run(ctx); close(stopped) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-stopped:
			case <-time.After(60 * time.Second):
				b.Errorf("the sink did not stop")
			}
		})
	}
	b.Cleanup(stop)
	return func() error {
		select {
		case <-stopped:
			if runErr == nil {
				return errors.New("the sink stopped")
			}
			return runErr
		default:
			return nil
		}
	}, stop
}

func kgoClient(env testenv.Env) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...))
}

// rate is docs and bytes over a duration.
type rate struct {
	docs, bytes int64
	d           time.Duration
}

// faster is the rate of the shorter run.
func faster(a, b rate) rate {
	if b.d < a.d {
		return b
	}
	return a
}

// report reports docs/s and MB/s as name_docs/s and name_MB/s.
func (r rate) report(b *testing.B, name string) {
	b.ReportMetric(r.docsPerSec(), name+"_docs/s")
	b.ReportMetric(r.mbPerSec(), name+"_MB/s")
}

func (r rate) docsPerSec() float64 { return float64(r.docs) / r.d.Seconds() }
func (r rate) mbPerSec() float64   { return float64(r.bytes) / (1 << 20) / r.d.Seconds() }
func (r rate) String() string {
	return fmt.Sprintf("%d docs %.1f MiB in %s = %.0f docs/s %.2f MiB/s", r.docs, float64(r.bytes)/(1<<20),
		r.d.Round(time.Millisecond), r.docsPerSec(), r.mbPerSec())
}

// rawRead reads every collection with par concurrent readers (one
// collection at a time each, batch size 1000) and counts documents and bytes.
// ordered reads in _id order through the _id index, as the snapshot's
// resumable ranges do.
func rawRead(b *testing.B, cl *mongo.Client, db string, sz sizes, ordered bool, each func(coll string, doc bson.Raw)) rate {
	b.Helper()
	ctx := context.Background()
	work := make(chan string, sz.colls)
	for c := 0; c < sz.colls; c++ {
		work <- collName(c)
	}
	close(work)
	var mu sync.Mutex
	var r rate
	var wg sync.WaitGroup
	errs := make(chan error, sz.par)
	start := time.Now()
	for w := 0; w < sz.par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for coll := range work {
				opts := options.Find().SetBatchSize(1000)
				if ordered {
					opts.SetHint(bson.D{{Key: "_id", Value: 1}}).SetSort(bson.D{{Key: "_id", Value: 1}})
				}
				cur, err := cl.Database(db).Collection(coll).Find(ctx, bson.D{}, opts)
				if err != nil {
					errs <- err
					return
				}
				var docs, bytes int64
				for cur.Next(ctx) {
					docs++
					bytes += int64(len(cur.Current))
					if each != nil {
						each(coll, cur.Current)
					}
				}
				if err := cur.Err(); err != nil {
					errs <- err
					return
				}
				_ = cur.Close(ctx)
				mu.Lock()
				r.docs += docs
				r.bytes += bytes
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.d = time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatalf("raw read: %v", err)
	}
	return r
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// join formats each of xs with format, comma-separated.
func join(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func sortedCopy(d []time.Duration) []time.Duration {
	out := append([]time.Duration(nil), d...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// bulkStats are a sink's bulk writes: how many, and their mean size and
// latency.
type bulkStats struct {
	writes  uint64
	docs    float64 // documents per bulk write
	seconds float64 // latency of one bulk write
}

func (s bulkStats) String() string {
	return fmt.Sprintf("bulk writes %d, %.0f documents and %.0f ms each on average", s.writes, s.docs, 1000*s.seconds)
}

// sinkBulkStats reads bulkStats from the sink's histograms in reg.
func sinkBulkStats(reg *prometheus.Registry) bulkStats {
	var s bulkStats
	s.docs, s.writes = histogramMean(reg, "logbridge_sink_bulk_write_documents")
	s.seconds, _ = histogramMean(reg, "logbridge_sink_bulk_write_seconds")
	return s
}

// histogramMean is the mean and count of the first series of a histogram.
func histogramMean(reg *prometheus.Registry, name string) (mean float64, count uint64) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() > 0 {
				return h.GetSampleSum() / float64(h.GetSampleCount()), h.GetSampleCount()
			}
		}
	}
	return 0, 0
}

// intoScratchDB runs a baseline that writes every document of sz into
// scratch on dst: it drops scratch before and after and checks the count.
func intoScratchDB(b *testing.B, dst *mongo.Client, scratch string, sz sizes, what string, run func() rate) rate {
	b.Helper()
	ctx := context.Background()
	_ = dst.Database(scratch).Drop(ctx)
	r := run()
	if n, want := countDocs(ctx, dst, scratch, sz), int64(sz.colls*sz.docs); n != want {
		b.Fatalf("%s: %d documents at the destination, want %d", what, n, want)
	}
	_ = dst.Database(scratch).Drop(ctx)
	return r
}

// startSnapshotSource starts the source connector on every collection of
// db, with the benchmark's snapshot parallelism and 4 partitions per topic.
func startSnapshotSource(b *testing.B, env testenv.Env, prefix, db string, sz sizes) *proc {
	b.Helper()
	return startSource(b, env, prefix, "--include", db+".*", "--snapshot-parallelism", strconv.Itoa(sz.par),
		"--partitions", "4", "--log-level", "info")
}

// tracing (LOGBRIDGE_BENCH_TRACE=1) prints the connector's log after each
// run and the destination's document count as it grows: the timeline that
// finds stalls (with LOGBRIDGE_BENCH_SOURCE_ARGS="--progress-interval 100ms"
// for the source's own progress).
var tracing = os.Getenv("LOGBRIDGE_BENCH_TRACE") != ""

func traceLog(p *proc) {
	if tracing {
		fmt.Printf("trace: source connector log\n%s\n", p.output())
	}
}

// stackCPU reads the CPU time (user + system) each local stack process has
// used so far, by the pid files scripts/stack.sh writes: the difference of
// two readings shows where a run's CPU went (the test machine has 2 cores,
// shared by the servers, Kafka and the connector). It returns nil when the
// stack was not started by scripts/stack.sh (LOGBRIDGE_CACHE or <repo>/.cache).
func stackCPU(connector *proc) map[string]time.Duration {
	out := map[string]time.Duration{}
	if connector != nil {
		if d, ok := procCPU(strconv.Itoa(connector.cmd.Process.Pid)); ok {
			out["connector"] = d
		}
	}
	for name, pidfile := range map[string]string{
		"kafka":         "kafka/kafka.pid",
		"source_server": "mongo/source.pid",
		"source_shim":   "mongo/source-shim.pid",
	} {
		pid, err := stackPID(pidfile)
		if err != nil {
			return nil
		}
		if d, ok := procCPU(pid); ok {
			out[name] = d
		}
	}
	if d, ok := procCPU("self"); ok {
		out["bench"] = d
	}
	return out
}

// kafkaJIT is the CPU time of the broker's JIT compiler threads (HotSpot
// names them "C1 CompilerThre…" and "C2 CompilerThre…"); 0 when the
// broker is not the local stack's.
func kafkaJIT() time.Duration {
	pid, err := stackPID("kafka/kafka.pid")
	if err != nil {
		return 0
	}
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		comm, err := os.ReadFile("/proc/" + pid + "/task/" + t.Name() + "/comm")
		if err != nil || !bytes.Contains(comm, []byte("CompilerThre")) {
			continue
		}
		if d, ok := procCPU(pid + "/task/" + t.Name()); ok {
			sum += d
		}
	}
	return sum
}

// stackPID reads a pid file of scripts/stack.sh (relative to its cache).
func stackPID(pidfile string) (string, error) {
	b, err := os.ReadFile(filepath.Join(testenv.StackCache(), pidfile))
	return strings.TrimSpace(string(b)), err
}

// procCPU is utime + stime of /proc/<pid>/stat (in clock ticks of 10 ms,
// the Linux default).
func procCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

// cpuSince is the CPU each stack process (and the connector, when not
// nil) used since before, in µs per doc.
func cpuSince(before map[string]time.Duration, docs int64, connector *proc) map[string]float64 {
	after := stackCPU(connector)
	out := map[string]float64{}
	for k, v := range after {
		if b, ok := before[k]; ok && docs > 0 {
			out[k] = float64((v - b).Microseconds()) / float64(docs)
		}
	}
	return out
}

func cpuString(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s %.2f", k, m[k])
	}
	return strings.TrimSpace(sb.String())
}

func total(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// pinning decides the placement of BenchmarkSnapshotVsRawRead. By default
// (LOGBRIDGE_BENCH_PIN unset or 1) it models a deployment's separate hosts
// on the test machine: the source server and its shim get the first half
// of the CPUs to themselves ("the source cluster"); Kafka, the raw reader
// and the connector (this process and its children) share the other half.
// Halves, so that on a bigger machine the source is not starved next to a
// pipeline that has every other core. The goal compares the pipeline with
// what the source can deliver, and in a deployment the source cluster does
// not run on the broker's or the connector's cores. LOGBRIDGE_BENCH_PIN=0
// lets every process share every CPU: the snapshot's rate is then bounded
// by the sum of their CPU costs, Kafka's included (see the CPU line of
// BenchmarkSnapshotVsRawRead).
var pinning = os.Getenv("LOGBRIDGE_BENCH_PIN")

// pinStack applies the pinned placement and undoes it when the benchmark
// ends; it reports whether it pinned. Where it cannot pin (one CPU, or
// servers that are not the local stack's), it logs why and runs unpinned,
// unless LOGBRIDGE_BENCH_PIN=1 asked for pinning explicitly: then it fails.
func pinStack(b *testing.B) bool {
	b.Helper()
	if pinning == "0" {
		return false
	}
	cannot := func(format string, args ...any) bool {
		if pinning == "1" {
			b.Fatalf(format, args...)
		}
		b.Logf("running unpinned: "+format, args...)
		return false
	}
	n := runtime.NumCPU()
	if n < 2 {
		return cannot("pinning needs at least 2 CPUs; this machine has %d (LOGBRIDGE_BENCH_PIN=0 runs unpinned)", n)
	}
	var all, first, rest unix.CPUSet
	for i := 0; i < n; i++ {
		all.Set(i)
		if i < n/2 {
			first.Set(i)
		} else {
			rest.Set(i)
		}
	}
	place := map[string]*unix.CPUSet{"mongo/source.pid": &first, "mongo/source-shim.pid": &first, "kafka/kafka.pid": &rest}
	pids := map[string]string{}
	for pidfile := range place {
		pid, err := stackPID(pidfile)
		if err != nil {
			return cannot("pinning needs the local stack's servers: %v (start it with scripts/stack.sh up, or set LOGBRIDGE_BENCH_PIN=0)", err)
		}
		pids[pidfile] = pid
	}
	for pidfile, set := range place {
		setAffinity(b, pids[pidfile], set)
	}
	setAffinity(b, "self", &rest)
	b.Cleanup(func() {
		for pidfile := range place {
			if pid, err := stackPID(pidfile); err == nil {
				setAffinity(b, pid, &all)
			}
		}
		setAffinity(b, "self", &all)
	})
	return true
}

// cpuRange names CPUs lo..hi-1: "CPU 0", "CPUs 4-7".
func cpuRange(lo, hi int) string {
	if hi-lo == 1 {
		return fmt.Sprintf("CPU %d", lo)
	}
	return fmt.Sprintf("CPUs %d-%d", lo, hi-1)
}

// setAffinity sets the CPU affinity of every thread of a process (pid or
// "self"); threads created later inherit it from their creator.
func setAffinity(b *testing.B, pid string, set *unix.CPUSet) {
	b.Helper()
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		b.Fatalf("pinning %s: %v", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may end between the listing and the call: ESRCH is fine.
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			b.Fatalf("pinning thread %d of %s: %v", tid, pid, err)
		}
	}
}

// arrivals watches a destination collection for the lag benchmarks' paced
// documents (_id ≥ 0, ts = the write's start in Unix ns; the warm-up's
// negative _ids are skipped) and records, once per _id, when it appeared
// and its lag from ts. After stop the maps are the watcher's final state.
type arrivals struct {
	mu     sync.Mutex
	lag    map[int64]time.Duration // from the write's start
	at     map[int64]time.Time     // when the destination showed it
	cs     *mongo.ChangeStream
	cancel context.CancelFunc
	done   chan struct{}
}

func watchArrivals(b *testing.B, ctx context.Context, dcoll *mongo.Collection) *arrivals {
	b.Helper()
	cs, err := dcoll.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetFullDocument(options.UpdateLookup).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		b.Fatalf("watching the destination: %v", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	a := &arrivals{lag: map[int64]time.Duration{}, at: map[int64]time.Time{}, cs: cs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for cs.Next(wctx) {
			recv := time.Now()
			seq, ok1 := cs.Current.Lookup("fullDocument", "_id").AsInt64OK()
			ts, ok2 := cs.Current.Lookup("fullDocument", "ts").AsInt64OK()
			if !ok1 || !ok2 || seq < 0 {
				continue
			}
			a.mu.Lock()
			if _, dup := a.lag[seq]; !dup {
				a.lag[seq] = recv.Sub(time.Unix(0, ts))
				a.at[seq] = recv
			}
			a.mu.Unlock()
		}
	}()
	return a
}

// waitFor waits up to d for n documents to have arrived.
func (a *arrivals) waitFor(n int64, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		a.mu.Lock()
		got := int64(len(a.lag))
		a.mu.Unlock()
		if got >= n {
			return
		}
	}
}

// stop ends the watcher; the maps no longer change after it.
func (a *arrivals) stop(ctx context.Context) {
	a.cancel()
	<-a.done
	_ = a.cs.Close(ctx)
}
