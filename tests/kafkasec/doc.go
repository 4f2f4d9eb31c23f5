// Package kafkasec runs the connectors against Kafka as production shops run it: the local
// broker's secured listeners
// (scripts/stack.d/kafka.sh): SASL_SSL with SCRAM-SHA-512 and mutual TLS, with
// StandardAuthorizer enforcing exactly the least-privilege ACLs the README lists
// ("Running against a secured Kafka"). The ACL sets live in acls_test.go, the one
// place the tests and the README's table must agree on. limits_test.go covers topics created
// beforehand with a smaller max.message.bytes (README, "Record size limits").
package kafkasec
