package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
