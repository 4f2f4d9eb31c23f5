// Package gomaxprocs runs a connector on one P (GOMAXPROCS=1) while it
// uses little CPU, and on all of them again as soon as it gets busy.
//
// Why: streaming at a moderate rate, the connectors spend their CPU on
// round trips (a getMore, a Kafka transaction, a fetch, a bulk write), each
// of which hands work from one goroutine to another several times. With an
// idle second P, the Go scheduler wakes a thread for every handoff, which
// then spins looking for work: at 500 events/s a third of each connector's
// CPU per event went to that (runtime.findRunnable, futex; tests/bench
// BenchmarkChangeStreamLag with GOMAXPROCS=1 against the default, issue
// 21). On one P a handed-over goroutine waits in the local run queue
// instead. A snapshot or a catch-up needs every core, so a process that
// uses more than High cores gets its GOMAXPROCS back within one Interval.
//
// A GOMAXPROCS environment variable turns it off: an explicit setting wins.
package gomaxprocs
