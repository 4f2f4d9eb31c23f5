package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errTransient = errors.New("transient")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

func TestDo(t *testing.T) {
	p := Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 5}
	tests := []struct {
		name      string
		failures  int
		failWith  error
		wantCalls int
		wantErr   error
	}{
		{name: "succeeds first", wantCalls: 1},
		{name: "transient then ok", failures: 3, failWith: errTransient, wantCalls: 4},
		{name: "permanent stops", failures: 3, failWith: errors.New("permanent"), wantCalls: 1, wantErr: errors.New("permanent")},
		{name: "attempts run out", failures: 10, failWith: errTransient, wantCalls: 5, wantErr: errTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Do(context.Background(), p, isTransient, func(context.Context) error {
				calls++
				if calls <= tt.failures {
					return tt.failWith
				}
				return nil
			})
			if calls != tt.wantCalls || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("got calls=%d err=%v, want calls=%d err=%v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}

func TestCancelledContextIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	_ = Do(ctx, Policy{Initial: time.Millisecond, Max: time.Millisecond}, isTransient, func(context.Context) error {
		calls++
		return errTransient
	})
	if calls != 1 {
		t.Fatalf("got %d calls, want 1", calls)
	}
}

// An operation that moves forward in each failed attempt is retried past
// MaxAttempts, and the wait starts over; one that stops moving runs out after
// MaxAttempts failures in a row.
func TestProgressStartsTheAttemptsOver(t *testing.T) {
	calls, progressUntil := 0, 12
	var retried []int
	p := Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxAttempts: 3,
		Progressed: func() bool { return calls <= progressUntil },
		OnRetry:    func(attempt int, _ error) { retried = append(retried, attempt) }}
	err := Do(context.Background(), p, isTransient, func(context.Context) error {
		calls++
		return errTransient
	})
	if !errors.Is(err, errTransient) {
		t.Fatalf("got %v, want the last transient error", err)
	}
	// 12 calls that progressed, then 3 in a row that did not.
	if want := progressUntil + 3; calls != want {
		t.Fatalf("got %d calls, want %d (every attempt that progressed retried, then MaxAttempts=3 without progress)", calls, want)
	}
	if len(retried) != calls-1 || retried[len(retried)-1] != calls-1 {
		t.Fatalf("OnRetry saw attempts %v, want 1..%d", retried, calls-1)
	}
}
