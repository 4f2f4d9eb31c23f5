package supervise

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPermanentFailureNotRestarted: a failure Config.Permanent picks stops
// the restarts and is kept in Fatal; other failures are restarted as before.
func TestPermanentFailureNotRestarted(t *testing.T) {
	errNewer := errors.New("newer format")
	cfg := Config{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, ResetAfter: time.Hour, StopTimeout: time.Second,
		Permanent: func(err error) bool { return errors.Is(err, errNewer) }}
	s, _ := newSup(t, cfg)
	var starts atomic.Int32
	s.Ensure(context.Background(), 1, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		if starts.Add(1) < 3 {
			return nil, errors.New("transient")
		}
		return nil, fmt.Errorf("reading state: %w", errNewer)
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Fatal() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no fatal error after %d starts", starts.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // several backoffs' worth: no further start
	if got := starts.Load(); got != 3 {
		t.Fatalf("got %d starts, want 3 (two transient failures restarted, the permanent one not)", got)
	}
	if !errors.Is(s.Fatal(), errNewer) {
		t.Fatalf("Fatal: got %v", s.Fatal())
	}
	if st := s.Status(); st.Restarts != 2 || !st.NextStart.IsZero() || st.LastError == "" {
		t.Fatalf("status: got %+v, want 2 restarts, no next start, the last error", st)
	}
}
