// Package checkpoint is the source connector's durable progress model: the
// state records of the compacted source-state topic (State and its parts)
// and the Item that carries a log event together with the checkpoint it
// advances.
//
// What a checkpoint promises: an Item's State updates become true exactly
// when the Kafka transaction holding the Item's records commits, because
// the publisher writes them into that same transaction. So after any crash
// the State rebuilt from the topic (NewState, then Apply per record in
// offset order) says exactly what the log holds:
//
//   - StreamState: the records of every change event up to and including
//     Token are in the log, none after it; a restart resumes the stream
//     after Token.
//   - RangeState: the documents of the range up to Last are in the log; a
//     restart reads the range on after Last (or from its start for a
//     Natural range), never from zero.
//   - Meta, NamespaceState, SnapshotState: the snapshot plan (T0, the
//     namespaces and their topics) and the snapshot's end markers are in the
//     log.
//
// Producers of Items (internal/snapshot, internal/capture) hand them over
// through this package and do not import internal/publish, which consumes
// them and keeps the promise (tests/layout checks it).
//
//	st := checkpoint.NewState()
//	for _, rec := range stateTopicRecords { // read_committed, in order
//		if err := st.Apply(string(rec.Key), rec.Value); err != nil { ... }
//	}
//	if st.Stream != nil { resumeAfter(st.Stream.Token) }
package checkpoint
