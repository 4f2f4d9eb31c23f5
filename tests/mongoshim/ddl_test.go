package mongoshim_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/tests/mongoshim"
)

func indexNamesOf(t *testing.T, ctx context.Context, c *mongo.Collection) []string {
	t.Helper()
	specs, err := c.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range specs {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

func seedIndexed(t *testing.T, ctx context.Context, c *mongo.Collection, keys ...string) {
	t.Helper()
	if _, err := c.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "s", Value: "a"}}, bson.D{{Key: "_id", Value: 2}, {Key: "s", Value: "b"}}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: k, Value: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDropIndexByNameKeepsOtherCollections: mongo-java-server alone drops
// the catalog entries of same-named indexes of every collection of the
// database when one is dropped by name, after which dropping one of those
// collections fails ("Expected [EmptyIndex[name=s_1]] to be empty").
func TestDropIndexByNameKeepsOtherCollections(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	db := cl.Database(dbName(t))
	defer func() { _ = db.Drop(ctx) }()
	c1, c2, c3 := db.Collection("c1"), db.Collection("c2"), db.Collection("c3")
	seedIndexed(t, ctx, c1, "s", "n")
	seedIndexed(t, ctx, c2, "s", "n")
	seedIndexed(t, ctx, c3, "s", "n")
	if err := c1.Indexes().DropOne(ctx, "s_1"); err != nil {
		t.Fatal(err)
	}
	if got := indexNamesOf(t, ctx, c1); !slices.Equal(got, []string{"_id_", "n_1"}) {
		t.Fatalf("c1 indexes after dropping s_1: %v", got)
	}
	if got := indexNamesOf(t, ctx, c2); !slices.Equal(got, []string{"_id_", "n_1", "s_1"}) {
		t.Fatalf("c2 indexes after dropping c1's s_1: %v", got)
	}
	if err := c2.Drop(ctx); err != nil {
		t.Fatalf("dropping c2 after dropping c1's s_1: %v", err)
	}
	// "*" and a list of names, then the drops
	if err := c1.Indexes().DropAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: "c3"}, {Key: "index", Value: bson.A{"s_1", "n_1"}}}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*mongo.Collection{c1, c3} {
		if got := indexNamesOf(t, ctx, c); !slices.Equal(got, []string{"_id_"}) {
			t.Fatalf("%s indexes after dropping all: %v", c.Name(), got)
		}
		if err := c.Drop(ctx); err != nil {
			t.Fatalf("dropping %s: %v", c.Name(), err)
		}
	}
	// a missing name still gets the backend's error
	seedIndexed(t, ctx, c1, "s")
	if err := c1.Indexes().DropOne(ctx, "nope_1"); err == nil {
		t.Fatal("dropping a missing index succeeded")
	}
}

// checkRenamed checks that to holds from's documents and indexes, that from
// is gone, and that to and a new collection under from's name can be dropped.
func checkRenamed(t *testing.T, ctx context.Context, from, to *mongo.Collection) {
	t.Helper()
	n, err := to.CountDocuments(ctx, bson.D{})
	if err != nil || n != 2 {
		t.Fatalf("%s.%s after the rename: %d documents, %v", to.Database().Name(), to.Name(), n, err)
	}
	if got := indexNamesOf(t, ctx, to); !slices.Equal(got, []string{"_id_", "s_1"}) {
		t.Fatalf("indexes after the rename: %v", got)
	}
	if n, err := from.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("the old name still has %d documents (%v)", n, err)
	}
	if _, err := from.InsertOne(ctx, bson.D{{Key: "_id", Value: 9}}); err != nil {
		t.Fatal(err)
	}
	if n, err := from.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("a new collection under the old name has %d documents (%v), want 1", n, err)
	}
	if n, err := to.CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
		t.Fatalf("the renamed collection has %d documents after writing the old name (%v), want 2", n, err)
	}
	for _, c := range []*mongo.Collection{to, from} {
		if err := c.Drop(ctx); err != nil {
			t.Fatalf("dropping %s.%s: %v", c.Database().Name(), c.Name(), err)
		}
	}
}

// TestRenameAcrossDatabases: mongo-java-server alone throws a
// NullPointerException renaming into a new database and leaves the index
// catalog behind; the shim copies, as MongoDB does across databases.
func TestRenameAcrossDatabases(t *testing.T) {
	cl := connect(t)
	ctx := ctxT(t)
	a, b := cl.Database(dbName(t)+"a"), cl.Database(dbName(t)+"b")
	defer func() { _ = a.Drop(ctx); _ = b.Drop(ctx) }()
	seedIndexed(t, ctx, a.Collection("c"), "s")
	cs, err := cl.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(ctx)
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: a.Name() + ".c"}, {Key: "to", Value: b.Name() + ".r"}}).Err(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, ctx, cs, a.Name(), 1)
	if lookupStr(evs[0], "operationType") != "rename" || lookupStr(evs[0], "to", "db") != b.Name() || lookupStr(evs[0], "to", "coll") != "r" {
		t.Fatalf("rename event: %s", evs[0])
	}
	checkRenamed(t, ctx, a.Collection("c"), b.Collection("r"))
	// renaming a missing collection: NamespaceNotFound (26), which the
	// backend's "source namespace does not exist" lacks
	for _, to := range []string{a.Name() + ".y", b.Name() + ".y"} {
		err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: a.Name() + ".missing"}, {Key: "to", Value: to}}).Err()
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 26 {
			t.Errorf("renaming a missing collection to %s: %v, want code 26", to, err)
		}
	}
}

// h2BackendURI is MONGOSHIM_H2_BACKEND_URI, else the local stack's
// destination backend (MONGO_DEST_BACKEND_PORT, default 27119: h2 unless
// MONGO_DEST_MJS_BACKEND=memory), else "" when nothing listens there.
func h2BackendURI() string {
	if v := os.Getenv("MONGOSHIM_H2_BACKEND_URI"); v != "" {
		return v
	}
	port := os.Getenv("MONGO_DEST_BACKEND_PORT")
	if port == "" {
		port = "27119"
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 2*time.Second)
	if err != nil {
		return ""
	}
	_ = c.Close()
	return "mongodb://127.0.0.1:" + port + "/?directConnection=true"
}

// startShim starts a second shim with cfg's extras, on cfg.Backend or the
// test backend.
func startShim(t *testing.T, cfg mongoshim.Config) (*mongoshim.Server, *mongo.Client) {
	t.Helper()
	if shim == nil {
		t.Skip(skipWhy)
	}
	cfg.Listen, cfg.SetName, cfg.NoopInterval = "127.0.0.1:0", "rs9", time.Second
	if cfg.Backend == "" {
		cfg.Backend = backendURI()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := mongoshim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + s.Addr() + "/?directConnection=true").SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()); _ = s.Close() })
	return s, cl
}

// TestRenameByCopy: with RenameByCopy (the h2 back end, whose own rename
// leaves the data under the old name: a new collection under the old name
// shows the renamed documents) a rename within a database copies. It runs
// against the stack's h2 destination backend when one listens, else (where
// it checks only the copy itself) against the test backend.
func TestRenameByCopy(t *testing.T) {
	be := h2BackendURI()
	if be == "" {
		t.Logf("no h2 backend (MONGOSHIM_H2_BACKEND_URI); checking the copy on %s", backendURI())
	}
	_, cl := startShim(t, mongoshim.Config{RenameByCopy: true, Backend: be})
	ctx := ctxT(t)
	db := cl.Database(dbName(t))
	defer func() { _ = db.Drop(ctx) }()
	seedIndexed(t, ctx, db.Collection("c"), "s")
	if _, err := db.Collection("t").InsertOne(ctx, bson.D{{Key: "_id", Value: "old target"}}); err != nil {
		t.Fatal(err)
	}
	err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: db.Name() + ".c"}, {Key: "to", Value: db.Name() + ".t"}}).Err()
	if err == nil {
		t.Fatal("rename onto an existing collection without dropTarget succeeded")
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: db.Name() + ".c"}, {Key: "to", Value: db.Name() + ".t"}, {Key: "dropTarget", Value: true}}).Err(); err != nil {
		t.Fatal(err)
	}
	checkRenamed(t, ctx, db.Collection("c"), db.Collection("t"))
}

// TestStateFileAcrossRestart: a shim restarted on the same state file keeps
// its cluster time monotonic, the collections' UUIDs and the options only it
// lists.
func TestStateFileAcrossRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "shim.state")
	s1, cl1 := startShim(t, mongoshim.Config{StateFile: state})
	ctx := ctxT(t)
	name := dbName(t)
	validator := bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 0}}}}
	if err := cl1.Database(name).CreateCollection(ctx, "v", options.CreateCollection().SetValidator(validator)); err != nil {
		t.Fatal(err)
	}
	info := func(cl *mongo.Client) bson.Raw {
		specs, err := cl.Database(name).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "v"}})
		if err != nil || len(specs) != 1 {
			t.Fatalf("listCollections: %v %v", specs, err)
		}
		return bson.Raw(mustMarshalT(t, bson.D{{Key: "uuid", Value: specs[0].UUID}, {Key: "options", Value: specs[0].Options}}))
	}
	before := info(cl1)
	var last bson.Raw
	for i := 0; i < 50; i++ { // many ticks within one second
		if err := cl1.Database(name).RunCommand(ctx, bson.D{{Key: "insert", Value: "v"}, {Key: "documents", Value: bson.A{bson.D{{Key: "n", Value: i}}}}}).Decode(&last); err != nil {
			t.Fatal(err)
		}
	}
	lt, li, _ := last.Lookup("operationTime").TimestampOK()
	_ = cl1.Disconnect(ctx) // now: against a closed shim it would wait for server selection
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	_, cl2 := startShim(t, mongoshim.Config{StateFile: state})
	var first bson.Raw
	if err := cl2.Database(name).RunCommand(ctx, bson.D{{Key: "insert", Value: "v"}, {Key: "documents", Value: bson.A{bson.D{{Key: "n", Value: 99}}}}}).Decode(&first); err != nil {
		t.Fatal(err)
	}
	ft, fi, _ := first.Lookup("operationTime").TimestampOK()
	if !(bson.Timestamp{T: lt, I: li}).Before(bson.Timestamp{T: ft, I: fi}) {
		t.Fatalf("cluster time went backwards across the restart: %v:%v then %v:%v", lt, li, ft, fi)
	}
	if ft > uint32(time.Now().Unix())+6 {
		t.Fatalf("cluster time %d jumped more than the lease ahead of now %d", ft, time.Now().Unix())
	}
	if after := info(cl2); after.String() != before.String() {
		t.Fatalf("collection info changed across the restart:\n before %s\n after  %s", before, after)
	}
	_ = cl2.Database(name).Drop(ctx)
}

func mustMarshalT(t *testing.T, v any) []byte {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
