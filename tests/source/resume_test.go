package source

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestStreamCutResumes: the source's change stream is cut mid-stream, again
// and again, the ways a server cuts it — the connection closed under a
// getMore (closeConnection), a getMore failing after its cursor was checked
// out and the cursor gone (failGetMoreAfterCursorCheckout, a resumable
// NotWritablePrimary), a getMore failing with HostUnreachable and the
// ResumableChangeStreamError label — while documents are inserted and
// updated. The connector resumes each time from its token: the log holds
// every event exactly once, each document's events in order.
//
// The fail points are the source server's (mongod's test commands; the
// shim's, docs/testing.md); they are limited to the connector's connections
// by its appName, and the test skips where the server has none.
func TestStreamCutResumes(t *testing.T) {
	env := testenv.New(t)
	if !genuine(t, env) {
		t.Skip("the source lacks replica set semantics the connector needs (see docs/testing.md)")
	}
	ctx := testenv.Context(t, 5*time.Minute)
	cl := env.Source(t)
	db := testenv.DBName(t)
	prefix := testenv.TopicPrefix(t)
	app := "lbcut-" + strings.ReplaceAll(prefix, ".", "-")
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
	configure := func(fp string, mode any, data bson.D) (bson.Raw, error) {
		return testenv.ConfigureFailPoint(ctx, cl, fp, mode, data)
	}
	// fail point counts are cumulative: what they were before is kept
	before := 0.0
	for _, fp := range []string{"failCommand", "failGetMoreAfterCursorCheckout"} {
		r, err := configure(fp, "off", nil)
		if err != nil {
			t.Skipf("the source has no %s fail point (mongod needs enableTestCommands): %v", fp, err)
		}
		n, _ := r.Lookup("count").AsInt64OK()
		before += float64(n)
	}
	t.Cleanup(func() {
		_, _ = configure("failCommand", "off", nil)
		_, _ = configure("failGetMoreAfterCursorCheckout", "off", nil)
	})
	coll := cl.Database(db).Collection("c")
	if err := cl.Database(db).CreateCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	uri, err := url.Parse(env.SourceURI)
	if err != nil {
		t.Fatal(err)
	}
	q := uri.Query()
	q.Set("appName", app)
	uri.RawQuery = q.Encode()
	p := start(t, "--source-uri", uri.String(), "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
		"--include", db+".*", "--partitions", "2")
	p.waitFor(t, "phase=streaming", 2*time.Minute)

	const docs, rounds = 60, 5
	cuts := []struct {
		fp   string
		data bson.D
	}{
		{"failCommand", bson.D{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: app}}},
		{"failGetMoreAfterCursorCheckout", bson.D{{Key: "errorCode", Value: 10107}, {Key: "errorLabels", Value: bson.A{"ResumableChangeStreamError"}}, {Key: "appName", Value: app}}},
		{"failCommand", bson.D{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "errorCode", Value: 6}, {Key: "errorLabels", Value: bson.A{"ResumableChangeStreamError"}}, {Key: "appName", Value: app}}},
	}
	writes := 0
	for r := range rounds {
		for i := range docs {
			if r == 0 {
				_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(0)}})
			} else {
				_, err = coll.UpdateByID(ctx, int32(i), bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(r)}}}})
			}
			if err != nil {
				t.Fatal(err)
			}
			writes++
			if i%20 == 10 { // cut the stream in the middle of the writes
				c := cuts[(r*3+i/20)%len(cuts)]
				if _, err := configure(c.fp, bson.D{{Key: "times", Value: 1}}, c.data); err != nil {
					t.Fatalf("configureFailPoint %s: %v", c.fp, err)
				}
				time.Sleep(300 * time.Millisecond)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for p.metric(`logbridge_source_events_published_total{op="insert"}`)+p.metric(`logbridge_source_events_published_total{op="update"}`) < float64(writes) {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("%d writes, %v published:\n%s", writes, p.metric(`logbridge_source_events_published_total`), p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	fired := 0.0
	for _, fp := range []string{"failCommand", "failGetMoreAfterCursorCheckout"} {
		r, err := configure(fp, "off", nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := r.Lookup("count").AsInt64OK()
		t.Logf("%s: count %d", fp, n)
		fired += float64(n)
	}
	fired -= before
	if fired < 3 {
		t.Errorf("the fail points fired %v times, want at least 3: the stream was not cut", fired)
	}

	// every write once, in order per document
	next := map[int32]int32{}
	for _, rec := range readLog(t, env, prefix+"."+db+".c") {
		if rec.ev.Op != schema.OpInsert && rec.ev.Op != schema.OpUpdate {
			continue
		}
		var id int32
		if err := bson.Unmarshal(rec.ev.DocumentKey, &struct {
			ID *int32 `bson:"_id"`
		}{&id}); err != nil {
			t.Fatal(err)
		}
		var v bson.RawValue
		if rec.ev.Op == schema.OpInsert {
			v = rec.ev.FullDocument.Lookup("v")
		} else {
			v = rec.ev.Update.UpdatedFields.Lookup("v")
		}
		got, _ := v.Int32OK()
		if want := next[id]; got != want {
			t.Errorf("_id %d: event with v=%d at %s/%d@%d, want v=%d (%s)", id, got, rec.topic, rec.part, rec.offset, want, map[bool]string{true: "a duplicate", false: "a gap"}[got < want])
			continue
		}
		next[id] = got + 1
	}
	for i := range int32(docs) {
		if next[i] != rounds {
			t.Errorf("_id %d: %d of %d events in the log", i, next[i], rounds)
		}
	}
	if t.Failed() {
		t.Logf("connector output:\n%s", p.output())
	}
}
