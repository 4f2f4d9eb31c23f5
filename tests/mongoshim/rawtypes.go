package mongoshim

import (
	"bytes"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// mongo-java-server cannot hold every BSON type: binary subtypes 1, 2, 5, 6,
// 7, 8, DBPointer, Symbol and CodeWithScope make its decoder throw and the
// server close the connection; binary subtype 0x80 comes back as 0x00 and
// undefined as null. The shim therefore stores such a value as a one-field
// sub-document {__lbraw: BinData(0, <BSON type byte><value bytes>)} — in
// every command it sends to the backend (documents, filters, update specs,
// pipelines alike, so equality on such a value still matches) — and turns
// every such sub-document in a backend reply back into the original value,
// byte for byte. What stays a gap: the backend compares and sorts the
// stored form (a document), so range queries, sorts and $type on these
// values are not MongoDB's; equality, storage and round trips are.

// rawKey names the wrapper's one field.
const rawKey = "__lbraw"

// rawMarker is how the wrapper's field begins in BSON (type 0x05, the key):
// replies without it are passed through untouched.
var rawMarker = append(append([]byte{byte(bson.TypeBinary)}, rawKey...), 0)

// unstorable reports a value the backend cannot hold as it is.
func unstorable(t bson.Type, v []byte) bool {
	switch t {
	case bson.TypeUndefined, bson.TypeDBPointer, bson.TypeSymbol, bson.TypeCodeWithScope:
		return true
	case bson.TypeBinary:
		if len(v) < 5 {
			return false
		}
		switch v[4] {
		case 0x00, 0x03, 0x04:
			return false
		}
		return true
	}
	return false
}

// wrapUnstorable rewrites doc with every unstorable value wrapped; doc
// itself when it holds none.
func wrapUnstorable(doc []byte) []byte {
	if !hasUnstorable(doc) {
		return doc
	}
	return rewrite(doc, func(t bson.Type, v []byte) (bson.Type, []byte, bool) {
		if !unstorable(t, v) {
			return t, v, false
		}
		payload := append([]byte{byte(t)}, v...)
		w := bsoncore.NewDocumentBuilder().AppendBinary(rawKey, 0, payload).Build()
		return bson.TypeEmbeddedDocument, w, true
	})
}

func hasUnstorable(doc []byte) bool {
	es, err := bsoncore.Document(doc).Elements()
	if err != nil {
		return false
	}
	for _, e := range es {
		v := e.Value()
		switch {
		case unstorable(bson.Type(v.Type), v.Data):
			return true
		case v.Type == bsoncore.TypeEmbeddedDocument || v.Type == bsoncore.TypeArray:
			if hasUnstorable(v.Data) {
				return true
			}
		}
	}
	return false
}

// unwrapStored turns wrapped values in a backend reply back into what was
// stored; reply itself when it holds none.
func unwrapStored(reply []byte) []byte {
	if !bytes.Contains(reply, rawMarker) {
		return reply
	}
	return rewrite(reply, func(t bson.Type, v []byte) (bson.Type, []byte, bool) {
		if t != bson.TypeEmbeddedDocument {
			return t, v, false
		}
		es, err := bsoncore.Document(v).Elements()
		if err != nil || len(es) != 1 || es[0].Key() != rawKey {
			return t, v, false
		}
		sub, data, ok := es[0].Value().BinaryOK()
		if !ok || sub != 0 || len(data) < 1 { // undefined has no value bytes
			return t, v, false
		}
		return bson.Type(data[0]), data[1:], true
	})
}

// rewrite rebuilds doc (a document or an array body), replacing values as fn
// says, recursing into sub-documents and arrays fn leaves alone.
func rewrite(doc []byte, fn func(bson.Type, []byte) (bson.Type, []byte, bool)) []byte {
	es, err := bsoncore.Document(doc).Elements()
	if err != nil {
		return doc
	}
	idx, out := bsoncore.AppendDocumentStart(make([]byte, 0, len(doc)+64))
	for _, e := range es {
		v := e.Value()
		t, data := bson.Type(v.Type), v.Data
		if nt, nd, ok := fn(t, data); ok {
			t, data = nt, nd
		} else if t == bson.TypeEmbeddedDocument || t == bson.TypeArray {
			data = rewrite(data, fn)
		}
		out = bsoncore.AppendHeader(out, bsoncore.Type(t), e.Key())
		out = append(out, data...)
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}
