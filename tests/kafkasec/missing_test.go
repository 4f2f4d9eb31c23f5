package kafkasec

import (
	"context"
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

// TestMissingACL removes one permission at a time from a connector's least-privilege set:
// the connector must stop within a minute with a message naming the permission and the
// resource, and once the permission is granted and the connector restarted, the
// destination converges: nothing was lost.
func TestMissingACL(t *testing.T) {
	env := testenv.New(t)
	sec := env.Secured(t)
	cases := []struct {
		who      string // "source" or "sink"
		acl      string // acl.name in sourceACLs / sinkACLs
		op       kadm.ACLOperation
		resource string // what the message must name, after the prefix: "" (the prefix), "._source_state", "-sink" ...
		poison   bool   // write an undecodable record, so that the sink needs its dead-letter topic
	}{
		{"source", "topics", kadm.OpCreate, "._source_state", false},
		{"source", "topics", kadm.OpWrite, "._source_state", false},
		{"source", "topics", kadm.OpRead, "._source_state", false},
		{"source", "transactional id", kadm.OpWrite, "logbridge-source-", false},
		{"sink", "topics", kadm.OpRead, "", false},
		{"sink", "group", kadm.OpRead, "-sink", false},
		{"sink", "dead-letter topic", kadm.OpCreate, "._dlq", false},
		{"sink", "dead-letter topic", kadm.OpWrite, "._dlq", true},
	}
	for _, c := range cases {
		t.Run(c.who+"_"+strings.ReplaceAll(c.acl, " ", "_")+"_"+c.op.String(), func(t *testing.T) {
			db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
			group := prefix + "-sink"
			txnID := "logbridge-source-" + prefix
			src, snk := sourceACLs(prefix, txnID), sinkACLs(prefix, group)
			var principal string
			var full, reduced []acl
			if c.who == "source" {
				principal, full, reduced = sec.Source, src, without(src, c.acl, c.op)
				grant(t, env.Admin(t), sec.Sink, snk)
			} else {
				principal, full, reduced = sec.Sink, snk, without(snk, c.acl, c.op)
				grant(t, env.Admin(t), sec.Source, src)
			}
			revoke := grant(t, env.Admin(t), principal, reduced)

			ctx := testenv.Context(t, 3*time.Minute)
			coll, dstColl := seedC(t, ctx, env, db, 200)
			if c.poison {
				// An undecodable record in a data topic, before the connectors start.
				topic := prefix + "." + db + ".c"
				if _, err := kafkaEnsure(t, ctx, env, topic); err != nil {
					t.Fatal(err)
				}
				if err := env.Kafka(t).ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("not an envelope")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}

			source, sink := startConnectors(t, env, sec, sasl(sec), db, prefix, group,
				[]string{"--heartbeat-interval", "1s"}, []string{"--error-tolerance", "all"})
			denied := map[string]*procs.Proc{"source": source, "sink": sink}[c.who]
			exit := denied.WaitExit(t, time.Minute)
			want := []string{"Kafka denied", c.op.String(), prefix + c.resource}
			if c.resource == "logbridge-source-" {
				want[2] = txnID
			}
			for _, w := range want {
				if !strings.Contains(exit, w) {
					t.Errorf("the %s's error does not name %q:\n%s", c.who, w, exit)
				}
			}

			// Grant the missing permission: a restart converges, nothing lost.
			revoke()
			grant(t, env.Admin(t), principal, full)
			denied.Start()
			testenv.WaitSameDocuments(t, ctx, coll, dstColl, source, sink)
			if c.poison {
				if n := len(testenv.ReadTopic(t, env.KafkaBrokers, prefix+"._dlq")); n != 1 {
					t.Errorf("dead-letter topic holds %d records, want the 1 poison record", n)
				}
			}
		})
	}
}

// without is acls less op on the grant named name.
func without(acls []acl, name string, op kadm.ACLOperation) []acl {
	var out []acl
	for _, a := range acls {
		if a.name == name {
			var ops []kadm.ACLOperation
			for _, o := range a.ops {
				if o != op {
					ops = append(ops, o)
				}
			}
			if len(ops) == 0 {
				continue
			}
			a.ops = ops
		}
		out = append(out, a)
	}
	return out
}

func kafkaEnsure(t *testing.T, ctx context.Context, env testenv.Env, topic string) (kadm.CreateTopicResponse, error) {
	return env.Admin(t).CreateTopic(ctx, 4, -1, nil, topic)
}

// TestSecondTransactionalIDOptional: a source granted WRITE on its first
// transactional id only (the least-privilege set before transactions took
// turns between two producers) keeps working with one producer, says so in
// its log, and the destination converges through a snapshot and change
// events.
func TestSecondTransactionalIDOptional(t *testing.T) {
	env := testenv.New(t)
	sec := env.Secured(t)
	db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
	group := prefix + "-sink"
	txnID := "logbridge-source-" + prefix
	grant(t, env.Admin(t), sec.Source, without(sourceACLs(prefix, txnID), "second transactional id", kadm.OpWrite))
	grant(t, env.Admin(t), sec.Sink, sinkACLs(prefix, group))

	ctx := testenv.Context(t, 3*time.Minute)
	coll, dstColl := seedC(t, ctx, env, db, 100)
	source, sink := startConnectors(t, env, sec, sasl(sec), db, prefix, group, nil, nil)
	for i := 100; i < 150; i++ { // change events, many transactions
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitSameDocuments(t, ctx, coll, dstColl, source, sink)
	if err := source.Exited(); err != nil {
		t.Fatalf("the source stopped: %v", err)
	}
	if log := source.Tail(1 << 20); !strings.Contains(log, "transactions use one producer") || !strings.Contains(log, txnID+"+2") {
		t.Errorf("the source's log does not say that it uses one producer, naming %s+2:\n%s", txnID, log)
	}
}

// seedC inserts n documents {_id: i, v: i} into db.c on the source and
// returns that collection and its destination twin; db is dropped on both
// sides when the test ends.
func seedC(t *testing.T, ctx context.Context, env testenv.Env, db string, n int) (src, dst *mongo.Collection) {
	t.Helper()
	srcCl, dstCl := env.Source(t), env.Dest(t)
	t.Cleanup(func() {
		_ = srcCl.Database(db).Drop(context.Background())
		_ = dstCl.Database(db).Drop(context.Background())
	})
	src = srcCl.Database(db).Collection("c")
	docs := make([]any, 0, n)
	for i := range n {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int64(i)}})
	}
	if _, err := src.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	return src, dstCl.Database(db).Collection("c")
}
