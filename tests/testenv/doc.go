// Package testenv hands integration tests the servers they talk to: a Kafka
// bootstrap address, a source MongoDB URI, a destination MongoDB URI and a
// schema registry URL, with per-test isolation by names derived from t.Name().
//
// Servers come from, in order:
//  1. explicit environment variables KAFKA_BROKERS, SOURCE_URI, DEST_URI,
//     SCHEMA_REGISTRY_URL (a user's own servers, or CI's);
//  2. the local stack that `make up` starts (scripts/stack.sh), at its fixed
//     loopback addresses;
//  3. genuine MongoDB and Kafka in containers (testcontainers-go) when a Docker
//     engine is reachable and LOGBRIDGE_TESTCONTAINERS=1 (see containers.go).
//
// A test whose server is unreachable is skipped with the reason; with
// LOGBRIDGE_REQUIRE_STACK=1 (set by `make test`) it fails instead, so that CI
// never passes by skipping.
//
//	env := testenv.New(t)
//	src := env.Source(t)          // *mongo.Client, disconnected at cleanup
//	db := testenv.DBName(t)       // unique per test
//	topic := testenv.TopicPrefix(t)
//	be := env.SourceBackend(t)    // the mongo-java-server behind the local source shim
//	pair := testenv.Private(t)    // servers of the test's own (for write blocking), private.go
package testenv
