package gomaxprocs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestNextDecisions(t *testing.T) {
	cfg := Config{Max: 4}.withDefaults()
	s := state{procs: 4}
	steps := []struct {
		used  float64
		procs int
	}{
		{0.1, 4}, {0.1, 4}, // calm, but not for Calm intervals yet
		{0.3, 4},                     // between Low and High: the calm count starts over
		{0.1, 4}, {0.1, 4}, {0.1, 1}, // three calm intervals in a row: one P
		{0.3, 1},  // between: stays
		{0.6, 4},  // busy: all of them at once
		{0.05, 4}, // calm again starts counting from zero
	}
	for i, st := range steps {
		s.next(cfg, st.used)
		if s.procs != st.procs {
			t.Fatalf("step %d (%.2f cores): GOMAXPROCS %d, want %d", i, st.used, s.procs, st.procs)
		}
	}
}

// TestAdaptFollowsTheProcess runs Adapt for real: an idle process goes to
// one P, a busy one gets its GOMAXPROCS back, and Adapt restores it when it
// returns.
func TestAdaptFollowsTheProcess(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // an explicit setting would turn Adapt off
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("needs at least 2 CPUs")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Adapt(ctx, Config{Interval: 50 * time.Millisecond, Calm: 2, Low: 0.05, High: 0.1}) // a low High: the machine may be busy
	}()
	waitFor(t, "one P while idle", func() bool { return runtime.GOMAXPROCS(0) == 1 })

	var busy atomic.Bool
	busy.Store(true)
	go func() { // one busy goroutine: up to one core, above High
		for busy.Load() {
		}
	}()
	waitFor(t, "all Ps back while busy", func() bool { return runtime.GOMAXPROCS(0) == max })
	busy.Store(false)
	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Fatalf("GOMAXPROCS %d after Adapt returned, want %d restored", got, max)
	}
}

func TestExplicitSettingWins(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	before := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	Adapt(ctx, Config{Interval: 20 * time.Millisecond, Calm: 1}) // returns at once
	if ctx.Err() != nil {
		t.Fatal("Adapt ran although GOMAXPROCS was set")
	}
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS changed to %d", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (GOMAXPROCS %d)", what, runtime.GOMAXPROCS(0))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
