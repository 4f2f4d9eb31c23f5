package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema/internal/avroresolve"
)

// This file is the hand-written Avro binary codec of the current envelope
// schema (avro/envelope.avsc), field by field in schema order. It exists
// because goavro's map[string]any path costs several microseconds and dozens
// of allocations per record; this one appends into the caller's buffer and
// decodes without copying documents. TestAvroMatchesGoavro checks that it
// produces the same bytes as goavro and decodes goavro's output; any change
// to envelope.avsc must be mirrored here (that test fails otherwise).

// opSymbols is the symbol list of the io.logbridge.Op enum, in order.
var opSymbols = [...]Op{OpSnapshot, OpInsert, OpUpdate, OpReplace, OpDelete, OpDDL, OpMarker, OpHeartbeat, OpUnknown}

func opIndex(op Op) int {
	for i, s := range opSymbols {
		if s == op {
			return i
		}
	}
	return -1
}

// isDataOp reports whether op is about one document (and so carries a
// document key).
func isDataOp(op Op) bool {
	switch op {
	case OpSnapshot, OpInsert, OpUpdate, OpReplace, OpDelete:
		return true
	}
	return false
}

// isDoc is a constant-time plausibility check of a BSON document: the length
// prefix equals the slice length and the terminating NUL is present. Full
// validation is left to whoever interprets the document.
func isDoc(b []byte) bool {
	return len(b) >= 5 && int64(int32(binary.LittleEndian.Uint32(b))) == int64(len(b)) && b[len(b)-1] == 0
}

// validateEvent checks what the encoders rely on. Errors wrap ErrInvalidEvent.
func validateEvent(ev *Event) error {
	if ev == nil {
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if ev.Op == OpUnknown {
		return fmt.Errorf("%w: op %q cannot be written", ErrInvalidEvent, ev.Op)
	}
	if err := checkShape(ev); err != nil {
		return err
	}
	docs := [...]struct {
		name string
		doc  bson.Raw
	}{
		{"documentKey", ev.DocumentKey},
		{"fullDocument", ev.FullDocument},
		{"fullDocumentBeforeChange", ev.FullDocumentBefore},
		{"resumeToken", ev.ResumeToken},
	}
	for _, d := range docs {
		if d.doc != nil && !isDoc(d.doc) {
			return fmt.Errorf("%w: %s is not a BSON document", ErrInvalidEvent, d.name)
		}
	}
	if u := ev.Update; u != nil && u.UpdatedFields != nil && !isDoc(u.UpdatedFields) {
		return fmt.Errorf("%w: updateDescription.updatedFields is not a BSON document", ErrInvalidEvent)
	}
	if ev.Txn != nil && !isDoc(ev.Txn.LSID) {
		return fmt.Errorf("%w: txn.lsid is not a BSON document", ErrInvalidEvent)
	}
	if d := ev.DDL; d != nil {
		if d.Options != nil && !isDoc(d.Options) {
			return fmt.Errorf("%w: ddl.options is not a BSON document", ErrInvalidEvent)
		}
		if d.Indexes != nil && !isDoc(d.Indexes) {
			return fmt.Errorf("%w: ddl.indexes is not a BSON document", ErrInvalidEvent)
		}
	}
	if m := ev.Marker; m != nil && m.Data != nil && !isDoc(m.Data) {
		return fmt.Errorf("%w: marker.data is not a BSON document", ErrInvalidEvent)
	}
	return nil
}

// checkShape checks the op and the payloads it requires (OpUnknown passes).
// Errors wrap ErrInvalidEvent.
func checkShape(ev *Event) error {
	if opIndex(ev.Op) < 0 {
		return fmt.Errorf("%w: op %q cannot be written", ErrInvalidEvent, ev.Op)
	}
	if isDataOp(ev.Op) && ev.DocumentKey == nil {
		return fmt.Errorf("%w: %s event without document key", ErrInvalidEvent, ev.Op)
	}
	if ev.Op == OpDDL && ev.DDL == nil {
		return fmt.Errorf("%w: ddl event without DDL payload", ErrInvalidEvent)
	}
	if ev.Op == OpMarker && ev.Marker == nil {
		return fmt.Errorf("%w: marker event without Marker payload", ErrInvalidEvent)
	}
	return nil
}

// sizeHint is an upper bound of the Avro body size of ev (used to allocate
// once).
func sizeHint(ev *Event) int {
	n := 128 + len(ev.NS.DB) + len(ev.NS.Coll) + len(ev.DocumentKey) + len(ev.FullDocument) +
		len(ev.FullDocumentBefore) + len(ev.ResumeToken) + len(ev.Source)
	if u := ev.Update; u != nil {
		n += len(u.UpdatedFields) + 16
		for _, f := range u.RemovedFields {
			n += len(f) + 10
		}
		for _, a := range u.TruncatedArrays {
			n += len(a.Field) + 15
		}
	}
	if ev.Txn != nil {
		n += len(ev.Txn.LSID) + 30
	}
	if d := ev.DDL; d != nil {
		n += len(d.Kind) + len(d.Options) + len(d.Indexes) + len(d.ID) + 40
		if d.Target != nil {
			n += len(d.Target.DB) + len(d.Target.Coll) + 20
		}
	}
	if m := ev.Marker; m != nil {
		n += len(m.Kind) + len(m.ID) + len(m.Data) + 30
	}
	return n
}

var appendLong = avroresolve.AppendLong

func appendString(b []byte, s string) []byte { return avroresolve.AppendString(b, s) }

// appendOptBytes appends a ["null","bytes"] union.
func appendOptBytes(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return avroresolve.AppendBytes(append(b, 2), v)
}

// appendAvro appends the Avro binary encoding of ev (already validated).
func appendAvro(b []byte, ev *Event) []byte {
	b = appendLong(b, int64(opIndex(ev.Op)))
	b = appendString(b, ev.NS.DB)
	b = appendString(b, ev.NS.Coll)
	b = appendOptBytes(b, ev.DocumentKey)
	b = appendOptBytes(b, ev.FullDocument)
	b = appendOptBytes(b, ev.FullDocumentBefore)
	if u := ev.Update; u == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = appendOptBytes(b, u.UpdatedFields)
		if len(u.RemovedFields) > 0 {
			b = appendLong(b, int64(len(u.RemovedFields)))
			for _, f := range u.RemovedFields {
				b = appendString(b, f)
			}
		}
		b = append(b, 0)
		if len(u.TruncatedArrays) > 0 {
			b = appendLong(b, int64(len(u.TruncatedArrays)))
			for _, a := range u.TruncatedArrays {
				b = appendString(b, a.Field)
				b = appendLong(b, int64(a.NewSize))
			}
		}
		b = append(b, 0)
	}
	b = appendLong(b, int64(ev.ClusterTime.T))
	b = appendLong(b, int64(ev.ClusterTime.I))
	if ev.WallTimeMillis == 0 {
		b = append(b, 0)
	} else {
		b = appendLong(append(b, 2), ev.WallTimeMillis)
	}
	if t := ev.Txn; t == nil {
		b = append(b, 0)
	} else {
		b = avroresolve.AppendBytes(append(b, 2), t.LSID)
		b = appendLong(b, t.TxnNumber)
		b = appendLong(b, int64(t.Index))
		if t.Counted {
			b = appendLong(append(b, 2), int64(t.Count))
		} else {
			b = append(b, 0)
		}
	}
	b = appendOptBytes(b, ev.ResumeToken)
	b = appendLong(b, ev.Epoch)
	b = appendString(b, ev.Source)
	if d := ev.DDL; d == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = appendString(b, string(d.Kind))
		if d.Target == nil {
			b = append(b, 0)
		} else {
			b = appendString(append(b, 2), d.Target.DB)
			b = appendString(b, d.Target.Coll)
		}
		b = appendOptBytes(b, d.Options)
		b = appendOptBytes(b, d.Indexes)
		b = appendString(b, d.ID)
	}
	if m := ev.Marker; m == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = appendString(b, string(m.Kind))
		b = appendString(b, m.ID)
		b = appendOptBytes(b, m.Data)
	}
	return b
}

// avroReader decodes the current envelope layout. The first error sticks;
// field names the field being read, for the error message.
type avroReader struct {
	b     []byte
	err   error
	field string
}

func (r *avroReader) fail(err error) {
	if r.err == nil {
		switch {
		case errors.Is(err, avroresolve.ErrTruncated):
			err = ErrTruncated
		case errors.Is(err, avroresolve.ErrMalformed):
			err = fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		r.err = fmt.Errorf("decoding envelope field %s: %w", r.field, err)
	}
}

func (r *avroReader) long() int64 {
	if len(r.b) > 0 && r.b[0] < 0x80 && r.err == nil { // one-byte varint
		u := uint64(r.b[0])
		r.b = r.b[1:]
		return int64(u>>1) ^ -int64(u&1)
	}
	return r.longSlow()
}

func (r *avroReader) longSlow() int64 {
	if r.err != nil {
		return 0
	}
	v, n, err := avroresolve.ReadLong(r.b)
	if err != nil {
		r.fail(err)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *avroReader) int32() int32 {
	v := r.long()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(fmt.Errorf("%w: int out of range: %d", ErrMalformed, v))
		return 0
	}
	return int32(v)
}

func (r *avroReader) uint32() uint32 {
	v := r.long()
	if v < 0 || v > math.MaxUint32 {
		r.fail(fmt.Errorf("%w: value %d out of the uint32 range", ErrMalformed, v))
		return 0
	}
	return uint32(v)
}

func (r *avroReader) bytes() []byte {
	if r.err != nil {
		return nil
	}
	v, n, err := avroresolve.ReadBytes(r.b)
	if err != nil {
		r.fail(err)
		return nil
	}
	r.b = r.b[n:]
	return v
}

// optional reads a ["null", X] union index and reports whether X follows.
func (r *avroReader) optional() bool {
	switch r.long() {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail(fmt.Errorf("%w: union index out of range", ErrMalformed))
		return false
	}
}

// doc reads a BSON document held in Avro bytes.
func (r *avroReader) doc() bson.Raw {
	b := r.bytes()
	if r.err == nil && !isDoc(b) {
		r.fail(fmt.Errorf("%w: not a BSON document", ErrMalformed))
		return nil
	}
	return b
}

func (r *avroReader) optDoc() bson.Raw {
	if !r.optional() {
		return nil
	}
	return r.doc()
}

// blockCount reads an array block count (Avro allows negative counts followed
// by a byte size) and bounds it by the remaining input.
func (r *avroReader) blockCount(minItemSize int) int {
	n := r.long()
	if n < 0 {
		if n == math.MinInt64 {
			r.fail(fmt.Errorf("%w: block count overflow", ErrMalformed))
			return 0
		}
		n = -n
		r.long() // block size in bytes
	}
	if r.err == nil && n > int64(len(r.b)/minItemSize) {
		r.fail(fmt.Errorf("%w: block of %d items in %d bytes", ErrTruncated, n, len(r.b)))
		return 0
	}
	return int(n)
}

// stringer collects the envelope's short strings and turns them into Go
// strings with one allocation.
type stringer struct {
	parts [8][]byte
	n     int
}

func (s *stringer) add(b []byte) int {
	if s.n == len(s.parts) {
		return -1
	}
	s.parts[s.n] = b
	s.n++
	return s.n - 1
}

func (s *stringer) build() [8]string {
	var out [8]string
	total := 0
	for _, p := range s.parts[:s.n] {
		total += len(p)
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, p := range s.parts[:s.n] {
		sb.Write(p)
	}
	all := sb.String()
	off := 0
	for i, p := range s.parts[:s.n] {
		out[i] = all[off : off+len(p)]
		off += len(p)
	}
	return out
}

// decodeAvro decodes an envelope written with the current schema. BSON
// fields alias b.
func decodeAvro(b []byte) (*Event, error) {
	r := avroReader{b: b}
	var ev Event // on the stack until complete: no write barriers while filling
	var strs stringer

	r.field = "op"
	op := r.long()
	if r.err == nil && (op < 0 || op >= int64(len(opSymbols))) {
		r.fail(fmt.Errorf("%w: enum index %d out of range", ErrMalformed, op))
	}
	if r.err == nil {
		ev.Op = opSymbols[op]
	}
	r.field = "ns"
	iDB := strs.add(r.bytes())
	iColl := strs.add(r.bytes())
	r.field = "documentKey"
	ev.DocumentKey = r.optDoc()
	r.field = "fullDocument"
	ev.FullDocument = r.optDoc()
	r.field = "fullDocumentBeforeChange"
	ev.FullDocumentBefore = r.optDoc()
	r.field = "updateDescription"
	if r.optional() {
		u := new(UpdateDescription)
		u.UpdatedFields = r.optDoc()
		for n := r.blockCount(1); n > 0 && r.err == nil; n = r.blockCount(1) {
			if u.RemovedFields == nil {
				u.RemovedFields = make([]string, 0, n)
			}
			for range n {
				u.RemovedFields = append(u.RemovedFields, string(r.bytes()))
			}
		}
		for n := r.blockCount(2); n > 0 && r.err == nil; n = r.blockCount(2) {
			if u.TruncatedArrays == nil {
				u.TruncatedArrays = make([]TruncatedArray, 0, n)
			}
			for range n {
				f := string(r.bytes())
				u.TruncatedArrays = append(u.TruncatedArrays, TruncatedArray{Field: f, NewSize: r.int32()})
			}
		}
		ev.Update = u
	}
	r.field = "clusterTime"
	ev.ClusterTime.T = r.uint32()
	ev.ClusterTime.I = r.uint32()
	r.field = "wallTime"
	if r.optional() {
		ev.WallTimeMillis = r.long()
	}
	r.field = "txn"
	if r.optional() {
		ev.Txn = &TxnID{LSID: r.doc(), TxnNumber: r.long(), Index: r.int32()}
		r.field = "txn.count"
		if r.optional() {
			ev.Txn.Counted, ev.Txn.Count = true, r.int32()
		}
	}
	r.field = "resumeToken"
	ev.ResumeToken = r.optDoc()
	r.field = "epoch"
	ev.Epoch = r.long()
	r.field = "source"
	iSource := strs.add(r.bytes())
	r.field = "ddl"
	iKind, iID, iTDB, iTColl := -1, -1, -1, -1
	if r.optional() {
		d := new(DDL)
		iKind = strs.add(r.bytes())
		if r.optional() {
			d.Target = new(Namespace)
			iTDB = strs.add(r.bytes())
			iTColl = strs.add(r.bytes())
		}
		d.Options = r.optDoc()
		d.Indexes = r.optDoc()
		iID = strs.add(r.bytes())
		ev.DDL = d
	}
	r.field = "marker"
	if r.optional() {
		m := &Marker{}
		m.Kind = MarkerKind(r.bytes())
		m.ID = string(r.bytes())
		m.Data = r.optDoc()
		ev.Marker = m
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the envelope", ErrMalformed, len(r.b))
	}
	s := strs.build()
	ev.NS = Namespace{DB: s[iDB], Coll: s[iColl]}
	ev.Source = s[iSource]
	if d := ev.DDL; d != nil {
		d.Kind, d.ID = DDLKind(s[iKind]), s[iID]
		if d.Target != nil {
			d.Target.DB, d.Target.Coll = s[iTDB], s[iTColl]
		}
	}
	out := new(Event)
	*out = ev
	return out, nil
}
