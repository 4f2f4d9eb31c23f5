// Package snapshot copies the included namespaces of the source: it takes
// T0, lists the namespaces with their options and indexes, splits each
// collection into _id ranges and reads the ranges with a bounded number of
// parallel readers, handing the documents to the publisher as snapshot
// records a chunk at a time, each chunk with the range checkpoint that
// covers it.
//
// Lifecycle (driven by internal/app):
//
//	t0, _ := mongox.ClusterTime(ctx, client, note)     // T0, before anything is read
//	colls, _ := snapshot.ListCollections(ctx, client, filter)
//	ranges, _ := snapshot.PlanRanges(ctx, client, coll, 100_000)  // per collection
//	// ... the plan (T0, namespaces, ranges, DDL) is committed to the log ...
//	r := &snapshot.Reader{Client: client, T0: t0, Encode: pub.EncodeDoc, ...}
//	err := r.Run(ctx, pendingRanges, out)                // out: chan checkpoint.Item
//
// The readers key and encode each record themselves (Item.Docs), straight
// from the driver's buffer: the encoding runs in parallel and a document is
// not copied before it is encoded. A chunk is a driver batch (at most 1024
// documents); its values share one arena that the reader reuses once the
// chunk's transaction has committed (Item.Recycle). A restart re-reads at
// most one chunk per range: the checkpoint is per chunk, not per document.
//
// Ranges are read with find + hint {_id: 1} + min/max index bounds, so a
// range covers every BSON type of _id between its bounds (no query type
// bracketing), in _id index order. A reader resumes a range after the
// checkpointed last _id: the first document returned by min(last) is the
// last one published and is skipped. Reads use read concern "majority" in a
// causally consistent session advanced to T0, so they observe every write
// at or before T0; every write after T0 is replayed by the change stream,
// which starts at T0 once the snapshot is complete.
//
// Time series collections have no _id index: they are read in natural order
// as one range, which restarts from its beginning when interrupted (the
// sink's replace-by-key makes the repeat harmless for documents with an
// _id). Views hold no data: they are published as DDL only.
package snapshot
