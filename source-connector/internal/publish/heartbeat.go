package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// HeartbeatConfig makes the source's quiet-stream checkpoints visible to
// consumers of the log, as Debezium's heartbeat.interval.ms does: on every
// heartbeat (the change stream was quiet for --heartbeat-interval) a
// heartbeat record carrying the source cluster time reached and the resume
// token goes into the same Kafka transaction as the checkpoint. A consumer
// then tells an idle source (heartbeats keep coming, their time advances)
// from a stalled one (nothing arrives).
type HeartbeatConfig struct {
	// Topic, when set, receives one heartbeat record per heartbeat
	// (created with one partition and cleanup.policy=compact: the key is
	// constant, so the topic keeps the latest).
	Topic string
	// DataTopics also writes the heartbeat into every partition of every
	// data topic, so a consumer of one topic sees it without reading
	// another (the sink reads it as its source time). Not with the
	// debezium encoding: Debezium consumers expect heartbeats only in the
	// heartbeat topic.
	DataTopics bool
	// Source and Epoch fill the heartbeat envelope's source and epoch.
	Source string
	Epoch  int64
}

// heartbeatTopicConfigs: compacted (constant key), so the topic holds the
// latest heartbeat rather than growing forever.
var heartbeatTopicConfigs = map[string]string{"cleanup.policy": "compact"}

// addHeartbeat adds the heartbeat records of a heartbeat item to b.
func (p *Publisher) addHeartbeat(ctx context.Context, b *Batch, ss *checkpoint.StreamState) error {
	hc := p.cfg.Heartbeat
	if hc.Topic == "" && !hc.DataTopics {
		return nil
	}
	ev := &schema.Event{Op: schema.OpHeartbeat, ClusterTime: ss.ClusterTime, ResumeToken: ss.Token,
		WallTimeMillis: time.Now().UnixMilli(), Source: hc.Source, Epoch: hc.Epoch}
	if hc.Topic != "" {
		if _, err := p.ensureHeartbeatTopic(ctx, hc.Topic); err != nil {
			return err
		}
		v, err := p.cfg.Serde.EncodeValue(hc.Topic, ev)
		if err != nil {
			return fmt.Errorf("encoding heartbeat: %w", err)
		}
		key, err := p.cfg.Serde.HeartbeatKey(hc.Topic, ev)
		if err != nil {
			return fmt.Errorf("heartbeat key: %w", err)
		}
		b.Records = append(b.Records, &kgo.Record{Topic: hc.Topic, Key: key, Value: v, Headers: p.hdrs})
		b.Bytes += len(v)
	}
	if hc.DataTopics {
		raw := p.cfg.Serde.Key(ev)
		for _, n := range p.Catalog("") {
			ns := n.NS()
			topic, parts, err := p.Topic(ctx, ns)
			if err != nil {
				return err
			}
			v, err := p.cfg.Serde.EncodeValue(topic, ev)
			if err != nil {
				return fmt.Errorf("encoding heartbeat: %w", err)
			}
			key, err := p.cfg.Serde.WireKey(topic, raw)
			if err != nil {
				return fmt.Errorf("heartbeat key: %w", err)
			}
			for i := int32(0); i < parts; i++ {
				b.Records = append(b.Records, &kgo.Record{Topic: topic, Partition: i, Context: explicitPartition, Key: key, Value: v, Headers: p.hdrs})
				b.Bytes += len(key) + len(v)
			}
		}
	}
	return nil
}

func (p *Publisher) ensureHeartbeatTopic(ctx context.Context, topic string) (int32, error) {
	p.mu.Lock()
	n, ok := p.parts[topic]
	p.mu.Unlock()
	if ok {
		return n, nil
	}
	err := retry.Do(ctx, p.cfg.Retry, isTransient, func(ctx context.Context) error {
		var err error
		n, err = ensureTopic(ctx, p.adm, kafkax.TopicSpec{Name: topic, Partitions: 1, Configs: heartbeatTopicConfigs})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("heartbeat topic %s: %w", topic, classify(err))
	}
	p.mu.Lock()
	p.parts[topic] = n
	p.mu.Unlock()
	return n, nil
}
