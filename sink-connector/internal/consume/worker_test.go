package consume

import (
	"slices"
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
