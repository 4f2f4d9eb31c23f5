// Package verify compares a source and a destination MongoDB, namespace by
// namespace: document counts, every document's BSON bytes (field order
// included) within _id ranges, indexes and collection options. It reports the
// first differing _ids of each namespace.
//
// Memory stays bounded: both sides are read as cursors sorted by _id and merged
// like a merge join, so no per-document state is kept beyond one pair of
// documents; a namespace is cut into ranges of RangeSize source documents, each
// with a SHA-256 of its documents, and the last finished range of each
// namespace is reported so a later run can resume after it (Options.ResumeAfter).
//
//	rep, err := verify.Run(ctx, src, dst, pairs, verify.Options{}, nil)
//	if !rep.Equal() { … rep.Namespaces[i].Missing … }
//
// The merge relies on both servers returning documents in MongoDB's documented
// sort order for _id (Compare implements that order); a server that sorts
// otherwise is reported as an error, never as equality.
package verify
