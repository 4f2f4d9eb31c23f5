package sink_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkTransactionsWithDDL: source transactions that create a collection
// and an index (MongoDB allows create and createIndexes inside a transaction,
// on a namespace before the transaction's writes there) go through the real
// source-connector and a --transactions sink, with --transaction-wait at 10
// minutes, so a stall fails the test's deadline. One transaction writes
// before and after its DDL, one starts with it. The DDL is applied as a
// barrier of its own topic; it meets no gathered event of its transaction
// there, so both transactions are applied whole (the per-event resolution
// for a DDL that does, unit-tested in sink-connector/internal/consume, is
// not needed). Collections, the index and every document must arrive.
func TestSinkTransactionsWithDDL(t *testing.T) {
	env, src, dest, ctx, db := sourceAndDest(t, 3*time.Minute)
	nsA := schema.Namespace{DB: db, Coll: "a"}
	if _, err := src.Database(db).Collection(nsA.Coll).InsertOne(ctx, bson.D{{Key: "_id", Value: int32(0)}}); err != nil {
		t.Fatal(err)
	}

	prefix := testenv.TopicPrefix(t)
	startSourceProc(t, ctx, env, prefix, db, "snapshot done", "--heartbeat-interval", "1s", "--partitions", "2")
	cfg := sourceSinkCfg(env, prefix)
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Transactions = true
	cfg.TxnWait = 10 * time.Minute
	svc := runSink(t, cfg)

	sess, err := src.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.EndSession(ctx)
	a := src.Database(db).Collection(nsA.Coll)
	txn := func(body func(sc context.Context) error) {
		t.Helper()
		if _, err := sess.WithTransaction(ctx, func(sc context.Context) (any, error) { return nil, body(sc) }); err != nil {
			t.Fatalf("source transaction: %v", err)
		}
	}
	// DDL after a write: a, create b, index on b, b, a.
	txn(func(sc context.Context) error {
		if _, err := a.InsertOne(sc, bson.D{{Key: "_id", Value: int32(1)}}); err != nil {
			return err
		}
		if err := src.Database(db).CreateCollection(sc, "b"); err != nil {
			return err
		}
		b := src.Database(db).Collection("b")
		if _, err := b.Indexes().CreateOne(sc, mongo.IndexModel{Keys: bson.D{{Key: "v", Value: 1}}}); err != nil {
			return err
		}
		if _, err := b.InsertOne(sc, bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}}); err != nil {
			return err
		}
		_, err := a.InsertOne(sc, bson.D{{Key: "_id", Value: int32(2)}})
		return err
	})
	// DDL first: create c, then c and a.
	txn(func(sc context.Context) error {
		if err := src.Database(db).CreateCollection(sc, "c"); err != nil {
			return err
		}
		if _, err := src.Database(db).Collection("c").InsertOne(sc, bson.D{{Key: "_id", Value: int32(1)}}); err != nil {
			return err
		}
		_, err := a.InsertOne(sc, bson.D{{Key: "_id", Value: int32(3)}})
		return err
	})

	for _, coll := range []string{"a", "b", "c"} {
		ns := schema.Namespace{DB: db, Coll: coll}
		want := expect{}
		for k, v := range snapshotOf(t, src, ns) {
			want[k] = v
		}
		waitEqual(t, dest, ns, want, 60*time.Second)
	}
	if _, ok := indexNames(t, dest, schema.Namespace{DB: db, Coll: "b"})["v_1"]; !ok {
		t.Errorf("index v_1 of b (created inside the transaction) is missing on the destination")
	}
	m := scrapeTxnResults(t, "http://"+svc.HTTPAddr()+"/metrics")
	t.Logf("transactions by result: %v", m)
	if m["timeout"] != 0 {
		t.Errorf("%v transactions waited for --transaction-wait; a DDL inside a transaction must never stall it", m["timeout"])
	}
	if m["applied"] != 2 {
		t.Errorf("%v of 2 transactions applied as one destination transaction: %v", m["applied"], m)
	}
}
