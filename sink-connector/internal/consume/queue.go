package consume

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// queue hands fetched records from the poll loop to a partition worker
// without ever blocking the poll loop (a worker waiting at a barrier must not
// stop the records that other partitions need to reach it). Back-pressure is
// by pausing the partition's fetches above a limit.
type queue struct {
	mu     sync.Mutex
	recs   []*kgo.Record
	bytes  int // keys and values of recs
	notify chan struct{}
}

func newQueue() *queue { return &queue{notify: make(chan struct{}, 1)} }

// push appends records and returns the queue's length and the bytes of
// its records' keys and values.
func (q *queue) push(rs []*kgo.Record) (n, bytes int) {
	q.mu.Lock()
	q.recs = append(q.recs, rs...)
	for _, r := range rs {
		q.bytes += len(r.Key) + len(r.Value)
	}
	n, bytes = len(q.recs), q.bytes
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return n, bytes
}

// take removes and returns every queued record.
func (q *queue) take() []*kgo.Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	rs := q.recs
	q.recs = nil
	q.bytes = 0
	return rs
}

// empty reports whether no record is queued.
func (q *queue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.recs) == 0
}
