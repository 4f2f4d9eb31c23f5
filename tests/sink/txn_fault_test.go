package sink_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkTxnTransientRetry: with --transactions, the destination fails the
// sink's transactions with TransientTransactionError — a write inside one
// (WriteConflict, 112) and its commitTransaction (NoSuchTransaction, 251),
// several times each, through the destination's failCommand fail point,
// limited to this sink's connections by its appName — and the sink retries
// each whole transaction until it commits: the destination converges byte
// for byte, and every source transaction still arrives as one destination
// transaction. The test skips where the destination has no fail points.
func TestSinkTxnTransientRetry(t *testing.T) {
	env, src, dest, ctx, db := sourceAndDest(t, 4*time.Minute)
	app := "logbridge-sink-txnfault-" + strings.ReplaceAll(testenv.TopicPrefix(t), ".", "-")
	configure := func(mode any, data bson.D) (bson.Raw, error) {
		return testenv.ConfigureFailPoint(ctx, dest, "failCommand", mode, data)
	}
	r0, err := configure("off", nil)
	if err != nil {
		t.Skipf("the destination has no failCommand fail point (mongod needs enableTestCommands): %v", err)
	}
	n0, _ := r0.Lookup("count").AsInt64OK() // counts are cumulative
	t.Cleanup(func() { _, _ = configure("off", nil) })
	ns := schema.Namespace{DB: db, Coll: "acct"}
	if err := src.Database(db).CreateCollection(ctx, ns.Coll); err != nil {
		t.Fatal(err)
	}
	prefix := testenv.TopicPrefix(t)
	startSourceProc(t, ctx, env, prefix, db, "phase=streaming", "--partitions", "2")
	u, err := url.Parse(env.DestURI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("appName", app) // "logbridge…": still the sink, for write blocking
	u.RawQuery = q.Encode()
	cfg := sourceSinkCfg(env, prefix)
	cfg.DestURI = u.String()
	cfg.Transactions = true
	cfg.TxnWait = 30 * time.Second

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	destEvents, _ := watchDest(t, watchCtx, dest, db)

	runSink(t, cfg)
	// the first transactions the sink writes fail, then it goes on (set after
	// the sink started, so that its start-up writes are not the ones failed)
	if _, err := configure(bson.D{{Key: "times", Value: 3}}, bson.D{{Key: "failCommands", Value: bson.A{"update", "insert"}},
		{Key: "errorCode", Value: 112}, {Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}, {Key: "appName", Value: app}}); err != nil {
		t.Fatal(err)
	}
	c := src.Database(db).Collection(ns.Coll)
	txn := func(k int) {
		sess, err := src.StartSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.EndSession(ctx)
		if _, err := sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
			for j := range 3 {
				if _, err := c.UpdateOne(sc, bson.D{{Key: "_id", Value: fmt.Sprintf("%d-%d", k%4, j)}},
					bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}, {Key: "$set", Value: bson.D{{Key: "t", Value: int32(k)}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}); err != nil {
			t.Fatalf("source transaction %d: %v", k, err)
		}
	}
	for k := range 10 {
		txn(k)
	}
	want := expect{}
	for k, v := range snapshotOf(t, src, ns) {
		want[k] = v
	}
	waitEqual(t, dest, ns, want, 2*time.Minute)
	r, err := configure("off", nil)
	if err != nil {
		t.Fatal(err)
	}
	n1, _ := r.Lookup("count").AsInt64OK()
	if n1-n0 < 3 {
		t.Fatalf("the write fail point fired %d time(s), want 3: the sink's transactions were not failed", n1-n0)
	}

	// now the commits fail
	if _, err := configure(bson.D{{Key: "times", Value: 2}}, bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}},
		{Key: "errorCode", Value: 251}, {Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}, {Key: "appName", Value: app}}); err != nil {
		t.Fatal(err)
	}
	for k := 10; k < 20; k++ {
		txn(k)
	}
	want = expect{}
	for k, v := range snapshotOf(t, src, ns) {
		want[k] = v
	}
	waitEqual(t, dest, ns, want, 2*time.Minute)
	r, err = configure("off", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n2, _ := r.Lookup("count").AsInt64OK(); n2-n1 < 2 {
		t.Fatalf("the commit fail point fired %d time(s), want 2", n2-n1)
	}

	// each source transaction is one destination transaction (the retried
	// attempts left nothing behind)
	time.Sleep(time.Second)
	byTag := map[int32]map[string]bool{}
	for _, e := range destEvents() {
		if e.txnTag < 0 {
			continue
		}
		if e.lsid == "" {
			t.Errorf("a write of source transaction %d reached the destination outside a transaction", e.txnTag)
		}
		if byTag[e.txnTag] == nil {
			byTag[e.txnTag] = map[string]bool{}
		}
		byTag[e.txnTag][fmt.Sprintf("%s/%d", e.lsid, e.txnNum)] = true
	}
	for k := range int32(20) {
		if len(byTag[k]) != 1 {
			t.Errorf("source transaction %d reached the destination in %d destination transactions, want 1: %v", k, len(byTag[k]), byTag[k])
		}
	}
}
