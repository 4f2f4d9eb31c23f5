package publish

import (
	"context"
	"testing"
	"time"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// The events of one source transaction (items chained with More) go into one
// Kafka transaction even when they exceed the batch limits; a batch is cut
// only between units.
func TestRunKeepsUnitsInOneTransaction(t *testing.T) {
	brokers := fakeKafka(t)
	p, _ := openPub(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := schema.Namespace{DB: "d", Coll: "u"}
	in := make(chan checkpoint.Item)
	var batches [][]int // per committed batch: the unit number of each record
	unitOf := map[string]int{}
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, in, Limits{MaxRecords: 2}, func(b *Batch) {
			var units []int
			for _, r := range b.Records {
				units = append(units, unitOf[string(r.Key)])
			}
			batches = append(batches, units)
		})
	}()
	n := 0
	for unit, size := range []int{1, 5, 3, 1, 4} {
		for i := range size {
			k := docKey(n)
			n++
			unitOf[string(k)] = unit
			in <- checkpoint.Item{Event: &schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: k, FullDocument: k}, More: i < size-1}
		}
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{} // unit → batch index
	total := 0
	for bi, units := range batches {
		for _, u := range units {
			total++
			if prev, ok := seen[u]; ok && prev != bi {
				t.Fatalf("unit %d split over batches %d and %d: %v", u, prev, bi, batches)
			}
			seen[u] = bi
		}
	}
	if total != n {
		t.Fatalf("committed %d records, want %d (%v)", total, n, batches)
	}
}

// Items already waiting when the committer is free go into one transaction:
// the batcher folds in what is queued before it hands a batch over, so a
// change stream batch read at once costs one Kafka transaction, not one per
// event (issue 21).
func TestRunFoldsQueuedItemsIntoOneTransaction(t *testing.T) {
	brokers := fakeKafka(t)
	p, _ := openPub(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := schema.Namespace{DB: "d", Coll: "q"}
	const n = 20
	in := make(chan checkpoint.Item, n)
	for i := range n {
		k := docKey(i)
		in <- checkpoint.Item{Event: &schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: k, FullDocument: k}}
	}
	close(in)
	var sizes []int
	if err := p.Run(ctx, in, Limits{}, func(b *Batch) { sizes = append(sizes, len(b.Records)) }); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[0] != n {
		t.Fatalf("got transactions of %v records, want one of %d", sizes, n)
	}
}
