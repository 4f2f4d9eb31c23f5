package sink_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// destEvent is one change event of the destination, reduced to what the
// atomicity check needs.
type destEvent struct {
	ns     string
	op     string
	id     string
	txnTag int32 // the "t" field the source transaction wrote (-1: none)
	lsid   string
	txnNum int64
	ct     bson.Timestamp
}

// watchDest records the destination's change events of db until ctx ends.
func watchDest(t *testing.T, ctx context.Context, dest *mongo.Client, db string) (func() []destEvent, <-chan struct{}) {
	t.Helper()
	cs, err := dest.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: db}}}}})
	if err != nil {
		t.Fatalf("watching the destination: %v", err)
	}
	var mu sync.Mutex
	var evs []destEvent
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer cs.Close(context.Background())
		for cs.Next(ctx) {
			raw := cs.Current
			e := destEvent{txnTag: -1}
			e.op, _ = raw.Lookup("operationType").StringValueOK()
			coll, _ := raw.Lookup("ns", "coll").StringValueOK()
			e.ns = coll
			e.id = raw.Lookup("documentKey", "_id").String()
			if ts, ti, ok := raw.Lookup("clusterTime").TimestampOK(); ok {
				e.ct = bson.Timestamp{T: ts, I: ti}
			}
			if tv, err := raw.LookupErr("fullDocument", "t"); err == nil {
				e.txnTag, _ = tv.Int32OK()
			} else if tv, err := raw.LookupErr("updateDescription", "updatedFields", "t"); err == nil {
				e.txnTag, _ = tv.Int32OK()
			}
			if l, err := raw.LookupErr("lsid"); err == nil {
				e.lsid = l.String()
				e.txnNum, _ = raw.Lookup("txnNumber").AsInt64OK()
			}
			mu.Lock()
			evs = append(evs, e)
			mu.Unlock()
		}
	}()
	return func() []destEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]destEvent(nil), evs...)
	}, stopped
}

// TestSinkTransactionsAtomic: source transactions spanning two collections
// (two topics of several partitions, four events each) go through the real
// source-connector and the sink-connector binary with --transactions. The
// destination's change stream (a reader of the destination) must show every
// source transaction's writes as one destination transaction: all four with
// one shared lsid + txnNumber, none outside it, never two source
// transactions in one. Without --transactions the sink's writes carry no
// transaction (plain bulk writes), so this fails. The log is checked for the
// source's marks, and both collections must converge byte for byte,
// including after the sink is killed (kill -9) and restarted mid-stream.
func TestSinkTransactionsAtomic(t *testing.T) {
	env, src, dest, ctx, db := sourceAndDest(t, 5*time.Minute)
	nsA, nsB := schema.Namespace{DB: db, Coll: "acct_a"}, schema.Namespace{DB: db, Coll: "acct_b"}
	const accounts, start = 12, 1000
	for _, ns := range []schema.Namespace{nsA, nsB} {
		var docs []any
		for i := range accounts {
			docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "balance", Value: int32(start)}})
		}
		if _, err := src.Database(db).Collection(ns.Coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}

	prefix := testenv.TopicPrefix(t)
	// Transactions start once the snapshot is read: a write the snapshot
	// copies reaches the sink as a snapshot record, outside any transaction.
	startSourceProc(t, ctx, env, prefix, db, "snapshot done", "--heartbeat-interval", "1s", "--partitions", "3")

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	destEvents, watchStopped := watchDest(t, watchCtx, dest, db)

	// The sink runs as the binary users run, so that it can be killed with
	// kill -9 mid-stream. One member owns every topic, so a transaction
	// timeout (--transaction-wait) would be a bug: it is set long.
	_, sinkBin := procs.Binaries(t)
	sinkProc := procs.Start(t, "sink", sinkBin, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","),
		"--group", prefix+"-sink", "--topic-prefix", prefix, "--dest-uri", env.DestURI, "--http-addr", "127.0.0.1:0",
		"--flush-interval", "20ms", "--transactions", "--transaction-wait", "30s",
		"--session-timeout", "10s") // the killed member holds its partitions this long
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sink log tail:\n%s", sinkProc.Tail(6000))
		}
	})

	// Source transactions: move an amount from an account of a to one of b,
	// and insert one transfer record into each; every write tags t = k.
	// Plain (non-transactional) writes are mixed in.
	rnd := rand.New(rand.NewPCG(5, 5))
	txnWrites := map[int32]int{}
	run := func(from, to int) {
		sess, err := src.StartSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.EndSession(ctx)
		a, b := src.Database(db).Collection(nsA.Coll), src.Database(db).Collection(nsB.Coll)
		for k := int32(from); k < int32(to); k++ {
			i, j, amt := int32(rnd.IntN(accounts)), int32(rnd.IntN(accounts)), int32(1+rnd.IntN(50))
			_, err := sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
				if _, err := a.UpdateOne(sc, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -amt}}}, {Key: "$set", Value: bson.D{{Key: "t", Value: k}}}}); err != nil {
					return nil, err
				}
				if _, err := b.UpdateOne(sc, bson.D{{Key: "_id", Value: j}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: amt}}}, {Key: "$set", Value: bson.D{{Key: "t", Value: k}}}}); err != nil {
					return nil, err
				}
				if _, err := a.InsertOne(sc, bson.D{{Key: "_id", Value: fmt.Sprintf("out-%d", k)}, {Key: "t", Value: k}, {Key: "amount", Value: amt}}); err != nil {
					return nil, err
				}
				_, err := b.InsertOne(sc, bson.D{{Key: "_id", Value: fmt.Sprintf("in-%d", k)}, {Key: "t", Value: k}, {Key: "amount", Value: amt}})
				return nil, err
			})
			if err != nil {
				t.Fatalf("source transaction %d: %v", k, err)
			}
			txnWrites[k] = 4
			if k%5 == 0 {
				if _, err := a.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("plain-%d", k)}, {Key: "v", Value: k}}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	run(0, 30)

	// kill -9 the sink mid-stream, while transactions are arriving: what it
	// had gathered but not applied and committed is read again from the
	// committed offsets, and a transaction applied but not yet acknowledged
	// is applied again (idempotently) in a destination transaction.
	// It is killed right after a burst of transactions, once it has
	// applied some earlier ones (so it is past its start-up).
	for applied := false; !applied; {
		for _, e := range destEvents() {
			applied = applied || e.txnTag >= 0
		}
		if ctx.Err() != nil {
			t.Fatal("the sink applied no transaction")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run(30, 38)
	if err := sinkProc.Exited(); err != nil {
		t.Fatal(err)
	}
	sinkProc.Kill9()
	t.Logf("sink killed with kill -9 right after source transaction 37")
	run(38, 45)
	sinkProc.Start()
	run(45, 60)

	for _, ns := range []schema.Namespace{nsA, nsB} {
		want := expect{}
		for k, v := range snapshotOf(t, src, ns) {
			want[k] = v
		}
		waitEqual(t, dest, ns, want, 3*time.Minute)
	}
	if err := sinkProc.Exited(); err != nil {
		t.Fatal(err)
	}

	// Every transaction's four writes must be visible in the destination's
	// change stream.
	deadline := time.Now().Add(30 * time.Second)
	var evs []destEvent
	for {
		evs = destEvents()
		seen := map[int32]int{}
		for _, e := range evs {
			if e.txnTag >= 0 {
				seen[e.txnTag]++
			}
		}
		if len(seen) == len(txnWrites) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopWatch()
	<-watchStopped

	type txnID struct {
		lsid string
		num  int64
	}
	byTag := map[int32][]destEvent{}
	owner := map[txnID]int32{}
	for _, e := range evs {
		if e.txnTag < 0 {
			continue
		}
		byTag[e.txnTag] = append(byTag[e.txnTag], e)
	}
	for k, n := range txnWrites {
		got := byTag[k]
		if len(got) < n {
			t.Errorf("source transaction %d: %d of its %d writes seen in the destination's change stream: %+v", k, len(got), n, got)
			continue
		}
		// A replay after the restart may apply a transaction again
		// (idempotently; no-op writes make no event): the first application
		// must hold all of the transaction's writes, and every later one must
		// be inside a destination transaction too.
		groups := map[txnID][]destEvent{}
		for _, e := range got {
			if e.lsid == "" {
				t.Errorf("source transaction %d: destination write %s %s/%s outside any destination transaction: a reader could see half of the source transaction", k, e.op, e.ns, e.id)
				continue
			}
			id := txnID{e.lsid, e.txnNum}
			groups[id] = append(groups[id], e)
		}
		var first txnID
		for id, g := range groups {
			if first.lsid == "" || g[0].ct.Before(groups[first][0].ct) {
				first = id
			}
		}
		for id, g := range groups {
			if id == first && len(g) != n || len(g) > n {
				t.Errorf("source transaction %d: destination transaction %v holds %d of its %d writes: %+v", k, id, len(g), n, g)
			}
			if o, ok := owner[id]; ok && o != k {
				t.Errorf("destination transaction %v holds writes of source transactions %d and %d", id, o, k)
			}
			owner[id] = k
			nss := map[string]bool{}
			for _, e := range g {
				nss[e.ns] = true
				if e.ct != g[0].ct {
					t.Errorf("source transaction %d: destination writes at different cluster times %v and %v", k, g[0].ct, e.ct)
				}
			}
			// A replay (after the kill -9, from offsets committed before
			// it) applies the transaction again in one destination
			// transaction, but its writes that change nothing (the document
			// already holds them) make no change event, so only the first
			// application must show both collections.
			if id == first && len(nss) != 2 {
				t.Errorf("source transaction %d: destination transaction touches %v, want both collections", k, nss)
			}
		}
	}

	// The log: every transaction's events carry the count on the last one
	// (and 0 on the others) — what the sink gathered by.
	counts := map[string][]*schema.TxnID{}
	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []schema.Namespace{nsA, nsB} {
		for _, r := range testenv.ReadTopic(t, env.KafkaBrokers, prefix+"."+ns.String()) {
			enc, err := schema.EncodingOf(r.Headers)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := serde.DecodeValue(enc, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Txn != nil {
				k := ev.Txn.LSID.String() + fmt.Sprint(ev.Txn.TxnNumber)
				counts[k] = append(counts[k], ev.Txn)
			}
		}
	}
	if len(counts) != len(txnWrites) {
		t.Errorf("the log holds %d source transactions, want %d", len(counts), len(txnWrites))
	}
	for k, ts := range counts {
		last := 0
		for _, x := range ts {
			if !x.Counted {
				t.Fatalf("transaction %s: event %d without the count mark", k, x.Index)
			}
			if x.Count > 0 {
				last++
				if int(x.Count) != len(ts) {
					t.Errorf("transaction %s: count %d, the log holds %d of its events", k, x.Count, len(ts))
				}
			}
		}
		if last != 1 {
			t.Errorf("transaction %s: %d events marked last, want 1", k, last)
		}
	}
}
