package mongoshim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A multi-document transaction: its writes are buffered per (lsid,
// txnNumber) and applied, in order, under the write lock at commit; their
// events share one oplog time (as a transaction's applyOps does in MongoDB)
// and carry lsid and txnNumber. Reads inside a transaction see the
// committed state only (the backend has no snapshots).
type txn struct {
	lsid      bson.Raw
	num       int64
	ops       []txnOp
	committed bool
	started   time.Time
}

type txnOp struct {
	db  string
	cmd bson.Raw
}

type txnTable struct {
	mu sync.Mutex
	m  map[string]*txn // session id hex
}

func newTxnTable() *txnTable { return &txnTable{m: map[string]*txn{}} }

func sessionKey(lsid bson.Raw) string {
	_, data, ok := lsid.Lookup("id").BinaryOK()
	if !ok {
		return lsid.String()
	}
	return hex.EncodeToString(data)
}

// eventLSID is the lsid MongoDB puts on change events: {id, uid}, uid the
// SHA-256 of the (here: unauthenticated, empty) user name.
func eventLSID(lsid bson.Raw) bson.Raw {
	id := lsid.Lookup("id")
	uid := sha256.Sum256(nil)
	return mustRaw(bson.D{{Key: "id", Value: id}, {Key: "uid", Value: bson.Binary{Subtype: 0, Data: uid[:]}}})
}

func noSuchTxn(num int64) error {
	return shimErr(codeNoSuchTransaction, "Transaction with txnNumber "+itoa(int(num))+" has been aborted or was never started", "TransientTransactionError")
}

// txnFor returns the transaction a command belongs to, starting one on
// startTransaction.
func (s *Server) txnFor(cmd bson.Raw) (*txn, error) {
	lsid := lookupDoc(cmd, "lsid")
	num, _ := lookupInt(cmd, "txnNumber")
	if lsid == nil {
		return nil, shimErr(codeInvalidOptions, "transactions need a session (lsid)")
	}
	key := sessionKey(lsid)
	s.txns.mu.Lock()
	defer s.txns.mu.Unlock()
	t := s.txns.m[key]
	if lookupBool(cmd, "startTransaction") {
		if t != nil && t.num > num {
			return nil, shimErr(225, "Cannot start transaction "+itoa(int(num))+" on session because a newer transaction has already started")
		}
		t = &txn{lsid: copyRaw(lsid), num: num, started: time.Now()}
		s.txns.m[key] = t
		return t, nil
	}
	if t == nil || t.num != num || t.committed {
		return nil, noSuchTxn(num)
	}
	return t, nil
}

// txnWrite buffers a write of a transaction and answers as if applied
// (counts from the committed state).
func (s *Server) txnWrite(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	t, err := s.txnFor(cmd)
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(cmdName(cmd))
	coll := collOf(cmd)
	var reply bson.Raw
	switch name {
	case "insert":
		vals := lookupArray(cmd, "documents")
		docs := make([]bson.Raw, 0, len(vals))
		for _, v := range vals {
			d, _ := v.DocumentOK()
			d, _ = ensureID(d)
			docs = append(docs, d)
		}
		cmd = withFields(cmd, "documents", arrayOf(docs))
		reply = mustRaw(bson.D{{Key: "n", Value: int32(len(docs))}, {Key: "ok", Value: 1.0}})
	case "update":
		var n int64
		var upserted []bson.Raw
		for i, sv := range lookupArray(cmd, "updates") {
			stmt, _ := sv.DocumentOK()
			var limit int64 = 1
			if lookupBool(stmt, "multi") {
				limit = 0
			}
			docs, _ := s.be.find(ctx, db, coll, lookupDoc(stmt, "q"), matchOpts(stmt, limit, nil)...)
			n += int64(len(docs))
			if len(docs) == 0 && lookupBool(stmt, "upsert") {
				if id, err := lookupDoc(stmt, "q").LookupErr("_id"); err == nil && id.Type != bson.TypeEmbeddedDocument {
					upserted = append(upserted, mustRaw(bson.D{{Key: "index", Value: int32(i)}, {Key: "_id", Value: id}}))
				}
			}
		}
		d := bson.D{{Key: "n", Value: int32(n + int64(len(upserted)))}, {Key: "nModified", Value: int32(n)}}
		if len(upserted) > 0 {
			d = append(d, bson.E{Key: "upserted", Value: arrayOf(upserted)})
		}
		reply = mustRaw(append(d, bson.E{Key: "ok", Value: 1.0}))
	case "delete":
		var n int64
		for _, sv := range lookupArray(cmd, "deletes") {
			stmt, _ := sv.DocumentOK()
			limit, _ := lookupInt(stmt, "limit")
			docs, _ := s.be.find(ctx, db, coll, lookupDoc(stmt, "q"), matchOpts(stmt, limit, nil)...)
			n += int64(len(docs))
		}
		reply = mustRaw(bson.D{{Key: "n", Value: int32(n)}, {Key: "ok", Value: 1.0}})
	case "findandmodify":
		docs, _ := s.be.find(ctx, db, coll, lookupDoc(cmd, "query"), matchOpts(cmd, 1, lookupDoc(cmd, "sort"))...)
		var val any = nil
		leo := bson.D{{Key: "n", Value: int32(len(docs))}}
		if len(docs) > 0 {
			val = docs[0] // the committed pre-image, even with new: true (documented gap)
			if !lookupBool(cmd, "remove") {
				leo = append(leo, bson.E{Key: "updatedExisting", Value: true})
			}
		}
		reply = mustRaw(bson.D{{Key: "lastErrorObject", Value: leo}, {Key: "value", Value: val}, {Key: "ok", Value: 1.0}})
	default: // DDL inside a transaction (create, createIndexes)
		reply = okReply()
	}
	s.txns.mu.Lock()
	t.ops = append(t.ops, txnOp{db: db, cmd: copyRaw(cmd)})
	s.txns.mu.Unlock()
	return reply, nil
}

func (s *Server) commitTxn(ctx context.Context, cmd bson.Raw, opTime *ts) (bson.Raw, error) {
	lsid := lookupDoc(cmd, "lsid")
	num, _ := lookupInt(cmd, "txnNumber")
	if lsid == nil {
		return nil, shimErr(codeInvalidOptions, "commitTransaction needs a session (lsid)")
	}
	key := sessionKey(lsid)
	s.txns.mu.Lock()
	t := s.txns.m[key]
	if t != nil && t.num == num && t.committed {
		s.txns.mu.Unlock()
		return okReply(), nil // a retried commit
	}
	if t == nil || t.num != num {
		s.txns.mu.Unlock()
		return nil, noSuchTxn(num)
	}
	t.committed = true
	ops := t.ops
	t.ops = nil
	s.txns.mu.Unlock()

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var evs []*event
	var firstErr error
	for _, op := range ops {
		if s.blocked.Load() && !internalDB(op.db) && !mayBypassWriteBlock(ctx) {
			firstErr = shimErr(codeUserWritesBlocked, "User writes blocked")
			break
		}
		reply, e, err := s.execWrite(ctx, op.db, op.cmd)
		evs = append(evs, e...)
		if err == nil {
			err = replyErr(reply)
		}
		if err == nil {
			if we := lookupArray(reply, "writeErrors"); len(we) > 0 {
				d, _ := we[0].DocumentOK()
				code, _ := lookupInt(d, "code")
				err = &cmdErr{Code: int32(code), CodeName: lookupString(d, "codeName"), Msg: lookupString(d, "errmsg")}
			}
		}
		if err != nil {
			firstErr = err
			break
		}
	}
	if len(evs) > 0 {
		*opTime = s.publish(evs, eventLSID(lsid), num)
	}
	if firstErr != nil {
		// the backend cannot roll back: what was applied stays (and is in
		// the oplog); the commit reports the failure
		s.log.Warn("transaction failed at commit; earlier writes of it stay applied", "txnNumber", num, "err", firstErr)
		return nil, firstErr
	}
	return okReply(), nil
}

func (s *Server) abortTxn(cmd bson.Raw) (bson.Raw, error) {
	lsid := lookupDoc(cmd, "lsid")
	num, _ := lookupInt(cmd, "txnNumber")
	if lsid == nil {
		return nil, shimErr(codeInvalidOptions, "abortTransaction needs a session (lsid)")
	}
	key := sessionKey(lsid)
	s.txns.mu.Lock()
	defer s.txns.mu.Unlock()
	t := s.txns.m[key]
	if t == nil || t.num != num || t.committed {
		return nil, noSuchTxn(num)
	}
	delete(s.txns.m, key)
	return okReply(), nil
}
