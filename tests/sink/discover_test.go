package sink_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkFindsTopicCreatedAfterStart (issue 21, item 4): a sink started
// on a prefix with no topic yet (as it is when both services start
// together) applies the first record of a topic created after it started
// promptly, well inside the regular 5 s metadata refresh: while it knows no
// topic of its log it asks for them every consume.DiscoverInterval. Without
// that poll the record waited for the next refresh, 3.5-4 s here.
func TestSinkFindsTopicCreatedAfterStart(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	l := newLog(t, env, 4)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	ns := schema.Namespace{DB: db, Coll: "late"}

	runSink(t, sinkCfg(env, l, "g-"+db))
	// The sink's first metadata round found no topic of the prefix.
	time.Sleep(time.Second)

	created := time.Now()
	l.data(dataEv(t, schema.OpInsert, ns, int32(1), bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "late"}}))
	want := expect{}
	want.put(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "late"}})
	// Bound: well under the regular refresh (5 s) that found the topic
	// before, with room for group join and apply on a busy machine.
	const bound = 2500 * time.Millisecond
	waitEqual(t, dest, ns, want, 30*time.Second)
	if took := time.Since(created); took > bound {
		t.Fatalf("the document of a topic created after the sink started arrived %v after the topic, want ≤ %v (the sink found the topic only at a regular metadata refresh)", took.Round(time.Millisecond), bound)
	} else {
		t.Logf("the first document of the new topic arrived %v after it was created", took.Round(time.Millisecond))
	}
}
