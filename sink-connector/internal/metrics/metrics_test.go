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

// TestDeadLetterReasonsStartAtZero: every reason is exported at 0 before the
// first dead letter, so that increase() sees the first one.
func TestDeadLetterReasonsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "logbridge_sink_dead_letters_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	for _, r := range DeadLetterReasons {
		if v, ok := got[r]; !ok || v != 0 {
			t.Errorf("reason %s: got %v (present %v), want 0", r, v, ok)
		}
	}
}
