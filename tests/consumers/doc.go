// Package consumers proves the log is readable by consumers logbridge did
// not write, against the local stack (tests/testenv): the connect-json
// encoding synced by the sink and partitioned by the raw document key; the
// debezium encoding as Debezium consumers read it, and refused by the sink;
// heartbeat records for consumers on a quiet stream; and clients from other
// ecosystems, each run by its test: a Python consumer with confluent-kafka
// and fastavro from PyPI (a venv under .cache/consumers-venv) decoding the
// Confluent-encoded topics through the schema registry; Kafka Connect's own
// JsonConverter and FileStreamSink (with Debezium's ExtractNewDocumentState
// for the debezium topic); the MongoDB Kafka Connector's sink with its
// Debezium change stream handler, applying the debezium topic to a
// destination equal to the source; and the README's kcat/jq recipes when
// kcat and jq are installed. The Java parts are resolved from Maven Central
// (testdata/*/pom.xml) into .cache/*-jars by the tests themselves.
package consumers
