package app

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/capture"
	"github.com/logbridge/logbridge/source-connector/internal/publish"
)

// Config is the source connector's configuration.
type Config struct {
	// SourceURI is the source cluster's connection string (replica set or
	// mongos; TLS and authentication through URI options).
	SourceURI string
	Kafka     kafkax.Config
	// TopicPrefix starts every topic name; TopicRoute maps a namespace to
	// its data topic ({prefix}, {db}, {coll}).
	TopicPrefix string
	TopicRoute  string
	// Include and Exclude are namespace patterns (see nsfilter).
	Include, Exclude config.StringList
	// Filter, when set, replaces Include and Exclude: the control API's
	// start request compiled once by control.Compile, so that the epoch
	// runs exactly what the request was checked as.
	Filter *nsfilter.Filter
	// Partitions and ReplicationFactor of created data topics.
	Partitions        int
	ReplicationFactor int
	// SnapshotParallelism bounds concurrent range readers;
	// SnapshotBatchSize is the find batch size; SnapshotRangeDocs the
	// target documents per range.
	SnapshotParallelism int
	SnapshotBatchSize   int
	SnapshotRangeDocs   int64
	// FullDocument: off, updateLookup, whenAvailable, required.
	FullDocument string
	// FullDocumentBeforeChange: off, whenAvailable, required.
	FullDocumentBeforeChange string
	HeartbeatInterval        time.Duration
	// HeartbeatTopic and HeartbeatDataTopics publish heartbeats for
	// consumers (publish.HeartbeatConfig).
	HeartbeatTopic      string
	HeartbeatDataTopics bool
	// ConfluentKeys frames keys and registers <topic>-key (schema.SerdeConfig.ConfluentKeys).
	ConfluentKeys bool
	// StreamBatchWait is capture.Config.BatchWait (--stream-batch-wait).
	StreamBatchWait time.Duration
	// Encoding of record values; SchemaRegistry for confluent.
	Encoding       string
	SchemaRegistry schema.RegistryConfig
	// TransactionalID of the Kafka producer (default logbridge-source-<prefix>).
	TransactionalID string
	SyncEpoch       int64
	// StartAt, when set, skips the snapshot: the change stream starts at
	// this source cluster time (a reversed sync, or a destination already
	// seeded). Collection metadata is still published first.
	StartAt *bson.Timestamp
	// IndexesAfterCopy publishes the collections' index definitions after
	// the snapshot's documents (mongosync's buildIndexes afterDataCopy)
	// instead of with the collection metadata before them.
	IndexesAfterCopy bool
	// SourceName identifies the source in every record (default: the
	// replica set name, or "mongos").
	SourceName string
	// Compression of the record batches the producer writes: none, gzip,
	// snappy, lz4 or zstd.
	Compression string
	// BatchMaxRecords and BatchMaxBytes bound one Kafka transaction.
	BatchMaxRecords int
	BatchMaxBytes   int
	// MaxReadRate throttles the snapshot's reads of the source (documents
	// and bytes per second; zero: unlimited). The change stream is never
	// throttled: falling behind it risks the oplog.
	MaxReadRate throttle.Rate
	// ProgressInterval is the period of progress log lines.
	ProgressInterval time.Duration
}

// compressionCodecs are the values of --kafka-compression.
var compressionCodecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		// No default source URI or Kafka broker: a connector that silently
		// dialled 127.0.0.1 would copy whatever happens to listen there.
		Kafka:                    kafkax.Config{ClientID: "logbridge-source"},
		TopicPrefix:              "logbridge",
		TopicRoute:               publish.DefaultRoute,
		Partitions:               4,
		ReplicationFactor:        -1,
		SnapshotParallelism:      4,
		SnapshotBatchSize:        1000,
		SnapshotRangeDocs:        100_000,
		FullDocument:             capture.ModeOff,
		FullDocumentBeforeChange: capture.ModeOff,
		HeartbeatInterval:        10 * time.Second,
		// 5 ms: at 500 events/s the lag was p50 6–7 ms and p99 16–28 ms
		// with the same source CPU per event as before issue 21's
		// changes; without the wait p50 was 5–11 ms but p99 54–180 ms at
		// twice the CPU per event at both connectors (three A/B rounds,
		// docs/benchmarks.md).
		// 8 ms: at 500 events/s on a quiet test machine lag p50 7-8 ms,
		// p99 12-14 ms (goals 10 / 30) for 30-50% less CPU per event than
		// 5 ms; 10 ms put p50 at 9 ms, too near its goal (docs/benchmarks.md,
		// issue 21).
		StreamBatchWait:  8 * time.Millisecond,
		Encoding:         string(schema.EncodingSingleObject),
		SyncEpoch:        1,
		Compression:      "snappy",
		BatchMaxRecords:  publish.DefaultMaxRecords,
		BatchMaxBytes:    publish.DefaultMaxBytes,
		ProgressInterval: 10 * time.Second,
	}
}

// RegisterFlags registers every setting on fs, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.SourceURI, "source-uri", c.SourceURI,
		"source MongoDB connection string (required unless --cluster0/--cluster1): a replica set or a mongos (a standalone has no change streams); TLS and auth as URI options,\n"+
			"e.g. mongodb://user:pass@db1:27017,db2:27017/?replicaSet=rs0&tls=true&authSource=admin")
	brokers := c.Kafka.Brokers
	c.Kafka.RegisterFlags(fs, c.Kafka.ClientID)
	if len(brokers) > 0 {
		c.Kafka.Brokers = brokers
	}
	fs.StringVar(&c.TopicPrefix, "topic-prefix", c.TopicPrefix,
		"prefix of every topic: data <prefix>.<db>.<coll>, state <prefix>._source_state, control <prefix>._control")
	fs.StringVar(&c.TopicRoute, "topic-route", c.TopicRoute,
		"template of data topic names with {prefix}, {db} and {coll}, e.g. 'cdc.{prefix}.{db}.{coll}'")
	fs.Var(&c.Include, "include",
		"comma-separated namespaces to copy and stream: db.coll, db.* or /regex/ on \"db.coll\" (default: all), e.g. 'shop.*,/^crm\\.acc/'")
	fs.Var(&c.Exclude, "exclude",
		"comma-separated namespaces to leave out (same patterns; exclude wins). admin, local, config, __logbridge* and system.* are always left out")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of data topics the connector creates (existing topics are used as they are)")
	fs.IntVar(&c.ReplicationFactor, "replication-factor", c.ReplicationFactor, "replication factor of created topics (-1: broker default)")
	fs.IntVar(&c.SnapshotParallelism, "snapshot-parallelism", c.SnapshotParallelism, "concurrent snapshot range readers")
	fs.IntVar(&c.SnapshotBatchSize, "snapshot-batch-size", c.SnapshotBatchSize, "documents per find batch of a snapshot reader")
	fs.Int64Var(&c.SnapshotRangeDocs, "snapshot-range-docs", c.SnapshotRangeDocs,
		"target documents per snapshot range (collections are split on sampled _id boundaries; each range is checkpointed)")
	fs.StringVar(&c.FullDocument, "full-document", c.FullDocument,
		"full document of update events: off (delta only), updateLookup (current document, read at event time),\n"+
			"whenAvailable or required (post-images; needs changeStreamPreAndPostImages on the collections)")
	fs.StringVar(&c.FullDocumentBeforeChange, "full-document-before-change", c.FullDocumentBeforeChange,
		"pre-image of update/replace/delete events: off, whenAvailable or required (needs changeStreamPreAndPostImages)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval,
		"when the change stream is quiet this long, checkpoint its resume point so it keeps moving")
	fs.DurationVar(&c.StreamBatchWait, "stream-batch-wait", c.StreamBatchWait,
		"once the change stream is caught up, wait this long after a small getMore batch before the next getMore, so that events\n"+
			"written meanwhile share one getMore and one Kafka transaction: less CPU per event at moderate rates, for up to this much\n"+
			"more lag; 0 asks again at once. A stream that is behind never waits")
	fs.StringVar(&c.Encoding, "encoding", c.Encoding,
		"record encoding: avro-single-object (Avro with schema fingerprint), confluent (needs --schema-registry-url), json (canonical Extended JSON),\n"+
			"connect-json (Kafka Connect JsonConverter schema+payload) or debezium (Debezium MongoDB change events; for other consumers only: lossy, the sink refuses it)")
	fs.BoolVar(&c.ConfluentKeys, "confluent-keys", c.ConfluentKeys,
		"with --encoding confluent: also frame record keys in the Confluent wire format and register their schema (Avro \"bytes\": the raw BSON key) under <topic>-key,\n"+
			"so registry-aware consumers decode keys too (partitioning still hashes the raw key; default: keys are raw BSON)")
	fs.StringVar(&c.HeartbeatTopic, "heartbeat-topic", c.HeartbeatTopic,
		"also write a heartbeat record (source cluster time, resume token) to this topic on every heartbeat, for consumers that must tell idle from stalled,\n"+
			"e.g. '__debezium-heartbeat.<prefix>' with --encoding debezium, '<prefix>._heartbeat' otherwise (default: none)")
	fs.BoolVar(&c.HeartbeatDataTopics, "heartbeat-data-topics", c.HeartbeatDataTopics,
		"also write the heartbeat record into every partition of every data topic (not with --encoding debezium)")
	c.SchemaRegistry.RegisterFlags(fs)
	fs.StringVar(&c.TransactionalID, "transactional-id", c.TransactionalID,
		"Kafka transactional id of the producer (default logbridge-source-<topic-prefix>); exactly one running connector may use it")
	fs.Int64Var(&c.SyncEpoch, "sync-epoch", c.SyncEpoch, "sync epoch written into every record (incremented on each reversal)")
	fs.Func("start-at", "skip the snapshot and start the change stream at this source cluster time, written T.I (seconds.increment); for a destination that already holds the data", func(v string) error {
		var t, i uint32
		if _, err := fmt.Sscanf(v, "%d.%d", &t, &i); err != nil {
			return fmt.Errorf("start-at %q: write the cluster time as seconds.increment, e.g. 1732240000.1", v)
		}
		c.StartAt = &bson.Timestamp{T: t, I: i}
		return nil
	})
	fs.StringVar(&c.SourceName, "source-name", c.SourceName, "name of the source written into every record (default: the replica set name)")
	fs.StringVar(&c.Compression, "kafka-compression", c.Compression,
		"compression of the record batches written to Kafka: none, gzip, snappy, lz4 or zstd (the retained log is stored as written)")
	fs.IntVar(&c.BatchMaxRecords, "batch-max-records", c.BatchMaxRecords, "most records per Kafka transaction")
	fs.IntVar(&c.BatchMaxBytes, "batch-max-bytes", c.BatchMaxBytes, "most encoded bytes per Kafka transaction")
	fs.Var(&c.MaxReadRate, "max-read-rate", "throttle of the snapshot's source reads, per second: docs=N, bytes=N[K|M|G|KiB|MiB|GiB] or both (docs=5000,bytes=8MiB); empty: unlimited. The change stream is not throttled. Changeable while running through POST /api/v1/throttle")
	fs.DurationVar(&c.ProgressInterval, "progress-interval", c.ProgressInterval, "period of the progress log lines")
}

// Validate checks the settings together.
func (c *Config) Validate() error {
	var errs []error
	if c.SourceURI == "" {
		errs = append(errs, errors.New("source-uri is required: give the source's mongodb:// or mongodb+srv:// URI (or --cluster0/--cluster1 for mongosync mode)"))
	} else if err := mongox.ValidateURI(c.SourceURI); err != nil {
		// Refused now, not on every connection attempt later.
		errs = append(errs, fmt.Errorf("source-uri: %w", err))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := publish.NewRouter(c.TopicPrefix, c.TopicRoute); err != nil {
		errs = append(errs, err)
	}
	if _, err := nsfilter.New(c.Include, c.Exclude); err != nil {
		errs = append(errs, err)
	}
	if c.Partitions < 1 || c.Partitions > 10000 {
		errs = append(errs, fmt.Errorf("partitions %d: use 1..10000", c.Partitions))
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("replication-factor %d: use -1 (broker default) or a positive number", c.ReplicationFactor))
	}
	if c.SnapshotParallelism < 1 || c.SnapshotParallelism > 256 {
		errs = append(errs, fmt.Errorf("snapshot-parallelism %d: use 1..256", c.SnapshotParallelism))
	}
	if c.SnapshotBatchSize < 1 {
		errs = append(errs, fmt.Errorf("snapshot-batch-size %d: must be at least 1", c.SnapshotBatchSize))
	}
	if c.SnapshotRangeDocs < 1 {
		errs = append(errs, fmt.Errorf("snapshot-range-docs %d: must be positive", c.SnapshotRangeDocs))
	}
	switch c.FullDocument {
	case capture.ModeOff, capture.ModeUpdateLookup, capture.ModeWhenAvailable, capture.ModeRequired:
	default:
		errs = append(errs, fmt.Errorf("full-document %q: use off, updateLookup, whenAvailable or required", c.FullDocument))
	}
	switch c.FullDocumentBeforeChange {
	case capture.ModeOff, capture.ModeWhenAvailable, capture.ModeRequired:
	default:
		errs = append(errs, fmt.Errorf("full-document-before-change %q: use off, whenAvailable or required", c.FullDocumentBeforeChange))
	}
	if c.StreamBatchWait < 0 || c.StreamBatchWait > time.Second {
		errs = append(errs, fmt.Errorf("stream-batch-wait %s: use 0 (no wait) up to 1s", c.StreamBatchWait))
	}
	if c.HeartbeatInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("heartbeat-interval %s: use at least 100ms", c.HeartbeatInterval))
	}
	switch schema.Encoding(c.Encoding) {
	case schema.EncodingSingleObject, schema.EncodingJSON, schema.EncodingConnectJSON:
	case schema.EncodingDebezium:
		if c.HeartbeatDataTopics {
			errs = append(errs, errors.New("heartbeat-data-topics cannot be used with encoding debezium (Debezium consumers expect heartbeats only in the heartbeat topic): use --heartbeat-topic"))
		}
	case schema.EncodingConfluent:
		if !c.SchemaRegistry.Configured() {
			errs = append(errs, errors.New("encoding confluent needs --schema-registry-url"))
		}
	default:
		errs = append(errs, fmt.Errorf("encoding %q: use avro-single-object, confluent, json, connect-json or debezium", c.Encoding))
	}
	if c.ConfluentKeys && schema.Encoding(c.Encoding) != schema.EncodingConfluent {
		errs = append(errs, fmt.Errorf("confluent-keys needs --encoding confluent (the encoding is %s)", c.Encoding))
	}
	if h := c.HeartbeatTopic; h != "" && (h == c.TopicPrefix+"._source_state" || h == c.TopicPrefix+"._control" || !validTopicName(h)) {
		errs = append(errs, fmt.Errorf("heartbeat-topic %q: name a topic of its own (letters, digits, '.', '_', '-'), e.g. %s._heartbeat", c.HeartbeatTopic, c.TopicPrefix))
	}
	if err := c.SchemaRegistry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, ok := compressionCodecs[c.Compression]; !ok {
		errs = append(errs, fmt.Errorf("kafka-compression %q: use none, gzip, snappy, lz4 or zstd", c.Compression))
	}
	if c.SyncEpoch < 0 {
		errs = append(errs, fmt.Errorf("sync-epoch %d is negative", c.SyncEpoch))
	}
	if c.BatchMaxRecords < 1 {
		errs = append(errs, fmt.Errorf("batch-max-records %d: must be at least 1", c.BatchMaxRecords))
	}
	if c.BatchMaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("batch-max-bytes %d: must be at least 1024", c.BatchMaxBytes))
	}
	if err := c.MaxReadRate.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("max-read-rate: %w", err))
	}
	if c.ProgressInterval <= 0 {
		errs = append(errs, fmt.Errorf("progress-interval %v: must be positive, e.g. 10s", c.ProgressInterval))
	}
	return errors.Join(errs...)
}

// transactionalID is the configured or derived transactional id.
func (c *Config) transactionalID() string {
	if c.TransactionalID != "" {
		return c.TransactionalID
	}
	return "logbridge-source-" + c.TopicPrefix
}

// validTopicName reports whether Kafka accepts name as a topic name.
func validTopicName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
