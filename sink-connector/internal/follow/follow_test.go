package follow

import (
	"context"
	"encoding/json"
	"github.com/logbridge/logbridge/pkg/mongox"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/control"
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

func testConfig(brokers []string) sink.Config {
	cfg := sink.DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.TopicPrefix = "lb"
	cfg.Group = "g"
	cfg.HTTP.Addr = "127.0.0.1:0"
	// Nothing listens there: starting an epoch's sink fails fast.
	cfg.Cluster0 = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
	cfg.Cluster1 = "mongodb://127.0.0.1:2/?serverSelectionTimeoutMS=200"
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
	rev := p.Reversed()
	rev.BuildIndexes = ""
	c, err = f.EpochConfig(control.Status{State: control.Running, Epoch: 2, Params: rev})
	if err != nil {
		t.Fatal(err)
	}
	if c.DestURI != "mongodb://c0" || c.TopicPrefix != "lb-e2" || c.Group != "g-e2" || !c.BuildIndexes || strings.Join(c.NSMap, ",") != "b.*=a.*" {
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	restartDelay = 0
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
	clog, err := control.NewLog(ctx, []kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	params := control.StartParams{Source: "cluster0", Destination: "cluster1", Reversible: true}
	if err := clog.Append(ctx, control.Event{Type: control.EvStart, Params: &params}); err != nil {
		t.Fatal(err)
	}
	err = f.Reconcile(ctx)
	if err == nil || !strings.Contains(err.Error(), "starting the epoch 1 sink") {
		t.Fatalf("RUNNING with an unreachable destination: got %v", err)
	}
	f.setErr(err)
	p := f.Progress()
	if p.State != control.Running || p.Epoch != 1 || p.Running || p.Destination != "cluster1" || p.TopicPrefix != "lb" || p.Error == "" {
		t.Fatalf("running progress: %+v", p)
	}
	if err := clog.Append(ctx, control.Event{Type: control.EvPause}); err != nil {
		t.Fatal(err)
	}
	if err := f.Reconcile(ctx); err != nil {
		t.Fatalf("PAUSED must not start a sink: %v", err)
	}
	rec := httptest.NewRecorder()
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
