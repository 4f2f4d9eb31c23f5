// Package metrics holds the sink-connector's Prometheus metrics, all under the
// namespace "logbridge_sink", registered on an injected prometheus.Registerer.
//
//	logbridge_sink_records_consumed_total{op}        records read from the log, by event op ("undecodable" when the value could not be decoded)
//	logbridge_sink_records_applied_total{op}         events whose effect the destination acknowledged (coalesced events count each)
//	logbridge_sink_bulk_write_seconds{kind}          latency of one destination bulk write (kind: data, ddl)
//	logbridge_sink_bulk_write_documents              writes per bulk write
//	logbridge_sink_apply_lag_seconds{topic}          now − source cluster time of the last applied event
//	logbridge_sink_consumer_lag_records{topic,partition}  last stable offset − committed-able offset
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
//
// In mongosync mode the epoch supervisor (pkg/supervise) adds, on the process
// registry, logbridge_sink_epoch_restarts_total and
// logbridge_sink_epoch_last_error_timestamp_seconds.
package metrics

import "github.com/prometheus/client_golang/prometheus"

const namespace = "logbridge_sink"

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
	}
	if reg != nil {
		reg.MustRegister(m.Consumed, m.Applied, m.BulkSeconds, m.BulkDocs, m.ApplyLag, m.ConsumerLag, m.Retries,
			m.DeadLetters, m.BarrierWaits, m.BarrierSeconds, m.DDLApplied, m.MissingUpdates, m.Commits,
			m.Txns, m.TxnEvents, m.TxnWaitSeconds, m.TxnLateEvents)
	}
	return m
}
