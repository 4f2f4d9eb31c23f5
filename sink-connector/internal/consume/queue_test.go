package consume

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The queue counts the bytes of its records' keys and values, and taking
// the queue empties the count: the byte bound pauses on what waits now.
func TestQueueCountsBytes(t *testing.T) {
	q := newQueue()
	if n, b := q.push([]*kgo.Record{{Key: make([]byte, 10), Value: make([]byte, 100)}, {Value: make([]byte, 50)}}); n != 2 || b != 160 {
		t.Fatalf("push: %d records, %d bytes; want 2, 160", n, b)
	}
	if n, b := q.push([]*kgo.Record{{Value: make([]byte, 40)}}); n != 3 || b != 200 {
		t.Fatalf("second push: %d records, %d bytes; want 3, 200", n, b)
	}
	if got := len(q.take()); got != 3 {
		t.Fatalf("take: %d records, want 3", got)
	}
	if n, b := q.push([]*kgo.Record{{Value: make([]byte, 7)}}); n != 1 || b != 7 {
		t.Fatalf("push after take: %d records, %d bytes; want 1, 7", n, b)
	}
}

// The assigned partitions share QueueMaxBytes, each at least
// MinQueueBytes; the record bound applies on its own.
func TestQueueFullShares(t *testing.T) {
	c := Config{QueueLimit: 4000, QueueMaxBytes: 16 << 20}
	for _, tc := range []struct {
		n, bytes, assigned int
		want               bool
	}{
		{10, 1<<20 - 1, 16, false},           // under a 16th
		{10, 1 << 20, 16, true},              // at a 16th
		{10, 8 << 20, 1, false},              // alone: the whole bound
		{10, 16 << 20, 1, true},              //
		{10, MinQueueBytes - 1, 1000, false}, // a thousandth is below the floor
		{10, MinQueueBytes, 1000, true},      //
		{4000, 10, 16, true},                 // the record bound
	} {
		if got := c.queueFull(tc.n, tc.bytes, tc.assigned); got != tc.want {
			t.Errorf("queueFull(%d records, %d bytes, %d assigned) = %v, want %v", tc.n, tc.bytes, tc.assigned, got, tc.want)
		}
	}
	c.QueueMaxBytes = 0 // no byte bound
	if c.queueFull(10, 1<<30, 1) {
		t.Error("queueFull with QueueMaxBytes 0: want only the record bound")
	}
}
