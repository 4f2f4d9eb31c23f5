package app

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/logbridge/logbridge/pkg/config"
)

func TestConfigDefaultsValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
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
		{name: "tiny heartbeat", mutate: func(c *Config) { c.HeartbeatInterval = 1 }, want: "heartbeat"},
		{name: "unknown compression", mutate: func(c *Config) { c.Compression = "brotli" }, want: "kafka-compression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
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
	if err := config.Parse(fs, "LOGBRIDGE_SOURCE", []string{"--include", "a.*,b.c", "--partitions", "8", "--full-document", "updateLookup"}); err != nil {
		t.Fatal(err)
	}
	if c.TopicPrefix != "fromenv" || c.Partitions != 8 || len(c.Include) != 2 || c.FullDocument != "updateLookup" {
		t.Errorf("config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}
