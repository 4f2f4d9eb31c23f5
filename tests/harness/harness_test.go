// Package harness_test proves the test harness (tests/testenv) with real round
// trips against the servers it hands out: Kafka (plain, transactional, across a
// broker restart) and the source and destination MongoDB servers.
package harness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/testenv"
)

// createTopic creates a fresh topic for the test and deletes it at cleanup.
func createTopic(t *testing.T, env testenv.Env, partitions int32) string {
	t.Helper()
	topic := testenv.TopicPrefix(t)
	adm := env.Admin(t)
	ctx := testenv.Context(t, 30*time.Second)
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// a fresh client: the test's own may be closed, or the broker restarted
		cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...))
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topic); err != nil {
			t.Logf("cleanup: delete topic %s: %v", topic, err)
		}
	})
	return topic
}

// consumeUntil reads topic from the start until done returns true for the
// records seen so far, or fails the test after timeout.
func consumeUntil(t *testing.T, env testenv.Env, topic string, timeout time.Duration,
	done func([]*kgo.Record) bool, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := env.Kafka(t, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []*kgo.Record
	for !done(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: timed out after %v with %d record(s): %s", topic, timeout, len(got), keys(got))
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Logf("fetch %s[%d]: %v (retrying)", e.Topic, e.Partition, e.Err)
			}
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func keys(rs []*kgo.Record) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s@%d/%d", r.Key, r.Partition, r.Offset)
	}
	return b.String()
}

func findKey(rs []*kgo.Record, key string) *kgo.Record {
	for _, r := range rs {
		if string(r.Key) == key {
			return r
		}
	}
	return nil
}

func hasKey(key string) func([]*kgo.Record) bool {
	return func(rs []*kgo.Record) bool { return findKey(rs, key) != nil }
}

// (a) produce and consume a keyed record with franz-go.
func TestKafkaProduceConsume(t *testing.T) {
	env := testenv.NewKafka(t)
	topic := createTopic(t, env, 3)
	ctx := testenv.Context(t, 30*time.Second)

	pr := env.Kafka(t, kgo.DefaultProduceTopic(topic))
	recs := []*kgo.Record{
		{Key: []byte("doc-1"), Value: []byte(`{"v":1}`), Headers: []kgo.RecordHeader{{Key: "op", Value: []byte("insert")}}},
		{Key: []byte("doc-1"), Value: []byte(`{"v":2}`)},
		{Key: []byte("doc-2"), Value: []byte(`{"v":1}`)},
	}
	if err := pr.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if recs[0].Partition != recs[1].Partition {
		t.Errorf("one key landed in two partitions: %d and %d", recs[0].Partition, recs[1].Partition)
	}

	got := consumeUntil(t, env, topic, 30*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= len(recs) })
	if len(got) != len(recs) {
		t.Fatalf("consumed %d records, want %d: %s", len(got), len(recs), keys(got))
	}
	var doc1 []*kgo.Record
	for _, r := range got {
		if string(r.Key) == "doc-1" {
			doc1 = append(doc1, r)
		}
	}
	if len(doc1) != 2 || string(doc1[0].Value) != `{"v":1}` || string(doc1[1].Value) != `{"v":2}` {
		t.Fatalf("doc-1 records out of order or missing: %s", keys(doc1))
	}
	if doc1[0].Partition != recs[0].Partition || doc1[0].Offset != recs[0].Offset {
		t.Errorf("consumed doc-1 at %d/%d, produced at %d/%d", doc1[0].Partition, doc1[0].Offset, recs[0].Partition, recs[0].Offset)
	}
	if len(doc1[0].Headers) != 1 || doc1[0].Headers[0].Key != "op" || string(doc1[0].Headers[0].Value) != "insert" {
		t.Errorf("headers = %v, want op=insert", doc1[0].Headers)
	}
}

// (b) an aborted transaction is invisible and a committed one visible to a
// read_committed consumer.
func TestKafkaTransactions(t *testing.T) {
	env := testenv.NewKafka(t)
	topic := createTopic(t, env, 1)
	ctx := testenv.Context(t, 60*time.Second)

	pr := env.Kafka(t, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(topic+"-txn"))
	txn := func(key string, end kgo.TransactionEndTry) {
		t.Helper()
		if err := pr.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction: %v", err)
		}
		if err := pr.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte(key)}).FirstErr(); err != nil {
			t.Fatalf("produce %s in transaction: %v", key, err)
		}
		if err := pr.EndTransaction(ctx, end); err != nil {
			t.Fatalf("end transaction (%s): %v", key, err)
		}
	}
	txn("aborted", kgo.TryAbort)
	txn("committed", kgo.TryCommit)

	// read_uncommitted sees both: the aborted record really reached the log
	unc := consumeUntil(t, env, topic, 30*time.Second, func(rs []*kgo.Record) bool {
		return findKey(rs, "aborted") != nil && findKey(rs, "committed") != nil
	}, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	t.Logf("read_uncommitted: %s", keys(unc))

	// read_committed reaches the committed record, which lies after the aborted
	// one in the partition, without ever returning the aborted one
	com := consumeUntil(t, env, topic, 30*time.Second, hasKey("committed"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if r := findKey(com, "aborted"); r != nil {
		t.Fatalf("read_committed consumer returned the aborted record at offset %d: %s", r.Offset, keys(com))
	}
	if a, c := findKey(unc, "aborted"), findKey(com, "committed"); a.Offset >= c.Offset {
		t.Fatalf("aborted offset %d is not before committed offset %d", a.Offset, c.Offset)
	}
}

// (c) Kafka data survives a broker restart (scripts/stack.sh restart kafka).
func TestDisruptiveKafkaSurvivesRestart(t *testing.T) {
	testenv.Disruptive(t)
	env := testenv.NewKafka(t)
	if v := os.Getenv("KAFKA_BROKERS"); (v != "" && v != testenv.LocalKafka) ||
		len(env.KafkaBrokers) != 1 || env.KafkaBrokers[0] != testenv.LocalKafka {
		t.Skipf("broker %v is not the local stack's (%s): this test restarts the broker with scripts/stack.sh and runs only against it",
			env.KafkaBrokers, testenv.LocalKafka)
	}
	root := repoRoot(t)
	stack := filepath.Join(root, "scripts", "stack.sh")
	if out, err := exec.Command(stack, "status", "kafka").CombinedOutput(); err != nil {
		t.Skipf("the broker at %s is not run by scripts/stack.sh, so it cannot be restarted here (status: %s)",
			testenv.LocalKafka, strings.TrimSpace(string(out)))
	}

	topic := createTopic(t, env, 2)
	ctx := testenv.Context(t, 4*time.Minute)
	want := &kgo.Record{Topic: topic, Key: []byte("survivor"), Value: []byte(time.Now().Format(time.RFC3339Nano))}
	pr := env.Kafka(t)
	if err := pr.ProduceSync(ctx, want).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	pr.Close()

	t.Logf("restarting the broker: %s restart kafka", stack)
	start := time.Now()
	cmd := exec.CommandContext(ctx, stack, "restart", "kafka")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/stack.sh restart kafka: %v\n%s\n(the broker may be down for everyone now: check `scripts/stack.sh status kafka` "+
			"and `pgrep -af logbridge.stack=kafka` for a broker left running without its pid file before `scripts/stack.sh up kafka`)", err, out)
	}
	waitBroker(t, ctx, env)
	t.Logf("broker back after %v", time.Since(start).Round(time.Millisecond))

	got := consumeUntil(t, env, topic, 60*time.Second, hasKey("survivor"))
	r := findKey(got, "survivor")
	if !bytes.Equal(r.Value, want.Value) || r.Partition != want.Partition || r.Offset != want.Offset {
		t.Fatalf("after restart got %q at %d/%d, want %q at %d/%d",
			r.Value, r.Partition, r.Offset, want.Value, want.Partition, want.Offset)
	}
}

// waitBroker polls until the broker answers metadata requests again.
func waitBroker(t *testing.T, ctx context.Context, env testenv.Env) {
	t.Helper()
	var last error
	for ctx.Err() == nil {
		func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...))
			if err != nil {
				last = err
				return
			}
			defer cl.Close()
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, last = kadm.NewClient(cl).ListBrokers(rctx)
		}()
		if last == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("broker did not answer after restart: %v", last)
}

// repoRoot walks up from the test's working directory to the directory holding
// scripts/stack.sh.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "stack.sh")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (with scripts/stack.sh) not found above the working directory")
		}
		dir = parent
	}
}

// dropDB drops db at cleanup.
func dropDB(t *testing.T, cl *mongo.Client, db string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := cl.Database(db).Drop(ctx)
		if err != nil {
			// servers without dropDatabase: drop the collections one by one
			var names []string
			names, err = cl.Database(db).ListCollectionNames(ctx, bson.D{})
			for _, n := range names {
				if e := cl.Database(db).Collection(n).Drop(ctx); e != nil && err == nil {
					err = e
				}
			}
		}
		if err != nil {
			t.Logf("cleanup: drop database %s: %v", db, err)
		}
	})
}

// (d) insert, read and watch on the source server.
func TestSourceInsertReadWatch(t *testing.T) {
	env := testenv.New(t)
	cl := env.Source(t)
	db := testenv.DBName(t)
	dropDB(t, cl, db)
	coll := cl.Database(db).Collection("docs")
	ctx := testenv.Context(t, 60*time.Second)

	// read back what was written, byte for byte (field order, BSON types)
	doc := bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "first"}, {Key: "n", Value: int64(42)},
		{Key: "at", Value: bson.NewDateTimeFromTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}}
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got bson.Raw
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil {
		t.Fatalf("find: %v", err)
	}
	wantRaw, _ := bson.Marshal(doc)
	if !bytes.Equal(got, wantRaw) {
		t.Fatalf("read back %v, want %v", got, bson.Raw(wantRaw))
	}

	type changeEvent struct {
		ID            bson.Raw      `bson:"_id"`
		OperationType string        `bson:"operationType"`
		ClusterTime   bson.RawValue `bson:"clusterTime"`
		NS            *struct{ DB, Coll string }
		DocumentKey   bson.D   `bson:"documentKey"`
		FullDocument  bson.Raw `bson:"fullDocument"`
	}
	watch := func(t *testing.T, open func(context.Context) (*mongo.ChangeStream, error)) {
		cs, err := open(ctx)
		if err != nil {
			t.Skipf("the source server at %s cannot open this change stream: %v (docs/testing.md, check cs_cluster_wide / cs_watch_collection)", env.SourceURI, err)
		}
		defer cs.Close(context.Background())
		id := bson.NewObjectID() // unique: other tests share the server
		in := bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "watched"}}
		if _, err := coll.InsertOne(ctx, in); err != nil {
			t.Fatalf("insert: %v", err)
		}
		inRaw, _ := bson.Marshal(in)
		nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var ev changeEvent
		for {
			if !cs.Next(nctx) {
				t.Fatalf("no change event for the insert of %v within 20s: %v", id, cs.Err())
			}
			ev = changeEvent{}
			if err := cs.Decode(&ev); err != nil {
				t.Fatalf("decode change event %v: %v", cs.Current, err)
			}
			if key, ok := cs.Current.Lookup("documentKey", "_id").ObjectIDOK(); ok && key == id {
				break
			}
		}
		switch {
		case ev.OperationType != "insert":
			t.Fatalf("operationType = %q, want insert: %v", ev.OperationType, cs.Current)
		case len(ev.DocumentKey) != 1 || ev.DocumentKey[0].Key != "_id":
			t.Fatalf("documentKey = %v, want {_id: %v}", ev.DocumentKey, id)
		case !bytes.Equal(ev.FullDocument, inRaw):
			t.Fatalf("fullDocument = %v, want %v", ev.FullDocument, bson.Raw(inRaw))
		case len(ev.ID) == 0 || len(cs.ResumeToken()) == 0:
			t.Fatalf("no resume token: %v", cs.Current)
		case ev.ClusterTime.Type != bson.TypeTimestamp:
			t.Fatalf("clusterTime is BSON %v, want a timestamp (documented change event format): %v", ev.ClusterTime.Type, cs.Current)
		case ev.NS != nil && (ev.NS.DB != db || ev.NS.Coll != "docs"):
			t.Fatalf("ns = %+v, want %s.docs: %v", *ev.NS, db, cs.Current)
		case ev.NS == nil:
			// everything else checked: a gap of the server, not of the harness
			t.Skipf("server gap: the source server's change event has no ns field, which the documented format requires (docs/testing.md, source gap 2; everything else in the event was checked): %v", cs.Current)
		}
	}
	t.Run("collection", func(t *testing.T) {
		watch(t, func(ctx context.Context) (*mongo.ChangeStream, error) {
			return coll.Watch(ctx, mongo.Pipeline{})
		})
	})
	t.Run("cluster", func(t *testing.T) {
		// the source connector's stream: cluster-wide
		watch(t, func(ctx context.Context) (*mongo.ChangeStream, error) {
			return cl.Watch(ctx, mongo.Pipeline{})
		})
	})
}

// (d) CRUD on the destination server.
func TestDestCRUD(t *testing.T) {
	env := testenv.New(t)
	cl := env.Dest(t)
	db := testenv.DBName(t)
	dropDB(t, cl, db)
	coll := cl.Database(db).Collection("docs")
	ctx := testenv.Context(t, 60*time.Second)

	if _, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: "b"}, {Key: "n", Value: 2}},
	}); err != nil {
		t.Fatalf("insertMany: %v", err)
	}
	if res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 10}}}}); err != nil || res.ModifiedCount != 1 {
		t.Fatalf("updateOne: %+v, %v", res, err)
	}
	// the sink's apply: replace with upsert by key
	if res, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "c"}},
		bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: 3}}, options.Replace().SetUpsert(true)); err != nil || res.UpsertedCount != 1 {
		t.Fatalf("replaceOne upsert: %+v, %v", res, err)
	}
	if res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: "b"}}); err != nil || res.DeletedCount != 1 {
		t.Fatalf("deleteOne: %+v, %v", res, err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	var docs []bson.D
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatalf("find: %v", err)
	}
	want := []bson.D{
		{{Key: "_id", Value: "a"}, {Key: "n", Value: int32(10)}},
		{{Key: "_id", Value: "c"}, {Key: "n", Value: int32(3)}},
	}
	if fmt.Sprint(docs) != fmt.Sprint(want) {
		t.Fatalf("destination holds %v, want %v", docs, want)
	}
}
