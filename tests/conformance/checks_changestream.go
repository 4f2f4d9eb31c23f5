package conformance

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func changeStreamChecks() []Check {
	return []Check{
		{
			Name: "cs_narrow_watch", Role: "source",
			Desc:    "collection-level and database-level watch deliver an insert (fallbacks when cluster-wide watch is missing)",
			Results: []string{"cs_watch_collection", "cs_watch_database"},
			Run:     checkCSNarrow,
		},
		{
			Name: "cs_events", Role: "source",
			Desc: "cluster-wide client.Watch delivers every event type in the documented format",
			Results: []string{"cs_cluster_wide", "cs_insert", "cs_update", "cs_replace", "cs_delete",
				"cs_rename", "cs_drop", "cs_dropDatabase", "cs_token_order"},
			Run: checkCSEvents,
		},
		{
			Name: "cs_update_lookup", Role: "source",
			Desc: "fullDocument:updateLookup puts the post-update document on update events",
			Run:  checkCSUpdateLookup,
		},
		{
			Name: "cs_update_delta", Role: "source",
			Desc: "updateDescription as MongoDB's delta: dotted paths into sub-documents and array elements, dotted removedFields, truncatedArrays (pipeline update), disambiguatedPaths (showExpandedEvents)",
			Run:  checkCSUpdateDelta,
		},
		{
			Name: "cs_pre_post_images", Role: "source",
			Desc: "changeStreamPreAndPostImages + fullDocument/fullDocumentBeforeChange:required",
			Run:  checkCSPrePostImages,
		},
		{
			Name: "cs_resume", Role: "source",
			Desc:    "resumeAfter / startAfter with an event's _id resume right after that event",
			Results: []string{"cs_resume_after", "cs_start_after"},
			Run:     checkCSResume,
		},
		{
			Name: "cs_start_at_operation_time", Role: "source",
			Desc: "startAtOperationTime T delivers events with clusterTime >= T (inclusive)",
			Run:  checkCSStartAt,
		},
		{
			Name: "cs_post_batch_resume_token", Role: "source",
			Desc: "postBatchResumeToken present on empty batches and advancing while events are filtered out",
			Run:  checkCSPBRT,
		},
		{
			Name: "cs_show_expanded_events", Role: "source",
			Desc: "showExpandedEvents: create, createIndexes, modify, dropIndexes events",
			Run:  checkCSExpanded,
		},
	}
}

// watch opens a change stream at e.WatchScope (cluster-wide by default) with a
// short maxAwaitTime; dbn and coll name the database and collection a narrower
// scope watches.
func watch(ctx context.Context, e *Env, dbn, coll string, pipeline any, o *options.ChangeStreamOptionsBuilder) (*mongo.ChangeStream, error) {
	if o == nil {
		o = options.ChangeStream()
	}
	o.SetMaxAwaitTime(300 * time.Millisecond)
	if pipeline == nil {
		pipeline = mongo.Pipeline{}
	}
	switch e.WatchScope {
	case ScopeDatabase:
		return e.Client.Database(dbn).Watch(ctx, pipeline, o)
	case ScopeCollection:
		return e.Client.Database(dbn).Collection(coll).Watch(ctx, pipeline, o)
	default:
		return e.Client.Watch(ctx, pipeline, o)
	}
}

func closeStream(cs *mongo.ChangeStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = cs.Close(ctx)
}

// collect reads events until stop returns true for an event or e.Wait elapses.
// On a cluster-wide stream it keeps only events whose ns.db is in dbs (other
// probes may run concurrently); narrower streams are taken as they come.
func collect(ctx context.Context, e *Env, cs *mongo.ChangeStream, dbs []string, stop func(bson.Raw) bool) ([]bson.Raw, error) {
	if e.WatchScope != ScopeCluster && e.WatchScope != "" {
		dbs = nil
	}
	deadline := time.Now().Add(e.Wait)
	var out []bson.Raw
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if cs.TryNext(ctx) {
			ev := append(bson.Raw(nil), cs.Current...)
			db := lookupString(ev, "ns", "db")
			if dbs == nil || contains(dbs, db) {
				out = append(out, ev)
				if stop != nil && stop(ev) {
					return out, nil
				}
			}
			continue
		}
		if err := cs.Err(); err != nil {
			return out, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, nil
}

func opType(ev bson.Raw) string { return lookupString(ev, "operationType") }

// eventProblems checks the fields every change event must have.
func eventProblems(ev bson.Raw, op, db, coll string) []string {
	var p []string
	if got := opType(ev); got != op {
		p = append(p, fmt.Sprintf("operationType=%q want %q", got, op))
	}
	switch t := lookupType(ev, "_id"); t {
	case bson.TypeEmbeddedDocument:
		if lookupType(ev, "_id", "_data") != bson.TypeString {
			p = append(p, "_id (resume token) has no string _data: "+ev.Lookup("_id").String())
		}
	default:
		p = append(p, "_id (resume token) is "+typeName(t))
	}
	if lookupString(ev, "ns", "db") != db {
		p = append(p, fmt.Sprintf("ns.db=%q", lookupString(ev, "ns", "db")))
	}
	if coll != "" && lookupString(ev, "ns", "coll") != coll {
		p = append(p, fmt.Sprintf("ns.coll=%q want %q", lookupString(ev, "ns", "coll"), coll))
	}
	if t := lookupType(ev, "clusterTime"); t != bson.TypeTimestamp {
		p = append(p, "clusterTime is "+typeName(t))
	}
	if t := lookupType(ev, "wallTime"); t != bson.TypeDateTime {
		p = append(p, "wallTime is "+typeName(t))
	}
	return p
}

// findEvent returns the first event of type op on collection coll. An event
// without ns.coll matches any coll (its missing ns is reported elsewhere).
func findEvent(evs []bson.Raw, op, coll string) bson.Raw {
	for _, ev := range evs {
		evColl := lookupString(ev, "ns", "coll")
		if opType(ev) == op && (coll == "" || evColl == coll || lookupType(ev, "ns", "coll") == 0) {
			return ev
		}
	}
	return nil
}

func eventSummary(evs []bson.Raw) string {
	s := ""
	for i, ev := range evs {
		if i > 0 {
			s += ","
		}
		s += opType(ev)
		if c := lookupString(ev, "ns", "coll"); c != "" {
			s += "(" + c + ")"
		}
	}
	if s == "" {
		return "no events"
	}
	return "events: " + s
}

func checkCSEvents(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csev")
	db2n := e.DBName("csev2")
	defer dropDB(e.Client, dbn)
	defer dropDB(e.Client, db2n)
	cs, err := watch(ctx, e, dbn, "c1", nil, nil)
	if err != nil {
		rep("*", Error, "watch: %s", errText(err))
		return
	}
	defer closeStream(cs)
	db := e.Client.Database(dbn)
	c1 := db.Collection("c1")
	opErr := map[string]string{}
	do := func(op string, err error) {
		if err != nil && opErr[op] == "" {
			opErr[op] = errText(err)
		}
	}
	_, err = e.Client.Database(db2n).Collection("other").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}})
	do("cs_cluster_wide", err)
	_, err = c1.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}})
	do("cs_insert", err)
	_, err = c1.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "a", Value: 5}, {Key: "c", Value: "x"}}},
		{Key: "$unset", Value: bson.D{{Key: "b", Value: ""}}},
	})
	do("cs_update", err)
	_, err = c1.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "z", Value: 1}})
	do("cs_replace", err)
	_, err = c1.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
	do("cs_delete", err)
	_, err = db.Collection("c2").InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}})
	do("cs_rename", err)
	err = e.Client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: dbn + ".c2"}, {Key: "to", Value: dbn + ".c3"},
	}).Err()
	do("cs_rename", err)
	_, err = c1.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	do("cs_drop", err)
	do("cs_drop", c1.Drop(ctx))
	do("cs_dropDatabase", db.Drop(ctx))

	evs, err := collect(ctx, e, cs, []string{dbn, db2n}, func(ev bson.Raw) bool {
		return opType(ev) == "dropDatabase"
	})
	if err != nil {
		opErr["stream"] = errText(err)
	}
	summary := eventSummary(evs)
	report := func(name string, ev bson.Raw, extra func(ev bson.Raw) []string, op, dbName, coll string) {
		if ev == nil {
			reason := "no " + op + " event; " + summary
			if opErr[name] != "" {
				rep(name, Error, "operation failed: %s; %s", opErr[name], summary)
				return
			}
			if opErr["stream"] != "" {
				reason += "; stream error: " + opErr["stream"]
			}
			rep(name, Fail, "%s", reason)
			return
		}
		p := eventProblems(ev, op, dbName, coll)
		if extra != nil {
			p = append(p, extra(ev)...)
		}
		if len(p) > 0 {
			rep(name, Fail, "%s; event: %s", join(p), ev.String())
			return
		}
		rep(name, Pass, "documented format")
	}
	docKey := func(id any) func(ev bson.Raw) []string {
		return func(ev bson.Raw) []string {
			want, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
			dk, ok := ev.Lookup("documentKey").DocumentOK()
			if !ok || dk.String() != bson.Raw(want).String() {
				return []string{"documentKey=" + ev.Lookup("documentKey").String()}
			}
			return nil
		}
	}
	if e.WatchScope == ScopeCluster || e.WatchScope == "" {
		report("cs_cluster_wide", findEvent(evs, "insert", "other"), nil, "insert", db2n, "other")
	} else {
		rep("cs_cluster_wide", Skip, "probe ran with a %s-scoped stream", e.WatchScope)
	}
	report("cs_insert", findEvent(evs, "insert", "c1"), func(ev bson.Raw) []string {
		p := docKey(int32(1))(ev)
		if lookupType(ev, "fullDocument") != bson.TypeEmbeddedDocument {
			p = append(p, "no fullDocument")
		} else if v, _ := lookupInt(ev, "fullDocument", "b"); v != 2 {
			p = append(p, "fullDocument wrong: "+ev.Lookup("fullDocument").String())
		}
		return p
	}, "insert", dbn, "c1")
	report("cs_update", findEvent(evs, "update", "c1"), func(ev bson.Raw) []string {
		p := docKey(int32(1))(ev)
		uf, ok := ev.Lookup("updateDescription", "updatedFields").DocumentOK()
		if !ok {
			p = append(p, "no updateDescription.updatedFields")
		} else {
			a, _ := lookupInt(uf, "a")
			if a != 5 || lookupString(uf, "c") != "x" {
				p = append(p, "updatedFields="+uf.String())
			}
		}
		rf, ok := ev.Lookup("updateDescription", "removedFields").ArrayOK()
		if !ok {
			p = append(p, "no updateDescription.removedFields")
		} else if vals, _ := rf.Values(); len(vals) != 1 || vals[0].StringValue() != "b" {
			p = append(p, "removedFields="+rf.String())
		}
		if lookupType(ev, "fullDocument") == bson.TypeEmbeddedDocument {
			p = append(p, "fullDocument present without updateLookup (harmless)")
		}
		return p
	}, "update", dbn, "c1")
	report("cs_replace", findEvent(evs, "replace", "c1"), func(ev bson.Raw) []string {
		p := docKey(int32(1))(ev)
		if v, _ := lookupInt(ev, "fullDocument", "z"); v != 1 || lookupType(ev, "fullDocument", "a") != 0 {
			p = append(p, "fullDocument="+ev.Lookup("fullDocument").String())
		}
		return p
	}, "replace", dbn, "c1")
	report("cs_delete", findEvent(evs, "delete", "c1"), func(ev bson.Raw) []string {
		p := docKey(int32(1))(ev)
		if lookupType(ev, "fullDocument") != 0 {
			p = append(p, "delete carries fullDocument")
		}
		return p
	}, "delete", dbn, "c1")
	report("cs_rename", findEvent(evs, "rename", "c2"), func(ev bson.Raw) []string {
		if lookupString(ev, "to", "db") != dbn || lookupString(ev, "to", "coll") != "c3" {
			return []string{"to=" + ev.Lookup("to").String()}
		}
		return nil
	}, "rename", dbn, "c2")
	report("cs_drop", findEvent(evs, "drop", "c1"), nil, "drop", dbn, "c1")
	report("cs_dropDatabase", findEvent(evs, "dropDatabase", ""), func(ev bson.Raw) []string {
		var p []string
		if lookupType(ev, "ns", "coll") != 0 {
			p = append(p, "ns.coll present on dropDatabase")
		}
		if findEvent(evs, "drop", "c3") == nil {
			p = append(p, "no drop event for remaining collection c3 before dropDatabase (MongoDB emits one per collection)")
		}
		return p
	}, "dropDatabase", dbn, "")

	// resume tokens must sort in event order: connectors compare tokens.
	var toks []string
	for _, ev := range evs {
		toks = append(toks, lookupString(ev, "_id", "_data"))
	}
	switch {
	case len(toks) < 3:
		rep("cs_token_order", Skip, "fewer than 3 events")
	case sort.StringsAreSorted(toks) && !hasDup(toks):
		rep("cs_token_order", Pass, "%d tokens strictly increasing as _data strings (e.g. %q)", len(toks), toks[0])
	default:
		rep("cs_token_order", Fail, "_data tokens not strictly increasing: %v", toks)
	}
}

func hasDup(ss []string) bool {
	for i := 1; i < len(ss); i++ {
		if ss[i] == ss[i-1] {
			return true
		}
	}
	return false
}

func checkCSUpdateLookup(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csul")
	defer dropDB(e.Client, dbn)
	c := e.Client.Database(dbn).Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "keep", Value: "k"}}); err != nil {
		rep("cs_update_lookup", Error, "seed: %s", errText(err))
		return
	}
	cs, err := watch(ctx, e, dbn, "c", nil, options.ChangeStream().SetFullDocument(options.UpdateLookup))
	if err != nil {
		rep("cs_update_lookup", Error, "watch: %s", errText(err))
		return
	}
	defer closeStream(cs)
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 2}}}}); err != nil {
		rep("cs_update_lookup", Error, "update: %s", errText(err))
		return
	}
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool { return opType(ev) == "update" })
	ev := findEvent(evs, "update", "c")
	switch {
	case ev == nil:
		rep("cs_update_lookup", Fail, "no update event (%s, err %v)", eventSummary(evs), err)
	case lookupType(ev, "fullDocument") != bson.TypeEmbeddedDocument:
		rep("cs_update_lookup", Fail, "update event has fullDocument=%s", typeName(lookupType(ev, "fullDocument")))
	default:
		a, _ := lookupInt(ev, "fullDocument", "a")
		if a == 2 && lookupString(ev, "fullDocument", "keep") == "k" {
			rep("cs_update_lookup", Pass, "fullDocument is the post-update document")
		} else {
			rep("cs_update_lookup", Fail, "fullDocument=%s", ev.Lookup("fullDocument"))
		}
	}
}

// checkCSUpdateDelta makes three updates whose descriptions MongoDB
// documents exactly (docs/testing.md, "updateDescription as MongoDB reports
// it") and compares them.
func checkCSUpdateDelta(ctx context.Context, e *Env, rep Reporter) {
	const name = "cs_update_delta"
	dbn := e.DBName("csdelta")
	defer dropDB(e.Client, dbn)
	c := e.Client.Database(dbn).Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}, {Key: "x", Value: 1}}},
		{Key: "arr", Value: bson.A{bson.D{{Key: "v", Value: 1}}, 2, 3, 4}}, {Key: "m", Value: bson.D{{Key: "2", Value: 1}}}}); err != nil {
		rep(name, Error, "seed: %s", errText(err))
		return
	}
	cs, err := watch(ctx, e, dbn, "c", nil, options.ChangeStream().SetShowExpandedEvents(true))
	if err != nil {
		rep(name, Error, "watch: %s", errText(err))
		return
	}
	defer closeStream(cs)
	updates := []any{
		bson.D{{Key: "$set", Value: bson.D{{Key: "a.b", Value: 2}, {Key: "arr.0.v", Value: 5}}}, {Key: "$unset", Value: bson.D{{Key: "a.x", Value: ""}}}},
		mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$slice", Value: bson.A{"$arr", 2}}}}}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "m.2", Value: 1}}}},
	}
	for i, u := range updates {
		if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, u); err != nil {
			rep(name, Error, "update %d: %s", i+1, errText(err))
			return
		}
	}
	seen := 0
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool {
		if opType(ev) == "update" {
			seen++
		}
		return seen == len(updates)
	})
	var ups []bson.Raw
	for _, ev := range evs {
		if opType(ev) == "update" {
			ups = append(ups, ev)
		}
	}
	if len(ups) < 3 {
		rep(name, Fail, "%d update events, want 3 (%s, err %v)", len(ups), eventSummary(evs), err)
		return
	}
	var p []string
	ud := func(i int) bson.Raw { d, _ := ups[i].Lookup("updateDescription").DocumentOK(); return d }
	if got := ud(0).Lookup("updatedFields").String(); got != `{"a.b": {"$numberInt":"2"},"arr.0.v": {"$numberInt":"5"}}` {
		p = append(p, "$set a.b/arr.0.v: updatedFields="+got)
	}
	if got := ud(0).Lookup("removedFields").String(); got != `["a.x"]` {
		p = append(p, "$unset a.x: removedFields="+got)
	}
	if got := ud(1).Lookup("truncatedArrays").String(); got != `[{"field": "arr","newSize": {"$numberInt":"2"}}]` {
		p = append(p, "pipeline $slice: truncatedArrays="+got)
	}
	if got := ud(2).Lookup("disambiguatedPaths").String(); got != `{"m.2": ["m","2"]}` {
		p = append(p, "$inc m.2 on an object: disambiguatedPaths="+got)
	}
	if len(p) == 0 {
		rep(name, Pass, "dotted paths, dotted removedFields, truncatedArrays, disambiguatedPaths as MongoDB reports them")
	} else {
		rep(name, Fail, "%s", join(p))
	}
}

func checkCSPrePostImages(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csimg")
	defer dropDB(e.Client, dbn)
	db := e.Client.Database(dbn)
	if err := db.CreateCollection(ctx, "c", options.CreateCollection().SetChangeStreamPreAndPostImages(bson.D{{Key: "enabled", Value: true}})); err != nil {
		rep("cs_pre_post_images", Error, "create with changeStreamPreAndPostImages: %s", errText(err))
		return
	}
	c := db.Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}}); err != nil {
		rep("cs_pre_post_images", Error, "seed: %s", errText(err))
		return
	}
	cs, err := watch(ctx, e, dbn, "c", nil, options.ChangeStream().SetFullDocument(options.Required).SetFullDocumentBeforeChange(options.Required))
	if err != nil {
		rep("cs_pre_post_images", Error, "watch: %s", errText(err))
		return
	}
	defer closeStream(cs)
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 2}}}}); err != nil {
		rep("cs_pre_post_images", Error, "update: %s", errText(err))
		return
	}
	if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		rep("cs_pre_post_images", Error, "delete: %s", errText(err))
		return
	}
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool { return opType(ev) == "delete" })
	up, del := findEvent(evs, "update", "c"), findEvent(evs, "delete", "c")
	var p []string
	if up == nil {
		p = append(p, "no update event")
	} else {
		pre, _ := lookupInt(up, "fullDocumentBeforeChange", "a")
		post, _ := lookupInt(up, "fullDocument", "a")
		if pre != 1 || post != 2 {
			p = append(p, fmt.Sprintf("update pre-image a=%d post-image a=%d want 1/2", pre, post))
		}
	}
	if del == nil {
		p = append(p, "no delete event")
	} else if pre, _ := lookupInt(del, "fullDocumentBeforeChange", "a"); pre != 2 {
		p = append(p, "delete pre-image missing")
	}
	if len(p) > 0 {
		if err != nil {
			p = append(p, "stream: "+errText(err))
		}
		rep("cs_pre_post_images", Fail, "%s; %s", join(p), eventSummary(evs))
		return
	}
	rep("cs_pre_post_images", Pass, "pre- and post-images on update and delete")
}

func checkCSResume(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csres")
	defer dropDB(e.Client, dbn)
	c := e.Client.Database(dbn).Collection("c")
	cs, err := watch(ctx, e, dbn, "c", nil, nil)
	if err != nil {
		rep("*", Error, "watch: %s", errText(err))
		return
	}
	for i := 1; i <= 2; i++ {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			closeStream(cs)
			rep("*", Error, "insert: %s", errText(err))
			return
		}
	}
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool { return true })
	closeStream(cs)
	if len(evs) == 0 {
		rep("*", Fail, "no event to take a token from (err %v)", err)
		return
	}
	tok, ok := evs[0].Lookup("_id").DocumentOK()
	if !ok {
		rep("*", Fail, "event _id is not a document: %s", evs[0].Lookup("_id"))
		return
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}}); err != nil {
		rep("*", Error, "insert: %s", errText(err))
		return
	}
	try := func(name string, o *options.ChangeStreamOptionsBuilder) {
		cs, err := watch(ctx, e, dbn, "c", nil, o)
		if err != nil {
			rep(name, Error, "watch: %s", errText(err))
			return
		}
		defer closeStream(cs)
		evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool {
			id, _ := lookupInt(ev, "documentKey", "_id")
			return id == 3
		})
		var ids []int64
		for _, ev := range evs {
			id, _ := lookupInt(ev, "documentKey", "_id")
			ids = append(ids, id)
		}
		if fmt.Sprint(ids) == "[2 3]" {
			rep(name, Pass, "resumed right after the token's event (got inserts 2,3)")
			return
		}
		reason := fmt.Sprintf("after token of insert 1 got inserts %v want [2 3]", ids)
		if err != nil {
			reason += "; stream: " + errText(err)
		}
		rep(name, Fail, "%s", reason)
	}
	try("cs_resume_after", options.ChangeStream().SetResumeAfter(tok))
	try("cs_start_after", options.ChangeStream().SetStartAfter(tok))
}

func checkCSStartAt(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csat")
	defer dropDB(e.Client, dbn)
	c := e.Client.Database(dbn).Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); err != nil {
		rep("cs_start_at_operation_time", Error, "seed: %s", errText(err))
		return
	}
	// T is the operationTime of the insert of _id 1; servers without
	// operationTime get T from that insert's change event instead.
	var t0 *bson.Timestamp
	source := "the write's operationTime"
	var rawReply bson.Raw
	err := c.Database().RunCommand(ctx, bson.D{{Key: "insert", Value: c.Name()}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}}).Decode(&rawReply)
	if err != nil {
		rep("cs_start_at_operation_time", Error, "insert: %s", errText(err))
		return
	}
	if t, i, ok := rawReply.Lookup("operationTime").TimestampOK(); ok {
		t0 = &bson.Timestamp{T: t, I: i}
	} else {
		source = "the insert event's clusterTime (server sends no operationTime)"
		cs, err := watch(ctx, e, dbn, "c", nil, options.ChangeStream().SetStartAtOperationTime(&bson.Timestamp{T: uint32(time.Now().Add(-time.Minute).Unix())}))
		if err != nil {
			rep("cs_start_at_operation_time", Error, "no operationTime, and watch at now-1min failed: %s", errText(err))
			return
		}
		evs, _ := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool {
			id, _ := lookupInt(ev, "documentKey", "_id")
			return id == 1
		})
		closeStream(cs)
		for _, ev := range evs {
			if id, _ := lookupInt(ev, "documentKey", "_id"); id == 1 {
				if t, i, ok := ev.Lookup("clusterTime").TimestampOK(); ok {
					t0 = &bson.Timestamp{T: t, I: i}
				}
			}
		}
		if t0 == nil {
			rep("cs_start_at_operation_time", Fail, "no operationTime, and no insert event with a clusterTime from a stream started a minute ago (%s)", eventSummary(evs))
			return
		}
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
		rep("cs_start_at_operation_time", Error, "insert: %s", errText(err))
		return
	}
	cs, err := watch(ctx, e, dbn, "c", nil, options.ChangeStream().SetStartAtOperationTime(t0))
	if err != nil {
		rep("cs_start_at_operation_time", Error, "watch at Timestamp(%d,%d): %s", t0.T, t0.I, errText(err))
		return
	}
	defer closeStream(cs)
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool {
		id, _ := lookupInt(ev, "documentKey", "_id")
		return id == 2
	})
	var ids []int64
	var first bson.Raw
	for _, ev := range evs {
		id, _ := lookupInt(ev, "documentKey", "_id")
		ids = append(ids, id)
		if id == 1 {
			first = ev
		}
	}
	switch fmt.Sprint(ids) {
	case "[1 2]":
		t, i, _ := first.Lookup("clusterTime").TimestampOK()
		if t == t0.T && i == t0.I {
			rep("cs_start_at_operation_time", Pass, "inclusive: event at T=Timestamp(%d,%d) and later delivered; T from %s", t0.T, t0.I, source)
		} else {
			rep("cs_start_at_operation_time", Pass, "inclusive, but event clusterTime Timestamp(%d,%d) != T Timestamp(%d,%d) from %s", t, i, t0.T, t0.I, source)
		}
	case "[2]":
		rep("cs_start_at_operation_time", Fail, "exclusive: the event at T itself was not delivered (MongoDB is inclusive)")
	default:
		reason := fmt.Sprintf("from Timestamp(%d,%d) got inserts %v want [1 2]", t0.T, t0.I, ids)
		if err != nil {
			reason += "; stream: " + errText(err)
		}
		rep("cs_start_at_operation_time", Fail, "%s", reason)
	}
}

func checkCSPBRT(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("cspb")
	other := e.DBName("cspbo")
	defer dropDB(e.Client, dbn)
	defer dropDB(e.Client, other)
	pipeline := mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: dbn}}}}}
	if e.WatchScope != ScopeCluster && e.WatchScope != "" {
		pipeline = mongo.Pipeline{} // writes to the other database are outside the scope anyway
	}
	cs, err := watch(ctx, e, dbn, "c", pipeline, nil)
	if err != nil {
		rep("cs_post_batch_resume_token", Error, "watch with $match: %s", errText(err))
		return
	}
	defer closeStream(cs)
	var notes []string
	t0 := cs.ResumeToken()
	if t0 == nil {
		notes = append(notes, "no token after the initial aggregate")
	}
	if cs.TryNext(ctx) {
		notes = append(notes, "unexpected event "+cs.Current.String())
	}
	t1 := cs.ResumeToken()
	if t1 == nil {
		if err := cs.Err(); err != nil {
			rep("cs_post_batch_resume_token", Error, "getMore: %s", errText(err))
			return
		}
		rep("cs_post_batch_resume_token", Fail, "no postBatchResumeToken after an empty getMore: a connector cannot checkpoint while idle")
		return
	}
	// writes that the $match filters out must still advance the PBRT
	for i := 0; i < 3; i++ {
		if _, err := e.Client.Database(other).Collection("c").InsertOne(ctx, bson.D{{Key: "i", Value: i}}); err != nil {
			rep("cs_post_batch_resume_token", Error, "insert: %s", errText(err))
			return
		}
	}
	var t2 bson.Raw
	deadline := time.Now().Add(e.Wait)
	for time.Now().Before(deadline) {
		if cs.TryNext(ctx) {
			notes = append(notes, "filtered event delivered: "+opType(cs.Current))
		}
		t2 = cs.ResumeToken()
		if t2 != nil && lookupString(t2, "_data") > lookupString(t1, "_data") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	advanced := t2 != nil && lookupString(t2, "_data") > lookupString(t1, "_data")
	if !advanced {
		notes = append(notes, "PBRT did not advance past filtered-out writes (idle streams re-scan from the old token after restart)")
	}
	// an event's token is what ResumeToken returns after it
	if _, err := e.Client.Database(dbn).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		rep("cs_post_batch_resume_token", Error, "insert: %s", errText(err))
		return
	}
	evs, _ := collect(ctx, e, cs, []string{dbn}, func(bson.Raw) bool { return true })
	if len(evs) == 0 {
		notes = append(notes, "event after PBRT not delivered")
	} else if id, ok := evs[0].Lookup("_id").DocumentOK(); ok && cs.ResumeToken() != nil && lookupString(cs.ResumeToken(), "_data") < lookupString(id, "_data") {
		notes = append(notes, "ResumeToken after the event is older than the event's _id")
	}
	if t1 != nil && advanced && len(notes) == 0 {
		rep("cs_post_batch_resume_token", Pass, "PBRT present when idle and advancing past filtered writes (%q -> %q)", lookupString(t1, "_data"), lookupString(t2, "_data"))
		return
	}
	st := Fail
	if t1 != nil && advanced {
		st = Pass
	}
	rep("cs_post_batch_resume_token", st, "PBRT present; %s", join(notes))
}

func checkCSExpanded(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csx")
	defer dropDB(e.Client, dbn)
	cs, err := watch(ctx, e, dbn, "c", nil, options.ChangeStream().SetShowExpandedEvents(true))
	if err != nil {
		rep("cs_show_expanded_events", Error, "watch showExpandedEvents: %s", errText(err))
		return
	}
	defer closeStream(cs)
	db := e.Client.Database(dbn)
	var opErrs []string
	if err := db.CreateCollection(ctx, "c"); err != nil {
		opErrs = append(opErrs, "create: "+errText(err))
	}
	if _, err := db.Collection("c").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}}); err != nil {
		opErrs = append(opErrs, "createIndexes: "+errText(err))
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "validator", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$exists", Value: true}}}}}}).Err(); err != nil {
		opErrs = append(opErrs, "collMod: "+errText(err))
	}
	if err := db.Collection("c").Indexes().DropOne(ctx, "a_1"); err != nil {
		opErrs = append(opErrs, "dropIndexes: "+errText(err))
	}
	if err := db.Collection("c").Drop(ctx); err != nil {
		opErrs = append(opErrs, "drop: "+errText(err))
	}
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool { return opType(ev) == "drop" })
	var missing []string
	for _, op := range []string{"create", "createIndexes", "modify", "dropIndexes", "drop"} {
		if findEvent(evs, op, "c") == nil {
			missing = append(missing, op)
		}
	}
	var detail []string
	if ev := findEvent(evs, "createIndexes", "c"); ev != nil && lookupType(ev, "operationDescription", "indexes") != bson.TypeArray {
		detail = append(detail, "createIndexes without operationDescription.indexes")
	}
	if ev := findEvent(evs, "create", "c"); ev != nil && lookupType(ev, "collectionUUID") != bson.TypeBinary {
		detail = append(detail, "create without collectionUUID")
	}
	if err != nil {
		detail = append(detail, "stream: "+errText(err))
	}
	if len(opErrs) > 0 {
		detail = append(detail, "ops failed: "+join(opErrs))
	}
	switch {
	case len(missing) == 0 && len(detail) == 0:
		rep("cs_show_expanded_events", Pass, "create, createIndexes, modify, dropIndexes, drop events")
	case findEvent(evs, "create", "c") != nil && findEvent(evs, "createIndexes", "c") != nil:
		rep("cs_show_expanded_events", Pass, "create and createIndexes seen; missing %v; %s", missing, join(detail))
	default:
		rep("cs_show_expanded_events", Fail, "missing %v; %s; %s", missing, join(detail), eventSummary(evs))
	}
}

func checkCSNarrow(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("csn")
	defer dropDB(e.Client, dbn)
	db := e.Client.Database(dbn)
	c := db.Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); err != nil {
		rep("*", Error, "seed: %s", errText(err))
		return
	}
	o := func() *options.ChangeStreamOptionsBuilder {
		return options.ChangeStream().SetMaxAwaitTime(300 * time.Millisecond)
	}
	try := func(name string, open func() (*mongo.ChangeStream, error), id int) {
		cs, err := open()
		if err != nil {
			rep(name, Error, "watch: %s", errText(err))
			return
		}
		defer closeStream(cs)
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			rep(name, Error, "insert: %s", errText(err))
			return
		}
		narrow := *e
		narrow.WatchScope = ScopeCollection // no ns filtering: the stream is narrow
		evs, err := collect(ctx, &narrow, cs, nil, func(bson.Raw) bool { return true })
		if len(evs) == 0 {
			rep(name, Fail, "no insert event (stream err: %v)", err)
			return
		}
		if p := eventProblems(evs[0], "insert", dbn, "c"); len(p) > 0 {
			rep(name, Fail, "insert event: %s", join(p))
			return
		}
		rep(name, Pass, "insert event in documented format")
	}
	try("cs_watch_collection", func() (*mongo.ChangeStream, error) { return c.Watch(ctx, mongo.Pipeline{}, o()) }, 1)
	try("cs_watch_database", func() (*mongo.ChangeStream, error) { return db.Watch(ctx, mongo.Pipeline{}, o()) }, 2)
}
