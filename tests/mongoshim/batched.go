package mongoshim

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoDB serves a find or aggregate result in batches: the first holds
// batchSize documents (find's batchSize, aggregate's cursor.batchSize;
// default 101; 0 gives an empty first batch with an open cursor), each
// getMore its batchSize or, without one, as many as fit; no batch holds more
// than 16 MiB of documents (a larger single document goes alone); the rest
// stays on the server under the cursor id until a getMore, killCursors or
// the end of the result (id 0). mongo-java-server returns an aggregate's
// whole result in firstBatch with cursor id 0 — 60 MB for 50,000 documents
// of 1 KiB, more than a client accepts in one message — so the shim runs
// every find and aggregate on the backend and serves the result itself.

// defaultFirstBatch is MongoDB's default first batch (documents).
const defaultFirstBatch = 101

// firstBatchSize is the first batch a find or aggregate asks for.
func firstBatchSize(cmd bson.Raw) int64 {
	if n, ok := lookupInt(cmd, "batchSize"); ok {
		return n
	}
	if n, ok := lookupInt(cmd, "cursor", "batchSize"); ok {
		return n
	}
	return defaultFirstBatch
}

// first returns the first batch: n documents, none for 0.
func (f *findCursor) first(ctx context.Context, s *Server, n int64) ([]bson.Raw, error) {
	if n == 0 {
		return nil, nil
	}
	return f.next(ctx, s, n)
}

// batched runs a find or aggregate on the backend and serves its result in
// MongoDB's batches from a shim cursor.
func (s *Server) batched(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	fwd := sanitize(cmd)
	// the backend's own batches are the shim's business: large ones, read
	// through its getMore as the shim's cursor needs them
	if cmdName(cmd) == "find" {
		fwd = withFields(fwd, "batchSize", int32(1000))
	} else if hasKey(cmd, "cursor") {
		fwd = withFields(fwd, "cursor", bson.D{{Key: "batchSize", Value: int32(1000)}})
	}
	reply, err := s.be.run(ctx, db, fwd)
	if err != nil || !replyOK(reply) {
		return reply, err
	}
	if _, err := reply.LookupErr("cursor", "firstBatch"); err != nil {
		return reply, nil // explain and the like
	}
	ns := lookupString(reply, "cursor", "ns")
	f := &findCursor{ns: ns, db: db, used: time.Now()}
	f.buf = rawDocs(lookupArray(reply, "cursor", "firstBatch"))
	f.beID, _ = lookupInt(reply, "cursor", "id")
	_, f.beColl = splitNS(ns)
	batch, err := f.first(ctx, s, firstBatchSize(cmd))
	if err != nil {
		f.kill(ctx, s)
		return nil, err
	}
	if len(f.buf) == 0 && f.beID == 0 {
		f.done = true
	}
	var id int64
	if lookupBool(cmd, "singleBatch") {
		f.done = true
		f.closeBackend(ctx, s)
	}
	if !f.done {
		id = s.cursors.add(f)
	}
	return cursorReply("firstBatch", batch, nil, id, ns), nil
}
