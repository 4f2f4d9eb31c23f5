package app

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/pkg/config"
)

// validConfig is the defaults plus the two settings that have none.
func validConfig() Config {
	c := DefaultConfig()
	c.SourceURI = "mongodb://db1:27017/?replicaSet=rs0"
	c.Kafka.Brokers = config.StringList{"k1:9092"}
	return c
}

func TestConfigDefaultsValidate(t *testing.T) {
	c := DefaultConfig()
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "source-uri is required") || !strings.Contains(err.Error(), "kafka-brokers is required") {
		t.Fatalf("got %v, want the defaults to require source-uri and kafka-brokers (no silent 127.0.0.1)", err)
	}
	c = validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with a URI and brokers do not validate: %v", err)
	}
	for _, enc := range []string{"json", "connect-json", "debezium"} {
		c := validConfig()
		c.Encoding, c.HeartbeatTopic = enc, "logbridge._heartbeat"
		if err := c.Validate(); err != nil {
			t.Errorf("--encoding %s with --heartbeat-topic: %v", enc, err)
		}
	}
	if c.transactionalID() != "logbridge-source-logbridge" {
		t.Errorf("transactional id %q", c.transactionalID())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{name: "confluent without registry", mutate: func(c *Config) { c.Encoding = "confluent" }, want: "schema-registry-url"},
		{name: "registry credentials in the URL", mutate: func(c *Config) { c.SchemaRegistry.URL = "https://u:pw@r" }, want: "must not carry credentials"},
		{name: "bad full document", mutate: func(c *Config) { c.FullDocument = "always" }, want: "full-document"},
		{name: "bad before change", mutate: func(c *Config) { c.FullDocumentBeforeChange = "updateLookup" }, want: "full-document-before-change"},
		{name: "bad include", mutate: func(c *Config) { c.Include = config.StringList{"nodot"} }, want: "include"},
		{name: "bad route", mutate: func(c *Config) { c.TopicRoute = "{prefix}.x" }, want: "topic-route"},
		{name: "zero partitions", mutate: func(c *Config) { c.Partitions = 0 }, want: "partitions"},
		{name: "empty uri", mutate: func(c *Config) { c.SourceURI = "" }, want: "source-uri"},
		{name: "malformed uri", mutate: func(c *Config) { c.SourceURI = "mongodb://u:secret@h:99999/" }, want: "source-uri: not a valid MongoDB connection string"},
		{name: "tiny heartbeat", mutate: func(c *Config) { c.HeartbeatInterval = 1 }, want: "heartbeat"},
		{name: "unknown compression", mutate: func(c *Config) { c.Compression = "brotli" }, want: "kafka-compression"},
		{name: "no brokers", mutate: func(c *Config) { c.Kafka.Brokers = nil }, want: "kafka-brokers"},
		{name: "too many partitions", mutate: func(c *Config) { c.Partitions = 10001 }, want: "partitions"},
		{name: "zero replication factor", mutate: func(c *Config) { c.ReplicationFactor = 0 }, want: "replication-factor"},
		{name: "replication factor below -1", mutate: func(c *Config) { c.ReplicationFactor = -2 }, want: "replication-factor"},
		{name: "zero parallelism", mutate: func(c *Config) { c.SnapshotParallelism = 0 }, want: "snapshot-parallelism"},
		{name: "huge parallelism", mutate: func(c *Config) { c.SnapshotParallelism = 257 }, want: "snapshot-parallelism"},
		{name: "zero snapshot batch", mutate: func(c *Config) { c.SnapshotBatchSize = 0 }, want: "snapshot-batch-size"},
		{name: "negative snapshot batch", mutate: func(c *Config) { c.SnapshotBatchSize = -1 }, want: "snapshot-batch-size"},
		{name: "zero range docs", mutate: func(c *Config) { c.SnapshotRangeDocs = 0 }, want: "snapshot-range-docs"},
		{name: "negative heartbeat", mutate: func(c *Config) { c.HeartbeatInterval = -1 }, want: "heartbeat"},
		{name: "negative stream batch wait", mutate: func(c *Config) { c.StreamBatchWait = -1 }, want: "stream-batch-wait"},
		{name: "stream batch wait over a second", mutate: func(c *Config) { c.StreamBatchWait = 2 * time.Second }, want: "stream-batch-wait"},
		{name: "negative epoch", mutate: func(c *Config) { c.SyncEpoch = -1 }, want: "sync-epoch"},
		{name: "zero batch records", mutate: func(c *Config) { c.BatchMaxRecords = 0 }, want: "batch-max-records"},
		{name: "tiny batch bytes", mutate: func(c *Config) { c.BatchMaxBytes = 1023 }, want: "batch-max-bytes"},
		{name: "zero progress interval", mutate: func(c *Config) { c.ProgressInterval = 0 }, want: "progress-interval"},
		{name: "negative progress interval", mutate: func(c *Config) { c.ProgressInterval = -1 }, want: "progress-interval"},
		{name: "confluent keys without confluent", mutate: func(c *Config) { c.ConfluentKeys = true }, want: "confluent-keys needs --encoding confluent"},
		{name: "unknown encoding", mutate: func(c *Config) { c.Encoding = "protobuf" }, want: "connect-json or debezium"},
		{name: "debezium heartbeats in data topics", mutate: func(c *Config) { c.Encoding = "debezium"; c.HeartbeatDataTopics = true }, want: "heartbeat-data-topics"},
		{name: "heartbeat topic is the state topic", mutate: func(c *Config) { c.HeartbeatTopic = c.TopicPrefix + "._source_state" }, want: "heartbeat-topic"},
		{name: "heartbeat topic not a topic name", mutate: func(c *Config) { c.HeartbeatTopic = "beats/1" }, want: "heartbeat-topic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := New(c, nil, nil); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigFlagsEnv(t *testing.T) {
	t.Setenv("LOGBRIDGE_SOURCE_TOPIC_PREFIX", "fromenv")
	c := DefaultConfig()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := config.Parse(fs, "LOGBRIDGE_SOURCE", []string{"--source-uri", "mongodb://db1/", "--kafka-brokers", "k1:9092", "--include", "a.*,b.c", "--partitions", "8", "--full-document", "updateLookup"}); err != nil {
		t.Fatal(err)
	}
	if c.TopicPrefix != "fromenv" || c.Partitions != 8 || len(c.Include) != 2 || c.FullDocument != "updateLookup" {
		t.Errorf("config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}
