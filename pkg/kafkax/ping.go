package kafkax

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Ping reports whether a broker of cl answers a metadata request (a
// readiness check); the error names the brokers and says what to change
// (ExplainConnect).
func Ping(ctx context.Context, cl *kgo.Client, brokers []string) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("no Kafka broker of %s answers: %w (check --kafka-brokers, the network and the TLS/SASL settings)",
			strings.Join(brokers, ","), ExplainConnect(err))
	}
	return nil
}
