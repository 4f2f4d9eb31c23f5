package sink_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestNestedUpdatesConverge is the property test of the whole pipeline on
// nested data: random documents (nested objects, arrays of documents and of
// scalars, numeric-string keys) and random sequences of
// every update operator ($set/$unset on deep paths and array indexes, past
// the end of an array, $inc, $mul, $min, $max, $push with $each/$slice/
// $position, $pop, $pull, $addToSet, $rename, $currentDate, and pipeline
// updates that shorten arrays) go through the real source-connector with
// --full-document off, so the update descriptions themselves are what the
// sink applies; the destination must then equal the source byte for byte
// (pkg/verify).
//
// The source's own change stream is read alongside, and the test fails
// unless the descriptions held the forms under test (dotted paths into
// sub-documents, array-element paths, truncatedArrays, dotted
// removedFields): a stack that reported only whole top-level fields would
// prove nothing about the sink's path handling.
//
// LOGBRIDGE_PROP_SEED=<n> replays a run; LOGBRIDGE_PROP_UPDATES sets the
// number of updates (default 400).
//
// That it fails when the sink's delta application breaks was checked once in
// a scratch copy of the tree (2026-12-06, `git archive HEAD` into /tmp), each
// change alone in sink-connector/internal/apply/update.go, run with
// `go test -count=1 -run TestNestedUpdatesConverge ./tests/sink/` against a
// stack with this shim (a private mongo stack, docs/testing.md):
//   - truncatedArrays ignored (no $push/$slice document): FAIL, "did not
//     converge … DIFFERENT … 1 of 1 ranges differ";
//   - removedFields ignored (no $unset): FAIL, the same (and the sink
//     stopped on an update left empty);
//   - updatedFields paths into array elements ("arr.3", "docs.1.a")
//     dropped from the $set: FAIL, the same.
func TestNestedUpdatesConverge(t *testing.T) {
	env, src, dest, ctx, db := sourceAndDest(t, 6*time.Minute)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LOGBRIDGE_PROP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LOGBRIDGE_PROP_SEED=%q: %v", s, err)
		}
		seed = v
	}
	updates := 400
	if s := os.Getenv("LOGBRIDGE_PROP_UPDATES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("LOGBRIDGE_PROP_UPDATES=%q: want a positive number", s)
		}
		updates = n
	}
	t.Logf("seed %d (LOGBRIDGE_PROP_SEED=%d replays it), %d updates", seed, seed, updates)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	const coll = "nested"
	if err := src.Database(db).CreateCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	c := src.Database(db).Collection(coll)
	// the source's own stream: what the sink is given
	cs, err := c.Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetShowExpandedEvents(true))
	if err != nil {
		t.Fatalf("watching %s.%s: %v", db, coll, err)
	}
	defer cs.Close(context.Background())

	prefix := testenv.TopicPrefix(t)
	startSourceProc(t, ctx, env, prefix, db, "phase=streaming", "--partitions", "2", "--full-document", "off")
	runSink(t, sourceSinkCfg(env, prefix))

	g := &gen{rng: rng}
	const docs = 12
	for i := range docs {
		if _, err := c.InsertOne(ctx, g.doc(i)); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	history := map[int][]string{}
	applied, refused := 0, 0
	for range updates {
		id := rng.IntN(docs)
		var cur bson.Raw
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: int32(id)}}).Decode(&cur); err != nil {
			t.Fatalf("reading _id %d: %v", id, err)
		}
		u := g.update(cur)
		_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(id)}}, u)
		desc := fmt.Sprintf("%v", u)
		if err != nil {
			// an operator on the wrong type, as in any workload: MongoDB
			// refuses it and nothing is logged
			refused++
			desc += " → refused: " + err.Error()
		} else {
			applied++
		}
		history[id] = append(history[id], desc)
	}
	t.Logf("%d updates applied, %d refused by the server", applied, refused)
	reasons := map[string]int{}
	for _, h := range history {
		for _, u := range h {
			if _, why, ok := strings.Cut(u, " → refused: "); ok {
				reasons[why]++
			}
		}
	}
	for why, n := range reasons {
		t.Logf("refused %d×: %s", n, why)
	}

	// the descriptions held the forms under test
	seen := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	events := 0
	for events < docs+applied && time.Now().Before(deadline) {
		if !cs.TryNext(ctx) {
			if cs.Err() != nil {
				t.Fatalf("change stream: %v", cs.Err())
			}
			continue
		}
		events++
		ud, err := cs.Current.LookupErr("updateDescription")
		if err != nil {
			continue
		}
		classify(ud.Document(), seen)
	}
	t.Logf("update descriptions seen: %v", seen)
	for _, k := range []string{"dotted path", "array element path", "truncatedArrays", "dotted removedFields", "removedFields"} {
		if seen[k] == 0 {
			t.Errorf("no update description with a %s among %d events: the property test did not exercise it", k, events)
		}
	}

	p := verify.Pair{SourceDB: db, SourceColl: coll, DestDB: db, DestColl: coll}
	end := time.Now().Add(2 * time.Minute)
	for {
		r := verify.Namespace(ctx, src, dest, p, verify.Options{MaxReported: 3})
		if r.Err == nil && r.Equal() {
			return
		}
		if time.Now().After(end) {
			var b strings.Builder
			for _, idj := range slices.Concat(r.Different, r.Missing) {
				var id struct {
					ID int32 `bson:"_id"`
				}
				_ = bson.UnmarshalExtJSON([]byte(`{"_id":`+idj+`}`), true, &id)
				var s, d bson.Raw
				_ = c.FindOne(ctx, bson.D{{Key: "_id", Value: id.ID}}).Decode(&s)
				_ = dest.Database(db).Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id.ID}}).Decode(&d)
				fmt.Fprintf(&b, "\n_id %d\n source %s\n   dest %s\n updates:\n   %s", id.ID, s, d, strings.Join(history[int(id.ID)], "\n   "))
			}
			t.Fatalf("seed %d: %s did not converge: %s (err %v)%s", seed, p, r.Summary(), r.Err, b.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// classify counts the forms an updateDescription holds.
func classify(ud bson.Raw, seen map[string]int) {
	if uf, ok := ud.Lookup("updatedFields").DocumentOK(); ok {
		es, _ := uf.Elements()
		for _, e := range es {
			parts := strings.Split(e.Key(), ".")
			if len(parts) > 1 {
				seen["dotted path"]++
			}
			for _, p := range parts[1:] {
				if _, err := strconv.Atoi(p); err == nil {
					seen["array element path"]++ // or a numeric key: both matter
					break
				}
			}
		}
	}
	if ta, ok := ud.Lookup("truncatedArrays").ArrayOK(); ok {
		if vs, _ := ta.Values(); len(vs) > 0 {
			seen["truncatedArrays"]++
		}
	}
	if rf, ok := ud.Lookup("removedFields").ArrayOK(); ok {
		vs, _ := rf.Values()
		for _, v := range vs {
			seen["removedFields"]++
			if strings.Contains(v.StringValue(), ".") {
				seen["dotted removedFields"]++
			}
		}
	}
	if _, err := ud.LookupErr("disambiguatedPaths"); err == nil {
		seen["disambiguatedPaths"]++
	}
}

// gen makes random nested documents and updates.
type gen struct{ rng *rand.Rand }

var (
	propNames = []string{"a", "b", "c", "sub", "arr", "0", "1", "7", "n"}
)

// Field names with a dot are left out of the documents: mongo-java-server
// refuses every update of a document that holds one ("illegal field name"),
// on the source and on the destination alike, and a description that
// changes such a field needs disambiguatedPaths, which the log does not
// carry (docs/testing.md, "What the log does not carry").

func (g *gen) doc(id int) bson.D {
	d := bson.D{{Key: "_id", Value: int32(id)}}
	for _, k := range []string{"a", "sub", "arr", "docs", "m"} {
		switch k {
		case "arr":
			d = append(d, bson.E{Key: k, Value: g.array(2, false)})
		case "docs":
			d = append(d, bson.E{Key: k, Value: g.array(2, true)})
		case "m": // an object with numeric-string keys
			d = append(d, bson.E{Key: k, Value: bson.D{{Key: "0", Value: g.scalar()}, {Key: "2", Value: g.object(1)}, {Key: "10", Value: g.array(1, false)}}})
		default:
			d = append(d, bson.E{Key: k, Value: g.value(2)})
		}
	}
	return d
}

func (g *gen) scalar() any {
	switch g.rng.IntN(6) {
	case 0:
		return int32(g.rng.IntN(100))
	case 1:
		return int64(g.rng.IntN(1000))
	case 2:
		return float64(g.rng.IntN(100)) / 4
	case 3:
		return fmt.Sprintf("s%d", g.rng.IntN(10))
	case 4:
		return g.rng.IntN(2) == 0
	}
	return nil
}

func (g *gen) value(depth int) any {
	if depth <= 0 {
		return g.scalar()
	}
	switch g.rng.IntN(4) {
	case 0:
		return g.object(depth - 1)
	case 1:
		return g.array(depth-1, g.rng.IntN(2) == 0)
	}
	return g.scalar()
}

func (g *gen) object(depth int) bson.D {
	d := bson.D{}
	n := 1 + g.rng.IntN(3)
	for _, k := range g.rng.Perm(len(propNames))[:n] {
		d = append(d, bson.E{Key: propNames[k], Value: g.value(depth)})
	}
	return d
}

func (g *gen) array(depth int, ofDocs bool) bson.A {
	a := bson.A{}
	for range g.rng.IntN(5) {
		if ofDocs {
			a = append(a, g.object(depth))
		} else {
			a = append(a, g.scalar())
		}
	}
	return a
}

// pathInfo is an addressable path of the current document and its value.
type pathInfo struct {
	path string
	val  bson.RawValue
}

// paths lists the document's paths that operators can name (no _id).
func paths(prefix string, v bson.RawValue, out *[]pathInfo) {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		es, _ := v.Document().Elements()
		for _, e := range es {
			if strings.Contains(e.Key(), ".") || strings.HasPrefix(e.Key(), "$") || (prefix == "" && e.Key() == "_id") {
				continue
			}
			p := join(prefix, e.Key())
			*out = append(*out, pathInfo{p, e.Value()})
			paths(p, e.Value(), out)
		}
	case bson.TypeArray:
		vs, _ := v.Array().Values()
		for i, x := range vs {
			p := join(prefix, strconv.Itoa(i))
			*out = append(*out, pathInfo{p, x})
			paths(p, x, out)
		}
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// update draws an update for the current document cur: one to three
// operators on distinct, non-overlapping paths, or a pipeline.
func (g *gen) update(cur bson.Raw) any {
	var ps []pathInfo
	paths("", bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: cur}, &ps)
	if g.rng.IntN(8) == 0 {
		return g.pipeline(ps)
	}
	ops := map[string]bson.D{}
	var used []string
	for range 1 + g.rng.IntN(3) {
		op, path, arg := g.operator(ps)
		if path == "" || overlaps(used, path) {
			continue
		}
		if op == "$rename" {
			if overlaps(used, arg.(string)) {
				continue
			}
			used = append(used, arg.(string))
		}
		used = append(used, path)
		ops[op] = append(ops[op], bson.E{Key: path, Value: arg})
	}
	if len(ops) == 0 {
		return bson.D{{Key: "$set", Value: bson.D{{Key: "touched", Value: g.scalar()}}}}
	}
	u := bson.D{}
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for k := range ops {
			if !yield(k) {
				return
			}
		}
	}) {
		u = append(u, bson.E{Key: op, Value: ops[op]})
	}
	return u
}

func overlaps(used []string, p string) bool {
	for _, u := range used {
		if u == p || strings.HasPrefix(u, p+".") || strings.HasPrefix(p, u+".") {
			return true
		}
	}
	return false
}

func (g *gen) operator(ps []pathInfo) (op, path string, arg any) {
	if len(ps) == 0 || g.rng.IntN(10) == 0 {
		// a path that does not exist yet, maybe deep
		p := propNames[g.rng.IntN(len(propNames))]
		if g.rng.IntN(2) == 0 {
			p = "sub." + p + ".new"
		}
		return "$set", p, g.value(1)
	}
	pi := ps[g.rng.IntN(len(ps))]
	switch pi.val.Type {
	case bson.TypeArray:
		n := len(must(pi.val.Array().Values()))
		switch g.rng.IntN(8) {
		case 0:
			return "$push", pi.path, g.scalar()
		case 1:
			each := bson.A{g.scalar(), g.scalar()}
			spec := bson.D{{Key: "$each", Value: each}}
			if g.rng.IntN(2) == 0 {
				spec = append(spec, bson.E{Key: "$position", Value: g.rng.IntN(n + 2)})
			}
			if g.rng.IntN(2) == 0 {
				spec = append(spec, bson.E{Key: "$slice", Value: g.rng.IntN(5) - 2})
			}
			return "$push", pi.path, spec
		case 2:
			return "$pop", pi.path, []int{-1, 1}[g.rng.IntN(2)]
		case 3:
			if n > 0 {
				return "$pull", pi.path, must(pi.val.Array().Values())[g.rng.IntN(n)]
			}
			return "$pull", pi.path, nil
		case 4:
			return "$addToSet", pi.path, g.scalar()
		case 5: // past the end: padded with nulls
			return "$set", pi.path + "." + strconv.Itoa(n+g.rng.IntN(3)), g.scalar()
		case 6:
			return "$unset", pi.path, ""
		}
		return "$set", pi.path, g.array(1, g.rng.IntN(2) == 0)
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		switch g.rng.IntN(6) {
		case 0:
			return "$inc", pi.path, int32(g.rng.IntN(5) + 1)
		case 1:
			return "$mul", pi.path, int32(2)
		case 2:
			return "$min", pi.path, int32(g.rng.IntN(50))
		case 3:
			return "$max", pi.path, int32(g.rng.IntN(50))
		case 4:
			return "$unset", pi.path, ""
		}
		return "$set", pi.path, g.scalar()
	case bson.TypeEmbeddedDocument:
		switch g.rng.IntN(4) {
		case 0:
			return "$unset", pi.path, ""
		case 1:
			if !strings.Contains(pi.path, ".") || !hasIndex(pi.path) {
				return "$rename", pi.path, pi.path + "_r"
			}
		case 2:
			return "$set", pi.path + ".added", g.value(1)
		}
		return "$set", pi.path, g.object(1)
	}
	switch g.rng.IntN(5) {
	case 0:
		return "$unset", pi.path, ""
	case 1:
		if !hasIndex(pi.path) {
			return "$rename", pi.path, pi.path + "_r"
		}
	case 2:
		return "$currentDate", pi.path, true
	}
	return "$set", pi.path, g.value(1)
}

// hasIndex reports a path through an array element ($rename refuses those).
func hasIndex(p string) bool {
	for _, c := range strings.Split(p, ".") {
		if _, err := strconv.Atoi(c); err == nil {
			return true
		}
	}
	return false
}

// pipeline draws a pipeline update: an array shortened with $slice (the
// delta's truncatedArrays), a field removed, a sub-document field set.
func (g *gen) pipeline(ps []pathInfo) any {
	// arrays of at least three elements, cut by one: a delta records that
	// as a truncation (for a shorter array the whole new array is the
	// smaller record, and MongoDB logs that instead)
	type arr struct {
		path string
		n    int
	}
	var arrays []arr
	for _, p := range ps {
		if p.val.Type != bson.TypeArray || hasIndex(p.path) {
			continue
		}
		if n := len(must(p.val.Array().Values())); n > 2 {
			arrays = append(arrays, arr{p.path, n})
		}
	}
	// (a dotted $set into a field that is an array makes mongo-java-server
	// fail with a ClassCastException: top-level fields only)
	set := bson.D{{Key: "piped", Value: g.scalar()}}
	if len(arrays) > 0 {
		a := arrays[g.rng.IntN(len(arrays))]
		set = append(set, bson.E{Key: a.path, Value: bson.D{{Key: "$slice", Value: bson.A{"$" + a.path, a.n - 1}}}})
	}
	st := mongo.Pipeline{{{Key: "$set", Value: set}}}
	if g.rng.IntN(2) == 0 {
		st = append(st, bson.D{{Key: "$unset", Value: "a"}})
	}
	return st
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
