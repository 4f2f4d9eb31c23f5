package inspect

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/schema"
)

// TestInspectKfake runs the inspector test body against franz-go's
// in-process fake Kafka cluster.
func TestInspectKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	testInspect(t, c.ListenAddrs())
}

// TestInspectKafka runs the same body against a real broker.
func TestInspectKafka(t *testing.T) {
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("KAFKA_BROKERS is not set: no real Kafka broker to test against (set it to e.g. 127.0.0.1:9092)")
	}
	testInspect(t, strings.Split(brokers, ","))
}

func idKey(t *testing.T, id int32) []byte {
	t.Helper()
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = bsoncore.AppendInt32Element(b, "_id", id)
	b, err := bsoncore.AppendDocumentEnd(b, idx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fullDoc(t *testing.T, id int32, v string) []byte {
	t.Helper()
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = bsoncore.AppendInt32Element(b, "_id", id)
	b = bsoncore.AppendStringElement(b, "v", v)
	h, l := bson.NewDecimal128(0x3040000000000000, 12345).GetBytes()
	b = bsoncore.AppendDecimal128Element(b, "price", h, l)
	b, err := bsoncore.AppendDocumentEnd(b, idx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	brokers  []string
	topic    string
	registry string
	serdes   map[schema.Encoding]*schema.Serde
	cl       *kgo.Client
	start    time.Time
}

// line is one parsed output line.
type line struct {
	raw       bson.Raw
	partition int32
	offset    int64
	op        string
	errMsg    string
}

func (e *env) run(t *testing.T, args ...string) []line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	all := append([]string{"--kafka-brokers", strings.Join(e.brokers, ","), "--schema-registry-url", e.registry}, args...)
	if err := Run(ctx, all, &out, &errOut); err != nil {
		t.Fatalf("Run(%q): %v\nstderr: %s", args, err, errOut.String())
	}
	return parseLines(t, out.String())
}

func parseLines(t *testing.T, out string) []line {
	t.Helper()
	var lines []line
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s == "" {
			continue
		}
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(s), true, &raw); err != nil {
			t.Fatalf("output line is not canonical Extended JSON: %v\n%s", err, s)
		}
		l := line{raw: raw, partition: raw.Lookup("partition").Int32(), offset: raw.Lookup("offset").Int64()}
		if v, err := raw.LookupErr("value", "op"); err == nil {
			l.op = v.StringValue()
		}
		if v, err := raw.LookupErr("error"); err == nil {
			l.errMsg = v.StringValue()
		}
		lines = append(lines, l)
	}
	return lines
}

// ops summarizes lines as "partition:op ..." in partition order (the order
// across partitions is not defined; within one it is the log order).
func ops(lines []line) string {
	lines = slices.Clone(lines)
	slices.SortStableFunc(lines, func(a, b line) int { return int(a.partition - b.partition) })
	var s []string
	for _, l := range lines {
		op := l.op
		if op == "" && l.errMsg != "" {
			op = "error"
		} else if op == "" {
			op = "tombstone"
		}
		s = append(s, fmt.Sprintf("%d:%s", l.partition, op))
	}
	return strings.Join(s, " ")
}

// produce writes recs in one transaction, committed or aborted.
func (e *env) produce(t *testing.T, commit bool, recs ...*kgo.Record) {
	t.Helper()
	ctx := context.Background()
	if err := e.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Topic = e.topic
		if err := e.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

func (e *env) record(t *testing.T, enc schema.Encoding, partition int32, ev *schema.Event) *kgo.Record {
	t.Helper()
	s := e.serdes[enc]
	val, err := s.EncodeValue(e.topic, ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Key: s.Key(ev), Value: val, Partition: partition, Headers: []kgo.RecordHeader{s.Header()}}
}

func testInspect(t *testing.T, brokers []string) {
	ctx := context.Background()
	topic := fmt.Sprintf("lbtest.%s.%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	// Confluent-framed values need a registry: the real one when
	// SCHEMA_REGISTRY_URL is set, else franz-go's in-memory fake.
	registryURL := os.Getenv("SCHEMA_REGISTRY_URL")
	if registryURL == "" {
		reg := srfake.New()
		t.Cleanup(reg.Close)
		registryURL = reg.URL()
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })

	e := &env{brokers: brokers, topic: topic, registry: registryURL, serdes: map[schema.Encoding]*schema.Serde{}, start: time.Now()}
	for _, enc := range []schema.Encoding{schema.EncodingConfluent, schema.EncodingSingleObject, schema.EncodingJSON} {
		s, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: enc, Registry: schema.RegistryConfig{URL: registryURL}})
		if err != nil {
			t.Fatal(err)
		}
		e.serdes[enc] = s
	}
	e.cl, err = kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(topic+"-txn"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cl.Close)

	ns := schema.Namespace{DB: "shop", Coll: "orders"}
	ct := schema.ClusterTime{T: 1700000000, I: 1}
	ev := func(op schema.Op, id int32) *schema.Event {
		x := &schema.Event{Op: op, NS: ns, DocumentKey: idKey(t, id), ClusterTime: ct, Source: "east", Epoch: 1}
		if op != schema.OpDelete {
			x.FullDocument = fullDoc(t, id, string(op))
		}
		return x
	}
	ddl := &schema.Event{Op: schema.OpDDL, NS: ns, ClusterTime: ct, DDL: &schema.DDL{Kind: schema.DDLCreateIndexes, ID: "ddl-1"}}
	e.produce(t, true,
		e.record(t, schema.EncodingSingleObject, 0, ev(schema.OpInsert, 1)),
		e.record(t, schema.EncodingConfluent, 1, ev(schema.OpInsert, 2)),
		e.record(t, schema.EncodingJSON, 0, ev(schema.OpUpdate, 1)),
	)
	e.produce(t, false, e.record(t, schema.EncodingJSON, 0, ev(schema.OpInsert, 99))) // aborted: never shown
	e.produce(t, true,
		e.record(t, schema.EncodingConfluent, 1, ev(schema.OpDelete, 2)),
		&kgo.Record{Key: idKey(t, 2), Partition: 1}, // tombstone
		e.record(t, schema.EncodingJSON, 0, ddl),
		e.record(t, schema.EncodingJSON, 1, ddl),
		&kgo.Record{Key: []byte("not bson"), Value: []byte("{broken"), Partition: 0,
			Headers: []kgo.RecordHeader{{Key: schema.HeaderEncoding, Value: []byte("json")}}},
	)

	t.Run("all", func(t *testing.T) {
		lines := e.run(t, "--topic", topic, "--from-beginning")
		got := ops(lines)
		// kgo returns partitions in any order; compare per partition.
		for p, want := range map[int32]string{0: "0:insert 0:update 0:ddl 0:error", 1: "1:insert 1:delete 1:tombstone 1:ddl"} {
			var part []line
			for _, l := range lines {
				if l.partition == p {
					part = append(part, l)
				}
			}
			if ops(part) != want {
				t.Fatalf("partition %d: got %s, want %s (all: %s)", p, ops(part), want, got)
			}
		}
		first := lines[0].raw
		if first.Lookup("topic").StringValue() != topic {
			t.Fatalf("topic: got %s", first.Lookup("topic"))
		}
		for _, l := range lines {
			if l.op == "insert" {
				if _, err := l.raw.LookupErr("value", "fullDocument", "price"); err != nil {
					t.Fatalf("insert line lacks value.fullDocument.price: %s", l.raw)
				}
				if l.raw.Lookup("key", "_id").Int32() == 0 {
					t.Fatalf("insert line key: %s", l.raw.Lookup("key"))
				}
			}
			if l.op == "error" || l.errMsg != "" {
				if !strings.Contains(l.errMsg, "malformed") || l.raw.Lookup("key").Type != bson.TypeBinary {
					t.Fatalf("undecodable record: %s", l.raw)
				}
			}
		}
	})
	t.Run("filters", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"op", []string{"--op", "update,delete"}, "0:update 1:delete"},
			{"ns", []string{"--ns", "shop.orders", "--partition", "1"}, "1:insert 1:delete 1:ddl"},
			{"other ns", []string{"--ns", "shop.other"}, ""},
			{"key", []string{"--key", `{"_id": 2}`, "--partition", "1"}, "1:insert 1:delete 1:tombstone"},
			{"key as double", []string{"--key", `{"_id": {"$numberDouble": "1.0"}}`}, "0:insert 0:update"},
			{"limit", []string{"--partition", "0", "--limit", "2"}, "0:insert 0:update"},
			{"from offset", []string{"--partition", "1", "--from-offset", "-2"}, "1:ddl"},
			{"from time", []string{"--from-time", time.Now().Add(time.Hour).Format(time.RFC3339)}, ""},
			{"from time past", []string{"--from-time", e.start.Add(-time.Minute).Format(time.RFC3339), "--op", "insert", "--partition", "0"}, "0:insert"},
			{"regex", []string{"--topic-regex", "^" + strings.ReplaceAll(topic, ".", `\.`) + "$", "--op", "ddl", "--partition", "0"}, "0:ddl"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := tt.args
				if !strings.HasPrefix(strings.Join(args, " "), "--topic-regex") {
					args = append([]string{"--topic", topic}, args...)
				}
				if got := ops(e.run(t, args...)); got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
	})
	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, []string{"--kafka-brokers", strings.Join(brokers, ","), "--topic", topic, "--follow",
				"--op", "replace"}, out, &bytes.Buffer{})
		}()
		time.Sleep(500 * time.Millisecond)
		e.produce(t, true, e.record(t, schema.EncodingSingleObject, 1, ev(schema.OpReplace, 3)))
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), `"replace"`) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run --follow: %v", err)
		}
		if got := ops(parseLines(t, out.String())); got != "1:replace" {
			t.Fatalf("got %q, want 1:replace", got)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: logbridge-inspect", "-from-offset", "-topic-regex", "read_committed", "Examples:"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, errOut.String())
		}
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no topic", nil, "exactly one of --topic and --topic-regex"},
		{"no brokers", []string{"--kafka-brokers", "", "--topic", "a"}, "kafka-brokers is required"},
		{"SASL without user", []string{"--topic", "a", "--kafka-sasl-mechanism", "SCRAM-SHA-512"}, "kafka-sasl-user"},
		{"both topic flags", []string{"--topic", "a", "--topic-regex", "b"}, "exactly one of"},
		{"two starts", []string{"--topic", "a", "--from-offset", "3", "--from-time", "2026-01-01T00:00:00Z"}, "mutually exclusive"},
		{"beginning and offset", []string{"--topic", "a", "--from-beginning", "--from-offset", "3"}, "mutually exclusive"},
		{"bad time", []string{"--topic", "a", "--from-time", "yesterday"}, "--from-time"},
		{"bad op", []string{"--topic", "a", "--op", "upsert"}, `unknown operation "upsert"`},
		{"bad key", []string{"--topic", "a", "--key", "{_id:"}, "--key"},
		{"bad regex", []string{"--topic-regex", "("}, "--topic-regex"},
		{"extra args", []string{"--topic", "a", "b"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), append([]string{"--kafka-brokers", "127.0.0.1:1"}, tt.args...), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestKeysEqual: --key matches a record key as MongoDB compares documents.
func TestKeysEqual(t *testing.T) {
	doc := func(d bson.D) bson.Raw {
		t.Helper()
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one, err := bson.ParseDecimal128("1.00")
	if err != nil {
		t.Fatal(err)
	}
	key := doc(bson.D{{Key: "_id", Value: int32(1)}, {Key: "region", Value: "eu"}})
	tests := []struct {
		name string
		want bson.D
		eq   bool
	}{
		{"same", bson.D{{Key: "_id", Value: int32(1)}, {Key: "region", Value: "eu"}}, true},
		{"long", bson.D{{Key: "_id", Value: int64(1)}, {Key: "region", Value: "eu"}}, true},
		{"double", bson.D{{Key: "_id", Value: 1.0}, {Key: "region", Value: "eu"}}, true},
		{"decimal", bson.D{{Key: "_id", Value: one}, {Key: "region", Value: "eu"}}, true},
		{"symbol", bson.D{{Key: "_id", Value: int32(1)}, {Key: "region", Value: bson.Symbol("eu")}}, true},
		{"other value", bson.D{{Key: "_id", Value: int32(2)}, {Key: "region", Value: "eu"}}, false},
		{"string for number", bson.D{{Key: "_id", Value: "1"}, {Key: "region", Value: "eu"}}, false},
		{"other field order", bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: int32(1)}}, false},
		{"prefix", bson.D{{Key: "_id", Value: int32(1)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keysEqual(key, doc(tt.want)); got != tt.eq {
				t.Errorf("keysEqual(%v, %v) got %v, want %v", key, tt.want, got, tt.eq)
			}
		})
	}
	if keysEqual([]byte{1, 2}, doc(bson.D{})) {
		t.Error("a malformed key equals the empty document")
	}
}

// TestInvalidSettingsExitTwo: every command-line error is ErrInvalidSettings
// (exit 2), before any broker is dialled.
func TestInvalidSettingsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"--kafka-brokers", "127.0.0.1:1"},
		{"--kafka-brokers", "127.0.0.1:1", "--topic", "t", "--limit", "-1"},
		{"--kafka-brokers", "127.0.0.1:1", "--topic", "t", "--partition", "-2"},
		{"--kafka-brokers", "", "--topic", "t"},
		{"--brokers", "127.0.0.1:1", "--topic", "t", "--partition", "-2"}, // the deprecated name still parses
	} {
		err := Run(context.Background(), args, new(bytes.Buffer), new(bytes.Buffer))
		if !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("%q: got %v, want ErrInvalidSettings", args, err)
		}
	}
}
