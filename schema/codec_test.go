package schema

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func sortedNames(m map[string]*Event) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestAvroMatchesGoavro cross-checks the hand-written Avro codec against
// goavro driven by envelope.avsc: same bytes out, and each decodes the other.
func TestAvroMatchesGoavro(t *testing.T) {
	events := testEvents(t)
	for _, name := range sortedNames(events) {
		ev := events[name]
		t.Run(name, func(t *testing.T) {
			want, err := current.codec.BinaryFromNative(nil, eventNative(ev))
			if err != nil {
				t.Fatalf("goavro encode: %v", err)
			}
			got := appendAvro(nil, ev)
			if !bytes.Equal(got, want) {
				t.Fatalf("hand-written encoder differs from goavro:\n got %x\nwant %x", got, want)
			}
			back, err := decodeAvro(want)
			if err != nil {
				t.Fatalf("decoding goavro output: %v", err)
			}
			checkEvent(t, back, ev)
			native, rest, err := current.codec.NativeFromBinary(got)
			if err != nil || len(rest) != 0 {
				t.Fatalf("goavro cannot decode our output: %v (%d bytes left)", err, len(rest))
			}
			if native.(map[string]any)["op"] != string(ev.Op) {
				t.Fatalf("goavro decoded op %v, want %s", native.(map[string]any)["op"], ev.Op)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	serdes, _ := newSerdes(t)
	events := testEvents(t)
	for _, enc := range allEncodings {
		for _, name := range sortedNames(events) {
			ev := events[name]
			t.Run(string(enc)+"/"+name, func(t *testing.T) {
				s := serdes[enc]
				val, err := s.EncodeValue("shop.orders", ev)
				if err != nil {
					t.Fatalf("EncodeValue: %v", err)
				}
				got, err := s.DecodeValue(enc, val)
				if err != nil {
					t.Fatalf("DecodeValue: %v", err)
				}
				checkEvent(t, got, ev)
				// AppendValue appends after existing bytes.
				prefix := []byte("prefix")
				app, err := s.AppendValue(prefix, "shop.orders", ev)
				if err != nil || !bytes.Equal(app[:len(prefix)], prefix) || !bytes.Equal(app[len(prefix):], val) {
					t.Fatalf("AppendValue: got %q, %v", app, err)
				}
				// Any Serde decodes any encoding.
				for _, other := range serdes {
					if got, err := other.DecodeValue(enc, val); err != nil {
						t.Fatalf("%s Serde decoding %s: %v", other.Encoding(), enc, err)
					} else {
						checkEvent(t, got, ev)
					}
				}
			})
		}
	}
}

// TestEveryBSONType checks that every BSON type, binary subtype, field order
// and field names with dots and dollars survive each encoding byte for byte.
func TestEveryBSONType(t *testing.T) {
	serdes, _ := newSerdes(t)
	full := allTypesDoc(t)
	key := doc(t, func(b []byte) []byte {
		return bsoncore.AppendDocumentElement(b, "_id", doc(t, func(b []byte) []byte {
			h, l := dec128(t, "1.10")
			b = bsoncore.AppendDecimal128Element(b, "$d", h, l)
			return bsoncore.AppendBinaryElement(b, "a.b", 3, []byte("0123456789abcdef"))
		}))
	})
	ev := &Event{Op: OpInsert, NS: Namespace{DB: "d", Coll: "c.with.dots"}, DocumentKey: key, FullDocument: full,
		FullDocumentBefore: full, Update: &UpdateDescription{UpdatedFields: full}}
	for _, enc := range allEncodings {
		t.Run(string(enc), func(t *testing.T) {
			val, err := serdes[enc].EncodeValue("t", ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := serdes[enc].DecodeValue(enc, val)
			if err != nil {
				t.Fatal(err)
			}
			for _, pair := range [][2]bson.Raw{
				{got.FullDocument, full}, {got.FullDocumentBefore, full}, {got.Update.UpdatedFields, full}, {got.DocumentKey, key},
			} {
				if !bytes.Equal(pair[0], pair[1]) {
					t.Fatalf("document changed:\n got %s\nwant %s", pair[0], pair[1])
				}
			}
		})
	}
}

// TestJSONRefusesLossyDocuments: the few BSON values canonical Extended
// JSON cannot reproduce make the JSON encoding fail with ErrInvalidEvent
// rather than alter the document; the Avro encodings carry them unchanged.
// Risky-looking values that do round-trip are accepted.
func TestJSONRefusesLossyDocuments(t *testing.T) {
	serdes, _ := newSerdes(t)
	tests := []struct {
		name  string
		build func(b []byte) []byte
		lossy bool
	}{
		{"keyword first key", func(b []byte) []byte {
			return bsoncore.AppendDocumentElement(b, "v", doc(t, func(b []byte) []byte {
				return bsoncore.AppendStringElement(b, "$numberLong", "5")
			}))
		}, true},
		{"NaN payload", func(b []byte) []byte {
			return bsoncore.AppendDoubleElement(b, "v", math.Float64frombits(0x7ff0000000000001))
		}, true},
		{"invalid UTF-8", func(b []byte) []byte { return bsoncore.AppendStringElement(b, "v", "a\xffb") }, true},
		{"unsorted regex options", func(b []byte) []byte { return bsoncore.AppendRegexElement(b, "v", "a", "si") }, true},
		{"old binary with bad inner length", func(b []byte) []byte {
			return append(bsoncore.AppendHeader(b, bsoncore.TypeBinary, "v"), 7, 0, 0, 0, 2, 9, 9, 9, 9, 'a', 'b', 'c')
		}, true},
		{"dollar first key, not a keyword", func(b []byte) []byte {
			return bsoncore.AppendDocumentElement(b, "v", doc(t, func(b []byte) []byte {
				return bsoncore.AppendInt32Element(b, "$set", 1)
			}))
		}, false},
		{"old binary, well formed", func(b []byte) []byte { return bsoncore.AppendBinaryElement(b, "v", 2, []byte("ok")) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, d := bsoncore.AppendDocumentStart(nil)
			d = bsoncore.AppendInt32Element(d, "_id", 1)
			d, _ = bsoncore.AppendDocumentEnd(tt.build(d), idx)
			ev := &Event{Op: OpInsert, DocumentKey: idKey(t, 1), FullDocument: d}
			for _, enc := range allEncodings {
				val, err := serdes[enc].EncodeValue("t", ev)
				if isJSON(enc) && tt.lossy {
					if !errors.Is(err, ErrInvalidEvent) {
						t.Fatalf("JSON: got %v, want ErrInvalidEvent", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", enc, err)
				}
				got, err := serdes[enc].DecodeValue(enc, val)
				if err != nil || !bytes.Equal(got.FullDocument, d) {
					t.Fatalf("%s: document changed (%v)", enc, err)
				}
			}
		})
	}
}

func TestSixteenMiBDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 16 MiB document")
	}
	serdes, _ := newSerdes(t)
	big := bigDoc(t, 16<<20, 1)
	ev := &Event{Op: OpReplace, NS: Namespace{DB: "d", Coll: "c"}, DocumentKey: idKey(t, 7), FullDocument: big, FullDocumentBefore: big}
	for _, enc := range allEncodings {
		t.Run(string(enc), func(t *testing.T) {
			val, err := serdes[enc].EncodeValue("t", ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := serdes[enc].DecodeValue(enc, val)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.FullDocument, big) || !bytes.Equal(got.FullDocumentBefore, big) {
				t.Fatal("16 MiB document changed")
			}
		})
	}
}

func TestKey(t *testing.T) {
	serdes, _ := newSerdes(t)
	events := testEvents(t)
	seen := map[string]string{}
	for _, name := range sortedNames(events) {
		ev := events[name]
		var keys [][]byte
		for _, enc := range allEncodings {
			keys = append(keys, serdes[enc].Key(ev))
		}
		for _, k := range keys[1:] {
			if !bytes.Equal(k, keys[0]) {
				t.Fatalf("%s: key depends on the encoding", name)
			}
		}
		k := keys[0]
		if isDataOp(ev.Op) {
			if !bytes.Equal(k, ev.DocumentKey) || IsControlKey(k) {
				t.Fatalf("%s: got key %x, want the document key", name, k)
			}
			continue
		}
		if !IsControlKey(k) {
			t.Fatalf("%s: got key %s, want a control key", name, bson.Raw(k))
		}
		if prev, dup := seen[string(k)]; dup {
			t.Fatalf("%s and %s share the control key %s", name, prev, bson.Raw(k))
		}
		seen[string(k)] = name
	}
	if k := serdes[EncodingJSON].Key(&Event{Op: OpDDL}); k != nil {
		t.Fatalf("ddl without payload: got key %x, want nil", k)
	}
}

func TestEncodeRejectsInvalidEvents(t *testing.T) {
	serdes, _ := newSerdes(t)
	good := idKey(t, 1)
	tests := []struct {
		name string
		ev   *Event
	}{
		{name: "nil", ev: nil},
		{name: "empty op", ev: &Event{DocumentKey: good}},
		{name: "unknown op", ev: &Event{Op: OpUnknown, DocumentKey: good}},
		{name: "other op", ev: &Event{Op: "upsert", DocumentKey: good}},
		{name: "insert without key", ev: &Event{Op: OpInsert}},
		{name: "ddl without payload", ev: &Event{Op: OpDDL}},
		{name: "marker without payload", ev: &Event{Op: OpMarker}},
		{name: "key not BSON", ev: &Event{Op: OpInsert, DocumentKey: bson.Raw("nope")}},
		{name: "empty key", ev: &Event{Op: OpInsert, DocumentKey: bson.Raw{}}},
		{name: "bad length prefix", ev: &Event{Op: OpInsert, DocumentKey: good, FullDocument: bson.Raw{9, 0, 0, 0, 0}}},
		{name: "txn without lsid", ev: &Event{Op: OpInsert, DocumentKey: good, Txn: &TxnID{TxnNumber: 1}}},
		{name: "bad ddl options", ev: &Event{Op: OpDDL, DDL: &DDL{Options: bson.Raw{1}}}},
	}
	for _, tt := range tests {
		for _, enc := range allEncodings {
			t.Run(tt.name+"/"+string(enc), func(t *testing.T) {
				if _, err := serdes[enc].EncodeValue("t", tt.ev); !errors.Is(err, ErrInvalidEvent) {
					t.Fatalf("got %v, want ErrInvalidEvent", err)
				}
				dst := []byte("keep")
				out, err := serdes[enc].AppendValue(dst, "t", tt.ev)
				if err == nil || string(out) != "keep" {
					t.Fatalf("AppendValue: got %q, %v; want dst unchanged and an error", out, err)
				}
			})
		}
	}
	// A document that passes the constant-time check but is invalid inside
	// fails in JSON (rendering walks it) and is carried as is by Avro.
	bad := bson.Raw{6, 0, 0, 0, 0x7f, 0}
	ev := &Event{Op: OpInsert, DocumentKey: good, FullDocument: bad}
	if _, err := serdes[EncodingJSON].EncodeValue("t", ev); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("JSON with invalid inner BSON: got %v, want ErrInvalidEvent", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	serdes, _ := newSerdes(t)
	s := serdes[EncodingSingleObject]
	ev := testEvents(t)["insert"]
	so, _ := serdes[EncodingSingleObject].EncodeValue("t", ev)
	cf, _ := serdes[EncodingConfluent].EncodeValue("t", ev)
	js, _ := serdes[EncodingJSON].EncodeValue("t", ev)
	body := so[10:]

	withFP := func(fp uint64) []byte {
		b := append([]byte{0xC3, 0x01}, binary.LittleEndian.AppendUint64(nil, fp)...)
		return append(b, body...)
	}
	withID := func(id uint32) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{0}, id), body...)
	}
	insertNoKey := appendAvro(nil, &Event{Op: OpInsert})
	tests := []struct {
		name string
		enc  Encoding
		val  []byte
		want error
	}{
		{"confluent empty", EncodingConfluent, nil, ErrTruncated},
		{"confluent bad magic", EncodingConfluent, []byte{1, 0, 0, 0, 1}, ErrBadMagic},
		{"confluent bad magic is bad header", EncodingConfluent, js, ErrBadHeader},
		{"confluent short header", EncodingConfluent, []byte{0, 0, 0}, ErrTruncated},
		{"confluent unknown id", EncodingConfluent, withID(999), ErrUnknownSchema},
		{"confluent truncated body", EncodingConfluent, cf[:len(cf)-3], ErrTruncated},
		{"confluent trailing bytes", EncodingConfluent, append(append([]byte{}, cf...), 0), ErrMalformed},
		{"single-object empty", EncodingSingleObject, nil, ErrTruncated},
		{"single-object bad magic", EncodingSingleObject, cf, ErrBadMagic},
		{"single-object bad second magic", EncodingSingleObject, []byte{0xC3, 0x02}, ErrBadMagic},
		{"single-object short header", EncodingSingleObject, so[:9], ErrTruncated},
		{"single-object unknown fingerprint", EncodingSingleObject, withFP(12345), ErrUnknownSchema},
		{"single-object truncated", EncodingSingleObject, so[:len(so)-1], ErrTruncated},
		{"single-object only header", EncodingSingleObject, so[:10], ErrTruncated},
		{"single-object op out of range", EncodingSingleObject, append(append([]byte{}, so[:10]...), 0x7e), ErrMalformed},
		{"single-object insert without key", EncodingSingleObject, append(append([]byte{}, so[:10]...), insertNoKey...), ErrMalformed},
		{"json empty", EncodingJSON, nil, ErrTruncated},
		{"json bad magic", EncodingJSON, so, ErrBadMagic},
		{"json invalid", EncodingJSON, []byte(`{"op":`), ErrMalformed},
		{"json no op", EncodingJSON, []byte(`{"source":"x"}`), ErrMalformed},
		{"json wrong type", EncodingJSON, []byte(`{"op":"insert","documentKey":"x"}`), ErrMalformed},
		{"json insert without key", EncodingJSON, []byte(`{"op":"insert"}`), ErrMalformed},
		{"json relaxed date", EncodingJSON, []byte(`{"op":"heartbeat","wallTime":{"$date":"2020-01-01T00:00:00Z"}}`), ErrMalformed},
		{"unknown encoding", "protobuf", js, ErrUnknownEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.DecodeValue(tt.enc, tt.val)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Without a registry, Confluent values cannot be decoded.
	noReg, err := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingJSON})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noReg.DecodeValue(EncodingConfluent, cf); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("no registry: got %v, want ErrUnknownSchema", err)
	}
}

func TestJSONIgnoresUnknownFieldsAndOps(t *testing.T) {
	serdes, _ := newSerdes(t)
	got, err := serdes[EncodingJSON].DecodeValue(EncodingJSON, []byte(`{"op":"teleport","future":{"x":[1]},"source":"s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != OpUnknown || got.Source != "s" {
		t.Fatalf("got op %q source %q, want unknown and s", got.Op, got.Source)
	}
}

func TestEncodingOf(t *testing.T) {
	h := func(kv ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	tests := []struct {
		name    string
		headers []kgo.RecordHeader
		want    Encoding
		wantErr error
	}{
		{"confluent", h("x", "y", HeaderEncoding, "confluent"), EncodingConfluent, nil},
		{"single-object", h(HeaderEncoding, "avro-single-object"), EncodingSingleObject, nil},
		{"json", h(HeaderEncoding, "json"), EncodingJSON, nil},
		{"repeated, same", h(HeaderEncoding, "json", HeaderEncoding, "json"), EncodingJSON, nil},
		{"missing", h("x", "json"), "", ErrBadHeader},
		{"nil", nil, "", ErrBadHeader},
		{"conflicting", h(HeaderEncoding, "json", HeaderEncoding, "confluent"), "", ErrBadHeader},
		{"unknown", h(HeaderEncoding, "xml"), "", ErrUnknownEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodingOf(tt.headers)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	serdes, _ := newSerdes(t)
	for enc, s := range serdes {
		if got, err := EncodingOf([]kgo.RecordHeader{s.Header()}); got != enc || err != nil {
			t.Fatalf("Header of %s Serde: got %q, %v", enc, got, err)
		}
	}
}

func TestNewSerdeConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := NewSerde(ctx, SerdeConfig{Encoding: "xml"}); !errors.Is(err, ErrUnknownEncoding) {
		t.Fatalf("unknown encoding: got %v", err)
	}
	if _, err := NewSerde(ctx, SerdeConfig{Encoding: EncodingConfluent}); err == nil || !strings.Contains(err.Error(), "registry") {
		t.Fatalf("confluent without registry: got %v", err)
	}
	s, err := NewSerde(ctx, SerdeConfig{})
	if err != nil || s.Encoding() != EncodingSingleObject {
		t.Fatalf("default: got %v, %v; want single-object", s, err)
	}
	_, hc := fakeRegistry(t)
	reg, _ := fakeRegistry(t)
	s, err = NewSerde(ctx, SerdeConfig{Registry: RegistryConfig{URL: reg.URL(), HTTPClient: hc}})
	if err != nil || s.Encoding() != EncodingConfluent {
		t.Fatalf("default with registry: got %v; want confluent", err)
	}
	if _, err := NewSerde(ctx, SerdeConfig{Registry: RegistryConfig{URL: "http://127.0.0.1:1"}}); !errors.Is(err, ErrRegistryUnavailable) {
		t.Fatalf("unreachable registry: got %v, want ErrRegistryUnavailable", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	serdes, _ := newSerdes(t)
	events := testEvents(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, enc := range allEncodings {
				for _, name := range sortedNames(events) {
					topic := "topic-" + string(rune('a'+i%3))
					val, err := serdes[enc].EncodeValue(topic, events[name])
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := serdes[(enc)].DecodeValue(enc, val); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
