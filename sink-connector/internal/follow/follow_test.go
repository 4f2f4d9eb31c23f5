package follow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/sink-connector/sink"
)

func TestNSMapRules(t *testing.T) {
	got, err := NSMapRules([]control.Remap{
		{From: control.NamespaceRef{Database: "shop"}, To: control.NamespaceRef{Database: "shop2"}},
		{From: control.NamespaceRef{Database: "crm", Collection: "a"}, To: control.NamespaceRef{Database: "crm2"}},
		{From: control.NamespaceRef{Database: "crm", Collection: "b"}, To: control.NamespaceRef{Database: "x", Collection: "y"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shop.*=shop2.*", "crm.a=crm2.a", "crm.b=x.y"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := NSMapRules([]control.Remap{{From: control.NamespaceRef{Database: "a"}, To: control.NamespaceRef{Database: "b", Collection: "c"}}}); err == nil {
		t.Fatal("a database mapped to a collection was accepted")
	}
}

// followSecret is the destination's password: no progress answer may show it.
const followSecret = "FOLLOWpassMARK"

func testConfig(brokers []string) sink.Config {
	cfg := sink.DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.TopicPrefix = "lb"
	cfg.Group = "g"
	cfg.HTTP.Addr = "127.0.0.1:0"
	// Nothing listens there: starting an epoch's sink fails fast.
	cfg.Cluster0 = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
	cfg.Cluster1 = "mongodb://u:" + followSecret + "@127.0.0.1:2/?serverSelectionTimeoutMS=200&authSource=admin"
	return cfg
}

func TestEpochConfig(t *testing.T) {
	f := &Follower{base: testConfig([]string{"x:1"}), prefix: "lb", clusters: map[string]string{"cluster0": "mongodb://c0", "cluster1": "mongodb://c1"}}
	p := control.StartParams{Source: "cluster0", Destination: "cluster1", BuildIndexes: "never",
		NamespaceRemap: []control.Remap{{From: control.NamespaceRef{Database: "a"}, To: control.NamespaceRef{Database: "b"}}}}
	c, err := f.EpochConfig(control.Status{State: control.Running, Epoch: 1, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	if c.DestURI != "mongodb://c1" || c.TopicPrefix != "lb" || c.Group != "g" || c.BuildIndexes || c.HTTP.Addr != "" ||
		c.Managed() || strings.Join(c.NSMap, ",") != "a.*=b.*" {
		t.Fatalf("epoch 1 config: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("epoch 1 config does not validate: %v", err)
	}
	if c.ExcludeHashedIndexes {
		t.Fatal("epoch 1 config: hashed indexes excluded without excludeHashed")
	}
	rev := p.Reversed()
	rev.BuildIndexes = "excludeHashedAfterCopy"
	c, err = f.EpochConfig(control.Status{State: control.Running, Epoch: 2, Params: rev})
	if err != nil {
		t.Fatal(err)
	}
	if c.DestURI != "mongodb://c0" || c.TopicPrefix != "lb-e2" || c.Group != "g-e2" || !c.BuildIndexes || !c.ExcludeHashedIndexes || strings.Join(c.NSMap, ",") != "b.*=a.*" {
		t.Fatalf("epoch 2 config: %+v", c)
	}
	if !c.Subscribes("lb-e2.shop.orders") || c.Subscribes("lb.shop.orders") || c.Subscribes("lb-e2._control") || c.Subscribes("lb-e2._source_state") {
		t.Fatal("epoch 2 subscription is wrong")
	}
	if _, err := f.EpochConfig(control.Status{Epoch: 1, Params: control.StartParams{Destination: "cluster9"}}); err == nil ||
		!strings.Contains(err.Error(), "cluster9") {
		t.Fatalf("unknown destination: got %v", err)
	}
}

func TestManagedConfigValidate(t *testing.T) {
	c := testConfig([]string{"x:1"})
	if err := c.Validate(); err != nil {
		t.Fatalf("managed config: %v", err)
	}
	c.DestURI = "mongodb://d"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "dest-uri") {
		t.Fatalf("managed config with --dest-uri: got %v", err)
	}
	c.DestURI, c.TopicRegex = "", "x.*"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "topic-regex") {
		t.Fatalf("managed config with --topic-regex: got %v", err)
	}
}

// TestFollowsStates follows a control log on an in-memory Kafka: no sink in
// IDLE and PAUSED, an attempt to start one (failing: no destination) in
// RUNNING, progress reporting the state, epoch and error.
func TestFollowsStates(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(kc.ListenAddrs())
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	restartInitial = 20 * time.Millisecond
	t.Cleanup(func() { restartInitial = time.Second })
	f, err := New(ctx, cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if p := f.Progress(); p.State != control.Idle || p.Running || p.Progress != nil {
		t.Fatalf("idle progress: %+v", p)
	}
	if p := f.Progress(); p.Build != version.Get() || p.Build.Version == "" || p.Build.Metadata != version.Metadata() {
		t.Fatalf("progress build: got %+v, want %+v", p.Build, version.Get())
	}
	clog, err := control.NewLog(ctx, []kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	params := control.StartParams{Source: "cluster0", Destination: "cluster1", Reversible: true}
	if err := clog.Append(ctx, control.Event{Type: control.EvStart, Params: &params}); err != nil {
		t.Fatal(err)
	}
	if err := f.Reconcile(ctx); err != nil {
		t.Fatalf("RUNNING: %v", err)
	}
	// The epoch sink cannot reach its destination: the supervisor retries
	// it with backoff and progress says so (redacted).
	var p Progress
	deadline := time.Now().Add(20 * time.Second)
	for p = f.Progress(); p.EpochRestarts < 2; p = f.Progress() {
		if time.Now().After(deadline) {
			t.Fatalf("no two restarts within 20s: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.State != control.Running || p.Epoch != 1 || p.Running || p.Destination != "cluster1" || p.TopicPrefix != "lb" ||
		!strings.Contains(p.Error, "epoch 1 sink") || !strings.Contains(p.LastError, "unreachable") || p.LastErrorTime == nil {
		t.Fatalf("running progress: %+v", p)
	}
	rec := httptest.NewRecorder()
	f.serveProgress(rec, httptest.NewRequest("GET", "/api/v1/progress", nil))
	if !strings.Contains(rec.Body.String(), `"epochRestarts"`) || strings.Contains(rec.Body.String(), followSecret) {
		t.Fatalf("progress answer: got %s, want epochRestarts and no password", rec.Body.String())
	}
	if strings.Contains(logBuf.String(), followSecret) {
		t.Fatalf("the log shows the password:\n%s", logBuf.String())
	}
	// Readiness names what fails, and the state is exported although the
	// epoch's sink cannot start.
	hctx, hcancel := context.WithCancel(ctx)
	hdone := make(chan struct{})
	go func() { defer close(hdone); _ = f.http.Run(hctx) }()
	defer func() { hcancel(); <-hdone }()
	code, ready := get(t, f.http.URL()+"/readyz")
	if code != 503 || !strings.Contains(ready, "[+]kafka ok") || !strings.Contains(ready, "[-]mongodb failed: cluster cluster1 at mongodb://") ||
		!strings.Contains(ready, "[-]pipeline failed: the epoch 1 sink is not running") || strings.Contains(ready, followSecret) {
		t.Fatalf("/readyz with an unreachable destination: got %d %q, want 503 naming mongodb and pipeline, without the password", code, ready)
	}
	_, metrics := get(t, f.http.URL()+"/metrics")
	for _, want := range []string{`logbridge_sink_control_state{state="RUNNING"} 1`, `logbridge_sink_control_state{state="IDLE"} 0`,
		"logbridge_sink_control_epoch 1", "logbridge_sink_epoch_running 0", "logbridge_sink_epoch_restarts_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics while the epoch cannot start: no %q in\n%s", want, metrics)
		}
	}
	if err := clog.Append(ctx, control.Event{Type: control.EvPause}); err != nil {
		t.Fatal(err)
	}
	if err := f.Reconcile(ctx); err != nil {
		t.Fatalf("PAUSED must not start a sink: %v", err)
	}
	rec = httptest.NewRecorder()
	f.serveProgress(rec, httptest.NewRequest("GET", "/api/v1/progress", nil))
	var body struct {
		Progress map[string]any `json:"progress"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Progress["state"] != "PAUSED" || body.Progress["running"] != false || body.Progress["epoch"] != 1.0 {
		t.Fatalf("paused progress: %s", rec.Body.String())
	}
}

func TestResponseTime(t *testing.T) {
	raw, _ := bson.Marshal(bson.D{{Key: "ok", Value: 1}, {Key: "$clusterTime", Value: bson.D{{Key: "clusterTime", Value: bson.Timestamp{T: 7, I: 3}}}}})
	if ts, ok := mongox.ResponseTime(raw); !ok || ts.T != 7 || ts.I != 3 {
		t.Fatalf("got %v %v", ts, ok)
	}
	raw, _ = bson.Marshal(bson.D{{Key: "ok", Value: 1}})
	if _, ok := mongox.ResponseTime(raw); ok {
		t.Fatal("a reply without a time gave one")
	}
}

// TestSetErrExplainsBlockedWrites: a sink stopped by a write the destination
// refused with UserWritesBlocked (the per-write error of a bulk write, wrapped
// as the writer and the consumer wrap it) gets the hint to grant
// bypassWriteBlockingMode; any other error is shown as it is.
func TestSetErrExplainsBlockedWrites(t *testing.T) {
	blocked := mongo.WriteError{Code: 371, Message: "User writes blocked"}
	tests := []struct {
		name     string
		err      error
		wantHint bool
	}{
		{name: "blocked write", err: fmt.Errorf("epoch 1 sink: poison: %w", fmt.Errorf("rejected: insert of db.c key {}: code 371: %w", blocked)), wantHint: true},
		{name: "blocked command", err: fmt.Errorf("epoch 1 sink: %w", mongo.CommandError{Code: 371, Name: "UserWritesBlocked"}), wantHint: true},
		{name: "other write error", err: fmt.Errorf("epoch 1 sink: %w", mongo.WriteError{Code: 121, Message: "Document failed validation"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Follower
			f.setErr(tt.err)
			if got := strings.Contains(f.lastErr, "bypassWriteBlockingMode"); got != tt.wantHint {
				t.Errorf("hint in %q: got %v, want %v", f.lastErr, got, tt.wantHint)
			}
			if !strings.HasPrefix(f.lastErr, tt.err.Error()) {
				t.Errorf("got %q, want it to start with the error %q", f.lastErr, tt.err)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
