package capture

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/tests/testenv"
)

// With BatchWait, a caught-up reader waits after a small batch before its
// next getMore: the events written meanwhile come back in one getMore
// instead of a getMore per event, and go to the publisher as one unit (every
// item but the batch's last with More), so into one Kafka transaction. When
// the batch's last event publishes nothing (here: a collection the filter
// leaves out), an item without More closes the unit at once.
// Against the local stack (or SOURCE_URI).
func TestBatchWaitGathersEventsInOneGetMore(t *testing.T) {
	env := testenv.New(t)
	var mu sync.Mutex
	db := testenv.DBName(t)
	// Events of db per getMore reply of the change stream (the stream is
	// cluster-wide: other clients' events are not counted).
	var getMores []int
	cl := connectWatching(t, env.SourceURI, func(cmd string, evs []bson.Raw) {
		if cmd != "getMore" {
			return
		}
		k := 0
		for _, d := range evs {
			if d.Lookup("ns", "db").StringValue() == db {
				k++
			}
		}
		mu.Lock()
		getMores = append(getMores, k)
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coll := cl.Database(db).Collection("c")
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
	t0 := firstWriteTime(t, ctx, coll)
	filter, err := nsfilter.New([]string{db + ".c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const wait, n = 3 * time.Second, 20
	s := New(Config{Client: cl, Filter: filter, BatchWait: wait})
	out := make(chan checkpoint.Item, 100)
	go func() { _ = s.Run(ctx, Start{T0: t0}, out) }()
	next := func(what string) *checkpoint.Item {
		t.Helper()
		for {
			select {
			case it := <-out:
				if it.Event != nil {
					return &it
				}
			case <-ctx.Done():
				t.Fatalf("no %s", what)
			}
		}
	}
	next("first event") // the reader now waits before its next getMore
	mu.Lock()
	before := len(getMores)
	mu.Unlock()
	start := time.Now()
	for i := range n {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Database(db).Collection("other").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > wait/2 {
		t.Skipf("the %d inserts took %s, too close to the reader's wait of %s to tell", n+1, took, wait)
	}
	for i := range n {
		if it := next(fmt.Sprintf("event %d", i)); !it.More {
			t.Fatalf("event %d of the getMore's %d went to the publisher without More: the batch would be cut into several Kafka transactions", i, n+1)
		}
	}
	lastEvent := time.Now()
	select {
	case it := <-out:
		if it.Event != nil || it.More {
			t.Fatalf("after the batch's events: %+v, want an item without event and without More closing the unit", it)
		}
		if d := time.Since(lastEvent); d > wait/2 {
			t.Fatalf("the unit was closed %s after the batch's last event, not at the batch's end", d)
		}
	case <-ctx.Done():
		t.Fatal("the batch's unit was never closed")
	}
	mu.Lock()
	defer mu.Unlock()
	largest := 0
	for _, k := range getMores[before:] {
		largest = max(largest, k)
	}
	if largest != n+1 {
		t.Fatalf("getMore batches after the first event: %v, want the %d events in one", getMores[before:], n+1)
	}
}

// With include patterns that name their databases, the server sends only
// those databases' events and the renames into them: another database's
// writes never reach the reader (the stream is cluster-wide, and a busy
// cluster's other writes cost the source CPU for nothing), while a
// collection renamed into an included database from another one still is.
// Against the local stack (or SOURCE_URI).
func TestStreamAsksOnlyForIncludedDatabases(t *testing.T) {
	env := testenv.New(t)
	db := testenv.DBName(t)
	other := db + "_other"
	var mu sync.Mutex
	var foreign int // events of other in getMore replies
	cl := connectWatching(t, env.SourceURI, func(_ string, evs []bson.Raw) {
		for _, d := range evs {
			if d.Lookup("ns", "db").StringValue() == other && d.Lookup("operationType").StringValue() != "rename" {
				mu.Lock()
				foreign++
				mu.Unlock()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		_ = cl.Database(db).Drop(context.Background())
		_ = cl.Database(other).Drop(context.Background())
	})
	t0 := firstWriteTime(t, ctx, cl.Database(db).Collection("c"))
	filter, err := nsfilter.New([]string{db + ".*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Client: cl, Filter: filter, ShowExpandedEvents: true})
	out := make(chan checkpoint.Item, 1000)
	go func() { _ = s.Run(ctx, Start{T0: t0}, out) }()

	const n = 50
	for i := range n {
		if _, err := cl.Database(other).Collection("x").InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: other + ".x"}, {Key: "to", Value: db + ".moved"}}).Err(); err != nil {
		t.Fatalf("renaming %s.x into %s: %v", other, db, err)
	}
	var ops []string
	for renamed := false; !renamed; {
		select {
		case it := <-out:
			if it.Event == nil {
				continue
			}
			ops = append(ops, string(it.Event.Op))
			if it.Event.DDL != nil && it.Event.DDL.Target != nil && it.Event.DDL.Target.Coll == "moved" {
				renamed = true
			}
		case <-ctx.Done():
			t.Fatalf("the rename into %s never came (events: %v)", db, ops)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if foreign > 0 {
		t.Fatalf("the server sent %d events of %s, which the filter does not include", foreign, other)
	}
}

// connectWatching connects to uri with a command monitor that hands onBatch
// the documents of every change stream batch the server replies with (the
// aggregate's firstBatch, a getMore's nextBatch) and the command's name.
func connectWatching(t *testing.T, uri string, onBatch func(cmd string, evs []bson.Raw)) *mongo.Client {
	t.Helper()
	mon := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		field := map[string]string{"aggregate": "firstBatch", "getMore": "nextBatch"}[e.CommandName]
		if field == "" {
			return
		}
		b, ok := e.Reply.Lookup("cursor", field).ArrayOK()
		if !ok {
			return
		}
		vals, _ := b.Values()
		evs := make([]bson.Raw, 0, len(vals))
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				evs = append(evs, d)
			}
		}
		onBatch(e.CommandName, evs)
	}}
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

// firstWriteTime inserts {_id: -1} into coll and returns the write's
// cluster time: a T0 for a stream that sees every later write.
func firstWriteTime(t *testing.T, ctx context.Context, coll *mongo.Collection) bson.Timestamp {
	t.Helper()
	sess, err := coll.Database().Client().StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.EndSession(ctx)
	if _, err := coll.InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	t0 := sess.OperationTime()
	if t0 == nil {
		t.Fatal("no operation time")
	}
	return *t0
}
