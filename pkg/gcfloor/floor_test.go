package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, base, floor int64
		want              int
	}{
		{6 * mib, 8 * mib, 32 * mib, 400},     // goal 6 + 8 × 4 = 38 MiB
		{2 * mib, 3 * mib, 32 * mib, 850},     // the 4 MiB minimum × 8.5 = 34 MiB decides
		{32 * mib, 34 * mib, 32 * mib, 100},   // at the floor: the default
		{100 * mib, 101 * mib, 32 * mib, 100}, // large heap: never below 100
		{0, 0, 400 * mib, 10_000},             // capped
	} {
		if got := Percent(c.live, c.base, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.base, c.floor, got, c.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC collects until GOGC satisfies ok (the tuner runs after a
// collection, in a cleanup goroutine).
func waitGOGC(t *testing.T, what string, ok func(int) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		runtime.GC()
		if g := gogc(); ok(g) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed %d, want %s", gogc(), what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var live []byte

// startAt100 starts the tuner from GOGC=100 with the GOGC environment
// variable set to env ("" for unset); the cleanup stops it and restores the
// process's GOGC.
func startAt100(t *testing.T, env string) (stop func()) {
	t.Setenv("GOGC", env)
	prev := debug.SetGCPercent(100)
	stop = Start(32 << 20)
	t.Cleanup(func() { stop(); debug.SetGCPercent(prev) })
	return stop
}

// settle runs a few collections and gives their cleanups time to run.
func settle() {
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

// A small live heap gets a high GOGC, a live heap above the floor the
// default 100, and stop restores what Start found.
func TestStartFollowsTheLiveHeap(t *testing.T) {
	stop := startAt100(t, "")
	waitGOGC(t, "> 300 for a live heap of a few MiB", func(g int) bool { return g > 300 })

	live = make([]byte, 96<<20)
	for i := range live { // touch it: the heap counts it either way
		live[i] = byte(i)
	}
	waitGOGC(t, "100 for a live heap of 96 MiB", func(g int) bool { return g == 100 })

	live = nil
	waitGOGC(t, "> 300 again once the heap is small", func(g int) bool { return g > 300 })

	stop()
	if g := gogc(); g != 100 {
		t.Fatalf("after stop GOGC = %d, want the 100 Start found", g)
	}
	settle()
	if g := gogc(); g != 100 {
		t.Fatalf("collections after stop changed GOGC to %d", g)
	}
}

// An explicit GOGC turns it off.
func TestExplicitGOGCWins(t *testing.T) {
	startAt100(t, "100")
	settle()
	if g := gogc(); g != 100 {
		t.Fatalf("with GOGC set, GOGC became %d", g)
	}
}
