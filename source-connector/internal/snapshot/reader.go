package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// Reader reads snapshot ranges.
type Reader struct {
	Client *mongo.Client
	// T0 is the cluster time every read happens at or after.
	T0 bson.Timestamp
	// Parallelism bounds the concurrent range readers (default 4).
	Parallelism int
	// BatchSize is the find batch size (0: server default).
	BatchSize int32
	Epoch     int64
	Source    string
	// ShardKeys maps "db.coll" to the shard key pattern of sharded
	// collections: their document keys carry the shard key fields, as the
	// change stream's documentKey does, so snapshot and change records of a
	// document share a key and a partition.
	ShardKeys map[string]bson.Raw
	Logger    *slog.Logger
	// Retry is the policy for transient read errors; a retried range
	// continues after its last handed-over document.
	Retry retry.Policy
	// OnRetry is told of each retried error.
	OnRetry func(err error)
	// Encode keys and encodes a snapshot event into its record, appending
	// the value to dst (required: Publisher.EncodeDoc). The readers encode
	// straight from the driver's buffer, in parallel, so a document is
	// copied once. Encode must not keep the event: the readers reuse it.
	Encode func(dst []byte, ev *schema.Event) (checkpoint.Doc, []byte, error)

	arenas chan []byte // chunk arenas whose transaction committed (made by Run)
}

// A reader hands over at most chunkMaxDocs documents at once (a driver
// batch is cut there), with one checkpoint; a restart re-reads at most one
// chunk of a range. The chunk's record values share one arena of
// arenaBytes, recycled once their transaction commits: allocating and
// collecting a buffer per record cost the connector a fifth of its CPU.
//
// Committed arenas wait in a free list of arenasKept, not a sync.Pool: the
// driver's 1 MiB reply buffers make the collector run often, every cycle
// emptied the pool, and a fresh arena is 2 MiB to zero (4-5% of the
// connector's CPU in a snapshot profile). The list is the Reader's, so it
// goes with the snapshot.
const (
	chunkMaxDocs = 1024
	arenaBytes   = 2 << 20
	arenasKept   = 32
)

// envelopeBytes bounds what a record value adds to its document (the
// envelope's other fields), for the arena's room check.
const envelopeBytes = 1024

// arena returns an empty arena, recycled when one is free.
func (r *Reader) arena() []byte {
	select {
	case a := <-r.arenas:
		return a[:0]
	default:
		return make([]byte, 0, arenaBytes)
	}
}

// recycler returns the Item.Recycle of a chunk encoded into a. Arenas
// that grew for a large document are left to the garbage collector.
func (r *Reader) recycler(a []byte) func() {
	return func() {
		if cap(a) <= arenaBytes {
			select {
			case r.arenas <- a:
			default: // the list is full: left to the garbage collector
			}
		}
	}
}

// Run reads every range not done and sends its documents to out, each with
// the range checkpoint that covers it, then a done checkpoint per range. It
// returns when all ranges are read (nil), or on the first error.
func (r *Reader) Run(ctx context.Context, ranges []*checkpoint.RangeState, out chan<- checkpoint.Item) error {
	if r.Encode == nil {
		return errors.New("snapshot: Reader.Encode is not set")
	}
	if r.arenas == nil {
		r.arenas = make(chan []byte, arenasKept)
	}
	par := r.Parallelism
	if par <= 0 {
		par = 4
	}
	work := make(chan *checkpoint.RangeState)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		for _, rg := range ranges {
			if rg.Done {
				continue
			}
			select {
			case work <- rg:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for i := 0; i < par; i++ {
		g.Go(func() error {
			sess, err := r.Client.StartSession(options.Session().SetCausalConsistency(true))
			if err != nil {
				return fmt.Errorf("starting a session for snapshot reads: %w", err)
			}
			defer sess.EndSession(context.WithoutCancel(ctx))
			t0 := r.T0
			if err := sess.AdvanceOperationTime(&t0); err != nil {
				return fmt.Errorf("advancing the session to T0: %w", err)
			}
			sctx := mongo.NewSessionContext(ctx, sess)
			for rg := range work {
				if err := r.readRange(sctx, rg, out); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// readRange reads one range, retrying transient errors from its last
// handed-over document.
func (r *Reader) readRange(ctx context.Context, rg *checkpoint.RangeState, out chan<- checkpoint.Item) error {
	cur := *rg // progress of this reader; items carry copies
	pol := r.Retry
	if pol.Initial == 0 {
		pol = retry.Default
	}
	pol.OnRetry = func(attempt int, err error) {
		if r.OnRetry != nil {
			r.OnRetry(err)
		}
		if r.Logger != nil {
			r.Logger.Warn("snapshot read failed; retrying from the last document read", "ns", rg.NS, "range", rg.ID, "attempt", attempt, "err", err)
		}
	}
	// A read that handed documents over before it failed moved forward: the
	// range is not stuck, so the retry budget starts over (a long range on a
	// flaky network would otherwise fail the snapshot after ten drops however
	// much each attempt copied).
	// (A natural-order range starts over from its first document: only
	// getting further than any attempt before counts.)
	furthest := cur.Docs
	pol.Progressed = func() bool {
		if cur.Docs <= furthest {
			return false
		}
		furthest = cur.Docs
		return true
	}
	// A cursor the server lost (CursorNotFound) is no failure of the read:
	// a new one continues from the last document handed over.
	retryable := func(err error) bool { return mongox.IsTransient(err) || mongox.IsCursorNotFound(err) }
	err := retry.Do(ctx, pol, retryable, func(ctx context.Context) error {
		if cur.Natural && cur.Docs > 0 && cur.Last == nil {
			// Natural-order ranges cannot continue: start over.
			cur.Docs, cur.Bytes = 0, 0
		}
		return r.scan(ctx, &cur, out)
	})
	if err != nil {
		return fmt.Errorf("reading snapshot range %d of %s: %w", rg.ID, rg.NS, err)
	}
	done := cur
	done.Done = true
	select {
	case out <- checkpoint.Item{State: []checkpoint.StateUpdate{{Key: done.Key(), Value: &done}}}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Reader) scan(ctx context.Context, cur *checkpoint.RangeState, out chan<- checkpoint.Item) error {
	coll := r.Client.Database(cur.DB).Collection(cur.Coll, options.Collection().SetReadConcern(readconcern.Majority()))
	opts := options.Find()
	if r.BatchSize > 0 {
		opts.SetBatchSize(r.BatchSize)
	}
	var skip bson.Raw // the checkpointed last document: min() returns it again
	if !cur.Natural {
		opts.SetHint(bson.D{{Key: "_id", Value: 1}})
		opts.SetSort(bson.D{{Key: "_id", Value: 1}})
		switch {
		case cur.Last != nil:
			opts.SetMin(cur.Last)
			skip = cur.Last
		case cur.Min != nil:
			opts.SetMin(cur.Min)
		}
		if cur.Max != nil {
			opts.SetMax(cur.Max)
		}
	} else {
		cur.Last = nil
	}
	c, err := coll.Find(ctx, bson.D{}, opts)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	ns := schema.Namespace{DB: cur.DB, Coll: cur.Coll}
	shardKey := r.ShardKeys[cur.NS]
	stateKey := cur.Key()
	// Documents are handed over a chunk at a time (a driver batch, at most
	// chunkMaxDocs or what fits its arena) with the one checkpoint after its last
	// document: a handover and a checkpoint per document cost the connector
	// more than the encoding. cur advances only when a chunk is handed
	// over, so a retried scan continues after the last document handed over.
	next := *cur
	ev := schema.Event{Op: schema.OpSnapshot, NS: ns, ClusterTime: r.T0, Epoch: r.Epoch, Source: r.Source}
	var docs []checkpoint.Doc
	arena := r.arena()
	handOver := func() error {
		if len(docs) == 0 {
			return nil
		}
		ck := next
		label := ev
		label.DocumentKey, label.FullDocument = nil, nil
		it := checkpoint.Item{Event: &label, Docs: docs, State: []checkpoint.StateUpdate{{Key: stateKey, Value: &ck}},
			Recycle: r.recycler(arena)}
		select {
		case out <- it:
		case <-ctx.Done():
			return ctx.Err()
		}
		*cur = next
		docs, arena = make([]checkpoint.Doc, 0, len(docs)), r.arena()
		return nil
	}
	first := true
	for c.Next(ctx) {
		doc := c.Current // valid until the next Next: encoded below, not kept
		id, err := doc.LookupErr("_id")
		if err != nil {
			return fmt.Errorf("a document of %s has no _id", cur.NS)
		}
		idDoc := IDDoc(id)
		if first && skip != nil && bytes.Equal(idDoc, skip) {
			first = false
			continue
		}
		first = false
		key := idDoc
		if len(shardKey) > 0 {
			key = DocumentKey(doc, shardKey, id)
		}
		if cap(arena)-len(arena) < len(doc)+envelopeBytes {
			// The arena is full: hand the chunk over first.
			if err := handOver(); err != nil {
				return err
			}
		}
		ev.DocumentKey, ev.FullDocument = key, doc
		d, grown, err := r.Encode(arena, &ev)
		if err != nil {
			return err
		}
		arena = grown
		docs = append(docs, d)
		next.Docs++
		next.Bytes += int64(len(doc))
		if !next.Natural {
			next.Last = idDoc
		}
		if c.RemainingBatchLength() == 0 || len(docs) >= chunkMaxDocs {
			if err := handOver(); err != nil {
				return err
			}
		}
	}
	if err := c.Err(); err != nil {
		return err
	}
	return handOver()
}

// IDDoc returns the document {_id: v}.
func IDDoc(v bson.RawValue) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(v.Value)+12))
	b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}

// DocumentKey builds the change stream's documentKey of doc in a sharded
// collection: the shard key fields in shard key order (dotted paths keep
// their dotted name; missing fields are left out), then _id unless the shard
// key has it.
func DocumentKey(doc, shardKey bson.Raw, id bson.RawValue) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(nil)
	hasID := false
	elems, _ := shardKey.Elements()
	for _, e := range elems {
		path := e.Key()
		if path == "_id" {
			hasID = true
		}
		v, err := doc.LookupErr(strings.Split(path, ".")...)
		if err != nil {
			continue
		}
		b = bsoncore.AppendValueElement(b, path, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	if !hasID {
		b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}
