package source

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// expected is one change a writer made, in the order it made them.
type expected struct {
	seq     int // global write order; also the value of field v
	op      schema.Op
	doc     bson.Raw // insert: the exact document; replace: its fields (any order)
	removed []string // update: removed fields
	txn     int      // > 0: the writer's transaction number
}

// journal records the writers' changes per topic and key. Only one writer
// runs at a time; seq is read concurrently by the test.
type journal struct {
	mu      sync.Mutex
	seq     atomic.Int64
	changes map[string][]expected // topic + "\x00" + key
	ddl     map[string][]ddlWant  // topic → live DDL in order
}

type ddlWant struct {
	kind schema.DDLKind
	seq  int
}

func newJournal() *journal {
	return &journal{changes: map[string][]expected{}, ddl: map[string][]ddlWant{}}
}

func (j *journal) next() int { return int(j.seq.Add(1)) }

func (j *journal) add(topic, key string, e expected) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.changes[topic+"\x00"+key] = append(j.changes[topic+"\x00"+key], e)
}

func (j *journal) addDDL(topic string, kind schema.DDLKind, seq int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ddl[topic] = append(j.ddl[topic], ddlWant{kind, seq})
}

// writer makes changes on the source and journals them.
type writer struct {
	t      *testing.T
	ctx    context.Context
	cl     *mongo.Client
	prefix string
	j      *journal
	noPad  map[string]bool // topic/key → the document has no field pad
	gone   map[string]bool // topic/key → deleted
	txns   int
}

func (w *writer) topic(db, coll string) string { return w.prefix + "." + db + "." + coll }

func (w *writer) coll(db, coll string) *mongo.Collection { return w.cl.Database(db).Collection(coll) }

// insert inserts doc (which starts with _id) with v = a new seq appended.
func (w *writer) insert(ctx context.Context, db, coll string, doc bson.D, txn int) {
	seq := w.j.next()
	doc = append(append(bson.D{}, doc...), bson.E{Key: "v", Value: int64(seq)})
	if _, err := w.coll(db, coll).InsertOne(ctx, doc); err != nil {
		w.t.Errorf("insert into %s.%s: %v", db, coll, err)
		return
	}
	k := keyOf(w.t, doc[0].Value)
	w.j.add(w.topic(db, coll), k, expected{seq: seq, op: schema.OpInsert, doc: marshal(w.t, doc), txn: txn})
	w.noPad[w.topic(db, coll)+k] = !hasField(doc, "pad")
	delete(w.gone, w.topic(db, coll)+k)
}

func (w *writer) update(ctx context.Context, db, coll string, id any, unsetPad bool, txn int) {
	seq := w.j.next()
	upd := bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int64(seq)}}}}
	k := keyOf(w.t, id)
	var removed []string
	if unsetPad {
		upd = append(upd, bson.E{Key: "$unset", Value: bson.D{{Key: "pad", Value: ""}}})
		if !w.noPad[w.topic(db, coll)+k] {
			removed = []string{"pad"}
		}
		w.noPad[w.topic(db, coll)+k] = true
	}
	res, err := w.coll(db, coll).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, upd)
	if err != nil {
		w.t.Errorf("update of %s.%s: %v", db, coll, err)
		return
	}
	if res.MatchedCount != 1 && txn == 0 {
		w.t.Errorf("update of %s.%s %v matched %d documents", db, coll, id, res.MatchedCount)
	}
	w.j.add(w.topic(db, coll), k, expected{seq: seq, op: schema.OpUpdate, removed: removed, txn: txn})
}

func (w *writer) replace(ctx context.Context, db, coll string, id any) {
	seq := w.j.next()
	doc := bson.D{{Key: "_id", Value: id}, {Key: "replaced", Value: true}, {Key: "v", Value: int64(seq)},
		{Key: "pad", Value: "r"}, {Key: "dec", Value: mustDecimal("-0.000")}}
	if _, err := w.coll(db, coll).ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc); err != nil {
		w.t.Errorf("replace in %s.%s: %v", db, coll, err)
		return
	}
	k := keyOf(w.t, id)
	w.j.add(w.topic(db, coll), k, expected{seq: seq, op: schema.OpReplace, doc: marshal(w.t, doc)})
	w.noPad[w.topic(db, coll)+k] = false
}

func (w *writer) delete(ctx context.Context, db, coll string, id any, txn int) {
	seq := w.j.next()
	if _, err := w.coll(db, coll).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		w.t.Errorf("delete in %s.%s: %v", db, coll, err)
		return
	}
	k := keyOf(w.t, id)
	w.j.add(w.topic(db, coll), k, expected{seq: seq, op: schema.OpDelete, txn: txn})
	w.gone[w.topic(db, coll)+k] = true
}

// transaction inserts, updates and deletes in one source transaction.
func (w *writer) transaction(db, coll string, ins bson.D, updID, delID any) {
	w.txns++
	sess, err := w.cl.StartSession()
	if err != nil {
		w.t.Error(err)
		return
	}
	defer sess.EndSession(w.ctx)
	if err := sess.StartTransaction(); err != nil {
		w.t.Error(err)
		return
	}
	sc := mongo.NewSessionContext(w.ctx, sess)
	w.insert(sc, db, coll, ins, w.txns)
	w.update(sc, db, coll, updID, false, w.txns)
	w.delete(sc, db, coll, delID, w.txns)
	if err := sess.CommitTransaction(w.ctx); err != nil {
		w.t.Errorf("commitTransaction: %v", err)
	}
}

func hasField(d bson.D, name string) bool {
	for _, e := range d {
		if e.Key == name {
			return true
		}
	}
	return false
}

// TestSnapshotStreamKill9 copies four namespaces of documents of every BSON
// type the source can store (one with _id values of many types), with writes
// during the snapshot, then streams inserts, updates, replaces, deletes, a
// transaction and DDL (createIndexes, dropIndexes, create, rename, drop). It
// kills the connector with SIGKILL during the snapshot and during streaming,
// restarts it each time, and reads the log back:
//
//   - every document of the snapshot exactly once, byte-equal to the source;
//     the second run resumed from the checkpointed ranges, not from zero;
//   - every change exactly once, in source order per key, in the key's
//     partition, after the key's snapshot record;
//   - the plan's DDL and the snapshotDone marker exactly once in every
//     partition, before any change; live DDL exactly once in every partition
//     of its topics, after every earlier write and before every later one;
//   - transaction identity on the transaction's events;
//   - filters: an included database pattern, an included regex, an excluded
//     collection and a database outside the filter (no topic, no record).
func TestSnapshotStreamKill9(t *testing.T) {
	env := testenv.New(t)
	if !genuine(t, env) {
		t.Skip("the source lacks replica set semantics the connector needs (see the log line above and docs/testing.md); set SOURCE_URI to a genuine replica set")
	}
	ctx := testenv.Context(t, 15*time.Minute)
	cl := env.Source(t)
	db := testenv.DBName(t)
	db2 := db[:len(db)-1] + "Z" // a second database, partly included by a regex
	prefix := testenv.TopicPrefix(t)
	t.Cleanup(func() {
		_ = cl.Database(db).Drop(context.Background())
		_ = cl.Database(db2).Drop(context.Background())
	})
	const parts = 3
	sizes := map[string]int{db + ".a": 2000, db + ".b": 2000, db + ".mixed": 650, db2 + ".keep": 300}
	seed := func(dbName, coll string, n int, mk func(int) bson.D) {
		for lo := 0; lo < n; lo += 250 { // small commands: the local in-memory server has a small heap
			var docs []any
			for i := lo; i < min(n, lo+250); i++ {
				docs = append(docs, mk(i))
			}
			if _, err := cl.Database(dbName).Collection(coll).InsertMany(ctx, docs); err != nil {
				t.Fatalf("seeding %s.%s: %v", dbName, coll, err)
			}
		}
	}
	seed(db, "a", sizes[db+".a"], allTypes)
	seed(db, "b", sizes[db+".b"], allTypes)
	seed(db, "mixed", sizes[db+".mixed"], mixedDoc)
	seed(db2, "keep", sizes[db2+".keep"], allTypes)
	seed(db, "skip", 200, allTypes)   // excluded
	seed(db2, "other", 200, allTypes) // outside the filter
	for _, c := range []string{"a", "b"} {
		if _, err := cl.Database(db).Collection(c).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "int32", Value: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	args := []string{"--source-uri", env.SourceURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix,
		"--include", db + `.*,/^` + db2 + `\.ke/`, "--exclude", db + ".skip", "--partitions", fmt.Sprint(parts),
		"--snapshot-range-docs", "300", "--snapshot-batch-size", "100", "--snapshot-parallelism", "2",
		"--batch-max-records", "150", "--heartbeat-interval", "1s"}
	j := newJournal()
	w := &writer{t: t, ctx: ctx, cl: cl, prefix: prefix, j: j, noPad: map[string]bool{}, gone: map[string]bool{}}

	// Run 1: plan, then kill -9 in the middle of the snapshot, with writes
	// going on (they follow T0, so each must come out as a change event).
	p := start(t, args...)
	p.waitFor(t, "snapshot planned", 2*time.Minute)
	stopSnapWriter := make(chan struct{})
	snapWriterDone := make(chan struct{})
	newKeys := map[string]bool{}
	go func() {
		defer close(snapWriterDone)
		for n := 0; ; n++ {
			select {
			case <-stopSnapWriter:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n%2 == 0 {
				d := allTypes(n)
				d[0].Value = int32(100000 + n)
				w.insert(ctx, db, "a", d, 0)
				newKeys[keyOf(t, int32(100000+n))] = true
			} else {
				w.update(ctx, db, "b", int32(n%100), false, 0)
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for p.metric("logbridge_source_snapshot_documents_total") < float64(total)/3 {
		if p.exited() || strings.Contains(p.output(), "snapshot done") || time.Now().After(deadline) {
			t.Fatalf("could not kill the connector in the middle of the snapshot (it went too fast, or stopped):\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill9()
	if strings.Contains(p.output(), "snapshot done") {
		t.Fatalf("the snapshot finished before the kill:\n%s", p.output())
	}

	// Run 2: resumes the snapshot from its checkpoints, then streams.
	time.Sleep(500 * time.Millisecond)
	p = start(t, args...)
	p.waitFor(t, "snapshot starting", 2*time.Minute)
	pending, totalRanges, ok := p.pendingRanges()
	if !ok || pending >= totalRanges {
		t.Errorf("the restarted snapshot did not resume from its checkpoints: pendingRanges=%d totalRanges=%d", pending, totalRanges)
	}
	t.Logf("after kill -9 during the snapshot: %d of %d ranges pending", pending, totalRanges)
	p.waitFor(t, "phase=streaming", 5*time.Minute)
	copied2 := p.metric("logbridge_source_snapshot_documents_total")
	if copied2 <= 0 || copied2 >= float64(total) {
		t.Errorf("the second run copied %.0f documents; want some, and fewer than the %d of the collections (it must resume, not restart)", copied2, total)
	}
	t.Logf("second run copied %.0f documents of %d", copied2, total)
	close(stopSnapWriter)
	<-snapWriterDone

	// Streaming: changes, a kill -9 in the middle, a restart while the
	// writes go on, then DDL and a sentinel.
	const m = 1500
	var progress atomic.Int64
	streamDone := make(chan struct{})
	sentinel := int32(999999)
	go func() {
		defer close(streamDone)
		targets := []struct{ db, coll string }{{db, "a"}, {db, "b"}, {db2, "keep"}}
		for i := 0; i < m; i++ {
			progress.Store(int64(i))
			c := targets[i%3]
			k := int32((i * 7) % 200)
			kk := w.topic(c.db, c.coll) + keyOf(t, k)
			switch {
			case w.gone[kk]:
				d := allTypes(int(k))
				w.insert(ctx, c.db, c.coll, d, 0)
			case i%10 <= 5:
				w.update(ctx, c.db, c.coll, k, false, 0)
			case i%10 <= 7:
				w.replace(ctx, c.db, c.coll, k)
			case i%10 == 8:
				w.delete(ctx, c.db, c.coll, k, 0)
			default:
				w.update(ctx, c.db, c.coll, k, true, 0)
			}
			if i%10 == 5 { // outside the filter: never in the log
				if _, err := cl.Database(db).Collection("skip").UpdateOne(ctx, bson.D{{Key: "_id", Value: k}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
					t.Error(err)
				}
				if _, err := cl.Database(db2).Collection("other").InsertOne(ctx, bson.D{{Key: "i", Value: i}}); err != nil {
					t.Error(err)
				}
			}
			if i%300 == 150 {
				ins := allTypes(200000 + i)
				w.transaction(db, "a", ins, int32(300+i%100), int32(1000+i/3))
			}
		}
		// A few documents with _id values of every type.
		for i := 0; i < 13; i++ {
			w.update(ctx, db, "mixed", mixedID(i), false, 0)
		}
		// DDL, each between writes.
		seq := w.j.next()
		if _, err := cl.Database(db).Collection("a").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "v", Value: 1}}, Options: options.Index().SetName("v_1")}); err != nil {
			t.Error(err)
		}
		j.addDDL(w.topic(db, "a"), schema.DDLCreateIndexes, seq)
		for i := 0; i < 10; i++ {
			w.update(ctx, db, "a", int32(1500+i), false, 0)
		}
		seq = w.j.next()
		if err := cl.Database(db).Collection("a").Indexes().DropOne(ctx, "v_1"); err != nil {
			t.Error(err)
		}
		j.addDDL(w.topic(db, "a"), schema.DDLDropIndexes, seq)
		w.update(ctx, db, "a", int32(1600), false, 0)
		seq = w.j.next()
		if err := cl.Database(db).CreateCollection(ctx, "newcoll"); err != nil {
			t.Error(err)
		}
		j.addDDL(w.topic(db, "newcoll"), schema.DDLCreate, seq)
		for i := 0; i < 5; i++ {
			w.insert(ctx, db, "newcoll", allTypes(i), 0)
		}
		seq = w.j.next()
		if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: db + ".mixed"}, {Key: "to", Value: db + ".mixed2"}}).Err(); err != nil {
			t.Error(err)
		}
		j.addDDL(w.topic(db, "mixed"), schema.DDLRename, seq)
		j.addDDL(w.topic(db, "mixed2"), schema.DDLRename, seq)
		for i := 0; i < 13; i++ {
			w.update(ctx, db, "mixed2", mixedID(i), false, 0)
		}
		seq = w.j.next()
		if err := cl.Database(db).Collection("b").Drop(ctx); err != nil {
			t.Error(err)
		}
		j.addDDL(w.topic(db, "b"), schema.DDLDrop, seq)
		w.insert(ctx, db, "a", bson.D{{Key: "_id", Value: sentinel}}, 0)
		progress.Store(m)
	}()
	for progress.Load() < m/3 {
		if p.exited() {
			t.Fatalf("the connector exited:\n%s", p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.kill9()
	t.Logf("killed while streaming after %d of %d writer steps", progress.Load(), m)
	for progress.Load() < 2*m/3 {
		time.Sleep(10 * time.Millisecond)
	}
	p = start(t, args...)
	<-streamDone
	if t.Failed() {
		t.FailNow()
	}
	// Wait for the sentinel: everything before it is then committed.
	aTopic := w.topic(db, "a")
	sentKey := keyOf(t, sentinel)
	deadline = time.Now().Add(3 * time.Minute)
	for found := false; !found; {
		if p.exited() {
			t.Fatalf("the connector exited:\n%s", p.output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last write never reached the log:\n%s", p.output())
		}
		time.Sleep(2 * time.Second)
		for _, r := range testenv.ReadTopic(t, env.KafkaBrokers, aTopic) {
			if string(r.Key) == sentKey {
				found = true
			}
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}

	// The topics: exactly the included namespaces (+ the state topic).
	topics := map[string]bool{}
	tl, err := env.Admin(t).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range tl.Names() {
		if strings.HasPrefix(name, prefix+".") {
			topics[name] = true
		}
	}
	wantTopics := []string{w.topic(db, "a"), w.topic(db, "b"), w.topic(db, "mixed"), w.topic(db, "mixed2"), w.topic(db, "newcoll"),
		w.topic(db2, "keep"), prefix + "._source_state"}
	for _, tp := range wantTopics {
		if !topics[tp] {
			t.Errorf("topic %s missing", tp)
		}
		delete(topics, tp)
	}
	for tp := range topics {
		t.Errorf("unexpected topic %s (filters: %s.skip is excluded, %s.other is outside the filter)", tp, db, db2)
	}
	dataTopics := wantTopics[:len(wantTopics)-1]
	recs := readLog(t, env, dataTopics...)
	checkLog(t, recs, j, checkSpec{
		snapshotted: map[string]int{w.topic(db, "a"): sizes[db+".a"], w.topic(db, "b"): sizes[db+".b"], w.topic(db, "mixed"): sizes[db+".mixed"], w.topic(db2, "keep"): sizes[db2+".keep"]},
		initialDoc: func(topic string, i int) bson.D {
			if topic == w.topic(db, "mixed") {
				return mixedDoc(i)
			}
			return allTypes(i)
		},
		touchedInSnapshot: func(topic string, i int) bool { return topic == w.topic(db, "b") && i < 100 },
		lateInserts:       map[string]map[string]bool{aTopic: newKeys},
		parts:             parts,
		topics:            dataTopics,
	})
}

type checkSpec struct {
	snapshotted       map[string]int // topic → initial documents, _id 0..n-1 (mixed: mixedID)
	initialDoc        func(topic string, i int) bson.D
	touchedInSnapshot func(topic string, i int) bool
	lateInserts       map[string]map[string]bool // topic → keys inserted after T0, during the snapshot
	parts             int32
	topics            []string
}

// checkLog checks the log against the journal (see TestSnapshotStreamKill9).
func checkLog(t *testing.T, recs []logRecord, j *journal, spec checkSpec) {
	t.Helper()
	errs := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if errs > 20 {
			t.Errorf("... %d errors in all", errs)
		}
	}()
	type partState struct {
		sawSnapshot, sawMarker, sawChange bool
		markers                           int
		liveDDL                           []ddlWant
	}
	parts := map[string]*partState{}
	snap := map[string]int{}            // topic\x00key → snapshot records
	snapDoc := map[string]bson.Raw{}    // topic\x00key → document
	changes := map[string][]logRecord{} // topic\x00key → change records in order
	keyPart := map[string]int32{}
	planDDL := map[string]map[schema.DDLKind]int{}
	for _, r := range recs {
		pk := fmt.Sprintf("%s/%d", r.topic, r.part)
		ps := parts[pk]
		if ps == nil {
			ps = &partState{}
			parts[pk] = ps
		}
		k := r.topic + "\x00" + r.key
		switch r.ev.Op {
		case schema.OpSnapshot, schema.OpInsert, schema.OpUpdate, schema.OpReplace, schema.OpDelete:
			if p, ok := keyPart[k]; ok && p != r.part {
				errorf("%s key %x in partitions %d and %d", r.topic, r.key, p, r.part)
			}
			keyPart[k] = r.part
		}
		switch r.ev.Op {
		case schema.OpSnapshot:
			if ps.sawMarker || ps.sawChange {
				errorf("%s: snapshot record after the snapshotDone marker or a change", pk)
			}
			ps.sawSnapshot = true
			snap[k]++
			snapDoc[k] = r.ev.FullDocument
		case schema.OpInsert, schema.OpUpdate, schema.OpReplace, schema.OpDelete:
			if !ps.sawMarker && spec.snapshotted[r.topic] > 0 {
				errorf("%s: change event before the snapshotDone marker", pk)
			}
			ps.sawChange = true
			changes[k] = append(changes[k], r)
		case schema.OpMarker:
			if r.ev.Marker.Kind == schema.MarkerSnapshotDone {
				ps.markers++
				ps.sawMarker = true
				if ps.sawChange {
					errorf("%s: snapshotDone marker after a change event", pk)
				}
			}
		case schema.OpDDL:
			if strings.HasPrefix(r.ev.DDL.ID, "snapshot/") {
				if ps.sawSnapshot || ps.sawChange || ps.sawMarker {
					errorf("%s: the plan's %s DDL after data", pk, r.ev.DDL.Kind)
				}
				if planDDL[pk] == nil {
					planDDL[pk] = map[schema.DDLKind]int{}
				}
				planDDL[pk][r.ev.DDL.Kind]++
				continue
			}
			ps.liveDDL = append(ps.liveDDL, ddlWant{kind: r.ev.DDL.Kind})
		}
	}

	// Snapshot: every initial document exactly once, byte-equal.
	for topic, n := range spec.snapshotted {
		for i := 0; i < n; i++ {
			doc := spec.initialDoc(topic, i)
			k := topic + "\x00" + keyOf(t, doc[0].Value)
			if snap[k] != 1 {
				errorf("%s: document %v in the snapshot %d times, want 1", topic, doc[0].Value, snap[k])
				continue
			}
			if spec.touchedInSnapshot(topic, i) {
				continue
			}
			if want := marshal(t, doc); !bytes.Equal(snapDoc[k], want) {
				errorf("%s: snapshot of %v differs from the source document: %s", topic, doc[0].Value, docDiff(snapDoc[k], want))
			}
		}
	}
	for k, n := range snap {
		topic, key, _ := strings.Cut(k, "\x00")
		late := spec.lateInserts[topic][key]
		if n > 1 || (late && n != 1) {
			errorf("%s: key %x in the snapshot %d times", topic, key, n)
		}
	}
	nInitial := 0
	for _, n := range spec.snapshotted {
		nInitial += n
	}
	nLate := 0
	for k := range snap {
		topic, key, _ := strings.Cut(k, "\x00")
		if spec.lateInserts[topic][key] {
			nLate++
		}
	}
	if len(snap) != nInitial+nLate {
		errorf("%d distinct documents in the snapshot, want %d initial + %d inserted during the snapshot", len(snap), nInitial, nLate)
	}

	// Changes: per key, exactly the journal, in order.
	seqOf := map[string]map[int64]int{} // partition key → offset → seq
	txnEvents := map[int][]*schema.Event{}
	nChanges := 0
	for k, want := range j.changes {
		got := changes[k]
		topic, key, _ := strings.Cut(k, "\x00")
		if len(got) != len(want) {
			errorf("%s key %x: %d change events, want %d", topic, key, len(got), len(want))
		}
		for i := 0; i < min(len(got), len(want)); i++ {
			g, w := got[i], want[i]
			nChanges++
			pk := fmt.Sprintf("%s/%d", g.topic, g.part)
			if seqOf[pk] == nil {
				seqOf[pk] = map[int64]int{}
			}
			seqOf[pk][g.offset] = w.seq
			if g.ev.Op != w.op {
				errorf("%s key %x change %d: %s, want %s (seq %d)", topic, key, i, g.ev.Op, w.op, w.seq)
				continue
			}
			switch w.op {
			case schema.OpInsert:
				if !bytes.Equal(g.ev.FullDocument, w.doc) {
					errorf("%s key %x insert (seq %d): document differs: %s", topic, key, w.seq, docDiff(g.ev.FullDocument, w.doc))
				}
			case schema.OpReplace:
				// Field order is compared loosely: the local backend keeps
				// the old field order on replace (docs/testing.md).
				if !sameFields(g.ev.FullDocument, w.doc) {
					errorf("%s key %x replace (seq %d): document\n got %v\nwant %v", topic, key, w.seq, g.ev.FullDocument, w.doc)
				}
			case schema.OpUpdate:
				u := g.ev.Update
				if u == nil {
					errorf("%s key %x update (seq %d) without update description", topic, key, w.seq)
					continue
				}
				v, ok := u.UpdatedFields.Lookup("v").AsInt64OK()
				if !ok || int(v) != w.seq {
					errorf("%s key %x update: v = %v, want %d (out of order or wrong)", topic, key, u.UpdatedFields.Lookup("v"), w.seq)
				}
				if strings.Join(u.RemovedFields, ",") != strings.Join(w.removed, ",") {
					errorf("%s key %x update (seq %d): removed %v, want %v", topic, key, w.seq, u.RemovedFields, w.removed)
				}
			}
			if w.txn > 0 {
				txnEvents[w.txn] = append(txnEvents[w.txn], g.ev)
				if g.ev.Txn == nil {
					errorf("%s key %x %s (seq %d) of a transaction without transaction id", topic, key, w.op, w.seq)
				}
			} else if g.ev.Txn != nil {
				errorf("%s key %x %s (seq %d) outside a transaction carries a transaction id", topic, key, w.op, w.seq)
			}
			if g.ev.ClusterTime.T == 0 || g.ev.WallTimeMillis == 0 || len(g.ev.ResumeToken) == 0 {
				errorf("%s key %x change without cluster time, wall time or resume token", topic, key)
			}
		}
	}
	for k, got := range changes {
		if _, ok := j.changes[k]; !ok {
			topic, key, _ := strings.Cut(k, "\x00")
			errorf("%s key %x: %d change events nobody made (first %s)", topic, key, len(got), got[0].ev.Op)
		}
	}
	if len(txnEvents) == 0 {
		errorf("no transaction in the journal")
	}
	for n, evs := range txnEvents {
		var idx []int
		for _, ev := range evs {
			if ev.Txn == nil {
				continue
			}
			if !bytes.Equal(ev.Txn.LSID, evs[0].Txn.LSID) || ev.Txn.TxnNumber != evs[0].Txn.TxnNumber {
				errorf("transaction %d: events with different lsid/txnNumber", n)
			}
			idx = append(idx, int(ev.Txn.Index))
		}
		sort.Ints(idx)
		if fmt.Sprint(idx) != "[0 1 2]" {
			errorf("transaction %d: event indexes %v, want [0 1 2]", n, idx)
		}
	}

	// Per partition: seq order of changes, the plan's DDL and the marker
	// exactly once, live DDL exactly once and between the right writes.
	for _, topic := range spec.topics {
		for p := int32(0); p < spec.parts; p++ {
			pk := fmt.Sprintf("%s/%d", topic, p)
			ps := parts[pk]
			if ps == nil {
				errorf("%s: empty partition (DDL barriers belong in every partition)", pk)
				continue
			}
			if spec.snapshotted[topic] > 0 {
				if ps.markers != 1 {
					errorf("%s: %d snapshotDone markers, want 1", pk, ps.markers)
				}
				if planDDL[pk][schema.DDLCreate] != 1 {
					errorf("%s: the plan's create DDL %d times, want 1", pk, planDDL[pk][schema.DDLCreate])
				}
				if c := planDDL[pk][schema.DDLCreateIndexes]; c > 1 {
					errorf("%s: the plan's createIndexes DDL %d times, want at most 1", pk, c)
				}
			}
			var kinds, wantKinds []string
			for _, d := range ps.liveDDL {
				kinds = append(kinds, string(d.kind))
			}
			for _, d := range j.ddl[topic] {
				wantKinds = append(wantKinds, string(d.kind))
			}
			if strings.Join(kinds, ",") != strings.Join(wantKinds, ",") {
				errorf("%s: live DDL %v, want %v", pk, kinds, wantKinds)
			}
		}
	}
	// Order within each partition, DDL included.
	for _, topic := range spec.topics {
		for p := int32(0); p < spec.parts; p++ {
			pk := fmt.Sprintf("%s/%d", topic, p)
			last, ddlI := 0, 0
			for _, r := range recs {
				if r.topic != topic || r.part != p {
					continue
				}
				switch {
				case r.ev.Op == schema.OpDDL && !strings.HasPrefix(r.ev.DDL.ID, "snapshot/"):
					if ddlI < len(j.ddl[topic]) {
						s := j.ddl[topic][ddlI].seq
						if s < last {
							errorf("%s: %s DDL (seq %d) after a write with seq %d", pk, r.ev.DDL.Kind, s, last)
						}
						last = s
					}
					ddlI++
				default:
					if s, ok := seqOf[pk][r.offset]; ok {
						if s < last {
							errorf("%s@%d: write seq %d after seq %d", pk, r.offset, s, last)
						}
						last = s
					}
				}
			}
		}
	}
	t.Logf("log checked: %d records, %d snapshot documents, %d change events, %d live DDL kinds", len(recs), len(snap), nChanges, len(j.ddl))
}
