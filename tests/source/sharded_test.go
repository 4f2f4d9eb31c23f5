package source

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/mongoshim"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestShardedSource runs the connector against a sharded source: a mongoshim
// in mongos mode (one shard) in front of the local source's backend, with
// two collections sharded on {region: 1, _id: 1} and {region: 1} and one
// unsharded. It snapshots them, streams inserts, updates, replaces and
// deletes, and reads the log back:
//
//   - every record of a sharded collection is keyed by the change stream's
//     documentKey, the shard key fields then _id ({region, _id}), snapshot
//     records included; the unsharded collection keeps {_id};
//   - the snapshot record and the change records of a document share that
//     key and one partition;
//   - every initial document is in the snapshot once, every change in the log
//     once, in the order made;
//   - the records name their source "mongos".
func TestShardedSource(t *testing.T) {
	env := testenv.New(t)
	backend := env.SourceBackend(t)
	ctx := testenv.Context(t, 5*time.Minute)
	shim, err := mongoshim.New(mongoshim.Config{Listen: "127.0.0.1:0", Backend: backend, Mongos: true, NoopInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := shim.Start(ctx); err != nil {
		t.Fatalf("starting a mongos-mode mongoshim in front of %s: %v", backend, err)
	}
	t.Cleanup(func() { _ = shim.Close() })
	uri := "mongodb://" + shim.Addr() + "/" // no replicaSet: the driver discovers a mongos
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	db := testenv.DBName(t)
	prefix := testenv.TopicPrefix(t)
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })

	admin := cl.Database("admin")
	if err := admin.RunCommand(ctx, bson.D{{Key: "enableSharding", Value: db}}).Err(); err != nil {
		t.Fatalf("enableSharding: %v", err)
	}
	shardKeys := map[string]bson.D{
		"sh":  {{Key: "region", Value: 1}, {Key: "_id", Value: 1}},
		"one": {{Key: "region", Value: 1}},
	}
	for coll, key := range shardKeys {
		if err := admin.RunCommand(ctx, bson.D{{Key: "shardCollection", Value: db + "." + coll}, {Key: "key", Value: key}}).Err(); err != nil {
			t.Fatalf("shardCollection %s: %v", coll, err)
		}
	}
	colls := []string{"sh", "one", "plain"}
	regions := []string{"eu", "us", "ap", "sa", "af"}
	region := func(id int32) string { return regions[int(id)%len(regions)] }
	// The document's fields are not in shard key order ("one" has region
	// last): the key follows the shard key, not the document.
	mkDoc := func(coll string, id int32, n int) bson.D {
		if coll == "one" {
			return bson.D{{Key: "_id", Value: id}, {Key: "n", Value: n}, {Key: "region", Value: region(id)}}
		}
		return bson.D{{Key: "_id", Value: id}, {Key: "region", Value: region(id)}, {Key: "n", Value: n}}
	}
	// wantKey is the record key every record of the document must carry.
	wantKey := func(coll string, id int32) string {
		if _, sharded := shardKeys[coll]; !sharded {
			return keyOf(t, id)
		}
		return string(marshal(t, bson.D{{Key: "region", Value: region(id)}, {Key: "_id", Value: id}}))
	}
	const initial = 300
	for _, coll := range colls {
		var docs []any
		for i := int32(0); i < initial; i++ {
			docs = append(docs, mkDoc(coll, i, int(i)))
		}
		if _, err := cl.Database(db).Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatalf("seeding %s: %v", coll, err)
		}
	}

	args := []string{"--source-uri", uri, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
		"--include", db + ".*", "--partitions", "4", "--snapshot-range-docs", "100", "--heartbeat-interval", "1s"}
	p := start(t, args...)
	p.waitFor(t, "phase=streaming", 3*time.Minute)

	// Streaming: per collection, inserts, then updates, replaces and deletes
	// of initial documents (by the full shard key or by _id alone).
	journal := map[string][]schema.Op{} // coll/_id → changes in order
	note := func(coll string, id int32, op schema.Op) {
		k := fmt.Sprintf("%s/%d", coll, id)
		journal[k] = append(journal[k], op)
	}
	counts := map[schema.Op]int{}
	for _, coll := range colls {
		c := cl.Database(db).Collection(coll)
		_, sharded := shardKeys[coll]
		byKey := func(id int32) bson.D {
			if sharded {
				return bson.D{{Key: "region", Value: region(id)}, {Key: "_id", Value: id}}
			}
			return bson.D{{Key: "_id", Value: id}}
		}
		for id := int32(initial); id < initial+20; id++ {
			if _, err := c.InsertOne(ctx, mkDoc(coll, id, int(id))); err != nil {
				t.Fatal(err)
			}
			note(coll, id, schema.OpInsert)
		}
		for id := int32(0); id < initial; id += 7 {
			if _, err := c.UpdateOne(ctx, byKey(id), bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -int(id) - 1}}}}); err != nil {
				t.Fatal(err)
			}
			note(coll, id, schema.OpUpdate)
		}
		for id := int32(1); id < initial; id += 11 {
			repl := bson.D{{Key: "region", Value: region(id)}, {Key: "replaced", Value: true}}
			if !sharded {
				repl = repl[1:]
			}
			if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, repl); err != nil {
				t.Fatal(err)
			}
			note(coll, id, schema.OpReplace)
		}
		for id := int32(2); id < initial; id += 13 {
			filter := bson.D{{Key: "_id", Value: id}}
			if id%2 == 0 {
				filter = byKey(id)
			}
			if _, err := c.DeleteOne(ctx, filter); err != nil {
				t.Fatal(err)
			}
			note(coll, id, schema.OpDelete)
		}
	}
	for _, ops := range journal {
		for _, op := range ops {
			counts[op]++
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, op := range []schema.Op{schema.OpInsert, schema.OpUpdate, schema.OpReplace, schema.OpDelete} {
		for p.metric(`logbridge_source_events_published_total{op="`+string(op)+`"}`) < float64(counts[op]) {
			if p.exited() || time.Now().After(deadline) {
				t.Fatalf("%d %s events not published (%v so far):\n%s", counts[op], op,
					p.metric(`logbridge_source_events_published_total{op="`+string(op)+`"}`), p.output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}

	topicColl := map[string]string{}
	var topics []string
	for _, coll := range colls {
		topic := prefix + "." + db + "." + coll
		topicColl[topic] = coll
		topics = append(topics, topic)
	}
	errs := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	snap := map[string]int{}                   // coll/_id → snapshot records
	changes := map[string][]schema.Op{}        // coll/_id → change records in order
	partOf := map[string]int32{}               // topic + key → partition
	snapKey := map[string]string{}             // coll/_id → the snapshot record's key
	changeKeys := map[string]map[string]bool{} // coll/_id → keys of its change records
	sources := map[string]int{}
	for _, r := range readLog(t, env, topics...) {
		switch r.ev.Op {
		case schema.OpSnapshot, schema.OpInsert, schema.OpUpdate, schema.OpReplace, schema.OpDelete:
		default:
			continue
		}
		coll := topicColl[r.topic]
		sources[r.ev.Source]++
		idv, err := r.ev.DocumentKey.LookupErr("_id")
		id, ok := idv.Int32OK()
		if err != nil || !ok {
			errorf("%s %s record without an int32 _id in its documentKey %v", coll, r.ev.Op, r.ev.DocumentKey)
			continue
		}
		k := fmt.Sprintf("%s/%d", coll, id)
		if r.key != string(r.ev.DocumentKey) {
			errorf("%s %s of %d: record key %v differs from the event's documentKey %v", coll, r.ev.Op, id, bson.Raw(r.key), r.ev.DocumentKey)
		}
		if want := wantKey(coll, id); r.key != want {
			errorf("%s %s of %d: record key %v, want %v", coll, r.ev.Op, id, bson.Raw(r.key), bson.Raw(want))
		}
		if pt, seen := partOf[r.topic+r.key]; seen && pt != r.part {
			errorf("%s key %v in partitions %d and %d", coll, bson.Raw(r.key), pt, r.part)
		}
		partOf[r.topic+r.key] = r.part
		if r.ev.Op == schema.OpSnapshot {
			snap[k]++
			snapKey[k] = r.key
			continue
		}
		changes[k] = append(changes[k], r.ev.Op)
		if changeKeys[k] == nil {
			changeKeys[k] = map[string]bool{}
		}
		changeKeys[k][r.key] = true
	}
	if len(sources) != 1 || sources["mongos"] == 0 {
		errorf("record sources %v, want every record from \"mongos\"", sources)
	}
	for _, coll := range colls {
		for id := int32(0); id < initial; id++ {
			k := fmt.Sprintf("%s/%d", coll, id)
			if snap[k] != 1 {
				errorf("%s: document %d in the snapshot %d times, want 1", coll, id, snap[k])
			}
		}
	}
	if n := len(snap); n != len(colls)*initial {
		errorf("%d documents in the snapshot, want %d", n, len(colls)*initial)
	}
	nChanges := 0
	for k, want := range journal {
		got := changes[k]
		nChanges += len(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			errorf("%s: changes %v, want %v", k, got, want)
		}
		// the snapshot record and the change records share one key
		// (and so, checked above, one partition)
		if sk, ok := snapKey[k]; ok {
			for ck := range changeKeys[k] {
				if ck != sk {
					errorf("%s: snapshot key %v, change key %v", k, bson.Raw(sk), bson.Raw(ck))
				}
			}
		}
	}
	for k, got := range changes {
		if _, ok := journal[k]; !ok {
			errorf("%s: %d change records nobody made (%v)", k, len(got), got)
		}
	}
	if errs > 20 {
		t.Errorf("... %d errors in all", errs)
	}
	t.Logf("log checked: %d snapshot documents, %d change records, %d record keys, sources %v", len(snap), nChanges, len(partOf), sources)
}
