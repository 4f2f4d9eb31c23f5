package sink_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/sink"
	"github.com/logbridge/logbridge/tests/testenv"
)

// writeScenario writes a log for ns: create + createIndexes, a snapshot of n
// rich documents, snapshotDone, then change events of every kind. It returns
// the expected final content.
func writeScenario(t *testing.T, l *logWriter, ns schema.Namespace, n int) expect {
	t.Helper()
	want := expect{}
	l.barrier(&schema.Event{Op: schema.OpDDL, NS: ns, DDL: &schema.DDL{Kind: schema.DDLCreate, ID: "create-1", Options: rawDoc(t, bson.D{})}}, ns)
	l.barrier(&schema.Event{Op: schema.OpDDL, NS: ns, DDL: &schema.DDL{Kind: schema.DDLCreateIndexes, ID: "idx-1",
		Indexes: rawDoc(t, bson.D{{Key: "indexes", Value: bson.A{
			bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}},
			bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "s", Value: int32(1)}}}, {Key: "name", Value: "s_1"}, {Key: "unique", Value: true}},
			bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "sub.z", Value: int32(-1)}, {Key: "f", Value: int32(1)}}}, {Key: "name", Value: "sub.z_-1_f_1"}},
		}}})}}, ns)
	var evs []*schema.Event
	for i := range n {
		d := richDoc(i)
		want.put(t, d)
		evs = append(evs, dataEv(t, schema.OpSnapshot, ns, int32(i), d))
	}
	l.data(evs...)
	l.barrier(markerEv(ns, schema.MarkerSnapshotDone, "snap-done"), ns)

	evs = evs[:0]
	// T0 replays: events already visible in the snapshot.
	for i := range min(n, 50) {
		evs = append(evs, dataEv(t, schema.OpReplace, ns, int32(i), richDoc(i)))
	}
	// Inserts of new documents, then deletes of some of them.
	for i := n; i < n+100; i++ {
		d := richDoc(i)
		evs = append(evs, dataEv(t, schema.OpInsert, ns, int32(i), d))
		want.put(t, d)
	}
	for i := n; i < n+100; i += 3 {
		evs = append(evs, dataEv(t, schema.OpDelete, ns, int32(i), nil))
		want.del(int32(i))
	}
	// Delta updates: $set of dotted paths, $unset, truncated arrays.
	for i := 0; i < min(n, 200); i += 2 {
		ev := dataEv(t, schema.OpUpdate, ns, int32(i), nil)
		ev.Update = &schema.UpdateDescription{
			UpdatedFields:   rawDoc(t, bson.D{{Key: "sub.a.deep", Value: "changed"}, {Key: "arr.1", Value: int32(22)}, {Key: "new", Value: int64(i)}}),
			RemovedFields:   []string{"n", "re"},
			TruncatedArrays: []schema.TruncatedArray{{Field: "arr", NewSize: 2}},
		}
		evs = append(evs, ev)
		d := richDoc(i)
		out := bson.D{}
		for _, e := range d {
			switch e.Key {
			case "n", "re":
				continue
			case "arr":
				e.Value = bson.A{int32(1), int32(22)}
			case "sub":
				e.Value = bson.D{{Key: "z", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "deep", Value: "changed"}}}}
			}
			out = append(out, e)
		}
		out = append(out, bson.E{Key: "new", Value: int64(i)})
		want.put(t, out)
	}
	// An update of a document that does not exist: counted, not an error.
	ghost := dataEv(t, schema.OpUpdate, ns, "ghost", nil)
	ghost.Update = &schema.UpdateDescription{UpdatedFields: rawDoc(t, bson.D{{Key: "x", Value: 1}})}
	evs = append(evs, ghost)
	// Updates with a full document (updateLookup) replace.
	for i := 1; i < min(n, 100); i += 2 {
		d := richDoc(i)
		d = append(d, bson.E{Key: "looked-up", Value: true})
		evs = append(evs, dataEv(t, schema.OpUpdate, ns, int32(i), d))
		want.put(t, d)
	}
	l.data(evs...)
	l.data(&schema.Event{Op: schema.OpHeartbeat, NS: ns, DocumentKey: nil})
	return want
}

func TestSinkConvergesByteEqual(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	l := newLog(t, env, 4)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	ns := schema.Namespace{DB: db, Coll: "items"}
	want := writeScenario(t, l, ns, 2000)

	svc, _, _ := startSink(t, sinkCfg(env, l, "g-"+db))
	waitEqual(t, dest, ns, want, 60*time.Second)

	idx := indexNames(t, dest, ns)
	for _, name := range []string{"_id_", "s_1", "sub.z_-1_f_1"} {
		if _, ok := idx[name]; !ok {
			t.Errorf("index %s missing on the destination; got %v", name, idx)
		}
	}
	if u, _ := idx["s_1"].Lookup("unique").BooleanOK(); !u {
		t.Errorf("index s_1: got %s, want unique", idx["s_1"])
	}
	// Progress catches up.
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := svc.Progress()
		if len(p.Partitions) == 4 && p.LagRecords == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress did not reach lag 0: %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSinkDDLMidStream(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	l := newLog(t, env, 3)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	a := schema.Namespace{DB: db, Coll: "a"}
	b := schema.Namespace{DB: db, Coll: "b"}
	c := schema.Namespace{DB: db, Coll: "c"}

	// a: docs, drop, recreate with other docs.
	l.barrier(ddlEv(a, schema.DDLCreate, "a-create"), a)
	for i := range 100 {
		l.data(dataEv(t, schema.OpInsert, a, int32(i), bson.D{{Key: "_id", Value: int32(i)}, {Key: "gen", Value: 1}}))
	}
	l.barrier(ddlEv(a, schema.DDLDrop, "a-drop"), a)
	wantA := expect{}
	for i := 50; i < 80; i++ {
		d := bson.D{{Key: "_id", Value: int32(i)}, {Key: "gen", Value: int32(2)}}
		l.data(dataEv(t, schema.OpInsert, a, int32(i), d))
		wantA.put(t, d)
	}
	// b: docs, then renamed to c; writes continue on c.
	l.barrier(ddlEv(b, schema.DDLCreate, "b-create"), b)
	wantC := expect{}
	for i := range 60 {
		d := bson.D{{Key: "_id", Value: int32(i)}, {Key: "from", Value: "b"}}
		l.data(dataEv(t, schema.OpInsert, b, int32(i), d))
		wantC.put(t, d)
	}
	rename := ddlEv(b, schema.DDLRename, "b-rename")
	rename.DDL.Target = &c
	l.barrier(rename, b, c)
	for i := 60; i < 90; i++ {
		d := bson.D{{Key: "_id", Value: int32(i)}, {Key: "from", Value: "c"}}
		l.data(dataEv(t, schema.OpInsert, c, int32(i), d))
		wantC.put(t, d)
	}
	for i := 0; i < 10; i++ {
		l.data(dataEv(t, schema.OpDelete, c, int32(i), nil))
		wantC.del(int32(i))
	}

	startSink(t, sinkCfg(env, l, "g-"+db))
	waitEqual(t, dest, a, wantA, 60*time.Second)
	waitEqual(t, dest, c, wantC, 60*time.Second)
	waitEqual(t, dest, b, expect{}, 10*time.Second)
	if _, ok := collOptions(t, dest, b); ok {
		t.Errorf("collection %s exists after its rename", b)
	}
}

func TestSinkPoisonRecord(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	for _, tolerance := range []string{"all", "none"} {
		t.Run(tolerance, func(t *testing.T) {
			ns := schema.Namespace{DB: db, Coll: "p_" + tolerance}
			l := newLog(t, env, 1)
			topic := l.topic(ns)
			want := expect{}
			for i := range 10 {
				d := bson.D{{Key: "_id", Value: int32(i)}}
				l.data(dataEv(t, schema.OpInsert, ns, int32(i), d))
				want.put(t, d)
			}
			// Undecodable value and an event with an unknown op.
			l.produce(&kgo.Record{Topic: topic, Partition: 0, Key: []byte("k"), Value: []byte("\xc3\x01garbage"),
				Headers: []kgo.RecordHeader{{Key: schema.HeaderEncoding, Value: []byte(schema.EncodingSingleObject)}}})
			poisonOffset := int64(10)
			for i := 10; i < 20; i++ {
				d := bson.D{{Key: "_id", Value: int32(i)}}
				l.data(dataEv(t, schema.OpInsert, ns, int32(i), d))
				if tolerance == "all" {
					want.put(t, d)
				}
			}
			cfg := sinkCfg(env, l, "g-"+tolerance+"-"+db)
			cfg.ErrorTolerance = tolerance
			_, done, _ := startSink(t, cfg)
			if tolerance == "none" {
				select {
				case err := <-done:
					if !errors.Is(err, sink.ErrPoison) {
						t.Fatalf("got %v, want the poison record error", err)
					}
					t.Logf("sink stopped with: %v", err)
				case <-time.After(60 * time.Second):
					t.Fatal("sink did not stop at the poison record")
				}
				// Nothing past the record is committed.
				offs, err := env.Admin(t).FetchOffsets(testenv.Context(t, 10*time.Second), cfg.Group)
				if err != nil {
					t.Fatal(err)
				}
				if o, ok := offs.Lookup(topic, 0); !ok || o.At != poisonOffset {
					t.Fatalf("committed offset %v, want exactly the poison record offset %d", o, poisonOffset)
				}
				waitEqual(t, dest, ns, want, 10*time.Second)
				return
			}
			waitEqual(t, dest, ns, want, 60*time.Second)
			// The dead letter holds the record and the reason.
			rd := env.Kafka(t, kgo.ConsumeTopics(cfg.DLQ()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx := testenv.Context(t, 30*time.Second)
			fs := rd.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			recs := fs.Records()
			if len(recs) != 1 {
				t.Fatalf("got %d dead letters, want 1", len(recs))
			}
			hs := map[string]string{}
			for _, h := range recs[0].Headers {
				hs[h.Key] = string(h.Value)
			}
			if hs["logbridge.dlq.topic"] != topic || hs["logbridge.dlq.offset"] != fmt.Sprint(poisonOffset) || hs["logbridge.dlq.error"] == "" {
				t.Fatalf("got dead-letter headers %v", hs)
			}
			t.Logf("dead letter reason: %s", hs["logbridge.dlq.error"])
		})
	}
}

func TestSinkReplayAndFanOut(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	l := newLog(t, env, 4)
	db := testenv.DBName(t)
	ns := schema.Namespace{DB: db, Coll: "items"}
	want := writeScenario(t, l, ns, 500)
	// Two sinks (two groups) apply one log to two destination databases at once.
	var dbs []string
	for i := range 2 {
		out := fmt.Sprintf("%s_f%d", db[:min(len(db), 55)], i)
		dbs = append(dbs, out)
		dropDB(t, dest, out)
		cfg := sinkCfg(env, l, fmt.Sprintf("g-%s-%d", db, i))
		cfg.NSMap = []string{db + ".*=" + out + ".*"}
		startSink(t, cfg)
	}
	for _, out := range dbs {
		waitEqual(t, dest, schema.Namespace{DB: out, Coll: "items"}, want, 60*time.Second)
	}
	// A later group replays the whole log into a fresh database.
	fresh := db[:min(len(db), 55)] + "_fresh"
	dropDB(t, dest, fresh)
	cfg := sinkCfg(env, l, "g-replay-"+db)
	cfg.NSMap = []string{db + ".*=" + fresh + ".*"}
	startSink(t, cfg)
	waitEqual(t, dest, schema.Namespace{DB: fresh, Coll: "items"}, want, 60*time.Second)
	if _, ok := indexNames(t, dest, schema.Namespace{DB: fresh, Coll: "items"})["s_1"]; !ok {
		t.Error("replayed destination lacks index s_1")
	}
}

var _ = context.Background
