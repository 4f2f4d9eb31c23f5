package snapshot

import (
	"bytes"
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// MaxRanges caps the ranges of one collection.
const MaxRanges = 1024

// samplesPerRange oversamples $sample so that boundaries are near quantiles.
const samplesPerRange = 20

// PlanRanges splits c into ranges of about rangeDocs documents, using
// boundaries from a sorted $sample of _id values. A small collection, a time
// series collection and a view get one range (a view's range is marked done).
func PlanRanges(ctx context.Context, cl *mongo.Client, c Collection, rangeDocs int64) ([]*checkpoint.RangeState, error) {
	base := checkpoint.RangeState{NS: c.NS.String(), DB: c.NS.DB, Coll: c.NS.Coll}
	switch c.Type {
	case checkpoint.TypeView:
		return nil, nil
	case checkpoint.TypeTimeseries:
		r := base
		r.Natural = true
		return []*checkpoint.RangeState{&r}, nil
	}
	n := int64(1)
	if rangeDocs > 0 {
		n = (c.EstimatedDocs + rangeDocs - 1) / rangeDocs
	}
	if n > MaxRanges {
		n = MaxRanges
	}
	var bounds []bson.RawValue
	if n > 1 {
		// The sample is a read that can simply be taken again: a dropped
		// connection or a retryable server error does not end the snapshot.
		var ids []bson.RawValue
		err := retry.Do(ctx, retry.Default, func(err error) bool { return mongox.IsTransient(err) || mongox.IsCursorNotFound(err) },
			func(ctx context.Context) (err error) {
				ids, err = sampleIDs(ctx, cl, c, n*samplesPerRange)
				return err
			})
		if err != nil {
			return nil, fmt.Errorf("sampling _id values of %s: %w", c.NS, err)
		}
		bounds = Boundaries(ids, int(n))
	}
	return Ranges(base, bounds), nil
}

// sampleIDs reads a sorted $sample of size _id values of c.
func sampleIDs(ctx context.Context, cl *mongo.Client, c Collection, size int64) ([]bson.RawValue, error) {
	cur, err := cl.Database(c.NS.DB).Collection(c.NS.Coll).Aggregate(ctx, mongo.Pipeline{
		{{Key: "$sample", Value: bson.D{{Key: "size", Value: size}}}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	})
	if err != nil {
		return nil, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []bson.RawValue
	for cur.Next(ctx) {
		v, err := cur.Current.LookupErr("_id")
		if err != nil {
			continue
		}
		ids = append(ids, bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)})
	}
	return ids, cur.Err()
}

// Boundaries picks up to n-1 split points from sorted sample values,
// dropping repeats.
func Boundaries(sorted []bson.RawValue, n int) []bson.RawValue {
	if n <= 1 || len(sorted) == 0 {
		return nil
	}
	var out []bson.RawValue
	for k := 1; k < n; k++ {
		v := sorted[k*len(sorted)/n]
		if len(out) > 0 && equalValue(out[len(out)-1], v) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// Ranges turns split points into ranges: [MinKey, b1), [b1, b2), …, [bn, MaxKey].
func Ranges(base checkpoint.RangeState, bounds []bson.RawValue) []*checkpoint.RangeState {
	out := make([]*checkpoint.RangeState, 0, len(bounds)+1)
	var lo bson.Raw
	for i := 0; i <= len(bounds); i++ {
		r := base
		r.ID = i
		r.Min = lo
		if i < len(bounds) {
			r.Max = IDDoc(bounds[i])
			lo = r.Max
		}
		out = append(out, &r)
	}
	return out
}

func equalValue(a, b bson.RawValue) bool { return a.Type == b.Type && bytes.Equal(a.Value, b.Value) }
