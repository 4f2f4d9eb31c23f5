package capture

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// decode fills ce from a raw change event in one pass over its top-level
// fields, without copying them: the fields stay views of raw.
//
// Why not bson.Unmarshal: its reflection-driven struct decoding was 10% of
// the source connector's CPU while streaming at 500 events/s (pprof, about
// 19 µs per event; issue 21). Semantics follow it where a change event can
// differ: unknown fields are ignored, a null field is as good as absent, and
// a field of the wrong type is an ErrMalformedEvent. Where a field repeats,
// the first one counts (as in bson.Raw.Lookup).
func (ce *changeEvent) decode(raw bson.Raw) error {
	// The elements are read in place (bsoncore.Document.Elements would
	// allocate a slice of them per event: 12% of the source's CPU in the
	// catch-up benchmark).
	length, rest, ok := bsoncore.ReadLength(raw)
	if !ok || length < 5 || int(length) > len(raw) || raw[length-1] != 0 {
		return fmt.Errorf("not a BSON document (%d bytes)", len(raw))
	}
	rest = rest[:length-5]
	var (
		seen uint16 // bit i: fields[i] was read
		err  error
	)
	for len(rest) > 0 {
		var e bsoncore.Element
		if e, rest, ok = bsoncore.ReadElement(rest); !ok {
			return errors.New("a truncated or malformed element")
		}
		i := fieldIndex(e.KeyBytes())
		if i < 0 || seen&(1<<i) != 0 {
			continue
		}
		seen |= 1 << i
		v := e.Value()
		if v.Type == bsoncore.TypeNull {
			continue
		}
		switch key := fields[i]; key {
		case "_id":
			ce.ID, err = docField(key, v)
		case "operationType":
			ce.OperationType, err = opTypeField(v)
		case "clusterTime":
			t, i, ok := v.TimestampOK()
			if !ok {
				return typeError(key, v, "a timestamp")
			}
			ce.ClusterTime = bson.Timestamp{T: t, I: i}
		case "wallTime":
			ms, ok := v.DateTimeOK()
			if !ok {
				return typeError(key, v, "a date")
			}
			wt := bson.DateTime(ms)
			ce.WallTime = &wt
		case "ns", "to":
			var ns *nsField
			if ns, err = namespaceField(key, v); err == nil {
				if key == "ns" {
					ce.NS = ns
				} else {
					ce.To = ns
				}
			}
		case "documentKey":
			ce.DocumentKey, err = docField(key, v)
		case "fullDocument":
			ce.FullDocument = rawValue(v)
		case "fullDocumentBeforeChange":
			ce.FullDocumentBeforeChange = rawValue(v)
		case "updateDescription":
			ce.UpdateDescription, err = updateField(v)
		case "operationDescription":
			ce.OperationDescription, err = docField(key, v)
		case "nsType":
			ce.NSType, err = stringField(key, v)
		case "lsid":
			ce.LSID, err = docField(key, v)
		case "txnNumber":
			ce.TxnNumber = rawValue(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fields are the change event fields decode reads.
var fields = [...]string{"_id", "operationType", "clusterTime", "wallTime", "ns", "to", "documentKey", "fullDocument",
	"fullDocumentBeforeChange", "updateDescription", "operationDescription", "nsType", "lsid", "txnNumber"}

// fieldIndex is key's index in fields (its bit in decode's seen set), -1
// for a field decode ignores. (Comparing bytes to each name allocates no
// string per key.)
func fieldIndex(key []byte) int {
	for i, f := range fields {
		if string(key) == f {
			return i
		}
	}
	return -1
}

func typeError(key string, v bsoncore.Value, want string) error {
	return fmt.Errorf("%s is %s, want %s", key, v.Type, want)
}

func docField(key string, v bsoncore.Value) (bson.Raw, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, typeError(key, v, "a document")
	}
	return bson.Raw(d), nil
}

func stringField(key string, v bsoncore.Value) (string, error) {
	s, ok := v.StringValueOK()
	if !ok {
		return "", typeError(key, v, "a string")
	}
	return s, nil
}

// opTypes are the operation types the connector maps (the Op constants),
// kept as one string each: such an event's operationType costs no
// allocation. Others (the skipped sharding events) decode as any string.
var opTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{OpInsert, OpUpdate, OpReplace, OpDelete, OpDrop, OpRename, OpDropDatabase, OpInvalidate,
		OpCreate, OpCreateIndexes, OpDropIndexes, OpModify} {
		m[t] = t
	}
	return m
}()

func opTypeField(v bsoncore.Value) (string, error) {
	if v.Type == bsoncore.TypeString {
		// a BSON string: int32 length (with the trailing NUL), bytes, NUL
		if n, b, ok := bsoncore.ReadLength(v.Data); ok && n >= 1 && int(n) <= len(b) && b[n-1] == 0 {
			if t, known := opTypes[string(b[:n-1])]; known {
				return t, nil
			}
		}
	}
	return stringField("operationType", v)
}

func rawValue(v bsoncore.Value) bson.RawValue {
	return bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}
}

func namespaceField(key string, v bsoncore.Value) (*nsField, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, typeError(key, v, "a document")
	}
	ns := &nsField{}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"db", &ns.DB}, {"coll", &ns.Coll}} {
		fv, err := d.LookupErr(f.name)
		if err != nil || fv.Type == bsoncore.TypeNull {
			continue
		}
		s, ok := fv.StringValueOK()
		if !ok {
			return nil, typeError(key+"."+f.name, fv, "a string")
		}
		*f.dst = s
	}
	return ns, nil
}

func updateField(v bsoncore.Value) (*updateDesc, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, typeError("updateDescription", v, "a document")
	}
	u := &updateDesc{}
	if fv, err := d.LookupErr("updatedFields"); err == nil && fv.Type != bsoncore.TypeNull {
		if u.UpdatedFields, err = docField("updateDescription.updatedFields", fv); err != nil {
			return nil, err
		}
	}
	if fv, err := d.LookupErr("removedFields"); err == nil && fv.Type != bsoncore.TypeNull {
		arr, ok := fv.ArrayOK()
		if !ok {
			return nil, typeError("updateDescription.removedFields", fv, "an array")
		}
		vals, err := arr.Values()
		if err != nil {
			return nil, err
		}
		for _, x := range vals {
			s, ok := x.StringValueOK()
			if !ok {
				return nil, typeError("updateDescription.removedFields[]", x, "a string")
			}
			u.RemovedFields = append(u.RemovedFields, s)
		}
	}
	if fv, err := d.LookupErr("truncatedArrays"); err == nil && fv.Type != bsoncore.TypeNull {
		arr, ok := fv.ArrayOK()
		if !ok {
			return nil, typeError("updateDescription.truncatedArrays", fv, "an array")
		}
		vals, err := arr.Values()
		if err != nil {
			return nil, err
		}
		for _, x := range vals {
			td, ok := x.DocumentOK()
			if !ok {
				return nil, typeError("updateDescription.truncatedArrays[]", x, "a document")
			}
			var ta truncatedArray
			if f, err := td.LookupErr("field"); err == nil {
				if ta.Field, err = stringField("updateDescription.truncatedArrays[].field", f); err != nil {
					return nil, err
				}
			}
			if n, err := td.LookupErr("newSize"); err == nil {
				i, ok := n.AsInt64OK()
				if !ok || i < -1<<31 || i >= 1<<31 {
					return nil, typeError("updateDescription.truncatedArrays[].newSize", n, "a 32-bit integer")
				}
				ta.NewSize = int32(i)
			}
			u.TruncatedArrays = append(u.TruncatedArrays, ta)
		}
	}
	return u, nil
}
