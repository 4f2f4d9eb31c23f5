package consume

import (
	"context"
	"sync"

	"github.com/logbridge/logbridge/sink-connector/internal/apply"
)

// flushGroup combines the small flushes of one topic's partitions into one
// writer call (group commit). At a moderate steady rate each source
// transaction brings a few events to several partitions of a topic at once,
// and every partition flushing its one or two events alone made a bulk
// write, with its round trip and fixed client cost, per partition. Small
// batches of a topic therefore go through the group: the first one in
// flushes every small batch queued at that moment, in one merged batch (keys
// of different partitions are disjoint); batches that arrive while it is in
// flight go together in the next flush. Full batches (a snapshot, a
// backlog) flush on their own, in parallel as before.
type flushGroup struct {
	mu    sync.Mutex
	busy  bool
	queue []*flushReq
}

type flushReq struct {
	key   tp
	batch *apply.Batch
	done  chan flushRes // buffered: the result, or the turn to lead
}

type flushRes struct {
	lead bool
	res  apply.Result
	err  error
}

// smallBatch is the size up to which a partition's batch goes through its
// topic's flush group.
func (c *Consumer) smallBatch() int { return max(1, c.cfg.BatchSize/10) }

// group returns the flush group of topic.
func (c *Consumer) group(topic string) *flushGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[topic]
	if g == nil {
		g = &flushGroup{}
		c.groups[topic] = g
	}
	return g
}

// write applies b for the worker of key: alone when it is large, else with
// the other small batches of its topic that are ready (see flushGroup). It
// returns when the destination acknowledged b's writes; Failures holds b's
// own rejected writes only.
func (c *Consumer) write(ctx context.Context, key tp, b *apply.Batch) (apply.Result, error) {
	if b.Len() > c.smallBatch() {
		return c.writeAlone(ctx, b)
	}
	g := c.group(key.topic)
	req := &flushReq{key: key, batch: b, done: make(chan flushRes, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if g.busy {
		g.mu.Unlock()
		// No select on ctx: the flush in flight runs on the run context
		// and always answers; its outcome decides this batch's.
		if r := <-req.done; !r.lead {
			return r.res, r.err
		}
		g.mu.Lock()
	}
	g.busy = true
	reqs := g.queue
	g.queue = nil
	g.mu.Unlock()

	var res apply.Result
	var err error
	if len(reqs) == 1 {
		res, err = c.writeAlone(ctx, b)
	} else {
		bs := make([]*apply.Batch, len(reqs))
		for i, r := range reqs {
			bs[i] = r.batch
		}
		res, err = c.writeAlone(ctx, apply.Merge(c.deps.NSMap, bs...))
		c.m.GroupedFlushes.Observe(float64(len(reqs)))
	}
	var mine flushRes
	for _, r := range reqs {
		out := flushRes{err: err}
		for _, f := range res.Failures {
			if f.Ref.Topic == r.key.topic && f.Ref.Partition == r.key.partition {
				out.res.Failures = append(out.res.Failures, f)
			}
		}
		if r == req {
			out.res.Missing = res.Missing
			mine = out
			continue
		}
		r.done <- out
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- flushRes{lead: true}
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return mine.res, mine.err
}

// writeAlone applies b in one writer call, within the parallelism limit.
func (c *Consumer) writeAlone(ctx context.Context, b *apply.Batch) (apply.Result, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return apply.Result{}, ctx.Err()
	}
	defer func() { <-c.sem }()
	return c.deps.Writer.Flush(c.runCtx, b)
}
