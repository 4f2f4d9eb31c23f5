package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/schema"
)

// logProgress logs, every ProgressInterval, the records applied (in all
// and per second since the last line) and how far the destination is
// behind: the records not applied yet and the age of the oldest of them.
func (s *Service) logProgress(ctx context.Context) {
	t := time.NewTicker(s.cfg.ProgressInterval)
	defer t.Stop()
	last, lastAt := counterTotal(s.metrics.Applied), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			applied := counterTotal(s.metrics.Applied)
			rate := (applied - last) / max(now.Sub(lastAt).Seconds(), 1e-3)
			last, lastAt = applied, now
			p := s.Progress()
			s.log.Info(fmt.Sprintf("applied %d records (%.0f/s); destination %.1f s behind the source", int64(applied), rate, p.ApplyLagSeconds),
				"applied", int64(applied), "ratePerSecond", int64(rate), "lagRecords", p.LagRecords,
				"destinationLagSeconds", fmt.Sprintf("%.1f", p.ApplyLagSeconds), "partitions", len(p.Partitions))
		}
	}
}

// appliedRecordInterval is how often the sink adds the change events it
// applied to its count on the destination (control.AppliedCount), which
// the source reports as progress.totalEventsApplied.
const appliedRecordInterval = 2 * time.Second

// changeOps are the ops that count as change events in totalEventsApplied.
var changeOps = []schema.Op{schema.OpInsert, schema.OpUpdate, schema.OpReplace, schema.OpDelete}

// recordApplied adds, every appliedRecordInterval, the change events
// applied since the last addition to the group's control.AppliedCount on
// the destination ($inc, so a restarted sink continues the count); Run adds
// the rest once the consumer stopped. A failed write is retried with the
// next one.
func (s *Service) recordApplied(ctx context.Context) {
	t := time.NewTicker(appliedRecordInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.addApplied(ctx)
		}
	}
}

// addApplied adds the change events applied since the last addition.
// Only one goroutine calls it at a time (recordApplied, then Run).
func (s *Service) addApplied(ctx context.Context) {
	n := changeEvents(s.metrics.Applied)
	if n <= s.appliedRecorded {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.dest.Database(control.AppliedDB).Collection(control.AppliedColl).UpdateOne(ctx, bson.D{{Key: "_id", Value: s.cfg.Group}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "eventsApplied", Value: int64(n - s.appliedRecorded)}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		s.log.Debug("recording the applied event count on the destination; retried with the next", "err", err)
		return
	}
	s.appliedRecorded = n
}

// changeEvents is the change events the destination acknowledged so far.
func changeEvents(c *prometheus.CounterVec) float64 {
	var n float64
	for _, op := range changeOps {
		var d dto.Metric
		if c.WithLabelValues(string(op)).Write(&d) == nil && d.Counter != nil {
			n += d.Counter.GetValue()
		}
	}
	return n
}

// counterTotal sums a counter over its label values.
func counterTotal(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil && d.Counter != nil {
			sum += d.Counter.GetValue()
		}
	}
	return sum
}
