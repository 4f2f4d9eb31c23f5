package inspect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/logbridge/logbridge/schema"
)

// TestInspectAuthRegistry: the inspector decodes Confluent-framed values through the
// local stack's authenticating HTTPS registry gateway with the shared --schema-registry-*
// flags (the read-only user, its password from LOGBRIDGE_INSPECT_SCHEMA_REGISTRY_PASSWORD),
// and a wrong password stops it with the flag to check and without the password.
// Kafka is franz-go's in-process fake; the registry is real (scripts/stack.d/registry-auth.sh).
func TestInspectAuthRegistry(t *testing.T) {
	url, ca := os.Getenv("SCHEMA_REGISTRY_AUTH_URL"), os.Getenv("SCHEMA_REGISTRY_AUTH_CA")
	if url == "" || ca == "" {
		t.Skip("SCHEMA_REGISTRY_AUTH_URL / SCHEMA_REGISTRY_AUTH_CA are not set: no authenticating registry (eval \"$(scripts/stack.sh env)\")")
	}
	writer := schema.RegistryConfig{URL: url, CAFile: ca, User: os.Getenv("SCHEMA_REGISTRY_AUTH_USER"), Password: os.Getenv("SCHEMA_REGISTRY_AUTH_PASSWORD")}
	reader, readerPassword := os.Getenv("SCHEMA_REGISTRY_AUTH_READER_USER"), os.Getenv("SCHEMA_REGISTRY_AUTH_READER_PASSWORD")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	topic := fmt.Sprintf("lbtest.inspect-auth.%d", time.Now().UnixNano())
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.EncodingConfluent, Registry: writer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		opts, _ := writer.ClientOpts()
		if cl, err := sr.NewClient(opts...); err == nil {
			_, _ = cl.DeleteSubject(context.Background(), topic+"-value", sr.SoftDelete)
			_, _ = cl.DeleteSubject(context.Background(), topic+"-value", sr.HardDelete)
		}
	})
	ev := &schema.Event{Op: schema.OpInsert, NS: schema.Namespace{DB: "shop", Coll: "orders"}, DocumentKey: idKey(t, 1),
		FullDocument: fullDoc(t, 1, "insert"), ClusterTime: schema.ClusterTime{T: 1700000000, I: 1}, Source: "east", Epoch: 1}
	val, err := serde.EncodeValue(topic, ev)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h := serde.Header()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: idKey(t, 1), Value: val,
		Headers: []kgo.RecordHeader{{Key: h.Key, Value: h.Value}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	args := []string{"--kafka-brokers", strings.Join(c.ListenAddrs(), ","), "--topic", topic, "--limit", "1",
		"--schema-registry-url", url, "--schema-registry-ca-file", ca, "--schema-registry-user", reader}
	t.Setenv("LOGBRIDGE_INSPECT_SCHEMA_REGISTRY_PASSWORD", readerPassword)
	var out, errOut bytes.Buffer
	if err := Run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errOut.String())
	}
	lines := parseLines(t, out.String())
	if len(lines) != 1 || lines[0].op != "insert" || lines[0].errMsg != "" {
		t.Fatalf("got %q, want the insert decoded through the authenticated registry", out.String())
	}

	const planted = "planted-inspect-pw-90c3"
	t.Setenv("LOGBRIDGE_INSPECT_SCHEMA_REGISTRY_PASSWORD", planted)
	out.Reset()
	errOut.Reset()
	err = Run(ctx, args, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--schema-registry-user") {
		t.Fatalf("wrong password: got %v, want a 401 that names --schema-registry-user", err)
	}
	if strings.Contains(err.Error()+out.String()+errOut.String(), planted) {
		t.Fatal("the output shows the registry password")
	}
}
