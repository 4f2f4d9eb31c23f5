package mongox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/tests/testenv"
)

// predicates are every error predicate of the package, by name.
var predicates = map[string]func(error) bool{
	"IsDuplicateKey":      mongox.IsDuplicateKey,
	"IsNamespaceNotFound": mongox.IsNamespaceNotFound,
	"IsNamespaceExists":   mongox.IsNamespaceExists,
	"IsIndexNotFound":     mongox.IsIndexNotFound,
	"IsIndexConflict":     mongox.IsIndexConflict,
	"IsCommandNotFound":   mongox.IsCommandNotFound,
	"IsNotSupported":      mongox.IsNotSupported,
	"IsUserWritesBlocked": mongox.IsUserWritesBlocked,
	"IsUnauthorized":      mongox.IsUnauthorized,
	"IsAuthError":         mongox.IsAuthError,
	"IsHistoryLost":       mongox.IsHistoryLost,
	"IsTransient":         mongox.IsTransient,
	"IsCursorNotFound":    mongox.IsCursorNotFound,
}

// TestPredicatesOnServerReplies provokes each error on the destination server
// and checks that exactly the predicates meant for it match the reply, as the
// driver returns it and wrapped with %w as callers pass it on. What the local
// server cannot be made to do (a blocked write, a missing privilege, a lost
// change stream history) comes from the failCommand fail point, which makes
// the server reply with the code (and labels) a genuine mongod sends.
func TestPredicatesOnServerReplies(t *testing.T) {
	env := testenv.New(t)
	ctx := testenv.Context(t, 2*time.Minute)
	// The fail point is server-wide: an application name of our own keeps it
	// from failing other clients of the shared server.
	app := fmt.Sprintf("lb-errtest-%d", time.Now().UnixNano())
	cl, err := mongo.Connect(options.Client().ApplyURI(env.DestURI).SetAppName(app).
		SetServerSelectionTimeout(10 * time.Second).SetRetryWrites(false).SetRetryReads(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	db := cl.Database(testenv.DBName(t))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	coll := db.Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetName("a_idx")}); err != nil {
		t.Fatal(err)
	}

	// failOnce makes the next command of this client named cmd fail with
	// code and labels.
	failOnce := func(t *testing.T, cmd string, code int, labels ...string) {
		t.Helper()
		data := bson.D{{Key: "failCommands", Value: bson.A{cmd}}, {Key: "errorCode", Value: code}, {Key: "appName", Value: app}}
		if len(labels) > 0 {
			data = append(data, bson.E{Key: "errorLabels", Value: labels})
		}
		err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "configureFailPoint", Value: "failCommand"},
			{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}}, {Key: "data", Value: data}}).Err()
		if err != nil {
			t.Skipf("the destination has no failCommand fail point (mongod needs enableTestCommands): %v", err)
		}
	}
	insert := func() error {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
		return err
	}

	tests := []struct {
		name    string
		provoke func(t *testing.T) error
		want    []string // the predicates that must match; every other one must not
	}{
		{name: "duplicate key on insert", want: []string{"IsDuplicateKey"}, provoke: func(*testing.T) error {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
			return err
		}},
		{name: "duplicate key in a bulk write", want: []string{"IsDuplicateKey"}, provoke: func(*testing.T) error {
			_, err := coll.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: 1}})})
			return err
		}},
		{name: "duplicate key as one bulk write error", want: []string{"IsDuplicateKey"}, provoke: func(t *testing.T) error {
			// The sink classifies the per-write errors of an unordered bulk write.
			_, err := coll.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: 1}})},
				options.BulkWrite().SetOrdered(false))
			var bwe mongo.BulkWriteException
			if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 {
				t.Fatalf("got %v, want a bulk write exception with one write error", err)
			}
			return bwe.WriteErrors[0]
		}},
		{name: "namespace not found (renameCollection)", want: []string{"IsNamespaceNotFound"}, provoke: func(*testing.T) error {
			return cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: db.Name() + ".missing"},
				{Key: "to", Value: db.Name() + ".other"}}).Err()
		}},
		{name: "namespace exists", want: []string{"IsNamespaceExists"}, provoke: func(*testing.T) error {
			return db.CreateCollection(ctx, "c")
		}},
		{name: "index not found", want: []string{"IsIndexNotFound"}, provoke: func(*testing.T) error {
			return coll.Indexes().DropOne(ctx, "no_such_index")
		}},
		// The local server accepts an index whose name is taken (a gap of
		// mongo-java-server); mongod refuses it with one of these two codes.
		{name: "index of that name with other keys", want: []string{"IsIndexConflict"}, provoke: func(t *testing.T) error {
			failOnce(t, "createIndexes", 86)
			_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "b", Value: 1}}, Options: options.Index().SetName("a_idx")})
			return err
		}},
		{name: "index of those keys with other options", want: []string{"IsIndexConflict"}, provoke: func(t *testing.T) error {
			failOnce(t, "createIndexes", 85)
			_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetName("a_idx").SetUnique(true)})
			return err
		}},
		{name: "command not found", want: []string{"IsCommandNotFound"}, provoke: func(*testing.T) error {
			return db.RunCommand(ctx, bson.D{{Key: "logbridgeNoSuchCommand", Value: 1}}).Err()
		}},
		{name: "user writes blocked", want: []string{"IsUserWritesBlocked"}, provoke: func(t *testing.T) error {
			failOnce(t, "insert", 371)
			return insert()
		}},
		{name: "unauthorized", want: []string{"IsUnauthorized", "IsAuthError"}, provoke: func(t *testing.T) error {
			failOnce(t, "insert", 13)
			return insert()
		}},
		{name: "authentication failed", want: []string{"IsAuthError"}, provoke: func(t *testing.T) error {
			failOnce(t, "find", 18)
			return coll.FindOne(ctx, bson.D{}).Err()
		}},
		{name: "change stream history lost", want: []string{"IsHistoryLost"}, provoke: func(t *testing.T) error {
			failOnce(t, "aggregate", 286)
			cs, err := coll.Watch(ctx, mongo.Pipeline{})
			if err == nil {
				_ = cs.Close(ctx)
			}
			return err
		}},
		{name: "illegal operation", want: []string{"IsNotSupported"}, provoke: func(t *testing.T) error {
			failOnce(t, "find", 20)
			return coll.FindOne(ctx, bson.D{}).Err()
		}},
		{name: "not implemented", want: []string{"IsNotSupported"}, provoke: func(t *testing.T) error {
			failOnce(t, "find", 238)
			return coll.FindOne(ctx, bson.D{}).Err()
		}},
		{name: "host unreachable (a retryable read code, no label)", want: []string{"IsTransient"}, provoke: func(t *testing.T) error {
			// Through a command the driver does not retry by itself.
			failOnce(t, "ping", 6)
			return db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
		}},
		{name: "cursor not found", want: []string{"IsCursorNotFound"}, provoke: func(t *testing.T) error {
			failOnce(t, "ping", 43)
			return db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
		}},
		{name: "labelled transient", want: []string{"IsTransient"}, provoke: func(t *testing.T) error {
			// BadValue (2), a code the driver does not retry by itself, with
			// the label that makes it worth retrying.
			failOnce(t, "find", 2, "TransientTransactionError")
			return coll.FindOne(ctx, bson.D{}).Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.provoke(t)
			if err == nil {
				t.Fatal("got no error from the server")
			}
			want := map[string]bool{}
			for _, p := range tt.want {
				want[p] = true
			}
			for _, e := range []error{err, fmt.Errorf("applying: %w", err)} {
				for name, is := range predicates {
					if got := is(e); got != want[name] {
						t.Errorf("%s(%v) got %v, want %v", name, e, got, want[name])
					}
				}
			}
		})
	}
}
