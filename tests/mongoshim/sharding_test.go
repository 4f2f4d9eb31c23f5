package mongoshim_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/mongoshim"
)

// mongos starts a shim in mongos mode in front of the test backend and
// returns a client for it (no replicaSet=: the driver discovers a mongos)
// and the topology kinds the driver reported.
func mongos(t *testing.T) (*mongo.Client, func() []string) {
	t.Helper()
	if shim == nil {
		t.Skip(skipWhy)
	}
	s, err := mongoshim.New(mongoshim.Config{Listen: "127.0.0.1:0", Backend: backendURI(), Mongos: true, NoopInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var mu sync.Mutex
	var kinds []string
	mon := &event.ServerMonitor{TopologyDescriptionChanged: func(e *event.TopologyDescriptionChangedEvent) {
		mu.Lock()
		kinds = append(kinds, e.NewDescription.Kind)
		mu.Unlock()
	}}
	cl, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + s.Addr() + "/").SetServerMonitor(mon).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), kinds...)
	}
}

func TestMongosHello(t *testing.T) {
	cl, kinds := mongos(t)
	ctx := ctxT(t)
	for _, name := range []string{"hello", "isMaster"} {
		raw, err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: name, Value: 1}}).Raw()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := lookupStr(raw, "msg"); got != "isdbgrid" {
			t.Errorf("%s: msg = %q, want isdbgrid", name, got)
		}
		primary := "isWritablePrimary"
		if name == "isMaster" {
			primary = "ismaster"
		}
		if v, err := raw.LookupErr(primary); err != nil || !v.Boolean() {
			t.Errorf("%s: %s missing or false: %s", name, primary, raw)
		}
		for _, f := range []string{"setName", "hosts", "setVersion", "primary", "secondary", "electionId", "me", "lastWrite", "readOnly"} {
			if _, err := raw.LookupErr(f); err == nil {
				t.Errorf("%s: a mongos has no %s: %s", name, f, raw)
			}
		}
		for _, f := range []string{"maxWireVersion", "logicalSessionTimeoutMinutes", "topologyVersion", "operationTime", "$clusterTime", "connectionId", "localTime"} {
			if _, err := raw.LookupErr(f); err != nil {
				t.Errorf("%s: no %s: %s", name, f, raw)
			}
		}
	}
	if k := kinds(); len(k) == 0 || k[len(k)-1] != "Sharded" {
		t.Errorf("the driver's topology kinds %v, want Sharded last", k)
	}
	err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetGetStatus", Value: 1}}).Err()
	if err == nil || !strings.Contains(err.Error(), "not supported through mongos") {
		t.Errorf("replSetGetStatus: %v, want mongos's refusal", err)
	}
	var ss bson.Raw
	if ss, err = cl.Database("admin").RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Raw(); err != nil || lookupStr(ss, "process") != "mongos" {
		t.Errorf("serverStatus: %v process %q, want mongos", err, lookupStr(ss, "process"))
	}

	// sessions, a transaction and a cluster-wide change stream work
	dbn := dbName(t)
	t.Cleanup(func() { _ = cl.Database(dbn).Drop(context.Background()) })
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	sess, err := cl.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.EndSession(context.Background())
	c := cl.Database(dbn).Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
		if _, err := c.InsertOne(sc, bson.D{{Key: "_id", Value: 1}}); err != nil {
			return nil, err
		}
		return c.InsertOne(sc, bson.D{{Key: "_id", Value: 2}})
	}); err != nil {
		t.Fatalf("transaction through the mongos: %v", err)
	}
	evs := collect(t, ctx, cs, dbn, 3)
	if got := opTypes(evs); got != "insert,insert,insert" {
		t.Errorf("events %s, want three inserts", got)
	}
	if _, err := evs[2].LookupErr("txnNumber"); err != nil {
		t.Errorf("the transaction's event has no txnNumber: %s", evs[2])
	}
}

func TestMongosShardCollection(t *testing.T) {
	cl, _ := mongos(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	t.Cleanup(func() { _ = cl.Database(dbn).Drop(context.Background()) })
	admin := cl.Database("admin")
	run := func(db *mongo.Database, cmd bson.D) error { return db.RunCommand(ctx, cmd).Err() }
	code := func(err error) int32 {
		var se mongo.ServerError
		if errors.As(err, &se) {
			for _, c := range []int32{13, 23, 72} {
				if se.HasErrorCode(int(c)) {
					return c
				}
			}
		}
		return -1
	}
	if err := run(admin, bson.D{{Key: "enableSharding", Value: dbn}}); err != nil {
		t.Fatalf("enableSharding: %v", err)
	}
	key := bson.D{{Key: "region", Value: 1}, {Key: "_id", Value: 1}}
	if err := run(cl.Database(dbn), bson.D{{Key: "shardCollection", Value: dbn + ".sh"}, {Key: "key", Value: key}}); code(err) != 13 {
		t.Errorf("shardCollection outside admin: %v, want Unauthorized", err)
	}
	// a non-empty collection needs the shard key index first
	if _, err := cl.Database(dbn).Collection("full").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := run(admin, bson.D{{Key: "shardCollection", Value: dbn + ".full"}, {Key: "key", Value: bson.D{{Key: "region", Value: 1}}}}); code(err) != 72 {
		t.Errorf("shardCollection of a non-empty collection without index: %v, want InvalidOptions", err)
	}
	// a missing collection is created with its index
	if err := run(admin, bson.D{{Key: "shardCollection", Value: dbn + ".sh"}, {Key: "key", Value: key}}); err != nil {
		t.Fatalf("shardCollection: %v", err)
	}
	if err := run(admin, bson.D{{Key: "shardCollection", Value: dbn + ".sh"}, {Key: "key", Value: key}}); err != nil {
		t.Errorf("shardCollection again with the same key: %v, want ok", err)
	}
	if err := run(admin, bson.D{{Key: "shardCollection", Value: dbn + ".sh"}, {Key: "key", Value: bson.D{{Key: "other", Value: 1}}}}); code(err) != 23 {
		t.Errorf("shardCollection with another key: %v, want AlreadyInitialized", err)
	}
	specs, err := cl.Database(dbn).Collection("sh").Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "region_1__id_1") {
		t.Errorf("indexes %v lack the shard key index region_1__id_1", names)
	}

	// config.collections, as the source connector reads it
	var entry bson.Raw
	if err := cl.Database("config").Collection("collections").FindOne(ctx, bson.D{{Key: "_id", Value: dbn + ".sh"}}).Decode(&entry); err != nil {
		t.Fatalf("config.collections: %v", err)
	}
	if got, want := entry.Lookup("key").Document(), bson.Raw(mustMarshal(t, key)); string(got) != string(want) {
		t.Errorf("config.collections key %v, want %v", got, want)
	}
	for _, f := range []string{"lastmodEpoch", "lastmod", "timestamp", "uuid", "unique", "noBalance"} {
		if _, err := entry.LookupErr(f); err != nil {
			t.Errorf("config.collections entry lacks %s: %s", f, entry)
		}
	}
	if err := cl.Database("config").Collection("collections").FindOne(ctx, bson.D{{Key: "_id", Value: dbn + ".full"}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("config.collections lists an unsharded collection: %v", err)
	}
	var infos []bson.Raw
	cur, err := cl.Database(dbn).ListCollections(ctx, bson.D{{Key: "name", Value: "sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &infos); err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if lookupStr(in, "name") == "sh" && in.Lookup("info", "uuid").String() != entry.Lookup("uuid").String() {
			t.Errorf("config.collections uuid %s, listCollections %s", entry.Lookup("uuid"), in.Lookup("info", "uuid"))
		}
	}

	// documentKey: shard key fields, then _id (not repeated), for every CRUD
	// event; an unsharded collection keeps {_id}
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	sh := cl.Database(dbn).Collection("sh")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sh.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}, {Key: "region", Value: "eu"}}))
	must(sh.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 1}}}}))
	must(sh.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "region", Value: "eu"}, {Key: "n", Value: 2}}))
	must(sh.DeleteOne(ctx, bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: 1}}))
	must(cl.Database(dbn).Collection("full").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}))
	evs := collect(t, ctx, cs, dbn, 5)
	if got := opTypes(evs); got != "insert,update,replace,delete,update" {
		t.Fatalf("events %s", got)
	}
	want := mustMarshal(t, bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: 1}})
	for _, ev := range evs[:4] {
		if got := ev.Lookup("documentKey").Document(); string(got) != string(want) {
			t.Errorf("%s documentKey %v, want %v", lookupStr(ev, "operationType"), got, bson.Raw(want))
		}
	}
	if got, want := evs[4].Lookup("documentKey").Document(), mustMarshal(t, bson.D{{Key: "_id", Value: 1}}); string(got) != string(want) {
		t.Errorf("unsharded update documentKey %v, want %v", got, bson.Raw(want))
	}

	// a shardCollection event with showExpandedEvents
	xs, err := cl.Database(dbn).Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer xs.Close(context.Background())
	if err := run(admin, bson.D{{Key: "shardCollection", Value: dbn + ".hs"}, {Key: "key", Value: bson.D{{Key: "k", Value: "hashed"}}}}); err != nil {
		t.Fatal(err)
	}
	xevs := collect(t, ctx, xs, dbn, 3)
	if got := opTypes(xevs); got != "create,createIndexes,shardCollection" {
		t.Fatalf("expanded events %s, want create,createIndexes,shardCollection", got)
	}
	if got, want := xevs[2].Lookup("operationDescription", "shardKey").Document(), mustMarshal(t, bson.D{{Key: "k", Value: "hashed"}}); string(got) != string(want) {
		t.Errorf("shardCollection operationDescription.shardKey %v, want %v", got, want)
	}
}

func mustMarshal(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
