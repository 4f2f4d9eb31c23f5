// Package gcfloor keeps a connector's Go heap goal at least a floor above
// its live heap, so that a small heap is not collected several times a
// second.
//
// Why: streaming, a connector's live heap is a few MiB, and with GOGC=100
// the runtime's goal is then its 4 MiB minimum: at 2,300 events/s the
// source collected 8 times a second and the sink 4 times, and garbage
// collection (mark workers, mostly the idle-P one) took 15-20% of each
// one's CPU per event (tests/bench BenchmarkChangeStreamLag, pprof and
// go_gc_duration_seconds_count, issue 21). The cost of a cycle is mostly
// fixed at this size, so fewer cycles is less CPU.
//
// After every collection it sets GOGC so that the next goal is the live
// heap + Floor, or what GOGC=100 gives if that is more (Percent; the
// runtime scales its 4 MiB minimum goal with GOGC too): a live heap of 3
// MiB gets a goal of about 3 + 32 MiB, one of 100 MiB (a snapshot's
// buffers) keeps GOGC=100 and its usual goal of twice the live heap, so
// the peak memory of large heaps does not change. The cost is up to Floor
// more resident memory while the heap is small (streaming at 2,300
// events/s: peak RSS source 69, sink 60 MiB instead of 28 and 36).
//
// A GOGC environment variable turns it off: an explicit setting wins.
package gcfloor
