package publish

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/kafkax"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrKafkaUnreachable: no broker answered within the startup timeout.
	ErrKafkaUnreachable = errors.New("cannot reach Kafka: check --kafka-brokers, the network and the TLS/SASL settings")
	// ErrNotAuthorized: the broker refused an operation (topic create,
	// describe, write, or the transactional id); the error names the permission
	// and the resource (kafkax.DeniedError) where the action is known.
	ErrNotAuthorized = kafkax.ErrNotAuthorized
	// ErrFenced: another producer with the same transactional id started:
	// two source connectors run with the same prefix / transactional id.
	ErrFenced = errors.New("fenced by another source connector using the same transactional id: run one connector per prefix (or give each a distinct --transactional-id)")
	// ErrRecordTooLarge: a record exceeds the topic's max.message.bytes.
	// The error names the topic, the size and the limit (kafkax.TooLargeError).
	ErrRecordTooLarge = errors.New("record too large for Kafka")
)

// classify wraps Kafka errors that need a user action with a sentinel.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotAuthorized):
		return err // already says which permission
	case kafkax.IsAuthorizationFailure(err), errors.Is(err, kerr.SaslAuthenticationFailed):
		return kafkax.Denied(err, "CREATE, WRITE and READ", "the topics of the prefix and WRITE on the transactional id")
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.TransactionalIDNotFound):
		return errors.Join(ErrFenced, err)
	case kafkax.IsTooLarge(err):
		var tl *kafkax.TooLargeError
		if errors.As(err, &tl) {
			return fmt.Errorf("%w: %w", ErrRecordTooLarge, err)
		}
		return fmt.Errorf("%w: raise max.message.bytes on the topic (and message.max.bytes on the broker): %w", ErrRecordTooLarge, err)
	}
	return err
}

// isTransient reports errors a transaction retry (with a fresh producer) may
// get past. A cancelled context, an authorization failure, a fenced
// producer and an oversized record never are.
func isTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrNotAuthorized) || errors.Is(err, ErrFenced) || errors.Is(err, ErrRecordTooLarge) {
		return false
	}
	if kafkax.IsTransient(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// Timeouts, aborted transactions, coordinator moves, connection
	// failures: retried with a fresh producer, bounded by the policy.
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrAborting) || errors.Is(err, kerr.OperationNotAttempted) ||
		errors.Is(err, kerr.TransactionAbortable) || errors.Is(err, kerr.ConcurrentTransactions) ||
		errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, errUncertainCommit)
}

var errUncertainCommit = errors.New("transaction outcome unknown")
