package mongoshim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// backend talks to the mongo-java-server behind the shim over plain OP_MSG
// on a small pool of connections, so that its replies (errors included) come
// back verbatim.
type backend struct {
	addr    string
	mu      sync.Mutex
	idle    []*bconn
	reqID   atomic.Int32
	timeout time.Duration
}

type bconn struct {
	c net.Conn
	r *bufio.Reader
}

// newBackend parses a mongodb:// URI (one host; options are ignored).
func newBackend(uri string) (*backend, error) {
	addr := uri
	if strings.HasPrefix(uri, "mongodb://") {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("backend URI: %w", err)
		}
		addr = u.Host
	}
	if addr == "" {
		return nil, errors.New("backend URI has no host")
	}
	if strings.Contains(addr, ",") {
		return nil, errors.New("backend URI must name one host")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "27017")
	}
	return &backend{addr: addr, timeout: 5 * time.Minute}, nil
}

func (b *backend) get(ctx context.Context) (*bconn, error) {
	b.mu.Lock()
	if n := len(b.idle); n > 0 {
		c := b.idle[n-1]
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		return c, nil
	}
	b.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", b.addr, err)
	}
	return &bconn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (b *backend) put(c *bconn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.idle) >= 32 {
		_ = c.c.Close()
		return
	}
	b.idle = append(b.idle, c)
}

func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.idle {
		_ = c.c.Close()
	}
	b.idle = nil
}

// run sends cmd (a command document without $db) to database db and returns
// the reply document, whatever its ok. err is a transport error only.
func (b *backend) run(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	full := bson.Raw(wrapUnstorable(withFields(cmd, "$db", db))) // rawtypes.go
	c, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	reply, err := b.roundTrip(ctx, c, full)
	if err != nil && readOnly[cmdName(cmd)] && ctx.Err() == nil {
		// A read is safe to repeat on a fresh connection: the backend now
		// and then drops one (a write may have been applied, so writes are
		// never repeated; mongo-java-server also closes the connection on
		// BSON types it cannot store).
		_ = c.c.Close()
		if c, err = b.get(ctx); err != nil {
			return nil, err
		}
		reply, err = b.roundTrip(ctx, c, full)
	}
	if err != nil {
		_ = c.c.Close()
		return nil, fmt.Errorf("backend %s: %w", b.addr, err)
	}
	b.put(c)
	return withMissingCode(bson.Raw(unwrapStored(reply))), nil
}

// readOnly names the commands run repeats once after a dropped connection.
var readOnly = map[string]bool{"find": true, "listCollections": true, "listIndexes": true, "count": true,
	"distinct": true, "listDatabases": true, "dbStats": true, "collStats": true, "buildInfo": true, "ping": true}

// backendCodes gives code-less backend errors the code genuine MongoDB sends
// with the same message (mongo-java-server answers a drop of a missing
// namespace with {ok: 0, errmsg: "ns not found"} and a rename of one with
// "source namespace does not exist", both without code 26).
var backendCodes = map[string]int32{"ns not found": codeNamespaceNotFound, "source namespace does not exist": codeNamespaceNotFound}

func withMissingCode(reply bson.Raw) bson.Raw {
	if replyOK(reply) {
		return reply
	}
	if c, ok := lookupInt(reply, "code"); ok && c != 0 {
		return reply
	}
	code, known := backendCodes[lookupString(reply, "errmsg")]
	if !known {
		return reply
	}
	var d bson.D
	if err := bson.Unmarshal(reply, &d); err != nil {
		return reply
	}
	out := bson.D{}
	for _, e := range d {
		if e.Key != "code" && e.Key != "codeName" {
			out = append(out, e)
		}
	}
	out = append(out, bson.E{Key: "code", Value: code}, bson.E{Key: "codeName", Value: codeNames[code]})
	b, err := bson.Marshal(out)
	if err != nil {
		return reply
	}
	return b
}

func (b *backend) roundTrip(ctx context.Context, c *bconn, cmd bson.Raw) (bson.Raw, error) {
	dl := time.Now().Add(b.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.c.Write(encodeCommand(b.reqID.Add(1), cmd)); err != nil {
		return nil, err
	}
	msg, err := readMessage(c.r, maxBackendMessageSize)
	if err != nil {
		return nil, err
	}
	return decodeReply(msg)
}

// cmdErr is a command failure ({ok: 0}) from the backend or the shim.
type cmdErr struct {
	Code     int32
	CodeName string
	Msg      string
	Labels   []string
	Raw      bson.Raw // the backend reply, when it came from the backend
}

func (e *cmdErr) Error() string {
	return fmt.Sprintf("(%s) %s [code %d]", e.CodeName, e.Msg, e.Code)
}

// replyErr returns a *cmdErr when reply is {ok: 0}.
func replyErr(reply bson.Raw) error {
	if replyOK(reply) {
		return nil
	}
	code, _ := lookupInt(reply, "code")
	return &cmdErr{Code: int32(code), CodeName: lookupString(reply, "codeName"), Msg: lookupString(reply, "errmsg"), Raw: reply}
}

func replyOK(reply bson.Raw) bool {
	v, err := reply.LookupErr("ok")
	return err == nil && truthy(v)
}

// command runs cmd and turns {ok: 0} into an error.
func (b *backend) command(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	reply, err := b.run(ctx, db, cmd)
	if err != nil {
		return nil, err
	}
	if err := replyErr(reply); err != nil {
		return reply, err
	}
	return reply, nil
}

// findAll runs a find (or any cursor command) and drains its cursor.
func (b *backend) cursorAll(ctx context.Context, db string, cmd bson.Raw) ([]bson.Raw, error) {
	reply, err := b.command(ctx, db, cmd)
	if err != nil {
		return nil, err
	}
	var out []bson.Raw
	batch := lookupArray(reply, "cursor", "firstBatch")
	ns := lookupString(reply, "cursor", "ns")
	id, _ := lookupInt(reply, "cursor", "id")
	for {
		for _, v := range batch {
			if d, ok := v.DocumentOK(); ok {
				out = append(out, copyRaw(d))
			}
		}
		if id == 0 {
			return out, nil
		}
		_, coll := splitNS(ns)
		reply, err = b.command(ctx, db, mustRaw(bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: coll}}))
		if err != nil {
			return nil, err
		}
		batch = lookupArray(reply, "cursor", "nextBatch")
		id, _ = lookupInt(reply, "cursor", "id")
	}
}

// find returns the documents of db.coll matching filter (limit 0 = all).
func (b *backend) find(ctx context.Context, db, coll string, filter bson.Raw, extra ...bson.E) ([]bson.Raw, error) {
	if filter == nil {
		filter = emptyDoc
	}
	cmd := bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: filter}}
	cmd = append(cmd, extra...)
	return b.cursorAll(ctx, db, mustRaw(cmd))
}

// findByIDs returns the documents with the given _ids, keyed by valueKey(_id)
// (extra: find options such as a projection).
//
// It asks in chunks of idChunk: mongo-java-server finds {_id: {$in: ids}}
// through its _id index but then matches each document found against the
// whole query again, a linear scan of the $in list, so one find of k ids
// costs k²/2 comparisons. Its CPU per document read (memory back end, 1 KiB
// documents, 30,000 in the collection, 2 shared cores): 15-16 µs in finds
// of 500 _ids (the shim asked for 1000), 5-6 µs in finds of 100, 3-5 µs in
// finds of 30 (within the noise of 100, for three times the round trips).
func (b *backend) findByIDs(ctx context.Context, db, coll string, ids []bson.RawValue, extra ...bson.E) (map[string]bson.Raw, error) {
	out := make(map[string]bson.Raw, len(ids))
	for i := 0; i < len(ids); i += idChunk {
		j := min(i+idChunk, len(ids))
		filter := mustRaw(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: arrayOfValues(ids[i:j])}}}})
		docs, err := b.find(ctx, db, coll, filter, extra...)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if v, err := d.LookupErr("_id"); err == nil {
				out[valueKey(v)] = d
			}
		}
	}
	return out, nil
}

// idChunk is how many _ids one find of findByIDs asks for (at most 101, the
// default first batch, so that a chunk is one round trip).
const idChunk = 100

// idOnly is the projection of a read that only needs to know which
// documents exist.
var idOnly = bson.E{Key: "projection", Value: bson.D{{Key: "_id", Value: 1}}}

// listCollections returns the collection infos of db.
func (b *backend) listCollections(ctx context.Context, db string, filter bson.Raw) ([]bson.Raw, error) {
	cmd := bson.D{{Key: "listCollections", Value: 1}}
	if filter != nil {
		cmd = append(cmd, bson.E{Key: "filter", Value: filter})
	}
	return b.cursorAll(ctx, db, mustRaw(cmd))
}

// collectionInfo returns db.coll's listCollections entry, nil when it does
// not exist (mongo-java-server ignores listCollections' filter, so the shim
// picks the entry itself).
func (b *backend) collectionInfo(ctx context.Context, db, coll string) (bson.Raw, error) {
	infos, err := b.listCollections(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		if lookupString(in, "name") == coll {
			return in, nil
		}
	}
	return nil, nil
}

// listIndexes returns the index specs of db.coll (nil when it does not exist).
func (b *backend) listIndexes(ctx context.Context, db, coll string) ([]bson.Raw, error) {
	docs, err := b.cursorAll(ctx, db, mustRaw(bson.D{{Key: "listIndexes", Value: coll}}))
	var ce *cmdErr
	if errors.As(err, &ce) && ce.Code == codeNamespaceNotFound {
		return nil, nil
	}
	return docs, err
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}
