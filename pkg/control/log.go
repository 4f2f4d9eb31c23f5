package control

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/retry"
)

// Topic is the control topic of a base prefix.
func Topic(prefix string) string { return prefix + "._control" }

// Log appends to and reads the control topic.
type Log struct {
	opts  []kgo.Opt
	topic string
	prod  *kgo.Client
}

// NewLog prepares a log on the control topic of prefix; connOpts are the
// connection options (brokers, TLS, SASL).
func NewLog(ctx context.Context, connOpts []kgo.Opt, prefix string) (*Log, error) {
	l := &Log{opts: connOpts, topic: Topic(prefix)}
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, connOpts...), kgo.DefaultProduceTopic(l.topic), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return nil, fmt.Errorf("creating control-log client: %w", err)
	}
	if _, err := kafkax.EnsureTopic(ctx, kadm.NewClient(prod), kafkax.TopicSpec{
		Name: l.topic, Partitions: 1, Configs: map[string]string{"retention.ms": "-1"},
	}); err != nil {
		prod.Close()
		return nil, err
	}
	l.prod = prod
	return l, nil
}

// Close releases the producer.
func (l *Log) Close() { l.prod.Close() }

// Append writes ev, waiting for the broker's acknowledgement.
func (l *Log) Append(ctx context.Context, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	b, err := ev.Marshal()
	if err != nil {
		return err
	}
	if err := l.prod.ProduceSync(ctx, &kgo.Record{Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("writing %s event to %s: %w", ev.Type, l.topic, err)
	}
	return nil
}

// Load reads the whole control log and folds it. An event of a newer
// metadata version, or of a type this binary does not know, is an error
// wrapping version.ErrNewerFormat that names the topic and offset: the
// caller stops rather than act on a state it cannot derive.
func (l *Log) Load(ctx context.Context) (Status, []Event, error) {
	adm := kadm.NewClient(l.prod)
	var end kadm.ListedOffset
	// Right after the topic was created the metadata may not list it yet.
	err := retry.Do(ctx, retry.Policy{Initial: 50 * time.Millisecond, Max: time.Second, MaxAttempts: 20}, func(error) bool { return true },
		func(ctx context.Context) error {
			ends, err := adm.ListEndOffsets(ctx, l.topic)
			if err != nil {
				return err
			}
			var ok bool
			if end, ok = ends.Lookup(l.topic, 0); !ok {
				return fmt.Errorf("topic %s has no partition 0 yet", l.topic)
			}
			return end.Err
		})
	if err != nil {
		return Status{}, nil, fmt.Errorf("reading the end of %s: %w", l.topic, err)
	}
	var events []Event
	if end.Offset > 0 {
		cons, err := kgo.NewClient(append(append([]kgo.Opt{}, l.opts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{l.topic: {0: kgo.NewOffset().AtStart()}}))...)
		if err != nil {
			return Status{}, nil, err
		}
		defer cons.Close()
		for int64(len(events)) < end.Offset {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return Status{}, nil, err
			}
			if errs := fs.Errors(); len(errs) > 0 {
				return Status{}, nil, fmt.Errorf("reading %s: %w", l.topic, errs[0].Err)
			}
			var bad error
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset >= end.Offset || bad != nil {
					return
				}
				ev, err := Unmarshal(r.Value)
				if err != nil {
					bad = fmt.Errorf("%s offset %d: %w", l.topic, r.Offset, err)
					return
				}
				ev.Offset = r.Offset
				events = append(events, ev)
			})
			if bad != nil {
				return Status{}, nil, bad
			}
		}
	}
	st := Fold(events)
	if err := st.Err(); err != nil {
		return Status{}, nil, fmt.Errorf("%s: %w", l.topic, err)
	}
	return st, events, nil
}
