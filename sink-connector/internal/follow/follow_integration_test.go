package follow

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
	"github.com/logbridge/logbridge/sink-connector/sink"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkCommittedAfterEveryTopic: with the state COMMITTING and a commit
// marker, the follower appends sinkCommitted (with the destination's cluster
// time) only once the destination records the marker in every data topic.
func TestSinkCommittedAfterEveryTopic(t *testing.T) {
	env := testenv.New(t)
	ctx := testenv.Context(t, 2*time.Minute)
	prefix := testenv.TopicPrefix(t)
	dest := env.Dest(t)
	adm := env.Admin(t)
	topics := []string{prefix + ".db.a", prefix + ".db.b"}
	if _, err := adm.CreateTopics(ctx, 2, 1, nil, topics...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(ctx, append(topics, control.Topic(prefix))...) })

	cfg := sink.DefaultConfig()
	cfg.Kafka.Brokers = env.KafkaBrokers
	cfg.TopicPrefix, cfg.Group, cfg.HTTP.Addr = prefix, prefix+"-g", ""
	cfg.Cluster0, cfg.Cluster1 = env.SourceURI, env.DestURI
	cfg.SessionTimeout = 6 * time.Second
	f, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer f.stop()
	meta := dest.Database(apply.MetaDB).Collection(apply.AppliedColl)
	t.Cleanup(func() { _, _ = meta.DeleteMany(ctx, bson.D{{Key: "_id.g", Value: cfg.Group}}) })

	clog, err := control.NewLog(ctx, []kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	const marker = "commit/e1/5.1"
	params := control.StartParams{Source: "cluster0", Destination: "cluster1"}
	for _, ev := range []control.Event{{Type: control.EvStart, Params: &params}, {Type: control.EvCommit},
		{Type: control.EvCommitMarked, MarkerID: marker, ClusterTime: &control.ClusterTime{T: 5, I: 1}}} {
		if err := clog.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	record := func(topic string) {
		t.Helper()
		if _, err := meta.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "g", Value: cfg.Group}, {Key: "id", Value: marker},
			{Key: "ns", Value: apply.MarkerKey(topic)}}}, {Key: "kind", Value: "marker:commit"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"applied in 0 of 2", "applied in 1 of 2"} {
		if i == 1 {
			record(topics[0])
		}
		if err := f.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if p := f.Progress(); p.SinkCommitted || !strings.Contains(p.CommitWait, want) {
			t.Fatalf("step %d: progress %+v, want waiting with %q", i, p, want)
		}
	}
	record(topics[1])
	if err := f.Reconcile(ctx); err != nil {
		if strings.Contains(err.Error(), "cluster time") {
			t.Skipf("the destination %s reports no cluster time, so the sink cannot record where a reversal starts: %v", env.DestURI, err)
		}
		t.Fatal(err)
	}
	st, _, err := clog.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.SinkCommitted || st.ResumeDestTime == nil || st.ResumeDestTime.T == 0 {
		t.Fatalf("after the last topic: %+v, want sinkCommitted with a destination cluster time", st)
	}
	t.Logf("sinkCommitted at destination time %d.%d", st.ResumeDestTime.T, st.ResumeDestTime.I)
}
