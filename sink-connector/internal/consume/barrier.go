package consume

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// barrier gathers the partitions of one topic at a DDL or marker record.
// Every copy of the record carries the same ID, and the source writes them in
// the same order into every partition, so the partitions meet at one ID at a
// time. The last partition to arrive runs complete (apply the DDL once,
// commit); the others wait for it and get its result.
type barrier struct {
	topic string
	parts int // partitions of the topic this member owns (all of them)

	mu    sync.Mutex
	id    string
	at    map[int32]kgo.EpochOffset
	round *round
}

type round struct {
	done chan struct{}
	err  error
}

func newBarrier(topic string, parts int) *barrier { return &barrier{topic: topic, parts: parts} }

// arrive records that partition reached barrier id at offset at, and blocks
// until every partition of the topic has reached it and complete has run (by
// the last arriver), or ctx ends. complete gets the barrier record's offset
// in every partition.
func (b *barrier) arrive(ctx context.Context, partition int32, id string, at kgo.EpochOffset,
	complete func(ctx context.Context, at map[int32]kgo.EpochOffset) error,
) error {
	b.mu.Lock()
	if b.round == nil {
		b.id, b.at, b.round = id, map[int32]kgo.EpochOffset{}, &round{done: make(chan struct{})}
	} else if b.id != id {
		waiting := b.id
		b.mu.Unlock()
		return fmt.Errorf("%w: topic %s partition %d reached barrier %q while other partitions wait at %q",
			ErrBarrierMismatch, b.topic, partition, id, waiting)
	}
	b.at[partition] = at
	r := b.round
	if len(b.at) < b.parts {
		b.mu.Unlock()
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	all := b.at
	b.id, b.at, b.round = "", nil, nil
	b.mu.Unlock()
	r.err = complete(ctx, all)
	close(r.done)
	return r.err
}
