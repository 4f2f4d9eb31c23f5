package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultFloor is the headroom kept above a small live heap (32 MiB).
const DefaultFloor = 32 << 20

// maxPercent bounds GOGC for a nearly empty heap.
const maxPercent = 10_000

// The runtime's heap goal is live + (live + stacks + globals) × GOGC/100.
var goalBase = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Start keeps the heap goal at least floor bytes (DefaultFloor when 0 or
// less) above the live heap until stop is called, which restores the
// GOGC it found. It does nothing when the GOGC environment variable is set.
func Start(floor int64) (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	if floor <= 0 {
		floor = DefaultFloor
	}
	t := &tuner{floor: floor}
	for _, name := range goalBase {
		t.sample = append(t.sample, metrics.Sample{Name: name})
	}
	t.orig = debug.SetGCPercent(100)
	debug.SetGCPercent(t.orig)
	t.arm()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.stopped.Store(true)
			debug.SetGCPercent(t.orig)
		})
	}
}

type tuner struct {
	floor   int64
	orig    int
	stopped atomic.Bool
	mu      sync.Mutex // adjust against stop
	sample  []metrics.Sample
}

// sentinel is allocated per collection; its cleanup runs after the
// collection that found it unreachable. (It holds a pointer so that it is
// not a tiny allocation, whose cleanup may never run.)
type sentinel struct {
	_ *int
	_ [8]byte
}

func (t *tuner) arm() {
	s := &sentinel{}
	runtime.AddCleanup(s, func(t *tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets GOGC for what the last collection measured.
func (t *tuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample)
	var v [3]int64
	for i, s := range t.sample {
		if s.Value.Kind() != metrics.KindUint64 {
			return
		}
		v[i] = int64(s.Value.Uint64())
	}
	debug.SetGCPercent(Percent(v[0], v[0]+v[1]+v[2], t.floor))
}

// heapMinimum is the runtime's smallest heap goal at GOGC=100; it scales
// with GOGC (runtime/mgcpacer.go, defaultHeapMinimum).
const heapMinimum = 4 << 20

// Percent is the GOGC that puts the heap goal floor bytes above a live heap
// of live bytes, where base is what the runtime takes GOGC as a percentage
// of (live heap + stacks + globals): the goal is the larger of
// live + base × GOGC/100 and heapMinimum × GOGC/100. Never below 100, at
// most 10,000.
func Percent(live, base, floor int64) int {
	p := int64(maxPercent)
	if base > 0 {
		p = floor * 100 / base
	}
	p = min(p, (live+floor)*100/heapMinimum)
	return int(min(max(p, 100), maxPercent))
}
