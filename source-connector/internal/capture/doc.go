// Package capture reads one cluster-wide change stream and turns its events
// (the documented MongoDB change event format) into log events.
//
// Mapping (operationType → schema.Event):
//
//	insert, replace          OpInsert / OpReplace with fullDocument
//	update                   OpUpdate with updateDescription (updatedFields,
//	                         removedFields, truncatedArrays) and, with
//	                         --full-document, the post-image in FullDocument
//	delete                   OpDelete
//	create, createIndexes,   OpDDL into every partition of the namespace's
//	dropIndexes, modify,     topic; Options / Indexes carry the event's
//	drop                     operationDescription
//	rename                   OpDDL into every partition of the source and the
//	                         target topics (DDL.Target = to)
//	dropDatabase             OpDDL into every partition of every known topic
//	                         of the database
//	invalidate               cannot happen on a cluster-wide stream; logged,
//	                         and the stream reopens with startAfter
//	other (shardCollection,  skipped with a debug log; the resume point moves
//	reshardCollection, …)    on
//
// fullDocumentBeforeChange becomes FullDocumentBefore; lsid + txnNumber
// become TxnID with a running index per transaction (kept across restarts in
// the stream state). Events split by $changeStreamSplitLargeEvent
// (MongoDB 7.0+) are reassembled before mapping; the resume point only ever
// moves to the last fragment of an event.
//
// Every event goes through the namespace filter (the source of truth; the
// pipeline also has a $match that drops admin/local/config and the tool's
// databases on the server). When the stream is quiet for the heartbeat
// interval, the postBatchResumeToken is checkpointed (state only) so the
// resume point keeps moving.
//
// A resume point that fell off the oplog ends the stream with
// ErrHistoryLost.
package capture
