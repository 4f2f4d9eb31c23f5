package kafkasec

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// listener is how a principal reaches one secured listener: the connector flags, and the
// environment that carries the secret (never a command-line value).
type listener struct {
	name    string
	brokers []string
	flags   func(user string) []string
	env     func(service, user string) []string
}

func sasl(sec testenv.SecuredKafka) listener {
	return listener{
		name:    "SASL_SSL",
		brokers: sec.SASLSSLBrokers,
		flags: func(user string) []string {
			return []string{"--kafka-tls", "--kafka-tls-ca-file", sec.CAFile(),
				"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", user}
		},
		env: func(service, user string) []string {
			return []string{"LOGBRIDGE_" + service + "_KAFKA_SASL_PASSWORD=" + sec.Users[user]}
		},
	}
}

func mtls(sec testenv.SecuredKafka) listener {
	return listener{
		name:    "mTLS",
		brokers: sec.MTLSBrokers,
		flags: func(user string) []string {
			return []string{"--kafka-tls", "--kafka-tls-ca-file", sec.CAFile(),
				"--kafka-tls-cert-file", sec.CertFile(user), "--kafka-tls-key-file", sec.KeyFile(user)}
		},
		env: func(string, string) []string { return nil },
	}
}

func TestSecuredSyncSASLSSL(t *testing.T) {
	env := testenv.New(t)
	runSecuredSync(t, env, sasl(env.Secured(t)))
}

func TestSecuredSyncMTLS(t *testing.T) {
	env := testenv.New(t)
	runSecuredSync(t, env, mtls(env.Secured(t)))
}

// runSecuredSync copies a collection (snapshot, then inserts, updates and deletes from the
// change stream) through a secured listener, each connector with exactly its
// least-privilege ACLs, and checks that the destination converges byte for byte.
func runSecuredSync(t *testing.T, env testenv.Env, l listener) {
	sec := env.Secured(t)
	db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
	group := prefix + "-sink"
	grant(t, env.Admin(t), sec.Source, sourceACLs(prefix, "logbridge-source-"+prefix))
	grant(t, env.Admin(t), sec.Sink, sinkACLs(prefix, group))
	grant(t, env.Admin(t), sec.Inspect, inspectACLs(prefix))

	ctx := testenv.Context(t, 3*time.Minute)
	src, dst := env.Source(t), env.Dest(t)
	coll := src.Database(db).Collection("orders")
	t.Cleanup(func() {
		_ = src.Database(db).Drop(context.Background())
		_ = dst.Database(db).Drop(context.Background())
	})
	var docs []any
	for i := range 500 {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "n", Value: int64(i)},
			{Key: "d", Value: bson.NewDecimal128(uint64(i), 7)}, {Key: "s", Value: strings.Repeat("x", i%50)}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	source, sink := startConnectors(t, env, sec, l, db, prefix, group, []string{"--heartbeat-interval", "1s"}, nil)

	testenv.WaitSameDocuments(t, ctx, coll, dst.Database(db).Collection("orders"), source, sink)
	// Change events through the secured log.
	if _, err := coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 100}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "updated", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 450}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1000)}, {Key: "late", Value: "yes"}}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitSameDocuments(t, ctx, coll, dst.Database(db).Collection("orders"), source, sink)
	// Transactions took turns between the source's two producers.
	for _, id := range []string{"logbridge-source-" + prefix, "logbridge-source-" + prefix + "+2"} {
		ds, err := env.Admin(t).DescribeTransactions(ctx, id)
		if err != nil {
			t.Fatalf("describing transactional id %s: %v", id, err)
		}
		d, err := ds.On(id, nil)
		if err == nil {
			err = d.Err
		}
		// Any state but Empty says the id ran transactions (a heartbeat's may be
		// Ongoing at this moment).
		if err != nil || d.State == "" || d.State == "Empty" || d.State == "CompleteAbort" {
			t.Errorf("transactional id %s: state %q (%v), want one that ran and committed transactions: both producers take turns", id, d.State, err)
		}
	}
	if strings.Contains(source.Tail(1<<20), "transactions use one producer") {
		t.Errorf("the source fell back to one producer although both transactional ids are granted:\n%s", source.Tail(4000))
	}
	// logbridge-verify's comparison: documents by _id range, indexes and collection options.
	rep, err := verify.Run(ctx, src, dst, []verify.Pair{{SourceDB: db, SourceColl: "orders", DestDB: db, DestColl: "orders"}}, verify.Options{}, nil)
	if err != nil || !rep.Equal() {
		t.Fatalf("verifier over %s: %v\n%s", l.name, err, rep.Namespaces[0].Summary())
	}
	t.Logf("%s: snapshot and change events converged with least-privilege ACLs; verifier: %s", l.name, rep.Namespaces[0].Summary())

	// An audit consumer reads the secured log with the same --kafka-* flags.
	topic := prefix + "." + db + ".orders"
	for _, kv := range l.env("INSPECT", sec.Inspect) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cmd := exec.CommandContext(ctx, procs.Tool(t, "./cmd/logbridge-inspect"), append([]string{"--kafka-brokers", strings.Join(l.brokers, ","),
		"--topic", topic, "--op", "delete", "--limit", "50"}, l.flags(sec.Inspect)...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("logbridge-inspect over %s: %v\n%s", l.name, err, stderr)
	}
	if n := strings.Count(string(out), "\n"); n != 50 {
		t.Fatalf("logbridge-inspect printed %d delete events, want the 50 deletes:\n%s", n, out)
	}
}

// startConnectors starts the source (database db, topic prefix) and the sink
// (consumer group) on listener l as the secured principals of sec, with
// further flags of each; their logs are printed when the test fails.
func startConnectors(t *testing.T, env testenv.Env, sec testenv.SecuredKafka, l listener, db, prefix, group string, sourceFlags, sinkFlags []string) (source, sink *procs.Proc) {
	t.Helper()
	srcBin, sinkBin := procs.Binaries(t)
	brokers := strings.Join(l.brokers, ",")
	source = startWithEnv(t, "source", srcBin, l.env("SOURCE", sec.Source), append(append([]string{
		"--source-uri", env.SourceURI, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--include", db + ".*", "--http-addr", "127.0.0.1:0"}, sourceFlags...), l.flags(sec.Source)...)...)
	sink = startWithEnv(t, "sink", sinkBin, l.env("SINK", sec.Sink), append(append([]string{
		"--dest-uri", env.DestURI, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--group", group, "--http-addr", "127.0.0.1:0"}, sinkFlags...), l.flags(sec.Sink)...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s\nsink log:\n%s", source.Tail(6000), sink.Tail(6000))
		}
	})
	return source, sink
}

func startWithEnv(t *testing.T, name, bin string, extraEnv []string, args ...string) *procs.Proc {
	t.Helper()
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return procs.Start(t, name, bin, args...)
}
