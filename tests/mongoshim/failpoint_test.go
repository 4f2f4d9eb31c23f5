package mongoshim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestFailCommand: the failCommand fail point fails the named commands of
// the named application only, with mongod's reply shape, as many times as
// asked; other clients and commands are untouched.
func TestFailCommand(t *testing.T) {
	admin := connect(t)
	ctx := ctxT(t)
	db := dbName(t)
	if _, err := admin.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	app := "failpoint-" + db
	victim, err := mongo.Connect(options.Client().ApplyURI(clientURI).SetAppName(app).SetServerSelectionTimeout(5 * time.Second).SetRetryReads(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Disconnect(ctx) })

	configure := func(mode any, data bson.D) (bson.Raw, error) {
		return admin.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}, {Key: "data", Value: data}}).Raw()
	}
	t.Cleanup(func() { _, _ = configure("off", nil) })
	if _, err := configure(bson.D{{Key: "times", Value: 2}}, bson.D{
		{Key: "failCommands", Value: bson.A{"find", "listDatabases"}}, {Key: "errorCode", Value: 13}, {Key: "appName", Value: app},
	}); err != nil {
		t.Fatalf("configureFailPoint: %v", err)
	}
	find := func(cl *mongo.Client) error {
		return cl.Database(db).Collection("c").FindOne(ctx, bson.D{}).Err()
	}
	unauthorized := func(what string, err error) {
		t.Helper()
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 13 || ce.Name != "Unauthorized" || !strings.Contains(ce.Message, "failCommand") {
			t.Errorf("%s: got %v, want Unauthorized (13) from the fail point", what, err)
		}
	}
	if err := find(admin); err != nil {
		t.Errorf("find by another application failed: %v", err)
	}
	unauthorized("find", find(victim))
	if err := victim.Database(db).Collection("c").FindOneAndUpdate(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}).Err(); err != nil {
		t.Errorf("findAndModify (not named) failed: %v", err)
	}
	_, err = victim.ListDatabaseNames(ctx, bson.D{})
	unauthorized("listDatabases", err)
	if err := find(victim); err != nil {
		t.Errorf("find after the two times: %v", err)
	}

	// alwaysOn until switched off; off reports how often it fired.
	if _, err := configure("alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"aggregate"}}, {Key: "errorCode", Value: 13}, {Key: "errorLabels", Value: bson.A{"NoWritesPerformed"}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, err := admin.Database(db).Collection("c").Aggregate(ctx, mongo.Pipeline{})
		unauthorized("aggregate", err)
		var le mongo.LabeledError
		if !errors.As(err, &le) || !le.HasErrorLabel("NoWritesPerformed") {
			t.Errorf("aggregate error %v lacks the label NoWritesPerformed", err)
		}
	}
	off, err := configure("off", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := off.Lookup("count").AsInt64OK(); n != 5 {
		t.Errorf("count %d after 2 + 3 failures, want 5 (reply %s)", n, off)
	}
	if cur, err := admin.Database(db).Collection("c").Aggregate(ctx, mongo.Pipeline{}); err != nil {
		t.Errorf("aggregate after off: %v", err)
	} else {
		_ = cur.Close(ctx)
	}

	// What the shim does not do is refused, not ignored.
	if _, err := configure("alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}}); err == nil || !strings.Contains(err.Error(), "closeConnection") {
		t.Errorf("closeConnection: got %v, want an error naming it", err)
	}
	if _, err := configure(bson.D{{Key: "skip", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 13}}); err == nil {
		t.Error("mode {skip: 1} was accepted")
	}
	if err := find(victim); err != nil {
		t.Errorf("find after refused configurations: %v", err)
	}
}
