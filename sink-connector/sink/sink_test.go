package sink

import (
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logbridge/logbridge/pkg/config"
)

func parse(t *testing.T, args ...string) Config {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	// Brokers have no default; a case that tests their absence overrides it.
	args = append([]string{"--kafka-brokers", "k1:9092"}, args...)
	if err := config.Parse(fs, "LOGBRIDGE_SINK_TEST", args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "ok", args: []string{"--dest-uri", "mongodb://x"}},
		{name: "no dest", args: []string{"--dest-uri", ""}, wantErr: "dest-uri is required"},
		{name: "no brokers", args: []string{"--dest-uri", "mongodb://x", "--kafka-brokers", ""}, wantErr: "kafka-brokers is required"},
		{name: "w0", args: []string{"--dest-uri", "mongodb://x", "--write-concern", "0"}, wantErr: "unacknowledged"},
		{name: "tolerance", args: []string{"--dest-uri", "mongodb://x", "--error-tolerance", "some"}, wantErr: "error-tolerance"},
		{name: "ns-map", args: []string{"--dest-uri", "mongodb://x", "--ns-map", "a.*=b.c"}, wantErr: "ns-map"},
		{name: "start-from", args: []string{"--dest-uri", "mongodb://x", "--start-from", "middle"}, wantErr: "start-from"},
		{name: "transactions", args: []string{"--dest-uri", "mongodb://x", "--transactions"}},
		{name: "flush when the queue runs empty", args: []string{"--dest-uri", "mongodb://x", "--flush-interval", "0s"}},
		{name: "registry user without password", args: []string{"--dest-uri", "mongodb://x", "--schema-registry-url", "https://r", "--schema-registry-user", "u"}, wantErr: "--schema-registry-user needs a password"},
		{name: "registry token file", args: []string{"--dest-uri", "mongodb://x", "--schema-registry-url", "https://r", "--schema-registry-token-file", "/run/t", "--schema-registry-ca-file", "/ca.pem"}},
		{name: "transaction wait", args: []string{"--dest-uri", "mongodb://x", "--transactions", "--transaction-wait", "0s"}, wantErr: "transaction-wait 0s: must be positive"},
		{name: "transaction wait without transactions", args: []string{"--dest-uri", "mongodb://x", "--transaction-wait", "-1s"}, wantErr: "transaction-wait -1s"},
		{name: "transaction size", args: []string{"--dest-uri", "mongodb://x", "--transactions", "--transaction-max-events", "0"}, wantErr: "transaction-max-events 0: must be at least 1"},
		// Checked by the consumer's Validate on the settings the sink derives.
		{name: "batch size", args: []string{"--dest-uri", "mongodb://x", "--batch-size", "0"}, wantErr: "batch-size 0: must be at least 1"},
		{name: "flush interval", args: []string{"--dest-uri", "mongodb://x", "--flush-interval", "-1s"}, wantErr: "flush-interval -1s: must be 0"},
		{name: "parallelism", args: []string{"--dest-uri", "mongodb://x", "--parallelism", "0"}, wantErr: "parallelism 0: must be at least 1"},
		{name: "group", args: []string{"--dest-uri", "mongodb://x", "--group", ""}, wantErr: "group is empty"},
		{name: "malformed dest uri", args: []string{"--dest-uri", "mongodb://h:99999/"}, wantErr: "dest-uri: not a valid MongoDB connection string"},
		{name: "malformed cluster uri", args: []string{"--cluster0", "mongo://h", "--cluster1", "mongodb://h2"}, wantErr: "cluster0: not a valid MongoDB connection string"},
		{name: "topic regex", args: []string{"--dest-uri", "mongodb://x", "--topic-regex", "a("}, wantErr: "topic-regex \"a(\" is not a valid regular expression"},
		{name: "zero batch", args: []string{"--dest-uri", "mongodb://x", "--batch-size", "0"}, wantErr: "batch-size 0"},
		{name: "negative batch", args: []string{"--dest-uri", "mongodb://x", "--batch-size", "-3"}, wantErr: "batch-size -3"},
		{name: "negative flush", args: []string{"--dest-uri", "mongodb://x", "--flush-interval", "-5ms"}, wantErr: "flush-interval -5ms"},
		{name: "zero parallelism", args: []string{"--dest-uri", "mongodb://x", "--parallelism", "0"}, wantErr: "parallelism 0"},
		{name: "negative session timeout", args: []string{"--dest-uri", "mongodb://x", "--session-timeout", "-1s"}, wantErr: "session-timeout -1s"},
		{name: "zero control poll", args: []string{"--dest-uri", "mongodb://x", "--control-poll", "0s"}, wantErr: "control-poll 0s"},
		{name: "tiny restart backoff", args: []string{"--dest-uri", "mongodb://x", "--restart-backoff-max", "100ms"}, wantErr: "restart-backoff-max 100ms"},
		{name: "empty group", args: []string{"--dest-uri", "mongodb://x", "--group", ""}, wantErr: "group is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.args...)
			err := c.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSubscription(t *testing.T) {
	c := parse(t, "--dest-uri", "mongodb://x")
	inc, exc := c.subscription()
	matches := func(topic string) bool {
		if !regexp.MustCompile(inc).MatchString(topic) {
			return false
		}
		for _, x := range exc {
			if regexp.MustCompile(x).MatchString(topic) {
				return false
			}
		}
		return true
	}
	for topic, want := range map[string]bool{
		"logbridge.db.coll":       true,
		"logbridge.db.a.b":        true,
		"logbridge._db.c":         true,
		"logbridge._source_state": false,
		"logbridge._control":      false,
		"logbridge._dlq":          false,
		"other.db.coll":           false,
		"logbridgex.db.coll":      false,
	} {
		if got := matches(topic); got != want {
			t.Errorf("topic %s: got %v, want %v", topic, got, want)
		}
	}
	if c.DLQ() != "logbridge._dlq" {
		t.Errorf("got DLQ %s, want logbridge._dlq", c.DLQ())
	}
}

func TestCounterTotal(t *testing.T) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"op"})
	c.WithLabelValues("insert").Add(3)
	c.WithLabelValues("delete").Add(4)
	if got := counterTotal(c); got != 7 {
		t.Fatalf("got %v, want 7 (the sum over label values)", got)
	}
}

// The default flush interval is 0: a partial batch is flushed as soon as its
// partition has nothing more queued (low lag at moderate rates, issue 21).
func TestDefaultFlushesWhenQueueRunsEmpty(t *testing.T) {
	if c := parse(t, "--dest-uri", "mongodb://x"); c.FlushInterval != 0 {
		t.Fatalf("got flush interval %v, want 0", c.FlushInterval)
	}
}
