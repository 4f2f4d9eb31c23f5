package kafkax

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxRecordBytes is the largest record logbridge writes, and the max.message.bytes it gives
// the topics it creates (data topics and the dead-letter topic): a 16 MiB BSON document with
// its pre-image and update description fits. A dead letter is the original record plus a
// few headers, so the dead-letter topic gets DeadLetterHeadroomBytes more.
const (
	MaxRecordBytes          = 64 << 20
	DeadLetterHeadroomBytes = 1 << 20
)

// IsTooLarge reports a record the broker (or the client, against its batch limit) refused
// for its size.
func IsTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// TopicMaxMessageBytes returns the topic's max.message.bytes, or -1 when it cannot be read
// (e.g. no DESCRIBE_CONFIGS permission).
func TopicMaxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) int {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return -1
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return -1
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			if n, err := strconv.Atoi(*c.Value); err == nil {
				return n
			}
		}
	}
	return -1
}

// TooLargeError explains a record refused for its size: the topic, the record's size, the
// topic's limit where known, and the settings to change. Which record does not get lost is
// the caller's to say (Policy).
type TooLargeError struct {
	Topic  string
	Size   int
	Limit  int    // max.message.bytes of the topic, -1 when unknown
	Policy string // what happened to the record, e.g. "the transaction was aborted: nothing was written"
	// Recommend is the max.message.bytes the message suggests (0: MaxRecordBytes).
	Recommend int
	Err       error
}

func (e *TooLargeError) Error() string {
	limit := "its max.message.bytes"
	if e.Limit >= 0 {
		limit = fmt.Sprintf("its max.message.bytes (%d)", e.Limit)
	}
	rec := e.Recommend
	if rec == 0 {
		rec = MaxRecordBytes
	}
	return fmt.Sprintf("a record of %d bytes is larger than topic %s accepts, %s: raise max.message.bytes on the topic to at least %d "+
		"(kafka-configs --alter --entity-type topics --entity-name %s --add-config max.message.bytes=%d), and the broker's "+
		"message.max.bytes and replica.fetch.max.bytes where they are lower, then start the connector again; %s: %v",
		e.Size, e.Topic, limit, e.Size, e.Topic, rec, e.Policy, e.Err)
}

func (e *TooLargeError) Unwrap() error { return e.Err }
