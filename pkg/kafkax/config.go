package kafkax

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/logbridge/logbridge/pkg/config"
)

// Config is how a connector reaches the Kafka cluster.
type Config struct {
	Brokers       config.StringList
	ClientID      string
	TLS           bool
	TLSCAFile     string
	TLSCertFile   string
	TLSKeyFile    string
	TLSSkipVerify bool
	SASLMechanism string // "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	SASLUser      string
	SASLPassword  string
	// SASLPasswordFile holds the SASL password (ResolvePassword reads it),
	// so that it is in neither ps nor the environment.
	SASLPasswordFile string
}

// RegisterFlags adds the kafka-* flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet, clientID string) {
	// No default broker: a connector that silently dialled a local port
	// would sync into whatever Kafka happens to listen there.
	c.Brokers = nil
	fs.Var(&c.Brokers, "kafka-brokers", "comma-separated Kafka bootstrap brokers host:port (required)")
	fs.StringVar(&c.ClientID, "kafka-client-id", clientID, "Kafka client id (shows in broker logs and quotas)")
	fs.BoolVar(&c.TLS, "kafka-tls", false, "connect to Kafka over TLS")
	fs.StringVar(&c.TLSCAFile, "kafka-tls-ca-file", "", "PEM file of CA certificates to trust for Kafka (default: system roots)")
	fs.StringVar(&c.TLSCertFile, "kafka-tls-cert-file", "", "PEM client certificate for mutual TLS with Kafka")
	fs.StringVar(&c.TLSKeyFile, "kafka-tls-key-file", "", "PEM client key for mutual TLS with Kafka")
	fs.BoolVar(&c.TLSSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&c.SASLUser, "kafka-sasl-user", "", "SASL user name")
	fs.StringVar(&c.SASLPassword, "kafka-sasl-password", "", "SASL password; on the command line it is visible to every local user in ps: prefer --kafka-sasl-password-file or the environment variable")
	fs.StringVar(&c.SASLPasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password (a trailing newline is ignored)")
}

// Validate checks the settings together.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka-brokers is required: give the bootstrap brokers as host:port, e.g. --kafka-brokers k1:9092,k2:9092"))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("kafka broker %q has no port: write host:port", b))
		}
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASLUser == "" || (c.SASLPassword == "" && c.SASLPasswordFile == "") {
			errs = append(errs, fmt.Errorf("kafka-sasl-mechanism %s needs kafka-sasl-user and a password (kafka-sasl-password-file, or kafka-sasl-password through the environment)", c.SASLMechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka-sasl-mechanism %q is not supported: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("kafka-tls-cert-file and kafka-tls-key-file must be given together"))
	}
	return errors.Join(errs...)
}

// ResolvePassword reads SASLPasswordFile into SASLPassword. The connectors
// call it right after parsing, so that their redactor knows the password.
func (c *Config) ResolvePassword() error {
	if c.SASLPasswordFile == "" {
		return nil
	}
	if c.SASLPassword != "" {
		return errors.New("kafka-sasl-password and kafka-sasl-password-file are both set: give the password once")
	}
	b, err := os.ReadFile(c.SASLPasswordFile)
	if err != nil {
		return fmt.Errorf("reading kafka-sasl-password-file: %w", err)
	}
	c.SASLPassword = strings.TrimRight(string(b), "\r\n")
	if c.SASLPassword == "" {
		return fmt.Errorf("kafka-sasl-password-file %s is empty: write the SASL password into it", c.SASLPasswordFile)
	}
	return nil
}

// ClientOpts returns the franz-go options for connecting with these settings.
func (c *Config) ClientOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.SASLPassword == "" {
		if err := c.ResolvePassword(); err != nil {
			return nil, err
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	if c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify} //nolint:gosec // opt-in flag for tests
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("reading kafka-tls-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka-tls-ca-file %s holds no PEM certificate", c.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("loading Kafka client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	return opts, nil
}
