package mongoshim_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/mongoshim"
)

var (
	shim      *mongoshim.Server
	skipWhy   string
	clientURI string
)

func TestMain(m *testing.M) {
	backend := backendURI()
	u, _ := url.Parse(backend)
	if c, err := net.DialTimeout("tcp", u.Host, 2*time.Second); err != nil {
		skipWhy = fmt.Sprintf("no mongo-java-server backend at %s (set MONGOSHIM_BACKEND_URI; scripts/stack.sh up mongo starts one on 127.0.0.1:27118, or MONGO_SOURCE_BACKEND_PORT): %v", u.Host, err)
	} else {
		_ = c.Close()
		lvl := slog.LevelWarn
		if os.Getenv("MONGOSHIM_DEBUG") != "" {
			lvl = slog.LevelDebug
		}
		s, err := mongoshim.New(mongoshim.Config{Listen: "127.0.0.1:0", Backend: backend, SetName: "rs0", NoopInterval: time.Second,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = s.Start(ctx)
			cancel()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mongoshim:", err)
			os.Exit(1)
		}
		shim = s
		clientURI = "mongodb://" + s.Addr() + "/?replicaSet=rs0"
	}
	code := m.Run()
	if shim != nil {
		_ = shim.Close()
	}
	os.Exit(code)
}

// backendURI is MONGOSHIM_BACKEND_URI, else the local stack's source backend
// (MONGO_SOURCE_BACKEND_PORT, as `scripts/stack.sh env` exports it; default
// 27118).
func backendURI() string {
	if v := os.Getenv("MONGOSHIM_BACKEND_URI"); v != "" {
		return v
	}
	port := os.Getenv("MONGO_SOURCE_BACKEND_PORT")
	if port == "" {
		port = "27118"
	}
	return "mongodb://127.0.0.1:" + port + "/?directConnection=true"
}

func connect(t *testing.T) *mongo.Client {
	t.Helper()
	if shim == nil {
		t.Skip(skipWhy)
	}
	cl, err := mongo.Connect(options.Client().ApplyURI(clientURI).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dbName(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())) + fmt.Sprint(time.Now().UnixNano()%100000)
}

// collect reads events of db until n arrived or the timeout.
func collect(t *testing.T, ctx context.Context, cs *mongo.ChangeStream, db string, n int) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		if cs.TryNext(ctx) {
			ev := append(bson.Raw(nil), cs.Current...)
			if db == "" || lookupStr(ev, "ns", "db") == db {
				out = append(out, ev)
			}
			continue
		}
		if err := cs.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
	}
	if len(out) < n {
		t.Fatalf("got %d events, want %d: %v", len(out), n, summary(out))
	}
	return out
}

func lookupStr(d bson.Raw, path ...string) string {
	v, err := d.LookupErr(path...)
	if err != nil {
		return ""
	}
	s, _ := v.StringValueOK()
	return s
}

func summary(evs []bson.Raw) string {
	var s []string
	for _, ev := range evs {
		s = append(s, lookupStr(ev, "operationType")+"("+lookupStr(ev, "ns", "coll")+")")
	}
	return strings.Join(s, ",")
}

func opTypes(evs []bson.Raw) string {
	var s []string
	for _, ev := range evs {
		s = append(s, lookupStr(ev, "operationType"))
	}
	return strings.Join(s, ",")
}

func TestHelloReplicaSet(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	raw, err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if lookupStr(raw, "setName") != "rs0" || !raw.Lookup("isWritablePrimary").Boolean() {
		t.Fatalf("hello: %s", raw)
	}
	if hosts := raw.Lookup("hosts").String(); !strings.Contains(hosts, shim.Addr()) {
		t.Fatalf("hosts %s lacks %s", hosts, shim.Addr())
	}
	if _, _, ok := raw.Lookup("operationTime").TimestampOK(); !ok {
		t.Fatalf("no operationTime: %s", raw)
	}
	if _, _, ok := raw.Lookup("$clusterTime", "clusterTime").TimestampOK(); !ok {
		t.Fatalf("no $clusterTime: %s", raw)
	}
	if n, ok := raw.Lookup("logicalSessionTimeoutMinutes").AsInt64OK(); !ok || n != 30 {
		t.Fatalf("logicalSessionTimeoutMinutes: %s", raw)
	}
	bi, err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil || lookupStr(bi, "version") != mongoshim.Version {
		t.Fatalf("buildInfo: %v %s", err, bi)
	}
	// cluster time advances with writes; appendOplogNote advances it too
	c := cl.Database(dbName(t)).Collection("c")
	var r1, r2, r3 bson.Raw
	if err := c.Database().RunCommand(ctx, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}}).Decode(&r1); err != nil {
		t.Fatal(err)
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "appendOplogNote", Value: 1}, {Key: "data", Value: bson.D{{Key: "msg", Value: "t"}}}}).Decode(&r2); err != nil {
		t.Fatal(err)
	}
	if err := c.Database().RunCommand(ctx, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}}}}}).Decode(&r3); err != nil {
		t.Fatal(err)
	}
	t1, i1, _ := r1.Lookup("operationTime").TimestampOK()
	t2, i2, _ := r2.Lookup("operationTime").TimestampOK()
	t3, i3, _ := r3.Lookup("operationTime").TimestampOK()
	a, b, d := bson.Timestamp{T: t1, I: i1}, bson.Timestamp{T: t2, I: i2}, bson.Timestamp{T: t3, I: i3}
	if !(a.Before(b) && b.Before(d)) {
		t.Fatalf("operationTime does not advance: %v %v %v", a, b, d)
	}
	_ = c.Database().Drop(ctx)
}

func TestClusterWideEvents(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	db := cl.Database(dbn)
	c1 := db.Collection("c1")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c1.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}}))
	must(c1.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "a", Value: 5}, {Key: "c", Value: "x"}}},
		{Key: "$unset", Value: bson.D{{Key: "b", Value: ""}}},
	}))
	must(c1.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "z", Value: 1}}))
	must(c1.InsertMany(ctx, []any{bson.D{{Key: "k", Value: "auto-id"}}, bson.D{{Key: "_id", Value: 2}}}))
	must(c1.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "m", Value: true}}}}))
	must(c1.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}}))
	must(c1.UpdateOne(ctx, bson.D{{Key: "_id", Value: 9}}, bson.D{{Key: "$set", Value: bson.D{{Key: "u", Value: 1}}}}, options.UpdateOne().SetUpsert(true)))
	must(c1.DeleteMany(ctx, bson.D{{Key: "m", Value: true}}))
	must(db.Collection("c2").InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}}))
	must(nil, cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: dbn + ".c2"}, {Key: "to", Value: dbn + ".c3"}}).Err())
	must(nil, c1.Drop(ctx))
	must(nil, db.Drop(ctx))

	evs := collect(t, ctx, cs, dbn, 15)
	want := "insert,update,replace,insert,insert,update,update,update,delete,insert,delete,delete,insert,rename,drop"
	if got := opTypes(evs); got != want {
		t.Fatalf("events %s\nwant   %s", got, want)
	}
	rest := collect(t, ctx, cs, dbn, 2) // drop(c3), dropDatabase
	ev := evs[0]
	for _, f := range []string{"_id", "operationType", "clusterTime", "wallTime", "ns", "documentKey", "fullDocument"} {
		if _, err := ev.LookupErr(f); err != nil {
			t.Errorf("insert event lacks %s: %s", f, ev)
		}
	}
	if _, err := ev.LookupErr("_id", "_data"); err != nil {
		t.Errorf("token has no _data: %s", ev)
	}
	up := evs[1]
	if uf := up.Lookup("updateDescription", "updatedFields").String(); !strings.Contains(uf, `"a"`) || !strings.Contains(uf, `"c"`) {
		t.Errorf("updatedFields %s", uf)
	}
	if rf := up.Lookup("updateDescription", "removedFields").String(); rf != `["b"]` {
		t.Errorf("removedFields %s", rf)
	}
	if _, err := up.LookupErr("fullDocument"); err == nil {
		t.Errorf("update carries fullDocument without updateLookup: %s", up)
	}
	if fd := evs[2].Lookup("fullDocument").String(); !strings.Contains(fd, `"z"`) || strings.Contains(fd, `"a"`) {
		t.Errorf("replace fullDocument %s", fd)
	}
	if k := evs[3].Lookup("documentKey", "_id").Type; k != bson.TypeObjectID {
		t.Errorf("generated _id is %s", k)
	}
	if evs[3].Lookup("fullDocument").Document().Index(0).Key() != "_id" {
		t.Errorf("_id not first in %s", evs[3])
	}
	if evs[9].Lookup("documentKey", "_id").String() != `{"$numberInt":"9"}` {
		t.Errorf("upsert insert event %s", evs[9])
	}
	if _, err := evs[8].LookupErr("fullDocument"); err == nil {
		t.Errorf("delete carries fullDocument: %s", evs[8])
	}
	rn := evs[13]
	if lookupStr(rn, "ns", "coll") != "c2" || lookupStr(rn, "to", "coll") != "c3" || lookupStr(rn, "to", "db") != dbn {
		t.Errorf("rename %s", rn)
	}
	if _, err := rn.LookupErr("operationDescription"); err == nil {
		t.Errorf("rename shows operationDescription without showExpandedEvents: %s", rn)
	}
	// dropDatabase: a drop per remaining collection (c3), then dropDatabase without ns.coll
	if got := opTypes(rest[:2]); got != "drop,dropDatabase" || lookupStr(rest[0], "ns", "coll") != "c3" {
		t.Fatalf("dropDatabase events: %s", summary(rest))
	}
	if _, err := rest[1].LookupErr("ns", "coll"); err == nil {
		t.Errorf("dropDatabase has ns.coll: %s", rest[1])
	}
	// tokens strictly increase
	all := append(evs, rest[:2]...)
	for i := 1; i < len(all); i++ {
		if lookupStr(all[i], "_id", "_data") <= lookupStr(all[i-1], "_id", "_data") {
			t.Fatalf("tokens not increasing at %d: %s / %s", i, all[i-1].Lookup("_id"), all[i].Lookup("_id"))
		}
	}
}

func TestExpandedEvents(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	db := cl.Database(dbn)
	plain, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(context.Background())
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	if err := db.CreateCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("c").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(60)}); err != nil {
		t.Fatal(err)
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "index", Value: bson.D{{Key: "name", Value: "a_1"}, {Key: "expireAfterSeconds", Value: 120}}}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := db.Collection("c").Indexes().DropOne(ctx, "a_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("implicit").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "create", Value: "v"}, {Key: "viewOn", Value: "c"}, {Key: "pipeline", Value: bson.A{}}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := db.Collection("c").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, ctx, cs, dbn, 8)
	if got, want := summary(evs), "create(c),createIndexes(c),modify(c),dropIndexes(c),create(implicit),insert(implicit),create(v),drop(c)"; got != want {
		t.Fatalf("expanded events %s\nwant %s", got, want)
	}
	if evs[0].Lookup("collectionUUID").Type != bson.TypeBinary {
		t.Errorf("create without collectionUUID: %s", evs[0])
	}
	if evs[1].Lookup("operationDescription", "indexes").Type != bson.TypeArray {
		t.Errorf("createIndexes: %s", evs[1])
	}
	if v, _ := evs[2].Lookup("operationDescription", "index", "expireAfterSeconds").AsInt64OK(); v != 120 {
		t.Errorf("modify: %s", evs[2])
	}
	if lookupStr(evs[6], "operationDescription", "viewOn") != "c" {
		t.Errorf("view create: %s", evs[6])
	}
	// the same DDL on a stream without showExpandedEvents: only insert and drop
	pevs := collect(t, ctx, plain, dbn, 2)
	if got := summary(pevs); got != "insert(implicit),drop(c)" {
		t.Fatalf("non-expanded stream: %s", got)
	}
	// the TTL change reached the backend
	specs, err := db.Collection("c").Indexes().ListSpecifications(ctx)
	_ = specs
	_ = err
	_ = db.Drop(ctx)
}

func TestTransactionEvents(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	db := cl.Database(dbn)
	a, b := db.Collection("a"), db.Collection("b")
	if _, err := a.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
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
	// aborted: nothing
	_, _ = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		if _, err := a.InsertOne(sctx, bson.D{{Key: "_id", Value: "aborted"}}); err != nil {
			return nil, err
		}
		return nil, errors.New("abort")
	})
	var outside int64 = -1
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		// a read first: it starts the transaction
		if _, err := b.CountDocuments(sctx, bson.D{}); err != nil {
			return nil, err
		}
		if _, err := a.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			return nil, err
		}
		if _, err := b.UpdateOne(sctx, bson.D{{Key: "_id", Value: "seed"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}); err != nil {
			return nil, err
		}
		if _, err := a.DeleteOne(sctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
			return nil, err
		}
		outside, _ = a.CountDocuments(ctx, bson.D{{Key: "_id", Value: 1}})
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if outside != 0 {
		t.Errorf("uncommitted insert visible outside the transaction (%d)", outside)
	}
	if _, err := a.InsertOne(ctx, bson.D{{Key: "_id", Value: "after"}}); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, ctx, cs, dbn, 4)
	if got := summary(evs); got != "insert(a),update(b),delete(a),insert(a)" {
		t.Fatalf("events %s", got)
	}
	ct := evs[0].Lookup("clusterTime").String()
	for i, ev := range evs[:3] {
		if ev.Lookup("lsid", "id").Type != bson.TypeBinary || ev.Lookup("txnNumber").Type != bson.TypeInt64 {
			t.Errorf("txn event %d without lsid/txnNumber: %s", i, ev)
		}
		if ev.Lookup("clusterTime").String() != ct {
			t.Errorf("txn events do not share a clusterTime: %s", ev)
		}
	}
	if _, err := evs[3].LookupErr("lsid"); err == nil {
		t.Errorf("non-txn event carries lsid: %s", evs[3])
	}
	if n, _ := a.CountDocuments(ctx, bson.D{{Key: "_id", Value: "aborted"}}); n != 0 {
		t.Errorf("aborted insert visible")
	}
	_ = db.Drop(ctx)
}

func TestResumeAndStartAt(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	c := cl.Database(dbn).Collection("c")
	var reply bson.Raw
	if err := c.Database().RunCommand(ctx, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}}).Decode(&reply); err != nil {
		t.Fatal(err)
	}
	tt, ii, _ := reply.Lookup("operationTime").TimestampOK()
	t1 := bson.Timestamp{T: tt, I: ii}
	for i := 2; i <= 3; i++ {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(evs []bson.Raw) string {
		var s []string
		for _, ev := range evs {
			s = append(s, ev.Lookup("documentKey", "_id").String())
		}
		return strings.Join(s, ",")
	}
	o := func() *options.ChangeStreamOptionsBuilder {
		return options.ChangeStream().SetMaxAwaitTime(200 * time.Millisecond)
	}
	// startAtOperationTime is inclusive
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, o().SetStartAtOperationTime(&t1))
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, ctx, cs, dbn, 3)
	cs.Close(ctx)
	if got := ids(evs); got != `{"$numberInt":"1"},{"$numberInt":"2"},{"$numberInt":"3"}` {
		t.Fatalf("startAtOperationTime: %s", got)
	}
	if evs[0].Lookup("clusterTime").String() != toRV(t1).String() {
		t.Errorf("event at T has clusterTime %s want %v", evs[0].Lookup("clusterTime"), t1)
	}
	tok := evs[0].Lookup("_id").Document()
	for _, opt := range []*options.ChangeStreamOptionsBuilder{o().SetResumeAfter(tok), o().SetStartAfter(tok)} {
		cs, err := cl.Watch(ctx, mongo.Pipeline{}, opt)
		if err != nil {
			t.Fatal(err)
		}
		got := ids(collect(t, ctx, cs, dbn, 2))
		cs.Close(ctx)
		if got != `{"$numberInt":"2"},{"$numberInt":"3"}` {
			t.Fatalf("resume: %s", got)
		}
	}
	// a point before the shim's oplog: ChangeStreamHistoryLost
	_, err = cl.Watch(ctx, mongo.Pipeline{}, o().SetStartAtOperationTime(&bson.Timestamp{T: uint32(time.Now().Add(-24 * time.Hour).Unix())}))
	var se mongo.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(286) {
		t.Fatalf("old start: want ChangeStreamHistoryLost (286), got %v", err)
	}
	// collection- and database-scoped streams, with invalidate on drop
	cs, err = c.Watch(ctx, mongo.Pipeline{}, o().SetStartAtOperationTime(&t1))
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(collect(t, ctx, cs, "", 3)); !strings.HasPrefix(got, `{"$numberInt":"1"}`) {
		t.Fatalf("collection stream: %s", got)
	}
	if err := c.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	evs = collect(t, ctx, cs, "", 2)
	if got := opTypes(evs); got != "drop,invalidate" {
		t.Fatalf("collection stream after drop: %s", got)
	}
	cs.Close(ctx)
	_ = c.Database().Drop(ctx)
}

func toRV(ts bson.Timestamp) bson.RawValue {
	t, b, _ := bson.MarshalValue(ts)
	return bson.RawValue{Type: t, Value: b}
}

func TestPostBatchResumeTokenIdle(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	cs, err := cl.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: dbn}}}}},
		options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	t0 := cs.ResumeToken()
	if t0 == nil {
		t.Fatal("no postBatchResumeToken on the initial aggregate")
	}
	// idle: the periodic no-op (1s here, 10s by default) moves the token
	idleDeadline := time.Now().Add(5 * time.Second)
	for lookupStr(cs.ResumeToken(), "_data") <= lookupStr(t0, "_data") && time.Now().Before(idleDeadline) {
		if cs.TryNext(ctx) {
			t.Fatalf("unexpected event: %s", cs.Current)
		}
	}
	if lookupStr(cs.ResumeToken(), "_data") <= lookupStr(t0, "_data") {
		t.Fatalf("postBatchResumeToken did not advance on an idle stream: %s", t0)
	}
	t0 = cs.ResumeToken()
	if _, err := cl.Database(dbn+"_other").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var t1 bson.Raw
	for time.Now().Before(deadline) {
		if cs.TryNext(ctx) {
			t.Fatalf("filtered event delivered: %s", cs.Current)
		}
		t1 = cs.ResumeToken()
		if lookupStr(t1, "_data") > lookupStr(t0, "_data") {
			break
		}
	}
	if lookupStr(t1, "_data") <= lookupStr(t0, "_data") {
		t.Fatalf("postBatchResumeToken did not advance past a filtered write: %s -> %s", t0, t1)
	}
	// resuming from the idle token delivers the next matching event only
	cs2, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(t1).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs2.Close(context.Background())
	if _, err := cl.Database(dbn).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, ctx, cs2, "", 1); lookupStr(evs[0], "ns", "db") != dbn {
		t.Fatalf("resumed from PBRT: %s", summary(evs))
	}
	_ = cl.Database(dbn).Drop(ctx)
	_ = cl.Database(dbn + "_other").Drop(ctx)
}

func TestUpdateLookupAndImages(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	db := cl.Database(dbn)
	if err := db.CreateCollection(ctx, "img", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.D{{Key: "enabled", Value: true}})); err != nil {
		t.Fatal(err)
	}
	img, plain := db.Collection("img"), db.Collection("plain")
	for _, c := range []*mongo.Collection{img, plain} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	ul, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetFullDocument(options.UpdateLookup).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close(context.Background())
	wa, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetFullDocument(options.WhenAvailable).
		SetFullDocumentBeforeChange(options.WhenAvailable).SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Close(context.Background())
	for _, c := range []*mongo.Collection{img, plain} {
		if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 2}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, ctx, ul, dbn, 4)
	// updateLookup reads the current document: it was deleted since, so null
	if evs[0].Lookup("fullDocument").Type != bson.TypeNull {
		t.Errorf("updateLookup of a since-deleted document: %s", evs[0])
	}
	evs = collect(t, ctx, wa, dbn, 4)
	if a, _ := evs[0].Lookup("fullDocument", "a").AsInt64OK(); a != 2 {
		t.Errorf("post-image: %s", evs[0])
	}
	if a, _ := evs[0].Lookup("fullDocumentBeforeChange", "a").AsInt64OK(); a != 1 {
		t.Errorf("pre-image: %s", evs[0])
	}
	if a, _ := evs[1].Lookup("fullDocumentBeforeChange", "a").AsInt64OK(); a != 2 {
		t.Errorf("delete pre-image: %s", evs[1])
	}
	if evs[2].Lookup("fullDocument").Type != bson.TypeNull || evs[2].Lookup("fullDocumentBeforeChange").Type != bson.TypeNull {
		t.Errorf("collection without images: %s", evs[2])
	}
	// updateLookup while the document exists
	if _, err := plain.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "a", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	evs = collect(t, ctx, ul, dbn, 2)
	if a, _ := evs[1].Lookup("fullDocument", "a").AsInt64OK(); a != 2 {
		t.Errorf("updateLookup: %s", evs[1])
	}
	_ = db.Drop(ctx)
}

func TestWriteBlocking(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	c := cl.Database(dbn).Collection("c")
	admin := cl.Database("admin")
	if err := admin.RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: true}}).Err(); err != nil {
		t.Fatal(err)
	}
	_, werr := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	derr := cl.Database(dbn).RunCommand(ctx, bson.D{{Key: "create", Value: "d"}}).Err()
	// A client standing in for a user with bypassWriteBlockingMode writes.
	priv, err := mongo.Connect(options.Client().ApplyURI(clientURI).SetAppName("logbridge-sink"))
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Disconnect(context.Background())
	_, perr := priv.Database(dbn).Collection("p").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	if err := admin.RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: false}}).Err(); err != nil {
		t.Fatal(err)
	}
	var se mongo.ServerError
	if !errors.As(werr, &se) || !se.HasErrorCode(371) {
		t.Fatalf("insert while blocked: want UserWritesBlocked (371), got %v", werr)
	}
	if !errors.As(derr, &se) || !se.HasErrorCode(371) {
		t.Fatalf("create while blocked: want 371, got %v", derr)
	}
	if perr != nil {
		t.Fatalf("insert by a bypassing client while blocked: got %v, want success", perr)
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatalf("after unblock: %v", err)
	}
	_ = c.Database().Drop(ctx)
}

func TestFindMinMax(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	c := cl.Database(dbn).Collection("c")
	docs := []any{}
	for i := 0; i < 250; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}})
	}
	docs = append(docs, bson.D{{Key: "_id", Value: "s1"}}, bson.D{{Key: "_id", Value: "s2"}}, bson.D{{Key: "_id", Value: bson.NewObjectID()}}, bson.D{{Key: "_id", Value: 10.5}})
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	find := func(o *options.FindOptionsBuilder) []bson.Raw {
		t.Helper()
		cur, err := c.Find(ctx, bson.D{}, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []bson.Raw
		if err := cur.All(ctx, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// inOrder reports the first pair of documents out of _id order (dir 1:
	// ascending, -1: descending) in MongoDB's BSON order.
	inOrder := func(docs []bson.Raw, dir int) error {
		for i := 1; i < len(docs); i++ {
			a, b := docs[i-1].Lookup("_id"), docs[i].Lookup("_id")
			if dir*mongoshim.Compare(a, b) >= 0 {
				return fmt.Errorf("document %d (_id %v) before document %d (_id %v)", i-1, a, i, b)
			}
		}
		return nil
	}
	count := func(min, max bson.D) int {
		t.Helper()
		o := options.Find().SetHint(bson.D{{Key: "_id", Value: 1}}).SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(7)
		if min != nil {
			o.SetMin(min)
		}
		if max != nil {
			o.SetMax(max)
		}
		out := find(o)
		if err := inOrder(out, 1); err != nil {
			t.Errorf("[%v, %v) out of _id order: %v", min, max, err)
		}
		return len(out)
	}
	id := func(v any) bson.D { return bson.D{{Key: "_id", Value: v}} }
	if n := count(id(10), id(20)); n != 11 { // 10..19 and 10.5
		t.Errorf("[10,20): %d", n)
	}
	if n := count(id(200), id("s2")); n != 51 { // 200..249, "s1"
		t.Errorf("[200,\"s2\"): %d", n)
	}
	if n := count(nil, id(5)); n != 5 {
		t.Errorf("[,5): %d", n)
	}
	if n := count(id("s1"), nil); n != 3 { // s1, s2, the ObjectId
		t.Errorf("[\"s1\",): %d", n)
	}
	if n := count(id(bson.MinKey{}), id(bson.MaxKey{})); n != 254 {
		t.Errorf("[MinKey,MaxKey): %d", n)
	}
	// A plain find sorted by _id descending (the backend's own sort).
	desc := find(options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}))
	if err := inOrder(desc, -1); err != nil || len(desc) != 254 {
		t.Errorf("sorted by _id descending: %d documents, %v", len(desc), err)
	}
	_ = c.Database().Drop(ctx)
}

// TestBulkByID: the sink's batches (statements by _id) produce one event per
// changed document, in statement order, and none for unchanged ones.
func TestBulkByID(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	dbn := dbName(t)
	c := cl.Database(dbn).Collection("c")
	if _, err := c.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: 1}}, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "_id", Value: 4}, {Key: "v", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	res, err := c.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: 1}}).SetReplacement(bson.D{{Key: "_id", Value: 1}, {Key: "r", Value: 1}}).SetUpsert(true),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 2}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 4}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}), // no-op
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: 3}}).SetReplacement(bson.D{{Key: "_id", Value: 3}, {Key: "x", Value: 1}}),
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: 2}}),
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: 99}}),
	}, options.BulkWrite().SetOrdered(true))
	if err != nil {
		t.Fatal(err)
	}
	if res.UpsertedCount != 1 || res.DeletedCount != 1 {
		t.Errorf("result %+v", res)
	}
	evs := collect(t, ctx, cs, dbn, 4)
	var got []string
	for _, ev := range evs {
		got = append(got, lookupStr(ev, "operationType")+":"+ev.Lookup("documentKey", "_id").String())
	}
	if s := strings.Join(got, ","); s != `insert:{"$numberInt":"1"},update:{"$numberInt":"2"},replace:{"$numberInt":"3"},delete:{"$numberInt":"2"}` {
		t.Fatalf("events %s", s)
	}
	_ = c.Database().Drop(ctx)
}

// TestReplaceStoresReplacementOrder: MongoDB stores a replacement's fields in
// the order given (the backend alone keeps the old order), by one statement
// and by the sink's by-_id bulk path, and the replace event carries it.
func TestReplaceStoresReplacementOrder(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	c := cl.Database(dbName(t)).Collection("c")
	if _, err := c.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}},
		bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}, {Key: "b", Value: 2}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReplaceOne(ctx, bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 1}}, bson.D{{Key: "b", Value: 3}, {Key: "a", Value: 4}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: 2}}).SetReplacement(bson.D{{Key: "_id", Value: 2}, {Key: "b", Value: 3}, {Key: "a", Value: 4}}),
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{1, 2} {
		var got bson.Raw
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"_id": {"$numberInt":"%d"},"b": {"$numberInt":"3"},"a": {"$numberInt":"4"}}`, id)
		if got.String() != want {
			t.Errorf("_id %d: got %s, want %s", id, got, want)
		}
	}
}

// TestListCollectionsFilterAndOptionsOrder: listCollections honours its
// filter (the backend ignores it) and lists options in MongoDB's order
// (CollectionOptions::appendBSON), whatever order create was given them in.
func TestListCollectionsFilterAndOptionsOrder(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	db := cl.Database(dbName(t))
	defer func() { _ = db.Drop(ctx) }()
	for _, name := range []string{"a", "b"} {
		cmd := bson.D{{Key: "create", Value: name},
			{Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}}},
			{Key: "changeStreamPreAndPostImages", Value: bson.D{{Key: "enabled", Value: true}}},
			{Key: "validationAction", Value: "warn"},
			{Key: "validator", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$exists", Value: true}}}}}}
		if err := db.RunCommand(ctx, cmd).Err(); err != nil {
			t.Fatal(err)
		}
	}
	specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1 || specs[0].Name != "b" {
		t.Fatalf("listCollections {name: \"b\"}: %+v, want only b", specs)
	}
	var keys []string
	elems, _ := specs[0].Options.Elements()
	for _, e := range elems {
		keys = append(keys, e.Key())
	}
	want := "changeStreamPreAndPostImages validator validationLevel validationAction collation"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("options of b in the order %q, want %q", got, want)
	}
	for action, n := range map[string]int{"warn": 2, "error": 0} {
		specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "options.validationAction", Value: action}})
		if err != nil || len(specs) != n {
			t.Errorf("listCollections {options.validationAction: %q}: %d collections (%v), want %d", action, len(specs), err, n)
		}
	}
}

// TestRequiredImagesAfterMatch: mongod moves a $match that does not read
// the images ahead of its image lookups, so a stream with fullDocument and
// fullDocumentBeforeChange "required" whose $match keeps to one database
// does not fail on another database's update without images; an update it
// keeps still fails as mongod's does.
func TestRequiredImagesAfterMatch(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	mine, other := dbName(t), dbName(t)+"_other"
	defer func() {
		_ = cl.Database(mine).Drop(context.Background())
		_ = cl.Database(other).Drop(context.Background())
	}()
	if err := cl.Database(mine).CreateCollection(ctx, "img", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.D{{Key: "enabled", Value: true}})); err != nil {
		t.Fatal(err)
	}
	img, plainMine, plainOther := cl.Database(mine).Collection("img"), cl.Database(mine).Collection("plain"), cl.Database(other).Collection("plain")
	for _, c := range []*mongo.Collection{img, plainMine, plainOther} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	watch := func() *mongo.ChangeStream {
		cs, err := cl.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: mine}}}}},
			options.ChangeStream().SetFullDocument(options.Required).SetFullDocumentBeforeChange(options.Required).SetMaxAwaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs := watch()
	defer cs.Close(context.Background())
	for _, c := range []*mongo.Collection{plainOther, img} {
		if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 2}}}}); err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, ctx, cs, mine, 1)
	if a, _ := evs[0].Lookup("fullDocument", "a").AsInt64OK(); a != 2 || evs[0].Lookup("ns", "coll").StringValue() != "img" {
		t.Fatalf("the update of %s.img after another database's update without images: %s", mine, evs[0])
	}
	// A kept event without images still fails the stream.
	if _, err := plainMine.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for cs.Next(wait) {
	}
	if err := cs.Err(); err == nil || !strings.Contains(err.Error(), "post-image") {
		t.Fatalf("an update of %s.plain (no images) under fullDocument required: err %v, want the post-image error", mine, err)
	}
}
