// Package controlapi serves logbridge's mongosync-compatible control API on
// the source connector and carries out the lifecycle it records:
//
//	POST /api/v1/start    {source, destination, includeNamespaces, excludeNamespaces,
//	                       reversible, enableUserWriteBlocking, buildIndexes, namespaceRemap}
//	GET  /api/v1/progress {success, progress: {state, canCommit, canWrite, info,
//	                       lagTimeSeconds, totalEventsApplied, collectionCopy,
//	                       directionMapping, source, destination, warnings, …}}
//	POST /api/v1/pause, /resume, /commit, /reverse
//	POST /api/v1/verify   compare source and destination (pkg/verify); progress.verification
//
// Every request is checked against the state folded from the control topic
// (pkg/control) and recorded there as an event before it is acted on; the
// Controller's reconcile loop then makes the running source connector match
// the recorded state (run epoch N, stop, write commit markers, block or
// unblock user writes). A restarted service therefore continues where the log
// says it was. Cluster names in start requests ("cluster0", "cluster1") map to
// the URIs given with --cluster0 / --cluster1, as with mongosync.
//
// progress.lagTimeSeconds is the destination's lag behind the source, read
// from the sink group's committed offsets and the source time of the first
// record each partition has not applied yet (lag.go); progress.sink is the
// sink's position; progress.totalEventsApplied is the count the sink keeps
// on the destination (control.AppliedCount).
//
// A start is refused (400) before anything is written when it could not
// run: control.CheckRequest (reverse needs write blocking on both sides),
// control.Compile, and the checks of both clusters (prestart.go: topology,
// versions, destination data, the reverse prerequisites including legacy
// unique indexes on the source).
//
// Errors are JSON {success: false, error, errorDescription} with 400 for a bad
// request, 409 for a transition the current state does not allow and 413 for
// a body over httpapi.MaxBodyBytes. Authentication (401) is the listener's
// job (pkg/httpapi): every mutating route needs a token or client certificate.
//
// Locking: Controller.mu guards only in-memory state and is never held across
// I/O; Controller.ops serializes the writers of the control log (requests,
// reconcile, commit) across their Kafka and MongoDB calls, so progress
// answers while a start or commit is in flight.
package controlapi
