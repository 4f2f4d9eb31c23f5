package mongoshim

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestUnstorableRoundTrip: every value mongo-java-server cannot hold is
// wrapped on the way in, nothing else is touched, and the reply side gives
// back the original bytes.
func TestUnstorableRoundTrip(t *testing.T) {
	doc := mustRaw(bson.D{
		{Key: "_id", Value: 1},
		{Key: "ok", Value: bson.D{{Key: "s", Value: "x"}, {Key: "uuid", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}},
		{Key: "b1", Value: bson.Binary{Subtype: 1, Data: []byte{1}}},
		{Key: "b2", Value: bson.Binary{Subtype: 2, Data: []byte{2, 2}}},
		{Key: "b5", Value: bson.Binary{Subtype: 5, Data: make([]byte, 16)}},
		{Key: "b80", Value: bson.Binary{Subtype: 0x80, Data: []byte{8}}},
		{Key: "undef", Value: bson.Undefined{}},
		{Key: "ptr", Value: bson.DBPointer{DB: "db.c", Pointer: bson.ObjectID{1}}},
		{Key: "sym", Value: bson.Symbol("sym")},
		{Key: "cws", Value: bson.CodeWithScope{Code: "f()", Scope: bson.D{{Key: "x", Value: 1}}}},
		{Key: "arr", Value: bson.A{bson.Symbol("in array"), bson.D{{Key: "deep", Value: bson.Undefined{}}}}},
	})
	w := wrapUnstorable(doc)
	if bytes.Equal(w, doc) {
		t.Fatal("nothing was wrapped")
	}
	if hasUnstorable(w) {
		t.Errorf("still unstorable after wrapping: %s", bson.Raw(w))
	}
	if !bytes.Equal(bson.Raw(w).Lookup("ok").Value, doc.Lookup("ok").Value) {
		t.Errorf("a storable value changed: %s", bson.Raw(w).Lookup("ok"))
	}
	if got := unwrapStored(w); !bytes.Equal(got, doc) {
		t.Errorf("round trip\n got %s\nwant %s", bson.Raw(got), doc)
	}
	plain := mustRaw(bson.D{{Key: "a", Value: 1}})
	if got := wrapUnstorable(plain); &got[0] != &plain[0] {
		t.Error("a document without such values was copied")
	}
}
