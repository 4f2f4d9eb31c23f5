package capture

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
)

// Change event operation types (MongoDB documentation, "Change Events").
const (
	OpInsert        = "insert"
	OpUpdate        = "update"
	OpReplace       = "replace"
	OpDelete        = "delete"
	OpDrop          = "drop"
	OpRename        = "rename"
	OpDropDatabase  = "dropDatabase"
	OpInvalidate    = "invalidate"
	OpCreate        = "create"
	OpCreateIndexes = "createIndexes"
	OpDropIndexes   = "dropIndexes"
	OpModify        = "modify"
)

// ErrMalformedEvent: a change event lacks a field its operationType requires.
var ErrMalformedEvent = errors.New("malformed change event")

// Mapped is the result of mapping one change event.
type Mapped struct {
	// OpType is the event's operationType.
	OpType string
	// Token is the event's resume token (_id).
	Token bson.Raw
	// ClusterTime of the event.
	ClusterTime bson.Timestamp
	// Item to publish; Item.Event is nil for events that produce no record
	// (invalidate, unknown operation types).
	Item checkpoint.Item
	// Namespaces the event touches (for the filter): ns, and the rename target.
	NS, To schema.Namespace
}

// TxnTracker numbers the events of each source transaction.
type TxnTracker struct {
	LSID      bson.Raw
	TxnNumber int64
	Index     int32
	// Published counts the transaction's data events handed to the log
	// so far (the stream counts them; excluded namespaces are not), for
	// the count stamped on the transaction's last event.
	Published int32
	active    bool
}

// Next returns the TxnID of an event of transaction (lsid, txnNumber).
func (t *TxnTracker) Next(lsid bson.Raw, txnNumber int64) *schema.TxnID {
	if t.active && bytes.Equal(t.LSID, lsid) && t.TxnNumber == txnNumber {
		t.Index++
	} else {
		t.LSID, t.TxnNumber, t.Index, t.Published, t.active = lsid, txnNumber, 0, 0, true
	}
	return &schema.TxnID{LSID: lsid, TxnNumber: txnNumber, Index: t.Index}
}

// Restore continues the numbering of a transaction whose events were
// published before a restart.
func (t *TxnTracker) Restore(lsid bson.Raw, txnNumber int64, index, published int32) {
	if len(lsid) == 0 {
		return
	}
	t.LSID, t.TxnNumber, t.Index, t.Published, t.active = lsid, txnNumber, index, published, true
}

// In reports whether the last event mapped belongs to transaction x.
func (t *TxnTracker) In(x *schema.TxnID) bool {
	return t.active && x != nil && t.TxnNumber == x.TxnNumber && bytes.Equal(t.LSID, x.LSID)
}

// Reset forgets the current transaction (after an event outside any).
func (t *TxnTracker) Reset() { t.active = false }

// Mapper maps change events.
type Mapper struct {
	Epoch  int64
	Source string
	Txn    TxnTracker
}

// changeEvent holds the fields of a change event the mapper reads
// (decode.go fills it).
type changeEvent struct {
	ID                       bson.Raw // _id: the resume token
	OperationType            string
	ClusterTime              bson.Timestamp
	WallTime                 *bson.DateTime
	NS                       *nsField
	To                       *nsField
	DocumentKey              bson.Raw
	FullDocument             bson.RawValue
	FullDocumentBeforeChange bson.RawValue
	UpdateDescription        *updateDesc
	OperationDescription     bson.Raw
	NSType                   string
	LSID                     bson.Raw
	TxnNumber                bson.RawValue
}

type nsField struct{ DB, Coll string }

type updateDesc struct {
	UpdatedFields   bson.Raw
	RemovedFields   []string
	TruncatedArrays []truncatedArray
}

type truncatedArray struct {
	Field   string
	NewSize int32
}

// emptyDoc is the BSON document {} (read only).
var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

// Map maps one complete (reassembled) change event.
func (m *Mapper) Map(raw bson.Raw) (*Mapped, error) {
	var ce changeEvent
	if err := ce.decode(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	if len(ce.ID) == 0 {
		return nil, fmt.Errorf("%w: no _id (resume token); a $project must not remove it", ErrMalformedEvent)
	}
	out := &Mapped{OpType: ce.OperationType, Token: ce.ID, ClusterTime: ce.ClusterTime}
	if ce.NS != nil {
		out.NS = schema.Namespace{DB: ce.NS.DB, Coll: ce.NS.Coll}
	}
	if ce.To != nil {
		out.To = schema.Namespace{DB: ce.To.DB, Coll: ce.To.Coll}
	}
	ev := &schema.Event{
		NS:          out.NS,
		ClusterTime: ce.ClusterTime,
		ResumeToken: ce.ID,
		Epoch:       m.Epoch,
		Source:      m.Source,
	}
	if ce.WallTime != nil {
		ev.WallTimeMillis = int64(*ce.WallTime)
	}
	var err error
	if ev.Txn, err = m.txn(&ce); err != nil {
		return nil, err
	}
	switch ce.OperationType {
	case OpInsert, OpReplace, OpUpdate, OpDelete:
		err = ce.mapData(ev, out.NS)
	case OpCreate, OpCreateIndexes, OpDropIndexes, OpModify, OpDrop, OpRename, OpDropDatabase:
		err = ce.mapDDL(ev, out)
	default:
		// invalidate and operation types this build does not publish
		// (shardCollection, reshardCollection, refineCollectionShardKey, …).
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out.Item.Event = ev
	out.Item.Captured = ce.OperationType
	return out, nil
}

// txn numbers an event of a transaction (nil outside any).
func (m *Mapper) txn(ce *changeEvent) (*schema.TxnID, error) {
	if len(ce.LSID) == 0 || ce.TxnNumber.Type == 0 {
		m.Txn.Reset()
		return nil, nil
	}
	n, ok := ce.TxnNumber.AsInt64OK()
	if !ok {
		return nil, fmt.Errorf("%w: txnNumber is %s", ErrMalformedEvent, ce.TxnNumber.Type)
	}
	return m.Txn.Next(ce.LSID, n), nil
}

// mapData fills ev from a data event (insert, replace, update, delete) on
// namespace ns.
func (ce *changeEvent) mapData(ev *schema.Event, ns schema.Namespace) error {
	if err := ce.needNS(); err != nil {
		return err
	}
	if len(ce.DocumentKey) == 0 {
		return fmt.Errorf("%w: %s event on %s without documentKey", ErrMalformedEvent, ce.OperationType, ns)
	}
	ev.DocumentKey = ce.DocumentKey
	ev.FullDocumentBefore = embedded(ce.FullDocumentBeforeChange)
	switch ce.OperationType {
	case OpInsert, OpReplace:
		ev.Op = schema.OpInsert
		if ce.OperationType == OpReplace {
			ev.Op = schema.OpReplace
		}
		if ev.FullDocument = embedded(ce.FullDocument); ev.FullDocument == nil {
			return fmt.Errorf("%w: %s event on %s without fullDocument", ErrMalformedEvent, ce.OperationType, ns)
		}
	case OpUpdate:
		ev.Op = schema.OpUpdate
		ev.FullDocument = embedded(ce.FullDocument)
		u := ce.UpdateDescription
		if u == nil {
			return fmt.Errorf("%w: update event on %s without updateDescription", ErrMalformedEvent, ns)
		}
		ud := &schema.UpdateDescription{UpdatedFields: u.UpdatedFields, RemovedFields: u.RemovedFields}
		if len(ud.UpdatedFields) == 0 {
			ud.UpdatedFields = emptyDoc
		}
		for _, ta := range u.TruncatedArrays {
			ud.TruncatedArrays = append(ud.TruncatedArrays, schema.TruncatedArray{Field: ta.Field, NewSize: ta.NewSize})
		}
		ev.Update = ud
	case OpDelete:
		ev.Op = schema.OpDelete
	}
	return nil
}

// mapDDL fills ev from a DDL event and routes out's item as a barrier into
// every partition of the affected topics.
func (ce *changeEvent) mapDDL(ev *schema.Event, out *Mapped) error {
	if err := ce.needNS(); err != nil {
		return err
	}
	ev.Op = schema.OpDDL
	out.Item.Broadcast = true
	id := tokenID(ce.ID)
	switch ce.OperationType {
	case OpRename:
		if ce.To == nil || ce.To.Coll == "" {
			return fmt.Errorf("%w: rename event on %s without to", ErrMalformedEvent, out.NS)
		}
		to := out.To
		ev.DDL = &schema.DDL{Kind: schema.DDLRename, ID: id, Target: &to, Options: ce.OperationDescription}
	case OpDropDatabase:
		ev.NS.Coll = ""
		ev.DDL = &schema.DDL{Kind: schema.DDLDropDatabase, ID: id}
		out.Item.AllOfDB = true
	default:
		d, err := ce.collectionDDL(id, out.NS)
		if err != nil {
			return err
		}
		ev.DDL = d
		out.Item.NSType = nsType(ce.NSType, ce.OperationDescription)
	}
	return nil
}

// collectionDDL is the DDL of a create, createIndexes, dropIndexes, modify
// or drop event on namespace ns.
func (ce *changeEvent) collectionDDL(id string, ns schema.Namespace) (*schema.DDL, error) {
	d := &schema.DDL{ID: id}
	switch ce.OperationType {
	case OpCreate:
		d.Kind, d.Options = schema.DDLCreate, ce.OperationDescription
	case OpCreateIndexes:
		d.Kind, d.Indexes = schema.DDLCreateIndexes, ce.OperationDescription
	case OpDropIndexes:
		d.Kind, d.Indexes = schema.DDLDropIndexes, ce.OperationDescription
	case OpModify:
		d.Kind, d.Options = schema.DDLModify, ce.OperationDescription
	case OpDrop:
		d.Kind = schema.DDLDrop
	}
	if len(d.Options) == 0 && (d.Kind == schema.DDLCreate || d.Kind == schema.DDLModify) {
		d.Options = emptyDoc
	}
	if len(d.Indexes) == 0 && (d.Kind == schema.DDLCreateIndexes || d.Kind == schema.DDLDropIndexes) {
		return nil, fmt.Errorf("%w: %s event on %s without operationDescription", ErrMalformedEvent, ce.OperationType, ns)
	}
	return d, nil
}

func (ce *changeEvent) needNS() error {
	if ce.NS == nil || ce.NS.DB == "" {
		return fmt.Errorf("%w: %s event without ns", ErrMalformedEvent, ce.OperationType)
	}
	return nil
}

// embedded returns v as a document, nil when it is absent or null (e.g.
// updateLookup of a deleted document).
func embedded(v bson.RawValue) bson.Raw {
	if v.Type == bson.TypeEmbeddedDocument {
		return bson.Raw(v.Value)
	}
	return nil
}

// nsType is the namespace type of a create event: nsType (8.1+), else a
// view when operationDescription has viewOn, else a time series when it has
// timeseries.
func nsType(t string, desc bson.Raw) string {
	switch {
	case t != "":
		return t
	case len(desc) > 0 && desc.Lookup("viewOn").Type != 0:
		return checkpoint.TypeView
	case len(desc) > 0 && desc.Lookup("timeseries").Type != 0:
		return checkpoint.TypeTimeseries
	}
	return ""
}

// tokenID identifies an event across partitions and replays: the resume
// token's _data string when it has one, else the hex of its BSON.
func tokenID(tok bson.Raw) string {
	if v, err := tok.LookupErr("_data"); err == nil {
		if s, ok := v.StringValueOK(); ok {
			return s
		}
	}
	return hex.EncodeToString(tok)
}

// TokenTime decodes the cluster time at the start of a resume token's
// _data (a KeyString whose first value is the event's cluster time: type
// byte 130 then the 8-byte big-endian timestamp). ok is false for tokens of
// another shape; the token's meaning is otherwise opaque.
func TokenTime(tok bson.Raw) (bson.Timestamp, bool) {
	v, err := tok.LookupErr("_data")
	if err != nil {
		return bson.Timestamp{}, false
	}
	s, ok := v.StringValueOK()
	if !ok || len(s) < 18 {
		return bson.Timestamp{}, false
	}
	b, err := hex.DecodeString(s[:18])
	if err != nil || b[0] != 130 {
		return bson.Timestamp{}, false
	}
	return bson.Timestamp{
		T: uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]),
		I: uint32(b[5])<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8]),
	}, true
}
