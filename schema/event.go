package schema

import "go.mongodb.org/mongo-driver/v2/bson"

// Op is the operation an Event records. The string values are the ones written
// into the Avro envelope's "op" enum and into JSON output.
type Op string

const (
	OpSnapshot  Op = "snapshot"  // a document copied by the initial snapshot
	OpInsert    Op = "insert"    // change event: insert
	OpUpdate    Op = "update"    // change event: update (delta and/or full document)
	OpReplace   Op = "replace"   // change event: replace
	OpDelete    Op = "delete"    // change event: delete
	OpDDL       Op = "ddl"       // collection/database/index metadata change; a barrier
	OpMarker    Op = "marker"    // control marker (commit, epoch start, snapshot done); a barrier
	OpHeartbeat Op = "heartbeat" // keeps the resume point moving on a quiet stream

	// OpUnknown is never written. Decoding yields it for an operation this
	// build does not know (written by a newer logbridge whose schema
	// appended an Op symbol): Avro schema resolution maps the new symbol to
	// the enum default "unknown", and JSON carries the unknown string.
	// Consumers must not drop such events silently (dead-letter them).
	OpUnknown Op = "unknown"
)

// Namespace names a collection. Coll is empty for database-level events.
type Namespace struct {
	DB   string
	Coll string
}

// String returns "db.coll" (or "db" when Coll is empty).
func (n Namespace) String() string {
	if n.Coll == "" {
		return n.DB
	}
	return n.DB + "." + n.Coll
}

// ClusterTime is a BSON timestamp of the source cluster (T seconds, I
// increment). It is the driver's type, so change events, resume points and
// log events share one time without conversions; the Avro and JSON codecs
// write its two parts themselves.
type ClusterTime = bson.Timestamp

// UpdateDescription is the delta of an update change event.
type UpdateDescription struct {
	UpdatedFields   bson.Raw         // document of updated paths → values
	RemovedFields   []string         // removed paths
	TruncatedArrays []TruncatedArray // arrays shortened by the update
}

// TruncatedArray is one entry of updateDescription.truncatedArrays.
type TruncatedArray struct {
	Field   string
	NewSize int32
}

// TxnID identifies the source transaction an event came from.
type TxnID struct {
	LSID      bson.Raw // the logical session id document
	TxnNumber int64
	Index     int32 // position of the event within the transaction's events, from 0
	// Counted says the producer marks where the transaction ends in the log
	// (Avro/JSON "count" present). Then Count is 0 on every event but the
	// transaction's last one in the log, which carries the number of the
	// transaction's events the log holds (so a consumer knows when it has
	// gathered all of them; events of excluded namespaces are not in the
	// log and not counted). Producers before this field leave Counted false.
	Counted bool
	Count   int32
}

// DDLKind names a metadata change.
type DDLKind string

const (
	DDLCreate        DDLKind = "create"        // create collection or view (Options holds the options)
	DDLDrop          DDLKind = "drop"          // drop collection
	DDLRename        DDLKind = "rename"        // rename collection to Target
	DDLDropDatabase  DDLKind = "dropDatabase"  // drop the whole database
	DDLCreateIndexes DDLKind = "createIndexes" // Indexes holds {indexes: [spec, ...]}
	DDLDropIndexes   DDLKind = "dropIndexes"   // Indexes holds {indexes: [spec, ...]} (names at least)
	DDLModify        DDLKind = "modify"        // collMod; Options holds the changed options
)

// DDL is the payload of an OpDDL event.
type DDL struct {
	Kind    DDLKind
	Target  *Namespace // rename target
	Options bson.Raw   // collection options / collMod document
	Indexes bson.Raw   // {indexes: [spec, ...]}
	// ID identifies this DDL occurrence across partitions and replays
	// (for example the resume token or cluster time string of the source event).
	ID string
}

// MarkerKind names a control marker.
type MarkerKind string

const (
	MarkerEpochStart   MarkerKind = "epochStart"
	MarkerSnapshotDone MarkerKind = "snapshotDone"
	MarkerCommit       MarkerKind = "commit"
)

// Marker is the payload of an OpMarker event.
type Marker struct {
	Kind MarkerKind
	ID   string   // unique id of this marker, same in every partition
	Data bson.Raw // optional details
}

// Event is one record of the log: a snapshot document, a change event, a DDL
// barrier, a control marker or a heartbeat. Documents stay bson.Raw.
//
// A nil bson.Raw (or nil pointer) means "absent" and round-trips as absent
// (Avro null, omitted in JSON); a non-nil bson.Raw must hold one complete BSON
// document. Events returned by Serde.DecodeValue for the Avro encodings alias
// the decoded value's bytes: do not modify the value while the Event is used.
type Event struct {
	Op                 Op
	NS                 Namespace
	DocumentKey        bson.Raw // {_id} or, in a sharded collection, {shard key fields..., _id}; nil for DDL/markers/heartbeats
	FullDocument       bson.Raw
	FullDocumentBefore bson.Raw // pre-image
	Update             *UpdateDescription
	ClusterTime        ClusterTime
	WallTimeMillis     int64 // source wall time, ms since Unix epoch; 0 when unknown
	Txn                *TxnID
	ResumeToken        bson.Raw // change stream _id; nil for snapshot records
	Epoch              int64    // sync epoch (incremented on reverse)
	Source             string   // source identity (name given at start, or cluster id)
	DDL                *DDL
	Marker             *Marker
}
