package registryauth

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testcerts"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestAuthRegistryFailFast: a wrong password, no credentials, a wrong bearer token and a CA
// that did not sign the gateway's certificate each stop the source and the sink within 30 s
// with a message that names the flag to fix, and the planted password or token shows
// nowhere in their output.
func TestAuthRegistryFailFast(t *testing.T) {
	env := testenv.New(t)
	reg := env.RegistryAuth(t)
	const plantedPassword, plantedToken = "planted-registry-pw-7d1e", "planted-registry-token-52ab"
	otherCA := testcerts.NewCA(t, "some other CA").File
	cases := []struct {
		name  string
		flags func(t *testing.T, who string) ([]string, []string) // flags, env
		want  []string                                            // each must appear in the output
	}{
		{"wrong password", func(_ *testing.T, who string) ([]string, []string) {
			return []string{"--schema-registry-user", reg.User},
				[]string{"LOGBRIDGE_" + strings.ToUpper(who) + "_SCHEMA_REGISTRY_PASSWORD=" + plantedPassword}
		}, []string{"401", `refused user "` + reg.User + `"`, "--schema-registry-user", "_SCHEMA_REGISTRY_PASSWORD"}},
		{"no credentials", func(*testing.T, string) ([]string, []string) { return nil, nil },
			[]string{"401", "requires authentication", "--schema-registry-user", "--schema-registry-token-file"}},
		{"wrong token", func(t *testing.T, _ string) ([]string, []string) {
			return []string{"--schema-registry-token-file", secretFile(t, "token", plantedToken)}, nil
		}, []string{"401", "bearer token", "--schema-registry-token-file"}},
		{"untrusted CA", func(_ *testing.T, who string) ([]string, []string) {
			return []string{"--schema-registry-user", reg.User, "--schema-registry-ca-file", otherCA},
				[]string{"LOGBRIDGE_" + strings.ToUpper(who) + "_SCHEMA_REGISTRY_PASSWORD=" + reg.Password}
		}, []string{"certificate", "--schema-registry-ca-file"}},
		{"system roots only", func(_ *testing.T, who string) ([]string, []string) {
			return []string{"--schema-registry-user", reg.User},
				[]string{"LOGBRIDGE_" + strings.ToUpper(who) + "_SCHEMA_REGISTRY_PASSWORD=" + reg.Password}
		}, []string{"does not trust", "--schema-registry-ca-file"}},
	}
	srcBin, sinkBin := procs.Binaries(t)
	for _, c := range cases {
		for _, who := range []string{"source", "sink"} {
			t.Run(who+"_"+strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				prefix := testenv.TopicPrefix(t)
				flags, extraEnv := c.flags(t, who)
				if !slices.Contains(flags, "--schema-registry-ca-file") && c.name != "system roots only" {
					flags = append(flags, "--schema-registry-ca-file", reg.CAFile)
				}
				bin, args := srcBin, []string{"--source-uri", env.SourceURI, "--include", "nothing.*", "--encoding", "confluent"}
				if who == "sink" {
					bin, args = sinkBin, []string{"--dest-uri", env.DestURI, "--group", prefix + "-sink"}
				}
				begin := time.Now()
				p := start(t, who, bin, extraEnv, slices.Concat(args, []string{"--kafka-brokers", strings.Join(env.KafkaBrokers, ","),
					"--topic-prefix", prefix, "--http-addr", "127.0.0.1:0", "--schema-registry-url", reg.URL}, flags)...)
				out := p.WaitExit(t, 30*time.Second)
				t.Logf("%s %s: stopped after %s", who, c.name, time.Since(begin).Round(100*time.Millisecond))
				for _, w := range c.want {
					if !strings.Contains(out, w) {
						t.Errorf("the error does not say %q:\n%s", w, out)
					}
				}
				for _, secret := range []string{plantedPassword, plantedToken, reg.Password} {
					if strings.Contains(out, secret) {
						t.Errorf("the output shows a registry secret:\n%s", out)
					}
				}
			})
		}
	}
}

// TestAuthRegistryReadOnlySource: a source whose registry user may only read cannot
// register its schema (403): it stops at its first record with a message that says to grant
// write access or use other credentials, instead of publishing anything undecodable.
func TestAuthRegistryReadOnlySource(t *testing.T) {
	env := testenv.New(t)
	reg := env.RegistryAuth(t)
	db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
	ctx := testenv.Context(t, time.Minute)
	src := env.Source(t)
	t.Cleanup(func() { _ = src.Database(db).Drop(context.Background()) })
	if _, err := src.Database(db).Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	srcBin, _ := procs.Binaries(t)
	p := start(t, "source", srcBin, []string{"LOGBRIDGE_SOURCE_SCHEMA_REGISTRY_PASSWORD=" + reg.ReaderPassword},
		"--source-uri", env.SourceURI, "--include", db+".*", "--encoding", "confluent",
		"--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix, "--http-addr", "127.0.0.1:0",
		"--schema-registry-url", reg.URL, "--schema-registry-ca-file", reg.CAFile, "--schema-registry-user", reg.ReaderUser)
	out := p.WaitExit(t, 30*time.Second)
	for _, w := range []string{"403", `user "` + reg.ReaderUser + `"`, "write access", "--schema-registry-user"} {
		if !strings.Contains(out, w) {
			t.Errorf("the error does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, reg.ReaderPassword) {
		t.Errorf("the output shows the registry password:\n%s", out)
	}
}
