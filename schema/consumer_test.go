package schema

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// debeziumSerde returns a Debezium Serde whose ts_ms clock is fixed.
func debeziumSerde(t testing.TB) *Serde {
	t.Helper()
	s, err := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingDebezium})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.UnixMilli(1767225600000) }
	return s
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from %s:\n got %s\nwant %s", path, trunc(got), trunc(want))
	}
}

// TestGoldenDebezium pins the Debezium encoding's values and keys, checks
// they are JSON with the JsonConverter's schema/payload envelope, that DDL
// and markers are not carried, and that the sink-side decoder refuses them.
func TestGoldenDebezium(t *testing.T) {
	s := debeziumSerde(t)
	events := testEvents(t)
	dir := filepath.Join("testdata", "golden")
	for _, name := range sortedNames(events) {
		t.Run(name, func(t *testing.T) {
			ev := events[name]
			val, err := s.EncodeValue("golden", ev)
			if !s.Carries(ev.Op) {
				if !errors.Is(err, ErrInvalidEvent) {
					t.Fatalf("EncodeValue of a %s event: got %v, want ErrInvalidEvent", ev.Op, err)
				}
				if k, _ := s.WireKey("golden", s.Key(ev)); k != nil {
					t.Fatalf("WireKey of a %s event: got %s, want nil", ev.Op, k)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(dir, goldenName(name, EncodingDebezium)), val)
			key, _ := s.WireKey("golden", s.Key(ev))
			if ev.Op == OpHeartbeat {
				key, _ = s.HeartbeatKey("golden", ev)
			}
			checkGolden(t, filepath.Join(dir, name+".debezium.key.json"), key)
			for what, b := range map[string][]byte{"value": val, "key": key} {
				var env struct {
					Schema  map[string]any `json:"schema"`
					Payload map[string]any `json:"payload"`
				}
				if err := json.Unmarshal(b, &env); err != nil || env.Schema == nil || env.Payload == nil {
					t.Fatalf("%s is not a JsonConverter schema/payload envelope (%v): %s", what, err, b)
				}
			}
			if _, err := s.DecodeValue(EncodingDebezium, val); !errors.Is(err, ErrLossyEncoding) {
				t.Fatalf("DecodeValue: got %v, want ErrLossyEncoding", err)
			}
		})
	}
}

// TestDebeziumPayload checks the fields consumers use, on an update with
// a post-image, a pre-image and a transaction.
func TestDebeziumPayload(t *testing.T) {
	s := debeziumSerde(t)
	ev := testEvents(t)["update-full-preimage-txn"]
	val, err := s.EncodeValue("shop.orders", ev)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Schema struct {
			Name string `json:"name"`
		} `json:"schema"`
		Payload struct {
			Before, After     *string
			Op                string
			TsMs              int64 `json:"ts_ms"`
			UpdateDescription struct {
				RemovedFields []string
			}
			Source struct {
				Connector, DB, Collection, Snapshot string
				TsMs                                int64 `json:"ts_ms"`
				Ord                                 int64
				TxnNumber                           int64
			}
			Transaction struct{ ID string }
		} `json:"payload"`
	}
	if err := json.Unmarshal(val, &got); err != nil {
		t.Fatal(err)
	}
	p := got.Payload
	if got.Schema.Name != "shop.orders.Envelope" || p.Op != "u" || p.TsMs != 1767225600000 ||
		p.Source.Connector != "mongodb" || p.Source.DB != "shop" || p.Source.Collection != "orders" || p.Source.Snapshot != "false" ||
		p.Source.TsMs != int64(ev.ClusterTime.T)*1000 || p.Source.Ord != int64(ev.ClusterTime.I) || p.Source.TxnNumber != ev.Txn.TxnNumber ||
		len(p.UpdateDescription.RemovedFields) != 1 || p.Transaction.ID == "" || p.Before == nil || p.After == nil {
		t.Fatalf("unexpected payload: %s", trunc(val))
	}
}

// TestDebeziumDocumentsReadBack: the strict Extended JSON of before/after
// parses back (by a relaxed Extended JSON reader, as consumers' BsonDocument.parse
// does) to the same BSON bytes for every type strict JSON carries: field
// order, int32 vs int64 vs double, -0.0, dates, every binary subtype,
// regexes, timestamps, Decimal128, MinKey/MaxKey, code with scope.
// DBPointer and NaN/Infinity (Java writes bare NaN) are the documented losses.
func TestDebeziumDocumentsReadBack(t *testing.T) {
	full := allTypesDoc(t)
	idx, want := bsoncore.AppendDocumentStart(nil)
	elems, err := full.Elements()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range elems {
		switch e.Key() {
		case "nan", "inf", "-inf", "dbpointer":
			continue // documented losses
		case "bin2", "regex", "regex-noopts":
			continue // written as Java does, but Go's reader has no legacy {$regex, $options} form (Java's has)
		}
		want = append(want, e...)
	}
	want, _ = bsoncore.AppendDocumentEnd(want, idx)
	js := appendJavaDoc(nil, want, javaStrict)
	var back bson.Raw
	if err := bson.UnmarshalExtJSON(js, false, &back); err != nil {
		t.Fatalf("strict JSON does not parse: %v\n%s", err, js)
	}
	if !bytes.Equal(back, want) {
		t.Fatalf("document changed through strict JSON:\n got %s\nwant %s\njson %s", back, bson.Raw(want), js)
	}
}

func TestJavaFormatting(t *testing.T) {
	doubles := []struct {
		in   float64
		want string
	}{
		{1, "1.0"}, {-0.5, "-0.5"}, {0.001, "0.001"}, {0.0001, "1.0E-4"}, {1.5e-5, "1.5E-5"},
		{1234567, "1234567.0"}, {1e7, "1.0E7"}, {1e21, "1.0E21"}, {123.456, "123.456"},
	}
	for _, tt := range doubles {
		if got := javaDouble(tt.in); got != tt.want {
			t.Errorf("javaDouble(%v): got %s, want %s", tt.in, got, tt.want)
		}
	}
	strs := []struct{ in, want string }{
		{"plain é ☃", `"plain é ☃"`},
		{"q\"b\\n\n\x01", `"q\"b\\n\n\u0001"`},
		{"e\u0301", `"e\u0301"`},   // combining mark: escaped by Java's writer
		{"😀", `"\ud83d\ude00"`},    // outside the BMP: surrogate pair
		{"a\u2028b", `"a\u2028b"`}, // line separator
	}
	for _, tt := range strs {
		if got := string(appendJavaString(nil, tt.in)); got != tt.want {
			t.Errorf("appendJavaString(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
	key := bsoncore.NewDocumentBuilder().AppendObjectID("_id", oid(1)).AppendString("region", "eu").Build()
	got := string(debeziumKey("db1.shop.orders", &Event{Op: OpInsert, DocumentKey: bson.Raw(key)}))
	if want := `"payload":{"id":"{\"$oid\": \"` + bson.ObjectID(oid(1)).Hex() + `\"}"}`; !bytes.Contains([]byte(got), []byte(want)) {
		t.Errorf("Debezium key %s: want it to contain %s", got, want)
	}
}

// TestLossyEncodingsDeclared: exactly Debezium declares losses, and the
// decoder refuses exactly the lossy ones.
func TestLossyEncodingsDeclared(t *testing.T) {
	for _, enc := range Encodings {
		lossy := enc.Loses() != ""
		if lossy != (enc == EncodingDebezium) {
			t.Errorf("%s: Loses() = %q", enc, enc.Loses())
		}
		if _, err := EncodingOf([]RecordHeader{{Key: HeaderEncoding, Value: []byte(enc)}}); err != nil {
			t.Errorf("EncodingOf(%s): %v", enc, err)
		}
	}
}

// TestConfluentKeys: with ConfluentKeys the key schema is registered under
// <topic>-key (compatibility BACKWARD or stricter), keys are framed as
// Confluent Avro bytes of the raw BSON key, and decode back to it.
func TestConfluentKeys(t *testing.T) {
	reg, hc := fakeRegistry(t)
	s, err := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingConfluent, ConfluentKeys: true,
		Registry: RegistryConfig{URL: reg.URL(), HTTPClient: hc}})
	if err != nil {
		t.Fatal(err)
	}
	if s.RawKeys() {
		t.Fatal("RawKeys with ConfluentKeys: producers would write unframed keys")
	}
	ev := testEvents(t)["insert"]
	key, err := s.WireKey("orders", s.Key(ev))
	if err != nil {
		t.Fatal(err)
	}
	if key[0] != 0 || bytes.Equal(key, ev.DocumentKey) {
		t.Fatalf("key %x is not Confluent-framed", key)
	}
	back, err := DecodeConfluentKey(key)
	if err != nil || !bytes.Equal(back, ev.DocumentKey) {
		t.Fatalf("DecodeConfluentKey: %v, %v; want the raw document key", back, err)
	}
	sub, err := s.reg.SchemaByVersion(context.Background(), "orders-key", -1)
	if err != nil || sub.Schema.Schema != KeySubjectSchema {
		t.Fatalf("subject orders-key: %+v, %v", sub, err)
	}
	if id := int(binary.BigEndian.Uint32(key[1:5])); id != sub.ID {
		t.Fatalf("key header has schema id %d, the subject's is %d", id, sub.ID)
	}
	if _, err := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingJSON, ConfluentKeys: true}); err == nil {
		t.Fatal("ConfluentKeys with the json encoding was accepted")
	}
	plain, _ := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingSingleObject})
	if k, _ := plain.WireKey("orders", ev.DocumentKey); !bytes.Equal(k, ev.DocumentKey) || !plain.RawKeys() {
		t.Fatal("without ConfluentKeys the wire key must be the raw key")
	}
}
