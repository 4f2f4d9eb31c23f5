// Package app wires the source connector: it connects to the source and to
// Kafka, reads the source state, plans and runs the snapshot, then streams
// changes, all through one transactional publisher.
//
// Lifecycle of Run:
//
//  1. connect to the source (a replica set or mongos; a standalone fails
//     with mongox.ErrNotReplicaSet) and to Kafka; open the publisher, which
//     fences older producers of the same transactional id and reads the
//     state topic with read_committed isolation;
//  2. without a plan in the state: take T0 (appendOplogNote), list the
//     included namespaces, plan _id ranges and commit, in one transaction,
//     a DDL create (options, views) and createIndexes record into every
//     partition of each namespace's topic together with the plan (T0,
//     namespaces, ranges);
//  3. until the snapshot is done: read the pending ranges (parallel,
//     bounded) into the pipeline; each transaction carries the range
//     checkpoints of its documents; then commit a snapshotDone marker into
//     every partition of every snapshotted topic with the snapshot state;
//  4. stream: one cluster-wide change stream from the stored resume token,
//     or from T0 when there is none. The oplog must still hold T0 when the
//     snapshot ends: size it to cover the whole snapshot.
//
// Snapshot records therefore precede every change event of the same
// document in its partition; change events replayed from T0 converge over
// them. A crash at any point leaves the log and the state consistent: the
// next Run skips finished ranges, continues a partial range after its last
// _id and resumes the stream after its last committed token.
//
// Usage:
//
//	cfg := app.DefaultConfig()
//	cfg.SourceURI = "mongodb://db1:27017/?replicaSet=rs0"
//	svc, err := app.New(cfg, logger, prometheus.DefaultRegisterer)
//	go func() { err = svc.Run(ctx) }()
//	st := svc.Status() // phase, per-namespace progress, lag
package app
