package mongoshim

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Mongos mode (Config.Mongos): the shim presents itself as the mongos of a
// sharded cluster with one shard, as far as a driver and the source
// connector see it: hello says msg "isdbgrid" and carries no replica-set
// fields (the Go driver then sees a Sharded topology), enableSharding and
// shardCollection are admin commands, config.collections lists the sharded
// collections in MongoDB's format, and the change events of a sharded
// collection carry MongoDB's documentKey: the shard key fields, then _id.
// There is one shard, so no chunks, no migrations, no config servers, no
// per-shard oplogs (docs/testing.md).

// shardInfo is a sharded collection's entry of config.collections.
type shardInfo struct {
	key     bson.Raw // the shard key pattern, as given
	unique  bool
	epoch   bson.ObjectID  // lastmodEpoch
	ts      bson.Timestamp // timestamp: the cluster time of the shardCollection
	lastmod time.Time
}

// shardKeyOf returns db.coll's shard key pattern (nil when not sharded).
func (s *Server) shardKeyOf(db, coll string) bson.Raw {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	if ci := s.cat.colls[db+"."+coll]; ci != nil && ci.shard != nil {
		return ci.shard.key
	}
	return nil
}

// documentKey is the documentKey MongoDB puts on a change event (and in the
// oplog entry's o2) of doc in a collection sharded on shardKey: the shard key
// fields in shard key order, named by their (dotted) path, with doc's values
// (a field the document lacks is left out), then _id unless the shard key has
// it (CollectionMetadata::extractDocumentKey).
func documentKey(doc, shardKey bson.Raw, id bson.RawValue) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(nil)
	hasID := false
	for _, e := range mustElems(shardKey) {
		path := e.Key()
		if path == "_id" {
			hasID = true
		}
		v := lookupPath(doc, path)
		if v.Type == 0 {
			continue
		}
		b = bsoncore.AppendValueElement(b, path, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
	}
	if !hasID && id.Type != 0 {
		b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.Raw(b)
}

// shardDocumentKeys gives the CRUD events of sharded collections their
// documentKey: from the inserted document, and for updates, replaces and
// deletes from the document as it was before the write (MongoDB takes an
// update's document key from the pre-image: update_stage.cpp). The caller
// holds writeMu.
func (s *Server) shardDocumentKeys(evs []*event) {
	if !s.cfg.Mongos {
		return
	}
	for _, ev := range evs {
		var src bson.Raw
		switch ev.op {
		case "insert":
			src = ev.doc
		case "update", "replace", "delete":
			src = ev.pre
			if src == nil {
				src = ev.post
			}
		default:
			continue
		}
		key := s.shardKeyOf(ev.db, ev.coll)
		if key == nil || src == nil {
			continue
		}
		ev.docKey = documentKey(src, key, ev.docKey.Lookup("_id"))
	}
}

// enableSharding: {enableSharding: "db"} on admin (mongos mode; a replica
// set forwards it to the backend, which does not know it either). Since MongoDB 6.0
// shardCollection does not need it; it is accepted and recorded nowhere
// (one shard, which is every database's primary shard).
func (s *Server) enableSharding(db string, cmd bson.Raw) (bson.Raw, error) {
	if db != "admin" {
		return nil, shimErr(codeUnauthorized, "enableSharding may only be run against the admin database.")
	}
	name, ok := firstValue(cmd).StringValueOK()
	if !ok || name == "" || strings.Contains(name, ".") {
		return nil, shimErr(codeInvalidNamespace, "invalid db name specified: "+name)
	}
	if internalDB(name) {
		return nil, shimErr(codeInvalidOptions, "Enabling sharding on the "+name+" database is not allowed")
	}
	return okReply(), nil
}

// shardCollection: {shardCollection: "db.coll", key: {...}, unique: bool}
// on admin (mongos mode). The shard key is 1 or "hashed" per field (at most one hashed).
// As MongoDB does, it creates the collection and the shard key index when
// the collection is missing or empty, and otherwise requires an index that
// starts with the shard key. Sharding again with the same key is a no-op;
// with another, AlreadyInitialized. It records a shardCollection event
// (shown with showExpandedEvents, as MongoDB 6.0+ does).
func (s *Server) shardCollection(ctx context.Context, db string, cmd bson.Raw, opTime *ts) (bson.Raw, error) {
	if db != "admin" {
		return nil, shimErr(codeUnauthorized, "shardCollection may only be run against the admin database.")
	}
	ns, _ := firstValue(cmd).StringValueOK()
	ndb, ncoll := splitNS(ns)
	if ndb == "" || ncoll == "" {
		return nil, shimErr(codeInvalidNamespace, "Invalid namespace specified '"+ns+"'")
	}
	if internalDB(ndb) || strings.HasPrefix(ncoll, "system.") {
		return nil, shimErr(codeIllegalOperation, "can't shard "+ns)
	}
	key := lookupDoc(cmd, "key")
	if err := checkShardKey(key); err != nil {
		return nil, err
	}
	key = copyRaw(key)
	unique := lookupBool(cmd, "unique")

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.blocked.Load() && !mayBypassWriteBlock(ctx) {
		return blockedReply(cmd)
	}
	ci := s.catalogGet(ctx, ndb, ncoll)
	if ci != nil && ci.view {
		return nil, shimErr(codeCommandNotSupportedOnView, "Namespace "+ns+" is a view, not a collection")
	}
	if ci != nil {
		s.cat.mu.Lock()
		sh := ci.shard
		s.cat.mu.Unlock()
		if sh != nil {
			if bytes.Equal(sh.key, key) && sh.unique == unique {
				return mustRaw(bson.D{{Key: "collectionsharded", Value: ns}, {Key: "ok", Value: 1.0}}), nil
			}
			return nil, shimErr(codeAlreadyInitialized, "sharding already enabled for collection "+ns+" with options { key: "+sh.key.String()+" }")
		}
	}
	var evs []*event
	indexes, err := s.be.listIndexes(ctx, ndb, ncoll)
	if err != nil {
		return nil, err
	}
	if !hasShardKeyIndex(indexes, key) {
		some, err := s.be.find(ctx, ndb, ncoll, nil, bson.E{Key: "limit", Value: int32(1)})
		if err != nil {
			return nil, err
		}
		if len(some) > 0 {
			return nil, shimErr(codeInvalidOptions, "Please create an index that starts with the proposed shard key before sharding the collection")
		}
		if ci == nil {
			// create the collection first: createIndexes on a missing
			// collection would also report its _id index as created
			reply, cevs, err := s.doCreate(ctx, ndb, mustRaw(bson.D{{Key: "create", Value: ncoll}}))
			if err == nil {
				err = replyErr(reply)
			}
			if err != nil {
				return nil, err
			}
			evs = cevs
		}
		spec := bson.D{{Key: "key", Value: key}, {Key: "name", Value: indexName(key)}}
		if unique {
			spec = append(spec, bson.E{Key: "unique", Value: true})
		}
		reply, ievs, err := s.doCreateIndexes(ctx, ndb, mustRaw(bson.D{{Key: "createIndexes", Value: ncoll}, {Key: "indexes", Value: bson.A{spec}}}))
		if err == nil {
			err = replyErr(reply)
		}
		if err != nil {
			return nil, err
		}
		evs = append(evs, ievs...)
	}
	ci = s.catalogGet(ctx, ndb, ncoll)
	if ci == nil {
		ci = &collInfo{uuid: newUUID()}
		s.catalogPut(ndb, ncoll, ci)
	}
	ev := s.newEvent("shardCollection", ndb, ncoll)
	ev.expanded = true
	ev.opDesc = mustRaw(bson.D{{Key: "shardKey", Value: key}, {Key: "unique", Value: unique}, {Key: "presplitHashedZones", Value: false}})
	evs = append(evs, ev)
	*opTime = s.publish(evs, nil, 0)
	s.cat.mu.Lock()
	ci.shard = &shardInfo{key: key, unique: unique, epoch: bson.NewObjectID(), ts: ev.pos.ts.bson(), lastmod: time.Now()}
	s.cat.mu.Unlock()
	if err := s.saveState(false); err != nil {
		s.log.Warn("saving the state file", "err", err)
	}
	s.log.Info("collection sharded", "ns", ns, "key", key.String())
	return mustRaw(bson.D{{Key: "collectionsharded", Value: ns}, {Key: "ok", Value: 1.0}}), nil
}

// checkShardKey accepts {field: 1 | "hashed", ...} with at most one hashed
// field.
func checkShardKey(key bson.Raw) error {
	elems, err := key.Elements()
	if key == nil || err != nil || len(elems) == 0 {
		return shimErr(codeBadValue, "shardCollection needs a non-empty shard key pattern 'key'")
	}
	hashed := 0
	for _, e := range elems {
		v := e.Value()
		if s, ok := v.StringValueOK(); ok && s == "hashed" {
			hashed++
			continue
		}
		if n, ok := asInt64(v); ok && n == 1 && (v.Type != bson.TypeDouble || v.Double() == 1) {
			continue
		}
		return shimErr(codeBadValue, "Unsupported shard key pattern "+key.String()+". Pattern must either be a single hashed field, or a list of ascending fields")
	}
	if hashed > 1 {
		return shimErr(codeBadValue, "Unsupported shard key pattern "+key.String()+": at most one field may be hashed")
	}
	return nil
}

// hasShardKeyIndex reports an index whose key starts with the shard key.
func hasShardKeyIndex(specs []bson.Raw, key bson.Raw) bool {
	want := mustElems(key)
	for _, sp := range specs {
		got := mustElems(lookupDoc(sp, "key"))
		if len(got) < len(want) {
			continue
		}
		ok := true
		for i, w := range want {
			if got[i].Key() != w.Key() || !sameDirection(got[i].Value(), w.Value()) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func sameDirection(a, b bson.RawValue) bool {
	as, aStr := a.StringValueOK()
	bs, bStr := b.StringValueOK()
	if aStr || bStr {
		return aStr && bStr && as == bs
	}
	an, _ := asInt64(a)
	bn, _ := asInt64(b)
	return an == bn
}

// indexName is the default index name of a key pattern ("region_1__id_1").
func indexName(key bson.Raw) string {
	var parts []string
	for _, e := range mustElems(key) {
		v := e.Value()
		if s, ok := v.StringValueOK(); ok {
			parts = append(parts, e.Key(), s)
			continue
		}
		n, _ := asInt64(v)
		parts = append(parts, e.Key(), itoa(int(n)))
	}
	return strings.Join(parts, "_")
}

// configCollections serves find on config.collections: one document per
// sharded collection, in MongoDB's format ({_id, lastmodEpoch, lastmod,
// timestamp, uuid, key, unique, noBalance}), sorted by _id, with the filter
// applied (the change-stream $match subset: equality, comparisons, $in, …)
// and limit; projection and sort are ignored.
func (s *Server) configCollections(cmd bson.Raw) (bson.Raw, error) {
	filter := lookupDoc(cmd, "filter")
	if filter == nil {
		filter = emptyDoc
	}
	m, err := newMatcher(filter)
	if err != nil {
		return nil, shimErr(codeBadValue, "mongoshim serves find on config.collections with simple filters only: "+err.Error())
	}
	s.cat.mu.Lock()
	var docs []bson.Raw
	for ns, ci := range s.cat.colls {
		if ci.shard == nil {
			continue
		}
		docs = append(docs, mustRaw(bson.D{
			{Key: "_id", Value: ns},
			{Key: "lastmodEpoch", Value: ci.shard.epoch},
			{Key: "lastmod", Value: bson.NewDateTimeFromTime(ci.shard.lastmod)},
			{Key: "timestamp", Value: ci.shard.ts},
			{Key: "uuid", Value: ci.uuid},
			{Key: "key", Value: ci.shard.key},
			{Key: "unique", Value: ci.shard.unique},
			{Key: "noBalance", Value: false},
		}))
	}
	s.cat.mu.Unlock()
	sort.Slice(docs, func(i, j int) bool { return lookupString(docs[i], "_id") < lookupString(docs[j], "_id") })
	limit, _ := lookupInt(cmd, "limit")
	var out []bson.Raw
	for _, d := range docs {
		if !m.match(d) {
			continue
		}
		out = append(out, d)
		if limit > 0 && int64(len(out)) >= limit {
			break
		}
	}
	return cursorReply("firstBatch", out, nil, 0, "config.collections"), nil
}

// mongosReplSetGetStatus is mongos's answer to replSetGetStatus.
func mongosReplSetGetStatus() bson.Raw {
	return mustRaw(bson.D{{Key: "info", Value: "mongos"}, {Key: "ok", Value: 0.0},
		{Key: "errmsg", Value: "replSetGetStatus is not supported through mongos"}})
}
