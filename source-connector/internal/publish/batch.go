package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// Batch is one transaction's worth of records and state.
type Batch struct {
	Records []*kgo.Record
	state   map[string]any
	order   []string
	// Items counts the items folded into the batch.
	Items int
	// MarkerItems counts the items that carried a marker event.
	MarkerItems int
	// Bytes is the encoded size of the records.
	Bytes int
	// Snapshot statistics per "db.coll".
	Snapshot map[string]*checkpoint.NSStats
	// Ops counts records per envelope op.
	Ops map[schema.Op]int
	// LastClusterTime is the highest cluster time of a change event or
	// heartbeat in the batch (zero when none).
	LastClusterTime schema.ClusterTime
	// LastWallTime is the wall time of the last change event (0 when none).
	LastWallTime int64
	// Heartbeats counts heartbeat checkpoints.
	Heartbeats int
	// Created is when the batch got its first item.
	Created time.Time
	// recycle holds the items' Recycle funcs (see recycleDocs).
	recycle []func()
}

// recycleDocs hands the memory of the batch's Docs back to their readers.
// Only after the batch committed: until then a retried transaction may
// produce the records again. The batch's records must not be read after it.
func (b *Batch) recycleDocs() {
	for _, f := range b.recycle {
		f()
	}
	b.recycle = nil
}

func newBatch() *Batch {
	return &Batch{state: map[string]any{}, Snapshot: map[string]*checkpoint.NSStats{}, Ops: map[schema.Op]int{}}
}

// Empty reports whether the batch holds nothing to commit.
func (b *Batch) Empty() bool { return len(b.Records) == 0 && len(b.state) == 0 }

// SetState adds a state update to the batch (the last value of a key wins).
func (b *Batch) SetState(u checkpoint.StateUpdate) {
	if _, ok := b.state[u.Key]; !ok {
		b.order = append(b.order, u.Key)
	}
	b.state[u.Key] = u.Value
}

// State returns the batch's state value for key.
func (b *Batch) State(key string) (any, bool) {
	v, ok := b.state[key]
	return v, ok
}

func (b *Batch) stateRecords(topic string, seq int64) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(b.order)+1)
	for _, k := range b.order {
		v, err := checkpoint.EncodeState(b.state[k])
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", k, err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: v})
	}
	v, err := checkpoint.EncodeState(checkpoint.ProducerState{Seq: seq, At: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	return append(recs, &kgo.Record{Topic: topic, Key: []byte(checkpoint.KeyProducer), Value: v}), nil
}

// EncodeValue encodes ev as a record value of its namespace's topic. It is
// safe for concurrent use.
func (p *Publisher) EncodeValue(ev *schema.Event) ([]byte, error) {
	v, err := p.cfg.Serde.EncodeValue(p.cfg.Router.Topic(ev.NS), ev)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event of %s: %w", ev.Op, ev.NS, err)
	}
	return v, nil
}

// EncodeDoc keys and encodes a snapshot event as an Item.Docs entry whose
// value is appended to dst (a reader's arena); it returns the Doc and dst
// extended by the value. It is safe for concurrent use; the Doc's key is
// ev.DocumentKey.
func (p *Publisher) EncodeDoc(dst []byte, ev *schema.Event) (checkpoint.Doc, []byte, error) {
	out, err := p.cfg.Serde.AppendValue(dst, p.cfg.Router.Topic(ev.NS), ev)
	if err != nil {
		return checkpoint.Doc{}, dst, fmt.Errorf("encoding %s event of %s: %w", ev.Op, ev.NS, err)
	}
	n := len(dst)
	return p.doc(ev, out[n:len(out):len(out)]), out, nil
}

// doc is the record of event ev whose encoded value is value.
func (p *Publisher) doc(ev *schema.Event, value []byte) checkpoint.Doc {
	return checkpoint.Doc{Key: p.cfg.Serde.Key(ev), Value: value, SourceBytes: len(ev.FullDocument)}
}

// Add encodes it into b. New namespaces get their topic created and their
// catalog record added to the batch.
func (p *Publisher) Add(ctx context.Context, b *Batch, it checkpoint.Item) error {
	if b.Items == 0 {
		b.Created = time.Now()
	}
	b.Items++
	if it.Recycle != nil {
		b.recycle = append(b.recycle, it.Recycle)
	}
	if it.Event != nil && it.Event.Op == schema.OpMarker {
		b.MarkerItems++
	}
	// The item's own state goes last: it wins over catalog entries.
	defer func() {
		for _, u := range it.State {
			b.SetState(u)
		}
	}()
	if it.Heartbeat {
		b.Heartbeats++
		for _, u := range it.State {
			if ss, ok := u.Value.(*checkpoint.StreamState); ok {
				b.observe(ss.ClusterTime, 0)
				if err := p.addHeartbeat(ctx, b, ss); err != nil {
					return err
				}
			}
		}
	}
	ev := it.Event
	if ev == nil {
		return nil
	}
	// An encoding without a representation for the op (debezium: DDL and
	// markers) writes no record; topics and the catalog still follow.
	carried := p.cfg.Serde.Carries(ev.Op)
	if ev.Op != schema.OpSnapshot && ev.Op != schema.OpMarker {
		b.observe(ev.ClusterTime, ev.WallTimeMillis)
	}
	var nss []schema.Namespace
	switch {
	case it.AllOfDB:
		for _, n := range p.Catalog(ev.NS.DB) {
			nss = append(nss, n.NS())
		}
	case len(it.Targets) > 0:
		nss = it.Targets
	default:
		nss = []schema.Namespace{ev.NS}
	}
	recs := it.Docs
	if !carried {
		recs = []checkpoint.Doc{}
	}
	if recs == nil {
		value, err := p.EncodeValue(ev)
		if err != nil {
			return err
		}
		recs = []checkpoint.Doc{p.doc(ev, value)}
	}
	hdrs := p.hdrs
	before := len(b.Records)
	for _, ns := range nss {
		topic, parts, err := p.Topic(ctx, ns)
		if err != nil {
			return err
		}
		if ns.Coll != "" {
			typ := it.NSType
			if typ == "" || ns != ev.NS {
				typ = checkpoint.TypeCollection
			}
			if n := p.learn(ns, topic, typ); n != nil {
				b.SetState(checkpoint.StateUpdate{Key: checkpoint.NSKey(ns.String()), Value: n})
			}
		}
		rawKeys := p.cfg.Serde.RawKeys()
		if !it.Broadcast {
			slab := make([]kgo.Record, len(recs)) // one allocation for a reader's whole batch
			for i, r := range recs {
				slab[i] = kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: hdrs}
				if !rawKeys {
					// The wire key is JSON or Confluent-framed; the
					// partition still comes from the raw document key
					// (see partitioner.go).
					key, err := p.cfg.Serde.WireKey(topic, r.Key)
					if err != nil {
						return fmt.Errorf("record key for %s: %w", topic, err)
					}
					slab[i].Key, slab[i].Context = key, withHashKey(r.Key)
				}
				b.Records = append(b.Records, &slab[i])
				b.Bytes += len(slab[i].Key) + len(r.Value)
			}
			continue
		}
		for _, r := range recs {
			key := r.Key
			if !rawKeys {
				var err error
				if key, err = p.cfg.Serde.WireKey(topic, r.Key); err != nil {
					return fmt.Errorf("record key for %s: %w", topic, err)
				}
			}
			for i := int32(0); i < parts; i++ {
				b.Records = append(b.Records, &kgo.Record{Topic: topic, Partition: i, Context: explicitPartition,
					Key: key, Value: r.Value, Headers: hdrs})
				b.Bytes += len(key) + len(r.Value)
			}
		}
	}
	b.Ops[ev.Op] += len(b.Records) - before
	if ev.Op == schema.OpSnapshot {
		k := ev.NS.String()
		s := b.Snapshot[k]
		if s == nil {
			s = &checkpoint.NSStats{}
			b.Snapshot[k] = s
		}
		s.Docs += int64(len(recs))
		for _, r := range recs {
			s.Bytes += int64(r.SourceBytes)
		}
	}
	return nil
}

func (b *Batch) observe(ct schema.ClusterTime, wall int64) {
	if ct.After(b.LastClusterTime) {
		b.LastClusterTime = ct
		if wall != 0 {
			b.LastWallTime = wall
		}
	}
}

// StateKeys returns the batch's state keys in first-set order.
func (b *Batch) StateKeys() []string { return b.order }
