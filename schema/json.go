package schema

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The JSON encoding is the canonical Extended JSON (v2) rendering of a BSON
// envelope document with the same field names as the Avro envelope. BSON
// payloads are embedded as sub-documents, so canonical Extended JSON keeps
// every BSON type and the field order. Absent (nil) fields are omitted.
//
//	{"op":"update","ns":{"db":"shop","coll":"orders"},
//	 "documentKey":{"_id":{"$oid":"..."}},
//	 "updateDescription":{"updatedFields":{...},"removedFields":["a"],
//	   "truncatedArrays":[{"field":"b","newSize":{"$numberInt":"2"}}]},
//	 "clusterTime":{"$timestamp":{"t":1700000000,"i":3}},
//	 "wallTime":{"$date":{"$numberLong":"1700000000123"}},
//	 "txn":{"lsid":{...},"txnNumber":{"$numberLong":"7"},"index":{"$numberInt":"0"},
//	   "count":{"$numberInt":"2"}},
//	 "resumeToken":{"_data":"..."},"epoch":{"$numberLong":"1"},"source":"east",
//	 "ddl":{"kind":"rename","target":{"db":"shop","coll":"old"},"options":{...},"indexes":{...},"id":"..."},
//	 "marker":{"kind":"commit","id":"...","data":{...}}}

// envelopeBSON builds the envelope as a BSON document (ev validated).
func envelopeBSON(dst []byte, ev *Event) []byte {
	idx, b := bsoncore.AppendDocumentStart(dst)
	b = bsoncore.AppendStringElement(b, "op", string(ev.Op))
	b = appendNS(b, "ns", ev.NS)
	b = appendOptDoc(b, "documentKey", ev.DocumentKey)
	b = appendOptDoc(b, "fullDocument", ev.FullDocument)
	b = appendOptDoc(b, "fullDocumentBeforeChange", ev.FullDocumentBefore)
	if u := ev.Update; u != nil {
		var ui, ai int32
		ui, b = bsoncore.AppendDocumentElementStart(b, "updateDescription")
		b = appendOptDoc(b, "updatedFields", u.UpdatedFields)
		ai, b = bsoncore.AppendArrayElementStart(b, "removedFields")
		for i, f := range u.RemovedFields {
			b = bsoncore.AppendStringElement(b, arrayKey(i), f)
		}
		b, _ = bsoncore.AppendArrayEnd(b, ai)
		ai, b = bsoncore.AppendArrayElementStart(b, "truncatedArrays")
		for i, a := range u.TruncatedArrays {
			var ti int32
			ti, b = bsoncore.AppendDocumentElementStart(b, arrayKey(i))
			b = bsoncore.AppendStringElement(b, "field", a.Field)
			b = bsoncore.AppendInt32Element(b, "newSize", a.NewSize)
			b, _ = bsoncore.AppendDocumentEnd(b, ti)
		}
		b, _ = bsoncore.AppendArrayEnd(b, ai)
		b, _ = bsoncore.AppendDocumentEnd(b, ui)
	}
	b = bsoncore.AppendTimestampElement(b, "clusterTime", ev.ClusterTime.T, ev.ClusterTime.I)
	if ev.WallTimeMillis != 0 {
		b = bsoncore.AppendDateTimeElement(b, "wallTime", ev.WallTimeMillis)
	}
	if t := ev.Txn; t != nil {
		var ti int32
		ti, b = bsoncore.AppendDocumentElementStart(b, "txn")
		b = bsoncore.AppendDocumentElement(b, "lsid", t.LSID)
		b = bsoncore.AppendInt64Element(b, "txnNumber", t.TxnNumber)
		b = bsoncore.AppendInt32Element(b, "index", t.Index)
		if t.Counted {
			b = bsoncore.AppendInt32Element(b, "count", t.Count)
		}
		b, _ = bsoncore.AppendDocumentEnd(b, ti)
	}
	b = appendOptDoc(b, "resumeToken", ev.ResumeToken)
	b = bsoncore.AppendInt64Element(b, "epoch", ev.Epoch)
	b = bsoncore.AppendStringElement(b, "source", ev.Source)
	if d := ev.DDL; d != nil {
		var di int32
		di, b = bsoncore.AppendDocumentElementStart(b, "ddl")
		b = bsoncore.AppendStringElement(b, "kind", string(d.Kind))
		if d.Target != nil {
			b = appendNS(b, "target", *d.Target)
		}
		b = appendOptDoc(b, "options", d.Options)
		b = appendOptDoc(b, "indexes", d.Indexes)
		b = bsoncore.AppendStringElement(b, "id", d.ID)
		b, _ = bsoncore.AppendDocumentEnd(b, di)
	}
	if m := ev.Marker; m != nil {
		var mi int32
		mi, b = bsoncore.AppendDocumentElementStart(b, "marker")
		b = bsoncore.AppendStringElement(b, "kind", string(m.Kind))
		b = bsoncore.AppendStringElement(b, "id", m.ID)
		b = appendOptDoc(b, "data", m.Data)
		b, _ = bsoncore.AppendDocumentEnd(b, mi)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

func appendNS(b []byte, key string, ns Namespace) []byte {
	i, b := bsoncore.AppendDocumentElementStart(b, key)
	b = bsoncore.AppendStringElement(b, "db", ns.DB)
	b = bsoncore.AppendStringElement(b, "coll", ns.Coll)
	b, _ = bsoncore.AppendDocumentEnd(b, i)
	return b
}

func appendOptDoc(b []byte, key string, doc bson.Raw) []byte {
	if doc == nil {
		return b
	}
	return bsoncore.AppendDocumentElement(b, key, doc)
}

var smallKeys = func() (k [64]string) {
	for i := range k {
		k[i] = fmt.Sprint(i)
	}
	return k
}()

func arrayKey(i int) string {
	if i < len(smallKeys) {
		return smallKeys[i]
	}
	return fmt.Sprint(i)
}

// appendJSON appends the canonical Extended JSON envelope of ev (validated).
//
// Canonical Extended JSON reproduces almost every BSON value byte for byte;
// the exceptions are NaNs other than Go's math.NaN() bit pattern, strings
// and keys that are not valid UTF-8, regular expression options out of
// order, old binary (subtype 2) with an inconsistent inner length, and a
// sub-document whose first key is an Extended JSON keyword such as $oid or
// $numberLong. extJSONSafe spots the candidates cheaply; for those the
// output is parsed back and compared, and an event that would change fails
// with ErrInvalidEvent instead of being altered silently.
func appendJSON(dst []byte, ev *Event) ([]byte, error) {
	doc := envelopeBSON(make([]byte, 0, sizeHint(ev)+64), ev)
	out, err := bson.MarshalExtJSON(bson.Raw(doc), true, false)
	if err != nil {
		// The BSON payloads passed the constant-time check but are not
		// valid inside.
		return dst, fmt.Errorf("%w: rendering Extended JSON: %v", ErrInvalidEvent, err)
	}
	if !eventExtJSONSafe(ev) {
		back, err := decodeJSON(out)
		if err != nil || string(envelopeBSON(nil, back)) != string(doc) {
			return dst, fmt.Errorf("%w: the event cannot be represented losslessly in canonical Extended JSON "+
				"(NaN payload, invalid UTF-8, unsorted regex options, old binary subtype 2, or a sub-document "+
				"whose first key is an Extended JSON keyword); use an Avro encoding", ErrInvalidEvent)
		}
	}
	return append(dst, out...), nil
}

// eventExtJSONSafe reports whether every string and BSON payload of ev is
// certainly reproduced exactly by canonical Extended JSON.
func eventExtJSONSafe(ev *Event) bool {
	strs := []string{ev.NS.DB, ev.NS.Coll, ev.Source}
	docs := []bson.Raw{ev.DocumentKey, ev.FullDocument, ev.FullDocumentBefore, ev.ResumeToken}
	if u := ev.Update; u != nil {
		docs = append(docs, u.UpdatedFields)
		strs = append(strs, u.RemovedFields...)
		for _, a := range u.TruncatedArrays {
			strs = append(strs, a.Field)
		}
	}
	if ev.Txn != nil {
		docs = append(docs, ev.Txn.LSID)
	}
	if d := ev.DDL; d != nil {
		docs = append(docs, d.Options, d.Indexes)
		strs = append(strs, string(d.Kind), d.ID)
		if d.Target != nil {
			strs = append(strs, d.Target.DB, d.Target.Coll)
		}
	}
	if m := ev.Marker; m != nil {
		docs = append(docs, m.Data)
		strs = append(strs, string(m.Kind), m.ID)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, d := range docs {
		if d != nil && !extJSONSafe(d, 0) {
			return false
		}
	}
	return true
}

var goNaN = math.Float64bits(math.NaN())

// extJSONSafe walks a BSON document; false means "might not round-trip".
func extJSONSafe(doc []byte, depth int) bool {
	if depth > 200 || len(doc) < 5 {
		return false
	}
	rest := doc[4 : len(doc)-1]
	for first := true; len(rest) > 0; first = false {
		e, r, ok := bsoncore.ReadElement(rest)
		if !ok {
			return false
		}
		rest = r
		key, err := e.KeyErr()
		if err != nil || !utf8.ValidString(key) || (first && strings.HasPrefix(key, "$")) {
			return false
		}
		v, err := e.ValueErr()
		if err != nil {
			return false
		}
		switch v.Type {
		case bsoncore.TypeDouble:
			if f, ok := v.DoubleOK(); !ok || (math.IsNaN(f) && math.Float64bits(f) != goNaN) {
				return false
			}
		case bsoncore.TypeString, bsoncore.TypeSymbol, bsoncore.TypeJavaScript:
			s, ok := v.StringValueOK()
			if !ok {
				if s, ok = v.SymbolOK(); !ok {
					s, ok = v.JavaScriptOK()
				}
			}
			if !ok || !utf8.ValidString(s) {
				return false
			}
		case bsoncore.TypeRegex:
			p, o, ok := v.RegexOK()
			if !ok || !utf8.ValidString(p) || !utf8.ValidString(o) || !sort.StringsAreSorted(strings.Split(o, "")) {
				return false
			}
		case bsoncore.TypeDBPointer:
			ns, _, ok := v.DBPointerOK()
			if !ok || !utf8.ValidString(ns) {
				return false
			}
		case bsoncore.TypeBinary:
			if st, _, ok := v.BinaryOK(); !ok || st == 2 {
				return false
			}
		case bsoncore.TypeCodeWithScope:
			code, scope, ok := v.CodeWithScopeOK()
			if !ok || !utf8.ValidString(code) || !extJSONSafe(scope, depth+1) {
				return false
			}
		case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
			if !extJSONSafe(v.Data, depth+1) {
				return false
			}
		}
	}
	return true
}

// validateDecoded is validateEvent minus the rule that OpUnknown cannot be
// written: decoded events may carry it.
func validateDecoded(ev *Event) error {
	if ev != nil && ev.Op == OpUnknown {
		cp := *ev
		cp.Op = OpHeartbeat
		return validateEvent(&cp)
	}
	return validateEvent(ev)
}

// EnvelopeBSON returns ev as the BSON envelope document that the JSON
// encoding renders as canonical Extended JSON, whatever encoding ev was read
// from (the inspector embeds it in its output lines). Unlike EncodeValue it
// accepts OpUnknown.
func EnvelopeBSON(ev *Event) (bson.Raw, error) {
	if err := validateDecoded(ev); err != nil {
		return nil, err
	}
	return envelopeBSON(nil, ev), nil
}

func malformedJSON(field, format string, args ...any) error {
	return fmt.Errorf("%w: JSON envelope field %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// decodeJSON parses a canonical Extended JSON envelope. Unknown fields are
// ignored (a newer writer may add fields); an unknown op decodes as OpUnknown.
func decodeJSON(value []byte) (*Event, error) {
	if !utf8.Valid(value) {
		// JSON is UTF-8 (RFC 8259); the Extended JSON parser would keep
		// invalid bytes that no encoder can reproduce.
		return nil, fmt.Errorf("%w: JSON envelope is not valid UTF-8", ErrMalformed)
	}
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(value, true, &raw); err != nil {
		return nil, fmt.Errorf("%w: parsing Extended JSON envelope: %v", ErrMalformed, err)
	}
	elems, err := raw.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	ev := new(Event)
	sawOp := false
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		switch key {
		case "op":
			s, ok := v.StringValueOK()
			if !ok {
				return nil, malformedJSON(key, "not a string")
			}
			ev.Op = OpUnknown
			if i := opIndex(Op(s)); i >= 0 {
				ev.Op = opSymbols[i]
			}
			sawOp = true
		case "ns":
			if ev.NS, err = nsFromBSON(key, v); err != nil {
				return nil, err
			}
		case "documentKey":
			ev.DocumentKey, err = docFromBSON(key, v)
		case "fullDocument":
			ev.FullDocument, err = docFromBSON(key, v)
		case "fullDocumentBeforeChange":
			ev.FullDocumentBefore, err = docFromBSON(key, v)
		case "resumeToken":
			ev.ResumeToken, err = docFromBSON(key, v)
		case "updateDescription":
			ev.Update, err = updateFromBSON(v)
		case "clusterTime":
			t, i, ok := v.TimestampOK()
			if !ok {
				return nil, malformedJSON(key, "not a timestamp")
			}
			ev.ClusterTime = ClusterTime{T: t, I: i}
		case "wallTime":
			ms, ok := v.DateTimeOK()
			if !ok {
				return nil, malformedJSON(key, "not a date")
			}
			ev.WallTimeMillis = ms
		case "txn":
			ev.Txn, err = txnFromBSON(v)
		case "epoch":
			ev.Epoch, err = int64FromBSON(key, v)
		case "source":
			s, ok := v.StringValueOK()
			if !ok {
				return nil, malformedJSON(key, "not a string")
			}
			ev.Source = s
		case "ddl":
			ev.DDL, err = ddlFromBSON(v)
		case "marker":
			ev.Marker, err = markerFromBSON(v)
		}
		if err != nil {
			return nil, err
		}
	}
	if !sawOp {
		return nil, malformedJSON("op", "missing")
	}
	return ev, nil
}

func subDoc(field string, v bson.RawValue) (bson.Raw, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, malformedJSON(field, "not a document")
	}
	return d, nil
}

func docFromBSON(field string, v bson.RawValue) (bson.Raw, error) {
	d, err := subDoc(field, v)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func stringField(d bson.Raw, parent, key string, required bool) (string, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		if required {
			return "", malformedJSON(parent+"."+key, "missing")
		}
		return "", nil
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", malformedJSON(parent+"."+key, "not a string")
	}
	return s, nil
}

func optDocField(d bson.Raw, parent, key string) (bson.Raw, error) {
	v, err := d.LookupErr(key)
	if err != nil {
		return nil, nil
	}
	return docFromBSON(parent+"."+key, v)
}

func int64FromBSON(field string, v bson.RawValue) (int64, error) {
	if i, ok := v.Int64OK(); ok {
		return i, nil
	}
	if i, ok := v.Int32OK(); ok {
		return int64(i), nil
	}
	return 0, malformedJSON(field, "not an integer")
}

func nsFromBSON(field string, v bson.RawValue) (Namespace, error) {
	d, err := subDoc(field, v)
	if err != nil {
		return Namespace{}, err
	}
	db, err := stringField(d, field, "db", true)
	if err != nil {
		return Namespace{}, err
	}
	coll, err := stringField(d, field, "coll", false)
	return Namespace{DB: db, Coll: coll}, err
}

func updateFromBSON(v bson.RawValue) (*UpdateDescription, error) {
	const field = "updateDescription"
	d, err := subDoc(field, v)
	if err != nil {
		return nil, err
	}
	u := new(UpdateDescription)
	if u.UpdatedFields, err = optDocField(d, field, "updatedFields"); err != nil {
		return nil, err
	}
	if rv, err := d.LookupErr("removedFields"); err == nil {
		arr, ok := rv.ArrayOK()
		if !ok {
			return nil, malformedJSON(field+".removedFields", "not an array")
		}
		vals, err := arr.Values()
		if err != nil {
			return nil, malformedJSON(field+".removedFields", "%v", err)
		}
		for _, e := range vals {
			s, ok := e.StringValueOK()
			if !ok {
				return nil, malformedJSON(field+".removedFields", "element is not a string")
			}
			u.RemovedFields = append(u.RemovedFields, s)
		}
	}
	if rv, err := d.LookupErr("truncatedArrays"); err == nil {
		arr, ok := rv.ArrayOK()
		if !ok {
			return nil, malformedJSON(field+".truncatedArrays", "not an array")
		}
		vals, err := arr.Values()
		if err != nil {
			return nil, malformedJSON(field+".truncatedArrays", "%v", err)
		}
		for _, e := range vals {
			td, ok := e.DocumentOK()
			if !ok {
				return nil, malformedJSON(field+".truncatedArrays", "element is not a document")
			}
			f, err := stringField(td, field+".truncatedArrays", "field", true)
			if err != nil {
				return nil, err
			}
			nv, err := td.LookupErr("newSize")
			if err != nil {
				return nil, malformedJSON(field+".truncatedArrays.newSize", "missing")
			}
			n, ok := nv.Int32OK()
			if !ok {
				return nil, malformedJSON(field+".truncatedArrays.newSize", "not an int32")
			}
			u.TruncatedArrays = append(u.TruncatedArrays, TruncatedArray{Field: f, NewSize: n})
		}
	}
	return u, nil
}

func txnFromBSON(v bson.RawValue) (*TxnID, error) {
	const field = "txn"
	d, err := subDoc(field, v)
	if err != nil {
		return nil, err
	}
	t := new(TxnID)
	lv, err := d.LookupErr("lsid")
	if err != nil {
		return nil, malformedJSON(field+".lsid", "missing")
	}
	if t.LSID, err = docFromBSON(field+".lsid", lv); err != nil {
		return nil, err
	}
	if nv, err := d.LookupErr("txnNumber"); err == nil {
		if t.TxnNumber, err = int64FromBSON(field+".txnNumber", nv); err != nil {
			return nil, err
		}
	}
	if iv, err := d.LookupErr("index"); err == nil {
		i, ok := iv.Int32OK()
		if !ok {
			return nil, malformedJSON(field+".index", "not an int32")
		}
		t.Index = i
	}
	if cv, err := d.LookupErr("count"); err == nil {
		c, ok := cv.Int32OK()
		if !ok {
			return nil, malformedJSON(field+".count", "not an int32")
		}
		t.Counted, t.Count = true, c
	}
	return t, nil
}

func ddlFromBSON(v bson.RawValue) (*DDL, error) {
	const field = "ddl"
	d, err := subDoc(field, v)
	if err != nil {
		return nil, err
	}
	out := new(DDL)
	kind, err := stringField(d, field, "kind", true)
	if err != nil {
		return nil, err
	}
	out.Kind = DDLKind(kind)
	if tv, err := d.LookupErr("target"); err == nil {
		ns, err := nsFromBSON(field+".target", tv)
		if err != nil {
			return nil, err
		}
		out.Target = &ns
	}
	if out.Options, err = optDocField(d, field, "options"); err != nil {
		return nil, err
	}
	if out.Indexes, err = optDocField(d, field, "indexes"); err != nil {
		return nil, err
	}
	if out.ID, err = stringField(d, field, "id", false); err != nil {
		return nil, err
	}
	return out, nil
}

func markerFromBSON(v bson.RawValue) (*Marker, error) {
	const field = "marker"
	d, err := subDoc(field, v)
	if err != nil {
		return nil, err
	}
	m := new(Marker)
	kind, err := stringField(d, field, "kind", true)
	if err != nil {
		return nil, err
	}
	m.Kind = MarkerKind(kind)
	if m.ID, err = stringField(d, field, "id", false); err != nil {
		return nil, err
	}
	if m.Data, err = optDocField(d, field, "data"); err != nil {
		return nil, err
	}
	return m, nil
}
