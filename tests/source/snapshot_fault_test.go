package source

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSnapshotReadErrorsContinue: the snapshot's range reads fail under a
// getMore again and again (the failCommand fail point, limited to the
// connector by its appName) — the connection closed, a retryable server error
// (HostUnreachable), the cursor gone (CursorNotFound) — and the snapshot
// carries on from the last document read: it finishes, and the log holds
// every document exactly once. Reads fail often enough that a range fails
// more times than the retry budget (10 attempts): a read that handed
// documents over before failing starts the budget over.
func TestSnapshotReadErrorsContinue(t *testing.T) {
	for _, fault := range []struct {
		name string
		data bson.D
	}{
		{"connection closed", bson.D{{Key: "closeConnection", Value: true}}},
		{"HostUnreachable", bson.D{{Key: "errorCode", Value: 6}}},
		{"CursorNotFound", bson.D{{Key: "errorCode", Value: 43}}},
	} {
		t.Run(strings.ReplaceAll(fault.name, " ", "_"), func(t *testing.T) { snapshotReadFault(t, fault.data) })
	}
}

var attemptRE = regexp.MustCompile(`snapshot read failed; retrying.* attempt=(\d+)`)

func snapshotReadFault(t *testing.T, fault bson.D) {
	env := testenv.New(t)
	if !genuine(t, env) {
		t.Skip("the source lacks replica set semantics the connector needs (see docs/testing.md)")
	}
	ctx := testenv.Context(t, 5*time.Minute)
	cl := env.Source(t)
	db := testenv.DBName(t)
	prefix := testenv.TopicPrefix(t)
	app := "lbsnapfault-" + strings.ReplaceAll(prefix, ".", "-")
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
	configure := func(fp string, mode any, data bson.D) (bson.Raw, error) {
		return testenv.ConfigureFailPoint(ctx, cl, fp, mode, data)
	}
	if _, err := configure("failCommand", "off", nil); err != nil {
		t.Skipf("the source has no failCommand fail point (mongod needs enableTestCommands): %v", err)
	}
	t.Cleanup(func() { _, _ = configure("failCommand", "off", nil) })
	const total = 3000
	coll := cl.Database(db).Collection("c")
	docs := make([]any, 0, total)
	for i := range total {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("x", 100)}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	uri, err := url.Parse(env.SourceURI)
	if err != nil {
		t.Fatal(err)
	}
	q := uri.Query()
	q.Set("appName", app)
	uri.RawQuery = q.Encode()

	// nearly one getMore of the connector in two fails: a range of 1,000
	// documents read 25 at a time fails ~30 times, so every range outruns the
	// budget of 10 (the fail point's count is cumulative: what it was before
	// is kept)
	r, err := configure("failCommand", bson.D{{Key: "activationProbability", Value: 0.45}},
		append(bson.D{{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "appName", Value: app}}, fault...))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := r.Lookup("count").AsInt64OK()
	p := start(t, "--source-uri", uri.String(), "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
		"--include", db+".*", "--partitions", "2", "--snapshot-range-docs", "1000", "--snapshot-batch-size", "25", "--snapshot-parallelism", "2")
	p.waitFor(t, "snapshot done", 3*time.Minute)
	r, err = configure("failCommand", "off", nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := r.Lookup("count").AsInt64OK()
	fired := after - before
	t.Logf("%d getMore(s) failed", fired)
	if fired < 2 {
		t.Fatalf("the fail points fired %d time(s): the snapshot's reads were not cut (output:\n%s)", fired, p.output())
	}
	// the attempt numbers the connector logged: some range must have gone
	// past the budget of 10, or this run did not test that progress resets it
	most := 0
	for _, m := range attemptRE.FindAllStringSubmatch(p.output(), -1) {
		if n, _ := strconv.Atoi(m[1]); n > most {
			most = n
		}
	}
	if most <= 10 {
		t.Fatalf("no range failed more than 10 times (at most %d): the fail point did not outrun the retry budget (output:\n%s)", most, p.output())
	}
	seen := map[int32]int{}
	for _, rec := range readLog(t, env, prefix+"."+db+".c") {
		if rec.ev.Op != schema.OpSnapshot {
			continue
		}
		seen[rec.ev.FullDocument.Lookup("_id").Int32()]++
	}
	missing, dup := 0, 0
	for i := range int32(total) {
		switch n := seen[i]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(seen) != total {
		t.Errorf("snapshot records: %d documents missing, %d more than once, %d distinct (want %d once each)", missing, dup, len(seen), total)
	}
}
