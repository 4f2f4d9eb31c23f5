package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/testenv"
)

func seed(t *testing.T, c *mongo.Collection, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: "doc"}, {Key: "n", Value: int64(i * 7)}}
	}
	if _, err := c.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// TestVerifierFindsEveryKindOfDifference runs against the real source and
// destination servers: equal collections verify equal, and a missing, an
// extra, a changed and a field-reordered document are each reported.
func TestVerifierFindsEveryKindOfDifference(t *testing.T) {
	env := testenv.New(t)
	ctx := testenv.Context(t, 2*time.Minute)
	src, dst := env.Source(t), env.Dest(t)
	db := testenv.DBName(t)
	t.Cleanup(func() {
		_ = src.Database(db).Drop(context.Background())
		_ = dst.Database(db).Drop(context.Background())
	})
	sc, dc := src.Database(db).Collection("c"), dst.Database(db).Collection("c")
	seed(t, sc, 250)
	seed(t, dc, 250)
	pair := verify.Pair{SourceDB: db, SourceColl: "c", DestDB: db, DestColl: "c"}
	opts := verify.Options{RangeSize: 100}

	r := verify.Namespace(ctx, src, dst, pair, opts)
	if !r.Equal() || r.Ranges != 3 || r.SourceCount != 250 {
		t.Fatalf("equal collections: got %s (ranges %d), want equal over 3 ranges", r.Summary(), r.Ranges)
	}

	mustDo := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(dc.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(10)}}))
	mustDo(dc.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1000)}}))
	mustDo(dc.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(120)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(-1)}}}}))
	// Same values, other field order: must differ (byte-equal BSON is the
	// bar). Some servers keep the old field order on replace (a gap listed
	// in docs/testing.md); there the reordering cannot be set up.
	mustDo(dc.ReplaceOne(ctx, bson.D{{Key: "_id", Value: int32(200)}}, bson.D{{Key: "n", Value: int64(1400)}, {Key: "name", Value: "doc"}}))
	var replaced bson.Raw
	if err := dc.FindOne(ctx, bson.D{{Key: "_id", Value: int32(200)}}).Decode(&replaced); err != nil {
		t.Fatal(err)
	}
	reorders := replaced.Index(1).Key() == "n"

	r = verify.Namespace(ctx, src, dst, pair, opts)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	got := strings.Join([]string{strings.Join(r.Missing, ","), strings.Join(r.Extra, ","), strings.Join(r.Different, ",")}, "|")
	want := `{"$numberInt":"10"}|{"$numberInt":"1000"}|{"$numberInt":"120"},{"$numberInt":"200"}`
	if !reorders {
		t.Log("the destination server kept the old field order on replace (see docs/testing.md): the field-order difference is not checked here")
		want = `{"$numberInt":"10"}|{"$numberInt":"1000"}|{"$numberInt":"120"}`
	}
	if got != want || r.Equal() || r.DifferentRanges != 3 {
		t.Fatalf("got missing|extra|different = %s, %d differing ranges (%s); want %s, 3", got, r.DifferentRanges, r.Summary(), want)
	}

	mustDo(dc.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}}}))
	r = verify.Namespace(ctx, src, dst, pair, opts)
	if len(r.IndexDiffs) != 1 || !strings.Contains(r.IndexDiffs[0], "name_1 only in destination") {
		t.Fatalf("got index diffs %q, want name_1 only in destination", r.IndexDiffs)
	}
}

// TestVerifierResumesAfterTheLastRange checks that a run resumed after a
// recorded range compares only the documents after it.
func TestVerifierResumesAfterTheLastRange(t *testing.T) {
	env := testenv.New(t)
	ctx := testenv.Context(t, 2*time.Minute)
	src, dst := env.Source(t), env.Dest(t)
	db := testenv.DBName(t)
	t.Cleanup(func() {
		_ = src.Database(db).Drop(context.Background())
		_ = dst.Database(db).Drop(context.Background())
	})
	seed(t, src.Database(db).Collection("c"), 300)
	seed(t, dst.Database(db).Collection("c"), 300)
	pair := verify.Pair{SourceDB: db, SourceColl: "c", DestDB: db, DestColl: "c"}
	var ends []bson.RawValue
	r := verify.Namespace(ctx, src, dst, pair, verify.Options{RangeSize: 100, OnRange: func(_ verify.Pair, last bson.RawValue) { ends = append(ends, last) }})
	if !r.Equal() || len(ends) != 3 || ends[0].Int32() != 99 {
		t.Fatalf("got %s with range ends %v, want equal with ends 99, 199, 299", r.Summary(), ends)
	}
	// A difference before the resume point is not seen again; one after is.
	if _, err := dst.Database(db).Collection("c").DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(50)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Database(db).Collection("c").DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(250)}}); err != nil {
		t.Fatal(err)
	}
	r = verify.Namespace(ctx, src, dst, pair, verify.Options{RangeSize: 100, ResumeAfter: map[string]bson.RawValue{pair.String(): ends[1]}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.SourceCount != 100 || len(r.Missing) != 1 || r.Missing[0] != `{"$numberInt":"250"}` {
		t.Fatalf("resumed run got %s, want 100 source docs compared and only _id 250 missing", r.Summary())
	}
}
