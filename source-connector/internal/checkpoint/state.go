package checkpoint

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
)

// State is the source connector's durable progress, rebuilt from the
// compacted source-state topic. Every field is written in the same Kafka
// transaction as the data records it covers, so after any crash State
// describes exactly what the log holds.
//
// Every value carries "v", the metadata version (pkg/version) of the binary
// that wrote it (EncodeState adds it); a value without one was written
// before 0.1.0 and is version 1. Apply refuses a value of a newer version
// and a key it does not know, so an older binary never resumes from a state
// it would misread (docs/versioning.md).
//
// Keys of the state topic (values are BSON documents; a null value deletes):
//
//	meta                    Meta: T0, epoch, source, when the plan was made
//	ns/<db>.<coll>          NamespaceState: topic and snapshot plan of a namespace
//	range/<db>.<coll>/<id>  RangeState: bounds and progress of one snapshot range
//	snapshot                SnapshotState: the snapshotDone markers are in the log
//	stream                  StreamState: resume token of the last published change event
//	producer                ProducerState: sequence number of the last committed transaction
type State struct {
	Meta        *Meta
	Namespaces  map[string]*NamespaceState // by "db.coll"
	Ranges      map[string]*RangeState     // by state key
	Snapshot    *SnapshotState
	Stream      *StreamState
	Producer    ProducerState
	RecordsRead int // records read from the state topic
}

// Planned reports whether the snapshot plan (T0, namespaces, ranges) is in
// the log.
func (s *State) Planned() bool { return s != nil && s.Meta != nil }

// SnapshotDone reports whether the snapshot finished and its markers are in the log.
func (s *State) SnapshotDone() bool { return s != nil && s.Snapshot != nil && s.Snapshot.Done }

// SortedRanges returns the ranges ordered by namespace and id.
func (s *State) SortedRanges() []*RangeState {
	out := make([]*RangeState, 0, len(s.Ranges))
	for _, r := range s.Ranges {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NS != out[j].NS {
			return out[i].NS < out[j].NS
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Meta is the snapshot plan's header.
type Meta struct {
	// Version is the metadata version of the binary that made the plan;
	// every state record carries its own "v" too (EncodeState).
	Version   int32          `bson:"v"`
	T0        bson.Timestamp `bson:"t0"`
	Epoch     int64          `bson:"epoch"`
	Source    string         `bson:"source"`
	PlannedAt time.Time      `bson:"plannedAt"`
}

// Namespace types, as listCollections reports them.
const (
	TypeCollection = "collection"
	TypeView       = "view"
	TypeTimeseries = "timeseries"
)

// NamespaceState is one namespace known to the log.
type NamespaceState struct {
	DB    string `bson:"db"`
	Coll  string `bson:"coll"`
	Topic string `bson:"topic"`
	Type  string `bson:"type,omitempty"` // collection, view, timeseries
	// InSnapshot: the namespace is part of the snapshot plan (else it was
	// first seen in the change stream).
	InSnapshot     bool  `bson:"inSnapshot"`
	EstimatedDocs  int64 `bson:"estimatedDocs"`
	EstimatedBytes int64 `bson:"estimatedBytes"`
	Ranges         int   `bson:"ranges"`
}

// NS returns the namespace.
func (n *NamespaceState) NS() schema.Namespace { return schema.Namespace{DB: n.DB, Coll: n.Coll} }

// RangeState is one snapshot range: documents with Min <= _id < Max in _id
// index order (index bounds, so no BSON type bracketing), and its progress.
type RangeState struct {
	NS string `bson:"ns"` // "db.coll"
	DB string `bson:"db"`
	// Coll is the collection name.
	Coll string `bson:"coll"`
	ID   int    `bson:"id"`
	// Min and Max are {_id: value} documents; nil means unbounded (MinKey / MaxKey).
	Min bson.Raw `bson:"min,omitempty"`
	Max bson.Raw `bson:"max,omitempty"`
	// Natural: the namespace has no _id index to range over (time series);
	// the range is read in natural order and restarts from the beginning
	// when interrupted.
	Natural bool `bson:"natural,omitempty"`
	// Last is {_id: value} of the last document published from this range.
	Last  bson.Raw `bson:"last,omitempty"`
	Done  bool     `bson:"done"`
	Docs  int64    `bson:"docs"`
	Bytes int64    `bson:"bytes"`
}

// Key is the state-topic key of the range.
func (r *RangeState) Key() string { return RangeKey(r.NS, r.ID) }

// SnapshotState records that the snapshot is complete.
type SnapshotState struct {
	Done   bool      `bson:"done"`
	DoneAt time.Time `bson:"doneAt"`
	Docs   int64     `bson:"docs"`
}

// StreamState is the change stream's resume point.
type StreamState struct {
	// Token is the resume token (change event _id or postBatchResumeToken)
	// after which the stream continues.
	Token       bson.Raw       `bson:"token"`
	ClusterTime bson.Timestamp `bson:"clusterTime"`
	// Txn* identify the source transaction of the last published event
	// and its running index, so that a restart inside a transaction keeps
	// numbering its events.
	TxnLSID   bson.Raw `bson:"txnLsid,omitempty"`
	TxnNumber int64    `bson:"txnNumber,omitempty"`
	TxnIndex  int32    `bson:"txnIndex,omitempty"`
	// TxnPublished is how many of that transaction's data events the log
	// holds (the count on its last event, schema.TxnID.Count).
	TxnPublished int32 `bson:"txnPublished,omitempty"`
}

// ProducerState identifies the last committed transaction.
type ProducerState struct {
	Seq int64     `bson:"seq"`
	At  time.Time `bson:"at"`
}

// State keys.
const (
	KeyMeta     = "meta"
	KeySnapshot = "snapshot"
	KeyStream   = "stream"
	KeyProducer = "producer"
	prefixNS    = "ns/"
	prefixRange = "range/"
)

// NSKey is the state key of a namespace.
func NSKey(ns string) string { return prefixNS + ns }

// RangeKey is the state key of a snapshot range.
func RangeKey(ns string, id int) string { return prefixRange + ns + "/" + strconv.Itoa(id) }

// StateUpdate is one state record: Value (a BSON-marshalable struct) becomes
// the value of Key once the transaction carrying it commits.
type StateUpdate struct {
	Key   string
	Value any
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Namespaces: map[string]*NamespaceState{}, Ranges: map[string]*RangeState{}}
}

// Apply folds one state record into s. A nil value deletes the key.
func (s *State) Apply(key string, value []byte) error {
	s.RecordsRead++
	if value == nil {
		switch {
		case key == KeyMeta:
			s.Meta = nil
		case key == KeySnapshot:
			s.Snapshot = nil
		case key == KeyStream:
			s.Stream = nil
		case strings.HasPrefix(key, prefixNS):
			delete(s.Namespaces, strings.TrimPrefix(key, prefixNS))
		case strings.HasPrefix(key, prefixRange):
			delete(s.Ranges, key)
		}
		return nil // deleting a key this build does not know changes nothing it reads
	}
	if err := checkStateVersion(key, value); err != nil {
		return err
	}
	var err error
	switch {
	case key == KeyMeta:
		m := &Meta{}
		if err = bson.Unmarshal(value, m); err == nil {
			s.Meta = m
		}
	case key == KeySnapshot:
		v := &SnapshotState{}
		if err = bson.Unmarshal(value, v); err == nil {
			s.Snapshot = v
		}
	case key == KeyStream:
		v := &StreamState{}
		if err = bson.Unmarshal(value, v); err == nil {
			s.Stream = v
		}
	case key == KeyProducer:
		err = bson.Unmarshal(value, &s.Producer)
	case strings.HasPrefix(key, prefixNS):
		v := &NamespaceState{}
		if err = bson.Unmarshal(value, v); err == nil {
			s.Namespaces[strings.TrimPrefix(key, prefixNS)] = v
		}
	case strings.HasPrefix(key, prefixRange):
		v := &RangeState{}
		if err = bson.Unmarshal(value, v); err == nil {
			s.Ranges[key] = v
		}
	default:
		// A release that adds a key raises the metadata version, which
		// checkStateVersion refused above; a key of this version that this
		// build does not know is foreign data. Never skip it.
		return fmt.Errorf("state record %q: unknown key (metadata version %d): the state topic holds records this source connector did not write; check that nothing else writes to it, or run the release that wrote it", key, stateVersion(value))
	}
	if err != nil {
		return fmt.Errorf("decoding state record %q: %w", key, err)
	}
	return nil
}

// EncodeState marshals a state value and stamps it with this binary's
// metadata version ("v", first) unless the value has a "v" of its own.
func EncodeState(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	// The two records of every streaming transaction are built by hand:
	// bson.Marshal's reflection was 4% of the source's CPU at 500
	// events/s (tests/bench, issue 21), 3.0-3.8 µs for the pair against
	// 0.3-0.5 (BenchmarkEncodeStreamState). The bytes are the same
	// (TestEncodeStateFastPath).
	switch s := v.(type) {
	case *StreamState:
		if s != nil && len(s.Token) > 0 {
			return encodeStream(s), nil
		}
	case ProducerState:
		return encodeProducer(s), nil
	}
	b, err := bson.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	if _, err := bson.Raw(b).LookupErr("v"); err == nil {
		return b, nil
	}
	out := make([]byte, 4, len(b)+8)
	out = bsoncore.AppendInt32Element(out, "v", int32(version.Metadata()))
	out = append(out, b[4:]...) // the elements and the terminating 0
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out, nil
}

// encodeStream is EncodeState of a StreamState with a token.
func encodeStream(s *StreamState) []byte {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, 96+len(s.Token)+len(s.TxnLSID)))
	b = bsoncore.AppendInt32Element(b, "v", int32(version.Metadata()))
	b = bsoncore.AppendDocumentElement(b, "token", s.Token)
	b = bsoncore.AppendTimestampElement(b, "clusterTime", s.ClusterTime.T, s.ClusterTime.I)
	if len(s.TxnLSID) > 0 {
		b = bsoncore.AppendDocumentElement(b, "txnLsid", s.TxnLSID)
	}
	if s.TxnNumber != 0 {
		b = bsoncore.AppendInt64Element(b, "txnNumber", s.TxnNumber)
	}
	if s.TxnIndex != 0 {
		b = bsoncore.AppendInt32Element(b, "txnIndex", s.TxnIndex)
	}
	if s.TxnPublished != 0 {
		b = bsoncore.AppendInt32Element(b, "txnPublished", s.TxnPublished)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// encodeProducer is EncodeState of a ProducerState.
func encodeProducer(p ProducerState) []byte {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, 40))
	b = bsoncore.AppendInt32Element(b, "v", int32(version.Metadata()))
	b = bsoncore.AppendInt64Element(b, "seq", p.Seq)
	b = bsoncore.AppendDateTimeElement(b, "at", p.At.UnixMilli())
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// stateVersion is the metadata version of a state value (1 without "v").
func stateVersion(value []byte) int {
	if v, ok := bson.Raw(value).Lookup("v").AsInt64OK(); ok && v > 0 {
		return int(v)
	}
	return 1
}

func checkStateVersion(key string, value []byte) error {
	return version.CheckRead(fmt.Sprintf("source state record %q", key), stateVersion(value),
		version.UpgradeAdvice)
}
