// Package source holds the source connector's integration tests against the
// local stack (scripts/stack.sh) or the servers named by KAFKA_BROKERS and
// SOURCE_URI. They build the binary and run it as a subprocess, so they can
// kill -9 it.
//
// The end-to-end tests need a source with genuine replica set semantics
// (cluster time, sessions with afterClusterTime, min/max index bounds and a
// cluster-wide change stream). They probe for it and skip, naming the
// missing feature, on servers that lack it (the local mongo-java-server does;
// see docs/testing.md). Point SOURCE_URI at a real replica set to run them.
package source
