package schema

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

var allEncodings = []Encoding{EncodingConfluent, EncodingSingleObject, EncodingJSON, EncodingConnectJSON}

// isJSON reports the encodings bound by canonical Extended JSON's limits.
func isJSON(enc Encoding) bool { return enc == EncodingJSON || enc == EncodingConnectJSON }

// inProcess is an http.RoundTripper that serves requests with h directly,
// without sockets (fast enough for fuzzing).
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// fakeRegistry returns an in-memory Confluent-compatible registry (franz-go
// srfake) and an HTTP client that talks to it in process.
func fakeRegistry(t testing.TB) (*srfake.Registry, *http.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	return reg, &http.Client{Transport: inProcess{reg.Handler()}}
}

// newSerdes returns one Serde per encoding, sharing an in-memory registry.
func newSerdes(t testing.TB) (map[Encoding]*Serde, *srfake.Registry) {
	t.Helper()
	reg, hc := fakeRegistry(t)
	out := map[Encoding]*Serde{}
	for _, enc := range allEncodings {
		s, err := NewSerde(context.Background(), SerdeConfig{Encoding: enc, Registry: RegistryConfig{URL: reg.URL(), HTTPClient: hc}})
		if err != nil {
			t.Fatalf("NewSerde(%s): %v", enc, err)
		}
		out[enc] = s
	}
	return out, reg
}

// doc builds a BSON document with bsoncore.
func doc(t testing.TB, build func(b []byte) []byte) bson.Raw {
	t.Helper()
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = build(b)
	b, err := bsoncore.AppendDocumentEnd(b, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bson.Raw(b).Validate(); err != nil {
		t.Fatalf("test document invalid: %v", err)
	}
	return b
}

func oid(i byte) [12]byte {
	return [12]byte{0x65, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, i}
}

func dec128(t testing.TB, s string) (uint64, uint64) {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d.GetBytes()
}

// allTypesDoc is a document holding every BSON type (and the binary
// subtypes), with field names containing dots and dollars, in a field order
// that is not sorted.
func allTypesDoc(t testing.TB) bson.Raw {
	t.Helper()
	nested := doc(t, func(b []byte) []byte {
		b = bsoncore.AppendStringElement(b, "z", "last first")
		b = bsoncore.AppendInt32Element(b, "a", 1)
		return bsoncore.AppendDocumentElement(b, "$inner.x", doc(t, func(b []byte) []byte {
			return bsoncore.AppendNullElement(b, "deep")
		}))
	})
	arr := func(b []byte) []byte {
		ai, b := bsoncore.AppendArrayElementStart(b, "array")
		b = bsoncore.AppendInt32Element(b, "0", 1)
		b = bsoncore.AppendStringElement(b, "1", "two")
		b = bsoncore.AppendDocumentElement(b, "2", nested)
		b = bsoncore.AppendDoubleElement(b, "3", 4.5)
		b, _ = bsoncore.AppendArrayEnd(b, ai)
		return b
	}
	scope := doc(t, func(b []byte) []byte { return bsoncore.AppendInt64Element(b, "x", 42) })
	uuid := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	return doc(t, func(b []byte) []byte {
		b = bsoncore.AppendObjectIDElement(b, "_id", oid(1))
		b = bsoncore.AppendDoubleElement(b, "double", 1.5)
		b = bsoncore.AppendDoubleElement(b, "negzero", math.Copysign(0, -1))
		b = bsoncore.AppendDoubleElement(b, "tenth", 0.1)
		b = bsoncore.AppendDoubleElement(b, "max", math.MaxFloat64)
		b = bsoncore.AppendDoubleElement(b, "denormal", 5e-324)
		b = bsoncore.AppendDoubleElement(b, "inf", math.Inf(1))
		b = bsoncore.AppendDoubleElement(b, "-inf", math.Inf(-1))
		b = bsoncore.AppendDoubleElement(b, "nan", math.NaN())
		b = bsoncore.AppendDoubleElement(b, "int-valued", 1e21)
		b = bsoncore.AppendStringElement(b, "string", "héllo \x00-free \u2603 \"quoted\" <tag> &")
		b = bsoncore.AppendStringElement(b, "empty", "")
		b = bsoncore.AppendDocumentElement(b, "document", nested)
		b = bsoncore.AppendDocumentElement(b, "emptydoc", doc(t, func(b []byte) []byte { return b }))
		b = arr(b)
		b = bsoncore.AppendBinaryElement(b, "bin0", 0x00, []byte("generic"))
		b = bsoncore.AppendBinaryElement(b, "bin0empty", 0x00, []byte{})
		b = bsoncore.AppendBinaryElement(b, "bin1", 0x01, []byte("function"))
		b = bsoncore.AppendBinaryElement(b, "bin2", 0x02, []byte("old binary"))
		b = bsoncore.AppendBinaryElement(b, "bin3", 0x03, uuid)
		b = bsoncore.AppendBinaryElement(b, "bin4", 0x04, uuid)
		b = bsoncore.AppendBinaryElement(b, "bin5", 0x05, []byte("0123456789abcdef"))
		b = bsoncore.AppendBinaryElement(b, "bin6", 0x06, []byte("encrypted"))
		b = bsoncore.AppendBinaryElement(b, "bin7", 0x07, []byte("column"))
		b = bsoncore.AppendBinaryElement(b, "bin8", 0x08, []byte("sensitive"))
		b = bsoncore.AppendBinaryElement(b, "bin80", 0x80, []byte("user defined"))
		b = bsoncore.AppendUndefinedElement(b, "undefined")
		b = bsoncore.AppendObjectIDElement(b, "oid", oid(2))
		b = bsoncore.AppendBooleanElement(b, "true", true)
		b = bsoncore.AppendBooleanElement(b, "false", false)
		b = bsoncore.AppendDateTimeElement(b, "date", 1700000000123)
		b = bsoncore.AppendDateTimeElement(b, "predate", -62135596800000)
		b = bsoncore.AppendNullElement(b, "null")
		b = bsoncore.AppendRegexElement(b, "regex", "^a.*b$", "ilmsux")
		b = bsoncore.AppendRegexElement(b, "regex-noopts", "x|y", "")
		b = bsoncore.AppendDBPointerElement(b, "dbpointer", "db.coll", oid(3))
		b = bsoncore.AppendJavaScriptElement(b, "js", "function() { return 1; }")
		b = bsoncore.AppendSymbolElement(b, "symbol", "sym")
		b = bsoncore.AppendCodeWithScopeElement(b, "jsscope", "function() { return x; }", scope)
		b = bsoncore.AppendInt32Element(b, "int32", -2147483648)
		b = bsoncore.AppendInt32Element(b, "int32max", 2147483647)
		b = bsoncore.AppendTimestampElement(b, "timestamp", 4294967295, 4294967295)
		b = bsoncore.AppendInt64Element(b, "int64", math.MinInt64)
		b = bsoncore.AppendInt64Element(b, "int64max", math.MaxInt64)
		for _, d := range []string{"1.000", "-0", "0E-6176", "9.999999999999999999999999999999999E+6144", "NaN", "Infinity", "-Infinity", "1234567890.0987654321"} {
			h, l := dec128(t, d)
			b = bsoncore.AppendDecimal128Element(b, "dec "+d, h, l)
		}
		b = bsoncore.AppendMinKeyElement(b, "minkey")
		b = bsoncore.AppendMaxKeyElement(b, "maxkey")
		b = bsoncore.AppendStringElement(b, "a.b.c", "dotted")
		b = bsoncore.AppendStringElement(b, "$dollar", "leading dollar")
		b = bsoncore.AppendStringElement(b, "$set.$inc", "both")
		b = bsoncore.AppendStringElement(b, "", "empty name")
		b = bsoncore.AppendStringElement(b, "$oid", "not an ObjectId: not the first field")
		b = bsoncore.AppendInt32Element(b, "AAA first-sorted name, last position", 0)
		return b
	})
}

// bigDoc returns a document of exactly size bytes.
func bigDoc(t testing.TB, size int, seed uint64) bson.Raw {
	t.Helper()
	// {_id: int32, blob: binary(n)}: 4 + (1+4+4) + (1+5+4+1+n) + 1 = n + 25
	n := size - 25
	blob := make([]byte, n)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= len(blob); i += 8 {
		binary.LittleEndian.PutUint64(blob[i:], rnd.Uint64())
	}
	d := doc(t, func(b []byte) []byte {
		b = bsoncore.AppendInt32Element(b, "_id", 7)
		return bsoncore.AppendBinaryElement(b, "blob", 0, blob)
	})
	if len(d) != size {
		t.Fatalf("bigDoc: %d bytes, want %d", len(d), size)
	}
	return d
}

func idKey(t testing.TB, i int32) bson.Raw {
	return doc(t, func(b []byte) []byte { return bsoncore.AppendInt32Element(b, "_id", i) })
}

// testEvents covers every op and every optional envelope field.
func testEvents(t testing.TB) map[string]*Event {
	t.Helper()
	full := allTypesDoc(t)
	key := doc(t, func(b []byte) []byte {
		b = bsoncore.AppendObjectIDElement(b, "_id", oid(1))
		return bsoncore.AppendStringElement(b, "region", "eu")
	})
	token := doc(t, func(b []byte) []byte {
		return bsoncore.AppendStringElement(b, "_data", "8265A0B1C2000000012B0429296E1404")
	})
	lsid := doc(t, func(b []byte) []byte {
		b = bsoncore.AppendBinaryElement(b, "id", 4, []byte("0123456789abcdef"))
		return bsoncore.AppendBinaryElement(b, "uid", 0, bytes.Repeat([]byte{0xee}, 32))
	})
	ns := Namespace{DB: "shop", Coll: "orders"}
	ct := ClusterTime{T: 1700000000, I: 7}
	wall := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC).UnixMilli()
	return map[string]*Event{
		"snapshot": {Op: OpSnapshot, NS: ns, DocumentKey: key, FullDocument: full, ClusterTime: ct, Epoch: 1, Source: "east"},
		"insert": {Op: OpInsert, NS: ns, DocumentKey: key, FullDocument: full, ClusterTime: ct,
			WallTimeMillis: wall, ResumeToken: token, Epoch: 1, Source: "east"},
		"update-delta": {Op: OpUpdate, NS: ns, DocumentKey: key, ClusterTime: ct, WallTimeMillis: wall, ResumeToken: token, Epoch: 1, Source: "east",
			Update: &UpdateDescription{
				UpdatedFields:   doc(t, func(b []byte) []byte { return bsoncore.AppendInt64Element(b, "a.b", 5) }),
				RemovedFields:   []string{"gone", "x.y"},
				TruncatedArrays: []TruncatedArray{{Field: "arr", NewSize: 2}, {Field: "other.list", NewSize: 0}},
			}},
		"update-full-preimage-txn": {Op: OpUpdate, NS: ns, DocumentKey: key, FullDocument: full, FullDocumentBefore: full,
			Update:      &UpdateDescription{RemovedFields: []string{"only-removed"}},
			ClusterTime: ClusterTime{T: math.MaxUint32, I: math.MaxUint32}, WallTimeMillis: -1, ResumeToken: token,
			Txn: &TxnID{LSID: lsid, TxnNumber: math.MaxInt64, Index: 3}, Epoch: math.MaxInt64, Source: "east"},
		"insert-txn-more": {Op: OpInsert, NS: ns, DocumentKey: key, FullDocument: full, ClusterTime: ct, ResumeToken: token,
			Txn: &TxnID{LSID: lsid, TxnNumber: 7, Index: 0, Counted: true}, Epoch: 1, Source: "east"},
		"delete-txn-last": {Op: OpDelete, NS: ns, DocumentKey: key, ClusterTime: ct, ResumeToken: token,
			Txn: &TxnID{LSID: lsid, TxnNumber: 7, Index: 4, Counted: true, Count: 3}, Epoch: 1, Source: "east"},
		"replace": {Op: OpReplace, NS: ns, DocumentKey: key, FullDocument: full, ClusterTime: ct, ResumeToken: token, Epoch: 2, Source: "west"},
		"delete":  {Op: OpDelete, NS: ns, DocumentKey: key, ClusterTime: ct, ResumeToken: token, Epoch: 2, Source: "west"},
		"ddl-rename": {Op: OpDDL, NS: ns, ClusterTime: ct, ResumeToken: token, Epoch: 1, Source: "east",
			DDL: &DDL{Kind: DDLRename, Target: &Namespace{DB: "shop", Coll: "orders_old"}, ID: "8265A0B1C2000000012B"}},
		"ddl-create-indexes": {Op: OpDDL, NS: Namespace{DB: "shop"}, ClusterTime: ct, Epoch: 1, Source: "east",
			DDL: &DDL{Kind: DDLCreateIndexes, ID: "x",
				Options: doc(t, func(b []byte) []byte { return bsoncore.AppendBooleanElement(b, "capped", false) }),
				Indexes: doc(t, func(b []byte) []byte {
					return bsoncore.AppendStringElement(b, "name", "a_1")
				})}},
		"marker": {Op: OpMarker, ClusterTime: ct, Epoch: 3, Source: "east",
			Marker: &Marker{Kind: MarkerCommit, ID: "commit-1", Data: doc(t, func(b []byte) []byte { return bsoncore.AppendInt64Element(b, "n", 1) })}},
		"marker-nodata": {Op: OpMarker, NS: ns, Marker: &Marker{Kind: MarkerEpochStart, ID: "e2"}},
		"heartbeat":     {Op: OpHeartbeat, ClusterTime: ct, ResumeToken: token, Source: "east"},
	}
}

// checkEvent compares two events field by field, BSON byte for byte.
func checkEvent(t testing.TB, got, want *Event) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil event, want %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		gv, wv := reflect.ValueOf(*got), reflect.ValueOf(*want)
		for i := range gv.NumField() {
			if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
				t.Errorf("field %s: got %v, want %v", gv.Type().Field(i).Name, abbreviate(gv.Field(i).Interface()), abbreviate(wv.Field(i).Interface()))
			}
		}
		t.FailNow()
	}
}

func abbreviate(v any) string {
	var s string
	switch v := v.(type) {
	case bson.Raw:
		if v == nil {
			return "<nil>"
		}
		s = v.String()
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			v = rv.Elem().Interface()
		}
		s = fmt.Sprintf("%+v", v)
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// eventNative is ev in goavro's native form, for the goavro cross-check.
func eventNative(ev *Event) map[string]any {
	opt := func(b []byte) any {
		if b == nil {
			return nil
		}
		return goavro.Union("bytes", []byte(b))
	}
	m := map[string]any{
		"op":                       string(ev.Op),
		"ns":                       map[string]any{"db": ev.NS.DB, "coll": ev.NS.Coll},
		"documentKey":              opt(ev.DocumentKey),
		"fullDocument":             opt(ev.FullDocument),
		"fullDocumentBeforeChange": opt(ev.FullDocumentBefore),
		"updateDescription":        nil,
		"clusterTime":              map[string]any{"t": int64(ev.ClusterTime.T), "i": int64(ev.ClusterTime.I)},
		"wallTime":                 nil,
		"txn":                      nil,
		"resumeToken":              opt(ev.ResumeToken),
		"epoch":                    ev.Epoch,
		"source":                   ev.Source,
		"ddl":                      nil,
		"marker":                   nil,
	}
	if u := ev.Update; u != nil {
		removed := []any{}
		for _, f := range u.RemovedFields {
			removed = append(removed, f)
		}
		trunc := []any{}
		for _, a := range u.TruncatedArrays {
			trunc = append(trunc, map[string]any{"field": a.Field, "newSize": a.NewSize})
		}
		m["updateDescription"] = goavro.Union("io.logbridge.UpdateDescription", map[string]any{
			"updatedFields": opt(u.UpdatedFields), "removedFields": removed, "truncatedArrays": trunc,
		})
	}
	if ev.WallTimeMillis != 0 {
		m["wallTime"] = goavro.Union("long.timestamp-millis", time.UnixMilli(ev.WallTimeMillis).UTC())
	}
	if x := ev.Txn; x != nil {
		var count any
		if x.Counted {
			count = goavro.Union("int", x.Count)
		}
		m["txn"] = goavro.Union("io.logbridge.Txn", map[string]any{"lsid": []byte(x.LSID), "txnNumber": x.TxnNumber, "index": x.Index, "count": count})
	}
	if d := ev.DDL; d != nil {
		var target any
		if d.Target != nil {
			target = goavro.Union("io.logbridge.Namespace", map[string]any{"db": d.Target.DB, "coll": d.Target.Coll})
		}
		m["ddl"] = goavro.Union("io.logbridge.DDL", map[string]any{
			"kind": string(d.Kind), "target": target, "options": opt(d.Options), "indexes": opt(d.Indexes), "id": d.ID,
		})
	}
	if x := ev.Marker; x != nil {
		m["marker"] = goavro.Union("io.logbridge.Marker", map[string]any{"kind": string(x.Kind), "id": x.ID, "data": opt(x.Data)})
	}
	return m
}
