package consume

import (
	"context"
	"sync"
	"time"

	"github.com/logbridge/logbridge/sink-connector/internal/apply"
)

// flushGroup merges the flushes of one topic's partitions into shared bulk
// writes (group commit), so that the events one fetch brings for several
// partitions of a namespace cost one destination round trip, not one per
// partition.
//
// Why: at a steady moderate rate the source commits a few events per Kafka
// transaction, spread over the topic's partitions; each partition's worker
// flushed its own batch as soon as its queue ran empty, so the sink made
// ~2.3 bulk writes per transaction of ~3 events, and the bulk writes were a
// third of its CPU (issue 21). Merging is safe because a key always goes to
// the same partition: the batches of different partitions have disjoint
// keys, so one unordered bulk write of their first writes, then one of their
// second writes, ... keeps each key's order (apply.Writer.Flush).
//
// How: a worker that flushes submits its batch and waits for the write that
// carries it. The batches submitted while the next write has not started
// join it. That write starts
//   - at once when nothing holds it back: no write of the topic in flight
//     and no partition expected;
//   - when the write in flight finishes (records that arrived meanwhile
//     ride along: the write that is already paid for sets the pace);
//   - when the last expected partition submitted or went idle: the poll
//     loop marks the partitions that received records in one poll as
//     expected (expect) before handing the records over, and a partition
//     stops being expected when it submits or has nothing to flush (idle);
//   - at once when it holds maxEvents events (Config.BatchSize): under load,
//     full batches still go in parallel (up to Config.Parallelism);
//   - after maxWait at the latest, however many partitions are expected:
//     expected is a hint, and a partition that is slow to come (a registry
//     retry, a dead letter, a CPU-starved goroutine, a worker that waits at a
//     barrier while records arrive for it) must not hold the others longer
//     than that.
//
// The first submitter of a write leads it: it waits for the start, runs the
// write and hands every member its own part of the result (the failures of
// its partition). A member never waits for anything but the end of a write
// it is part of; the leader ends the write on its context's end without
// writing (the members then get that context's error: every submitter of a
// group passes the session's context, which ends for all of them at once). One partition has at most one batch in the group at a time
// (its worker waits for it), so writes that run concurrently never share a
// key either.
type flushGroup struct {
	// write applies the batches in shared bulk writes (apply.Writer.Flush,
	// behind the consumer's parallelism semaphore).
	write     func(ctx context.Context, bs []*apply.Batch) (apply.Result, error)
	maxEvents int
	maxWait   time.Duration

	mu       sync.Mutex
	next     *groupWrite    // the write being gathered (nil: none)
	inflight int            // writes started and not finished
	expected map[int32]bool // partitions that received records and did not submit or go idle since
}

// groupWrite is one shared write: the batches of several partitions.
type groupWrite struct {
	batches []*apply.Batch
	parts   []int32
	events  int
	waited  bool          // maxWait passed: expected partitions no longer hold it
	start   chan struct{} // closed when the write may start (by whoever made it ready)
	done    chan struct{} // closed when res and err are set
	res     apply.Result
	err     error
}

// groupMaxWait bounds how long a write waits for expected partitions. They
// normally submit within microseconds of each other; the bound only matters
// when the hint is wrong, and keeps the lag added then far below its goal
// (p99 <= 30 ms).
const groupMaxWait = 2 * time.Millisecond

func newFlushGroup(maxEvents int, maxWait time.Duration, write func(context.Context, []*apply.Batch) (apply.Result, error)) *flushGroup {
	return &flushGroup{write: write, maxEvents: maxEvents, maxWait: maxWait, expected: map[int32]bool{}}
}

// expect marks partitions that just received records: the write being
// gathered waits (at most maxWait) for their batches.
func (g *flushGroup) expect(parts ...int32) {
	g.mu.Lock()
	for _, p := range parts {
		g.expected[p] = true
	}
	g.mu.Unlock()
}

// idle reports that partition has nothing to submit now (its queue ran
// empty with nothing pending, or it waits at a barrier or for a
// transaction): the write being gathered no longer waits for it.
func (g *flushGroup) idle(partition int32) {
	g.mu.Lock()
	if g.expected[partition] {
		delete(g.expected, partition)
		g.startIfReady()
	}
	g.mu.Unlock()
}

// submit applies b, the pending batch of partition, in the next shared
// write and returns that write's outcome for b: the failures of partition's
// records (their Refs), or the write's error. b must not change until
// submit returns.
func (g *flushGroup) submit(ctx context.Context, partition int32, b *apply.Batch) (apply.Result, error) {
	g.mu.Lock()
	delete(g.expected, partition)
	w := g.next
	lead := w == nil
	if lead {
		w = &groupWrite{start: make(chan struct{}), done: make(chan struct{})}
		g.next = w
	}
	w.batches = append(w.batches, b)
	w.parts = append(w.parts, partition)
	w.events += b.Len()
	g.startIfReady()
	g.mu.Unlock()
	if lead {
		g.lead(ctx, w)
	}
	<-w.done
	if w.err != nil {
		return apply.Result{}, w.err
	}
	return w.partOf(partition), nil
}

// lead waits for w's start, runs it and ends it.
func (g *flushGroup) lead(ctx context.Context, w *groupWrite) {
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	for {
		select {
		case <-w.start:
			w.res, w.err = g.write(ctx, w.batches)
			g.end(w, true)
			return
		case <-t.C:
			g.mu.Lock()
			w.waited = true
			g.startIfReady()
			g.mu.Unlock()
		case <-ctx.Done():
			g.mu.Lock()
			started := g.next != w
			if !started {
				g.next = nil
			}
			g.mu.Unlock()
			w.err = ctx.Err()
			g.end(w, started)
			return
		}
	}
}

// end finishes w (res and err set) and starts the next write if it only
// waited for this one.
func (g *flushGroup) end(w *groupWrite, started bool) {
	g.mu.Lock()
	if started {
		g.inflight--
	}
	g.startIfReady()
	g.mu.Unlock()
	close(w.done)
}

// startIfReady starts the write being gathered when nothing holds it back
// (see flushGroup). Call with mu held.
func (g *flushGroup) startIfReady() {
	w := g.next
	if w == nil {
		return
	}
	if w.events < g.maxEvents && (g.inflight > 0 || !w.waited && g.waitsFor(w)) {
		return
	}
	g.next = nil
	g.inflight++
	close(w.start)
}

// waitsFor reports whether an expected partition is not yet part of w (a
// member that received more records while it waits for w comes later).
func (g *flushGroup) waitsFor(w *groupWrite) bool {
	for p := range g.expected {
		member := false
		for _, q := range w.parts {
			if p == q {
				member = true
				break
			}
		}
		if !member {
			return true
		}
	}
	return false
}

// partOf is the result of w for partition's records.
func (w *groupWrite) partOf(partition int32) apply.Result {
	if len(w.parts) == 1 {
		return w.res
	}
	var res apply.Result
	for _, f := range w.res.Failures {
		if f.Ref.Partition == partition {
			res.Failures = append(res.Failures, f)
		}
	}
	return res
}
