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
