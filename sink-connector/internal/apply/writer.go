package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
)

// Writer applies batches to the destination with unordered bulk writes.
// It is safe for concurrent use; each Flush call is independent.
type Writer struct {
	client  *mongo.Client
	wc      *writeconcern.WriteConcern
	metrics *metrics.Metrics
	log     *slog.Logger
	retry   retry.Policy
	limit   *throttle.Limiter // nil: unlimited
}

// SetLimiter paces the writes (--max-write-rate): each bulk write waits
// for its documents and bytes at the limiter's rate. Call before the first
// Flush; the limiter's rate may change at any time.
func (w *Writer) SetLimiter(l *throttle.Limiter) { w.limit = l }

// pace waits until the writes ws may go at the write throttle.
func (w *Writer) pace(ctx context.Context, ws []write) error {
	if w.limit == nil {
		return nil
	}
	var bytes int
	for _, wr := range ws {
		bytes += len(wr.doc)
	}
	return w.limit.Wait(ctx, len(ws), bytes)
}

// NewWriter returns a Writer on client writing with wc.
func NewWriter(client *mongo.Client, wc *writeconcern.WriteConcern, m *metrics.Metrics, log *slog.Logger) *Writer {
	w := &Writer{client: client, wc: wc, metrics: m, log: log, retry: retry.Default}
	w.retry.OnRetry = func(attempt int, err error) {
		m.Retries.WithLabelValues("mongo").Inc()
		log.Warn("retrying destination write", "attempt", attempt, "err", err)
	}
	return w
}

// Result is the outcome of a Flush.
type Result struct {
	// Failures are events the destination rejected (dead letters). Every
	// other event of the batch is applied.
	Failures []Failure
	// Missing counts delta updates whose document was not in the destination.
	Missing int
}

// Flush applies every pending write of the batches bs and returns when the
// destination has acknowledged them with the writer's write concern (so that
// offsets up to each batch's last record may be committed), or with an error
// when a failure persisted through the retries: nothing is then known to be
// applied. Per document rejections are returned in Result.Failures, not as an
// error; their Ref names the record, so a caller that merged the batches of
// several partitions routes each back to its partition. Flush does not reset
// the batches.
//
// Several batches go in the same bulk writes: generation i of every batch
// (mergedGenerations) in one unordered bulk write per namespace. That is
// only correct when no key has pending writes in two of the batches, which
// holds for the batches of different partitions of one topic (a key always
// goes to the same partition): the sink merges those (consume's flush
// group) so that the events one fetch brings for several partitions cost
// one destination round trip, not one per partition.
func (w *Writer) Flush(ctx context.Context, bs ...*Batch) (Result, error) {
	var res Result
	for _, b := range bs {
		for _, op := range b.noops() {
			w.metrics.Applied.WithLabelValues(string(op)).Inc()
		}
	}
	for _, gen := range mergedGenerations(bs) {
		byNS := map[schema.Namespace][]write{}
		var order []schema.Namespace
		for _, wr := range gen {
			if _, ok := byNS[wr.ns]; !ok {
				order = append(order, wr.ns)
			}
			byNS[wr.ns] = append(byNS[wr.ns], wr)
		}
		for _, ns := range order {
			if err := w.round(ctx, ns, byNS[ns], &res, 0); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// mergedGenerations is the generations of batches with disjoint keys,
// merged: round i holds the i-th pending write of every key of every
// batch, so each key's writes stay in order and keys within a round stay
// disjoint.
func mergedGenerations(bs []*Batch) [][]write {
	if len(bs) == 1 {
		return bs[0].generations()
	}
	var gens [][]write
	for _, b := range bs {
		for i, gen := range b.generations() {
			if i == len(gens) {
				gens = append(gens, nil)
			}
			gens[i] = append(gens[i], gen...)
		}
	}
	return gens
}

func (w *Writer) coll(ns schema.Namespace) *mongo.Collection {
	return w.client.Database(ns.DB, options.Database().SetWriteConcern(w.wc)).Collection(ns.Coll)
}

func models(ws []write) []mongo.WriteModel {
	ms := make([]mongo.WriteModel, len(ws))
	for i, wr := range ws {
		switch wr.kind {
		case wInsert:
			ms[i] = mongo.NewInsertOneModel().SetDocument(wr.doc)
		case wReplace:
			ms[i] = mongo.NewReplaceOneModel().SetFilter(wr.key).SetReplacement(wr.doc).SetUpsert(true)
		case wUpdate:
			ms[i] = mongo.NewUpdateOneModel().SetFilter(wr.key).SetUpdate(wr.doc)
		case wDelete:
			ms[i] = mongo.NewDeleteOneModel().SetFilter(wr.key)
		}
	}
	return ms
}

// mixed applies ws (disjoint keys) in one round: the inserts with raw
// insert commands (insertRaw: the driver's BulkWrite re-encodes every
// document), the other writes with one unordered BulkWrite. The keys are
// disjoint, so the two commands may go in either order. Errors come back as
// one mongo.BulkWriteException with indexes into ws; the result counts the
// BulkWrite's writes only (count reads it for updates and replaces).
func (w *Writer) mixed(ctx context.Context, coll *mongo.Collection, ns schema.Namespace, ws []write) (*mongo.BulkWriteResult, error) {
	var ins, rest []write
	var insAt, restAt []int // index in ws
	for i, wr := range ws {
		if wr.kind == wInsert {
			ins, insAt = append(ins, wr), append(insAt, i)
		} else {
			rest, restAt = append(rest, wr), append(restAt, i)
		}
	}
	switch {
	case len(rest) == 0:
		return nil, w.insertRaw(ctx, ns, ws)
	case len(ins) == 0:
		return coll.BulkWrite(ctx, models(ws), options.BulkWrite().SetOrdered(false))
	}
	var (
		wes []mongo.BulkWriteError
		wce *mongo.WriteConcernError
	)
	// merge keeps the per-write errors of one part (reindexed into ws) and
	// returns any other error.
	merge := func(err error, at []int) error {
		var bwe mongo.BulkWriteException
		if err == nil {
			return nil
		}
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 && bwe.WriteConcernError == nil {
			return err
		}
		for _, we := range bwe.WriteErrors {
			if we.Index >= 0 && we.Index < len(at) {
				we.Index = at[we.Index]
			} else {
				we.Index = -1 // round reports it as out of range
			}
			wes = append(wes, we)
		}
		if bwe.WriteConcernError != nil {
			wce = bwe.WriteConcernError
		}
		return nil
	}
	if err := merge(w.insertRaw(ctx, ns, ins), insAt); err != nil {
		return nil, err
	}
	br, err := coll.BulkWrite(ctx, models(rest), options.BulkWrite().SetOrdered(false))
	if err := merge(err, restAt); err != nil {
		return nil, err
	}
	if len(wes) > 0 || wce != nil {
		return br, mongo.BulkWriteException{WriteErrors: wes, WriteConcernError: wce}
	}
	return br, nil
}

// bulkTransient: worth retrying the whole round. A bulk write exception with
// only a write concern error is (the writes are idempotent).
func bulkTransient(err error) bool {
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) == 0 && bwe.WriteConcernError != nil && !errors.Is(err, context.Canceled) {
		return true
	}
	return mongox.IsTransient(err)
}

// round applies writes of disjoint keys in one unordered bulk write (its
// inserts in unordered insert commands built from the raw documents: mixed).
func (w *Writer) round(ctx context.Context, ns schema.Namespace, ws []write, res *Result, depth int) error {
	if len(ws) == 0 {
		return nil
	}
	coll := w.coll(ns)
	if err := w.pace(ctx, ws); err != nil {
		return err
	}
	var br *mongo.BulkWriteResult
	err := retry.Do(ctx, w.retry, bulkTransient, func(ctx context.Context) error {
		start := time.Now()
		var err error
		br, err = w.mixed(ctx, coll, ns, ws)
		w.metrics.BulkSeconds.WithLabelValues("data").Observe(time.Since(start).Seconds())
		return err
	})
	w.metrics.BulkDocs.Observe(float64(len(ws)))
	if err == nil {
		w.count(ws, nil, br, res)
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 {
		if ctx.Err() != nil || bulkTransient(err) || len(ws) == 1 {
			if len(ws) == 1 && !bulkTransient(err) && ctx.Err() == nil && !mongo.IsNetworkError(err) {
				res.Failures = append(res.Failures, Failure{Ref: ws[0].ref, Err: fmt.Errorf("%w: %s of %s: %w", ErrRejected, ws[0].kind, ns, err)})
				return nil
			}
			return fmt.Errorf("bulk write of %d documents to %s: %w", len(ws), ns, err)
		}
		// The whole command failed (e.g. a document the driver will not
		// send): apply the writes one by one to isolate the bad ones.
		w.log.Warn("bulk write failed as a whole; applying its writes one by one", "ns", ns.String(), "writes", len(ws), "err", err)
		for i := range ws {
			if err := w.round(ctx, ns, ws[i:i+1], res, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	// Per-write errors: everything else was applied.
	failed := make(map[int]bool, len(bwe.WriteErrors))
	var again []write
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(ws) {
			return fmt.Errorf("bulk write to %s: write error with index %d out of range: %w", ns, we.Index, err)
		}
		wr := ws[we.Index]
		failed[we.Index] = true
		switch {
		case mongox.IsDuplicateKey(we) && wr.kind == wInsert:
			// Snapshot fast path hit an existing document: replace it.
			wr.kind = wReplace
			again = append(again, wr)
		case mongox.IsDuplicateKey(we) && wr.kind == wReplace && depth < 3:
			// Concurrent upserts of one key race on the unique index; retry.
			// A key with shard key fields whose _id belongs to a document
			// with other shard key values: the document's shard key changed
			// at the source, which the log holds as a delete and an insert
			// under two keys, in two partitions, applied in either order.
			// The newer state replaces the document by _id; the delete,
			// filtered by the old key, then matches nothing.
			if id, ok := idOnly(wr.key); ok {
				wr.key = id
			}
			again = append(again, wr)
		default:
			res.Failures = append(res.Failures, Failure{Ref: wr.ref,
				Err: fmt.Errorf("%w: %s of %s key %s: code %d: %w", ErrRejected, wr.kind, ns, wr.key, we.Code, we.WriteError)})
		}
	}
	w.count(ws, failed, br, res)
	return w.round(ctx, ns, again, res, depth+1)
}

func (w *Writer) count(ws []write, failed map[int]bool, br *mongo.BulkWriteResult, res *Result) {
	var updates, replaces int64
	for i, wr := range ws {
		if failed[i] {
			continue
		}
		switch wr.kind {
		case wUpdate:
			updates++
		case wReplace:
			replaces++
		}
		for _, op := range wr.events {
			w.metrics.Applied.WithLabelValues(string(op)).Inc()
		}
	}
	if br != nil && updates > 0 {
		// Each replace either matched or upserted; the rest of the matches
		// are updates.
		matchedUpdates := br.MatchedCount - (replaces - br.UpsertedCount)
		if missing := updates - matchedUpdates; missing > 0 {
			res.Missing += int(missing)
			w.metrics.MissingUpdates.Add(float64(missing))
		}
	}
}

// idOnly returns {_id} of a document key that has more fields (a sharded
// collection's key).
func idOnly(key bson.Raw) (bson.Raw, bool) {
	elems, err := key.Elements()
	if err != nil || len(elems) < 2 {
		return nil, false
	}
	for _, e := range elems {
		if e.Key() == "_id" {
			return bson.Raw(bsoncore.BuildDocument(nil, e)), true
		}
	}
	return nil, false
}

// FlushTxn applies every pending write of b in one multi-document
// transaction (the destination must be a replica set or a sharded cluster),
// committed with the writer's write concern: a reader of the destination
// sees all of b or none of it. Transient failures retry the whole
// transaction (its writes are idempotent). When the destination rejects a
// write the transaction is aborted and the error wraps ErrRejected: the
// caller then applies the events one by one (Flush), which isolates the bad
// one. Flush's snapshot insert fast path is not used here (a duplicate key
// would abort the transaction): inserts are replace-upserts.
func (w *Writer) FlushTxn(ctx context.Context, b *Batch) (Result, error) {
	type done struct {
		ws []write
		br *mongo.BulkWriteResult
	}
	var rounds []done
	// Paced once for the whole transaction, outside its retries.
	var all []write
	for _, gen := range b.generations() {
		all = append(all, gen...)
	}
	if err := w.pace(ctx, all); err != nil {
		return Result{}, err
	}
	body := func(sc context.Context) (any, error) {
		rounds = rounds[:0]
		for _, gen := range b.generations() {
			byNS := map[schema.Namespace][]write{}
			var order []schema.Namespace
			for _, wr := range gen {
				if wr.kind == wInsert {
					wr.kind = wReplace
				}
				if _, ok := byNS[wr.ns]; !ok {
					order = append(order, wr.ns)
				}
				byNS[wr.ns] = append(byNS[wr.ns], wr)
			}
			for _, ns := range order {
				ws := byNS[ns]
				start := time.Now()
				// The collection handle carries no write concern: inside a
				// transaction only the commit takes one.
				br, err := w.client.Database(ns.DB).Collection(ns.Coll).BulkWrite(sc, models(ws), options.BulkWrite().SetOrdered(true))
				w.metrics.BulkSeconds.WithLabelValues("txn").Observe(time.Since(start).Seconds())
				if err != nil {
					var bwe mongo.BulkWriteException
					if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
						we := bwe.WriteErrors[0]
						wr := ws[max(0, min(we.Index, len(ws)-1))]
						return nil, fmt.Errorf("%w: %s of %s key %s: code %d: %w", ErrRejected, wr.kind, ns, wr.key, we.Code, we.WriteError)
					}
					return nil, err
				}
				rounds = append(rounds, done{ws, br})
			}
		}
		return nil, nil
	}
	err := retry.Do(ctx, w.retry, func(err error) bool { return !errors.Is(err, ErrRejected) && mongox.IsTransient(err) }, func(ctx context.Context) error {
		sess, err := w.client.StartSession()
		if err != nil {
			return err
		}
		defer sess.EndSession(context.WithoutCancel(ctx))
		_, err = sess.WithTransaction(ctx, body, options.Transaction().SetWriteConcern(w.wc))
		return err
	})
	if err != nil {
		return Result{}, err
	}
	// Counted once, after the commit.
	var res Result
	for _, op := range b.noops() {
		w.metrics.Applied.WithLabelValues(string(op)).Inc()
	}
	for _, r := range rounds {
		w.metrics.BulkDocs.Observe(float64(len(r.ws)))
		w.count(r.ws, nil, r.br, &res)
	}
	return res, nil
}
