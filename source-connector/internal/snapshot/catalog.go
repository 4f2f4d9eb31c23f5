package snapshot

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// Collection is one namespace to snapshot, with its metadata.
type Collection struct {
	NS      schema.Namespace
	Type    string   // checkpoint.TypeCollection, TypeView or TypeTimeseries
	Options bson.Raw // listCollections options (viewOn/pipeline for views)
	// IDIndex is listCollections' idIndex spec, when reported.
	IDIndex bson.Raw
	Indexes bson.Raw // {indexes: [spec, ...]}; nil for views
	// ShardKey is the shard key pattern when the collection is sharded.
	ShardKey       bson.Raw
	EstimatedDocs  int64
	EstimatedBytes int64
}

// ListCollections lists the namespaces f selects, sorted, with options,
// index specs and size estimates.
func ListCollections(ctx context.Context, cl *mongo.Client, f *nsfilter.Filter, sharded bool) ([]Collection, error) {
	dbs, err := cl.ListDatabaseNames(ctx, bson.D{}, options.ListDatabases().SetAuthorizedDatabases(true))
	if err != nil {
		return nil, fmt.Errorf("listing databases: %w", err)
	}
	sort.Strings(dbs)
	var out []Collection
	for _, db := range dbs {
		if !f.MayMatchDB(db) {
			continue
		}
		cur, err := cl.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("listing collections of %s: %w", db, err)
		}
		var specs []struct {
			Name    string   `bson:"name"`
			Type    string   `bson:"type"`
			Options bson.Raw `bson:"options"`
			IDIndex bson.Raw `bson:"idIndex"`
		}
		if err := cur.All(ctx, &specs); err != nil {
			return nil, fmt.Errorf("listing collections of %s: %w", db, err)
		}
		sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
		for _, s := range specs {
			if !f.Match(db, s.Name) {
				continue
			}
			c := Collection{NS: schema.Namespace{DB: db, Coll: s.Name}, Type: s.Type, Options: s.Options, IDIndex: s.IDIndex}
			if c.Type == "" {
				c.Type = checkpoint.TypeCollection
			}
			if len(c.Options) == 0 {
				c.Options = emptyDoc
			}
			if c.Type != checkpoint.TypeView {
				if err := describe(ctx, cl, &c, sharded); err != nil {
					return nil, err
				}
			}
			out = append(out, c)
		}
	}
	return out, nil
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

func describe(ctx context.Context, cl *mongo.Client, c *Collection, sharded bool) error {
	coll := cl.Database(c.NS.DB).Collection(c.NS.Coll)
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("listing indexes of %s: %w", c.NS, err)
	}
	idx, arr := bsoncore.AppendArrayStart(nil)
	n := 0
	for cur.Next(ctx) {
		arr = bsoncore.AppendDocumentElement(arr, fmt.Sprint(n), cur.Current)
		n++
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("listing indexes of %s: %w", c.NS, err)
	}
	_ = cur.Close(ctx)
	arr, _ = bsoncore.AppendArrayEnd(arr, idx)
	didx, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendArrayElement(doc, "indexes", arr)
	doc, _ = bsoncore.AppendDocumentEnd(doc, didx)
	c.Indexes = bson.Raw(doc)

	if c.EstimatedDocs, err = coll.EstimatedDocumentCount(ctx); err != nil {
		return fmt.Errorf("counting documents of %s: %w", c.NS, err)
	}
	// Data size (uncompressed BSON) for progress; optional.
	if cur, err := coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$collStats", Value: bson.D{{Key: "storageStats", Value: bson.D{}}}}}}); err == nil {
		if cur.Next(ctx) {
			if v, err := cur.Current.LookupErr("storageStats", "size"); err == nil {
				if s, ok := v.AsInt64OK(); ok {
					c.EstimatedBytes = s
				}
			}
		}
		_ = cur.Close(ctx)
	}
	if sharded {
		var res struct {
			Key bson.Raw `bson:"key"`
		}
		err := cl.Database("config").Collection("collections").FindOne(ctx, bson.D{{Key: "_id", Value: c.NS.String()}}).Decode(&res)
		switch {
		case err == nil:
			c.ShardKey = res.Key
		case errors.Is(err, mongo.ErrNoDocuments):
		default:
			return fmt.Errorf("reading the shard key of %s from config.collections: %w", c.NS, err)
		}
	}
	return nil
}
