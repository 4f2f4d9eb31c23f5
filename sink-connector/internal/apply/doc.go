// Package apply turns log events into idempotent writes on the destination.
//
// It owns the event → write translation, per-document coalescing, the bulk
// writer, the DDL and marker applier with its destination metadata, and the
// namespace remapping. It knows nothing of Kafka: callers hand it decoded
// events with a Ref to their record.
//
// Writes (documents stay bson.Raw end to end):
//
//	snapshot, insert            insert (unordered, a raw insert command); on duplicate key: replace-with-upsert by document key
//	replace                     replaceOne(documentKey, fullDocument, upsert)
//	update with fullDocument    replaceOne(documentKey, fullDocument, upsert)
//	update (delta)              updateOne(documentKey, {$push $slice} for truncatedArrays, then {$set, $unset}), no upsert;
//	                            a missing document is counted (Result.Missing), not an error
//	delete                      deleteOne(documentKey)
//
// A Batch coalesces events per document (the last full-state event or delete
// wins; deltas after it are kept in order) and the Writer applies it as
// rounds of unordered bulk writes of disjoint keys: round i holds the i-th
// pending write of every document. Flush takes several batches of disjoint
// keys (different partitions of one topic) and applies them in the same
// rounds, one bulk write per namespace each. Flush returns once the destination
// acknowledged every write with the configured write concern; documents the
// destination rejects (validation, size, …) come back as Failures, wrapping
// ErrRejected, for the dead-letter path.
//
// DDLApplier applies create (with options, views), createIndexes (unless
// build-indexes is off), dropIndexes, drop, renameCollection, dropDatabase
// (per collection topic) and collMod, tolerating the "already done" errors a
// replay meets, and records each barrier (DDL or marker) in
// __logbridge.applied_ddl keyed by {group, ID, destination namespace} so that
// a replay never applies it twice (markers, which change nothing, are keyed by
// {group, ID, "topic:<topic>"}: the record says every partition of that topic
// passed the marker, which is what a commit waits for).
//
// The metadata is versioned (docs/versioning.md): each applied_ddl record
// carries v, the metadata version of the sink that wrote it, and
// __logbridge.version holds one document per group with the highest version
// that ran. CheckMetadata runs before a sink applies anything: it refuses
// metadata a newer release wrote and records (upgrades to) its own version.
//
//	w := apply.NewWriter(client, writeconcern.Majority(), m, log)
//	b := apply.NewBatch(nsmap)
//	_ = b.Add(ev, apply.Ref{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Op: ev.Op})
//	res, err := w.Flush(ctx, b) // acknowledged: commit the offsets
package apply
