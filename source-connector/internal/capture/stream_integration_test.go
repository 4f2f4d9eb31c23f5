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
// next getMore: the events written meanwhile come back in one getMore (and
// so go into one Kafka transaction), instead of a getMore per event.
// Against the local stack (or SOURCE_URI).
func TestBatchWaitGathersEventsInOneGetMore(t *testing.T) {
	env := testenv.New(t)
	var mu sync.Mutex
	db := testenv.DBName(t)
	// Events of db per getMore reply of the change stream (the stream is
	// cluster-wide: other clients' events are not counted).
	var getMores []int
	mon := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		if e.CommandName != "getMore" {
			return
		}
		b, ok := e.Reply.Lookup("cursor", "nextBatch").ArrayOK()
		if !ok {
			return
		}
		vals, _ := b.Values()
		k := 0
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok && d.Lookup("ns", "db").StringValue() == db {
				k++
			}
		}
		mu.Lock()
		getMores = append(getMores, k)
		mu.Unlock()
	}}
	cl, err := mongo.Connect(options.Client().ApplyURI(env.SourceURI).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coll := cl.Database(db).Collection("c")
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })

	// T0: the cluster time of a first write.
	sess, err := cl.StartSession()
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
	filter, err := nsfilter.New([]string{db + ".*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const wait, n = 3 * time.Second, 20
	s := New(Config{Client: cl, Filter: filter, BatchWait: wait})
	out := make(chan checkpoint.Item, 100)
	go func() { _ = s.Run(ctx, Start{T0: *t0}, out) }()
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
	if took := time.Since(start); took > wait/2 {
		t.Skipf("the %d inserts took %s, too close to the reader's wait of %s to tell", n, took, wait)
	}
	for i := range n {
		next(fmt.Sprintf("event %d", i))
	}
	mu.Lock()
	defer mu.Unlock()
	largest := 0
	for _, k := range getMores[before:] {
		largest = max(largest, k)
	}
	if largest != n {
		t.Fatalf("getMore batches after the first event: %v, want the %d events in one", getMores[before:], n)
	}
}
