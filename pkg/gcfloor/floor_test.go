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

// A small live heap gets a high GOGC, a live heap above the floor the
// default 100, and stop restores what Start found.
func TestStartFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	stop := Start(32 << 20)
	defer stop()
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
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if g := gogc(); g != 100 {
		t.Fatalf("collections after stop changed GOGC to %d", g)
	}
}

// An explicit GOGC turns it off.
func TestExplicitGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	stop := Start(32 << 20)
	defer stop()
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if g := gogc(); g != 100 {
		t.Fatalf("with GOGC set, GOGC became %d", g)
	}
}
