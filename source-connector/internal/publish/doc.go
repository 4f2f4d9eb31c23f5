// Package publish is the source connector's exactly-once core: it writes
// log records and the source state that covers them (package checkpoint)
// into Kafka, each batch in one transaction, so that after a crash of the
// connector or the broker the log holds no duplicate and no gap (DESIGN.md
// invariant 4).
//
// It owns the transactional producer, the topics (data topics created on
// first use, the single-partition compacted state topic), the routing of
// namespaces to topics (Router), the record partitioning (Kafka's murmur2
// of the document key, so one document's events land in one partition) and
// the namespace catalog.
//
// Lifecycle:
//
//	pub, st, err := publish.Open(ctx, cfg) // fences an older producer with the
//	                                       // same transactional id, reads st
//	defer pub.Close()
//	// ... resume from st (checkpoint.State) ...
//	err = pub.Run(ctx, items, limits, onCommit) // until items is closed
//
// Guarantees:
//
//   - Open fences any earlier producer with the same transactional id (its
//     open transaction is completed or aborted) before it reads the state
//     topic to its committed end with read_committed isolation.
//   - Commit (and Run for each batch) returns nil only once the batch's
//     records and state are committed; on an error the batch is entirely
//     committed or entirely absent, and the next Open's state says which.
//   - Run never cuts a batch inside a unit of Items (Item.More: the events
//     of one source transaction), and calls onCommit in commit order.
//   - Errors that need a user action wrap the sentinels of errors.go
//     (ErrKafkaUnreachable, ErrNotAuthorized, ErrFenced, ErrRecordTooLarge).
package publish
