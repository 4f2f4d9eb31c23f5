package consumers

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// fixture is one test's namespace, topic prefix and source collection, with
// a few documents of varied BSON types inserted.
type fixture struct {
	env    testenv.Env
	db     string
	prefix string
	topic  string
	coll   *mongo.Collection
	dest   *mongo.Collection
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	env := testenv.New(t)
	f := &fixture{env: env, db: testenv.DBName(t), prefix: testenv.TopicPrefix(t)}
	f.topic = f.prefix + "." + f.db + ".orders"
	src, dst := env.Source(t), env.Dest(t)
	f.coll, f.dest = src.Database(f.db).Collection("orders"), dst.Database(f.db).Collection("orders")
	t.Cleanup(func() {
		_ = src.Database(f.db).Drop(context.Background())
		_ = dst.Database(f.db).Drop(context.Background())
	})
	var docs []any
	for i := range n {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "n", Value: int64(i)},
			{Key: "price", Value: bson.NewDecimal128(uint64(i), 7)}, {Key: "name", Value: strings.Repeat("x", i%7)},
			{Key: "at", Value: bson.DateTime(1700000000000 + int64(i))}})
	}
	if n > 0 {
		if _, err := f.coll.InsertMany(testenv.Context(t, time.Minute), docs); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// source starts the source connector on the fixture's database.
func (f *fixture) source(t *testing.T, args ...string) *procs.Proc {
	t.Helper()
	bin, _ := procs.Binaries(t)
	p := procs.Start(t, "source", bin, append([]string{"--source-uri", f.env.SourceURI,
		"--kafka-brokers", strings.Join(f.env.KafkaBrokers, ","), "--topic-prefix", f.prefix,
		"--include", f.db + ".*", "--http-addr", "127.0.0.1:0"}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s", p.Tail(6000))
		}
	})
	return p
}

// sink starts the sink connector for the fixture's topics.
func (f *fixture) sink(t *testing.T, args ...string) *procs.Proc {
	t.Helper()
	_, bin := procs.Binaries(t)
	p := procs.Start(t, "sink", bin, append([]string{"--dest-uri", f.env.DestURI,
		"--kafka-brokers", strings.Join(f.env.KafkaBrokers, ","), "--topic-prefix", f.prefix,
		"--group", f.prefix + "-sink", "--http-addr", "127.0.0.1:0"}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sink log:\n%s", p.Tail(6000))
		}
	})
	return p
}

// waitRecords polls topic until it holds at least n records (read_committed)
// and returns them; it fails when one of procs exits or d passes.
func waitRecords(t *testing.T, brokers []string, topic string, n int, d time.Duration, running ...*procs.Proc) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, p := range running {
			if err := p.Exited(); err != nil {
				t.Fatalf("%s exited: %v\n%s", p.Name, err, p.Tail(4000))
			}
		}
		if exists(t, brokers, topic) {
			if recs := testenv.ReadTopic(t, brokers, topic); len(recs) >= n {
				return recs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s did not get %d records within %s", topic, n, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func exists(t *testing.T, brokers []string, topic string) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	return err == nil && td.Has(topic) && td[topic].Err == nil
}

// connectRecord is a Kafka Connect JsonConverter record (schemas enabled).
type connectRecord struct {
	Schema  map[string]any  `json:"schema"`
	Payload json.RawMessage `json:"payload"`
}

func parseConnect(t *testing.T, what string, b []byte) connectRecord {
	t.Helper()
	var c connectRecord
	if err := json.Unmarshal(b, &c); err != nil || c.Schema == nil || len(c.Payload) == 0 {
		t.Fatalf("%s is not a JsonConverter schema+payload record (%v): %s", what, err, b)
	}
	return c
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitSnapshotDone waits until every source logged the end of its snapshot
// (it read every document), so later source writes are change events.
func waitSnapshotDone(t *testing.T, sources ...*procs.Proc) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range sources {
		for !strings.Contains(p.Tail(1<<20), `msg="snapshot done"`) {
			if err := p.Exited(); err != nil {
				t.Fatalf("%s exited: %v\n%s", p.Name, err, p.Tail(4000))
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not finish its snapshot within 2m:\n%s", p.Name, p.Tail(4000))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
