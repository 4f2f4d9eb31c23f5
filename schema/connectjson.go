package schema

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The connect-json encoding (EncodingConnectJSON) is the envelope as Kafka
// Connect's JsonConverter writes a Struct with schemas enabled:
// {"schema": <Connect schema io.logbridge.Envelope>, "payload": {...}}, so
// any Connect sink (JsonConverter, schemas.enable=true) reads it as a typed
// record. Field names and order are the Avro envelope's; BSON payloads
// (documents, key, pre-image, updatedFields, resume token, lsid, DDL options
// and indexes, marker data) are strings holding canonical Extended JSON v2,
// semantic type io.debezium.data.Json; absent optional fields are null;
// wallTime is a Connect Timestamp (ms). The key is {"schema": ...,
// "payload": {"documentKey": <canonical Extended JSON of the record key>}}
// for data and control records alike.
//
// It carries every envelope field, so the sink applies it; the BSON values
// canonical Extended JSON cannot reproduce (see json.go) are refused with
// ErrInvalidEvent when encoding, exactly as with EncodingJSON.

const connectJSONField = `{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"`

const connectNSFields = `"fields":[{"type":"string","optional":false,"field":"db"},{"type":"string","optional":false,"field":"coll"}]`

// connectEnvelopeSchema is the Connect schema of the connect-json value.
const connectEnvelopeSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"op"},` +
	`{"type":"struct",` + connectNSFields + `,"optional":false,"name":"io.logbridge.Namespace","field":"ns"},` +
	connectJSONField + `documentKey"},` +
	connectJSONField + `fullDocument"},` +
	connectJSONField + `fullDocumentBeforeChange"},` +
	`{"type":"struct","fields":[` +
	connectJSONField + `updatedFields"},` +
	`{"type":"array","items":{"type":"string","optional":false},"optional":false,"field":"removedFields"},` +
	`{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"field"},{"type":"int32","optional":false,"field":"newSize"}],"optional":false,"name":"io.logbridge.TruncatedArray"},"optional":false,"field":"truncatedArrays"}` +
	`],"optional":true,"name":"io.logbridge.UpdateDescription","field":"updateDescription"},` +
	`{"type":"struct","fields":[{"type":"int64","optional":false,"field":"t"},{"type":"int64","optional":false,"field":"i"}],"optional":false,"name":"io.logbridge.ClusterTime","field":"clusterTime"},` +
	`{"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"wallTime"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"name":"io.debezium.data.Json","version":1,"field":"lsid"},` +
	`{"type":"int64","optional":false,"field":"txnNumber"},` +
	`{"type":"int32","optional":false,"field":"index"},` +
	`{"type":"int32","optional":true,"field":"count"}` +
	`],"optional":true,"name":"io.logbridge.Txn","field":"txn"},` +
	connectJSONField + `resumeToken"},` +
	`{"type":"int64","optional":false,"field":"epoch"},` +
	`{"type":"string","optional":false,"field":"source"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"kind"},` +
	`{"type":"struct",` + connectNSFields + `,"optional":true,"name":"io.logbridge.Namespace","field":"target"},` +
	connectJSONField + `options"},` +
	connectJSONField + `indexes"},` +
	`{"type":"string","optional":false,"field":"id"}` +
	`],"optional":true,"name":"io.logbridge.DDL","field":"ddl"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"kind"},` +
	`{"type":"string","optional":false,"field":"id"},` +
	connectJSONField + `data"}` +
	`],"optional":true,"name":"io.logbridge.Marker","field":"marker"}` +
	`],"optional":false,"name":"io.logbridge.Envelope","version":1}`

const connectKeySchema = `{"type":"struct","fields":[{"type":"string","optional":false,"name":"io.debezium.data.Json","version":1,"field":"documentKey"}],"optional":false,"name":"io.logbridge.Key"}`

// appendCanonical appends doc as a JSON string holding its canonical
// Extended JSON (null for a nil doc).
func appendCanonical(dst []byte, doc bson.Raw) ([]byte, error) {
	if doc == nil {
		return append(dst, "null"...), nil
	}
	ej, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return dst, fmt.Errorf("%w: rendering Extended JSON: %v", ErrInvalidEvent, err)
	}
	return appendJacksonString(dst, string(ej)), nil
}

// appendConnectJSON appends ev (validated) as a connect-json value.
func appendConnectJSON(dst []byte, ev *Event) ([]byte, error) {
	if !eventExtJSONSafe(ev) {
		// The JSON encoder's round-trip check decides, so both JSON
		// encodings accept and refuse the same events.
		if _, err := appendJSON(nil, ev); err != nil {
			return dst, err
		}
	}
	start := len(dst)
	var err error
	doc := func(b []byte, d bson.Raw) []byte {
		if err != nil {
			return b
		}
		b, err = appendCanonical(b, d)
		return b
	}
	b := append(dst, `{"schema":`+connectEnvelopeSchema+`,"payload":{"op":`...)
	b = appendJacksonString(b, string(ev.Op))
	b = appendConnectNS(append(b, `,"ns":`...), ev.NS)
	b = doc(append(b, `,"documentKey":`...), ev.DocumentKey)
	b = doc(append(b, `,"fullDocument":`...), ev.FullDocument)
	b = doc(append(b, `,"fullDocumentBeforeChange":`...), ev.FullDocumentBefore)
	b = append(b, `,"updateDescription":`...)
	if u := ev.Update; u != nil {
		b = doc(append(b, `{"updatedFields":`...), u.UpdatedFields)
		b = append(b, `,"removedFields":[`...)
		for i, f := range u.RemovedFields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJacksonString(b, f)
		}
		b = append(b, `],"truncatedArrays":[`...)
		for i, a := range u.TruncatedArrays {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJacksonString(append(b, `{"field":`...), a.Field)
			b = strconv.AppendInt(append(b, `,"newSize":`...), int64(a.NewSize), 10)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	} else {
		b = append(b, "null"...)
	}
	b = strconv.AppendUint(append(b, `,"clusterTime":{"t":`...), uint64(ev.ClusterTime.T), 10)
	b = strconv.AppendUint(append(b, `,"i":`...), uint64(ev.ClusterTime.I), 10)
	b = append(b, `},"wallTime":`...)
	if ev.WallTimeMillis != 0 {
		b = strconv.AppendInt(b, ev.WallTimeMillis, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"txn":`...)
	if t := ev.Txn; t != nil {
		b = doc(append(b, `{"lsid":`...), t.LSID)
		b = strconv.AppendInt(append(b, `,"txnNumber":`...), t.TxnNumber, 10)
		b = strconv.AppendInt(append(b, `,"index":`...), int64(t.Index), 10)
		if t.Counted {
			b = strconv.AppendInt(append(b, `,"count":`...), int64(t.Count), 10)
		} else {
			b = append(b, `,"count":null`...)
		}
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = doc(append(b, `,"resumeToken":`...), ev.ResumeToken)
	b = strconv.AppendInt(append(b, `,"epoch":`...), ev.Epoch, 10)
	b = appendJacksonString(append(b, `,"source":`...), ev.Source)
	b = append(b, `,"ddl":`...)
	if d := ev.DDL; d != nil {
		b = appendJacksonString(append(b, `{"kind":`...), string(d.Kind))
		b = append(b, `,"target":`...)
		if d.Target != nil {
			b = appendConnectNS(b, *d.Target)
		} else {
			b = append(b, "null"...)
		}
		b = doc(append(b, `,"options":`...), d.Options)
		b = doc(append(b, `,"indexes":`...), d.Indexes)
		b = append(appendJacksonString(append(b, `,"id":`...), d.ID), '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"marker":`...)
	if m := ev.Marker; m != nil {
		b = appendJacksonString(append(b, `{"kind":`...), string(m.Kind))
		b = appendJacksonString(append(b, `,"id":`...), m.ID)
		b = append(doc(append(b, `,"data":`...), m.Data), '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, "}}"...)
	if err != nil {
		return dst[:start], err
	}
	return b, nil
}

func appendConnectNS(b []byte, ns Namespace) []byte {
	b = appendJacksonString(append(b, `{"db":`...), ns.DB)
	return append(appendJacksonString(append(b, `,"coll":`...), ns.Coll), '}')
}

// connectJSONKey is the connect-json record key: the record key (document
// key or control key) as canonical Extended JSON in a Connect struct.
func connectJSONKey(raw []byte) []byte {
	if raw == nil {
		return nil
	}
	ej, err := bson.MarshalExtJSON(bson.Raw(raw), true, false)
	if err != nil {
		return nil
	}
	b := append([]byte(`{"schema":`+connectKeySchema+`,"payload":{"documentKey":`), nil...)
	b = appendJacksonString(b, string(ej))
	return append(b, "}}"...)
}

// connectPayload is the payload of a connect-json value, as decoded.
type connectPayload struct {
	Op                       *string               `json:"op"`
	NS                       *connectNS            `json:"ns"`
	DocumentKey              *string               `json:"documentKey"`
	FullDocument             *string               `json:"fullDocument"`
	FullDocumentBeforeChange *string               `json:"fullDocumentBeforeChange"`
	UpdateDescription        *connectUpdate        `json:"updateDescription"`
	ClusterTime              *struct{ T, I int64 } `json:"clusterTime"`
	WallTime                 *int64                `json:"wallTime"`
	Txn                      *struct {
		LSID      string `json:"lsid"`
		TxnNumber int64  `json:"txnNumber"`
		Index     int32  `json:"index"`
		Count     *int32 `json:"count"`
	} `json:"txn"`
	ResumeToken *string `json:"resumeToken"`
	Epoch       int64   `json:"epoch"`
	Source      string  `json:"source"`
	DDL         *struct {
		Kind    string     `json:"kind"`
		Target  *connectNS `json:"target"`
		Options *string    `json:"options"`
		Indexes *string    `json:"indexes"`
		ID      string     `json:"id"`
	} `json:"ddl"`
	Marker *struct {
		Kind string  `json:"kind"`
		ID   string  `json:"id"`
		Data *string `json:"data"`
	} `json:"marker"`
}

type connectNS struct {
	DB   string `json:"db"`
	Coll string `json:"coll"`
}

type connectUpdate struct {
	UpdatedFields   *string  `json:"updatedFields"`
	RemovedFields   []string `json:"removedFields"`
	TruncatedArrays []struct {
		Field   string `json:"field"`
		NewSize int32  `json:"newSize"`
	} `json:"truncatedArrays"`
}

// decodeConnectJSON reads a connect-json value. The schema part is not
// interpreted (the payload's field names are the contract); unknown payload
// fields are ignored, an unknown op decodes as OpUnknown.
func decodeConnectJSON(value []byte) (*Event, error) {
	if !utf8.Valid(value) {
		return nil, fmt.Errorf("%w: connect-json value is not valid UTF-8", ErrMalformed)
	}
	var rec struct {
		Payload *connectPayload `json:"payload"`
	}
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, fmt.Errorf("%w: parsing connect-json value: %v", ErrMalformed, err)
	}
	p := rec.Payload
	if p == nil {
		return nil, fmt.Errorf("%w: connect-json value has no payload", ErrMalformed)
	}
	if p.Op == nil {
		return nil, malformedJSON("payload.op", "missing")
	}
	if p.NS == nil {
		return nil, malformedJSON("payload.ns", "missing")
	}
	if p.ClusterTime == nil {
		return nil, malformedJSON("payload.clusterTime", "missing")
	}
	ev := &Event{Op: OpUnknown, NS: Namespace(*p.NS), Epoch: p.Epoch, Source: p.Source}
	if i := opIndex(Op(*p.Op)); i >= 0 {
		ev.Op = opSymbols[i]
	}
	ct := p.ClusterTime
	if ct.T < 0 || ct.T > 1<<32-1 || ct.I < 0 || ct.I > 1<<32-1 {
		return nil, malformedJSON("payload.clusterTime", "t or i out of uint32 range")
	}
	ev.ClusterTime = ClusterTime{T: uint32(ct.T), I: uint32(ct.I)}
	if p.WallTime != nil {
		ev.WallTimeMillis = *p.WallTime
	}
	var err error
	parse := func(field string, s *string) bson.Raw {
		if s == nil || err != nil {
			return nil
		}
		var raw bson.Raw
		if e := bson.UnmarshalExtJSON([]byte(*s), true, &raw); e != nil {
			err = malformedJSON("payload."+field, "not canonical Extended JSON: %v", e)
		}
		return raw
	}
	ev.DocumentKey = parse("documentKey", p.DocumentKey)
	ev.FullDocument = parse("fullDocument", p.FullDocument)
	ev.FullDocumentBefore = parse("fullDocumentBeforeChange", p.FullDocumentBeforeChange)
	ev.ResumeToken = parse("resumeToken", p.ResumeToken)
	if u := p.UpdateDescription; u != nil {
		ev.Update = &UpdateDescription{UpdatedFields: parse("updateDescription.updatedFields", u.UpdatedFields), RemovedFields: u.RemovedFields}
		for _, a := range u.TruncatedArrays {
			ev.Update.TruncatedArrays = append(ev.Update.TruncatedArrays, TruncatedArray{Field: a.Field, NewSize: a.NewSize})
		}
		if len(ev.Update.RemovedFields) == 0 {
			ev.Update.RemovedFields = nil
		}
	}
	if t := p.Txn; t != nil {
		ev.Txn = &TxnID{LSID: parse("txn.lsid", &t.LSID), TxnNumber: t.TxnNumber, Index: t.Index}
		if t.Count != nil {
			ev.Txn.Counted, ev.Txn.Count = true, *t.Count
		}
	}
	if d := p.DDL; d != nil {
		ev.DDL = &DDL{Kind: DDLKind(d.Kind), ID: d.ID, Options: parse("ddl.options", d.Options), Indexes: parse("ddl.indexes", d.Indexes)}
		if d.Target != nil {
			ev.DDL.Target = &Namespace{DB: d.Target.DB, Coll: d.Target.Coll}
		}
	}
	if m := p.Marker; m != nil {
		ev.Marker = &Marker{Kind: MarkerKind(m.Kind), ID: m.ID, Data: parse("marker.data", m.Data)}
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}
