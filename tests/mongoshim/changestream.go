package mongoshim

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxBatchBytes bounds a change stream batch (MongoDB: 16 MiB per reply).
const maxBatchBytes = 16 * 1024 * 1024

func isChangeStream(cmd bson.Raw) bool {
	p := lookupArray(cmd, "pipeline")
	if len(p) == 0 {
		return false
	}
	d, _ := p[0].DocumentOK()
	return cmdName(d) == "$changeStream"
}

// csCursor is a change stream cursor served from the shim's oplog.
type csCursor struct {
	mu            sync.Mutex
	id            int64
	ns            string
	db, coll      string
	cluster       bool
	pos           pos
	fullDoc       string
	fullDocBefore string
	expanded      bool
	stages        []csStage
	done          bool
	used          time.Time
	// split: the pipeline ends with $changeStreamSplitLargeEvent.
	split bool
	// frags are the fragments of a split event not returned yet; fragPos is
	// the event's position (c.pos moves there after its last fragment).
	frags   []bson.Raw
	fragPos pos
	// skip: resumed from fragment skip.k of the event at skip.p; the
	// fragments up to it are not returned again.
	skip struct {
		p pos
		k int
	}
}

func (c *csCursor) idle() time.Time               { return c.used }
func (c *csCursor) kill(context.Context, *Server) {}

func (s *Server) openChangeStream(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	pipeline := lookupArray(cmd, "pipeline")
	spec, _ := pipeline[0].DocumentOK()
	spec = lookupDoc(spec, "$changeStream")
	c := &csCursor{fullDoc: "default", fullDocBefore: "off", used: time.Now()}
	aggVal := firstValue(cmd)
	cluster := lookupBool(spec, "allChangesForCluster")
	switch {
	case aggVal.Type == bson.TypeString:
		c.db, c.coll = db, aggVal.StringValue()
		if internalDB(db) || strings.HasPrefix(c.coll, "system.") {
			return nil, shimErr(codeInvalidNamespace, "$changeStream may not be opened on the internal "+db+"."+c.coll+" collection")
		}
		if cluster {
			return nil, shimErr(codeInvalidOptions, "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name")
		}
		c.ns = db + "." + c.coll
	case cluster:
		if db != "admin" {
			return nil, shimErr(codeInvalidOptions, "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name")
		}
		c.cluster = true
		c.ns = "admin.$cmd.aggregate"
	default:
		if internalDB(db) {
			return nil, shimErr(codeInvalidNamespace, "$changeStream may not be opened on the internal "+db+" database")
		}
		c.db = db
		c.ns = db + ".$cmd.aggregate"
	}
	if v := lookupString(spec, "fullDocument"); v != "" {
		switch v {
		case "default", "updateLookup", "whenAvailable", "required":
			c.fullDoc = v
		default:
			return nil, shimErr(codeBadValue, "unknown fullDocument mode "+v)
		}
	}
	if v := lookupString(spec, "fullDocumentBeforeChange"); v != "" {
		switch v {
		case "off", "whenAvailable", "required":
			c.fullDocBefore = v
		default:
			return nil, shimErr(codeBadValue, "unknown fullDocumentBeforeChange mode "+v)
		}
	}
	c.expanded = lookupBool(spec, "showExpandedEvents")
	nStart := 0
	for _, k := range []string{"resumeAfter", "startAfter", "startAtOperationTime"} {
		if hasKey(spec, k) {
			nStart++
		}
	}
	if nStart > 1 {
		return nil, shimErr(40674, "Only one type of resume option is allowed, but multiple were found.")
	}
	explicit := true
	switch {
	case hasKey(spec, "resumeAfter") || hasKey(spec, "startAfter"):
		key := "resumeAfter"
		if hasKey(spec, "startAfter") {
			key = "startAfter"
		}
		p, err := parseToken(lookupDoc(spec, key))
		if err != nil {
			return nil, shimErr(codeInvalidResumeToken, err.Error())
		}
		if p.flag == 1 && key == "resumeAfter" {
			return nil, shimErr(codeInvalidResumeToken, "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.")
		}
		if k := fragmentOf(p); k > 0 {
			// A fragment's token: the stream goes on with the next
			// fragment of the same event.
			p.flag = 0
			c.skip.p, c.skip.k = p, k
			p = justBefore(p)
		}
		c.pos = p
	case hasKey(spec, "startAtOperationTime"):
		t, i, ok := spec.Lookup("startAtOperationTime").TimestampOK()
		if !ok {
			return nil, shimErr(codeTypeMismatch, "startAtOperationTime must be a timestamp")
		}
		c.pos = before(mkTS(t, i))
	default:
		explicit = false
		c.pos = hwm(s.oplog.lastTS())
	}
	if explicit && s.oplog.lost(c.pos) {
		return nil, historyLost()
	}
	for _, st := range pipeline[1:] {
		d, _ := st.DocumentOK()
		stage, err := s.parseStage(d)
		if err != nil {
			return nil, err
		}
		if stage != nil && stage.split {
			c.split = true
		} else if stage != nil {
			c.stages = append(c.stages, *stage)
		}
	}
	batchSize := int64(101)
	if n, ok := lookupInt(cmd, "cursor", "batchSize"); ok {
		batchSize = n
	}
	var batch []bson.Raw
	var pbrt bson.Raw
	var err error
	if batchSize > 0 {
		batch, pbrt, err = c.fetch(ctx, s, int(batchSize), 0)
	} else {
		batch, pbrt, err = c.fetch(ctx, s, -1, 0)
	}
	if err != nil {
		return nil, err
	}
	var id int64
	if !c.done {
		id = s.cursors.add(c)
		c.id = id
	}
	return cursorReply("firstBatch", batch, pbrt, id, c.ns), nil
}

func historyLost() error {
	return shimErr(codeChangeStreamHistoryLost, "Resume of change stream was not possible, as the resume point may no longer be in the oplog.")
}

// inScope: the events this stream's namespace sees.
func (c *csCursor) inScope(ev *event) bool {
	if ev.expanded && !c.expanded {
		return false
	}
	if strings.HasPrefix(ev.coll, "system.") {
		return false
	}
	switch {
	case c.cluster:
		return !internalDB(ev.db)
	case c.coll == "":
		return ev.db == c.db
	default:
		return ev.db == c.db && ev.coll == c.coll && ev.op != "dropDatabase"
	}
}

// invalidates: a collection stream ends with its collection's drop or
// rename, a database stream with the database's drop.
func (c *csCursor) invalidates(ev *event) bool {
	switch {
	case c.cluster:
		return false
	case c.coll == "":
		return ev.op == "dropDatabase"
	default:
		return ev.op == "drop" || ev.op == "rename"
	}
}

// fetch returns up to limit events (limit 0: no count limit, < 0: none)
// after the cursor's position, waiting up to wait for the first one, and
// the postBatchResumeToken.
func (c *csCursor) fetch(ctx context.Context, s *Server, limit int, wait time.Duration) ([]bson.Raw, bson.Raw, error) {
	deadline := time.Now().Add(wait)
	var batch []bson.Raw
	size := 0
	if limit < 0 {
		if s.oplog.lost(c.pos) {
			return nil, nil, historyLost()
		}
		if last := s.oplog.lastTS(); c.pos.less(hwm(last)) && !c.hasPending(s) {
			c.pos = hwm(last)
		}
		return nil, c.pos.token(), nil
	}
	for {
		// Fragments of a split event left over from the last batch.
		for len(c.frags) > 0 {
			if len(batch) > 0 && (size+len(c.frags[0]) > maxBatchBytes || limit > 0 && len(batch) >= limit) {
				return batch, c.pos.token(), nil
			}
			batch = append(batch, c.frags[0])
			size += len(c.frags[0])
			if c.frags = c.frags[1:]; len(c.frags) == 0 {
				c.pos = c.fragPos
			}
		}
		evs, last, notify := s.oplog.since(c.pos, 0)
		if s.oplog.lost(c.pos) {
			return nil, nil, historyLost()
		}
		full := false
		for _, ev := range evs {
			if !c.inScope(ev) {
				c.pos = ev.pos
				continue
			}
			if c.droppedBeforeImages(ctx, s, ev) {
				c.pos = ev.pos
				continue
			}
			doc, err := c.render(ctx, s, ev)
			if err != nil {
				return nil, nil, err
			}
			keep, orig := true, doc
			for i := range c.stages {
				if doc, keep, err = c.stages[i].apply(doc); err != nil {
					return nil, nil, err
				} else if !keep {
					break
				}
			}
			if keep && len(c.stages) > 0 {
				if err := checkToken(orig, doc); err != nil {
					return nil, nil, err
				}
			}
			if keep && c.split && len(doc) > maxEventBytes {
				frags, err := splitEvent(doc, ev.pos)
				if err != nil {
					return nil, nil, err
				}
				if c.skip.k > 0 && c.skip.p == ev.pos {
					frags = frags[min(c.skip.k, len(frags)):]
				}
				c.skip.k = 0
				c.frags, c.fragPos = frags, ev.pos
				if len(frags) == 0 {
					c.pos = ev.pos
				}
				full = true // the fragments go out at the top of the loop
				break
			}
			if keep && len(batch) > 0 && size+len(doc) > maxBatchBytes {
				full = true
				break
			}
			c.pos = ev.pos
			if keep {
				batch = append(batch, doc)
				size += len(doc)
			}
			if c.invalidates(ev) {
				ip := pos{ts: ev.pos.ts, idx: ev.pos.idx, flag: 1}
				batch = append(batch, mustRaw(bson.D{
					{Key: "_id", Value: ip.token()},
					{Key: "operationType", Value: "invalidate"},
					{Key: "clusterTime", Value: ev.pos.ts.bson()},
					{Key: "wallTime", Value: bson.NewDateTimeFromTime(ev.wall)},
				}))
				c.pos = ip
				c.done = true
				return batch, c.pos.token(), nil
			}
			if limit > 0 && len(batch) >= limit {
				full = true
				break
			}
		}
		if full && len(c.frags) > 0 {
			continue
		}
		if full {
			return batch, c.pos.token(), nil
		}
		if c.pos.less(hwm(last)) {
			c.pos = hwm(last)
		}
		if len(batch) > 0 || wait <= 0 {
			return batch, c.pos.token(), nil
		}
		d := time.Until(deadline)
		if d <= 0 {
			return batch, c.pos.token(), nil
		}
		t := time.NewTimer(d)
		select {
		case <-notify:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		}
	}
}

// hasPending reports events after the cursor's position (a batchSize 0
// first batch must not skip them).
func (c *csCursor) hasPending(s *Server) bool {
	evs, _, _ := s.oplog.since(c.pos, 1)
	return len(evs) > 0
}

func (c *csCursor) getMore(ctx context.Context, s *Server, cmd bson.Raw) (bson.Raw, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = time.Now()
	defer func() { c.used = time.Now() }()
	limit := 0
	if n, ok := lookupInt(cmd, "batchSize"); ok && n > 0 {
		limit = int(n)
	}
	wait := time.Second
	if ms, ok := lookupInt(cmd, "maxTimeMS"); ok {
		wait = time.Duration(ms) * time.Millisecond
	}
	batch, pbrt, err := c.fetch(ctx, s, limit, wait)
	if err != nil {
		s.cursors.remove(c.id)
		return nil, err
	}
	id := c.id
	if c.done {
		s.cursors.remove(c.id)
		id = 0
	}
	return cursorReply("nextBatch", batch, pbrt, id, c.ns), nil
}

// droppedBeforeImages reports whether the stream's leading $match stages
// that do not read the images drop ev. mongod's optimizer moves such a
// $match before its post- and pre-image lookup stages, so an event it
// drops never needs an image: a stream with fullDocument "required" does
// not fail on another database's update when its $match keeps to its own.
// Only "required" needs this (elsewhere the order changes nothing).
func (c *csCursor) droppedBeforeImages(ctx context.Context, s *Server, ev *event) bool {
	if c.fullDoc != "required" && c.fullDocBefore != "required" {
		return false
	}
	if len(c.stages) == 0 || c.stages[0].imageFreeMatch == nil {
		return false
	}
	doc, err := c.renderWith(ctx, s, ev, "", "")
	if err != nil {
		return false
	}
	for _, st := range c.stages {
		if st.imageFreeMatch == nil {
			return false
		}
		if !st.imageFreeMatch(doc) {
			return true
		}
	}
	return false
}

// render builds the event document MongoDB documents for ev, as this stream
// asked for it.
func (c *csCursor) render(ctx context.Context, s *Server, ev *event) (bson.Raw, error) {
	return c.renderWith(ctx, s, ev, c.fullDoc, c.fullDocBefore)
}

// renderWith renders ev with the given fullDocument and
// fullDocumentBeforeChange modes ("" leaves the images out).
func (c *csCursor) renderWith(ctx context.Context, s *Server, ev *event, fullDoc, fullDocBefore string) (bson.Raw, error) {
	d := bson.D{
		{Key: "_id", Value: ev.pos.token()},
		{Key: "operationType", Value: ev.op},
		{Key: "clusterTime", Value: ev.pos.ts.bson()},
		{Key: "wallTime", Value: bson.NewDateTimeFromTime(ev.wall)},
	}
	if c.expanded && ev.uuid.Type != 0 {
		d = append(d, bson.E{Key: "collectionUUID", Value: ev.uuid})
	}
	ns := bson.D{{Key: "db", Value: ev.db}, {Key: "coll", Value: ev.coll}}
	switch ev.op {
	case "insert":
		d = append(d, bson.E{Key: "fullDocument", Value: ev.doc}, bson.E{Key: "ns", Value: ns}, bson.E{Key: "documentKey", Value: ev.docKey})
	case "replace":
		d = append(d, bson.E{Key: "fullDocument", Value: ev.doc}, bson.E{Key: "ns", Value: ns}, bson.E{Key: "documentKey", Value: ev.docKey})
		if e, err := c.before(ev, fullDocBefore); err != nil {
			return nil, err
		} else if e != nil {
			d = append(d, *e)
		}
	case "update":
		ud := ev.updDesc
		if c.expanded && ev.updDescExpanded != nil {
			ud = ev.updDescExpanded // MongoDB 6.1–8.1: disambiguatedPaths only with showExpandedEvents
		}
		d = append(d, bson.E{Key: "ns", Value: ns}, bson.E{Key: "documentKey", Value: ev.docKey}, bson.E{Key: "updateDescription", Value: ud})
		switch fullDoc {
		case "updateLookup":
			id := ev.docKey.Lookup("_id")
			docs, err := s.be.findByIDs(ctx, ev.db, ev.coll, []bson.RawValue{id})
			if err != nil {
				return nil, err
			}
			if cur := docs[valueKey(id)]; cur != nil {
				d = append(d, bson.E{Key: "fullDocument", Value: cur})
			} else {
				d = append(d, bson.E{Key: "fullDocument", Value: nil})
			}
		case "whenAvailable", "required":
			if ev.images && ev.post != nil {
				d = append(d, bson.E{Key: "fullDocument", Value: ev.post})
			} else if fullDoc == "required" {
				return nil, shimErr(codeNoMatchingDocument, "Change stream was configured to require a post-image for all update, delete and replace events; the post-image for event "+ev.pos.token().String()+" on "+ev.db+"."+ev.coll+" is not available (changeStreamPreAndPostImages is not enabled on the collection)")
			} else {
				d = append(d, bson.E{Key: "fullDocument", Value: nil})
			}
		}
		if e, err := c.before(ev, fullDocBefore); err != nil {
			return nil, err
		} else if e != nil {
			d = append(d, *e)
		}
	case "delete":
		d = append(d, bson.E{Key: "ns", Value: ns}, bson.E{Key: "documentKey", Value: ev.docKey})
		if e, err := c.before(ev, fullDocBefore); err != nil {
			return nil, err
		} else if e != nil {
			d = append(d, *e)
		}
	case "rename":
		d = append(d, bson.E{Key: "ns", Value: ns}, bson.E{Key: "to", Value: bson.D{{Key: "db", Value: ev.toDB}, {Key: "coll", Value: ev.toColl}}})
		if c.expanded && ev.opDesc != nil {
			d = append(d, bson.E{Key: "operationDescription", Value: ev.opDesc})
		}
	case "dropDatabase":
		d = append(d, bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: ev.db}}})
	case "drop":
		d = append(d, bson.E{Key: "ns", Value: ns})
	default: // create, createIndexes, dropIndexes, modify
		d = append(d, bson.E{Key: "ns", Value: ns})
		if ev.opDesc != nil {
			d = append(d, bson.E{Key: "operationDescription", Value: ev.opDesc})
		}
	}
	if ev.inTxn {
		d = append(d, bson.E{Key: "lsid", Value: ev.lsid}, bson.E{Key: "txnNumber", Value: ev.txnNum})
	}
	return marshalDoc(d), nil
}

// before is the fullDocumentBeforeChange element, nil when not asked for.
func (c *csCursor) before(ev *event, mode string) (*bson.E, error) {
	switch mode {
	case "whenAvailable", "required":
		if ev.images && ev.pre != nil {
			return &bson.E{Key: "fullDocumentBeforeChange", Value: ev.pre}, nil
		}
		if mode == "required" {
			return nil, shimErr(codeNoMatchingDocument, "Change stream was configured to require a pre-image for all update, delete and replace events; the pre-image for event "+ev.pos.token().String()+" on "+ev.db+"."+ev.coll+" is not available (changeStreamPreAndPostImages is not enabled on the collection)")
		}
		return &bson.E{Key: "fullDocumentBeforeChange", Value: nil}, nil
	}
	return nil, nil
}
