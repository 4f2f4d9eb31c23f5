package publish

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// Limits bound one transaction.
type Limits struct {
	MaxRecords int // records per transaction (default DefaultMaxRecords)
	MaxBytes   int // encoded bytes per transaction (default DefaultMaxBytes)
}

// The default transaction limits. Every transaction costs the broker a
// fixed amount of work (partitions added, the commit, a marker in every
// partition it wrote), so a snapshot in larger transactions leaves it more
// CPU: with 10,000 records / 16 MiB instead of 2,000 / 4 MiB the broker
// used about half the CPU for the same snapshot and the snapshot ran
// 20-40% faster on the 2-core test machine (tests/bench, two pairs of
// runs); 20,000 / 32 MiB and 50,000 / 64 MiB gained nothing more. When the
// stream is quiet, batches stay small: a batch is handed over as soon as the
// previous commit ends.
const (
	DefaultMaxRecords = 10_000
	DefaultMaxBytes   = 16 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

// Run publishes the items of in until in is closed (then everything read
// is committed and Run returns nil) or an error or ctx ends it.
//
// Encoding and producing overlap: one goroutine folds items into a batch
// while the previous batch's transaction commits. A batch is handed over as
// soon as the committer is free, or blocks when it reaches the limits, so
// transactions grow under load and stay small (low latency) when quiet.
// onCommit, when non-nil, is called after each committed batch, in order.
func (p *Publisher) Run(ctx context.Context, in <-chan checkpoint.Item, lim Limits, onCommit func(*Batch)) error {
	lim = lim.withDefaults()
	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan *Batch) // unbuffered: hand over only when the committer is free
	g.Go(func() error {
		defer close(batches)
		cur := newBatch()
		open := false // inside a unit of items (Item.More): never cut the batch there
		// add folds one received item into cur; it reports false when in
		// was closed (then cur, if it holds anything, is handed over).
		add := func(it checkpoint.Item, ok bool) (bool, error) {
			if !ok {
				if cur.Items > 0 {
					select {
					case batches <- cur:
					case <-ctx.Done():
						return false, ctx.Err()
					}
				}
				return false, nil
			}
			before := len(cur.Records)
			if err := p.Add(ctx, cur, it); err != nil {
				return false, err
			}
			open = it.More
			p.cfg.Metrics.BufferedRecords.Add(float64(len(cur.Records) - before))
			return true, nil
		}
		for {
			full := len(cur.Records) >= lim.MaxRecords || cur.Bytes >= lim.MaxBytes
			recv := in
			if full && !open {
				recv = nil
			}
			if recv != nil {
				// Fold in what is already waiting before offering the
				// batch: a select between a free committer and a waiting
				// item picks either at random, so half the time a batch
				// went out with one item while the rest of the change
				// stream's batch queued behind it, for one more
				// transaction.
				select {
				case it, ok := <-recv:
					if more, err := add(it, ok); !more || err != nil {
						return err
					}
					continue
				default:
				}
			}
			var out chan<- *Batch
			if (!cur.Empty() || cur.Items > 0) && !open {
				out = batches
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case out <- cur:
				cur = newBatch()
			case it, ok := <-recv:
				if more, err := add(it, ok); !more || err != nil {
					return err
				}
			}
		}
	})
	g.Go(func() error {
		for b := range batches {
			if b.Empty() {
				continue
			}
			if err := p.Commit(ctx, b); err != nil {
				return err
			}
			p.cfg.Metrics.BufferedRecords.Sub(float64(len(b.Records)))
			for op, n := range b.Ops {
				p.cfg.Metrics.EventsPublished.WithLabelValues(string(op)).Add(float64(n))
			}
			p.cfg.Metrics.PublishedBytes.Add(float64(b.Bytes))
			for ns, s := range b.Snapshot {
				p.cfg.Metrics.SnapshotDocs.WithLabelValues(ns).Add(float64(s.Docs))
				p.cfg.Metrics.SnapshotBytes.WithLabelValues(ns).Add(float64(s.Bytes))
			}
			p.cfg.Metrics.Heartbeats.Add(float64(b.Heartbeats))
			if onCommit != nil {
				onCommit(b)
			}
			b.recycleDocs()
		}
		return nil
	})
	return g.Wait()
}

// CommitItems publishes items in one transaction (plans and markers).
func (p *Publisher) CommitItems(ctx context.Context, items ...checkpoint.Item) error {
	b := newBatch()
	for _, it := range items {
		if err := p.Add(ctx, b, it); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	if err := p.Commit(ctx, b); err != nil {
		return err
	}
	b.recycleDocs()
	for op, n := range b.Ops {
		p.cfg.Metrics.EventsPublished.WithLabelValues(string(op)).Add(float64(n))
	}
	return nil
}
