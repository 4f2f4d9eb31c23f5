package mongoshim

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestPredictedPosts: the post-images of a plain top-level $set batch are
// computed as mongo-java-server stores them (existing fields in place, new
// ones appended in the $set's order), and every form or reply the model
// does not cover is refused, so that the shim reads the post-images.
func TestPredictedPosts(t *testing.T) {
	ids := []bson.RawValue{toRawValue(int64(1)), toRawValue(int64(2)), toRawValue(int64(3))}
	pres := map[string]bson.Raw{
		valueKey(ids[0]): mustRaw(bson.D{{Key: "_id", Value: int64(1)}, {Key: "a", Value: "x"}, {Key: "n", Value: int32(1)}, {Key: "f", Value: 1.5}}),
		valueKey(ids[1]): mustRaw(bson.D{{Key: "_id", Value: int64(2)}, {Key: "a", Value: "y"}}),
		// _id 3 does not exist
	}
	stmt := func(id int64, u bson.D) bson.RawValue {
		return toRawValue(mustRaw(bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: id}}}, {Key: "u", Value: u}}))
	}
	set := func(kv ...bson.E) bson.D { return bson.D{{Key: "$set", Value: bson.D(kv)}} }
	reply := func(n, nMod int32, extra ...bson.E) bson.Raw {
		return mustRaw(append(bson.D{{Key: "n", Value: n}, {Key: "nModified", Value: nMod}}, append(extra, bson.E{Key: "ok", Value: 1.0})...))
	}
	plain := []bson.RawValue{
		stmt(1, set(bson.E{Key: "z", Value: true}, bson.E{Key: "a", Value: "x2"}, bson.E{Key: "d", Value: 2.5})),
		stmt(2, set(bson.E{Key: "a", Value: "y"})), // unchanged
		stmt(3, set(bson.E{Key: "a", Value: "w"})), // no document
	}
	posts, ok := predictedPosts(plain, ids, pres, reply(2, 1))
	if !ok {
		t.Fatal("a plain $set batch was refused")
	}
	want1 := mustRaw(bson.D{{Key: "_id", Value: int64(1)}, {Key: "a", Value: "x2"}, {Key: "n", Value: int32(1)}, {Key: "f", Value: 1.5}, {Key: "z", Value: true}, {Key: "d", Value: 2.5}})
	if got := posts[valueKey(ids[0])]; string(got) != string(want1) {
		t.Errorf("post-image %v, want %v", got, want1)
	}
	if got := posts[valueKey(ids[1])]; string(got) != string(pres[valueKey(ids[1])]) {
		t.Errorf("unchanged post-image %v, want the pre-image", got)
	}
	if posts[valueKey(ids[2])] != nil {
		t.Error("a post-image for a missing document")
	}

	refused := map[string]struct {
		stmts []bson.RawValue
		reply bson.Raw
	}{
		"nModified disagrees":  {plain, reply(2, 2)},
		"n disagrees":          {plain, reply(3, 1)},
		"write error":          {plain, reply(2, 1, bson.E{Key: "writeErrors", Value: bson.A{bson.D{{Key: "index", Value: 1}, {Key: "code", Value: 11000}}}})},
		"type change":          {[]bson.RawValue{stmt(1, set(bson.E{Key: "n", Value: int64(1)}))}, reply(1, 1)},
		"double over existing": {[]bson.RawValue{stmt(1, set(bson.E{Key: "f", Value: 2.5}))}, reply(1, 1)},
		"NaN":                  {[]bson.RawValue{stmt(1, set(bson.E{Key: "g", Value: math.NaN()}))}, reply(1, 1)},
		"dotted path":          {[]bson.RawValue{stmt(1, set(bson.E{Key: "a.b", Value: 1}))}, reply(1, 1)},
		"sub-document":         {[]bson.RawValue{stmt(1, set(bson.E{Key: "s", Value: bson.D{{Key: "x", Value: 1}}}))}, reply(1, 1)},
		"other operator":       {[]bson.RawValue{stmt(1, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: "q"}}}, {Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})}, reply(1, 1)},
		"_id":                  {[]bson.RawValue{stmt(1, set(bson.E{Key: "_id", Value: int64(1)}))}, reply(1, 0)},
	}
	for name, c := range refused {
		if _, ok := predictedPosts(c.stmts, ids[:len(c.stmts)], pres, c.reply); ok {
			t.Errorf("%s: predicted, want refused", name)
		}
	}
}
