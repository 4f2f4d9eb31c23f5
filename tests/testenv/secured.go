package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// SecuredKafka is the local broker's secured listeners (scripts/stack.d/kafka.sh): SASL_SSL
// with SCRAM-SHA-512 users and an mTLS listener, both with ACLs enforced, and the CA and
// client certificates of its TLS directory. Principals: Users[name] is the SCRAM password
// of User:name, and TLSDir/<name>.pem / <name>-key.pem its client certificate.
type SecuredKafka struct {
	SASLSSLBrokers        []string
	MTLSBrokers           []string
	TLSDir                string
	Users                 map[string]string // user -> SCRAM-SHA-512 password
	Source, Sink, Inspect string            // the three principals' names
}

// CAFile is the PEM file of the CA that signed the broker and client certificates.
func (s SecuredKafka) CAFile() string { return filepath.Join(s.TLSDir, "ca.pem") }

// CertFile and KeyFile are user's client certificate and key.
func (s SecuredKafka) CertFile(user string) string { return filepath.Join(s.TLSDir, user+".pem") }

// KeyFile: see CertFile.
func (s SecuredKafka) KeyFile(user string) string { return filepath.Join(s.TLSDir, user+"-key.pem") }

// Secured returns the secured listeners, skipping (or failing, with
// LOGBRIDGE_REQUIRE_STACK=1) when they or the TLS files are missing. The environment
// (KAFKA_SASL_SSL_BROKERS, KAFKA_MTLS_BROKERS, KAFKA_TLS_DIR, KAFKA_{SOURCE,SINK,INSPECT}_{USER,PASSWORD},
// printed by `scripts/stack.sh env`) overrides the local stack's defaults.
func (e Env) Secured(t testing.TB) SecuredKafka {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	get := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	s := SecuredKafka{
		SASLSSLBrokers: strings.Split(get("KAFKA_SASL_SSL_BROKERS", "127.0.0.1:19094"), ","),
		MTLSBrokers:    strings.Split(get("KAFKA_MTLS_BROKERS", "127.0.0.1:19095"), ","),
		TLSDir:         get("KAFKA_TLS_DIR", filepath.Join(root, ".cache", "kafka", "tls")),
		Source:         get("KAFKA_SOURCE_USER", "logbridge-source"),
		Sink:           get("KAFKA_SINK_USER", "logbridge-sink"),
		Inspect:        get("KAFKA_INSPECT_USER", "logbridge-inspect"),
	}
	s.Users = map[string]string{
		s.Source:  get("KAFKA_SOURCE_PASSWORD", "source-secret-local"),
		s.Sink:    get("KAFKA_SINK_PASSWORD", "sink-secret-local"),
		s.Inspect: get("KAFKA_INSPECT_PASSWORD", "inspect-secret-local"),
	}
	for _, a := range []string{s.SASLSSLBrokers[0], s.MTLSBrokers[0]} {
		if err := dial(a); err != nil {
			unavailable(t, "the secured Kafka listener "+a+" is unreachable ("+err.Error()+"): run `make up` (scripts/stack.d/kafka.sh starts SASL_SSL and mTLS listeners) or set KAFKA_SASL_SSL_BROKERS / KAFKA_MTLS_BROKERS")
		}
	}
	if _, err := os.Stat(s.CAFile()); err != nil {
		unavailable(t, "the secured Kafka listeners' CA is missing ("+err.Error()+"): run `make up` or set KAFKA_TLS_DIR")
	}
	return s
}
