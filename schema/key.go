package schema

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// ControlKeyField is the first field of the record key of DDL, marker and
// heartbeat records: {"$logbridge": "ddl", "id": <DDL.ID>},
// {"$logbridge": "marker", "kind": <Marker.Kind>, "id": <Marker.ID>} and
// {"$logbridge": "heartbeat"}. A document key always starts with _id, so a
// control key never equals a document key.
//
// Control records are written explicitly into every partition, so their key
// does not choose a partition. It is never nil because Kafka rejects null
// keys on compacted topics, and it is distinct per DDL and marker occurrence
// so compaction never removes a barrier (only older heartbeats, which is
// intended).
const ControlKeyField = "$logbridge"

// Key returns the record key of ev: for snapshot, insert, update, replace
// and delete events the raw BSON document key itself (ev.DocumentKey, not a
// copy), the same bytes in every value encoding so that partitioning and
// per-document order never depend on the encoding; for DDL, marker and
// heartbeat events a control key (see ControlKeyField). It returns nil for an
// event that EncodeValue would reject for want of a key or payload.
func (s *Serde) Key(ev *Event) []byte { return recordKey(ev) }

func recordKey(ev *Event) []byte {
	if ev == nil {
		return nil
	}
	if isDataOp(ev.Op) {
		return ev.DocumentKey
	}
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, 64))
	switch ev.Op {
	case OpDDL:
		if ev.DDL == nil {
			return nil
		}
		b = bsoncore.AppendStringElement(b, ControlKeyField, "ddl")
		b = bsoncore.AppendStringElement(b, "id", ev.DDL.ID)
	case OpMarker:
		if ev.Marker == nil {
			return nil
		}
		b = bsoncore.AppendStringElement(b, ControlKeyField, "marker")
		b = bsoncore.AppendStringElement(b, "kind", string(ev.Marker.Kind))
		b = bsoncore.AppendStringElement(b, "id", ev.Marker.ID)
	case OpHeartbeat:
		b = bsoncore.AppendStringElement(b, ControlKeyField, "heartbeat")
	default:
		return nil
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// IsControlKey reports whether a record key is a control key (DDL, marker or
// heartbeat) rather than a document key.
func IsControlKey(key []byte) bool {
	if !isDoc(key) {
		return false
	}
	e, err := bson.Raw(key).IndexErr(0)
	return err == nil && e.Key() == ControlKeyField
}
