package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logbridge/logbridge/sink-connector/internal/apply"
)

// Unit tests of the flush group's logic (group.go) with a fake write; the
// workers' use of it is tested with the harness below, the real bulk writes
// in apply (TestWriterFlushMergesBatches) and tests/sink.

// fakeWrites records the partitions of each write and can hold writes
// until released.
type fakeWrites struct {
	mu      sync.Mutex
	calls   [][]int32
	hold    chan struct{} // nil: writes return at once
	started chan struct{} // one value per write started
	res     apply.Result
	err     error
}

func newFakeWrites() *fakeWrites { return &fakeWrites{started: make(chan struct{}, 100)} }

func (f *fakeWrites) write(_ context.Context, bs []*apply.Batch) (apply.Result, error) {
	var parts []int32
	for _, b := range bs {
		parts = append(parts, b.Refs()[0].Partition)
	}
	f.mu.Lock()
	f.calls = append(f.calls, parts)
	hold := f.hold
	f.mu.Unlock()
	f.started <- struct{}{}
	if hold != nil {
		<-hold
	}
	return f.res, f.err
}

func (f *fakeWrites) snapshot() [][]int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// batchOf is a batch of n events of partition part.
func batchOf(t *testing.T, part int32, n int) *apply.Batch {
	t.Helper()
	b := apply.NewBatch(apply.NSMap{})
	for i := range n {
		if err := b.Add(replaceEvent("lb.d.a", int(part)*1000+i), apply.Ref{Topic: "lb.d.a", Partition: part, Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

type submitted struct {
	res apply.Result
	err error
}

// submitAsync submits b of part and returns where its outcome arrives.
func submitAsync(ctx context.Context, g *flushGroup, part int32, b *apply.Batch) <-chan submitted {
	out := make(chan submitted, 1)
	go func() {
		res, err := g.submit(ctx, part, b)
		out <- submitted{res, err}
	}()
	return out
}

func wait(t *testing.T, what string, ch <-chan submitted) submitted {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return submitted{}
	}
}

func notYet(t *testing.T, what string, ch <-chan submitted) {
	t.Helper()
	select {
	case s := <-ch:
		t.Fatalf("%s returned (%+v) before it should", what, s)
	case <-time.After(30 * time.Millisecond):
	}
}

func sameWrites(t *testing.T, got, want [][]int32) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b []int32) bool { return slices.Equal(a, b) }) {
		t.Fatalf("writes (partitions of each): got %v, want %v", got, want)
	}
}

// The partitions that received records in one poll share one write: the
// first to submit waits for the others, and a partition that turns out to
// have nothing to write (idle) releases it.
func TestGroupWaitsForExpectedPartitions(t *testing.T) {
	f := newFakeWrites()
	g := newFlushGroup(100, time.Minute, f.write)
	g.expect(0, 1, 2)
	s0 := submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))
	notYet(t, "partition 0's flush, with 1 and 2 expected", s0)
	s1 := submitAsync(t.Context(), g, 1, batchOf(t, 1, 2))
	notYet(t, "partition 0's flush, with 2 expected", s0)
	g.idle(2)
	for _, s := range []<-chan submitted{s0, s1} {
		if r := wait(t, "the shared write", s); r.err != nil {
			t.Fatal(r.err)
		}
	}
	sameWrites(t, f.snapshot(), [][]int32{{0, 1}})
}

// With nothing expected and no write in flight, a flush writes at once;
// batches submitted while a write is in flight ride together in the next.
func TestGroupMergesWhileWriteInFlight(t *testing.T) {
	f := newFakeWrites()
	f.hold = make(chan struct{})
	g := newFlushGroup(100, time.Minute, f.write)
	s0 := submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))
	<-f.started
	s1 := submitAsync(t.Context(), g, 1, batchOf(t, 1, 1))
	notYet(t, "partition 1's flush while partition 0's write is in flight", s1)
	s2 := submitAsync(t.Context(), g, 2, batchOf(t, 2, 1))
	notYet(t, "partition 2's flush", s2)
	close(f.hold)
	for _, s := range []<-chan submitted{s0, s1, s2} {
		if r := wait(t, "the writes", s); r.err != nil {
			t.Fatal(r.err)
		}
	}
	sameWrites(t, f.snapshot(), [][]int32{{0}, {1, 2}})
}

// A write that holds a full batch's worth of events goes at once, beside the
// write in flight: under load the partitions still write in parallel.
func TestGroupFullWriteGoesAtOnce(t *testing.T) {
	f := newFakeWrites()
	f.hold = make(chan struct{})
	g := newFlushGroup(3, time.Minute, f.write)
	s0 := submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))
	<-f.started
	s1 := submitAsync(t.Context(), g, 1, batchOf(t, 1, 3))
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatal("a full batch waited for the write in flight")
	}
	close(f.hold)
	wait(t, "partition 0", s0)
	wait(t, "partition 1", s1)
	sameWrites(t, f.snapshot(), [][]int32{{0}, {1}})
}

// An expected partition that never comes holds a write for maxWait at most.
func TestGroupMaxWaitBoundsTheWaitForExpected(t *testing.T) {
	f := newFakeWrites()
	const maxWait = 50 * time.Millisecond
	g := newFlushGroup(100, maxWait, f.write)
	g.expect(1)
	start := time.Now()
	if r := wait(t, "partition 0", submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))); r.err != nil {
		t.Fatal(r.err)
	}
	if d := time.Since(start); d < maxWait || d > maxWait+time.Second {
		t.Fatalf("the write went after %v, want after about %v", d, maxWait)
	}
	sameWrites(t, f.snapshot(), [][]int32{{0}})
}

// Each member of a shared write gets the failures of its own records only;
// a failed write fails every member.
func TestGroupRoutesResults(t *testing.T) {
	f := newFakeWrites()
	g := newFlushGroup(100, time.Minute, f.write)
	fail := func(part int32) apply.Failure {
		return apply.Failure{Ref: apply.Ref{Topic: "lb.d.a", Partition: part, Offset: 7}, Err: fmt.Errorf("%w: partition %d", apply.ErrRejected, part)}
	}
	f.res = apply.Result{Failures: []apply.Failure{fail(0), fail(1), fail(1)}}
	g.expect(0, 1)
	s0 := submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))
	s1 := submitAsync(t.Context(), g, 1, batchOf(t, 1, 1))
	r0, r1 := wait(t, "partition 0", s0), wait(t, "partition 1", s1)
	if calls := f.snapshot(); len(calls) != 1 || len(calls[0]) != 2 {
		t.Fatalf("writes %v, want one of both partitions", calls)
	}
	if len(r0.res.Failures) != 1 || r0.res.Failures[0].Ref.Partition != 0 {
		t.Fatalf("partition 0 got failures %+v, want its one", r0.res.Failures)
	}
	if len(r1.res.Failures) != 2 || r1.res.Failures[0].Ref.Partition != 1 || r1.res.Failures[1].Ref.Partition != 1 {
		t.Fatalf("partition 1 got failures %+v, want its two", r1.res.Failures)
	}

	f.err = errors.New("destination unreachable")
	g.expect(0, 1)
	s0 = submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))
	s1 = submitAsync(t.Context(), g, 1, batchOf(t, 1, 1))
	for _, s := range []<-chan submitted{s0, s1} {
		if r := wait(t, "the failed write", s); r.err == nil || !strings.Contains(r.err.Error(), "unreachable") {
			t.Fatalf("got %v, want the write's error", r.err)
		}
	}
}

// A flush waiting for its turn ends with its context, without writing.
func TestGroupWaitEndsWithContext(t *testing.T) {
	f := newFakeWrites()
	g := newFlushGroup(100, time.Minute, f.write)
	g.expect(1)
	ctx, cancel := context.WithCancel(t.Context())
	s0 := submitAsync(ctx, g, 0, batchOf(t, 0, 1))
	notYet(t, "partition 0's flush", s0)
	cancel()
	if r := wait(t, "the cancelled flush", s0); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", r.err)
	}
	if calls := f.snapshot(); len(calls) != 0 {
		t.Fatalf("wrote %v after the context ended", calls)
	}
	// The group is usable afterwards.
	g.idle(1)
	if r := wait(t, "a later flush", submitAsync(t.Context(), g, 0, batchOf(t, 0, 1))); r.err != nil {
		t.Fatal(r.err)
	}
}

// Real workers: the partitions of one topic that received records in the
// same poll go in one bulk write; each acknowledges its own records after
// it, and a write the destination rejects goes to the dead letters from
// its own partition.
func TestPartitionsOfOnePollShareABulkWrite(t *testing.T) {
	p0, p1 := tp{"lb.d.a", 0}, tp{"lb.d.a", 1}
	dlq := &fakeDLQ{}
	h := newHarness(t, func(c *Config) {
		c.FlushInterval, c.Tolerance, c.DLQTopic = 0, ToleranceAll, "lb._dlq"
	}, dlq, p0, p1)
	h.dest.reject = map[int64]bool{1: true} // partition 1's offset 1 (and partition 0's, not sent)
	g := h.workers[p0].group
	g.maxWait = time.Minute           // no bound in the way of the check below
	time.Sleep(20 * time.Millisecond) // the workers reach their idle wait
	g.expect(0, 1)                    // as the poll loop does (Consumer.expect) before dispatching
	h.push(p0, h.ev(p0, 1))
	time.Sleep(20 * time.Millisecond) // partition 1's worker is slower: partition 0 waits for it
	h.push(p1, h.ev(p1, 2), h.ev(p1, 3))
	h.waitFor("both partitions acknowledged", func() bool { return h.acked(p0) == 1 && h.acked(p1) == 2 })
	calls := h.dest.snapshot()
	if len(calls) != 1 {
		t.Fatalf("%d bulk writes %+v, want 1 for the partitions of one poll", len(calls), calls)
	}
	got := slices.Sorted(slices.Values(calls[0].refs))
	if want := []string{"lb.d.a/0@0", "lb.d.a/1@0", "lb.d.a/1@1"}; !slices.Equal(got, want) {
		t.Fatalf("shared write holds %v, want %v", got, want)
	}
	if sent := dlq.list(); len(sent) != 1 || !strings.HasPrefix(sent[0], "lb.d.a/1@1: ") {
		t.Fatalf("dead letters %q, want partition 1's offset 1", sent)
	}
	checkAckAfterWrite(t, calls, p0)
	checkAckAfterWrite(t, calls, p1)
}
