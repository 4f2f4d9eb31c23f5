package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/logbridge/logbridge/pkg/retry"
)

// TopicSpec is how a topic should look.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Configs are topic configs, e.g. "cleanup.policy": "compact",
	// "retention.ms": "-1" (keep forever: the log is the replayable history).
	Configs map[string]string
}

// EnsureTopic creates the topic if it is missing and returns its partition count.
// An existing topic is accepted as it is (its partition count may differ from
// the spec: keys are hashed over what exists). The count of a created topic
// comes from the CreateTopics response, because the client's metadata cache
// may still say the topic does not exist for a moment after it was created.
func EnsureTopic(ctx context.Context, adm *kadm.Client, spec TopicSpec) (int32, error) {
	if n, err := partitions(ctx, adm, spec.Name); err == nil {
		return n, nil
	} else if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, err
	}
	cfg := make(map[string]*string, len(spec.Configs))
	for k, v := range spec.Configs {
		cfg[k] = &v
	}
	resp, err := adm.CreateTopic(ctx, spec.Partitions, -1, cfg, spec.Name)
	// CreateTopic also returns the topic's own error (resp.Err): only a
	// failed request is fatal here; the topic's error is handled below.
	if err != nil && !errors.Is(err, resp.Err) {
		return 0, fmt.Errorf("creating topic %s: %w", spec.Name, err)
	}
	switch {
	case resp.Err == nil:
		if resp.NumPartitions > 0 {
			return resp.NumPartitions, nil
		}
		return spec.Partitions, nil
	case errors.Is(resp.Err, kerr.TopicAlreadyExists):
		// Created concurrently: wait until the metadata shows it.
		var n int32
		err := retry.Do(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second, MaxAttempts: 15},
			func(error) bool { return true }, func(ctx context.Context) (err error) {
				n, err = partitions(ctx, adm, spec.Name)
				return err
			})
		return n, err
	case IsAuthorizationFailure(resp.Err):
		return 0, fmt.Errorf("creating topic %s: %w", spec.Name,
			Denied(resp.Err, "CREATE", Topic(spec.Name)+" (or create the topic beforehand)"))
	default:
		return 0, fmt.Errorf("creating topic %s: %w", spec.Name, resp.Err)
	}
}

func partitions(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	md, err := adm.Metadata(ctx, topic)
	if IsAuthorizationFailure(err) {
		// For a topic that does not exist yet the broker answers so when the principal
		// may not create it either.
		return 0, fmt.Errorf("reading metadata of topic %s: %w", topic,
			Denied(err, "DESCRIBE (and CREATE, if the connector is to create it)", Topic(topic)))
	}
	if err != nil {
		return 0, fmt.Errorf("reading metadata of topic %s (is Kafka reachable at the configured brokers?): %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok {
		return 0, kerr.UnknownTopicOrPartition
	}
	if td.Err != nil {
		if IsAuthorizationFailure(td.Err) {
			return 0, fmt.Errorf("topic %s: %w", topic,
				Denied(td.Err, "DESCRIBE (and CREATE, if the connector is to create it)", Topic(topic)))
		}
		return 0, td.Err
	}
	return int32(len(td.Partitions)), nil
}

// IsTransient reports whether a Kafka error is worth retrying.
// A cancelled context is never transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return false
}

// CheckTopicAccess asks the broker for topic's metadata and returns a DeniedError naming
// ops on resource when the principal may not see it. The topic need not exist: Kafka
// answers "unknown topic" to a principal allowed to describe it and "not authorized" to
// any other, so a consumer can find a missing ACL at start-up instead of waiting, blind,
// for topics it will never be shown.
func CheckTopicAccess(ctx context.Context, adm *kadm.Client, topic, ops, resource string) error {
	md, err := adm.Metadata(ctx, topic)
	if err == nil {
		if td, ok := md.Topics[topic]; ok {
			err = td.Err
		}
	}
	if IsAuthorizationFailure(err) {
		return Denied(err, ops, resource)
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("reading metadata of topic %s (is Kafka reachable at the configured brokers?): %w", topic, ExplainConnect(err))
	}
	return nil
}
