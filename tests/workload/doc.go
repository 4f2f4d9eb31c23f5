// Package workload generates a seeded, reproducible mix of writes against a
// MongoDB source for end-to-end and fault tests: inserts, updates ($set,
// $unset, $inc, $push, $pull), replacements, deletes, multi-document
// transactions and DDL (create / drop / rename collections, drop databases,
// create / drop indexes), with documents of varied shapes and sizes holding
// every BSON type and _ids of several BSON types.
//
// The same seed and options give the same sequence of operations. Features a
// server lacks (transactions, DDL events) are switched off by Options, never
// faked.
//
//	g := workload.New(client, workload.Options{Seed: 7, DBs: []string{"w1", "w2"}})
//	stats, err := g.Run(ctx, 2000)
package workload
