package app

import (
	"context"
	"fmt"
	"time"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/source-connector/internal/publish"
)

// markRequest asks the stream to publish a control marker once it has
// published every change up to UpTo.
type markRequest struct {
	marker *schema.Marker
	upTo   schema.ClusterTime
	queued chan struct{} // closed when the marker item entered the pipeline
}

// MarkCommit publishes a commit marker into every partition of every topic
// of the log, after every change event up to the source cluster time upTo,
// and returns once the marker's Kafka transaction committed. It blocks while
// the stream has not reached upTo (a heartbeat moves a quiet stream on).
func (s *Service) MarkCommit(ctx context.Context, id string, upTo schema.ClusterTime) error {
	req := &markRequest{marker: &schema.Marker{Kind: schema.MarkerCommit, ID: id}, upTo: upTo, queued: make(chan struct{})}
	select {
	case s.marks <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.queued:
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		done := s.markersCommitted[id]
		failed := s.status.Phase == PhaseFailed || s.status.Phase == PhaseStopped
		s.mu.Unlock()
		if done {
			return nil
		}
		if failed {
			return fmt.Errorf("the source connector stopped before commit marker %s was published", id)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// mergeMarks forwards the stream's items and, once the stream has passed a
// request's cluster time, one broadcast marker item into every topic of the
// log. A single item lands in a single transaction, so the marker is in all
// partitions or in none.
func (s *Service) mergeMarks(ctx context.Context, pub *publish.Publisher, epoch int64, source string, in <-chan checkpoint.Item, out chan<- checkpoint.Item) error {
	defer close(out)
	var last schema.ClusterTime
	var pending []*markRequest
	inUnit := false // inside a source transaction's items (Item.More): no marker may split it
	send := func(it checkpoint.Item) error {
		select {
		case out <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	flush := func() error {
		keep := pending[:0]
		for _, r := range pending {
			if last.Before(r.upTo) {
				keep = append(keep, r)
				continue
			}
			var targets []schema.Namespace
			for _, n := range pub.Catalog("") {
				targets = append(targets, n.NS())
			}
			ev := &schema.Event{Op: schema.OpMarker, ClusterTime: last, Epoch: epoch, Source: source, Marker: r.marker}
			if len(targets) > 0 {
				ev.NS = targets[0]
				// Pending before the send: the batch may commit at once.
				s.mu.Lock()
				s.pendingMarkers = append(s.pendingMarkers, r.marker.ID)
				s.mu.Unlock()
				if err := send(checkpoint.Item{Event: ev, Broadcast: true, Targets: targets}); err != nil {
					return err
				}
			} else {
				// Nothing to mark: no topic exists.
				s.mu.Lock()
				s.markersCommitted[r.marker.ID] = true
				s.mu.Unlock()
			}
			close(r.queued)
		}
		pending = keep
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-s.marks:
			pending = append(pending, r)
			if inUnit {
				continue
			}
			if err := flush(); err != nil {
				return err
			}
		case it, ok := <-in:
			if !ok {
				return nil
			}
			if ct := itemClusterTime(it); !ct.Before(last) {
				last = ct
			}
			if err := send(it); err != nil {
				return err
			}
			if inUnit = it.More; inUnit {
				continue
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// itemClusterTime is the source cluster time an item brings the stream to.
func itemClusterTime(it checkpoint.Item) schema.ClusterTime {
	if it.Event != nil {
		return it.Event.ClusterTime
	}
	for _, u := range it.State {
		if st, ok := u.Value.(*checkpoint.StreamState); ok {
			return st.ClusterTime
		}
	}
	return schema.ClusterTime{}
}
