package apply

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
)

// Ref locates the record an event came from, for dead letters and metrics.
type Ref struct {
	Topic     string
	Partition int32
	Offset    int64
	Op        schema.Op
}

// writeKind is what a pending write does on the destination.
type writeKind uint8

const (
	wInsert  writeKind = iota + 1 // snapshot or insert event: insert, on duplicate key replace-with-upsert
	wReplace                      // replace-with-upsert by key
	wUpdate                       // update by key without upsert
	wDelete                       // delete by key
)

func (k writeKind) String() string {
	switch k {
	case wInsert:
		return "insert"
	case wReplace:
		return "replace"
	case wUpdate:
		return "update"
	case wDelete:
		return "delete"
	}
	return "unknown"
}

// write is one pending destination write. Documents stay bson.Raw.
type write struct {
	kind writeKind
	ns   schema.Namespace // destination namespace
	key  bson.Raw         // filter: the document key
	doc  bson.Raw         // replacement (wInsert, wReplace) or update document (wUpdate)
	ref  Ref
	// events is how many consumed events this write stands for (coalescing
	// folds several into one), for the applied counters.
	events []schema.Op
}

// docRef names one destination document: its namespace and document key.
type docRef struct {
	ns  schema.Namespace
	key string // the document key's BSON bytes
}

type keyOps struct {
	ops []write
}

// Batch collects the writes of consecutive events, coalescing per document:
// a full-state event (snapshot, insert, replace, update with a full document)
// or a delete replaces every earlier pending write of its key; an update delta
// is appended after them. Writes of one key are applied in order: the Writer
// applies the first pending write of every key in one unordered bulk write,
// then the second ones, and so on, so keys in one bulk write are disjoint.
//
// A Batch is not safe for concurrent use.
type Batch struct {
	m      NSMap
	keys   map[docRef]*keyOps
	order  []*keyOps
	events int
}

// NewBatch returns an empty batch mapping namespaces with m.
func NewBatch(m NSMap) *Batch {
	return &Batch{m: m, keys: map[docRef]*keyOps{}}
}

// Len is the number of events added since the last Reset.
func (b *Batch) Len() int { return b.events }

// Writes is the number of pending writes after coalescing.
func (b *Batch) Writes() int {
	n := 0
	for _, k := range b.order {
		n += len(k.ops)
	}
	return n
}

// Refs returns the record of each pending write in batch order (a write
// that coalesced several events names the last one), for logs and tests.
func (b *Batch) Refs() []Ref {
	var out []Ref
	for _, ko := range b.order {
		for _, w := range ko.ops {
			out = append(out, w.ref)
		}
	}
	return out
}

// Reset empties the batch.
func (b *Batch) Reset() {
	clear(b.keys)
	b.order = b.order[:0]
	b.events = 0
}

// Add adds a data event (snapshot, insert, replace, update, delete). It
// returns an error wrapping ErrBadEvent for an event that cannot be applied
// (unknown op, missing key or document); the batch is then unchanged.
func (b *Batch) Add(ev *schema.Event, ref Ref) error {
	if len(ev.DocumentKey) == 0 {
		return fmt.Errorf("%w: %s event without a document key", ErrBadEvent, ev.Op)
	}
	if ev.NS.DB == "" || ev.NS.Coll == "" {
		return fmt.Errorf("%w: %s event without a collection namespace (%q)", ErrBadEvent, ev.Op, ev.NS.String())
	}
	ns := b.m.Map(ev.NS)
	w := write{ns: ns, key: ev.DocumentKey, ref: ref, events: []schema.Op{ev.Op}}
	var deltas []bson.Raw
	switch ev.Op {
	case schema.OpSnapshot, schema.OpInsert:
		// An insert event takes the snapshot's insert path too: a plain
		// insert costs the destination less than an upsert (on the test
		// server half as much; tests/bench BenchmarkCatchUp, issue 21), and
		// where the document is there already (a replay, a document the
		// snapshot copied after the insert) the duplicate key falls back to
		// the replace-with-upsert, so the result is the same.
		w.kind, w.doc = wInsert, ev.FullDocument
	case schema.OpReplace:
		w.kind, w.doc = wReplace, ev.FullDocument
	case schema.OpUpdate:
		if len(ev.FullDocument) > 0 {
			w.kind, w.doc = wReplace, ev.FullDocument
			break
		}
		if ev.Update == nil {
			return fmt.Errorf("%w: update event with neither a full document nor an update description", ErrBadEvent)
		}
		var err error
		if deltas, err = UpdateDocs(ev.Update); err != nil {
			return err
		}
		w.kind = wUpdate
	case schema.OpDelete:
		w.kind = wDelete
	default:
		return fmt.Errorf("%w: unknown op %q for a data record", ErrBadEvent, ev.Op)
	}
	if (w.kind == wInsert || w.kind == wReplace) && len(w.doc) == 0 {
		return fmt.Errorf("%w: %s event without a full document", ErrBadEvent, ev.Op)
	}

	k := docRef{ns: ns, key: string(ev.DocumentKey)}
	ko := b.keys[k]
	if ko == nil {
		ko = &keyOps{}
		b.keys[k] = ko
		b.order = append(b.order, ko)
	}
	b.events++
	switch w.kind {
	case wUpdate:
		if len(deltas) == 0 { // no-op update: nothing to write, still counted as applied
			ko.ops = append(ko.ops, write{kind: wUpdate, ns: ns, key: ev.DocumentKey, ref: ref, events: []schema.Op{ev.Op}})
			return nil
		}
		for i, d := range deltas {
			u := w
			u.doc = d
			if i > 0 {
				u.events = nil
			}
			ko.ops = append(ko.ops, u)
		}
	default:
		// Full state or delete: earlier writes of the key are superseded.
		for _, prev := range ko.ops {
			w.events = append(w.events, prev.events...)
		}
		if w.kind == wInsert && len(ko.ops) > 0 {
			w.kind = wReplace // an earlier write may have created it: no insert fast path
		}
		ko.ops = append(ko.ops[:0], w)
	}
	return nil
}

// generations returns the pending writes split into rounds: round i holds the
// i-th pending write of every key, so keys within a round are disjoint and
// rounds must be applied in order.
func (b *Batch) generations() [][]write {
	var gens [][]write
	for _, ko := range b.order {
		i := 0
		for _, w := range ko.ops {
			if w.kind == wUpdate && len(w.doc) == 0 {
				continue // no-op update
			}
			for len(gens) <= i {
				gens = append(gens, nil)
			}
			gens[i] = append(gens[i], w)
			i++
		}
	}
	return gens
}

// noops returns the ops of no-op updates (applied without a write).
func (b *Batch) noops() []schema.Op {
	var out []schema.Op
	for _, ko := range b.order {
		for _, w := range ko.ops {
			if w.kind == wUpdate && len(w.doc) == 0 {
				out = append(out, w.events...)
			}
		}
	}
	return out
}
