// Package e2e runs logbridge end to end — source MongoDB → source-connector →
// Kafka → sink-connector → destination MongoDB — as real processes against
// the servers of tests/testenv, while a seeded workload (with transactions
// and DDL) writes to the source and faults are injected (kill -9 of either
// connector or of the broker, broker restarts, a stop and start of the
// destination server, a second sink member joining and leaving). After
// draining, the verifier (pkg/verify) must find the destination equal to the
// source.
//
// Each scenario prints what it injected and the verifier's verdict.
// `make e2e` runs a few seeds; `make soak DURATION=2h` runs one long.
package e2e
