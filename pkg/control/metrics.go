package control

import "github.com/prometheus/client_golang/prometheus"

// States lists every state, in lifecycle order.
var States = []State{Idle, Running, Paused, Committing, Committed, Reversing}

// stateCollector exports the control state as a service currently sees it;
// it reads the state at scrape time, so the metric is never stale and exists
// from the moment the service loaded the log, whether or not an epoch runs.
type stateCollector struct {
	get          func() Status
	state, epoch *prometheus.Desc
}

// NewStateCollector returns the collector of
//
//	logbridge_<role>_control_state{state}   1 for the current state, 0 for the others (every state is exported)
//	logbridge_<role>_control_epoch          the sync epoch (0 before start; n+1 after each reverse)
//
// with get returning the service's current view of the control log. One
// series per state (rather than a state label on one series) lets an alert
// say `logbridge_source_control_state{state="COMMITTING"} == 1` and lets
// Prometheus see the change of state without series churn.
func NewStateCollector(role string, get func() Status) prometheus.Collector {
	return &stateCollector{get: get,
		state: prometheus.NewDesc(prometheus.BuildFQName("logbridge", role, "control_state"),
			"The sync's state from the control log: 1 for the current state (IDLE, RUNNING, PAUSED, COMMITTING, COMMITTED, REVERSING), 0 for the others.",
			[]string{"state"}, nil),
		epoch: prometheus.NewDesc(prometheus.BuildFQName("logbridge", role, "control_epoch"),
			"The sync epoch from the control log (0 before start, n+1 after each reverse).", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.state; ch <- c.epoch }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.get()
	cur := st.State
	if cur == "" {
		cur = Idle
	}
	for _, s := range States {
		v := 0.0
		if s == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(st.Epoch))
}
