package mongoshim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestCursorBatches: a result of 100,000 documents of 1 KiB comes through
// find and aggregate as MongoDB serves it — a first batch of 101 documents
// (or batchSize; 0 gives an empty one with an open cursor), every further
// batch through getMore, none over 16 MiB of documents — and a real client
// reads all of it through both commands. (mongo-java-server alone answers
// the aggregate with all 100 MB in one firstBatch.)
func TestCursorBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 100 MB")
	}
	cl := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := dbName(t)
	coll := cl.Database(db).Collection("big")
	t.Cleanup(func() { _ = cl.Database(db).Drop(context.Background()) })
	const total, pad = 100_000, 1000
	payload := strings.Repeat("x", pad)
	for i := 0; i < total; i += 5000 {
		docs := make([]any, 0, 5000)
		for j := i; j < i+5000; j++ {
			docs = append(docs, bson.D{{Key: "_id", Value: int32(j)}, {Key: "p", Value: payload}})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	run := func(cmd bson.D) bson.Raw {
		t.Helper()
		r, err := cl.Database(db).RunCommand(ctx, cmd).Raw()
		if err != nil {
			t.Fatalf("%v: %v", cmd[0], err)
		}
		return r
	}
	batch := func(r bson.Raw, key string) (int, int64) {
		vals, _ := r.Lookup("cursor", key).Array().Values()
		return len(vals), r.Lookup("cursor", "id").Int64()
	}
	// drain follows a cursor with getMore (without batchSize: as many as
	// fit) and checks every reply's size.
	drain := func(what string, first int, id int64) {
		t.Helper()
		n, replies := first, 0
		for id != 0 {
			r := run(bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "big"}})
			var got int
			got, id = batch(r, "nextBatch")
			replies++
			// MongoDB's rule: the documents of a batch add up to at most
			// 16 MiB (the reply adds the array's index keys around them)
			docBytes := 0
			vals, _ := r.Lookup("cursor", "nextBatch").Array().Values()
			for _, v := range vals {
				docBytes += len(v.Value)
			}
			if docBytes > 16*1024*1024 {
				t.Fatalf("%s: a getMore batch of %d bytes of documents (> 16 MiB)", what, docBytes)
			}
			if docBytes < 15*1024*1024 && id != 0 {
				t.Fatalf("%s: a getMore batch of only %d bytes of documents with more to come: batches are filled up to 16 MiB", what, docBytes)
			}
			if got == 0 && id != 0 {
				t.Fatalf("%s: an empty getMore batch with the cursor still open", what)
			}
			n += got
		}
		if n != total {
			t.Errorf("%s: %d documents in all, want %d", what, n, total)
		}
		// 100 MB in at most 16 MiB per reply: at least 6 getMores, and not
		// one per 101 documents either
		if replies < 6 || replies > 20 {
			t.Errorf("%s: %d getMore replies for ~100 MB, want batches of up to 16 MiB (6-20)", what, replies)
		}
	}

	for _, c := range []struct {
		what  string
		cmd   bson.D
		first int
	}{
		{"find", bson.D{{Key: "find", Value: "big"}}, 101},
		{"find batchSize 500", bson.D{{Key: "find", Value: "big"}, {Key: "batchSize", Value: 500}}, 500},
		{"find batchSize 0", bson.D{{Key: "find", Value: "big"}, {Key: "batchSize", Value: 0}}, 0},
		{"aggregate", bson.D{{Key: "aggregate", Value: "big"}, {Key: "pipeline", Value: bson.A{}}, {Key: "cursor", Value: bson.D{}}}, 101},
		{"aggregate batchSize 0", bson.D{{Key: "aggregate", Value: "big"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{}}}}}, {Key: "cursor", Value: bson.D{{Key: "batchSize", Value: 0}}}}, 0},
	} {
		r := run(c.cmd)
		got, id := batch(r, "firstBatch")
		if got != c.first || id == 0 {
			t.Errorf("%s: first batch of %d documents, cursor id %d; want %d and an open cursor", c.what, got, id, c.first)
			continue
		}
		drain(c.what, got, id)
	}

	// a real client through both commands
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	countAll(t, ctx, "driver find", cur, total)
	acur, err := coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$project", Value: bson.D{{Key: "p", Value: 1}}}}}, options.Aggregate().SetBatchSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	countAll(t, ctx, "driver aggregate", acur, total)

	// a result that ends within the first batch closes the cursor (id 0)
	r := run(bson.D{{Key: "find", Value: "big"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 10}}}}}})
	if got, id := batch(r, "firstBatch"); got != 10 || id != 0 {
		t.Errorf("small find: %d documents, cursor id %d; want 10 and 0", got, id)
	}
}

func countAll(t *testing.T, ctx context.Context, what string, cur *mongo.Cursor, want int) {
	t.Helper()
	defer cur.Close(ctx)
	seen := make(map[int32]bool, want)
	for cur.Next(ctx) {
		seen[cur.Current.Lookup("_id").Int32()] = true
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(seen) != want {
		t.Errorf("%s: %d distinct documents, want %d", what, len(seen), want)
	}
}
