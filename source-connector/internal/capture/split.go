package capture

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// ErrBadFragment: the fragments of a split event arrived out of order.
var ErrBadFragment = errors.New("change event fragments out of order")

// Reassembler joins the fragments of events split by
// $changeStreamSplitLargeEvent: fragment n of m carries splitEvent
// {fragment: n, of: m}; the fields of all fragments, in order, minus _id
// and splitEvent, make the event, whose resume token is the last fragment's
// _id.
type Reassembler struct {
	frags []bson.Raw
	of    int32
}

// Pending reports whether a split event is partially assembled (the resume
// point must not move inside it).
func (r *Reassembler) Pending() bool { return len(r.frags) > 0 }

// Add takes the next change event. It returns the complete event (raw
// itself when it was not split), or nil while fragments are missing.
func (r *Reassembler) Add(raw bson.Raw) (bson.Raw, error) {
	sv, err := raw.LookupErr("splitEvent")
	if err != nil {
		if r.Pending() {
			return nil, fmt.Errorf("%w: fragment %d of %d missing", ErrBadFragment, len(r.frags)+1, r.of)
		}
		return raw, nil
	}
	sd, ok := sv.DocumentOK()
	if !ok {
		return nil, fmt.Errorf("%w: splitEvent is %s", ErrMalformedEvent, sv.Type)
	}
	frag, ok1 := sd.Lookup("fragment").AsInt64OK()
	of, ok2 := sd.Lookup("of").AsInt64OK()
	if !ok1 || !ok2 || frag < 1 || frag > of {
		return nil, fmt.Errorf("%w: splitEvent %s", ErrMalformedEvent, sd)
	}
	if int(frag) != len(r.frags)+1 || (r.Pending() && int32(of) != r.of) {
		have := len(r.frags)
		r.frags = nil
		return nil, fmt.Errorf("%w: got fragment %d of %d after %d fragments", ErrBadFragment, frag, of, have)
	}
	r.frags = append(r.frags, raw)
	r.of = int32(of)
	if int(frag) < int(of) {
		return nil, nil
	}
	defer func() { r.frags = nil }()
	idx, b := bsoncore.AppendDocumentStart(nil)
	last := r.frags[len(r.frags)-1]
	b = bsoncore.AppendValueElement(b, "_id", rawToCore(last.Lookup("_id")))
	for _, f := range r.frags {
		elems, err := f.Elements()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
		}
		for _, e := range elems {
			if k := e.Key(); k == "_id" || k == "splitEvent" {
				continue
			}
			b = append(b, e...)
		}
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b), nil
}

func rawToCore(v bson.RawValue) bsoncore.Value {
	return bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value}
}
