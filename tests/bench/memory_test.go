package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/testenv"
)

// BenchmarkSnapshotMemory (issue 21, item 5): the peak resident memory
// (VmHWM) of both connector processes copying a data set end to end
// (source → Kafka → sink, as BenchmarkEndToEndVsDirectCopy), once at 1× and
// once at LOGBRIDGE_BENCH_SCALE× (default 4) the documents. Goal: each
// process ≤ 256 MiB at both sizes, i.e. memory bounded by the connectors'
// buffer settings, not by the data.
//
// The 1× data set is LOGBRIDGE_BENCH_COLLS collections (default 4) of
// LOGBRIDGE_MEMORY_DOCS documents (default 25,000, ~1 KiB each), seeded
// for this benchmark and dropped after each size. Each size runs on a fresh
// prefix: the source starts, the sink starts once the snapshot is planned
// (its topics exist), and the run ends when the destination counts every
// document. It reports both peak RSS figures per size, the snapshot's
// docs/s (from "snapshot starting" to the last document on the
// destination, to check that bounding memory costs no throughput), and
// with LOGBRIDGE_BENCH_PROFILE=<dir> it saves heap profiles of both
// processes taken when half the documents had arrived.
func BenchmarkSnapshotMemory(b *testing.B) {
	env := testenv.New(b)
	base := benchSizes()
	base.docs = envInt("LOGBRIDGE_MEMORY_DOCS", 25_000)
	scale := envInt("LOGBRIDGE_BENCH_SCALE", 4)
	src, dst := pipeline(b, env)
	ctx := context.Background()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		type result struct {
			docs             int64
			srcRSS, sinkRSS  int64
			rate             float64
			srcCPUUS, sinkUS float64
		}
		var res []result
		for _, k := range []int{1, scale} {
			sz := base
			sz.docs *= k
			db := fmt.Sprintf("logbridge_memory_%d_%d", time.Now().Unix(), k)
			drop := func() {
				_ = src.Database(db).Drop(context.Background())
				_ = dst.Database(db).Drop(context.Background())
			}
			b.Cleanup(drop)
			seedParallel(b, src, db, sz)
			prefix := testenv.TopicPrefix(b)
			p := startSnapshotSource(b, env, prefix, db, sz)
			p.waitLog(b, "snapshot planned", 5*time.Minute)
			sk := startSinkProc(b, env, prefix, sz.par)
			_, snapAt := p.waitLog(b, "snapshot starting", 5*time.Minute)
			want := int64(sz.colls * sz.docs)
			profiled := false
			waitFor(b, "every document on the destination", sk, func() bool {
				n := countDocs(ctx, dst, db, sz)
				if !profiled && n >= want/2 {
					profiled = true
					heapProfiles(b, fmt.Sprintf("memory-%dx", k), map[string]*proc{"source": p, "sink": sk})
				}
				return n >= want
			})
			done := time.Now()
			if err := p.exited(); err != nil {
				b.Fatalf("the source connector stopped: %v", err)
			}
			srcCPU, srcRSS := p.usage()
			sinkCPU, sinkRSS := sk.usage()
			traceLog(p)
			p.stop()
			sk.stop()
			deleteTopics(env, prefix)
			drop()
			r := result{docs: want, srcRSS: srcRSS, sinkRSS: sinkRSS, rate: float64(want) / done.Sub(snapAt).Seconds(),
				srcCPUUS: float64(srcCPU.Microseconds()) / float64(want), sinkUS: float64(sinkCPU.Microseconds()) / float64(want)}
			res = append(res, r)
			sfx := fmt.Sprintf("_%dx", k)
			b.ReportMetric(float64(srcRSS)/(1<<20), "source_peak_rss_MiB"+sfx)
			b.ReportMetric(float64(sinkRSS)/(1<<20), "sink_peak_rss_MiB"+sfx)
			b.ReportMetric(r.rate, "snapshot_docs/s"+sfx)
		}
		mib := func(n int64) float64 { return float64(n) / (1 << 20) }
		one, big := res[0], res[1]
		fmt.Printf("SUMMARY snapshot-memory: %d colls, parallelism %d | 1× %d docs: peak RSS source %.0f MiB, sink %.0f MiB, %.0f docs/s (CPU source %.1f, sink %.1f µs/doc) | %d× %d docs: peak RSS source %.0f MiB, sink %.0f MiB, %.0f docs/s (CPU source %.1f, sink %.1f µs/doc) | growth %d×→ source %+.0f MiB, sink %+.0f MiB (goal: each ≤ 256 MiB, no growth with the data)\n",
			base.colls, base.par, one.docs, mib(one.srcRSS), mib(one.sinkRSS), one.rate, one.srcCPUUS, one.sinkUS,
			scale, big.docs, mib(big.srcRSS), mib(big.sinkRSS), big.rate, big.srcCPUUS, big.sinkUS,
			scale, mib(big.srcRSS-one.srcRSS), mib(big.sinkRSS-one.sinkRSS))
	}
}

// seedParallel inserts sz's documents into db, one writer per collection.
func seedParallel(b *testing.B, cl *mongo.Client, db string, sz sizes) {
	b.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, sz.colls)
	for c := 0; c < sz.colls; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := 0; lo < sz.docs; lo += 1000 {
				docs := make([]any, 0, 1000)
				for i := lo; i < min(lo+1000, sz.docs); i++ {
					docs = append(docs, benchDoc(i))
				}
				if _, err := cl.Database(db).Collection(collName(c)).InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false)); err != nil {
					errs <- fmt.Errorf("seeding %s.%s: %w", db, collName(c), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("seeded %s: %d collections × %d documents in %s", db, sz.colls, sz.docs, time.Since(start).Round(time.Millisecond))
}

// heapProfiles saves a heap profile of each process (with
// LOGBRIDGE_BENCH_PROFILE) as <dir>/<name>-<key>.heap.pprof.
func heapProfiles(b *testing.B, name string, procs map[string]*proc) {
	if profileDir == "" {
		return
	}
	for key, p := range procs {
		resp, err := http.Get("http://" + p.pprof + "/debug/pprof/heap")
		if err != nil {
			b.Logf("heap profile of %s: %v", key, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Logf("heap profile of %s: %v %s", key, err, resp.Status)
			continue
		}
		out := filepath.Join(profileDir, name+"-"+key+".heap.pprof")
		if err := os.WriteFile(out, body, 0o644); err != nil {
			b.Logf("heap profile of %s: %v", key, err)
			continue
		}
		fmt.Printf("profile: %s\n", out)
	}
}

// heapAtPeak (with LOGBRIDGE_BENCH_PROFILE) takes a heap profile of p
// every second until stop is called and keeps, as
// <dir>/<name>.heap.pprof, the one taken when p's resident memory was
// highest: what held the memory at the peak.
func heapAtPeak(b *testing.B, name string, p *proc) (stop func()) {
	if profileDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var best int64
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				if best > 0 {
					fmt.Printf("profile: %s (at %d MiB resident)\n", filepath.Join(profileDir, name+".heap.pprof"), best>>20)
				}
				return
			case <-t.C:
			}
			rss := procRSS(strconv.Itoa(p.cmd.Process.Pid))
			if rss <= best {
				continue
			}
			resp, err := http.Get("http://" + p.pprof + "/debug/pprof/heap")
			if err != nil {
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && os.WriteFile(filepath.Join(profileDir, name+".heap.pprof"), body, 0o644) == nil {
				best = rss
			}
		}
	}()
	return func() { close(done); <-finished }
}

// procRSS is VmRSS of /proc/<pid>/status in bytes (0 when unknown).
func procRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
