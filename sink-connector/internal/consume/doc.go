// Package consume reads the log as a member of a Kafka consumer group and
// drives the apply package: one worker goroutine per assigned partition,
// offsets committed only for records the destination acknowledged, DDL and
// marker barriers across the partitions of a namespace, dead letters, and a
// namespace-affine group balancer.
//
// Lifecycle: New, then Run(ctx) until ctx ends or a fatal error. Run owns the
// kgo client. On assignment it starts a worker per partition; on revocation
// (the eager NamespaceBalancer revokes everything at each rebalance) it stops
// them, waits for in-flight bulk writes to be acknowledged, commits what was
// acknowledged and forgets the partitions. Lost partitions are not committed.
//
// Guarantees:
//
//   - read_committed: records of aborted source transactions are never applied.
//
//   - A partition's committed offset never passes a record whose effect the
//     destination has not acknowledged (write concern majority by default),
//     nor a record that could not be applied with tolerance none.
//
//   - Barriers: a worker reaching a DDL or marker flushes its pending writes
//     and waits; when every partition of the topic reached the same ID, the
//     last one commits every partition at the barrier, applies it once (the
//     destination metadata says whether it already was), records it, commits
//     past it and releases the others. So writes before a DDL never land
//     after it, and after a crash the partitions are all before the barrier
//     or all after it.
//
//   - Transactions (Config.Transactions, txn.go): the events of one source
//     transaction, gathered across partitions and topics, are applied in one
//     destination transaction before any partition acknowledges them or
//     handles a later record; beyond a wait or size limit, or on a rejected
//     write, they are applied per event (counted and logged).
//
//   - Shared bulk writes (group.go): the batches of one topic's partitions
//     that are ready together go in one bulk write (group commit); each
//     partition acknowledges its own records after that write and handles
//     its own rejected writes. Keys of different partitions are disjoint, so
//     per-key order holds.
//
//   - The poll loop never blocks on a worker: records queue per partition and
//     a partition's fetches pause above a limit (records, and its share of
//     Config.QueueMaxBytes), so a worker waiting at a barrier cannot starve
//     the partitions it waits for. With the fetch bounds of Config the
//     records held are bounded by configuration, not by the log's size.
//
//   - While no topic of the subscription is known, the topic metadata is
//     refreshed every DiscoverInterval, so a sink started before the source
//     created its topics starts applying as soon as they exist.
//
//     c, err := consume.New(cfg, consume.Deps{KafkaOpts: opts, Decoder: serde, Writer: w, Barriers: ddl, …})
//     err = c.Run(ctx)
//     p := c.Progress() // position and lag per partition
package consume
