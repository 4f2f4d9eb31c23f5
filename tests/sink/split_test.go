package sink_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkAppliesSplitEvent: an update whose change event exceeds 16 MiB
// (a 6 MiB field changed, with post-image, pre-image and update description:
// ~18 MiB) reaches the source as $changeStreamSplitLargeEvent fragments over
// several getMores, goes into the log as one record, and the sink applies it:
// the destination document equals the source's byte for byte, and the
// stream goes on after it.
func TestSinkAppliesSplitEvent(t *testing.T) {
	env, src, dest, ctx, db := sourceAndDest(t, 4*time.Minute)
	ns := schema.Namespace{DB: db, Coll: "big"}
	if err := src.Database(db).CreateCollection(ctx, ns.Coll); err != nil {
		t.Fatal(err)
	}
	if err := src.Database(db).RunCommand(ctx, bson.D{{Key: "collMod", Value: ns.Coll},
		{Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}}}).Err(); err != nil {
		t.Fatalf("enabling pre- and post-images: %v", err)
	}
	coll := src.Database(db).Collection(ns.Coll)
	const size = 6 << 20
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: strings.Repeat("a", size)}}); err != nil {
		t.Fatal(err)
	}

	prefix := testenv.TopicPrefix(t)
	source := startSourceProc(t, ctx, env, prefix, db, "phase=streaming", "--partitions", "2",
		"--full-document", "required", "--full-document-before-change", "required")
	runSink(t, sourceSinkCfg(env, prefix))

	if _, err := coll.UpdateByID(ctx, 1, bson.D{{Key: "$set", Value: bson.D{{Key: "blob", Value: strings.Repeat("b", size)}, {Key: "n", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "small", Value: true}}); err != nil {
		t.Fatal(err)
	}
	want := expect{}
	for k, v := range snapshotOf(t, src, ns) {
		want[k] = v
	}
	if len(want) != 2 {
		t.Fatalf("source holds %d documents, want 2", len(want))
	}
	waitEqual(t, dest, ns, want, 2*time.Minute)
	// The source did get the event as fragments.
	// the source logs `msg="HTTP listening" url=http://127.0.0.1:PORT`
	_, rest, ok := strings.Cut(source.Tail(1<<20), `msg="HTTP listening" url=`)
	if !ok {
		t.Fatal("the source's log does not show its HTTP address")
	}
	url, _, _ := strings.Cut(rest, " ")
	url, _, _ = strings.Cut(url, "\n")
	if n := metricValue(t, strings.TrimSpace(url)+"/metrics", "logbridge_source_split_events_total"); n != 1 {
		t.Errorf("logbridge_source_split_events_total = %v, want 1: the event did not arrive split", n)
	}
}

// metricValue reads one unlabelled metric from a /metrics endpoint.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("%s has no %s", url, name)
	return 0
}
