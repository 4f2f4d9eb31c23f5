package mongoshim

import (
	"context"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ddlOptions are the command's options as an operationDescription: every
// field but the command name and the generic ones.
func ddlOptions(cmd bson.Raw, skip ...string) bson.Raw {
	sk := map[string]bool{"comment": true, "maxTimeMS": true}
	for _, k := range skip {
		sk[k] = true
	}
	first := true
	return rebuild(cmd, func(k string, v bson.RawValue) (bson.RawValue, bool) {
		if first {
			first = false
			return v, false
		}
		return v, !stripped[k] && !sk[k] && k != "readConcern"
	})
}

func (s *Server) doCreate(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	if err := s.catalogLoad(ctx, db); err != nil {
		return nil, nil, err
	}
	images := lookupBool(cmd, "changeStreamPreAndPostImages", "enabled")
	fwd := rebuild(sanitize(cmd), func(k string, v bson.RawValue) (bson.RawValue, bool) {
		return v, k != "changeStreamPreAndPostImages"
	})
	reply, err := s.be.run(ctx, db, fwd)
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	view := hasKey(cmd, "viewOn")
	ci := &collInfo{uuid: newUUID(), images: images, view: view}
	if !view {
		ci.opts = mergeOptions(nil, cmd)
	}
	s.catalogPut(db, coll, ci)
	ev := s.newEvent("create", db, coll)
	ev.expanded = true
	desc := ddlOptions(cmd)
	if !view && !hasKey(desc, "idIndex") {
		desc = withFields(mustRaw(bson.D{{Key: "idIndex", Value: idIndexSpec}}), flatten(desc)...)
	}
	ev.opDesc = desc
	if view {
		ev.uuid = bson.RawValue{} // views have no UUID
	}
	return reply, []*event{ev}, nil
}

// flatten turns a document into withFields' key, value list.
func flatten(d bson.Raw) []any {
	var kv []any
	elems, _ := d.Elements()
	for _, e := range elems {
		kv = append(kv, e.Key(), e.Value())
	}
	return kv
}

func (s *Server) doDrop(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	ci := s.catalogGet(ctx, db, coll)
	reply, err := s.forward(ctx, db, cmd)
	if err != nil || !replyOK(reply) || ci == nil {
		if err == nil && replyOK(reply) {
			s.catalogDelete(db, coll)
		}
		return reply, nil, err
	}
	ev := s.newEvent("drop", db, coll)
	ev.expanded = ci.view
	s.catalogDelete(db, coll)
	return reply, []*event{ev}, nil
}

func (s *Server) doRename(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	from, _ := firstValue(cmd).StringValueOK()
	to := lookupString(cmd, "to")
	fdb, fcoll := splitNS(from)
	tdb, tcoll := splitNS(to)
	ci := s.catalogGet(ctx, fdb, fcoll)
	target := s.catalogGet(ctx, tdb, tcoll)
	if fdb != tdb && ci != nil && s.shardKeyOf(fdb, fcoll) != nil {
		return nil, nil, shimErr(codeIllegalOperation, "cannot rename sharded collection "+from+" to another database")
	}
	var reply bson.Raw
	var err error
	if fdb != tdb || s.cfg.RenameByCopy {
		reply, err = s.renameByCopy(ctx, db, cmd, fdb, fcoll, tdb, tcoll)
	} else {
		reply, err = s.forward(ctx, db, cmd)
	}
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	if ci == nil {
		ci = &collInfo{uuid: newUUID()}
	}
	ev := s.newEvent("rename", fdb, fcoll)
	ev.toDB, ev.toColl = tdb, tcoll
	desc := bson.D{{Key: "to", Value: bson.D{{Key: "db", Value: tdb}, {Key: "coll", Value: tcoll}}}}
	if target != nil {
		desc = append(desc, bson.E{Key: "dropTarget", Value: target.uuid})
	}
	ev.opDesc = mustRaw(desc)
	s.catalogDelete(fdb, fcoll)
	s.catalogDelete(tdb, tcoll)
	s.catalogPut(tdb, tcoll, ci)
	return reply, []*event{ev}, nil
}

func (s *Server) doDropDatabase(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	if err := s.catalogLoad(ctx, db); err != nil {
		return nil, nil, err
	}
	infos, err := s.be.listCollections(ctx, db, nil)
	if err != nil {
		return nil, nil, err
	}
	reply, err := s.forward(ctx, db, cmd)
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	var evs []*event
	for _, in := range infos {
		name := lookupString(in, "name")
		if name == "" || strings.HasPrefix(name, "system.") {
			continue
		}
		ev := s.newEvent("drop", db, name)
		ev.expanded = lookupString(in, "type") == "view"
		evs = append(evs, ev)
	}
	if len(evs) > 0 {
		evs = append(evs, &event{op: "dropDatabase", db: db})
	}
	s.catalogDropDB(db)
	return reply, evs, nil
}

func indexNames(specs []bson.Raw) map[string]bson.Raw {
	m := map[string]bson.Raw{}
	for _, sp := range specs {
		m[lookupString(sp, "name")] = sp
	}
	return m
}

func (s *Server) doCreateIndexes(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	known := s.catalogGet(ctx, db, coll) != nil
	before, err := s.be.listIndexes(ctx, db, coll)
	if err != nil {
		return nil, nil, err
	}
	if !known {
		// MongoDB creates the collection implicitly. mongo-java-server
		// instead keeps placeholder ("EmptyIndex") indexes that later make
		// dropping the collection fail ("Expected [EmptyIndex[...]] to be
		// empty"), so the collection is created on the backend first.
		_, _ = s.be.run(ctx, db, mustRaw(bson.D{{Key: "create", Value: coll}}))
	}
	reply, err := s.forward(ctx, db, cmd)
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	after, err := s.be.listIndexes(ctx, db, coll)
	if err != nil {
		return nil, nil, err
	}
	var evs []*event
	if !known {
		evs = append(evs, s.implicitCreate(db, coll))
	}
	old := indexNames(before)
	for _, sp := range after {
		if _, ok := old[lookupString(sp, "name")]; ok {
			continue
		}
		ev := s.newEvent("createIndexes", db, coll)
		ev.expanded = true
		ev.opDesc = mustRaw(bson.D{{Key: "indexes", Value: bson.A{sp}}})
		evs = append(evs, ev)
	}
	return reply, evs, nil
}

func (s *Server) doDropIndexes(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	before, err := s.be.listIndexes(ctx, db, coll)
	if err != nil {
		return nil, nil, err
	}
	var reply bson.Raw
	if keys, ok := dropTargets(cmd, before); ok {
		reply, err = s.dropIndexesByKey(ctx, db, coll, keys, len(before))
	} else {
		reply, err = s.forward(ctx, db, cmd)
	}
	if err != nil || !replyOK(reply) {
		return reply, nil, err
	}
	after, err := s.be.listIndexes(ctx, db, coll)
	if err != nil {
		return nil, nil, err
	}
	left := indexNames(after)
	var evs []*event
	for _, sp := range before {
		if _, ok := left[lookupString(sp, "name")]; ok {
			continue
		}
		ev := s.newEvent("dropIndexes", db, coll)
		ev.expanded = true
		ev.opDesc = mustRaw(bson.D{{Key: "indexes", Value: bson.A{sp}}})
		evs = append(evs, ev)
	}
	return reply, evs, nil
}

// doCollMod is served by the shim (mongo-java-server has no collMod):
// changeStreamPreAndPostImages is the shim's own state; an index's
// expireAfterSeconds is changed by rebuilding the index on the backend; a
// view's viewOn/pipeline by recreating the view; validator / validation*
// and other options are accepted and dropped, as the backend drops them on
// create. The modify event carries the options.
func (s *Server) doCollMod(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, []*event, error) {
	coll := collOf(cmd)
	ci := s.catalogGet(ctx, db, coll)
	if ci == nil {
		return nil, nil, shimErr(codeNamespaceNotFound, "ns does not exist: "+db+"."+coll)
	}
	out := bson.D{}
	if idx := lookupDoc(cmd, "index"); idx != nil {
		specs, err := s.be.listIndexes(ctx, db, coll)
		if err != nil {
			return nil, nil, err
		}
		var spec bson.Raw
		for _, sp := range specs {
			if name := lookupString(idx, "name"); name != "" && lookupString(sp, "name") == name {
				spec = sp
			}
			if kp := lookupDoc(idx, "keyPattern"); kp != nil && bson.Raw(lookupDoc(sp, "key")).String() == kp.String() {
				spec = sp
			}
		}
		if spec == nil {
			return nil, nil, shimErr(codeIndexNotFound, "cannot find index "+idx.String()+" for ns "+db+"."+coll)
		}
		if exp, err := idx.LookupErr("expireAfterSeconds"); err == nil {
			oldExp, hadExp := lookupInt(spec, "expireAfterSeconds")
			if !hadExp {
				return nil, nil, shimErr(codeInvalidOptions, "no expireAfterSeconds field to update")
			}
			nspec := rebuild(withFields(spec, "expireAfterSeconds", exp), func(k string, v bson.RawValue) (bson.RawValue, bool) {
				return v, k != "v" && k != "ns"
			})
			// by key pattern, not by name: see dropTargets
			if _, err := s.be.command(ctx, db, mustRaw(bson.D{{Key: "dropIndexes", Value: coll}, {Key: "index", Value: lookupDoc(spec, "key")}})); err != nil {
				return nil, nil, err
			}
			if _, err := s.be.command(ctx, db, mustRaw(bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{nspec}}})); err != nil {
				return nil, nil, err
			}
			newExp, _ := asInt64(exp)
			out = append(out, bson.E{Key: "expireAfterSeconds_old", Value: oldExp}, bson.E{Key: "expireAfterSeconds_new", Value: newExp})
		}
	}
	s.cat.mu.Lock()
	if v := lookupDoc(cmd, "changeStreamPreAndPostImages"); v != nil {
		ci.images = lookupBool(v, "enabled")
	}
	if !ci.view {
		ci.opts = mergeOptions(ci.opts, cmd)
	}
	s.cat.mu.Unlock()
	if ci.view && (hasKey(cmd, "viewOn") || hasKey(cmd, "pipeline")) {
		info, err := s.be.collectionInfo(ctx, db, coll)
		if err != nil || info == nil {
			return nil, nil, shimErr(codeNamespaceNotFound, "view "+db+"."+coll+" not found")
		}
		opts := lookupDoc(info, "options")
		viewOn, pipeline := opts.Lookup("viewOn"), opts.Lookup("pipeline")
		if v, err := cmd.LookupErr("viewOn"); err == nil {
			viewOn = v
		}
		if v, err := cmd.LookupErr("pipeline"); err == nil {
			pipeline = v
		}
		if _, err := s.be.command(ctx, db, mustRaw(bson.D{{Key: "drop", Value: coll}})); err != nil {
			return nil, nil, err
		}
		if _, err := s.be.command(ctx, db, mustRaw(bson.D{{Key: "create", Value: coll}, {Key: "viewOn", Value: viewOn}, {Key: "pipeline", Value: pipeline}})); err != nil {
			return nil, nil, err
		}
	}
	out = append(out, bson.E{Key: "ok", Value: 1.0})
	ev := s.newEvent("modify", db, coll)
	ev.expanded = true
	ev.opDesc = ddlOptions(cmd)
	return mustRaw(out), []*event{ev}, nil
}

// dropTargets returns the key patterns of the indexes a dropIndexes command
// names (a name, a list of names or "*"), so that they can be dropped by key
// pattern; ok is false when the command should go to the backend as it is (it
// gives a key pattern already, names an index that does not exist or _id_,
// or a key pattern is not unique in the collection).
//
// Why: mongo-java-server 1.47.0 drops an index named N by deleting
// {name: N} from the database's index catalog (AbstractMongoDatabase
// .dropIndex), which also deletes the catalog entries of same-named indexes
// of every other collection of the database ("s_1" on c1 and on c2). Their
// in-memory indexes outlive the entries, and dropping such a collection later
// fails its internal assertion "Expected [EmptyIndex[name=s_1]] to be empty"
// (dropCollection drops only the indexes its catalog lists). A drop by key
// pattern deletes only the entry with this collection's {key, ns}.
func dropTargets(cmd bson.Raw, specs []bson.Raw) ([]bson.Raw, bool) {
	v, err := cmd.LookupErr("index")
	if err != nil {
		return nil, false
	}
	var names []string
	switch v.Type {
	case bson.TypeString:
		if n := v.StringValue(); n == "*" {
			for _, sp := range specs {
				if lookupString(sp, "name") != "_id_" {
					names = append(names, lookupString(sp, "name"))
				}
			}
		} else {
			names = []string{n}
		}
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		for _, e := range vals {
			n, ok := e.StringValueOK()
			if !ok {
				return nil, false
			}
			names = append(names, n)
		}
	default:
		return nil, false
	}
	byName := indexNames(specs)
	seen := map[string]int{}
	for _, sp := range specs {
		seen[lookupDoc(sp, "key").String()]++
	}
	var keys []bson.Raw
	for _, n := range names {
		sp, ok := byName[n]
		if !ok || n == "_id_" {
			return nil, false
		}
		k := lookupDoc(sp, "key")
		if k == nil || seen[k.String()] != 1 {
			return nil, false
		}
		keys = append(keys, k)
	}
	return keys, true
}

// dropIndexesByKey drops each index of db.coll by its key pattern and
// answers like MongoDB ({nIndexesWas, ok}), or with the first failure.
func (s *Server) dropIndexesByKey(ctx context.Context, db, coll string, keys []bson.Raw, was int) (bson.Raw, error) {
	for _, k := range keys {
		reply, err := s.be.run(ctx, db, mustRaw(bson.D{{Key: "dropIndexes", Value: coll}, {Key: "index", Value: k}}))
		if err != nil || !replyOK(reply) {
			return reply, err
		}
	}
	return mustRaw(bson.D{{Key: "nIndexesWas", Value: int32(was)}, {Key: "ok", Value: 1.0}}), nil
}

// renameByCopy renames fdb.fcoll to tdb.tcoll the way MongoDB renames across
// databases: create the target, build its indexes, copy the documents, drop
// the source. The backend's own renameCollection is wrong in two cases:
//   - across databases, mongo-java-server 1.47.0 leaves the index catalog
//     entries in the old database (dropping the target later fails with
//     "Expected [...UniqueIndex[name=_id_]] to be empty"), and throws a
//     NullPointerException when the target database is new;
//   - with the h2 back end (Config.RenameByCopy), H2Database.moveCollection
//     renames the storage maps after the collection already carries its new
//     name, i.e. not at all: a collection created later under the old name
//     shows the renamed collection's documents, and a restart loses them.
//
// Cases the copy does not cover (no source, a view, the same name, an
// existing target without dropTarget) go to the backend for its answer.
func (s *Server) renameByCopy(ctx context.Context, db string, cmd bson.Raw, fdb, fcoll, tdb, tcoll string) (bson.Raw, error) {
	src, err := s.be.collectionInfo(ctx, fdb, fcoll)
	if err != nil {
		return nil, err
	}
	dst, err := s.be.collectionInfo(ctx, tdb, tcoll)
	if err != nil {
		return nil, err
	}
	if src == nil || lookupString(src, "type") == "view" || fdb+"."+fcoll == tdb+"."+tcoll ||
		dst != nil && !lookupBool(cmd, "dropTarget") {
		return s.forward(ctx, db, cmd)
	}
	run := func(db string, c bson.D) (bson.Raw, bool, error) {
		reply, err := s.be.run(ctx, db, mustRaw(c))
		if err == nil && replyOK(reply) {
			if we := lookupArray(reply, "writeErrors"); len(we) > 0 {
				return withFields(emptyDoc, "ok", 0.0, "errmsg", "renameCollection: copying "+fdb+"."+fcoll+": "+we[0].String()), false, nil
			}
		}
		return reply, err == nil && replyOK(reply), err
	}
	if dst != nil {
		if reply, ok, err := run(tdb, bson.D{{Key: "drop", Value: tcoll}}); !ok {
			return reply, err
		}
	}
	if reply, ok, err := run(tdb, bson.D{{Key: "create", Value: tcoll}}); !ok {
		return reply, err
	}
	specs, err := s.be.listIndexes(ctx, fdb, fcoll)
	if err != nil {
		return nil, err
	}
	var idx bson.A
	for _, sp := range specs {
		if lookupString(sp, "name") != "_id_" {
			idx = append(idx, rebuild(sp, func(k string, v bson.RawValue) (bson.RawValue, bool) { return v, k != "v" && k != "ns" }))
		}
	}
	if len(idx) > 0 {
		if reply, ok, err := run(tdb, bson.D{{Key: "createIndexes", Value: tcoll}, {Key: "indexes", Value: idx}}); !ok {
			return reply, err
		}
	}
	docs, err := s.be.find(ctx, fdb, fcoll, nil)
	if err != nil {
		return nil, err
	}
	for len(docs) > 0 {
		n, size := 0, 0
		for n < len(docs) && n < 1000 && size < 8<<20 {
			size += len(docs[n])
			n++
		}
		if reply, ok, err := run(tdb, bson.D{{Key: "insert", Value: tcoll}, {Key: "documents", Value: arrayOf(docs[:n])}, {Key: "ordered", Value: true}}); !ok {
			return reply, err
		}
		docs = docs[n:]
	}
	if reply, ok, err := run(fdb, bson.D{{Key: "drop", Value: fcoll}}); !ok {
		return reply, err
	}
	return okReply(), nil
}
