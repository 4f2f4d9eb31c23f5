package consume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
)

// gather hands a transaction's event to the coordinator. It reports false
// when the event is to be applied per event instead (its transaction was
// resolved already).
func (w *worker) gather(ctx context.Context, r *kgo.Record, ev *schema.Event) (bool, error) {
	if w.txn == nil {
		// What came before the transaction is applied and acknowledged
		// first: the wait must hold back nothing but the transaction.
		if err := w.flush(ctx); err != nil {
			return true, err
		}
	}
	g, complete, perEvent := w.txns.add(w.key, r, ev)
	if perEvent {
		w.c.m.TxnLateEvents.Inc()
		return false, nil
	}
	if w.txn == nil {
		w.txn, w.txnTimedOut = g, false
		w.prog.setBarrier("txn:" + g.lsid + ":" + fmt.Sprint(g.number))
	}
	if complete {
		if err := w.applyTxn(ctx, g); err != nil {
			return true, err
		}
	}
	select {
	case <-g.done:
		return true, w.resolveTxn(ctx)
	default:
		return true, nil
	}
}

// applyTxn applies a complete transaction in one destination transaction
// and resolves it for every contributing worker.
func (w *worker) applyTxn(ctx context.Context, g *txnGather) error {
	evs, recs := g.events()
	b := apply.NewBatch(w.c.deps.NSMap)
	for i, ev := range evs {
		r := recs[i]
		if err := b.Add(ev, apply.Ref{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Op: ev.Op}); err != nil {
			// The per-event path sends it to the dead letters (or stops).
			w.txns.finish(g, false, txnRejected, nil)
			return nil
		}
	}
	select {
	case w.c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := w.c.deps.TxnWriter.FlushTxn(w.c.runCtx, b)
	<-w.c.sem
	switch {
	case err == nil:
		w.txns.finish(g, true, txnApplied, nil)
		w.c.m.TxnEvents.Observe(float64(len(evs)))
	case errors.Is(err, apply.ErrRejected):
		w.c.log.Warn("the destination rejected a write of a source transaction; applying its events one by one (not atomically) so that the bad one is isolated",
			"lsid", g.lsid, "txnNumber", g.number, "events", len(evs), "err", err)
		w.txns.finish(g, false, txnRejected, nil)
	default:
		err = fmt.Errorf("applying a source transaction (lsid %s, txnNumber %d, %d events) in one destination transaction: %w", g.lsid, g.number, len(evs), err)
		w.txns.finish(g, false, "", err)
		return err
	}
	return nil
}

// awaitTxn blocks until the transaction this partition waits for is
// resolved (or its wait expires, which resolves it), then settles it.
func (w *worker) awaitTxn(ctx context.Context) error {
	g := w.txn
	w.group.idle(w.key.partition) // other partitions' writes must not wait for this one
	for {
		var dead <-chan time.Time
		var t *time.Timer
		if !w.txnTimedOut {
			t = time.NewTimer(time.Until(g.deadline))
			dead = t.C
		}
		select {
		case <-g.done:
		case <-ctx.Done():
		case <-dead:
			w.expireTxn()
		}
		if t != nil {
			t.Stop()
		}
		select {
		case <-g.done:
			return w.resolveTxn(ctx)
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// expireTxn: the transaction's wait is over.
func (w *worker) expireTxn() {
	if !w.txns.expire(w.txn) {
		w.txnTimedOut = true // being applied by its last contributor: wait for that
	}
}

// resolveTxn settles this partition's part of a resolved transaction:
// acknowledge it (applied) or apply it per event, in order (fallback).
func (w *worker) resolveTxn(ctx context.Context) error {
	g := w.txn
	w.txn, w.txnTimedOut = nil, false
	w.prog.setBarrier("")
	if g.err != nil {
		return g.err
	}
	part := g.parts[w.key]
	if part == nil {
		return nil
	}
	if g.applied {
		last := part.recs[len(part.recs)-1]
		w.next = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
		w.hasNext = true
		w.ackNext()
		ct := part.evs[len(part.evs)-1].ClusterTime
		w.prog.setClusterTime(ct)
		if ct.T > 0 {
			w.c.m.ApplyLag.WithLabelValues(w.key.topic).Set(time.Since(time.Unix(int64(ct.T), 0)).Seconds())
		}
		return nil
	}
	for i, r := range part.recs {
		if err := w.add(ctx, r, part.evs[i]); err != nil {
			return err
		}
	}
	return nil
}

// txnResolved reports a resolution once (metrics, and a warning for a
// fallback). It runs under the coordinator's lock.
func (c *Consumer) txnResolved(g *txnGather) {
	c.m.Txns.WithLabelValues(g.reason).Inc()
	c.m.TxnWaitSeconds.Observe(time.Since(g.first).Seconds())
	if g.applied || g.err != nil {
		return
	}
	c.log.Warn("source transaction applied per event, not atomically", "reason", g.reason,
		"lsid", g.lsid, "txnNumber", g.number, "gathered", g.n, "count", g.count,
		"why", map[string]string{
			txnTimeout:  "not all of its events reached this member within --transaction-wait (namespaces owned by other group members, or a replay starting inside the transaction)",
			txnTooLarge: "more events than --transaction-max-events",
			txnRejected: "the destination rejected one of its writes or an event was malformed",
			txnDDL:      "it contains DDL (create, createIndexes) after some of its writes; DDL is applied outside destination transactions",
		}[g.reason])
}
