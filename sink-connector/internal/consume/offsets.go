package consume

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

type tp struct {
	topic     string
	partition int32
}

// commitFunc commits offsets (the next offset to read per partition).
type commitFunc func(ctx context.Context, offs map[string]map[int32]kgo.EpochOffset) error

// offsets tracks, per partition, the acknowledged position (every record
// before it is applied and acknowledged by the destination) and what was
// committed. Only acknowledged positions are ever committed. Safe for
// concurrent use; commits are serialized.
type offsets struct {
	mu        sync.Mutex
	acked     map[tp]kgo.EpochOffset
	committed map[tp]int64
	commitMu  sync.Mutex
	commit    commitFunc
}

func newOffsets(commit commitFunc) *offsets {
	return &offsets{acked: map[tp]kgo.EpochOffset{}, committed: map[tp]int64{}, commit: commit}
}

// ack moves a partition's acknowledged position forward (never back).
func (o *offsets) ack(p tp, eo kgo.EpochOffset) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur, ok := o.acked[p]; !ok || eo.Offset > cur.Offset {
		o.acked[p] = eo
	}
}

func (o *offsets) get(p tp) (acked kgo.EpochOffset, ackedOK bool, committed int64, committedOK bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	acked, ackedOK = o.acked[p]
	committed, committedOK = o.committed[p]
	return
}

// forget drops partitions (after revocation).
func (o *offsets) forget(ps map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, parts := range ps {
		for _, p := range parts {
			delete(o.acked, tp{t, p})
			delete(o.committed, tp{t, p})
		}
	}
}

// flush commits every acknowledged position not yet committed.
func (o *offsets) flush(ctx context.Context) error {
	o.commitMu.Lock()
	defer o.commitMu.Unlock()
	o.mu.Lock()
	todo := map[string]map[int32]kgo.EpochOffset{}
	n := 0
	for p, eo := range o.acked {
		if c, ok := o.committed[p]; ok && c >= eo.Offset {
			continue
		}
		if todo[p.topic] == nil {
			todo[p.topic] = map[int32]kgo.EpochOffset{}
		}
		todo[p.topic][p.partition] = eo
		n++
	}
	o.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := o.commit(ctx, todo); err != nil {
		return fmt.Errorf("committing offsets of %d partitions: %w", n, err)
	}
	o.mu.Lock()
	for t, ps := range todo {
		for p, eo := range ps {
			if c, ok := o.committed[tp{t, p}]; !ok || eo.Offset > c {
				o.committed[tp{t, p}] = eo.Offset
			}
		}
	}
	o.mu.Unlock()
	return nil
}
