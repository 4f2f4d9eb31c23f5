// Package control is the sync's state machine, kept as an event log in the
// Kafka topic <prefix>._control (one partition, kept forever). Both services
// derive their state by folding that log (Fold); neither needs another database.
//
// States follow mongosync: IDLE → RUNNING ⇄ PAUSED, RUNNING → COMMITTING →
// COMMITTED → REVERSING → RUNNING (a new epoch, endpoints swapped) … Each
// request is checked against the state (Status.Check) before its event is
// appended, and an invalid transition is refused with a reason.
//
// A start request is checked and compiled by Compile (namespace filter,
// regex options and RE2-inexpressible constructs refused by name, remap
// rules) before its event is written; every epoch start compiles the logged
// parameters with the same function.
//
// Events:
//
//	start            the start request's parameters; epoch 1 begins, RUNNING
//	pause / resume   RUNNING → PAUSED → RUNNING
//	commit           RUNNING → COMMITTING (the source blocks writes, takes the
//	                 final cluster time and writes commit markers)
//	commitMarked     the source wrote the commit markers (their id, cluster time)
//	sinkCommitted    the sink applied everything up to the markers
//	committed        COMMITTING → COMMITTED; destination writable
//	reverse          COMMITTED → REVERSING
//	reversed         REVERSING → RUNNING in epoch n+1, source and destination swapped
//
// Every event carries "v", the metadata version (pkg/version) of the binary
// that wrote it; events without it (written before 0.1.0) are version 1. A
// reader refuses an event of a newer version and an event type it does not
// know (Load fails with version.ErrNewerFormat, and both services stop)
// instead of skipping it: a skipped event could change the state.
//
//	log := control.NewLog(client, "logbridge")
//	st, err := log.Load(ctx)        // fold everything written so far
//	if err := st.Check(control.ActionPause); err != nil { … 409 … }
//	err = log.Append(ctx, control.Event{Type: control.EvPause})
package control
