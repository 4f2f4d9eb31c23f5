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

	// What the shim does not know is refused, not ignored.
	if _, err := configure(bson.D{{Key: "sometimes", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 13}}); err == nil {
		t.Error("mode {sometimes: 1} was accepted")
	}
	if _, err := configure("alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"find"}}}); err == nil {
		t.Error("failCommand without an action was accepted")
	}
	if err := find(victim); err != nil {
		t.Errorf("find after refused configurations: %v", err)
	}
}

// TestFailPointActions: closeConnection, blockConnection/blockTimeMS,
// writeConcernError, the skip and activationProbability modes and
// failGetMoreAfterCursorCheckout act as mongod's do.
func TestFailPointActions(t *testing.T) {
	admin := connect(t)
	ctx := ctxT(t)
	db := dbName(t)
	coll := admin.Database(db).Collection("c")
	for i := range 5 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	app := "actions-" + db
	// The network error of closeConnection marks the server Unknown until the
	// client's monitor checks it again: a heartbeat every 500 ms (not 10 s)
	// and 15 s of server selection, so that a loaded machine (the whole
	// suite running) does not fail the find after it (seen once: 5 s of
	// selection ran out before the monitor looked again).
	victim, err := mongo.Connect(options.Client().ApplyURI(clientURI).SetAppName(app).SetHeartbeatInterval(500 * time.Millisecond).SetServerSelectionTimeout(15 * time.Second).SetRetryReads(false).SetRetryWrites(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Disconnect(ctx) })
	vc := victim.Database(db).Collection("c")
	configure := func(fp string, mode any, data bson.D) bson.Raw {
		t.Helper()
		r, err := admin.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: fp}, {Key: "mode", Value: mode}, {Key: "data", Value: data}}).Raw()
		if err != nil {
			t.Fatalf("configureFailPoint %s %v %v: %v", fp, mode, data, err)
		}
		return r
	}
	t.Cleanup(func() {
		configure("failCommand", "off", nil)
		configure("failGetMoreAfterCursorCheckout", "off", nil)
	})
	find := func() error { return vc.FindOne(ctx, bson.D{}).Err() }

	// closeConnection: no reply, the connection is gone — a network error
	configure("failCommand", bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: app}})
	if err := find(); !mongo.IsNetworkError(err) {
		t.Errorf("find under closeConnection: got %v, want a network error", err)
	}
	if err := find(); err != nil {
		t.Errorf("find after the one closeConnection: %v", err)
	}

	// blockConnection: the command waits, then runs
	configure("failCommand", bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 400}, {Key: "appName", Value: app}})
	start := time.Now()
	if err := find(); err != nil {
		t.Errorf("find under blockConnection: %v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("find under blockConnection took %v, want >= 400ms", d)
	}

	// errorCode with labels and codeName; {skip: 2}: two pass, then each fails
	configure("failCommand", bson.D{{Key: "skip", Value: 2}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 91}, {Key: "errorLabels", Value: bson.A{"RetryableWriteError"}}, {Key: "appName", Value: app}})
	for i := range 4 {
		err := find()
		var ce mongo.CommandError
		switch {
		case i < 2 && err != nil:
			t.Errorf("find %d within skip: %v", i, err)
		case i >= 2 && (!errors.As(err, &ce) || ce.Code != 91 || ce.Name != "ShutdownInProgress" || !ce.HasErrorLabel("RetryableWriteError")):
			t.Errorf("find %d after skip: got %v, want ShutdownInProgress (91) labelled RetryableWriteError", i, err)
		}
	}
	// activationProbability 0 never fires, 1 always
	configure("failCommand", bson.D{{Key: "activationProbability", Value: 0.0}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 13}, {Key: "appName", Value: app}})
	if err := find(); err != nil {
		t.Errorf("find with activationProbability 0: %v", err)
	}
	configure("failCommand", bson.D{{Key: "activationProbability", Value: 1.0}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 13}, {Key: "appName", Value: app}})
	if err := find(); err == nil {
		t.Error("find with activationProbability 1 did not fail")
	}

	// writeConcernError: the write is done, the reply carries the error
	configure("failCommand", bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 64}, {Key: "errmsg", Value: "waiting for replication timed out"}}}, {Key: "appName", Value: app}})
	_, err = vc.InsertOne(ctx, bson.D{{Key: "_id", Value: 100}})
	var we mongo.WriteException
	if !errors.As(err, &we) || we.WriteConcernError == nil || we.WriteConcernError.Code != 64 {
		t.Errorf("insert under writeConcernError: got %v, want a write concern error 64", err)
	}
	if n, _ := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: 100}}); n != 1 {
		t.Errorf("the insert under writeConcernError was not applied (%d documents)", n)
	}
	configure("failCommand", "off", nil)

	// failGetMoreAfterCursorCheckout: the getMore fails and the cursor is gone
	cur, err := vc.Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	id := cur.ID()
	configure("failGetMoreAfterCursorCheckout", bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "errorCode", Value: 10107}, {Key: "errorLabels", Value: bson.A{"ResumableChangeStreamError"}}})
	for cur.Next(ctx) {
	}
	var ce mongo.CommandError
	if err := cur.Err(); !errors.As(err, &ce) || ce.Code != 10107 || ce.Name != "NotWritablePrimary" || !ce.HasErrorLabel("ResumableChangeStreamError") {
		t.Errorf("getMore under failGetMoreAfterCursorCheckout: got %v, want NotWritablePrimary (10107) labelled ResumableChangeStreamError", cur.Err())
	}
	err = admin.Database(db).RunCommand(ctx, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}}).Err()
	if !errors.As(err, &ce) || ce.Code != 43 {
		t.Errorf("getMore of the failed cursor: got %v, want CursorNotFound (43): the cursor should be gone", err)
	}
}
