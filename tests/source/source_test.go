package source

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/testenv"
)

// standaloneURIs are servers that may be standalones: LOGBRIDGE_STANDALONE_URI,
// the local stack's source backend (mongo-java-server on 27118, the server
// behind the replica-set shim; only hello/isMaster is sent to it and the
// connector fails before reading anything) and DEST_URI.
func standaloneURIs(env testenv.Env) []string {
	var out []string
	if v := os.Getenv("LOGBRIDGE_STANDALONE_URI"); v != "" {
		out = append(out, v)
	}
	backend := "127.0.0.1:27118"
	if v := os.Getenv("MONGO_SOURCE_BACKEND_PORT"); v != "" {
		backend = "127.0.0.1:" + v
	}
	return append(out, "mongodb://"+backend+"/?directConnection=true", env.DestURI)
}

// isStandalone asks a server whether it is a standalone (no setName, not a
// mongos), with hello or, before MongoDB 4.4.2, isMaster.
func isStandalone(uri string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(3 * time.Second))
	if err != nil {
		return false
	}
	defer func() { _ = cl.Disconnect(context.Background()) }()
	var hello bson.M
	for _, cmd := range []string{"hello", "isMaster"} {
		if err = cl.Database("admin").RunCommand(ctx, bson.D{{Key: cmd, Value: 1}}).Decode(&hello); err == nil {
			break
		}
	}
	return err == nil && hello["setName"] == nil && hello["msg"] != "isdbgrid"
}

// TestStandaloneSourceFails: a server that is not a replica set ends the
// run with a clear message and exit status 1, before anything is published.
func TestStandaloneSourceFails(t *testing.T) {
	env := testenv.New(t)
	uri := ""
	for _, u := range standaloneURIs(env) {
		if isStandalone(u) {
			uri = u
			break
		}
	}
	if uri == "" {
		t.Skipf("no standalone server found (tried %v); set LOGBRIDGE_STANDALONE_URI", standaloneURIs(env))
	}
	t.Logf("standalone: %s", uri)
	prefix := testenv.TopicPrefix(t)
	p := start(t, "--source-uri", uri, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix)
	if code := p.wait(t, time.Minute); code != 1 {
		t.Fatalf("exit status %d, want 1; output:\n%s", code, p.output())
	}
	out := p.output()
	if !strings.Contains(out, "not a replica set") || !strings.Contains(out, "convert it to a replica set") {
		t.Errorf("output does not explain the standalone source:\n%s", out)
	}
	// Nothing was created: the check comes before Kafka is touched.
	topics, err := env.Admin(t).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, prefix) {
			t.Errorf("topic %s created for a standalone source", name)
		}
	}
}

// TestUnreachableKafkaFails: no broker → clear message, exit status 1.
func TestUnreachableKafkaFails(t *testing.T) {
	env := testenv.New(t)
	p := start(t, "--source-uri", env.SourceURI, "--kafka-brokers", "127.0.0.1:1", "--topic-prefix", testenv.TopicPrefix(t))
	if code := p.wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("exit status %d, want 1; output:\n%s", code, p.output())
	}
	out := p.output()
	if !strings.Contains(out, "cannot reach Kafka") {
		t.Errorf("output does not explain the failure:\n%s", out)
	}
}

// TestBadFlagsFail: invalid settings → exit status 2 and the reason.
func TestBadFlagsFail(t *testing.T) {
	p := start(t, "--partitions", "0", "--full-document", "sometimes")
	if code := p.wait(t, time.Minute); code != 2 {
		t.Fatalf("exit status %d, want 2", code)
	}
	if out := p.output(); !strings.Contains(out, "partitions 0") || !strings.Contains(out, "full-document") {
		t.Errorf("output:\n%s", out)
	}
}

// genuine probes the source for the replica set semantics the connector
// relies on, and reports (t.Log) what is missing.
func genuine(t *testing.T, env testenv.Env) bool {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	cl := env.Source(t)
	var missing []string
	raw, err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	if _, err := raw.LookupErr("operationTime"); err != nil {
		if _, err := raw.LookupErr("$clusterTime"); err != nil {
			missing = append(missing, "cluster time (operationTime/$clusterTime)")
		}
	}
	if sess, err := cl.StartSession(); err == nil {
		if _, err := cl.Database("admin").ListCollectionNames(mongo.NewSessionContext(ctx, sess), bson.D{}); err != nil {
			missing = append(missing, "sessions ("+err.Error()+")")
		}
		sess.EndSession(ctx)
	}
	if cs, err := cl.Watch(ctx, mongo.Pipeline{}); err != nil {
		missing = append(missing, "cluster-wide change streams ("+err.Error()+")")
	} else {
		_ = cs.Close(ctx)
	}
	if len(missing) > 0 {
		t.Logf("source %s lacks: %s", env.SourceURI, strings.Join(missing, "; "))
		return false
	}
	return true
}

// TestSourceLacksPrivileges (issue 4, missing privileges): the source
// refuses a command the connector needs with Unauthorized (13), as a
// server does for a user without the privilege → exit status 1 and a
// message that names what the user needs. The local servers have no
// authentication, so mongod's failCommand fail point stands in for the
// missing role, limited to the connector's application name so that tests
// running beside it are untouched. Two places: listing the namespaces, and
// opening the change stream (an include filter that matches no collection
// leaves nothing to sample, so the stream is the first aggregate).
func TestSourceLacksPrivileges(t *testing.T) {
	env := testenv.New(t)
	cl := env.Source(t)
	for _, tc := range []struct {
		name, command string
		args          []string
		want          []string
	}{
		{"listing", "listDatabases", nil,
			[]string{"listing namespaces", "the source user lacks privileges", "readAnyDatabase"}},
		{"change stream", "aggregate", []string{"--include", "logbridge_no_such_db.*"},
			[]string{"opening the change stream", "lacks privileges", "changeStream and find actions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testenv.Context(t, time.Minute)
			app := "lbpriv-" + strings.ReplaceAll(testenv.TopicPrefix(t), ".", "-")
			_, err := testenv.ConfigureFailPoint(ctx, cl, "failCommand", "alwaysOn",
				bson.D{{Key: "failCommands", Value: bson.A{tc.command}}, {Key: "errorCode", Value: 13}, {Key: "appName", Value: app}})
			if err != nil {
				t.Skipf("the source has no failCommand fail point (mongod needs enableTestCommands): %v", err)
			}
			t.Cleanup(func() {
				_, _ = testenv.ConfigureFailPoint(context.Background(), cl, "failCommand", "off", nil)
			})
			uri, err := url.Parse(env.SourceURI)
			if err != nil {
				t.Fatal(err)
			}
			q := uri.Query()
			q.Set("appName", app)
			uri.RawQuery = q.Encode()
			args := append([]string{"--source-uri", uri.String(), "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", testenv.TopicPrefix(t)}, tc.args...)
			p := start(t, args...)
			if code := p.wait(t, time.Minute); code != 1 {
				t.Fatalf("exit status %d, want 1; output:\n%s", code, p.output())
			}
			out := p.output()
			t.Log(lastLine(out, "lacks privileges"))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}
