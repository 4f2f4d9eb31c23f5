package kafkax

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ExplainConnect adds what to change to an error from reaching the brokers: a wrong SASL
// password, a broker certificate the configured CA did not sign, a handshake the broker
// refused (an mTLS listener without a client certificate), plaintext spoken to a TLS
// listener. Other errors come back as they are.
func ExplainConnect(err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		opErr     *net.OpError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%w: SASL authentication failed: check --kafka-sasl-mechanism, --kafka-sasl-user and the password (--kafka-sasl-password-file or the environment variable): %w", ErrNotAuthorized, err)
	case errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("the broker's listener does not take this SASL login: use the listener (port) that speaks SASL with --kafka-sasl-mechanism %s, or drop the --kafka-sasl-* flags for a listener without SASL: %w", "as configured", err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the broker's TLS certificate is not signed by a CA this connector trusts: give the CA that signed it with --kafka-tls-ca-file: %w", err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("the broker's TLS certificate does not name the host in --kafka-brokers: use the name the certificate holds: %w", err)
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the broker during the handshake.
		return fmt.Errorf("the broker refused the TLS handshake: on a listener that requires client certificates (mutual TLS) give one signed by a CA the broker trusts with --kafka-tls-cert-file and --kafka-tls-key-file: %w", err)
	case strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint"):
		// franz-go's own diagnosis (kgo broker.go) has no error type to match.
		return fmt.Errorf("the broker's listener speaks TLS: add --kafka-tls (and --kafka-tls-ca-file): %w", err)
	}
	return err
}
