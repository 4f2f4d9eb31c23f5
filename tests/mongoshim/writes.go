package mongoshim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// write runs a write or DDL command outside a transaction: under the global
// write lock, forwarded to the backend, its change events appended to the
// oplog (one oplog time each) before the reply goes out.
func (s *Server) write(ctx context.Context, db string, cmd bson.Raw, opTime *ts) (bson.Raw, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.blocked.Load() && !internalDB(db) && !mayBypassWriteBlock(ctx) {
		return blockedReply(cmd)
	}
	reply, evs, err := s.execWrite(ctx, db, cmd)
	if len(evs) > 0 {
		*opTime = s.publish(evs, nil, 0)
	}
	if ddlCommands[strings.ToLower(cmdName(cmd))] {
		// before the reply: a DDL acknowledged is in the state file
		if serr := s.saveState(false); serr != nil {
			s.log.Warn("saving the state file", "err", serr)
		}
	}
	return reply, err
}

var ddlCommands = map[string]bool{"create": true, "drop": true, "renamecollection": true, "dropdatabase": true,
	"createindexes": true, "dropindexes": true, "collmod": true}

// publish gives events their oplog times and appends them: one time per
// event, or for a transaction (lsid != nil) one shared time with indexes.
func (s *Server) publish(evs []*event, lsid bson.Raw, txnNum int64) ts {
	s.shardDocumentKeys(evs)
	now := time.Now()
	var last ts
	if lsid != nil {
		last = s.clock.tick()
		for i, ev := range evs {
			ev.pos = pos{ts: last, idx: uint32(i)}
			ev.wall = now
			ev.lsid, ev.txnNum, ev.inTxn = lsid, txnNum, true
		}
	} else {
		for _, ev := range evs {
			last = s.clock.tick()
			ev.pos = pos{ts: last}
			ev.wall = now
		}
	}
	s.oplog.append(evs, last)
	return last
}

// blockedReply is MongoDB's answer to a user write while
// setUserWriteBlockMode global is on: a write error for CRUD, a command
// error otherwise.
func blockedReply(cmd bson.Raw) (bson.Raw, error) {
	const msg = "User writes blocked"
	switch strings.ToLower(cmdName(cmd)) {
	case "insert", "update", "delete":
		return mustRaw(bson.D{
			{Key: "n", Value: int32(0)},
			{Key: "writeErrors", Value: bson.A{bson.D{{Key: "index", Value: int32(0)}, {Key: "code", Value: int32(codeUserWritesBlocked)}, {Key: "codeName", Value: "UserWritesBlocked"}, {Key: "errmsg", Value: msg}}}},
			{Key: "ok", Value: 1.0},
		}), nil
	}
	return nil, shimErr(codeUserWritesBlocked, msg)
}

// execWrite forwards one write/DDL command and returns the events it caused
// (without oplog times). The caller holds writeMu.
func (s *Server) execWrite(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	switch strings.ToLower(cmdName(cmd)) {
	case "insert":
		return s.doInsert(ctx, db, cmd)
	case "update":
		return s.doUpdate(ctx, db, cmd)
	case "delete":
		return s.doDelete(ctx, db, cmd)
	case "findandmodify":
		return s.doFindAndModify(ctx, db, cmd)
	case "create":
		return s.doCreate(ctx, db, cmd)
	case "drop":
		return s.doDrop(ctx, db, cmd)
	case "renamecollection":
		return s.doRename(ctx, db, cmd)
	case "dropdatabase":
		return s.doDropDatabase(ctx, db, cmd)
	case "createindexes":
		return s.doCreateIndexes(ctx, db, cmd)
	case "dropindexes":
		return s.doDropIndexes(ctx, db, cmd)
	case "collmod":
		return s.doCollMod(ctx, db, cmd)
	}
	reply, err := s.forward(ctx, db, cmd)
	return reply, nil, err
}

// newEvent starts an event on db.coll with the collection's UUID.
func (s *Server) newEvent(op, db, coll string) *event {
	ev := &event{op: op, db: db, coll: coll}
	s.cat.mu.Lock()
	if ci := s.cat.colls[db+"."+coll]; ci != nil {
		ev.uuid = binaryValue(ci.uuid) // not toRawValue: its reflection was 7% of the shim's CPU per write
		ev.images = ci.images
	}
	s.cat.mu.Unlock()
	return ev
}

var idIndexSpec = bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}

// implicitCreate registers db.coll created by a write and returns its
// (expanded) create event.
func (s *Server) implicitCreate(db, coll string) *event {
	s.catalogPut(db, coll, &collInfo{uuid: newUUID()})
	ev := s.newEvent("create", db, coll)
	ev.expanded = true
	ev.opDesc = mustRaw(bson.D{{Key: "idIndex", Value: idIndexSpec}})
	return ev
}

// withCreate prepends the implicit create event when the write created the
// collection.
func (s *Server) withCreate(known bool, db, coll string, evs []*event) []*event {
	if known || len(evs) == 0 {
		return evs
	}
	c := s.implicitCreate(db, coll)
	for _, ev := range evs {
		ci := s.newEvent(ev.op, db, coll)
		ev.uuid, ev.images = ci.uuid, ci.images
	}
	return append([]*event{c}, evs...)
}

// ensureID returns doc with _id as its first field (generating an ObjectId
// when missing, as the server does) and that _id.
func ensureID(doc bson.Raw) (bson.Raw, bson.RawValue) {
	elems, err := doc.Elements()
	if err != nil {
		return doc, bson.RawValue{}
	}
	if len(elems) > 0 && elems[0].Key() == "_id" {
		return doc, elems[0].Value()
	}
	var id bson.RawValue
	for _, e := range elems {
		if e.Key() == "_id" {
			id = e.Value()
		}
	}
	if id.Type == 0 {
		id = toRawValue(bson.NewObjectID())
	}
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(doc)+17))
	b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
	for _, e := range elems {
		if e.Key() != "_id" {
			b = append(b, e...)
		}
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b), id
}

func ordered(cmd bson.Raw) bool {
	v, err := cmd.LookupErr("ordered")
	return err != nil || truthy(v)
}

func collOf(cmd bson.Raw) string {
	s, _ := firstValue(cmd).StringValueOK()
	return s
}

// ------------------------------------------------------------------ insert --

func (s *Server) doInsert(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	known := s.catalogGet(ctx, db, coll) != nil
	vals := lookupArray(cmd, "documents")
	docs := make([]bson.Raw, 0, len(vals))
	ids := make([]bson.RawValue, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, nil, shimErr(codeTypeMismatch, "insert documents must be objects")
		}
		d, id := ensureID(d)
		docs = append(docs, d)
		ids = append(ids, id)
	}
	fwd := withFields(sanitize(cmd), "documents", arrayOf(docs))
	reply, err := s.be.run(ctx, db, fwd)
	if err != nil {
		return nil, nil, err
	}
	if !replyOK(reply) {
		return reply, nil, nil
	}
	failed := map[int]bool{}
	firstErr := len(docs)
	for _, we := range lookupArray(reply, "writeErrors") {
		d, _ := we.DocumentOK()
		i, _ := lookupInt(d, "index")
		failed[int(i)] = true
		firstErr = min(firstErr, int(i))
	}
	var evs []*event
	for i, d := range docs {
		if failed[i] || (ordered(cmd) && i > firstErr) {
			continue
		}
		ev := s.newEvent("insert", db, coll)
		ev.docKey = idDoc(ids[i])
		ev.doc = d
		evs = append(evs, ev)
	}
	// n counts the documents inserted (mongo-java-server also counts a
	// failed one in an unordered batch)
	reply = withFields(reply, "n", int32(len(evs)))
	return reply, s.withCreate(known, db, coll, evs), nil
}

// ------------------------------------------------------------------ update --

// updateKind: "replacement", "operator" or "pipeline".
func updateKind(u bson.RawValue) string {
	if u.Type == bson.TypeArray {
		return "pipeline"
	}
	d, _ := u.DocumentOK()
	if k := cmdName(d); strings.HasPrefix(k, "$") {
		return "operator"
	}
	return "replacement"
}

// positional reports an update using the positional $ operator, which
// depends on the query (so the statement's query must stay as sent).
func positional(u bson.RawValue) bool {
	if u.Type != bson.TypeEmbeddedDocument {
		return false
	}
	d, _ := u.DocumentOK()
	ops, _ := d.Elements()
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok {
			continue
		}
		fe, _ := fields.Elements()
		for _, f := range fe {
			for _, seg := range strings.Split(f.Key(), ".") {
				if seg == "$" {
					return true
				}
			}
		}
	}
	return false
}

// changeEvents builds the events of documents updated in place: pre and post
// images by _id key, u the statement's update (stmt for its arrayFilters).
// A replacement-style update is a replace event; an operator or pipeline
// update is an update event with MongoDB's updateDescription (delta.go), or
// a replace where its delta cannot express the change.
func (s *Server) changeEvents(db, coll string, ids []bson.RawValue, pres, posts map[string]bson.Raw, u bson.RawValue, stmt bson.Raw) []*event {
	replace := updateKind(u) == "replacement"
	var evs []*event
	for _, id := range ids {
		k := valueKey(id)
		pre, post := pres[k], posts[k]
		if pre == nil || post == nil || bytes.Equal(pre, post) {
			continue // not modified: MongoDB writes no oplog entry
		}
		var desc updateDescription
		asReplace := replace
		if !replace {
			desc, asReplace = updateEvent(pre, post, u, hasKey(stmt, "arrayFilters"))
		}
		op := "update"
		if asReplace {
			op = "replace"
		}
		ev := s.newEvent(op, db, coll)
		ev.docKey = idDoc(id)
		ev.pre, ev.post = pre, post
		if asReplace {
			ev.doc = post
		} else {
			ev.updDesc, ev.updDescExpanded = desc.plain, desc.expanded
		}
		evs = append(evs, ev)
	}
	return evs
}

func idsOf(docs []bson.Raw) ([]bson.RawValue, map[string]bson.Raw) {
	ids := make([]bson.RawValue, 0, len(docs))
	m := make(map[string]bson.Raw, len(docs))
	for _, d := range docs {
		id, err := d.LookupErr("_id")
		if err != nil {
			continue
		}
		ids = append(ids, id)
		m[valueKey(id)] = d
	}
	return ids, m
}

// matchFind builds the extra find options a write statement's query uses.
func matchOpts(stmt bson.Raw, limit int64, sort bson.Raw) []bson.E {
	var o []bson.E
	if limit > 0 {
		o = append(o, bson.E{Key: "limit", Value: limit})
	}
	if sort != nil {
		o = append(o, bson.E{Key: "sort", Value: sort})
	}
	if v, err := stmt.LookupErr("collation"); err == nil {
		o = append(o, bson.E{Key: "collation", Value: v})
	}
	if v, err := stmt.LookupErr("hint"); err == nil {
		o = append(o, bson.E{Key: "hint", Value: v})
	}
	return o
}

// simpleIDs returns the _id of every statement when each one targets one
// document by plain _id equality ({q: {_id: <scalar>}}, not multi) and no two
// target the same _id: such a batch (what the sink sends) is forwarded as
// one command, with pre- and post-images read in bulk.
func simpleIDs(stmts []bson.RawValue) ([]bson.RawValue, bool) {
	if len(stmts) < 2 {
		return nil, false
	}
	ids := make([]bson.RawValue, 0, len(stmts))
	seen := map[string]bool{}
	for _, sv := range stmts {
		stmt, ok := sv.DocumentOK()
		if !ok || lookupBool(stmt, "multi") || hasKey(stmt, "collation") || updateKind(stmt.Lookup("u")) == "pipeline" {
			return nil, false
		}
		q := lookupDoc(stmt, "q")
		elems, err := q.Elements()
		if err != nil || len(elems) != 1 || elems[0].Key() != "_id" {
			return nil, false
		}
		id := elems[0].Value()
		switch id.Type {
		case bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeRegex, bson.TypeNull, bson.TypeUndefined:
			return nil, false
		}
		k := valueKey(id)
		if seen[k] {
			return nil, false
		}
		seen[k] = true
		ids = append(ids, id)
	}
	return ids, true
}

// anyReplacement reports an update command with a replacement statement
// (mongo-java-server keeps the old field order on a replace, which the shim
// corrects, so replacements always take the full path).
func anyReplacement(cmd bson.Raw) bool {
	for _, sv := range lookupArray(cmd, "updates") {
		if stmt, ok := sv.DocumentOK(); ok && updateKind(stmt.Lookup("u")) == "replacement" {
			return true
		}
	}
	return false
}

func (s *Server) doUpdate(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	known := s.catalogGet(ctx, db, coll) != nil
	if ids, ok := simpleIDs(lookupArray(cmd, "updates")); ok {
		if s.cfg.WritesOnly && known && !anyReplacement(cmd) {
			reply, err := s.be.run(ctx, db, sanitize(cmd))
			return reply, nil, err
		}
		return s.doUpdateByIDs(ctx, db, coll, cmd, ids, known)
	}
	base := rebuild(sanitize(cmd), func(k string, v bson.RawValue) (bson.RawValue, bool) { return v, k != "updates" && k != "ordered" })
	ord := ordered(cmd)
	var (
		n, nMod  int64
		upserted []bson.Raw
		werrs    []bson.Raw
		evs      []*event
	)
	for i, sv := range lookupArray(cmd, "updates") {
		stmt, ok := sv.DocumentOK()
		if !ok {
			return nil, nil, shimErr(codeTypeMismatch, "updates must be objects")
		}
		q := lookupDoc(stmt, "q")
		u := stmt.Lookup("u")
		multi := lookupBool(stmt, "multi")
		var limit int64 = 1
		if multi {
			limit = 0
		}
		pres, err := s.be.find(ctx, db, coll, q, matchOpts(stmt, limit, nil)...)
		if err != nil {
			pres = nil // the forwarded update reports the problem
		}
		ids, preMap := idsOf(pres)
		if len(ids) == 0 && lookupBool(stmt, "upsert") && nullIDQuery(q) && updateKind(u) != "pipeline" {
			up, ev, werr, err := s.upsertNullID(ctx, db, coll, base, stmt, u)
			if err != nil {
				return nil, nil, err
			}
			if werr != nil {
				werrs = append(werrs, withFields(werr, "index", int32(i)))
				if ord {
					break
				}
				continue
			}
			n++
			upserted = append(upserted, withFields(up, "index", int32(i)))
			evs = append(evs, ev)
			continue
		}
		if updateKind(u) == "pipeline" {
			sn, sm, pevs, werr, err := s.pipelineUpdate(ctx, db, coll, base, stmt, u, ids, preMap)
			if err != nil {
				return nil, nil, err
			}
			n, nMod, evs = n+sn, nMod+sm, append(evs, pevs...)
			if werr != nil {
				werrs = append(werrs, withFields(werr, "index", int32(i)))
				if ord {
					break
				}
			}
			continue
		}
		fstmt := stmt
		if !multi && len(ids) == 1 && !positional(u) {
			// pin the statement to the document found, so the backend
			// updates exactly the one whose pre-image we hold
			fstmt = withFields(stmt, "q", idDoc(ids[0]))
		}
		reply, err := s.be.run(ctx, db, withFields(base, "updates", arrayOf([]bson.Raw{fstmt}), "ordered", true))
		if err != nil {
			return nil, nil, err
		}
		if !replyOK(reply) {
			werrs = append(werrs, writeErrorFrom(reply, i))
			if ord {
				break
			}
			continue
		}
		sn, _ := lookupInt(reply, "n")
		sm, _ := lookupInt(reply, "nModified")
		n += sn
		nMod += sm
		var upID bson.RawValue
		for _, up := range lookupArray(reply, "upserted") {
			d, _ := up.DocumentOK()
			upID = d.Lookup("_id")
			upserted = append(upserted, withFields(d, "index", int32(i)))
		}
		stmtErr := false
		for _, we := range lookupArray(reply, "writeErrors") {
			d, _ := we.DocumentOK()
			werrs = append(werrs, withFields(d, "index", int32(i)))
			stmtErr = true
		}
		if len(ids) > 0 {
			posts, err := s.be.findByIDs(ctx, db, coll, ids)
			if err != nil {
				return nil, nil, err
			}
			if updateKind(u) == "replacement" {
				if err := s.keepReplacementOrder(ctx, db, coll, ids, u, posts); err != nil {
					return nil, nil, err
				}
			}
			evs = append(evs, s.changeEvents(db, coll, ids, preMap, posts, u, stmt)...)
		}
		if upID.Type != 0 {
			posts, err := s.be.findByIDs(ctx, db, coll, []bson.RawValue{upID})
			if err != nil {
				return nil, nil, err
			}
			if d := posts[valueKey(upID)]; d != nil {
				ev := s.newEvent("insert", db, coll)
				ev.docKey = idDoc(upID)
				ev.doc = d
				evs = append(evs, ev)
			}
		}
		if stmtErr && ord {
			break
		}
	}
	out := bson.D{{Key: "n", Value: int32(n)}, {Key: "nModified", Value: int32(nMod)}}
	if len(upserted) > 0 {
		out = append(out, bson.E{Key: "upserted", Value: arrayOf(upserted)})
	}
	if len(werrs) > 0 {
		out = append(out, bson.E{Key: "writeErrors", Value: arrayOf(werrs)})
	}
	out = append(out, bson.E{Key: "ok", Value: 1.0})
	return mustRaw(out), s.withCreate(known, db, coll, evs), nil
}

// nullIDQuery reports a query {_id: null}.
func nullIDQuery(q bson.Raw) bool {
	es, err := q.Elements()
	return err == nil && len(es) == 1 && es[0].Key() == "_id" && es[0].Value().Type == bson.TypeNull
}

// upsertNullID runs an upsert of {_id: null} that matched nothing. MongoDB
// inserts a document whose _id is null; mongo-java-server generates an
// ObjectId instead (for an operator update and for a replacement whose _id
// is null alike). So the shim upserts under a fresh ObjectId, then stores the
// result again with _id null in its place, under the write lock.
func (s *Server) upsertNullID(ctx context.Context, db, coll string, base, stmt bson.Raw, u bson.RawValue) (upserted bson.Raw, ev *event, werr bson.Raw, err error) {
	tmp := bson.NewObjectID()
	fstmt := withFields(stmt, "q", bson.D{{Key: "_id", Value: tmp}})
	if repl, ok := u.DocumentOK(); ok && updateKind(u) == "replacement" && hasKey(repl, "_id") {
		fstmt = withFields(fstmt, "u", withFields(repl, "_id", tmp))
	}
	reply, err := s.be.run(ctx, db, withFields(base, "updates", arrayOf([]bson.Raw{fstmt}), "ordered", true))
	if err != nil {
		return nil, nil, nil, err
	}
	if !replyOK(reply) {
		return nil, nil, writeErrorFrom(reply, 0), nil
	}
	for _, we := range lookupArray(reply, "writeErrors") {
		d, _ := we.DocumentOK()
		return nil, nil, d, nil
	}
	tmpID := toRawValue(tmp)
	docs, err := s.be.findByIDs(ctx, db, coll, []bson.RawValue{tmpID})
	if err != nil {
		return nil, nil, nil, err
	}
	doc := docs[valueKey(tmpID)]
	if doc == nil {
		return nil, nil, nil, shimErr(codeInternalError, "mongoshim: the upsert of _id null left no document")
	}
	stored := rebuild(doc, func(k string, v bson.RawValue) (bson.RawValue, bool) {
		if k == "_id" {
			return bson.RawValue{Type: bson.TypeNull}, true
		}
		return v, true
	})
	del := bson.D{{Key: "delete", Value: coll}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: idDoc(tmpID)}, {Key: "limit", Value: int32(1)}}}}}
	if _, err := s.be.command(ctx, db, mustRaw(del)); err != nil {
		return nil, nil, nil, fmt.Errorf("upsert of _id null (delete): %w", err)
	}
	ins := bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: bson.A{stored}}}
	if r, err := s.be.command(ctx, db, mustRaw(ins)); err != nil {
		return nil, nil, nil, fmt.Errorf("upsert of _id null (insert): %w", err)
	} else if we := lookupArray(r, "writeErrors"); len(we) > 0 {
		d, _ := we[0].DocumentOK()
		return nil, nil, d, nil
	}
	null := bson.RawValue{Type: bson.TypeNull}
	ev = s.newEvent("insert", db, coll)
	ev.docKey = idDoc(null)
	ev.doc = stored
	return mustRaw(bson.D{{Key: "_id", Value: null}}), ev, nil, nil
}

// pipelineUpdate runs a pipeline-style update statement on the documents it
// matched (ids, pre-images in pres): the shim computes each new document
// (runUpdatePipeline) and stores it as a replacement pinned to its _id; the
// events describe the change as MongoDB's document diff does (delta.go). An
// upsert that matches nothing is refused (not implemented). werr is the
// statement's write error, if any.
func (s *Server) pipelineUpdate(ctx context.Context, db, coll string, base, stmt bson.Raw, u bson.RawValue, ids []bson.RawValue, pres map[string]bson.Raw) (n, nMod int64, evs []*event, werr bson.Raw, err error) {
	if len(ids) == 0 {
		if lookupBool(stmt, "upsert") {
			return 0, 0, nil, mustRaw(bson.D{{Key: "code", Value: codeIllegalOperation}, {Key: "errmsg", Value: "mongoshim does not implement an upsert with an update pipeline that matches no document"}}), nil
		}
		return 0, 0, nil, nil, nil
	}
	var stmts []bson.Raw
	for _, id := range ids {
		post, perr := s.runUpdatePipeline(u, pres[valueKey(id)])
		if perr != nil {
			var ce *cmdErr
			code, msg := int32(codeInternalError), perr.Error()
			if errors.As(perr, &ce) {
				code, msg = ce.Code, ce.Msg
			}
			return 0, 0, nil, mustRaw(bson.D{{Key: "code", Value: code}, {Key: "errmsg", Value: msg}}), nil
		}
		stmts = append(stmts, mustRaw(bson.D{{Key: "q", Value: idDoc(id)}, {Key: "u", Value: post}}))
	}
	reply, err := s.be.run(ctx, db, withFields(base, "updates", arrayOf(stmts), "ordered", true))
	if err != nil {
		return 0, 0, nil, nil, err
	}
	if !replyOK(reply) {
		return 0, 0, nil, writeErrorFrom(reply, 0), nil
	}
	n, _ = lookupInt(reply, "n")
	nMod, _ = lookupInt(reply, "nModified")
	for _, we := range lookupArray(reply, "writeErrors") {
		d, _ := we.DocumentOK()
		werr = d
		break
	}
	posts, err := s.be.findByIDs(ctx, db, coll, ids)
	if err != nil {
		return 0, 0, nil, nil, err
	}
	for j, id := range ids {
		repl := bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: stmts[j].Lookup("u").Value}
		if err := s.keepReplacementOrder(ctx, db, coll, []bson.RawValue{id}, repl, posts); err != nil {
			return 0, 0, nil, nil, err
		}
	}
	return n, nMod, s.changeEvents(db, coll, ids, pres, posts, u, stmt), werr, nil
}

func (s *Server) doUpdateByIDs(ctx context.Context, db, coll string, cmd bson.Raw, ids []bson.RawValue, known bool) (bson.Raw, []*event, error) {
	pres, err := s.be.findByIDs(ctx, db, coll, ids)
	if err != nil {
		return nil, nil, err
	}
	reply, err := s.be.run(ctx, db, sanitize(cmd))
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	upserted := map[int]bool{}
	for _, up := range lookupArray(reply, "upserted") {
		d, _ := up.DocumentOK()
		i, _ := lookupInt(d, "index")
		upserted[int(i)] = true
	}
	stmts := lookupArray(cmd, "updates")
	posts, predicted := predictedPosts(stmts, ids, pres, reply) // setpost.go
	if !predicted {
		if posts, err = s.be.findByIDs(ctx, db, coll, ids); err != nil {
			return nil, nil, err
		}
	}
	var evs []*event
	for i, sv := range stmts {
		stmt, _ := sv.DocumentOK()
		id := ids[i]
		k := valueKey(id)
		if upserted[i] {
			if d := posts[k]; d != nil {
				ev := s.newEvent("insert", db, coll)
				ev.docKey = idDoc(id)
				ev.doc = d
				evs = append(evs, ev)
			}
			continue
		}
		if u := stmt.Lookup("u"); updateKind(u) == "replacement" {
			if err := s.keepReplacementOrder(ctx, db, coll, []bson.RawValue{id}, u, posts); err != nil {
				return nil, nil, err
			}
		}
		evs = append(evs, s.changeEvents(db, coll, []bson.RawValue{id}, pres, posts, stmt.Lookup("u"), stmt)...)
	}
	return reply, s.withCreate(known, db, coll, evs), nil
}

// keepReplacementOrder makes a replaced document hold the replacement's
// field order (_id first), as MongoDB stores it: mongo-java-server keeps the
// old document's order instead. Where the stored order differs, the document
// is deleted and inserted again in the right order under the write lock, and
// posts is updated. (Not atomic for concurrent readers: a test-server gap.)
func (s *Server) keepReplacementOrder(ctx context.Context, db, coll string, ids []bson.RawValue, u bson.RawValue, posts map[string]bson.Raw) error {
	repl, ok := u.DocumentOK()
	if !ok {
		return nil
	}
	for _, id := range ids {
		k := valueKey(id)
		post := posts[k]
		if post == nil {
			continue
		}
		want := bson.D{{Key: "_id", Value: id}}
		elems, _ := repl.Elements()
		for _, e := range elems {
			if e.Key() != "_id" {
				want = append(want, bson.E{Key: e.Key(), Value: e.Value()})
			}
		}
		wantRaw := mustRaw(want)
		if bytes.Equal(wantRaw, post) {
			continue
		}
		del := bson.D{{Key: "delete", Value: coll}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: idDoc(id)}, {Key: "limit", Value: int32(1)}}}}}
		if _, err := s.be.command(ctx, db, mustRaw(del)); err != nil {
			return fmt.Errorf("re-storing replaced document in order (delete): %w", err)
		}
		ins := bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: bson.A{wantRaw}}}
		if _, err := s.be.command(ctx, db, mustRaw(ins)); err != nil {
			return fmt.Errorf("re-storing replaced document in order (insert): %w", err)
		}
		posts[k] = wantRaw
	}
	return nil
}

// doDeleteByIDs forwards a batch of deletes by distinct _ids (what the sink
// sends) as one command. Which documents it deleted comes from the pre-read:
// under writeMu nothing else changes the backend, each statement deletes at
// most the one document with its _id, so when the reply's n equals the number
// of documents found, the deleted ones are exactly those and the second read
// of what is left is skipped (it is done when n says otherwise, e.g. an
// ordered batch stopped by a write error). The pre-read fetches whole
// documents only when an event needs them (wholePreImages); otherwise the
// _ids alone, which mongo-java-server answers at a fraction of the cost.
func (s *Server) doDeleteByIDs(ctx context.Context, db, coll string, cmd bson.Raw, ids []bson.RawValue) (bson.Raw, []*event, error) {
	whole := s.wholePreImages(db, coll)
	var proj []bson.E
	if !whole {
		proj = append(proj, idOnly)
	}
	pres, err := s.be.findByIDs(ctx, db, coll, ids, proj...)
	if err != nil {
		return nil, nil, err
	}
	reply, err := s.be.run(ctx, db, sanitize(cmd))
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	var left map[string]bson.Raw
	if n, _ := lookupInt(reply, "n"); n != int64(len(pres)) {
		if left, err = s.be.findByIDs(ctx, db, coll, ids, idOnly); err != nil {
			return nil, nil, err
		}
	}
	var evs []*event
	for _, id := range ids {
		k := valueKey(id)
		if pres[k] == nil || left[k] != nil {
			continue
		}
		ev := s.newEvent("delete", db, coll)
		ev.docKey = idDoc(id)
		if whole {
			ev.pre = pres[k]
		}
		evs = append(evs, ev)
	}
	return reply, evs, nil
}

// wholePreImages reports whether the delete events of db.coll need the whole
// deleted document: as fullDocumentBeforeChange when the collection has
// changeStreamPreAndPostImages, and presenting a mongos for the shard key in
// documentKey (shardDocumentKeys). The caller holds writeMu, under which
// collMod changes the flag.
func (s *Server) wholePreImages(db, coll string) bool {
	if s.cfg.Mongos {
		return true
	}
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	ci := s.cat.colls[db+"."+coll]
	return ci != nil && ci.images
}

// writeErrorFrom turns a statement's command error into a write error.
func writeErrorFrom(reply bson.Raw, i int) bson.Raw {
	code, _ := lookupInt(reply, "code")
	d := bson.D{{Key: "index", Value: int32(i)}, {Key: "code", Value: int32(code)}}
	if cn := lookupString(reply, "codeName"); cn != "" {
		d = append(d, bson.E{Key: "codeName", Value: cn})
	}
	d = append(d, bson.E{Key: "errmsg", Value: lookupString(reply, "errmsg")})
	return mustRaw(d)
}

// ------------------------------------------------------------------ delete --

func (s *Server) doDelete(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	if ids, ok := simpleIDs(lookupArray(cmd, "deletes")); ok {
		if s.cfg.WritesOnly && s.catalogGet(ctx, db, coll) != nil {
			reply, err := s.be.run(ctx, db, sanitize(cmd))
			return reply, nil, err
		}
		return s.doDeleteByIDs(ctx, db, coll, cmd, ids)
	}
	base := rebuild(sanitize(cmd), func(k string, v bson.RawValue) (bson.RawValue, bool) { return v, k != "deletes" && k != "ordered" })
	ord := ordered(cmd)
	var (
		n     int64
		werrs []bson.Raw
		evs   []*event
	)
	for i, sv := range lookupArray(cmd, "deletes") {
		stmt, ok := sv.DocumentOK()
		if !ok {
			return nil, nil, shimErr(codeTypeMismatch, "deletes must be objects")
		}
		q := lookupDoc(stmt, "q")
		limit, _ := lookupInt(stmt, "limit")
		pres, err := s.be.find(ctx, db, coll, q, matchOpts(stmt, limit, nil)...)
		if err != nil {
			pres = nil
		}
		ids, preMap := idsOf(pres)
		fstmt := stmt
		if limit == 1 && len(ids) == 1 {
			fstmt = withFields(stmt, "q", idDoc(ids[0]))
		}
		reply, err := s.be.run(ctx, db, withFields(base, "deletes", arrayOf([]bson.Raw{fstmt}), "ordered", true))
		if err != nil {
			return nil, nil, err
		}
		if !replyOK(reply) {
			werrs = append(werrs, writeErrorFrom(reply, i))
			if ord {
				break
			}
			continue
		}
		sn, _ := lookupInt(reply, "n")
		n += sn
		stmtErr := false
		for _, we := range lookupArray(reply, "writeErrors") {
			d, _ := we.DocumentOK()
			werrs = append(werrs, withFields(d, "index", int32(i)))
			stmtErr = true
		}
		if sn > 0 && len(ids) > 0 {
			left, err := s.be.findByIDs(ctx, db, coll, ids)
			if err != nil {
				return nil, nil, err
			}
			for _, id := range ids {
				if left[valueKey(id)] != nil {
					continue
				}
				ev := s.newEvent("delete", db, coll)
				ev.docKey = idDoc(id)
				ev.pre = preMap[valueKey(id)]
				evs = append(evs, ev)
			}
		}
		if stmtErr && ord {
			break
		}
	}
	out := bson.D{{Key: "n", Value: int32(n)}}
	if len(werrs) > 0 {
		out = append(out, bson.E{Key: "writeErrors", Value: arrayOf(werrs)})
	}
	out = append(out, bson.E{Key: "ok", Value: 1.0})
	return mustRaw(out), evs, nil
}

// ------------------------------------------------------------ findAndModify --

func (s *Server) doFindAndModify(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	known := s.catalogGet(ctx, db, coll) != nil
	q := lookupDoc(cmd, "query")
	sort := lookupDoc(cmd, "sort")
	u := cmd.Lookup("update")
	remove := lookupBool(cmd, "remove")
	pres, err := s.be.find(ctx, db, coll, q, matchOpts(cmd, 1, sort)...)
	if err != nil {
		pres = nil
	}
	ids, preMap := idsOf(pres)
	fwd := sanitize(cmd)
	if len(ids) == 1 && (remove || !positional(u)) {
		fwd = withFields(fwd, "query", idDoc(ids[0]))
	}
	reply, err := s.be.run(ctx, db, fwd)
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	leo := lookupDoc(reply, "lastErrorObject")
	n, _ := lookupInt(leo, "n")
	var evs []*event
	switch {
	case remove:
		if n > 0 && len(ids) == 1 {
			ev := s.newEvent("delete", db, coll)
			ev.docKey = idDoc(ids[0])
			ev.pre = preMap[valueKey(ids[0])]
			evs = append(evs, ev)
		}
	default:
		if up, err := leo.LookupErr("upserted"); err == nil {
			posts, err := s.be.findByIDs(ctx, db, coll, []bson.RawValue{up})
			if err != nil {
				return nil, nil, err
			}
			if d := posts[valueKey(up)]; d != nil {
				ev := s.newEvent("insert", db, coll)
				ev.docKey = idDoc(up)
				ev.doc = d
				evs = append(evs, ev)
			}
		} else if len(ids) == 1 && n > 0 {
			posts, err := s.be.findByIDs(ctx, db, coll, ids)
			if err != nil {
				return nil, nil, err
			}
			evs = append(evs, s.changeEvents(db, coll, ids, preMap, posts, u, cmd)...)
		}
	}
	return reply, s.withCreate(known, db, coll, evs), nil
}
