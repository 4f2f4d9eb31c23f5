package control

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gauges returns the collector's series as "name{state}" → value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "{" + l.GetValue() + "}"
			}
			out[k] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestStateCollectorFollowsTheState(t *testing.T) {
	var st Status
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewStateCollector("sink", func() Status { return st }))
	for _, tc := range []struct {
		name  string
		st    Status
		state State
	}{
		{"before the log is read", Status{}, Idle},
		{"running", Status{State: Running, Epoch: 1}, Running},
		{"committing after a reverse", Status{State: Committing, Epoch: 2}, Committing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st = tc.st
			got := gauges(t, reg)
			if len(got) != len(States)+1 {
				t.Fatalf("got %d series %v, want one per state and the epoch", len(got), got)
			}
			for _, s := range States {
				want := 0.0
				if s == tc.state {
					want = 1
				}
				if v := got["logbridge_sink_control_state{"+string(s)+"}"]; v != want {
					t.Errorf("state %s: got %v, want %v", s, v, want)
				}
			}
			if v := got["logbridge_sink_control_epoch"]; v != float64(tc.st.Epoch) {
				t.Errorf("epoch: got %v, want %d", v, tc.st.Epoch)
			}
		})
	}
}
