// Package source holds the source connector's integration tests against the
// local stack (scripts/stack.sh: mongo-java-server behind the replica-set
// shim tests/mongoshim) or the servers named by KAFKA_BROKERS and SOURCE_URI.
// They build the binary and run it as a subprocess, so they can kill -9 it,
// and read the log back with testenv.ReadTopic.
//
// The end-to-end tests need a source with replica set semantics (cluster
// time, sessions, cluster-wide change streams); they probe for them and skip,
// naming what is missing, on a server without (docs/testing.md). Documents
// hold every BSON type the local backend can store; see allTypes for the
// ones it cannot and why they are left out.
package source
