package throttle

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr bool
	}{
		{in: "", want: Rate{}},
		{in: "0", want: Rate{}},
		{in: "docs=5000", want: Rate{Docs: 5000}},
		{in: "docs=2k", want: Rate{Docs: 2000}},
		{in: "bytes=8MiB", want: Rate{Bytes: 8 << 20}},
		{in: "bytes=10MB, docs=100", want: Rate{Docs: 100, Bytes: 10e6}},
		{in: "bytes=1.5K", want: Rate{Bytes: 1500}},
		{in: "docs=5MiB", wantErr: true},
		{in: "docs=-1", wantErr: true},
		{in: "rows=5", wantErr: true},
		{in: "5000", wantErr: true},
		{in: "bytes=abc", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseRate(%q): got %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if again, err := ParseRate(got.String()); err != nil || again != got {
				t.Errorf("ParseRate(%q).String() = %q does not read back: %+v, %v", tt.in, got.String(), again, err)
			}
		}
	}
}

// TestPacingArithmetic checks the reservations on a fake clock: each
// request waits for the time the previous ones take at the rate.
func TestPacingArithmetic(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(Rate{Docs: 100, Bytes: 1000})
	l.now = func() time.Time { return now }
	for i, tc := range []struct {
		docs, bytes int
		want        time.Duration
	}{
		{10, 10, 100 * time.Millisecond},  // 100 ms (the docs bind)
		{10, 500, 600 * time.Millisecond}, // then 500 ms (the bytes bind)
		{1, 1, 610 * time.Millisecond},
	} {
		if got := l.reserve(tc.docs, tc.bytes); got != tc.want {
			t.Fatalf("request %d: wait %v, want %v", i, got, tc.want)
		}
	}
	l.Set(Rate{})
	if got := l.reserve(1000, 1000); got != 0 {
		t.Fatalf("unlimited: wait %v, want 0", got)
	}
}

// TestRateHolds runs concurrent workers through a limiter in real time and
// checks the achieved rate is within 10% of the setting, then changes the
// setting while they run and checks the new rate.
func TestRateHolds(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s of real time")
	}
	l := New(Rate{Docs: 2000})
	measure := func(d time.Duration) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var mu sync.Mutex
		var grants []time.Time // when each request of 50 documents may go
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if l.Wait(ctx, 50, 50*300) != nil {
						return
					}
					mu.Lock()
					grants = append(grants, time.Now())
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		// From the first grant to the last: the requests after the first
		// went in that span (a window's edges would count reservations
		// cut off by its end).
		span := grants[len(grants)-1].Sub(grants[0]).Seconds()
		return float64(50*(len(grants)-1)) / span
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if got < 0.9*want || got > 1.1*want {
			t.Fatalf("%s: %.0f docs/s, want %.0f ± 10%%", name, got, want)
		}
		t.Logf("%s: %.0f docs/s (limit %.0f)", name, got, want)
	}
	check("docs=2000", measure(1500*time.Millisecond), 2000)
	// The byte limit binds: 50 docs of 300 bytes = 15 kB per request.
	l.Set(Rate{Docs: 100000, Bytes: 300_000})
	check("bytes=300000 (1000 docs/s of 300 bytes)", measure(1500*time.Millisecond), 1000)
}

// BenchmarkWaitUnlimited is the cost of a Wait on an unlimited limiter
// (the default: it must not slow the hot path).
func BenchmarkWaitUnlimited(b *testing.B) {
	l := New(Rate{})
	ctx := context.Background()
	for b.Loop() {
		_ = l.Wait(ctx, 100, 10000)
	}
}
