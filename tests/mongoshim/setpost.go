package mongoshim

import (
	"bytes"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// predictedPosts computes the post-images of a by-_id update batch from its
// pre-images, instead of reading them back, for the narrowest and most
// common form: every statement a plain {$set: {field: scalar, ...}} of
// top-level fields (what the sink sends for an update event that changed
// top-level scalars, e.g. the catch-up benchmark's {$set: {v: 1}}). It
// applies $set as mongo-java-server does: an existing field keeps its place
// and takes the new value, a new field is appended, in the $set's order.
//
// A post-read costs mongo-java-server about as much as the update itself.
// ok is false (read the post-images) for any other form, for a value whose
// storage or equality the backend might treat differently (a type change of
// an existing field, a double over an existing field: mongo-java-server
// compares numbers by value, so 0.0 and -0.0 or 1 and 1.0 are "unchanged" to
// it; documents and arrays, whose equality ignores field order there; NaN),
// and whenever the reply disagrees with the prediction: write errors,
// upserts, or n and nModified other than the matched documents and those
// whose bytes the prediction changed.
func predictedPosts(stmts, ids []bson.RawValue, pres map[string]bson.Raw, reply bson.Raw) (map[string]bson.Raw, bool) {
	if len(lookupArray(reply, "writeErrors")) > 0 || len(lookupArray(reply, "upserted")) > 0 || len(stmts) != len(ids) {
		return nil, false
	}
	posts := make(map[string]bson.Raw, len(ids))
	var matched, modified int64
	for i, sv := range stmts {
		stmt, ok := sv.DocumentOK()
		if !ok || lookupBool(stmt, "upsert") || hasKey(stmt, "arrayFilters") {
			return nil, false
		}
		set, ok := plainSet(stmt.Lookup("u"))
		if !ok {
			return nil, false
		}
		k := valueKey(ids[i])
		pre := pres[k]
		if pre == nil {
			continue // matched nothing: no document, no event
		}
		post, ok := applyPlainSet(pre, set)
		if !ok {
			return nil, false
		}
		matched++
		if !bytes.Equal(pre, post) {
			modified++
		}
		posts[k] = post
	}
	n, _ := lookupInt(reply, "n")
	nMod, _ := lookupInt(reply, "nModified")
	if n != matched || nMod != modified {
		return nil, false
	}
	return posts, true
}

// plainSet returns the fields of an update {$set: {...}} that sets only
// top-level fields (no dot, no leading $, not _id, each once) to values of
// the types predictedPosts models.
func plainSet(u bson.RawValue) ([]bson.RawElement, bool) {
	spec, ok := u.DocumentOK()
	if !ok {
		return nil, false
	}
	ops, err := spec.Elements()
	if err != nil || len(ops) != 1 || ops[0].Key() != "$set" {
		return nil, false
	}
	fields, ok := ops[0].Value().DocumentOK()
	if !ok {
		return nil, false
	}
	fe, err := fields.Elements()
	if err != nil || len(fe) == 0 {
		return nil, false
	}
	seen := make(map[string]bool, len(fe))
	for _, f := range fe {
		k := f.Key()
		if k == "" || k == "_id" || strings.Contains(k, ".") || strings.HasPrefix(k, "$") || seen[k] {
			return nil, false
		}
		seen[k] = true
		switch v := f.Value(); v.Type {
		case bson.TypeString, bson.TypeBoolean, bson.TypeInt32, bson.TypeInt64, bson.TypeDateTime, bson.TypeObjectID, bson.TypeNull:
		case bson.TypeDouble:
			if math.IsNaN(v.Double()) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return fe, true
}

// applyPlainSet is pre with set applied the way mongo-java-server stores it;
// ok is false where its result could differ from that (see predictedPosts).
func applyPlainSet(pre bson.Raw, set []bson.RawElement) (bson.Raw, bool) {
	elems, err := pre.Elements()
	if err != nil {
		return nil, false
	}
	newVals := make(map[string]bson.RawValue, len(set))
	for _, f := range set {
		newVals[f.Key()] = f.Value()
	}
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(pre)+64))
	present := make(map[string]bool, len(set))
	for _, e := range elems {
		v := e.Value()
		if nv, ok := newVals[e.Key()]; ok {
			if present[e.Key()] || nv.Type != v.Type || nv.Type == bson.TypeDouble {
				return nil, false // a type change, a double, a duplicate field
			}
			present[e.Key()] = true
			v = nv
		}
		b = bsoncore.AppendValueElement(b, e.Key(), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	for _, f := range set {
		if !present[f.Key()] {
			v := f.Value()
			b = bsoncore.AppendValueElement(b, f.Key(), bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		}
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b), true
}
