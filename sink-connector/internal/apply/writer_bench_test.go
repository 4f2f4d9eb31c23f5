package apply

import (
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFlushEvents applies batches of new ~1 KiB documents to the real
// destination as insert events (the raw insert command path) and as replace
// events (replace-with-upsert through the driver's BulkWrite), and reports
// the sink's own CPU per document next to the wall time: what the insert
// path saves the sink, apart from what it saves the destination
// (docs/benchmarks.md, issue 21).
//
//	go test -run '^$' -bench FlushEvents ./sink-connector/internal/apply/
func BenchmarkFlushEvents(b *testing.B) {
	for _, op := range []schema.Op{schema.OpInsert, schema.OpReplace} {
		b.Run(string(op), func(b *testing.B) {
			ctx, dest, ns, _ := destColl(b, "flush_"+string(op))
			w := NewWriter(dest, writeconcern.Majority(), metrics.New(nil), slog.New(slog.DiscardHandler))
			const perBatch = 500
			pad := strings.Repeat("x", 1000)
			id := 0
			var cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bt := NewBatch(NSMap{})
				for j := 0; j < perBatch; j++ {
					id++
					key, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(id)}})
					doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(id)}, {Key: "pad", Value: pad}})
					if err := bt.Add(&schema.Event{Op: op, NS: ns, DocumentKey: key, FullDocument: doc}, Ref{Op: op}); err != nil {
						b.Fatal(err)
					}
				}
				c0 := cpuTime(b)
				res, err := w.Flush(ctx, bt)
				cpu += cpuTime(b) - c0
				if err != nil || len(res.Failures) > 0 {
					b.Fatalf("flush: %v %+v", err, res.Failures)
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*perBatch), "sink_cpu_us/doc")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*perBatch), "wall_us/doc")
		})
	}
}
