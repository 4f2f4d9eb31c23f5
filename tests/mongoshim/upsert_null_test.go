package mongoshim_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestUpsertNullID: an upsert of {_id: null} that matches nothing stores a
// document whose _id is null, as MongoDB does (mongo-java-server alone
// generates an ObjectId), reports upsertedId null and records an insert
// with documentKey {_id: null}; the next upsert of {_id: null} updates it.
func TestUpsertNullID(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	db := dbName(t)
	c := cl.Database(db).Collection("c")
	cs, err := c.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(ctx)
	r, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: nil}}, bson.D{{Key: "$set", Value: bson.D{{Key: "z", Value: 1}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		t.Fatal(err)
	}
	if r.UpsertedCount != 1 || r.UpsertedID != nil {
		t.Errorf("upsert result %+v, want one upserted with _id null", r)
	}
	if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: nil}}, bson.D{{Key: "_id", Value: nil}, {Key: "z", Value: 2}}, options.Replace().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].String() != `{"_id": null,"z": {"$numberInt":"2"}}` {
		t.Errorf("collection holds %v, want the one document {_id: null, z: 2}", docs)
	}
	evs := collect(t, ctx, cs, db, 2)
	if got := opTypes(evs); got != "insert,replace" {
		t.Errorf("events %s, want insert,replace", got)
	}
	if k := evs[0].Lookup("documentKey").String(); k != `{"_id": null}` {
		t.Errorf("insert documentKey %s, want {_id: null}", k)
	}
}
