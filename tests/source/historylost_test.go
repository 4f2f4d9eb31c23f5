package source

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/testenv"
)

// TestHistoryLostStops: when the stored resume point is no longer in the
// source's oplog, the connector stops with ChangeStreamHistoryLost, says
// what to do, exits 1 and publishes nothing more.
//
// A real oplog rolls over after long downtime; here the connector streams,
// stops, and its stored resume token is replaced (in the source-state topic,
// the way a rolled-over oplog leaves it: a token of MongoDB's shape whose
// cluster time is older than the oldest oplog entry). The local shim answers
// such a resume with code 286, as MongoDB does (docs/testing.md).
func TestHistoryLostStops(t *testing.T) {
	env := testenv.New(t)
	if !genuine(t, env) {
		t.Skip("the source lacks replica set semantics the connector needs (see docs/testing.md)")
	}
	ctx := testenv.Context(t, 5*time.Minute)
	cl := env.Source(t)
	db := testenv.DBName(t)
	prefix := testenv.TopicPrefix(t)
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
	coll := cl.Database(db).Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--source-uri", env.SourceURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
		"--include", db + ".*", "--partitions", "2", "--heartbeat-interval", "200ms"}
	p := start(t, args...)
	p.waitFor(t, "phase=streaming", 2*time.Minute)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for p.metric(`logbridge_source_events_published_total{op="insert"}`) < 1 || p.metric("logbridge_source_heartbeats_total") < 2 {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("the insert and a heartbeat were not published:\n%s", p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit status %d after SIGTERM:\n%s", code, p.output())
	}

	stateTopic := prefix + "._source_state"
	var stream bson.Raw
	for _, r := range testenv.ReadTopic(t, env.KafkaBrokers, stateTopic) {
		if string(r.Key) == "stream" {
			stream = r.Value
		}
	}
	if stream == nil {
		t.Fatalf("no stream checkpoint in %s", stateTopic)
	}
	data, ok := stream.Lookup("token", "_data").StringValueOK()
	if !ok || len(data) < 18 || !strings.HasPrefix(data, "82") {
		t.Skipf("the resume token %v does not have MongoDB's KeyString shape (type byte 130 + cluster time); cannot age it", stream.Lookup("token"))
	}
	// The same token with cluster time 1.1 (1970): older than any oplog.
	old := "82" + hex.EncodeToString([]byte{0, 0, 0, 1, 0, 0, 0, 1}) + data[18:]
	val, err := bson.Marshal(bson.D{{Key: "token", Value: bson.D{{Key: "_data", Value: old}}}, {Key: "clusterTime", Value: bson.Timestamp{T: 1, I: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	kc := env.Kafka(t)
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: stateTopic, Key: []byte("stream"), Value: val}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dataTopic := prefix + "." + db + ".c"
	before := len(testenv.ReadTopic(t, env.KafkaBrokers, dataTopic))

	p = start(t, args...)
	if code := p.wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("exit status %d, want 1; output:\n%s", code, p.output())
	}
	out := p.output()
	for _, want := range []string{"ChangeStreamHistoryLost", "no longer in the source oplog", "start a new sync", "size the oplog"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	if after := len(testenv.ReadTopic(t, env.KafkaBrokers, dataTopic)); after != before {
		t.Errorf("%d records published after the resume point was lost", after-before)
	}
	t.Log(lastLine(out, "history"))
}

func lastLine(out, sub string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(strings.ToLower(lines[i]), sub) {
			return lines[i]
		}
	}
	return fmt.Sprintf("(no line with %q)", sub)
}
