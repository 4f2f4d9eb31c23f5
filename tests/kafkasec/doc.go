// Package kafkasec runs the connectors against the local broker's secured listeners
// (scripts/stack.d/kafka.sh): SASL_SSL with SCRAM-SHA-512 and mutual TLS, with
// StandardAuthorizer enforcing exactly the least-privilege ACLs the README lists
// ("Running against a secured Kafka"). The ACL sets live in acls_test.go, the one
// place the tests and the README's table must agree on.
package kafkasec
