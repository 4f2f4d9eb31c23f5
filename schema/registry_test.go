package schema

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestRealRegistry runs the registry path against a real Confluent-compatible
// schema registry (Confluent, Karapace, Redpanda, Apicurio ccompat) named by
// SCHEMA_REGISTRY_URL, e.g. http://127.0.0.1:18081/apis/ccompat/v7.
func TestRealRegistry(t *testing.T) {
	url := os.Getenv("SCHEMA_REGISTRY_URL")
	if url == "" {
		t.Skip("SCHEMA_REGISTRY_URL is not set: no real schema registry to test against (the registry path is covered against franz-go's srfake)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := fmt.Sprintf("lbtest.schema.%d", time.Now().UnixNano())
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, subject := range []string{topic + "-value", topic + ".evolve-value"} {
			_, _ = cl.DeleteSubject(ctx, subject, sr.SoftDelete)
			_, _ = cl.DeleteSubject(ctx, subject, sr.HardDelete)
		}
	})

	writer, err := NewSerde(ctx, SerdeConfig{Encoding: EncodingConfluent, Registry: RegistryConfig{URL: url}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := writer.Register(ctx, topic)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if again, err := writer.Register(ctx, topic); err != nil || again != id {
		t.Fatalf("Register again: id %d then %d, %v", id, again, err)
	}
	res := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), topic+"-value")[0]
	if res.Err != nil || res.Level != sr.CompatBackward {
		t.Fatalf("subject compatibility: got %v, %v; want BACKWARD", res.Level, res.Err)
	}

	t.Run("round trip through schema id lookup", func(t *testing.T) {
		// A fresh Serde knows no id: it must fetch the schema by id.
		reader, err := NewSerde(ctx, SerdeConfig{Encoding: EncodingJSON, Registry: RegistryConfig{URL: url}})
		if err != nil {
			t.Fatal(err)
		}
		events := testEvents(t)
		for _, name := range sortedNames(events) {
			val, err := writer.EncodeValue(topic, events[name])
			if err != nil {
				t.Fatal(err)
			}
			got, err := reader.DecodeValue(EncodingConfluent, val)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkEvent(t, got, events[name])
		}
		if _, err := reader.DecodeValue(EncodingConfluent, []byte{0, 0x7f, 0xff, 0xff, 0xf0, 0}); !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("unknown id: got %v, want ErrUnknownSchema", err)
		}
	})

	t.Run("older version registered first", func(t *testing.T) {
		// The registry must accept the current envelope after an older
		// version under BACKWARD, and data written with the older version
		// must decode through Avro schema resolution.
		subject := topic + ".evolve-value"
		oldID, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: olderEnvelope}, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject)[0]; r.Err != nil {
			t.Fatal(r.Err)
		}
		newID, err := writer.Register(ctx, topic+".evolve")
		if err != nil {
			t.Fatalf("registry rejects the current envelope after the older one: %v", err)
		}
		if newID == oldID {
			t.Fatalf("older and current envelope share id %d", newID)
		}
		codec, err := goavro.NewCodec(olderEnvelope)
		if err != nil {
			t.Fatal(err)
		}
		key, full := idKey(t, 9), allTypesDoc(t)
		val, err := codec.BinaryFromNative([]byte{0, byte(oldID >> 24), byte(oldID >> 16), byte(oldID >> 8), byte(oldID)}, map[string]any{
			"op": "insert", "ns": map[string]any{"db": "shop", "coll": "orders"},
			"documentKey": goavro.Union("bytes", []byte(key)), "fullDocument": goavro.Union("bytes", []byte(full)),
			"clusterTime": map[string]any{"t": int32(5), "i": int32(6)}, "source": "east",
		})
		if err != nil {
			t.Fatal(err)
		}
		reader, err := NewSerde(ctx, SerdeConfig{Encoding: EncodingJSON, Registry: RegistryConfig{URL: url}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := reader.DecodeValue(EncodingConfluent, val)
		if err != nil {
			t.Fatal(err)
		}
		checkEvent(t, got, &Event{Op: OpInsert, NS: Namespace{DB: "shop", Coll: "orders"}, DocumentKey: key, FullDocument: full,
			ClusterTime: ClusterTime{T: 5, I: 6}, Source: "east"})

		// An incompatible schema is refused by the registry under BACKWARD.
		broken := mutate(t, func(f []any) []any { return append(f, map[string]any{"name": "required", "type": "string"}) })
		_, err = cl.RegisterSchema(ctx, subject, sr.Schema{Schema: broken}, -1, -1)
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 409 {
			t.Fatalf("registering a field without default under BACKWARD: got %v, want HTTP 409", err)
		}
		t.Logf("registry refused the incompatible schema: %v", err)
	})
}
