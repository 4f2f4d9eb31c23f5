package mongoshim

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// findCursor serves a find with min/max on {_id: 1}: the backend ignores
// min/max, so the shim reads the collection sorted by _id and keeps
// [min, max) in MongoDB's BSON order (Compare). Unranged, it serves any
// backend cursor in MongoDB's batches (batched.go).
type findCursor struct {
	mu       sync.Mutex
	ranged   bool // a min/max find: filter by _id, apply skip and limit
	ns       string
	db, coll string
	beID     int64
	beColl   string
	buf      []bson.Raw
	min, max bson.RawValue
	skip     int64
	limit    int64 // 0 = none
	returned int64
	done     bool
	used     time.Time
}

func (f *findCursor) idle() time.Time { return f.used }

func (f *findCursor) kill(ctx context.Context, s *Server) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeBackend(ctx, s)
}

func (f *findCursor) closeBackend(ctx context.Context, s *Server) {
	if f.beID != 0 {
		_, _ = s.be.run(ctx, f.db, mustRaw(bson.D{{Key: "killCursors", Value: f.beColl}, {Key: "cursors", Value: bson.A{f.beID}}}))
		f.beID = 0
	}
}

// boundID reads the _id bound of a min/max document.
func boundID(d bson.Raw, which string) (bson.RawValue, error) {
	elems, err := d.Elements()
	if err != nil || len(elems) != 1 || elems[0].Key() != "_id" {
		return bson.RawValue{}, shimErr(codeBadValue, "mongoshim serves find "+which+"() only on the _id index: "+which+" must be {_id: <value>}, got "+d.String())
	}
	return elems[0].Value(), nil
}

func (s *Server) findMinMax(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	coll := collOf(cmd)
	f := &findCursor{ns: db + "." + coll, db: db, coll: coll, used: time.Now(), ranged: true}
	if d := lookupDoc(cmd, "min"); d != nil {
		v, err := boundID(d, "min")
		if err != nil {
			return nil, err
		}
		f.min = v
	}
	if d := lookupDoc(cmd, "max"); d != nil {
		v, err := boundID(d, "max")
		if err != nil {
			return nil, err
		}
		f.max = v
	}
	if h, err := cmd.LookupErr("hint"); err == nil {
		ok := false
		if hs, isStr := h.StringValueOK(); isStr {
			ok = hs == "_id_"
		} else if hd, isDoc := h.DocumentOK(); isDoc {
			ok = hd.String() == `{"_id": {"$numberInt":"1"}}` || strings.ReplaceAll(hd.String(), " ", "") == `{"_id":1}`
			if e, err := hd.IndexErr(0); err == nil && e.Key() == "_id" {
				if n, isNum := asInt64(e.Value()); isNum && n == 1 {
					ok = true
				}
			}
		}
		if !ok {
			return nil, shimErr(codeBadValue, "mongoshim serves find min()/max() only with hint {_id: 1}")
		}
	}
	if sd := lookupDoc(cmd, "sort"); sd != nil {
		e, err := sd.IndexErr(0)
		n, _ := asInt64(e.Value())
		if err != nil || e.Key() != "_id" || n != 1 || len(mustElems(sd)) != 1 {
			return nil, shimErr(codeBadValue, "mongoshim serves find min()/max() only sorted by {_id: 1}")
		}
	}
	f.skip, _ = lookupInt(cmd, "skip")
	f.limit, _ = lookupInt(cmd, "limit")
	if f.limit < 0 {
		f.limit = -f.limit
	}
	filter := lookupDoc(cmd, "filter")
	// a same-type range can be narrowed on the backend (type bracketing keeps
	// the rest of the [min, max) interval out only when both ends share a type)
	if f.min.Type != 0 && f.max.Type != 0 && bracket(f.min.Type) == bracket(f.max.Type) &&
		f.min.Type != bson.TypeMinKey && f.max.Type != bson.TypeMaxKey {
		rng := mustRaw(bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: f.min}, {Key: "$lt", Value: f.max}}}})
		if filter != nil && len(mustElems(filter)) > 0 {
			filter = mustRaw(bson.D{{Key: "$and", Value: bson.A{filter, rng}}})
		} else {
			filter = rng
		}
	}
	if filter == nil {
		filter = emptyDoc
	}
	fwd := rebuild(sanitize(cmd), func(k string, v bson.RawValue) (bson.RawValue, bool) {
		switch k {
		case "min", "max", "hint", "skip", "limit", "batchSize", "singleBatch", "sort", "filter":
			return v, false
		}
		return v, true
	})
	fwd = withFields(fwd, "filter", filter, "sort", bson.D{{Key: "_id", Value: int32(1)}}, "batchSize", int32(1000))
	reply, err := s.be.command(ctx, db, fwd)
	if err != nil {
		if reply != nil {
			return reply, nil
		}
		return nil, err
	}
	f.buf = rawDocs(lookupArray(reply, "cursor", "firstBatch"))
	f.beID, _ = lookupInt(reply, "cursor", "id")
	_, f.beColl = splitNS(lookupString(reply, "cursor", "ns"))
	if f.beColl == "" {
		f.beColl = coll
	}
	batch, err := f.first(ctx, s, firstBatchSize(cmd))
	if err != nil {
		return nil, err
	}
	var id int64
	if lookupBool(cmd, "singleBatch") {
		f.done = true
		f.closeBackend(ctx, s)
	}
	if !f.done {
		id = s.cursors.add(f)
	}
	return cursorReply("firstBatch", batch, nil, id, f.ns), nil
}

func mustElems(d bson.Raw) []bson.RawElement {
	e, _ := d.Elements()
	return e
}

// rawDocs lists the documents of an array value. They share the reply's
// buffer, which readMessage allocates afresh for every message: no copy.
func rawDocs(vals []bson.RawValue) []bson.Raw {
	out := make([]bson.Raw, 0, len(vals))
	for _, v := range vals {
		if d, ok := v.DocumentOK(); ok {
			out = append(out, d)
		}
	}
	return out
}

// next returns up to n documents in [min, max) (n <= 0: as many as fit in
// 16 MiB), or of the backend cursor as it is when the cursor is not ranged.
func (f *findCursor) next(ctx context.Context, s *Server, n int64) ([]bson.Raw, error) {
	var out []bson.Raw
	size := 0
	for !f.done && (n <= 0 || int64(len(out)) < n) {
		if f.limit > 0 && f.returned >= f.limit {
			f.done = true
			break
		}
		if len(f.buf) == 0 {
			if f.beID == 0 {
				f.done = true
				break
			}
			reply, err := s.be.command(ctx, f.db, mustRaw(bson.D{{Key: "getMore", Value: f.beID}, {Key: "collection", Value: f.beColl}, {Key: "batchSize", Value: int32(1000)}}))
			if err != nil {
				return nil, err
			}
			f.buf = rawDocs(lookupArray(reply, "cursor", "nextBatch"))
			f.beID, _ = lookupInt(reply, "cursor", "id")
			continue
		}
		d := f.buf[0]
		if len(out) > 0 && size+len(d) > maxBatchBytes {
			break // as MongoDB: a batch holds at most 16 MiB of documents (at least one)
		}
		f.buf = f.buf[1:]
		if !f.ranged {
			out = append(out, d)
			size += len(d)
			f.returned++
			continue
		}
		id, err := d.LookupErr("_id")
		if err != nil {
			continue
		}
		if f.min.Type != 0 && Compare(id, f.min) < 0 {
			continue
		}
		if f.max.Type != 0 && Compare(id, f.max) >= 0 {
			f.done = true
			f.closeBackend(ctx, s)
			break
		}
		if f.skip > 0 {
			f.skip--
			continue
		}
		out = append(out, d)
		size += len(d)
		f.returned++
	}
	if f.done {
		f.closeBackend(ctx, s)
	}
	return out, nil
}

func (f *findCursor) getMore(ctx context.Context, s *Server, cmd bson.Raw) (bson.Raw, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used = time.Now()
	id, _ := asInt64(firstValue(cmd))
	n, _ := lookupInt(cmd, "batchSize")
	batch, err := f.next(ctx, s, n)
	if err != nil {
		s.cursors.remove(id)
		return nil, err
	}
	if !f.ranged && len(f.buf) == 0 && f.beID == 0 {
		f.done = true // exhausted: this batch carries id 0, as MongoDB's last one does
	}
	if f.done {
		s.cursors.remove(id)
		id = 0
	}
	return cursorReply("nextBatch", batch, nil, id, f.ns), nil
}

// aggregate runs a non-change-stream aggregate, served in MongoDB's batches
// (batched.go); $sample pipelines are
// retried, as mongo-java-server's $sample fails intermittently ("Comparison
// method violates its general contract!").
func (s *Server) aggregate(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	if p := lookupArray(cmd, "pipeline"); len(p) == 1 {
		if d, ok := p[0].DocumentOK(); ok && cmdName(d) == "$collStats" {
			return s.collStatsStage(ctx, db, cmd, lookupDoc(d, "$collStats"))
		}
	}
	sample := false
	for _, st := range lookupArray(cmd, "pipeline") {
		if d, ok := st.DocumentOK(); ok && cmdName(d) == "$sample" {
			sample = true
		}
	}
	for attempt := 0; ; attempt++ {
		reply, err := s.batched(ctx, db, cmd)
		if err != nil || !sample || replyOK(reply) || attempt >= 5 || !strings.Contains(lookupString(reply, "errmsg"), "general contract") {
			return reply, err
		}
	}
}

// listCollections forwards, adding what the shim knows: info.uuid and
// options.changeStreamPreAndPostImages.
func (s *Server) listCollections(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	reply, err := s.forward(ctx, db, cmd)
	if err == nil && internalDB(db) && !replyOK(reply) {
		// mongo-java-server runs no listCollections on admin/config/local:
		// answer with their (empty) list of user-visible collections
		return cursorReply("firstBatch", nil, nil, 0, db+".$cmd.listCollections"), nil
	}
	if err != nil || !replyOK(reply) {
		return reply, err
	}
	batch := rawDocs(lookupArray(reply, "cursor", "firstBatch"))
	if !lookupBool(cmd, "nameOnly") {
		s.listedOptions(ctx, db, batch)
	}
	// mongo-java-server ignores the filter: apply it here, to the entries
	// as listed (name, type, options, info).
	if f := lookupDoc(cmd, "filter"); len(f) > len(emptyDoc) {
		m, err := newMatcher(f)
		if err != nil {
			return nil, shimErr(codeBadValue, "listCollections filter: "+err.Error())
		}
		kept := batch[:0]
		for _, d := range batch {
			if m.match(d) {
				kept = append(kept, d)
			}
		}
		batch = kept
	}
	cur := lookupDoc(reply, "cursor")
	return withFields(reply, "cursor", withFields(cur, "firstBatch", arrayOf(batch))), nil
}

// listedOptions completes the collections' entries of a listCollections
// batch in place: the shim's collection UUIDs, the options the backend drops
// and changeStreamPreAndPostImages, in MongoDB's order.
func (s *Server) listedOptions(ctx context.Context, db string, batch []bson.Raw) {
	_ = s.catalogLoad(ctx, db)
	for i, d := range batch {
		name := lookupString(d, "name")
		s.cat.mu.Lock()
		ci := s.cat.colls[db+"."+name]
		s.cat.mu.Unlock()
		if ci == nil || ci.view || lookupString(d, "type") == "view" {
			continue
		}
		info := lookupDoc(d, "info")
		if info == nil {
			info = mustRaw(bson.D{{Key: "readOnly", Value: false}})
		}
		if !hasKey(info, "uuid") {
			info = withFields(info, "uuid", ci.uuid)
		}
		d = withFields(d, "info", info)
		opts := lookupDoc(d, "options")
		if opts == nil {
			opts = emptyDoc
		}
		s.cat.mu.Lock()
		extra, images := ci.opts, ci.images
		s.cat.mu.Unlock()
		for _, e := range mustElems(extra) {
			if !hasKey(opts, e.Key()) {
				opts = withFields(opts, e.Key(), e.Value())
			}
		}
		if images {
			opts = withFields(opts, "changeStreamPreAndPostImages", bson.D{{Key: "enabled", Value: true}})
		}
		d = withFields(d, "options", inOptionsOrder(opts))
		batch[i] = d
	}
}

// optionsOrder is the order in which MongoDB lists a collection's options
// (CollectionOptions::appendBSON), whatever order they were given in: a
// verifier comparing two clusters' options byte for byte relies on it.
var optionsOrder = []string{"capped", "size", "max", "autoIndexId", "temp", "recordPreImages",
	"changeStreamPreAndPostImages", "storageEngine", "indexOptionDefaults", "validator", "validationLevel",
	"validationAction", "collation", "clusteredIndex", "expireAfterSeconds", "viewOn", "pipeline", "idIndex", "timeseries"}

// inOptionsOrder returns opts with the options MongoDB orders in
// optionsOrder, then any others in their given order.
func inOptionsOrder(opts bson.Raw) bson.Raw {
	out := bson.D{}
	for _, k := range optionsOrder {
		if v, err := opts.LookupErr(k); err == nil {
			out = append(out, bson.E{Key: k, Value: v})
		}
	}
	for _, e := range mustElems(opts) {
		if !slices.Contains(optionsOrder, e.Key()) {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return mustRaw(out)
}

// collStatsStage serves a lone $collStats stage (the backend has only the
// collStats command): storageStats and count from collStats.
func (s *Server) collStatsStage(ctx context.Context, db string, cmd, spec bson.Raw) (bson.Raw, error) {
	coll := collOf(cmd)
	st, err := s.be.command(ctx, db, mustRaw(bson.D{{Key: "collStats", Value: coll}}))
	if err != nil {
		if st != nil {
			return st, nil
		}
		return nil, err
	}
	host, _ := os.Hostname()
	d := bson.D{{Key: "ns", Value: db + "." + coll}, {Key: "host", Value: host}, {Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())}}
	if hasKey(spec, "storageStats") {
		ss := bson.D{}
		for _, k := range []string{"size", "count", "avgObjSize", "storageSize", "nindexes", "totalIndexSize", "indexSizes"} {
			if v, err := st.LookupErr(k); err == nil {
				ss = append(ss, bson.E{Key: k, Value: v})
			}
		}
		d = append(d, bson.E{Key: "storageStats", Value: ss})
	}
	if hasKey(spec, "count") {
		d = append(d, bson.E{Key: "count", Value: st.Lookup("count")})
	}
	return cursorReply("firstBatch", []bson.Raw{mustRaw(d)}, nil, 0, db+"."+coll), nil
}
