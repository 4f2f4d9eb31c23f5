package retry

import (
	"context"
	"time"
)

// Policy bounds the retries.
type Policy struct {
	Initial     time.Duration // first wait
	Max         time.Duration // cap on one wait
	MaxAttempts int           // 0: until the context ends
	// OnRetry, if set, is told of each retried error (for logs and metrics);
	// attempt counts every call of the operation so far.
	OnRetry func(attempt int, err error)
	// Progressed, if set, is asked after each failed attempt whether the
	// operation moved forward in it (a long read that handed over documents
	// before its connection dropped). If so, MaxAttempts and the wait start
	// over: an operation that keeps advancing between transient failures is
	// not stuck, and giving up on it would throw away a long copy.
	Progressed func() bool
}

// Default waits 100 ms, doubling to 10 s, for up to 10 attempts.
var Default = Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: 10}

// Do calls fn until it succeeds, returns a non-transient error, the attempts run
// out (MaxAttempts failures in a row without progress) or ctx ends. It returns
// fn's last error (or ctx's error).
func Do(ctx context.Context, p Policy, transient func(error) bool, fn func(context.Context) error) error {
	wait := p.Initial
	stalled := 0 // failed attempts in a row that did not progress
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if p.Progressed != nil && p.Progressed() {
			stalled, wait = 0, p.Initial
		} else {
			stalled++
		}
		if ctx.Err() != nil || !transient(err) || (p.MaxAttempts > 0 && stalled >= p.MaxAttempts) {
			return err
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		if wait *= 2; wait > p.Max {
			wait = p.Max
		}
	}
}
