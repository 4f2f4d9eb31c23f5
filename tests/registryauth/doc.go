// Package registryauth runs the connectors with --encoding confluent against the local
// stack's authenticating schema registry gateway (scripts/stack.d/registry-auth.sh: nginx
// with TLS, basic auth or a bearer token, in front of the real Apicurio registry): a sync
// converges through it with each credential kind, and wrong or missing credentials and an
// untrusted CA stop each connector quickly with a message naming the flag to fix, without
// ever showing the password or token.
package registryauth
