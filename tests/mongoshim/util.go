package mongoshim

import (
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func itoa(i int) string { return strconv.Itoa(i) }

// splitNS splits "db.coll" at the first dot.
func splitNS(ns string) (db, coll string) {
	if i := strings.IndexByte(ns, '.'); i >= 0 {
		return ns[:i], ns[i+1:]
	}
	return ns, ""
}

// mustRaw marshals v (a bson.D or similar) and panics on failure: the shim
// only marshals values it built itself.
func mustRaw(v any) bson.Raw {
	b, err := bson.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("mongoshim: marshal: %v", err))
	}
	return bson.Raw(b)
}

// marshalDoc is mustRaw(d) without reflection for the value types the shim's
// own documents hold (nil, string, bool, int32, int64, bson.Raw,
// bson.RawValue, bson.D, bson.Timestamp, bson.DateTime); any other value goes
// through bson.MarshalValue. The bytes are bson.Marshal's
// (TestMarshalDocSameBytes). Every change event a stream returns is rendered
// with it: bson.Marshal's reflection was half of the shim's CPU serving a
// backlog once the $match regex was cached (pprof, issue 21).
func marshalDoc(d bson.D) bson.Raw {
	return bson.Raw(appendDoc(make([]byte, 0, 256), d))
}

func appendDoc(dst []byte, d bson.D) []byte {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	for _, e := range d {
		dst = appendElem(dst, e.Key, e.Value)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

func appendElem(dst []byte, k string, v any) []byte {
	switch x := v.(type) {
	case nil:
		return bsoncore.AppendNullElement(dst, k)
	case string:
		return bsoncore.AppendStringElement(dst, k, x)
	case bool:
		return bsoncore.AppendBooleanElement(dst, k, x)
	case int32:
		return bsoncore.AppendInt32Element(dst, k, x)
	case int64:
		return bsoncore.AppendInt64Element(dst, k, x)
	case bson.Raw:
		if x != nil {
			return bsoncore.AppendDocumentElement(dst, k, x)
		}
	case bson.RawValue:
		if x.Type != 0 {
			return bsoncore.AppendValueElement(dst, k, bsoncore.Value{Type: bsoncore.Type(x.Type), Data: x.Value})
		}
	case bson.D:
		idx, out := bsoncore.AppendDocumentElementStart(dst, k)
		for _, e := range x {
			out = appendElem(out, e.Key, e.Value)
		}
		out, _ = bsoncore.AppendDocumentEnd(out, idx)
		return out
	case bson.Timestamp:
		return bsoncore.AppendTimestampElement(dst, k, x.T, x.I)
	case bson.DateTime:
		return bsoncore.AppendDateTimeElement(dst, k, int64(x))
	}
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(fmt.Sprintf("mongoshim: marshal %s: %v", k, err))
	}
	return bsoncore.AppendValueElement(dst, k, bsoncore.Value{Type: bsoncore.Type(t), Data: b})
}

// cmdName is the first key of a command document.
func cmdName(cmd bson.Raw) string {
	e, err := cmd.IndexErr(0)
	if err != nil {
		return ""
	}
	return e.Key()
}

// firstValue is the value of the command's first element.
func firstValue(cmd bson.Raw) bson.RawValue {
	e, err := cmd.IndexErr(0)
	if err != nil {
		return bson.RawValue{}
	}
	return e.Value()
}

func lookupString(d bson.Raw, path ...string) string {
	v, err := d.LookupErr(path...)
	if err != nil {
		return ""
	}
	s, _ := v.StringValueOK()
	return s
}

func lookupDoc(d bson.Raw, path ...string) bson.Raw {
	v, err := d.LookupErr(path...)
	if err != nil {
		return nil
	}
	doc, _ := v.DocumentOK()
	return doc
}

func lookupArray(d bson.Raw, path ...string) []bson.RawValue {
	v, err := d.LookupErr(path...)
	if err != nil {
		return nil
	}
	a, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := a.Values()
	return vals
}

// lookupBool: true for a true boolean or a non-zero number.
func lookupBool(d bson.Raw, path ...string) bool {
	v, err := d.LookupErr(path...)
	if err != nil {
		return false
	}
	return truthy(v)
}

func truthy(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		n, _ := asInt64(v)
		if v.Type == bson.TypeDouble {
			return v.Double() != 0
		}
		return n != 0
	case bson.TypeNull, bson.TypeUndefined, 0:
		return false
	}
	return true
}

func asInt64(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), true
	case bson.TypeInt64:
		return v.Int64(), true
	case bson.TypeDouble:
		return int64(v.Double()), true
	}
	return 0, false
}

func lookupInt(d bson.Raw, path ...string) (int64, bool) {
	v, err := d.LookupErr(path...)
	if err != nil {
		return 0, false
	}
	return asInt64(v)
}

// hasKey reports whether d has the top-level key k.
func hasKey(d bson.Raw, k string) bool {
	_, err := d.LookupErr(k)
	return err == nil
}

// without returns cmd without the top-level keys for which drop returns true,
// with replacement values from repl (key -> value; a nil RawValue type drops).
func rebuild(cmd bson.Raw, fn func(key string, v bson.RawValue) (bson.RawValue, bool)) bson.Raw {
	elems, err := cmd.Elements()
	if err != nil {
		return cmd
	}
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(cmd)))
	for _, e := range elems {
		nv, keep := fn(e.Key(), e.Value())
		if !keep {
			continue
		}
		b = bsoncore.AppendValueElement(b, e.Key(), bsoncore.Value{Type: bsoncore.Type(nv.Type), Data: nv.Value})
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}

// withFields returns d with the given fields set (replaced in place when
// present, appended otherwise).
func withFields(d bson.Raw, kv ...any) bson.Raw {
	set := map[string]bson.RawValue{}
	var order []string
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		set[k] = toRawValue(kv[i+1])
		order = append(order, k)
	}
	done := map[string]bool{}
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(d)+64))
	elems, _ := d.Elements()
	for _, e := range elems {
		v := e.Value()
		if nv, ok := set[e.Key()]; ok {
			v = nv
			done[e.Key()] = true
		}
		b = bsoncore.AppendValueElement(b, e.Key(), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	for _, k := range order {
		if !done[k] {
			v := set[k]
			b = bsoncore.AppendValueElement(b, k, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		}
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}

// toRawValue converts a Go value to a bson.RawValue.
// binaryValue is toRawValue(b) without the reflection of bson.MarshalValue.
func binaryValue(b bson.Binary) bson.RawValue {
	return bson.RawValue{Type: bson.TypeBinary, Value: bsoncore.AppendBinary(nil, b.Subtype, b.Data)}
}

func toRawValue(v any) bson.RawValue {
	if rv, ok := v.(bson.RawValue); ok {
		return rv
	}
	if r, ok := v.(bson.Raw); ok {
		return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: r}
	}
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(fmt.Sprintf("mongoshim: marshal value: %v", err))
	}
	return bson.RawValue{Type: t, Value: b}
}

// arrayOf builds an array value from documents.
func arrayOf(docs []bson.Raw) bson.RawValue {
	return bson.RawValue{Type: bson.TypeArray, Value: appendDocArray(make([]byte, 0, docArraySize(docs)), docs)}
}

// appendDocArray appends the array of docs (its value, without a key) to b.
func appendDocArray(b []byte, docs []bson.Raw) []byte {
	idx, b := bsoncore.AppendArrayStart(b)
	for i, d := range docs {
		b = bsoncore.AppendDocumentElement(b, itoa(i), d)
	}
	b, _ = bsoncore.AppendArrayEnd(b, idx)
	return b
}

// docArraySize is about the encoded size of the array of docs (a capacity
// hint: each element adds a type byte, an index key and its terminator).
func docArraySize(docs []bson.Raw) int {
	n := 5
	for _, d := range docs {
		n += len(d) + 9
	}
	return n
}

// arrayOfValues builds an array value.
func arrayOfValues(vals []bson.RawValue) bson.RawValue {
	idx, b := bsoncore.AppendArrayStart(nil)
	for i, v := range vals {
		b = bsoncore.AppendValueElement(b, itoa(i), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	b, _ = bsoncore.AppendArrayEnd(b, idx)
	return bson.RawValue{Type: bson.TypeArray, Value: b}
}

// idDoc returns {_id: v}.
func idDoc(v bson.RawValue) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(v.Value)+12))
	b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}

func copyRaw(d bson.Raw) bson.Raw { return append(bson.Raw(nil), d...) }

// valueKey is a map key for a BSON value (type + bytes).
func valueKey(v bson.RawValue) string { return string(rune(v.Type)) + string(v.Value) }
