package consume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
)

// worker applies one partition in order.
type worker struct {
	c     *Consumer
	key   tp
	q     *queue
	group *flushGroup // the topic's: merges this batch with other partitions' (group.go)
	batch *apply.Batch
	recs  map[int64]*kgo.Record // records of the pending batch, for dead letters
	prog  *partProgress

	next       kgo.EpochOffset // position after the last handled record
	hasNext    bool
	pendingCT  schema.ClusterTime
	firstAdded time.Time

	// --transactions (txn.go): txns is the session's coordinator (nil
	// without the option); txn the transaction this partition waits for.
	txns        *txnCoord
	txn         *txnGather
	txnTimedOut bool // txn's wait expired while another worker applies it
}

func (w *worker) ref(r *kgo.Record, op schema.Op) apply.Ref {
	return apply.Ref{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Op: op}
}

func (w *worker) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	txnTimer := time.NewTimer(time.Hour)
	txnTimer.Stop()
	defer txnTimer.Stop()
	for {
		recs := w.q.take()
		// The queue is empty now: fetching resumes while recs are applied
		// (resuming only after they were applied left the partition idle
		// for a fetch round trip per QueueLimit records: the sink applied
		// at half the rate). At most QueueLimit records wait in the queue
		// and about as many are in hand.
		w.c.drained(w.key)
		if len(recs) == 0 {
			// Waiting for a transaction: wake on its resolution, on its
			// deadline, or on more records (more of its events may come).
			var tdone <-chan struct{}
			var tdead <-chan time.Time
			if g := w.txn; g != nil {
				tdone = g.done
				if !w.txnTimedOut {
					txnTimer.Reset(time.Until(g.deadline))
					tdead = txnTimer.C
				}
			}
			var tc <-chan time.Time
			if w.batch.Len() > 0 {
				// Nothing more is queued: flush now (FlushInterval 0, the
				// default) rather than wait for a batch to fill. Under load
				// batches still grow: records queue while a flush is in
				// flight. A fixed 50 ms wait was most of the lag at a
				// moderate steady rate (docs/benchmarks.md, issue 21).
				d := time.Until(w.firstAdded.Add(w.c.cfg.FlushInterval))
				if d <= 0 {
					if err := w.flush(ctx); err != nil {
						return err
					}
					continue
				}
				timer.Reset(d)
				tc = timer.C
			}
			// Nothing to submit now: a write gathered for the topic must not
			// wait for this partition, unless records arrived since take
			// (the poll loop marked it expected for them).
			if w.q.empty() {
				w.group.idle(w.key.partition)
			}
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-w.q.notify:
				timer.Stop()
			case <-tc:
				if err := w.flush(ctx); err != nil {
					return err
				}
			case <-tdone:
				timer.Stop()
				if err := w.resolveTxn(ctx); err != nil {
					return err
				}
			case <-tdead:
				timer.Stop()
				w.expireTxn()
			}
			txnTimer.Stop()
			continue
		}
		for _, r := range recs {
			if ctx.Err() != nil {
				return nil
			}
			if err := w.handle(ctx, r); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// consumed marks r handled; with nothing pending it is acknowledged at once.
func (w *worker) consumed(r *kgo.Record) {
	w.next = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	w.hasNext = true
	if w.batch.Len() == 0 {
		w.ackNext()
	}
}

func (w *worker) ackNext() {
	if !w.hasNext {
		return
	}
	w.c.offs.ack(w.key, w.next)
	w.prog.setAcked(w.next.Offset)
}

func (w *worker) decode(ctx context.Context, r *kgo.Record) (*schema.Event, error) {
	enc, err := schema.EncodingOf(r.Headers)
	if err != nil {
		return nil, err
	}
	var ev *schema.Event
	p := retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second, OnRetry: func(int, error) {
		w.c.m.Retries.WithLabelValues("schema-registry").Inc()
	}}
	err = retry.Do(ctx, p, func(err error) bool { return errors.Is(err, schema.ErrRegistryUnavailable) }, func(context.Context) error {
		var err error
		ev, err = w.c.deps.Decoder.DecodeValue(enc, r.Value)
		return err
	})
	return ev, err
}

func (w *worker) handle(ctx context.Context, r *kgo.Record) error {
	ev, err := w.decode(ctx, r)
	if err == nil && w.txn != nil && ev.Op == schema.OpDDL && ev.Txn != nil && txnKey(ev.Txn) == w.txn.key {
		// A DDL of the transaction this partition gathers (see txnCoord.ddl).
		w.txns.ddl(w.txn.key)
	}
	if w.txn != nil && (err != nil || ev.Txn == nil || !ev.Txn.Counted || txnKey(ev.Txn) != w.txn.key || ev.Op == schema.OpDDL || ev.Op == schema.OpMarker) {
		// Nothing after a transaction's events is handled before the
		// transaction is resolved (per-key order, offsets), and a barrier
		// never passes a transaction's gathered events (it commits offsets).
		if err := w.awaitTxn(ctx); err != nil {
			return err
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, schema.ErrLossyEncoding) {
			// The source writes an encoding meant for other consumers
			// (debezium): applying it would make a lossy copy, and every
			// record of the log fails alike, so stop before applying or
			// committing anything.
			return fmt.Errorf("topic %s partition %d offset %d: %w; the sink stopped without applying or committing it", r.Topic, r.Partition, r.Offset, err)
		}
		if errors.Is(err, schema.ErrRegistryAccess) {
			// Not this record's fault (credentials refused, certificate not
			// trusted): every record would fail alike, so neither dead-letter
			// nor skip it; stop until the settings are fixed.
			return fmt.Errorf("decoding topic %s partition %d offset %d: %w; the sink stopped without committing past it", r.Topic, r.Partition, r.Offset, err)
		}
		w.c.m.Consumed.WithLabelValues("undecodable").Inc()
		return w.poison(ctx, r, fmt.Errorf("%w: %w", apply.ErrUndecodable, err), "undecodable")
	}
	w.c.m.Consumed.WithLabelValues(string(ev.Op)).Inc()
	switch ev.Op {
	case schema.OpHeartbeat:
		w.prog.setClusterTime(ev.ClusterTime)
		w.consumed(r)
		return nil
	case schema.OpDDL, schema.OpMarker:
		if err := w.flush(ctx); err != nil {
			return err
		}
		return w.barrier(ctx, r, ev)
	}
	if w.txns != nil && ev.Txn != nil && ev.Txn.Counted {
		if gathered, err := w.gather(ctx, r, ev); gathered || err != nil {
			return err
		}
	}
	return w.add(ctx, r, ev)
}

// add applies a data event per event: into the pending batch, flushed on
// size or timer.
func (w *worker) add(ctx context.Context, r *kgo.Record, ev *schema.Event) error {
	if err := w.batch.Add(ev, w.ref(r, ev.Op)); err != nil {
		return w.poison(ctx, r, err, "bad-event")
	}
	if w.batch.Len() == 1 {
		w.firstAdded = time.Now()
	}
	w.recs[r.Offset] = r
	w.pendingCT = ev.ClusterTime
	w.consumed(r)
	if w.batch.Len() >= w.c.cfg.BatchSize {
		return w.flush(ctx)
	}
	return nil
}

// flush applies the pending batch and acknowledges its records once the
// destination acknowledged the writes. The batch goes through the topic's
// flush group, so it may share its bulk writes with other partitions'
// batches (group.go); each partition still handles its own failures and
// acknowledges its own records.
func (w *worker) flush(ctx context.Context) error {
	if w.batch.Len() == 0 {
		// Callers flush before they wait (a barrier, a transaction).
		w.group.idle(w.key.partition)
		w.ackNext()
		return nil
	}
	res, err := w.group.submit(ctx, w.key.partition, w.batch)
	if err != nil {
		return fmt.Errorf("applying %d events of %s partition %d to the destination: %w", w.batch.Len(), w.key.topic, w.key.partition, err)
	}
	for _, f := range res.Failures {
		r := w.recs[f.Ref.Offset]
		if r == nil {
			return fmt.Errorf("internal error: failed write for unknown offset %d of %s/%d: %w", f.Ref.Offset, w.key.topic, w.key.partition, f.Err)
		}
		if err := w.poison(ctx, r, f.Err, "rejected"); err != nil {
			return err
		}
	}
	w.batch.Reset()
	clear(w.recs)
	w.ackNext()
	w.prog.setClusterTime(w.pendingCT)
	if w.pendingCT.T > 0 {
		lag := time.Since(time.Unix(int64(w.pendingCT.T), 0)).Seconds()
		w.c.m.ApplyLag.WithLabelValues(w.key.topic).Set(lag)
	}
	return nil
}

// poison handles a record that cannot be applied: with tolerance none it
// stops the sink (nothing past the record is acknowledged); with all it
// goes to the dead-letter topic.
func (w *worker) poison(ctx context.Context, r *kgo.Record, cause error, reason string) error {
	if w.c.cfg.Tolerance != ToleranceAll || w.c.deps.DeadLetters == nil {
		if w.recs[r.Offset] == nil {
			// Apply and acknowledge what came before it, so that the committed
			// offset stops exactly at the bad record.
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: topic %s partition %d offset %d: %w; the sink stopped without committing past it (error-tolerance=none): fix the destination or the record, or run with --error-tolerance=all to send such records to the dead-letter topic",
			ErrPoison, r.Topic, r.Partition, r.Offset, cause)
	}
	if err := w.c.deps.DeadLetters.Send(ctx, r, cause); err != nil {
		return fmt.Errorf("sending %s/%d@%d to the dead-letter topic: %w", r.Topic, r.Partition, r.Offset, err)
	}
	w.c.m.DeadLetters.WithLabelValues(reason).Inc()
	w.c.log.Warn("record sent to the dead-letter topic", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", cause)
	if w.batch.Len() == 0 || w.recs[r.Offset] == nil {
		// Not part of a pending batch (decode/add failure): it is handled now.
		w.consumed(r)
	}
	return nil
}

// barrier waits until every partition of the topic reached the DDL or
// marker record r; the last one applies it once (see completeBarrier).
func (w *worker) barrier(ctx context.Context, r *kgo.Record, ev *schema.Event) error {
	id := apply.BarrierID(ev)
	if id == "" {
		return w.poison(ctx, r, fmt.Errorf("%w: %s record without an ID", apply.ErrBadEvent, ev.Op), "bad-event")
	}
	kind := "marker"
	if ev.DDL != nil {
		kind = string(ev.DDL.Kind)
	}
	w.c.mu.Lock()
	b := w.c.barriers[w.key.topic]
	w.c.mu.Unlock()
	if b == nil {
		return ctx.Err()
	}
	start := time.Now()
	w.prog.setBarrier(id)
	err := b.arrive(ctx, w.key.partition, id, kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset},
		func(ctx context.Context, at map[int32]kgo.EpochOffset) error {
			return w.completeBarrier(ctx, r, ev, at)
		})
	w.prog.setBarrier("")
	w.c.m.BarrierSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return err
	}
	w.c.m.BarrierWaits.WithLabelValues(kind).Inc()
	w.next = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	w.hasNext = true
	w.prog.setAcked(w.next.Offset)
	w.prog.setClusterTime(ev.ClusterTime)
	return nil
}

// completeBarrier runs once per barrier, when every partition flushed the
// writes before it: commit every partition exactly at the barrier record,
// apply it (unless recorded as applied), record it, then commit past it.
// With both commits, a crash leaves every partition either before the
// barrier with nothing after it applied, or after it, so the applied record
// is enough to never apply a DDL twice.
func (w *worker) completeBarrier(ctx context.Context, r *kgo.Record, ev *schema.Event, at map[int32]kgo.EpochOffset) error {
	for p, eo := range at {
		w.c.offs.ack(tp{w.key.topic, p}, eo)
	}
	if err := w.c.offs.flush(ctx); err != nil {
		return fmt.Errorf("committing offsets before barrier %s of %s: %w", apply.BarrierID(ev), w.key.topic, err)
	}
	if err := w.c.deps.Barriers.Apply(ctx, w.key.topic, ev); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, apply.ErrRejected) && !errors.Is(err, apply.ErrBadEvent) {
			return fmt.Errorf("applying barrier %s (%s) of %s: %w", apply.BarrierID(ev), ev.Op, w.key.topic, err)
		}
		if w.c.cfg.Tolerance != ToleranceAll || w.c.deps.DeadLetters == nil {
			return fmt.Errorf("%w: DDL at topic %s partition %d offset %d: %w; the sink stopped (error-tolerance=none)", ErrPoison, r.Topic, r.Partition, r.Offset, err)
		}
		if err := w.c.deps.DeadLetters.Send(ctx, r, err); err != nil {
			return fmt.Errorf("sending DDL %s/%d@%d to the dead-letter topic: %w", r.Topic, r.Partition, r.Offset, err)
		}
		w.c.m.DeadLetters.WithLabelValues("ddl-rejected").Inc()
	}
	for p, eo := range at {
		w.c.offs.ack(tp{w.key.topic, p}, kgo.EpochOffset{Epoch: eo.Epoch, Offset: eo.Offset + 1})
	}
	if err := w.c.offs.flush(ctx); err != nil {
		// The DDL is recorded as applied: a replay from the barrier skips it.
		w.c.log.Warn("committing offsets after a barrier failed; will retry with the next commit", "topic", w.key.topic, "err", err)
	}
	return nil
}
