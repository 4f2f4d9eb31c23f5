// Package metrics holds the source connector's Prometheus metrics, all in the
// namespace logbridge_source and registered on an injected Registerer.
//
// Metrics:
//
//	logbridge_source_snapshot_documents_total{ns}     documents copied by the snapshot (committed to Kafka)
//	logbridge_source_snapshot_bytes_total{ns}         BSON bytes copied by the snapshot (committed to Kafka)
//	logbridge_source_events_captured_total{op}        change events read from the change stream, by operationType
//	logbridge_source_events_published_total{op}       records committed to Kafka, by envelope op (DDL/markers once per partition)
//	logbridge_source_published_bytes_total            encoded record bytes committed to Kafka
//	logbridge_source_publish_latency_seconds          duration of one Kafka transaction (begin → commit acknowledged)
//	logbridge_source_transaction_commits_total        Kafka transactions committed
//	logbridge_source_transaction_aborts_total         Kafka transactions aborted (each is retried or ends the run)
//	logbridge_source_change_stream_lag_seconds        now − cluster time of the last event or heartbeat published
//	logbridge_source_buffered_records                 records read from the source and not yet committed to Kafka
//	logbridge_source_heartbeats_total                 resume-point-only state updates on a quiet stream
//	logbridge_source_retries_total{op}                transient errors retried, by operation
//	logbridge_source_events_filtered_total            change events dropped by the namespace filter
//	logbridge_source_split_events_total               change events over 16 MiB reassembled from fragments
//	logbridge_source_max_read_rate_per_second{unit}   snapshot read throttle, docs or bytes per second (0: unlimited)
//
// The service's status, read at scrape time (internal/app):
//
//	logbridge_source_phase{phase}                     1 for the current phase (starting, planning, snapshot, streaming, stopped, failed)
//	logbridge_source_copy_estimated_documents{ns}     documents in the namespace when the copy was planned
//	logbridge_source_copy_estimated_bytes{ns}         its BSON bytes (0: unknown)
//	logbridge_source_copy_copied_documents{ns}        documents copied so far, checkpointed earlier runs included
//	logbridge_source_copy_copied_bytes{ns}            bytes copied so far, likewise
//	logbridge_source_copy_done{ns}                    1 once the namespace's copy is complete
//
// In mongosync mode, on the process registry (exported whether or not the
// epoch's connector can start): the epoch supervisor's (pkg/supervise)
// logbridge_source_epoch_restarts_total, logbridge_source_epoch_last_error_timestamp_seconds
// and logbridge_source_epoch_running, and the control state's (pkg/control)
// logbridge_source_control_state{state} and logbridge_source_control_epoch.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Namespace is the Prometheus namespace of every metric.
const Namespace = "logbridge_source"

// Metrics are the connector's collectors. A nil *Metrics is not valid; use
// New (with a nil Registerer for a private, unexported set in tests).
type Metrics struct {
	SnapshotDocs    *prometheus.CounterVec
	SnapshotBytes   *prometheus.CounterVec
	EventsCaptured  *prometheus.CounterVec
	EventsPublished *prometheus.CounterVec
	PublishedBytes  prometheus.Counter
	PublishLatency  prometheus.Histogram
	TxnCommits      prometheus.Counter
	TxnAborts       prometheus.Counter
	StreamLag       prometheus.Gauge
	BufferedRecords prometheus.Gauge
	Heartbeats      prometheus.Counter
	Retries         *prometheus.CounterVec
	EventsFiltered  prometheus.Counter
	SplitEvents     prometheus.Counter
	// MaxReadRate is the snapshot read throttle, by unit (docs, bytes;
	// 0: unlimited).
	MaxReadRate *prometheus.GaugeVec
}

// New creates the collectors and registers them on reg (when non-nil).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SnapshotDocs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "snapshot_documents_total",
			Help: "Documents copied by the snapshot and committed to Kafka."}, []string{"ns"}),
		SnapshotBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "snapshot_bytes_total",
			Help: "BSON bytes copied by the snapshot and committed to Kafka."}, []string{"ns"}),
		EventsCaptured: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_captured_total",
			Help: "Change events read from the change stream, by operationType."}, []string{"op"}),
		EventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_published_total",
			Help: "Records committed to Kafka, by envelope op (DDL and markers count once per partition)."}, []string{"op"}),
		PublishedBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "published_bytes_total",
			Help: "Encoded record bytes (key + value) committed to Kafka."}),
		PublishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "publish_latency_seconds",
			Help:    "Duration of one Kafka transaction, from begin to the acknowledged commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		TxnCommits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "transaction_commits_total",
			Help: "Kafka transactions committed."}),
		TxnAborts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "transaction_aborts_total",
			Help: "Kafka transactions aborted."}),
		StreamLag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "change_stream_lag_seconds",
			Help: "Now minus the cluster time of the last change event or heartbeat committed to Kafka."}),
		BufferedRecords: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "buffered_records",
			Help: "Records read from the source and not yet committed to Kafka."}),
		Heartbeats: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "heartbeats_total",
			Help: "Resume-point-only state updates written while the change stream was quiet."}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "retries_total",
			Help: "Transient errors retried, by operation."}, []string{"op"}),
		EventsFiltered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "events_filtered_total",
			Help: "Change events dropped by the namespace filter."}),
		SplitEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "split_events_total",
			Help: "Change events over 16 MiB that arrived as $changeStreamSplitLargeEvent fragments and were reassembled."}),
		MaxReadRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "max_read_rate_per_second",
			Help: "Throttle of the snapshot reads (--max-read-rate, POST /api/v1/throttle), by unit: docs or bytes per second; 0 is unlimited."}, []string{"unit"}),
	}
	if reg != nil {
		reg.MustRegister(m.SnapshotDocs, m.SnapshotBytes, m.EventsCaptured, m.EventsPublished, m.PublishedBytes,
			m.PublishLatency, m.TxnCommits, m.TxnAborts, m.StreamLag, m.BufferedRecords, m.Heartbeats, m.Retries, m.EventsFiltered, m.SplitEvents, m.MaxReadRate)
	}
	return m
}
