package registryauth

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// credentials is how one connector authenticates to the registry: its flags and the
// environment that carries the secret.
type credentials struct {
	flags []string
	env   []string
}

// TestAuthRegistrySync copies a collection (snapshot, then updates, deletes and an insert
// from the change stream) with --encoding confluent through the authenticating HTTPS
// registry gateway, and checks that the destination converges byte for byte, that the
// envelope schema was registered in the registry behind the gateway, and that no password
// or token shows in the connectors' logs or metrics.
//   - basic: the source as the read-write user, its password in the environment; the sink
//     as the read-only user (least privilege: a sink only looks schemas up), its password
//     in --schema-registry-password-file;
//   - bearer: both with --schema-registry-token-file.
func TestAuthRegistrySync(t *testing.T) {
	env := testenv.New(t)
	reg := env.RegistryAuth(t)
	plain := env.Registry(t)
	cases := []struct {
		name         string
		source, sink func(t *testing.T) credentials
	}{
		{"basic",
			func(*testing.T) credentials {
				return credentials{[]string{"--schema-registry-user", reg.User},
					[]string{"LOGBRIDGE_SOURCE_SCHEMA_REGISTRY_PASSWORD=" + reg.Password}}
			},
			func(t *testing.T) credentials {
				return credentials{[]string{"--schema-registry-user", reg.ReaderUser,
					"--schema-registry-password-file", secretFile(t, "reader-password", reg.ReaderPassword)}, nil}
			}},
		{"bearer",
			func(t *testing.T) credentials {
				return credentials{[]string{"--schema-registry-token-file", secretFile(t, "source-token", reg.Token)}, nil}
			},
			func(t *testing.T) credentials {
				return credentials{[]string{"--schema-registry-token-file", secretFile(t, "sink-token", reg.Token)}, nil}
			}},
	}
	srcBin, sinkBin := procs.Binaries(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
			topic := prefix + "." + db + ".orders"
			ctx := testenv.Context(t, 3*time.Minute)
			src, dst := env.Source(t), env.Dest(t)
			coll := src.Database(db).Collection("orders")
			plainCl, err := sr.NewClient(sr.URLs(plain))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = src.Database(db).Drop(context.Background())
				_ = dst.Database(db).Drop(context.Background())
				_, _ = plainCl.DeleteSubject(context.Background(), topic+"-value", sr.SoftDelete)
				_, _ = plainCl.DeleteSubject(context.Background(), topic+"-value", sr.HardDelete)
			})
			var docs []any
			for i := range 300 {
				docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "n", Value: int64(i)},
					{Key: "d", Value: bson.NewDecimal128(uint64(i), 7)}, {Key: "s", Value: strings.Repeat("x", i%40)}})
			}
			if _, err := coll.InsertMany(ctx, docs); err != nil {
				t.Fatal(err)
			}

			common := []string{"--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
				"--schema-registry-url", reg.URL, "--schema-registry-ca-file", reg.CAFile}
			sc, kc := c.source(t), c.sink(t)
			srcHTTP, sinkHTTP := freeAddr(t), freeAddr(t)
			source := start(t, "source", srcBin, sc.env, slices.Concat(common, []string{
				"--source-uri", env.SourceURI, "--include", db + ".*", "--http-addr", srcHTTP,
				"--heartbeat-interval", "1s", "--encoding", "confluent"}, sc.flags)...)
			sink := start(t, "sink", sinkBin, kc.env, slices.Concat(common, []string{
				"--dest-uri", env.DestURI, "--group", prefix + "-sink", "--http-addr", sinkHTTP}, kc.flags)...)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("source log:\n%s\nsink log:\n%s", source.Tail(6000), sink.Tail(6000))
				}
			})

			testenv.WaitSameDocuments(t, ctx, coll, dst.Database(db).Collection("orders"), source, sink)
			if _, err := coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 50}}}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "updated", Value: true}}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 280}}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1000)}, {Key: "late", Value: "yes"}}); err != nil {
				t.Fatal(err)
			}
			testenv.WaitSameDocuments(t, ctx, coll, dst.Database(db).Collection("orders"), source, sink)

			// The records went through the registry behind the gateway: their schema is there.
			subjects, err := plainCl.Subjects(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(subjects, topic+"-value") {
				t.Fatalf("subject %s-value is not in the registry: the source did not register through the gateway", topic)
			}

			// No secret in any output: logs, metrics, progress.
			outputs := map[string]string{
				"source log": source.Tail(1 << 22), "sink log": sink.Tail(1 << 22),
				"source metrics": get("http://" + srcHTTP + "/metrics"), "sink metrics": get("http://" + sinkHTTP + "/metrics"),
				"source progress": get("http://" + srcHTTP + "/api/v1/progress"), "sink progress": get("http://" + sinkHTTP + "/api/v1/progress"),
			}
			if outputs["source metrics"] == "" || outputs["sink metrics"] == "" {
				t.Fatalf("could not read the connectors' /metrics on %s and %s", srcHTTP, sinkHTTP)
			}
			for what, out := range outputs {
				for _, secret := range []string{reg.Password, reg.ReaderPassword, reg.Token} {
					if strings.Contains(out, secret) {
						t.Errorf("the %s shows a registry secret", what)
					}
				}
			}
			t.Logf("%s: snapshot and change events converged through the authenticating registry", c.name)
		})
	}
}
