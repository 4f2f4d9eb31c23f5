package schema

import (
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The Debezium encoding (EncodingDebezium) writes each data event as
// Debezium's MongoDB connector does, serialized by Kafka Connect's
// JsonConverter with schemas enabled (its default): key and value are both
// {"schema": <Connect schema>, "payload": <data>}.
//
// Key:   {"id": <the _id value in relaxed Extended JSON>}, schema "<topic>.Key".
// Value: io.debezium.connector.mongodb envelope, schema "<topic>.Envelope":
//
//	before             pre-image (strict Extended JSON string) or null
//	after              full document or null (delete; update without post-image)
//	updateDescription  {removedFields, updatedFields (JSON string), truncatedArrays [{field, size}]} or null
//	source             {version, connector "mongodb", name, ts_ms, snapshot, db, sequence, ts_us, ts_ns, rs,
//	                    collection, ord, lsid, txnNumber, wallTime}
//	op                 "r" snapshot, "c" insert, "u" update and replace, "d" delete
//	ts_ms, ts_us, ts_ns  when logbridge encoded the record (Debezium: when the connector processed it)
//	transaction        {id, total_order, data_collection_order} for events of a transaction, else null
//
// What it cannot carry, and why the sink refuses it (ErrLossyEncoding):
// DDL (create, drop, rename, indexes, collMod) and control markers (Debezium's
// MongoDB format has no such events; they are not written), the sync epoch,
// the resume token, transaction boundaries (txn count), the shard key fields
// of the document key (the key holds _id only), and some BSON values: strict
// Extended JSON writes a DBPointer as a {"$ref", "$id"} document, every NaN as
// NaN (payload bits lost), invalid UTF-8 as U+FFFD, and a sub-document whose
// first key is an Extended JSON keyword ({"$date": 1}) reads back as that type.
// No delete tombstones are written (Debezium's tombstones.on.delete=false).

// debeziumSourceSchema is the Connect schema of the source block.
const debeziumSourceSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"version"},` +
	`{"type":"string","optional":false,"field":"connector"},` +
	`{"type":"string","optional":false,"field":"name"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},` +
	`{"type":"string","optional":false,"field":"db"},` +
	`{"type":"string","optional":true,"field":"sequence"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"string","optional":false,"field":"rs"},` +
	`{"type":"string","optional":false,"field":"collection"},` +
	`{"type":"int32","optional":false,"field":"ord"},` +
	`{"type":"string","optional":true,"field":"lsid"},` +
	`{"type":"int64","optional":true,"field":"txnNumber"},` +
	`{"type":"int64","optional":true,"field":"wallTime"}` +
	`],"optional":false,"name":"io.debezium.connector.mongo.Source","field":"source"}`

const debeziumJSONField = `{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"`

// debeziumValueSchema is the value schema without its name.
const debeziumValueSchema = `{"type":"struct","fields":[` +
	debeziumJSONField + `before"},` +
	debeziumJSONField + `after"},` +
	`{"type":"struct","fields":[` +
	`{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"removedFields"},` +
	debeziumJSONField + `updatedFields"},` +
	`{"type":"array","items":{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"field"},` +
	`{"type":"int32","optional":false,"field":"size"}` +
	`],"optional":false,"name":"io.debezium.connector.mongodb.changestream.truncatedarray","version":1},"optional":true,"field":"truncatedArrays"}` +
	`],"optional":true,"name":"io.debezium.connector.mongodb.changestream.updatedescription","version":1,"field":"updateDescription"},` +
	debeziumSourceSchema + `,` +
	`{"type":"string","optional":true,"field":"op"},` +
	`{"type":"int64","optional":true,"field":"ts_ms"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"id"},` +
	`{"type":"int64","optional":false,"field":"total_order"},` +
	`{"type":"int64","optional":false,"field":"data_collection_order"}` +
	`],"optional":true,"name":"event.block","version":1,"field":"transaction"}` +
	`],"optional":false,"name":"`

// debeziumHeartbeat is Debezium's heartbeat value (topic
// __debezium-heartbeat.<prefix>); ts_ms is the source cluster time reached.
const debeziumHeartbeatSchema = `{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"}`

// debeziumConnector is the source.version value: which software wrote the
// record (Debezium writes its own version there).
const debeziumConnector = "logbridge"

// connectSchemaName turns a topic into a Connect/Avro schema name as
// Debezium's SchemaNameAdjuster does: characters other than letters, digits,
// '_' and '.' become '_', and a leading digit gets a '_' prefix.
func connectSchemaName(topic string) string {
	b := []byte(topic)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// debeziumOp maps an envelope op to Debezium's op code ("" if it has none).
func debeziumOp(op Op) string {
	switch op {
	case OpSnapshot:
		return "r"
	case OpInsert:
		return "c"
	case OpUpdate, OpReplace:
		return "u"
	case OpDelete:
		return "d"
	}
	return ""
}

func appendOptJavaDoc(dst []byte, doc bson.Raw) []byte {
	if doc == nil {
		return append(dst, "null"...)
	}
	return appendJacksonString(dst, string(appendJavaDoc(nil, doc, javaStrict)))
}

// appendDebezium appends ev (validated) as a Debezium value; now gives
// the record's ts_ms, ts_us and ts_ns.
func appendDebezium(dst []byte, topic string, ev *Event, now time.Time) ([]byte, error) {
	if ev.Op == OpHeartbeat {
		dst = append(dst, `{"schema":`+debeziumHeartbeatSchema+`,"payload":{"ts_ms":`...)
		dst = strconv.AppendInt(dst, int64(ev.ClusterTime.T)*1000, 10)
		return append(dst, "}}"...), nil
	}
	op := debeziumOp(ev.Op)
	if op == "" {
		return dst, errNotCarried(EncodingDebezium, ev.Op)
	}
	dst = append(dst, `{"schema":`+debeziumValueSchema...)
	dst = append(dst, connectSchemaName(topic)...)
	dst = append(dst, `.Envelope"},"payload":{"before":`...)
	dst = appendOptJavaDoc(dst, ev.FullDocumentBefore)
	dst = append(dst, `,"after":`...)
	dst = appendOptJavaDoc(dst, ev.FullDocument)
	dst = append(dst, `,"updateDescription":`...)
	if u := ev.Update; u != nil {
		dst = append(dst, `{"removedFields":`...)
		if u.RemovedFields == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '[')
			for i, f := range u.RemovedFields {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJacksonString(dst, f)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, `,"updatedFields":`...)
		dst = appendOptJavaDoc(dst, u.UpdatedFields)
		dst = append(dst, `,"truncatedArrays":`...)
		if u.TruncatedArrays == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '[')
			for i, a := range u.TruncatedArrays {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJacksonString(append(dst, `{"field":`...), a.Field)
				dst = strconv.AppendInt(append(dst, `,"size":`...), int64(a.NewSize), 10)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	snapshot := "false"
	if ev.Op == OpSnapshot {
		snapshot = "true"
	}
	dst = append(dst, `,"source":{"version":"`+debeziumConnector+`","connector":"mongodb","name":`...)
	dst = appendJacksonString(dst, ev.Source)
	dst = strconv.AppendInt(append(dst, `,"ts_ms":`...), int64(ev.ClusterTime.T)*1000, 10)
	dst = append(dst, `,"snapshot":"`+snapshot+`","db":`...)
	dst = appendJacksonString(dst, ev.NS.DB)
	dst = strconv.AppendInt(append(dst, `,"sequence":null,"ts_us":`...), int64(ev.ClusterTime.T)*1_000_000, 10)
	dst = strconv.AppendInt(append(dst, `,"ts_ns":`...), int64(ev.ClusterTime.T)*1_000_000_000, 10)
	dst = append(dst, `,"rs":`...)
	dst = appendJacksonString(dst, ev.Source)
	dst = appendJacksonString(append(dst, `,"collection":`...), ev.NS.Coll)
	dst = strconv.AppendInt(append(dst, `,"ord":`...), int64(ev.ClusterTime.I), 10)
	if t := ev.Txn; t != nil {
		dst = appendJacksonString(append(dst, `,"lsid":`...), string(appendJavaDoc(nil, t.LSID, javaStrict)))
		dst = strconv.AppendInt(append(dst, `,"txnNumber":`...), t.TxnNumber, 10)
	} else {
		dst = append(dst, `,"lsid":null,"txnNumber":null`...)
	}
	if ev.WallTimeMillis != 0 {
		dst = strconv.AppendInt(append(dst, `,"wallTime":`...), ev.WallTimeMillis, 10)
	} else {
		dst = append(dst, `,"wallTime":null`...)
	}
	dst = append(dst, `},"op":"`+op+`","ts_ms":`...)
	dst = strconv.AppendInt(dst, now.UnixMilli(), 10)
	dst = strconv.AppendInt(append(dst, `,"ts_us":`...), now.UnixMicro(), 10)
	dst = strconv.AppendInt(append(dst, `,"ts_ns":`...), now.UnixNano(), 10)
	dst = append(dst, `,"transaction":`...)
	if t := ev.Txn; t != nil {
		id := string(appendJavaDoc(nil, t.LSID, javaStrict)) + ":" + strconv.FormatInt(t.TxnNumber, 10)
		dst = appendJacksonString(append(dst, `{"id":`...), id)
		dst = strconv.AppendInt(append(dst, `,"total_order":`...), int64(t.Index)+1, 10)
		dst = strconv.AppendInt(append(dst, `,"data_collection_order":`...), int64(t.Index)+1, 10)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, "}}"...), nil
}

// debeziumKey is the Debezium record key of a data event: {"id": _id in
// relaxed Extended JSON}; for a heartbeat Debezium's {"serverName": ...}.
// nil for other events (they are not written in this encoding).
func debeziumKey(topic string, ev *Event) []byte {
	if ev.Op == OpHeartbeat {
		b := []byte(`{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"serverName"}],"optional":false,"name":"io.debezium.connector.common.ServerNameKey"},"payload":{"serverName":`)
		b = appendJacksonString(b, ev.Source)
		return append(b, "}}"...)
	}
	if debeziumOp(ev.Op) == "" || !isDoc(ev.DocumentKey) {
		return nil
	}
	id, err := ev.DocumentKey.LookupErr("_id")
	if err != nil {
		return nil
	}
	val := appendJavaValue(nil, bsonValue(id), javaRelaxed)
	b := []byte(`{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"`)
	b = append(b, connectSchemaName(topic)...)
	b = append(b, `.Key"},"payload":{"id":`...)
	b = appendJacksonString(b, string(val))
	return append(b, "}}"...)
}

// appendJacksonString appends s as a JSON string the way Kafka Connect's
// JsonConverter (Jackson) writes it: ", \ and control characters escaped,
// everything else as UTF-8.
func appendJacksonString(dst []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			dst = append(dst, `\"`...)
		case c == '\\':
			dst = append(dst, `\\`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\b':
			dst = append(dst, `\b`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// isConnectEncoding reports the encodings whose key is not the raw BSON
// document key (see Serde.Key and Serde.PartitionKey).
func isConnectEncoding(e Encoding) bool {
	return e == EncodingDebezium || e == EncodingConnectJSON
}

// bsonValue converts a driver RawValue to a bsoncore.Value.
func bsonValue(v bson.RawValue) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value}
}

// errNotCarried is the error for an event an encoding has no representation
// for; Serde.Carries tells producers not to write such events.
func errNotCarried(enc Encoding, op Op) error {
	return fmt.Errorf("%w: the %s encoding has no representation for %s events (check Serde.Carries before encoding)", ErrInvalidEvent, enc, op)
}
