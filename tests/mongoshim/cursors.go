package mongoshim

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// shimCursor is a cursor the shim serves itself (change streams, min/max
// finds); other cursor ids belong to the backend and are forwarded.
type shimCursor interface {
	getMore(ctx context.Context, s *Server, cmd bson.Raw) (bson.Raw, error)
	kill(ctx context.Context, s *Server)
	idle() time.Time
}

type cursorRegistry struct {
	mu sync.Mutex
	m  map[int64]shimCursor
}

func newCursorRegistry() *cursorRegistry { return &cursorRegistry{m: map[int64]shimCursor{}} }

func (r *cursorRegistry) add(c shimCursor) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		id := newCursorID()
		if _, ok := r.m[id]; !ok {
			r.m[id] = c
			return id
		}
	}
}

func (r *cursorRegistry) get(id int64) shimCursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

func (r *cursorRegistry) remove(id int64) shimCursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.m[id]
	delete(r.m, id)
	return c
}

// reap drops cursors idle longer than d (MongoDB's cursorTimeoutMillis is 10 min).
func (r *cursorRegistry) reap(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, c := range r.m {
		if time.Since(c.idle()) > d {
			delete(r.m, id)
		}
	}
}

// cursorReply builds {cursor: {<batchKey>, [postBatchResumeToken], id, ns}, ok: 1}.
func cursorReply(batchKey string, batch []bson.Raw, pbrt bson.Raw, id int64, ns string) bson.Raw {
	// Built in one presized buffer: a snapshot reads every document through
	// here, and marshalling a bson.D copied each one twice more.
	size := 96 + len(batchKey) + len(pbrt) + len(ns) + docArraySize(batch)
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, size))
	cidx, b := bsoncore.AppendDocumentElementStart(b, "cursor")
	b = appendDocArray(bsoncore.AppendHeader(b, bsoncore.TypeArray, batchKey), batch)
	if pbrt != nil {
		b = bsoncore.AppendDocumentElement(b, "postBatchResumeToken", pbrt)
	}
	b = bsoncore.AppendInt64Element(b, "id", id)
	b = bsoncore.AppendStringElement(b, "ns", ns)
	b, _ = bsoncore.AppendDocumentEnd(b, cidx)
	b = bsoncore.AppendDoubleElement(b, "ok", 1.0)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}

func (s *Server) killCursors(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	var mine, theirs []bson.RawValue
	for _, v := range lookupArray(cmd, "cursors") {
		id, _ := asInt64(v)
		if c := s.cursors.remove(id); c != nil {
			c.kill(ctx, s)
			mine = append(mine, v)
			continue
		}
		theirs = append(theirs, v)
	}
	if len(mine) == 0 {
		return s.forward(ctx, db, cmd)
	}
	var reply bson.Raw
	if len(theirs) > 0 {
		var err error
		reply, err = s.forward(ctx, db, withFields(cmd, "cursors", arrayOfValues(theirs)))
		if err != nil {
			return nil, err
		}
	}
	k := append(lookupArray(reply, "cursorsKilled"), mine...)
	nf := lookupArray(reply, "cursorsNotFound")
	return mustRaw(bson.D{
		{Key: "cursorsKilled", Value: arrayOfValues(k)},
		{Key: "cursorsNotFound", Value: arrayOfValues(nf)},
		{Key: "cursorsAlive", Value: bson.A{}},
		{Key: "cursorsUnknown", Value: bson.A{}},
		{Key: "ok", Value: 1.0},
	}), nil
}
