package apply

import (
	"context"
	"errors"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/schema"
)

// The insert command's limits: a command document may exceed the largest
// BSON document (16 MiB) by 16 KiB, and carries at most maxWriteBatchSize
// documents.
const (
	insertCommandPayload = 16 << 20
	maxWriteBatchSize    = 100_000
)

// insertRaw inserts the documents of ws (all wInsert) with unordered insert
// commands built from their raw bytes.
//
// Why not the driver's InsertMany or BulkWrite: for each bson.Raw document
// they re-encode it element by element and then decode it again to find its
// _id (mongo.ensureID, a 4 KiB buffered reader per document). That was 80% of
// the sink's CPU in a snapshot apply (tests/bench, pprof), CPU that the
// destination then lacked. A command built here copies each document once.
//
// Errors come back in the shape BulkWrite gives them, with indexes into ws:
// a mongo.BulkWriteException for per-document write errors and a write
// concern error, anything else as it is.
func (w *Writer) insertRaw(ctx context.Context, ns schema.Namespace, ws []write) error {
	db := w.client.Database(ns.DB)
	var (
		wes []mongo.BulkWriteError
		wce *mongo.WriteConcernError
	)
	for start := 0; start < len(ws); {
		end, cmd := insertCommand(ns.Coll, ws[start:], w.wc)
		end += start
		err := db.RunCommand(ctx, cmd).Err()
		var we mongo.WriteException
		switch {
		case err == nil:
		case errors.As(err, &we) && (len(we.WriteErrors) > 0 || we.WriteConcernError != nil):
			for _, e := range we.WriteErrors {
				e.Index += start
				wes = append(wes, mongo.BulkWriteError{WriteError: e})
			}
			if we.WriteConcernError != nil {
				wce = we.WriteConcernError
			}
		default:
			return err
		}
		start = end
	}
	if len(wes) > 0 || wce != nil {
		return mongo.BulkWriteException{WriteErrors: wes, WriteConcernError: wce}
	}
	return nil
}

// insertCommand builds {insert, documents, ordered: false, writeConcern}
// from the first documents of ws that fit one command, and returns how many
// it took (at least one).
func insertCommand(coll string, ws []write, wc *writeconcern.WriteConcern) (int, bson.Raw) {
	n, size := 0, 0
	for n < len(ws) && n < maxWriteBatchSize && (n == 0 || size+len(ws[n].doc) <= insertCommandPayload) {
		size += len(ws[n].doc)
		n++
	}
	// One allocation: the documents, their array keys and type bytes, and
	// room for the rest of the command.
	idx, cmd := bsoncore.AppendDocumentStart(make([]byte, 0, size+8*n+len(coll)+128))
	cmd = bsoncore.AppendStringElement(cmd, "insert", coll)
	aidx, cmd := bsoncore.AppendArrayElementStart(cmd, "documents")
	for i, wr := range ws[:n] {
		cmd = bsoncore.AppendDocumentElement(cmd, strconv.Itoa(i), wr.doc)
	}
	cmd, _ = bsoncore.AppendArrayEnd(cmd, aidx)
	cmd = bsoncore.AppendBooleanElement(cmd, "ordered", false)
	if wc != nil {
		widx, c := bsoncore.AppendDocumentElementStart(cmd, "writeConcern")
		switch v := wc.W.(type) {
		case string:
			c = bsoncore.AppendStringElement(c, "w", v)
		case int:
			c = bsoncore.AppendInt32Element(c, "w", int32(v))
		}
		if wc.Journal != nil {
			c = bsoncore.AppendBooleanElement(c, "j", *wc.Journal)
		}
		cmd, _ = bsoncore.AppendDocumentEnd(c, widx)
	}
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, idx)
	return n, bson.Raw(cmd)
}
