package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/sink"
	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// logWriter writes a log the way the source-connector does: data records
// keyed by document key, hashed to a partition; DDL and markers into every
// partition of the topics they affect.
type logWriter struct {
	t      testing.TB
	env    testenv.Env
	cl     *kgo.Client
	serde  *schema.Serde
	prefix string
	parts  int32
	made   map[string]bool
	ct     uint32
}

func newLog(t testing.TB, env testenv.Env, parts int32) *logWriter {
	t.Helper()
	cl := env.Kafka(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	serde, err := schema.NewSerde(context.Background(), schema.SerdeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &logWriter{t: t, env: env, cl: cl, serde: serde, prefix: testenv.TopicPrefix(t), parts: parts, made: map[string]bool{}, ct: uint32(time.Now().Unix())}
}

func (l *logWriter) topic(ns schema.Namespace) string { return l.prefix + "." + ns.String() }

func (l *logWriter) ensure(topic string) {
	if l.made[topic] {
		return
	}
	ctx := testenv.Context(l.t, 30*time.Second)
	adm := l.env.Admin(l.t)
	if _, err := kafkax.EnsureTopic(ctx, adm, kafkax.TopicSpec{Name: topic, Partitions: l.parts}); err != nil {
		l.t.Fatal(err)
	}
	l.made[topic] = true
}

func (l *logWriter) record(topic string, p int32, ev *schema.Event) *kgo.Record {
	l.ct++
	if ev.ClusterTime.T == 0 {
		ev.ClusterTime = schema.ClusterTime{T: uint32(time.Now().Unix()), I: l.ct}
	}
	v, err := l.serde.EncodeValue(topic, ev)
	if err != nil {
		l.t.Fatalf("encoding %+v: %v", ev, err)
	}
	return &kgo.Record{Topic: topic, Partition: p, Key: l.serde.Key(ev), Value: v, Headers: []kgo.RecordHeader{l.serde.Header()}}
}

func partitionOf(key []byte, n int32) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(n))
}

// data produces data events, each into its key's partition.
func (l *logWriter) data(evs ...*schema.Event) {
	l.t.Helper()
	var rs []*kgo.Record
	for _, ev := range evs {
		topic := l.topic(ev.NS)
		l.ensure(topic)
		rs = append(rs, l.record(topic, partitionOf(ev.DocumentKey, l.parts), ev))
	}
	l.produce(rs...)
}

// barrier produces ev into every partition of the topics of nss.
func (l *logWriter) barrier(ev *schema.Event, nss ...schema.Namespace) {
	l.t.Helper()
	var rs []*kgo.Record
	for _, ns := range nss {
		topic := l.topic(ns)
		l.ensure(topic)
		for p := range l.parts {
			rs = append(rs, l.record(topic, p, ev))
		}
	}
	l.produce(rs...)
}

func (l *logWriter) produce(rs ...*kgo.Record) {
	l.t.Helper()
	for len(rs) > 0 {
		n := min(len(rs), 5000)
		if err := l.cl.ProduceSync(testenv.Context(l.t, 60*time.Second), rs[:n]...).FirstErr(); err != nil {
			l.t.Fatalf("producing: %v", err)
		}
		rs = rs[n:]
	}
}

func rawDoc(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keyOf(t testing.TB, id any) bson.Raw { return rawDoc(t, bson.D{{Key: "_id", Value: id}}) }

func dataEv(t testing.TB, op schema.Op, ns schema.Namespace, id any, doc bson.D) *schema.Event {
	ev := &schema.Event{Op: op, NS: ns, DocumentKey: keyOf(t, id)}
	if doc != nil {
		ev.FullDocument = rawDoc(t, doc)
	}
	return ev
}

func ddlEv(ns schema.Namespace, kind schema.DDLKind, id string) *schema.Event {
	return &schema.Event{Op: schema.OpDDL, NS: ns, DDL: &schema.DDL{Kind: kind, ID: id}}
}

func markerEv(ns schema.Namespace, kind schema.MarkerKind, id string) *schema.Event {
	return &schema.Event{Op: schema.OpMarker, NS: ns, Marker: &schema.Marker{Kind: kind, ID: id}}
}

// richDoc is a document with every common BSON type.
func richDoc(i int) bson.D {
	d128, _ := bson.ParseDecimal128(fmt.Sprintf("%d.%03d", i, i%1000))
	return bson.D{
		{Key: "_id", Value: int32(i)},
		{Key: "s", Value: fmt.Sprintf("doc-%06d", i)},
		{Key: "i64", Value: int64(i) << 33},
		{Key: "f", Value: float64(i) / 7},
		{Key: "dec", Value: d128},
		{Key: "b", Value: i%2 == 0},
		{Key: "n", Value: nil},
		{Key: "oid", Value: bson.ObjectID{byte(i), byte(i >> 8), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{Key: "dt", Value: bson.DateTime(1700000000000 + int64(i))},
		{Key: "ts", Value: bson.Timestamp{T: uint32(i), I: 7}},
		{Key: "bin", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
		{Key: "re", Value: bson.Regex{Pattern: "^a.*b$", Options: "i"}},
		{Key: "min", Value: bson.MinKey{}},
		{Key: "max", Value: bson.MaxKey{}},
		{Key: "arr", Value: bson.A{int32(1), "two", bson.D{{Key: "three", Value: 3.0}}, bson.A{int32(4)}}},
		{Key: "sub", Value: bson.D{{Key: "z", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "deep", Value: "x"}}}}},
	}
}

// snapshotOf reads a collection as _id → raw bytes.
func snapshotOf(t testing.TB, cl *mongo.Client, ns schema.Namespace) map[string]bson.Raw {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	cur, err := cl.Database(ns.DB).Collection(ns.Coll).Find(ctx, bson.D{})
	if err != nil {
		t.Fatalf("reading %s: %v", ns, err)
	}
	out := map[string]bson.Raw{}
	for cur.Next(ctx) {
		id := cur.Current.Lookup("_id")
		out[string(id.Value)+":"+id.Type.String()] = append(bson.Raw(nil), cur.Current...)
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func idKey(v any) string {
	_, b, _ := bson.MarshalValue(v)
	t, _, _ := bson.MarshalValue(v)
	return string(b) + ":" + t.String()
}

// expect is the expected content of a collection, _id → document.
type expect map[string]bson.Raw

func (e expect) put(t testing.TB, doc bson.D) { e[idKey(doc[0].Value)] = rawDoc(t, doc) }
func (e expect) del(id any)                   { delete(e, idKey(id)) }

// diff compares byte for byte.
func diff(got map[string]bson.Raw, want expect) string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			out = append(out, fmt.Sprintf("missing %s", w.Lookup("_id")))
		} else if !bytes.Equal(g, w) {
			out = append(out, fmt.Sprintf("differs: got %s, want %s", g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected %s", g.Lookup("_id")))
		}
	}
	sort.Strings(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("... and %d more", len(out)-5))
	}
	return strings.Join(out, "\n")
}

// waitEqual waits until the destination collection equals want.
func waitEqual(t testing.TB, cl *mongo.Client, ns schema.Namespace, want expect, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := snapshotOf(t, cl, ns)
		df := diff(got, want)
		if df == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination %s did not converge in %v (%d docs, want %d):\n%s", ns, d, len(got), len(want), df)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SINK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// sinkCfg is a sink configuration for the test's log.
func sinkCfg(env testenv.Env, l *logWriter, group string) sink.Config {
	c := sink.DefaultConfig()
	c.Kafka.Brokers = env.KafkaBrokers
	c.Group = group
	c.TopicPrefix = l.prefix
	c.DestURI = env.DestURI
	c.HTTP.Addr = ""
	c.FlushInterval = 20 * time.Millisecond
	return c
}

// startSink runs a sink in-process until the test ends; the returned channel
// yields Run's result.
func startSink(t testing.TB, cfg sink.Config) (*sink.Service, <-chan error, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := sink.New(ctx, cfg, testLogger(t), nil)
	if err != nil {
		cancel()
		t.Fatalf("sink.New: %v", err)
	}
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		err := svc.Run(ctx)
		done <- err
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(60 * time.Second):
			t.Errorf("sink did not stop")
		}
	})
	return svc, done, cancel
}

func indexNames(t testing.TB, cl *mongo.Client, ns schema.Namespace) map[string]bson.Raw {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	cur, err := cl.Database(ns.DB).Collection(ns.Coll).Indexes().List(ctx)
	if err != nil {
		t.Fatalf("listing indexes of %s: %v", ns, err)
	}
	out := map[string]bson.Raw{}
	for cur.Next(ctx) {
		name, _ := cur.Current.Lookup("name").StringValueOK()
		out[name] = append(bson.Raw(nil), cur.Current...)
	}
	return out
}

func collOptions(t testing.TB, cl *mongo.Client, ns schema.Namespace) (bson.Raw, bool) {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	specs, err := cl.Database(ns.DB).ListCollectionSpecifications(ctx, bson.D{})
	if err != nil {
		t.Fatalf("listCollections %s: %v", ns, err)
	}
	for _, s := range specs { // filtered here: not every test server honours the filter
		if s.Name == ns.Coll {
			return s.Options, true
		}
	}
	return nil, false
}

func dropDB(t testing.TB, cl *mongo.Client, db string) {
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
}

// sourceAndDest is the setup of a test that runs the real source: the
// stack, both clients, a context of d and the test's database, dropped on
// both sides before and after the test.
func sourceAndDest(t *testing.T, d time.Duration) (testenv.Env, *mongo.Client, *mongo.Client, context.Context, string) {
	t.Helper()
	env := testenv.New(t)
	src, dest := env.Source(t), env.Dest(t)
	ctx := testenv.Context(t, d)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	t.Cleanup(func() { _ = src.Database(db).Drop(context.Background()) })
	_ = src.Database(db).Drop(ctx)
	_ = dest.Database(db).Drop(ctx)
	return env, src, dest, ctx, db
}

// startSourceProc runs the source-connector binary on the namespaces of db
// into topics under prefix (its log tail is shown when the test fails) and
// waits until its log shows until (e.g. "snapshot done").
func startSourceProc(t *testing.T, ctx context.Context, env testenv.Env, prefix, db, until string, args ...string) *procs.Proc {
	t.Helper()
	srcBin, _ := procs.Binaries(t)
	all := append([]string{"--source-uri", env.SourceURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","),
		"--topic-prefix", prefix, "--include", db + ".*", "--http-addr", "127.0.0.1:0"}, args...)
	source := procs.Start(t, "source", srcBin, all...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log tail:\n%s", source.Tail(4000))
		}
	})
	for !strings.Contains(source.Tail(1<<20), until) {
		if ctx.Err() != nil {
			t.Fatalf("the source's log does not show %q", until)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return source
}

// sourceSinkCfg is a sink configuration for the topics a source connector
// writes under prefix.
func sourceSinkCfg(env testenv.Env, prefix string) sink.Config {
	c := sink.DefaultConfig()
	c.Kafka.Brokers = env.KafkaBrokers
	c.Group = prefix + "-sink"
	c.TopicPrefix = prefix
	c.DestURI = env.DestURI
	c.HTTP.Addr = ""
	c.FlushInterval = 20 * time.Millisecond
	return c
}

// runSink starts a sink in-process; the test fails if it stops with an error.
func runSink(t *testing.T, cfg sink.Config) *sink.Service {
	t.Helper()
	svc, done, _ := startSink(t, cfg)
	go func() {
		if err := <-done; err != nil {
			t.Errorf("sink stopped: %v", err)
		}
	}()
	return svc
}
