package supervise

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeSvc struct {
	run func(ctx context.Context) error
}

func (f *fakeSvc) Run(ctx context.Context) error { return f.run(ctx) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newSup(t *testing.T, cfg Config) (*Supervisor[*fakeSvc], *prometheus.Registry) {
	t.Helper()
	base := prometheus.NewRegistry()
	s, err := New[*fakeSvc](cfg, "test", quiet(), NewRegistries(base))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, base
}

func TestDelayGrowsAndIsCapped(t *testing.T) {
	c := Config{Initial: time.Second, Max: 10 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 10, 10, 10}
	for i, w := range want {
		if got := c.Delay(i + 1); got != w*time.Second {
			t.Errorf("Delay(%d): got %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := c.Delay(200); got != 10*time.Second {
		t.Errorf("Delay(200): got %v, want the cap", got)
	}
}

// TestBackoffSpacing drives the loop with an injected sleep: the delays the
// supervisor waits grow, stay under the cap and within the jitter bound.
func TestBackoffSpacing(t *testing.T) {
	cfg := Config{Initial: time.Second, Max: 30 * time.Second, ResetAfter: time.Hour, Jitter: 0.2, StopTimeout: time.Second}
	s, base := newSup(t, cfg)
	var mu sync.Mutex
	var delays []time.Duration
	done := make(chan struct{})
	const n = 9
	s.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		delays = append(delays, d)
		if len(delays) == n {
			close(done)
			return false
		}
		return true
	}
	starts := 0
	s.Ensure(context.Background(), 1, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		starts++
		return nil, errors.New("auth failed for mongodb://u:hunter22@h/")
	})
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, d := range delays {
		nominal := cfg.Delay(i + 1)
		lo := time.Duration(float64(nominal) * (1 - cfg.Jitter))
		if d < lo || d > nominal || d > cfg.Max {
			t.Errorf("delay %d: got %v, want within [%v, %v]", i+1, d, lo, nominal)
		}
		if i > 0 && nominal < cfg.Max && d <= delays[i-1] {
			t.Errorf("delay %d: got %v, not longer than the previous %v", i+1, d, delays[i-1])
		}
	}
	if delays[n-1] < time.Duration(float64(cfg.Max)*(1-cfg.Jitter)) {
		t.Errorf("last delay %v: the backoff never reached the cap %v", delays[n-1], cfg.Max)
	}
	if got := counterValue(t, s.restarts); got != n {
		t.Errorf("restarts_total: got %v, want %d", got, n)
	}
	if c, err := gatherCount(base, "logbridge_test_epoch_restarts_total", "logbridge_test_epoch_last_error_timestamp_seconds"); err != nil || c != 2 {
		t.Errorf("metrics in the process registry: got %d (%v), want 2", c, err)
	}
	st := s.Status()
	if st.Restarts != n || st.LastErrorAt.IsZero() || !strings.Contains(st.LastError, "auth failed") {
		t.Errorf("status: got %+v", st)
	}
}

// TestBackoffRealClock measures the spacing of attempts with a short base.
func TestBackoffRealClock(t *testing.T) {
	cfg := Config{Initial: 40 * time.Millisecond, Max: 160 * time.Millisecond, ResetAfter: time.Hour, Jitter: 0, StopTimeout: time.Second}
	s, _ := newSup(t, cfg)
	var mu sync.Mutex
	var at []time.Time
	s.Ensure(context.Background(), 1, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return nil, errors.New("refused")
	})
	time.Sleep((40 + 80 + 160 + 160 + 100) * time.Millisecond)
	s.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(at) < 5 {
		t.Fatalf("got %d attempts, want at least 5", len(at))
	}
	want := []time.Duration{40, 80, 160, 160}
	for i, w := range want {
		gap := at[i+1].Sub(at[i])
		if gap < w*time.Millisecond || gap > w*time.Millisecond+150*time.Millisecond {
			t.Errorf("gap %d: got %v, want about %v", i+1, gap, w*time.Millisecond)
		}
	}
}

// TestResetAfterLongRun: a run that stayed up ResetAfter starts the backoff
// from Initial again.
func TestResetAfterLongRun(t *testing.T) {
	cfg := Config{Initial: time.Second, Max: time.Minute, ResetAfter: time.Minute, Jitter: 0, StopTimeout: time.Second}
	s, _ := newSup(t, cfg)
	var mu sync.Mutex
	clock := time.Unix(1_000_000, 0)
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	var delays []time.Duration
	done := make(chan struct{})
	s.sleep = func(_ context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		delays = append(delays, d)
		clock = clock.Add(d)
		if len(delays) == 4 {
			close(done)
			return false
		}
		return true
	}
	attempt := 0
	s.Ensure(context.Background(), 1, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		attempt++
		a := attempt
		return &fakeSvc{run: func(context.Context) error {
			if a == 3 { // the third run stays up two minutes
				mu.Lock()
				clock = clock.Add(2 * time.Minute)
				mu.Unlock()
			}
			return errors.New("lost the connection")
		}}, nil
	})
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{time.Second, 2 * time.Second, time.Second, 2 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Errorf("delay %d: got %v, want %v (all %v)", i+1, delays[i], want[i], delays)
		}
	}
}

// TestEpochChange stops the old epoch's service and runs the new one, each
// attempt with a fresh registry (the same metric registers every time).
func TestEpochChange(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Initial, cfg.Max = time.Millisecond, time.Millisecond
	s, _ := newSup(t, cfg)
	stopped := make(chan int, 2)
	start := func(epoch int) StartFunc[*fakeSvc] {
		return func(_ context.Context, reg *prometheus.Registry) (*fakeSvc, error) {
			if err := reg.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "per_epoch_total", Help: "x"})); err != nil {
				return nil, err
			}
			return &fakeSvc{run: func(ctx context.Context) error {
				<-ctx.Done()
				stopped <- epoch
				return nil
			}}, nil
		}
	}
	s.Ensure(context.Background(), 1, start(1))
	waitFor(t, func() bool { _, e, ok := s.Current(); return ok && e == 1 })
	s.Ensure(context.Background(), 1, start(1)) // same epoch: nothing happens
	s.Ensure(context.Background(), 2, start(2))
	if got := <-stopped; got != 1 {
		t.Fatalf("stopped epoch %d, want 1", got)
	}
	waitFor(t, func() bool { _, e, ok := s.Current(); return ok && e == 2 })
	if st := s.Status(); st.Epoch != 2 || st.Restarts != 0 || !st.Running {
		t.Fatalf("status: got %+v, want epoch 2 running without restarts", st)
	}
	if n, err := gatherCount(s.regs, "per_epoch_total"); err != nil || n != 1 {
		t.Fatalf("epoch metric served: got %d (%v), want 1", n, err)
	}
	s.Stop()
	if got := <-stopped; got != 2 {
		t.Fatalf("stopped epoch %d, want 2", got)
	}
	if _, _, ok := s.Current(); ok {
		t.Fatal("a service still runs after Stop")
	}
}

// TestRedactedError: the stored and logged error goes through Redact.
func TestRedactedError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Redact = func(s string) string { return strings.ReplaceAll(s, "hunter22", "xxxxx") }
	s, _ := newSup(t, cfg)
	s.sleep = func(ctx context.Context, _ time.Duration) bool { <-ctx.Done(); return false }
	s.Ensure(context.Background(), 3, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		return nil, errors.New("auth failed with hunter22")
	})
	waitFor(t, func() bool { return s.Status().Restarts == 1 })
	r := s.Status().Report()
	if strings.Contains(r.LastError, "hunter22") || !strings.Contains(r.LastError, "xxxxx") || r.LastErrorTime == nil || r.NextRestart == nil {
		t.Fatalf("report: got %+v", r)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{name: "default", mod: func(*Config) {}, ok: true},
		{name: "zero initial", mod: func(c *Config) { c.Initial = 0 }},
		{name: "max below initial", mod: func(c *Config) { c.Max = c.Initial / 2 }},
		{name: "negative reset", mod: func(c *Config) { c.ResetAfter = -time.Second }},
		{name: "jitter too large", mod: func(c *Config) { c.Jitter = 0.9 }},
		{name: "zero stop timeout", mod: func(c *Config) { c.StopTimeout = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// gatherCount counts the families with the given names g serves.
func gatherCount(g prometheus.Gatherer, names ...string) (int, error) {
	fams, err := g.Gather()
	n := 0
	for _, f := range fams {
		for _, name := range names {
			if f.GetName() == name {
				n++
			}
		}
	}
	return n, err
}

func TestBackoffHelper(t *testing.T) {
	b := NewBackoff(Config{Initial: time.Second, Max: 4 * time.Second})
	now := time.Unix(0, 0)
	if !b.Ready(now) {
		t.Fatal("a fresh backoff is not ready")
	}
	var got []time.Duration
	for range 4 {
		got = append(got, b.Failed(now))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays: got %v, want %v", got, want)
		}
	}
	if b.Ready(now.Add(3*time.Second)) || !b.Ready(now.Add(4*time.Second)) {
		t.Fatal("Ready ignores the last delay")
	}
	b.Succeeded()
	if !b.Ready(now) || b.Failed(now) != time.Second {
		t.Fatal("Succeeded did not reset the delays")
	}
}

// gaugeValue returns the value of the gauge family name in g (-1: absent).
func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestEpochRunningMetric: epoch_running is 1 only while the service runs,
// and is exported while the epoch fails to start.
func TestEpochRunningMetric(t *testing.T) {
	cfg := Config{Initial: time.Hour, Max: time.Hour, ResetAfter: time.Hour, StopTimeout: time.Second}
	s, base := newSup(t, cfg)
	const name = "logbridge_test_epoch_running"
	if v := gaugeValue(t, base, name); v != 0 {
		t.Fatalf("before any epoch: got %v, want 0", v)
	}
	failed := make(chan struct{})
	s.Ensure(context.Background(), 1, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		defer close(failed)
		return nil, errors.New("cannot reach the destination")
	})
	<-failed
	time.Sleep(20 * time.Millisecond)
	if v := gaugeValue(t, base, name); v != 0 {
		t.Fatalf("while the epoch cannot start: got %v, want 0", v)
	}
	s.Stop()
	running := make(chan struct{})
	s.Ensure(context.Background(), 2, func(context.Context, *prometheus.Registry) (*fakeSvc, error) {
		return &fakeSvc{run: func(ctx context.Context) error { close(running); <-ctx.Done(); return nil }}, nil
	})
	<-running
	if v := gaugeValue(t, base, name); v != 1 {
		t.Fatalf("while the epoch runs: got %v, want 1", v)
	}
	s.Stop()
	if v := gaugeValue(t, base, name); v != 0 {
		t.Fatalf("after Stop: got %v, want 0", v)
	}
}
