// Package metrics holds the sink-connector's Prometheus metrics, all under the
// namespace "logbridge_sink", registered on an injected prometheus.Registerer.
//
//	logbridge_sink_records_consumed_total{op}        records read from the log, by event op ("undecodable" when the value could not be decoded)
//	logbridge_sink_records_applied_total{op}         events whose effect the destination acknowledged (coalesced events count each)
//	logbridge_sink_bulk_write_seconds{kind}          latency of one destination bulk write (kind: data, ddl)
//	logbridge_sink_bulk_write_documents              writes per bulk write
//	logbridge_sink_apply_lag_seconds{topic}          now − source cluster time of the last applied event
//	logbridge_sink_consumer_lag_records{topic,partition}  last stable offset − committed-able offset (computed at scrape time)
//	logbridge_sink_retries_total{what}               retried transient failures (mongo, kafka)
//	logbridge_sink_dead_letters_total{reason}        records sent to the dead-letter topic
//	logbridge_sink_barrier_waits_total{kind}         DDL/marker barriers passed
//	logbridge_sink_barrier_wait_seconds              time from a partition's arrival at a barrier to its release
//	logbridge_sink_ddl_applied_total{kind}           DDL applied to the destination (skipped replays are not counted)
//	logbridge_sink_update_missing_documents_total    delta updates whose document was not in the destination
//	logbridge_sink_offset_commits_total{result}      Kafka offset commits (ok, error)
//	logbridge_sink_transactions_total{result}        source transactions resolved with --transactions: applied (one destination
//	                                                 transaction), or per event: timeout, too_large, rejected
//	logbridge_sink_transaction_events                events per source transaction applied in one destination transaction
//	logbridge_sink_transaction_wait_seconds          first event of a source transaction gathered → resolved
//	logbridge_sink_transaction_late_events_total     events of an already resolved transaction, applied per event
//	logbridge_sink_max_write_rate_per_second{unit}   destination write throttle, docs or bytes per second (0: unlimited)
//
// In mongosync mode, on the process registry (exported whether or not the
// epoch's sink can start): the epoch supervisor's (pkg/supervise)
// logbridge_sink_epoch_restarts_total, logbridge_sink_epoch_last_error_timestamp_seconds
// and logbridge_sink_epoch_running, and the control state's (pkg/control)
// logbridge_sink_control_state{state} and logbridge_sink_control_epoch.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "logbridge_sink"

// DeadLetterReasons are the reason label values of dead_letters_total:
// undecodable (the value cannot be decoded), bad-event (decoded but not
// applicable), rejected (the destination refused the write), ddl-rejected.
var DeadLetterReasons = []string{"undecodable", "bad-event", "rejected", "ddl-rejected"}

// Metrics are the sink's collectors.
type Metrics struct {
	Consumed       *prometheus.CounterVec
	Applied        *prometheus.CounterVec
	BulkSeconds    *prometheus.HistogramVec
	BulkDocs       prometheus.Histogram
	ApplyLag       *prometheus.GaugeVec
	ConsumerLag    *prometheus.GaugeVec
	Retries        *prometheus.CounterVec
	DeadLetters    *prometheus.CounterVec
	BarrierWaits   *prometheus.CounterVec
	BarrierSeconds prometheus.Histogram
	DDLApplied     *prometheus.CounterVec
	MissingUpdates prometheus.Counter
	Commits        *prometheus.CounterVec
	Txns           *prometheus.CounterVec
	TxnEvents      prometheus.Histogram
	TxnWaitSeconds prometheus.Histogram
	TxnLateEvents  prometheus.Counter
	// MaxWriteRate is the destination write throttle, by unit (docs,
	// bytes; 0: unlimited).
	MaxWriteRate *prometheus.GaugeVec

	lag *lagVec // ConsumerLag as registered: refreshed on each scrape
}

// lagVec collects ConsumerLag after refreshing it, so that a scrape sees
// the lag of that moment, not of the last progress request.
type lagVec struct {
	*prometheus.GaugeVec
	mu      sync.Mutex
	refresh func()
}

func (l *lagVec) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	f := l.refresh
	l.mu.Unlock()
	if f != nil {
		f()
	}
	l.GaugeVec.Collect(ch)
}

// RefreshLagOnScrape has every collection of consumer_lag_records call f
// first (the sink passes its consumer's Progress, which sets the gauges).
func (m *Metrics) RefreshLagOnScrape(f func()) {
	m.lag.mu.Lock()
	m.lag.refresh = f
	m.lag.mu.Unlock()
}

// New creates the metrics and registers them on reg (nil: not registered,
// for tests).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "records_consumed_total",
			Help: "Records read from the log, by event op."}, []string{"op"}),
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "records_applied_total",
			Help: "Events whose effect the destination acknowledged, by op."}, []string{"op"}),
		BulkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "bulk_write_seconds",
			Help: "Latency of one destination bulk write or DDL command.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"kind"}),
		BulkDocs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "bulk_write_documents",
			Help: "Writes per destination bulk write.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		ApplyLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "apply_lag_seconds",
			Help: "Now minus the source cluster time of the last applied event."}, []string{"topic"}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "consumer_lag_records",
			Help: "Offsets between the partition's last stable offset and the sink's acknowledged position."}, []string{"topic", "partition"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "retries_total",
			Help: "Retried transient failures."}, []string{"what"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "dead_letters_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		BarrierWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "barrier_waits_total",
			Help: "DDL and marker barriers passed, by kind."}, []string{"kind"}),
		BarrierSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "barrier_wait_seconds",
			Help: "Time a partition waited at a barrier.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		DDLApplied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "ddl_applied_total",
			Help: "DDL applied to the destination, by kind."}, []string{"kind"}),
		MissingUpdates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "update_missing_documents_total",
			Help: "Delta updates whose document was not found in the destination."}),
		Commits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "offset_commits_total",
			Help: "Kafka offset commits, by result."}, []string{"result"}),
		Txns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "transactions_total",
			Help: "Source transactions resolved (--transactions): applied in one destination transaction, or applied per event (timeout, too_large, rejected)."}, []string{"result"}),
		TxnEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "transaction_events",
			Help: "Events per source transaction applied in one destination transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		TxnWaitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "transaction_wait_seconds",
			Help: "Time from a source transaction's first gathered event to its resolution.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		TxnLateEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "transaction_late_events_total",
			Help: "Events of a source transaction that was already resolved, applied per event."}),
		MaxWriteRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "max_write_rate_per_second",
			Help: "Throttle of the destination writes (--max-write-rate, POST /api/v1/throttle), by unit: docs or bytes per second; 0 is unlimited."}, []string{"unit"}),
	}
	// The dead-letter reasons, retry kinds and commit results exist at 0
	// from the start: increase() over a series that appears at 1 sees no
	// increase, so an alert on the first dead letter needs the 0 before it.
	for _, r := range DeadLetterReasons {
		m.DeadLetters.WithLabelValues(r)
	}
	for _, w := range []string{"kafka", "mongo", "schema-registry"} {
		m.Retries.WithLabelValues(w)
	}
	for _, r := range []string{"ok", "error"} {
		m.Commits.WithLabelValues(r)
	}
	m.lag = &lagVec{GaugeVec: m.ConsumerLag}
	if reg != nil {
		reg.MustRegister(m.Consumed, m.Applied, m.BulkSeconds, m.BulkDocs, m.ApplyLag, m.lag, m.Retries,
			m.DeadLetters, m.BarrierWaits, m.BarrierSeconds, m.DDLApplied, m.MissingUpdates, m.Commits,
			m.Txns, m.TxnEvents, m.TxnWaitSeconds, m.TxnLateEvents, m.MaxWriteRate)
	}
	return m
}
