package consume

import (
	"slices"
	"strings"
	"testing"
)

// With FlushInterval 0 (the sink's default) a partial batch is flushed as
// soon as its partition has nothing more queued, without waiting for a
// timer, and the records queued together still go in one bulk write: under
// load, batches grow by themselves while a flush is in flight.
func TestFlushWhenQueueRunsEmpty(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.FlushInterval = 0 }, nil, pA)
	h.push(pA, h.ev(pA, 1), h.ev(pA, 2), h.ev(pA, 3))
	h.waitFor("the first batch", func() bool { return len(h.dest.snapshot()) == 1 })
	h.waitFor("its offsets acknowledged", func() bool { return h.acked(pA) == 3 })
	h.push(pA, h.ev(pA, 4))
	h.waitFor("the second batch", func() bool { return len(h.dest.snapshot()) == 2 })
	calls := h.dest.snapshot()
	if got, want := calls[0].refs, []string{"lb.d.a/0@0", "lb.d.a/0@1", "lb.d.a/0@2"}; !slices.Equal(got, want) {
		t.Fatalf("first bulk write: got %v, want %v", got, want)
	}
	if got, want := calls[1].refs, []string{"lb.d.a/0@3"}; !slices.Equal(got, want) {
		t.Fatalf("second bulk write: got %v, want %v", got, want)
	}
}

// Small batches of one topic's partitions that become ready while a flush of
// that topic is in flight go together in the next one: one bulk write for
// several partitions (group.go). A write the destination rejects is handed
// to its own partition only.
func TestSmallBatchesOfATopicFlushTogether(t *testing.T) {
	p0, p1, p2 := tp{"lb.d.a", 0}, tp{"lb.d.a", 1}, tp{"lb.d.a", 2}
	dlq := &fakeDLQ{}
	h := newHarness(t, func(c *Config) { c.FlushInterval, c.Tolerance, c.DLQTopic = 0, ToleranceAll, "dlq" }, dlq, p0, p1, p2)
	gate := make(chan struct{})
	h.dest.gate = gate
	h.dest.reject = map[int64]bool{1: true}
	h.push(p0, h.ev(p0, 1))
	h.waitFor("the first flush in flight", func() bool { return len(h.dest.snapshot()) == 1 })
	h.push(p1, h.ev(p1, 2))
	h.push(p2, h.ev(p2, 3), h.ev(p2, 4))
	g := h.c.group("lb.d.a")
	h.waitFor("both batches queued behind it", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == 2
	})
	close(gate)
	h.waitFor("every record acknowledged", func() bool { return h.acked(p0) == 1 && h.acked(p1) == 1 && h.acked(p2) == 2 })
	calls := h.dest.snapshot()
	if len(calls) != 2 {
		t.Fatalf("got %d bulk writes (%v), want 2", len(calls), h.dest.applied())
	}
	got := slices.Clone(calls[1].refs)
	slices.Sort(got)
	if want := []string{"lb.d.a/1@0", "lb.d.a/2@0", "lb.d.a/2@1"}; !slices.Equal(got, want) {
		t.Fatalf("second bulk write: got %v, want %v", got, want)
	}
	if got := dlq.list(); len(got) != 1 || !strings.HasPrefix(got[0], "lb.d.a/2@1:") {
		t.Fatalf("dead letters: got %v, want the record lb.d.a/2@1 only", got)
	}
}
