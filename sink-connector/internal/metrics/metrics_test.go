package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestConsumerLagIsRefreshedOnScrape: a scrape alone (no progress request)
// sees the lag the refresh function sets at that moment.
func TestConsumerLagIsRefreshedOnScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	lag := 0.0
	m.RefreshLagOnScrape(func() { m.ConsumerLag.WithLabelValues("p.db.c", "0").Set(lag) })
	for _, want := range []float64{7, 0, 42} {
		lag = want
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := -1.0
		for _, mf := range mfs {
			if mf.GetName() == "logbridge_sink_consumer_lag_records" {
				got = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if got != want {
			t.Fatalf("consumer_lag_records after a scrape: got %v, want %v", got, want)
		}
	}
}
