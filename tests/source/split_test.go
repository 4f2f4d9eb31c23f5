package source

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestLargeEventSplit: an update whose change event exceeds 16 MiB (a 6 MiB
// field changed, with the post-image, the pre-image and the update
// description: ~18 MiB) arrives as $changeStreamSplitLargeEvent fragments;
// the connector publishes it whole, once, with every part intact, and the
// stream goes on after it, also across a kill -9.
func TestLargeEventSplit(t *testing.T) {
	env := testenv.New(t)
	if !genuine(t, env) {
		t.Skip("the source lacks replica set semantics the connector needs (see docs/testing.md)")
	}
	ctx := testenv.Context(t, 5*time.Minute)
	cl := env.Source(t)
	db := testenv.DBName(t)
	prefix := testenv.TopicPrefix(t)
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
	if err := cl.Database(db).CreateCollection(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Database(db).RunCommand(ctx, bson.D{{Key: "collMod", Value: "big"},
		{Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}}}).Err(); err != nil {
		t.Skipf("the source cannot record pre-images: %v", err)
	}
	coll := cl.Database(db).Collection("big")
	const size = 6 << 20
	before, after := strings.Repeat("a", size), strings.Repeat("b", size)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: before}}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--source-uri", env.SourceURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
		"--include", db + ".*", "--partitions", "2", "--full-document", "required", "--full-document-before-change", "required"}
	p := start(t, args...)
	p.waitFor(t, "phase=streaming", 2*time.Minute)
	if _, err := coll.UpdateByID(ctx, 1, bson.D{{Key: "$set", Value: bson.D{{Key: "blob", Value: after}, {Key: "n", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	waitPublished := func(p *proc, op string, n float64) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for p.metric(`logbridge_source_events_published_total{op="`+op+`"}`) < n {
			if time.Now().After(deadline) || p.exited() {
				t.Fatalf("%v %s event(s) not published:\n%s", n, op, p.output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitPublished(p, "update", 1)
	if n := p.metric("logbridge_source_split_events_total"); n != 1 {
		t.Errorf("logbridge_source_split_events_total = %v, want 1: the source did not split the ~18 MiB event", n)
	}
	// kill -9 right after the split event: the restart resumes after it.
	p.kill9()
	p = start(t, args...)
	p.waitFor(t, "phase=streaming", 2*time.Minute)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "small", Value: true}}); err != nil {
		t.Fatal(err)
	}
	waitPublished(p, "insert", 1)

	var updates, inserts int
	for _, r := range readLog(t, env, prefix+"."+db+".big") {
		switch r.ev.Op {
		case schema.OpUpdate:
			updates++
			ev := r.ev
			if got := ev.FullDocument.Lookup("blob").StringValue(); got != after {
				t.Errorf("post-image blob: %d bytes starting %q, want the %d-byte update", len(got), got[:min(8, len(got))], size)
			}
			if ev.FullDocument.Lookup("n").Int32() != 1 {
				t.Errorf("post-image n = %v, want 1", ev.FullDocument.Lookup("n"))
			}
			if got := ev.FullDocumentBefore.Lookup("blob").StringValue(); got != before {
				t.Errorf("pre-image blob: %d bytes, want the %d-byte original", len(got), size)
			}
			if ev.Update == nil || ev.Update.UpdatedFields.Lookup("blob").StringValue() != after {
				t.Errorf("the update description lacks the new blob (present: %v)", ev.Update != nil)
			}
		case schema.OpInsert:
			inserts++
		}
	}
	if updates != 1 || inserts != 1 {
		t.Errorf("the log has %d update and %d insert events, want 1 and 1 (once each across the kill -9)", updates, inserts)
	}
}
