package app

import (
	"sort"
	"time"

	"github.com/logbridge/logbridge/schema"
)

// Phase is where the service is in its lifecycle.
type Phase string

// Phases, in order.
const (
	PhaseStarting  Phase = "starting"  // connecting, reading the state
	PhasePlanning  Phase = "planning"  // taking T0, listing namespaces, planning ranges
	PhaseSnapshot  Phase = "snapshot"  // copying
	PhaseStreaming Phase = "streaming" // change stream from T0 (or the stored resume point)
	PhaseStopped   Phase = "stopped"   // Run returned after its context ended
	PhaseFailed    Phase = "failed"    // Run returned an error (Status.Error)
)

// NamespaceProgress is the copy progress of one namespace. Counts are of
// documents committed to Kafka.
type NamespaceProgress struct {
	NS             string // "db.coll"
	Topic          string
	Type           string // collection, view, timeseries
	EstimatedDocs  int64  // estimatedDocumentCount at planning time
	EstimatedBytes int64  // storageStats.size at planning time (0 when unknown)
	CopiedDocs     int64
	CopiedBytes    int64
	RangesTotal    int
	RangesDone     int
	Done           bool
}

// Percent is the copied share of the estimate (100 when done).
func (n NamespaceProgress) Percent() float64 {
	switch {
	case n.Done:
		return 100
	case n.EstimatedDocs <= 0:
		return 0
	}
	p := 100 * float64(n.CopiedDocs) / float64(n.EstimatedDocs)
	if p > 99.9 {
		p = 99.9
	}
	return p
}

// Status is a snapshot of the service's progress, for the control API.
type Status struct {
	Phase Phase
	// T0 is the cluster time the change stream starts from.
	T0           schema.ClusterTime
	SnapshotDone bool
	Namespaces   []NamespaceProgress // sorted by NS
	// LastClusterTime is the cluster time of the last change event or
	// heartbeat committed to Kafka.
	LastClusterTime schema.ClusterTime
	// LastEventTime is the source wall time (or cluster time) of the last
	// change event or heartbeat committed.
	LastEventTime time.Time
	// LagSeconds is now − LastEventTime while streaming (0 before).
	LagSeconds      float64
	EventsPublished int64
	// Error is the error Run returned (PhaseFailed).
	Error     string
	StartedAt time.Time
}

// Totals sums the namespaces' progress.
func (s Status) Totals() (estDocs, copiedDocs, estBytes, copiedBytes int64) {
	for _, n := range s.Namespaces {
		estDocs += n.EstimatedDocs
		copiedDocs += n.CopiedDocs
		estBytes += n.EstimatedBytes
		copiedBytes += n.CopiedBytes
	}
	return
}

// Status returns a copy of the current status. Safe for concurrent use.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Namespaces = make([]NamespaceProgress, 0, len(s.progress))
	for _, n := range s.progress {
		st.Namespaces = append(st.Namespaces, *n)
	}
	sort.Slice(st.Namespaces, func(i, j int) bool { return st.Namespaces[i].NS < st.Namespaces[j].NS })
	if st.Phase == PhaseStreaming && !st.LastEventTime.IsZero() {
		st.LagSeconds = time.Since(st.LastEventTime).Seconds()
		if st.LagSeconds < 0 {
			st.LagSeconds = 0
		}
	}
	return st
}

func (s *Service) setPhase(p Phase) {
	s.mu.Lock()
	s.status.Phase = p
	s.mu.Unlock()
	s.log.Info("phase", "phase", string(p))
}
