package bench

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/testenv"
)

// BenchmarkSnapshotThrottled runs the snapshot of the benchmark data set
// under --max-read-rate, once limited in documents and once in bytes per
// second, and fails unless the snapshot's rate (documents over the
// "snapshot done" phase) holds within 10% of the setting. The limits sit
// well below the unthrottled rate (BenchmarkSnapshotVsRawRead), so the
// throttle, not the machine, sets the pace.
func BenchmarkSnapshotThrottled(b *testing.B) {
	env := testenv.New(b)
	sz := benchSizes()
	db := seed(b, env, sz)
	docs := float64(sz.colls * sz.docs)
	docBytes := float64(len(mustMarshal(b, benchDoc(1))))
	docsLimit := float64(envInt("LOGBRIDGE_BENCH_THROTTLE_DOCS", 20000))
	bytesLimit := float64(envInt("LOGBRIDGE_BENCH_THROTTLE_BYTES", 12<<20))
	var prefixes []string
	b.Cleanup(func() { deleteTopics(env, prefixes...) })
	run := func(flag string, want float64) float64 {
		prefix := testenv.TopicPrefix(b)
		prefixes = append(prefixes, prefix)
		p := startSource(b, env, prefix, "--include", db+".*", "--snapshot-parallelism", strconv.Itoa(sz.par),
			"--partitions", "4", "--log-level", "info", "--max-read-rate", flag)
		line, _ := p.waitLog(b, "snapshot done", 30*time.Minute)
		p.stop()
		phase := logDuration(line)
		if phase <= 0 {
			b.Fatalf("no elapsed= in %q", line)
		}
		got := docs / phase.Seconds()
		b.Logf("--max-read-rate %s: %.0f docs/s over %s (want %.0f)", flag, got, phase.Round(time.Millisecond), want)
		if got < 0.9*want || got > 1.1*want {
			b.Errorf("--max-read-rate %s: the snapshot read %.0f docs/s, want %.0f ± 10%%", flag, got, want)
		}
		return got
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := run(fmt.Sprintf("docs=%.0f", docsLimit), docsLimit)
		by := run(fmt.Sprintf("bytes=%.0f", bytesLimit), bytesLimit/docBytes)
		b.ReportMetric(d, "docs_limited_docs/s")
		b.ReportMetric(100*d/docsLimit, "docs_limit_%")
		b.ReportMetric(by*docBytes/(1<<20), "bytes_limited_MiB/s")
		b.ReportMetric(100*by*docBytes/bytesLimit, "bytes_limit_%")
		fmt.Printf("SUMMARY snapshot-throttled: %d colls × %d docs (~%.0f B each) | --max-read-rate docs=%.0f: %.0f docs/s (%.1f%% of the limit) | --max-read-rate bytes=%.0f: %.2f MiB/s (%.1f%% of the limit) | goal: within ±10%%\n",
			sz.colls, sz.docs, docBytes, docsLimit, d, 100*d/docsLimit, bytesLimit, by*docBytes/(1<<20), 100*by*docBytes/bytesLimit)
	}
}

func mustMarshal(b *testing.B, v any) []byte {
	b.Helper()
	raw, err := bson.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
