// Package throttle paces work to a rate in documents and bytes per second:
// the source-connector's snapshot reads (--max-read-rate) and the
// sink-connector's destination writes (--max-write-rate), so that a
// migration cannot saturate a production cluster.
//
// A Limiter is a pacer (a virtual clock, like GCRA): each Wait books the
// time its documents and bytes take at the rate, after what is booked
// already, and returns when that booking ends, so the rate equals the limit
// whatever the request sizes, with no burst. Set changes the rate
// while work runs (the control API's POST /api/v1/throttle).
//
//	r, err := throttle.ParseRate("docs=5000,bytes=8MiB") // per second
//	l := throttle.New(r)
//	err = l.Wait(ctx, len(batch), batchBytes)
//
// Rates are written "docs=N", "bytes=N" (with an optional K, M, G, KiB,
// MiB or GiB suffix) or both, comma-separated; "" or "0" is unlimited.
package throttle
