package mongoshim

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestDocumentKey(t *testing.T) {
	doc := mustRaw(bson.D{{Key: "_id", Value: int32(7)}, {Key: "a", Value: bson.D{{Key: "b", Value: "x"}}},
		{Key: "region", Value: "eu"}, {Key: "n", Value: int64(3)}})
	id := doc.Lookup("_id")
	tests := []struct {
		name string
		key  bson.D
		want bson.D
	}{
		{name: "one field, then _id", key: bson.D{{Key: "region", Value: 1}},
			want: bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: int32(7)}}},
		{name: "shard key order, not document order", key: bson.D{{Key: "n", Value: 1}, {Key: "region", Value: 1}},
			want: bson.D{{Key: "n", Value: int64(3)}, {Key: "region", Value: "eu"}, {Key: "_id", Value: int32(7)}}},
		{name: "_id in the key is not repeated", key: bson.D{{Key: "region", Value: 1}, {Key: "_id", Value: 1}},
			want: bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: int32(7)}}},
		{name: "_id first", key: bson.D{{Key: "_id", Value: 1}, {Key: "region", Value: 1}},
			want: bson.D{{Key: "_id", Value: int32(7)}, {Key: "region", Value: "eu"}}},
		{name: "hashed: the value, not its hash", key: bson.D{{Key: "region", Value: "hashed"}},
			want: bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: int32(7)}}},
		{name: "dotted path keeps its name", key: bson.D{{Key: "a.b", Value: 1}},
			want: bson.D{{Key: "a.b", Value: "x"}, {Key: "_id", Value: int32(7)}}},
		{name: "missing field left out", key: bson.D{{Key: "zone", Value: 1}, {Key: "region", Value: 1}},
			want: bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: int32(7)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := documentKey(doc, mustRaw(tc.key), id)
			if want := mustRaw(tc.want); string(got) != string(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestShardDocumentKeys(t *testing.T) {
	s := &Server{cfg: Config{Mongos: true}, cat: newCatalog()}
	s.cat.colls["db.sh"] = &collInfo{shard: &shardInfo{key: mustRaw(bson.D{{Key: "region", Value: 1}})}}
	s.cat.colls["db.plain"] = &collInfo{}
	pre := mustRaw(bson.D{{Key: "_id", Value: 1}, {Key: "region", Value: "eu"}})
	post := mustRaw(bson.D{{Key: "_id", Value: 1}, {Key: "region", Value: "us"}})
	idKey := mustRaw(bson.D{{Key: "_id", Value: 1}})
	evs := []*event{
		{op: "insert", db: "db", coll: "sh", docKey: idKey, doc: post},
		{op: "update", db: "db", coll: "sh", docKey: idKey, pre: pre, post: post},
		{op: "replace", db: "db", coll: "sh", docKey: idKey, pre: pre, post: post, doc: post},
		{op: "delete", db: "db", coll: "sh", docKey: idKey, pre: pre},
		{op: "insert", db: "db", coll: "plain", docKey: idKey, doc: post},
		{op: "drop", db: "db", coll: "sh"},
	}
	s.shardDocumentKeys(evs)
	want := []bson.D{
		{{Key: "region", Value: "us"}, {Key: "_id", Value: 1}},
		// an update's document key is the pre-image's (update_stage.cpp)
		{{Key: "region", Value: "eu"}, {Key: "_id", Value: 1}},
		{{Key: "region", Value: "eu"}, {Key: "_id", Value: 1}},
		{{Key: "region", Value: "eu"}, {Key: "_id", Value: 1}},
		{{Key: "_id", Value: 1}},
	}
	for i, w := range want {
		if got := evs[i].docKey; string(got) != string(mustRaw(w)) {
			t.Errorf("%s on %s: documentKey %v, want %v", evs[i].op, evs[i].coll, got, mustRaw(w))
		}
	}
	if evs[5].docKey != nil {
		t.Errorf("drop got a documentKey %v", evs[5].docKey)
	}
	// replica-set mode: keys stay {_id}
	rs := &Server{cfg: Config{}, cat: s.cat}
	ev := &event{op: "insert", db: "db", coll: "sh", docKey: idKey, doc: post}
	rs.shardDocumentKeys([]*event{ev})
	if string(ev.docKey) != string(idKey) {
		t.Errorf("replica-set mode: documentKey %v, want %v", ev.docKey, idKey)
	}
}

func TestCheckShardKey(t *testing.T) {
	tests := []struct {
		name string
		key  bson.D
		ok   bool
	}{
		{name: "ascending", key: bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: int64(1)}}, ok: true},
		{name: "hashed", key: bson.D{{Key: "a", Value: "hashed"}}, ok: true},
		{name: "empty", key: bson.D{}},
		{name: "descending", key: bson.D{{Key: "a", Value: -1}}},
		{name: "two hashed", key: bson.D{{Key: "a", Value: "hashed"}, {Key: "b", Value: "hashed"}}},
		{name: "text", key: bson.D{{Key: "a", Value: "text"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkShardKey(mustRaw(tc.key))
			if (err == nil) != tc.ok {
				t.Errorf("checkShardKey(%v) = %v, want ok %v", tc.key, err, tc.ok)
			}
		})
	}
	if got := indexName(mustRaw(bson.D{{Key: "region", Value: 1}, {Key: "_id", Value: 1}})); got != "region_1__id_1" {
		t.Errorf("indexName = %q, want region_1__id_1", got)
	}
}
