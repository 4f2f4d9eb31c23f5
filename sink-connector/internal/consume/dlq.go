package consume

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/kafkax"
)

// Dead-letter record headers, added to the original record's headers.
const (
	HeaderDLQError     = "logbridge.dlq.error"
	HeaderDLQTopic     = "logbridge.dlq.topic"
	HeaderDLQPartition = "logbridge.dlq.partition"
	HeaderDLQOffset    = "logbridge.dlq.offset"
	HeaderDLQGroup     = "logbridge.dlq.group"
)

// KafkaDLQ writes dead letters to a Kafka topic: the original key, value and
// headers, plus the reason and the original position.
type KafkaDLQ struct {
	cl    *kgo.Client
	topic string
	group string
}

var _ DeadLetters = (*KafkaDLQ)(nil)

// NewKafkaDLQ returns a dead-letter writer on cl (a producer client that the
// caller closes).
func NewKafkaDLQ(cl *kgo.Client, topic, group string) *KafkaDLQ {
	return &KafkaDLQ{cl: cl, topic: topic, group: group}
}

// Send produces the dead letter and returns once the broker acknowledged it.
func (d *KafkaDLQ) Send(ctx context.Context, r *kgo.Record, reason error) error {
	hs := append([]kgo.RecordHeader{}, r.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(reason.Error())},
		kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderDLQGroup, Value: []byte(d.group)},
	)
	out := &kgo.Record{Topic: d.topic, Key: r.Key, Value: r.Value, Headers: hs}
	if err := d.cl.ProduceSync(ctx, out).FirstErr(); err != nil {
		if kafkax.IsTooLarge(err) {
			// Policy (README, "Record size limits"): the sink stops; the record's
			// offset is not committed, so it is dead-lettered after the limit is raised.
			n := len(out.Key) + len(out.Value)
			for _, h := range out.Headers {
				n += len(h.Key) + len(h.Value)
			}
			err = &kafkax.TooLargeError{Topic: d.topic, Size: n, Limit: kafkax.TopicMaxMessageBytes(ctx, kadm.NewClient(d.cl), d.topic),
				Policy:    "the sink stops without committing the record's offset, so nothing is lost",
				Recommend: kafkax.MaxRecordBytes + kafkax.DeadLetterHeadroomBytes, Err: err}
		}
		return fmt.Errorf("producing to dead-letter topic %s: %w", d.topic, kafkax.Denied(err, "WRITE", kafkax.Topic(d.topic)))
	}
	return nil
}
