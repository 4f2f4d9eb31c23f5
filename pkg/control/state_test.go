package control

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestLifecycle(t *testing.T) {
	params := StartParams{Source: "cluster0", Destination: "cluster1", Reversible: true}
	events := []Event{
		{Type: EvStart, Params: &params},
		{Type: EvPause}, {Type: EvResume},
		{Type: EvCommit},
		{Type: EvCommitMarked, MarkerID: "m1", ClusterTime: &ClusterTime{T: 5}},
		{Type: EvSinkCommitted, MarkerID: "m1", DestClusterTime: &ClusterTime{T: 9}},
		{Type: EvCommitted},
		{Type: EvReverse},
	}
	want := []State{Running, Paused, Running, Committing, Committing, Committing, Committed, Reversing}
	s := Status{State: Idle}
	for i, ev := range events {
		s.Apply(ev)
		if s.State != want[i] {
			t.Fatalf("after %s: got %s, want %s", ev.Type, s.State, want[i])
		}
	}
	rev := params.Reversed()
	s.Apply(Event{Type: EvReversed, Params: &rev})
	if s.State != Running || s.Epoch != 2 || s.Params.Source != "cluster1" || s.MarkerID != "" {
		t.Fatalf("after reversed: got %+v, want RUNNING epoch 2 from cluster1 with no marker", s)
	}
	if got := TopicPrefix("lb", s.Epoch); got != "lb-e2" {
		t.Fatalf("TopicPrefix got %q, want lb-e2", got)
	}
}

func TestPausedAt(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	s := Fold([]Event{{Type: EvStart, Params: &StartParams{Source: "a", Destination: "b"}}, {Type: EvPause, Time: at}})
	if s.State != Paused || !s.PausedAt.Equal(at) {
		t.Fatalf("after pause: %s, pausedAt %v; want PAUSED at %v", s.State, s.PausedAt, at)
	}
	s.Apply(Event{Type: EvPause, Time: at.Add(time.Hour)}) // a duplicate keeps the first
	if !s.PausedAt.Equal(at) {
		t.Fatalf("a duplicate pause moved pausedAt to %v", s.PausedAt)
	}
	s.Apply(Event{Type: EvResume})
	if s.State != Running || !s.PausedAt.IsZero() {
		t.Fatalf("after resume: %s, pausedAt %v; want RUNNING, zero", s.State, s.PausedAt)
	}
}

func TestOutOfOrderEventsAreIgnored(t *testing.T) {
	params := StartParams{Source: "a", Destination: "b"}
	s := Fold([]Event{
		{Type: EvCommit}, // before start
		{Type: EvStart, Params: &params},
		{Type: EvStart, Params: &StartParams{Source: "x"}}, // duplicate start
		{Type: EvCommitted},                                // not committing
		{Type: EvCommit},
		{Type: EvSinkCommitted, MarkerID: "other"}, // before the marker
		{Type: EvCommitted},                        // sink not done
	})
	if s.State != Committing || s.Params.Source != "a" || s.SinkCommitted {
		t.Fatalf("got %+v, want COMMITTING from a, sink not committed", s)
	}
}

func TestInvalidTransitionsAreRefused(t *testing.T) {
	tests := []struct {
		state      State
		reversible bool
		action     Action
		ok         bool
	}{
		{Idle, false, ActionStart, true},
		{Idle, false, ActionPause, false},
		{Idle, false, ActionCommit, false},
		{Idle, false, ActionResume, false},
		{Idle, false, ActionReverse, false},
		{Running, false, ActionStart, false},
		{Running, false, ActionPause, true},
		{Running, false, ActionCommit, true},
		{Running, false, ActionResume, false},
		{Running, false, ActionReverse, false},
		{Paused, false, ActionResume, true},
		{Paused, false, ActionCommit, false},
		{Paused, false, ActionPause, false},
		{Committing, false, ActionCommit, false},
		{Committing, false, ActionPause, false},
		{Committed, false, ActionReverse, false},
		{Committed, true, ActionReverse, true},
		{Committed, true, ActionCommit, false},
		{Reversing, true, ActionReverse, false},
	}
	for _, tt := range tests {
		s := Status{State: tt.state, Params: StartParams{Reversible: tt.reversible}}
		err := s.Check(tt.action)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidTransition)) {
			t.Errorf("%s in %s (reversible=%v): got %v, want ok=%v", tt.action, tt.state, tt.reversible, err, tt.ok)
		}
	}
}

func TestFirstSinkCommittedCounts(t *testing.T) {
	params := StartParams{Source: "a", Destination: "b", Reversible: true}
	s := Fold([]Event{
		{Type: EvStart, Params: &params}, {Type: EvCommit},
		{Type: EvCommitMarked, MarkerID: "m", ClusterTime: &ClusterTime{T: 5}},
		{Type: EvSinkCommitted, MarkerID: "m", DestClusterTime: &ClusterTime{T: 9}},
		{Type: EvSinkCommitted, MarkerID: "m", DestClusterTime: &ClusterTime{T: 12}}, // a restarted sink's duplicate
	})
	if !s.SinkCommitted || s.ResumeDestTime == nil || s.ResumeDestTime.T != 9 {
		t.Fatalf("got %+v, want the first sinkCommitted's destination time 9", s.ResumeDestTime)
	}
}

// TestClusterTimeEncoding pins the control log's JSON for cluster times
// ({"t":…,"i":…}, what logs written by earlier builds hold) and the one
// conversion to and from bson.Timestamp.
func TestClusterTimeEncoding(t *testing.T) {
	ts := bson.Timestamp{T: 1700000000, I: 7}
	ev := Event{V: 1, Type: EvCommitMarked, Time: time.Unix(0, 0).UTC(), MarkerID: "m", ClusterTime: TimeOf(ts)}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"v":1,"type":"commitMarked","time":"1970-01-01T00:00:00Z","markerId":"m","clusterTime":{"t":1700000000,"i":7}}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.ClusterTime.Timestamp(); got != ts {
		t.Fatalf("round trip: got %v, want %v", got, ts)
	}
}
