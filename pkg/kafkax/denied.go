package kafkax

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNotAuthorized matches (errors.Is) every authorization or authentication failure a
// broker reported: a missing ACL, a wrong SASL password. Never transient: an operator has
// to grant the permission or fix the credentials.
var ErrNotAuthorized = errors.New("not authorized by Kafka")

// DeniedError is a broker's refusal of one action, with the permission the action needs and
// the resource it acted on, so that the message says which ACL to grant.
type DeniedError struct {
	Ops      string // e.g. "WRITE", "CREATE"
	Resource string // e.g. `topic "shop._source_state"`, `transactional id "logbridge-source-shop"`
	Err      error  // the broker's error
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("Kafka denied %s on %s to this connector's principal: grant it with an ACL "+
		"(README, \"Running against a secured Kafka\", lists every ACL each connector needs): %v", e.Ops, e.Resource, e.Err)
}

// Unwrap makes the error match ErrNotAuthorized and the broker's error.
func (e *DeniedError) Unwrap() []error { return []error{ErrNotAuthorized, e.Err} }

// IsAuthorizationFailure reports a broker's refusal for lack of an ACL.
func IsAuthorizationFailure(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// Denied explains err when it is an authorization or authentication failure: ops are the
// permissions the failed action needs on resource. Other errors, and errors that already
// name their permission, are returned as they are.
func Denied(err error, ops, resource string) error {
	var de *DeniedError
	switch {
	case err == nil || errors.As(err, &de):
		return err
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%w: SASL authentication failed: check --kafka-sasl-mechanism, --kafka-sasl-user and the password (--kafka-sasl-password-file or the environment): %w", ErrNotAuthorized, err)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed) && strings.HasPrefix(resource, "topic"):
		// The action touched a topic but the broker refused the transactional id.
		return &DeniedError{Ops: "WRITE", Resource: "the producer's transactional id", Err: err}
	case errors.Is(err, kerr.GroupAuthorizationFailed) && strings.HasPrefix(resource, "topic"):
		return &DeniedError{Ops: "READ", Resource: "the consumer group", Err: err}
	case IsAuthorizationFailure(err):
		return &DeniedError{Ops: ops, Resource: resource, Err: err}
	}
	return err
}

// Topic, Group and TransactionalID name a resource for Denied.
func Topic(name string) string { return fmt.Sprintf("topic %q", name) }

// Group names a consumer group for Denied.
func Group(name string) string { return fmt.Sprintf("group %q", name) }

// TransactionalID names a transactional id for Denied.
func TransactionalID(id string) string { return fmt.Sprintf("transactional id %q", id) }
