package mongoshim

import (
	"bytes"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Stages after $changeStream, as MongoDB allows them there: $match,
// $project, $addFields/$set, $unset, $replaceRoot/$replaceWith (and
// $changeStreamSplitLargeEvent, handled by the cursor). Expressions are the
// subset clients put there — field paths ("$ns.db"), $$ROOT/$$CURRENT/
// $$REMOVE, object and array literals, $literal, $concat, $ifNull, $cond,
// $eq/$ne/$gt/$gte/$lt/$lte, $and/$or/$not, $in, $toLower/$toUpper,
// $toString — enough for the pipelines of the Debezium and Kafka connectors
// ($replaceRoot around the event, a $match on a computed namespace). An
// aggregate with anything else is refused when it is opened, never run with
// the stage skipped: $redact and other expression operators with an error
// naming what mongoshim lacks; stages MongoDB does not allow after
// $changeStream ($group, $sort, $limit, $lookup, …) with MongoDB's
// IllegalOperation "… is not permitted in a $changeStream pipeline"; an
// unknown stage with MongoDB's 40324. An event whose _id (its resume token)
// a stage changed fails the stream with ChangeStreamFatalError (280), as in
// MongoDB.

// csStage transforms one rendered event; keep false drops it.
type csStage struct {
	split bool // $changeStreamSplitLargeEvent (handled by the cursor)
	apply func(doc bson.Raw) (out bson.Raw, keep bool, err error)
	// imageFreeMatch is set for a $match that does not name fullDocument
	// or fullDocumentBeforeChange: mongod evaluates it before the image
	// lookups (droppedBeforeImages).
	imageFreeMatch func(doc bson.Raw) bool
}

// csDenied are the stages MongoDB refuses after $changeStream.
var csDenied = map[string]bool{"$group": true, "$sort": true, "$skip": true, "$limit": true, "$sample": true,
	"$unwind": true, "$lookup": true, "$graphLookup": true, "$bucket": true, "$bucketAuto": true, "$facet": true,
	"$count": true, "$out": true, "$merge": true, "$sortByCount": true, "$unionWith": true, "$densify": true,
	"$fill": true, "$setWindowFields": true, "$geoNear": true, "$indexStats": true, "$collStats": true,
	"$currentOp": true, "$listSessions": true, "$documents": true, "$search": true, "$changeStream": true}

func (s *Server) parseStage(d bson.Raw) (*csStage, error) {
	name := cmdName(d)
	v := firstValue(d)
	switch name {
	case "$match":
		f, ok := v.DocumentOK()
		if !ok {
			return nil, shimErr(codeFailedToParse, "the match filter must be an expression in an object")
		}
		m, err := newMatcher(f)
		if err != nil {
			return nil, shimErr(codeBadValue, err.Error())
		}
		st := &csStage{apply: func(doc bson.Raw) (bson.Raw, bool, error) { return doc, m.match(doc), nil }}
		if !bytes.Contains(f, []byte("fullDocument")) {
			st.imageFreeMatch = m.match
		}
		return st, nil
	case "$project":
		f, ok := v.DocumentOK()
		if !ok {
			return nil, shimErr(codeFailedToParse, "$project specification must be an object")
		}
		p, err := compileProjection(f)
		if err != nil {
			return nil, err
		}
		return treeStage(p), nil
	case "$unset":
		var paths []string
		if str, ok := v.StringValueOK(); ok {
			paths = append(paths, str)
		} else {
			for _, e := range arrayValues(v) {
				str, ok := e.StringValueOK()
				if !ok {
					return nil, shimErr(31120, "$unset specification must be a string or an array containing only string values")
				}
				paths = append(paths, str)
			}
		}
		if len(paths) == 0 {
			return nil, shimErr(31119, "$unset specification must be a string or an array with at least one field")
		}
		p := &projection{exclude: true, tree: map[string]*projNode{}}
		for _, path := range paths {
			p.add(strings.Split(path, "."), nil, false)
		}
		return treeStage(p), nil
	case "$addFields", "$set":
		f, ok := v.DocumentOK()
		if !ok {
			return nil, shimErr(40272, name+" specification stage must be an object")
		}
		type setField struct {
			path []string
			e    expr
		}
		var sets []setField
		es, _ := f.Elements()
		for _, e := range es {
			x, err := compileExpr(e.Value())
			if err != nil {
				return nil, err
			}
			sets = append(sets, setField{strings.Split(e.Key(), "."), x})
		}
		return treeStage(treeFunc(func(root *tdoc) (any, error) {
			vals := make([]any, len(sets))
			for i, sf := range sets {
				vals[i] = sf.e(root) // all against the input, as MongoDB
			}
			for i, sf := range sets {
				setPath(root, sf.path, vals[i])
			}
			return root, nil
		})), nil
	case "$replaceRoot", "$replaceWith":
		nv := v
		if name == "$replaceRoot" {
			f, ok := v.DocumentOK()
			if !ok || f.Lookup("newRoot").Type == 0 {
				return nil, shimErr(40231, "no newRoot specified for the $replaceRoot stage")
			}
			nv = f.Lookup("newRoot")
		}
		x, err := compileExpr(nv)
		if err != nil {
			return nil, err
		}
		return treeStage(treeFunc(func(root *tdoc) (any, error) {
			out := x(root)
			if _, ok := out.(*tdoc); !ok {
				return nil, shimErr(40228, fmt.Sprintf("'replacement document' must evaluate to an object, but resulting value was: %v", fromTree(out)))
			}
			return out, nil
		})), nil
	case "$changeStreamSplitLargeEvent":
		return &csStage{split: true}, nil
	case "$redact":
		return nil, shimErr(codeIllegalOperation, "mongoshim does not implement $redact after $changeStream (MongoDB allows it); the aggregate is refused rather than run without it")
	}
	if csDenied[name] {
		return nil, shimErr(codeIllegalOperation, name+" is not permitted in a $changeStream pipeline")
	}
	return nil, shimErr(40324, "Unrecognized pipeline stage name: '"+name+"'")
}

// treeTransform rewrites an event as a tree.
type treeTransform interface {
	transform(root *tdoc) (any, error)
}

type treeFunc func(root *tdoc) (any, error)

func (f treeFunc) transform(root *tdoc) (any, error) { return f(root) }

func treeStage(t treeTransform) *csStage {
	return &csStage{apply: func(doc bson.Raw) (bson.Raw, bool, error) {
		root := toTree(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}).(*tdoc)
		out, err := t.transform(root)
		if err != nil {
			return nil, false, err
		}
		return mustRaw(out.(*tdoc).bson()), true, nil
	}}
}

// checkToken fails an event whose resume token a stage changed.
func checkToken(orig, out bson.Raw) error {
	a, b := orig.Lookup("_id"), out.Lookup("_id")
	if a.Type == b.Type && bytes.Equal(a.Value, b.Value) {
		return nil
	}
	return shimErr(280, "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.")
}

// ------------------------------------------------------------- projection --

type projNode struct {
	leaf bool
	e    expr // computed (inclusion projections only)
	sub  map[string]*projNode
	keys []string // sub's keys in spec order
}

type projection struct {
	exclude bool
	idOff   bool
	tree    map[string]*projNode
	keys    []string
}

func (p *projection) add(path []string, e expr, _ bool) {
	m, keys := &p.tree, &p.keys
	for i, c := range path {
		n, ok := (*m)[c]
		if !ok {
			n = &projNode{sub: map[string]*projNode{}}
			(*m)[c] = n
			*keys = append(*keys, c)
		}
		if i == len(path)-1 {
			n.leaf, n.e = true, e
			return
		}
		m, keys = &n.sub, &n.keys
	}
}

func compileProjection(f bson.Raw) (*projection, error) {
	p := &projection{tree: map[string]*projNode{}}
	es, _ := f.Elements()
	if len(es) == 0 {
		return nil, shimErr(51272, "projection specification must have at least one field")
	}
	incl, excl := false, false
	for _, e := range es {
		v := e.Value()
		path := strings.Split(e.Key(), ".")
		switch v.Type {
		case bson.TypeBoolean, bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
			on := truthy(v)
			if e.Key() == "_id" {
				p.idOff = !on
				if on {
					p.add(path, nil, true)
				}
				continue
			}
			if on {
				incl = true
			} else {
				excl = true
			}
			p.add(path, nil, on)
		default:
			x, err := compileExpr(v)
			if err != nil {
				return nil, err
			}
			incl = true
			p.add(path, x, true)
		}
	}
	if incl && excl {
		return nil, shimErr(31254, "Invalid $project :: caused by :: Cannot do exclusion on field in inclusion projection")
	}
	p.exclude = !incl
	if p.exclude && p.idOff {
		p.add([]string{"_id"}, nil, false)
	}
	if !p.exclude && !p.idOff {
		if _, ok := p.tree["_id"]; !ok {
			p.tree["_id"] = &projNode{leaf: true, sub: map[string]*projNode{}}
			p.keys = append([]string{"_id"}, p.keys...)
		}
	}
	return p, nil
}

func (p *projection) transform(root *tdoc) (any, error) {
	if p.exclude {
		return excludeDoc(root, p.tree), nil
	}
	return includeDoc(root, root, p.tree, p.keys), nil
}

func excludeDoc(d *tdoc, tree map[string]*projNode) *tdoc {
	out := &tdoc{}
	for i, k := range d.keys {
		n, ok := tree[k]
		switch {
		case !ok:
			out.keys, out.vals = append(out.keys, k), append(out.vals, d.vals[i])
		case n.leaf:
		default:
			out.keys, out.vals = append(out.keys, k), append(out.vals, excludeValue(d.vals[i], n.sub))
		}
	}
	return out
}

func excludeValue(v any, tree map[string]*projNode) any {
	switch x := v.(type) {
	case *tdoc:
		return excludeDoc(x, tree)
	case *tarr:
		out := &tarr{}
		for _, e := range x.vals {
			out.vals = append(out.vals, excludeValue(e, tree))
		}
		return out
	}
	return v
}

func includeDoc(root, d *tdoc, tree map[string]*projNode, keys []string) *tdoc {
	out := &tdoc{}
	for i, k := range d.keys {
		n, ok := tree[k]
		if !ok || n.e != nil {
			continue
		}
		if n.leaf {
			out.keys, out.vals = append(out.keys, k), append(out.vals, d.vals[i])
			continue
		}
		if v, keep := includeValue(root, d.vals[i], n); keep {
			out.keys, out.vals = append(out.keys, k), append(out.vals, v)
		}
	}
	// computed fields after the included ones, in the specification's order
	for _, k := range keys {
		n := tree[k]
		if n.e != nil {
			if v := n.e(root); v != nil {
				setPath(out, []string{k}, v)
			}
		} else if !n.leaf && hasComputed(n) {
			if j := indexOf(out.keys, k); j < 0 {
				sub := includeDoc(root, &tdoc{}, n.sub, n.keys)
				if len(sub.keys) > 0 {
					out.keys, out.vals = append(out.keys, k), append(out.vals, sub)
				}
			}
		}
	}
	return out
}

func hasComputed(n *projNode) bool {
	for _, c := range n.sub {
		if c.e != nil || hasComputed(c) {
			return true
		}
	}
	return false
}

func includeValue(root *tdoc, v any, n *projNode) (any, bool) {
	switch x := v.(type) {
	case *tdoc:
		return includeDoc(root, x, n.sub, n.keys), true
	case *tarr:
		out := &tarr{}
		for _, e := range x.vals {
			if ev, keep := includeValue(root, e, n); keep {
				out.vals = append(out.vals, ev)
			}
		}
		return out, true
	}
	return nil, false // a scalar below an included path is left out
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

// setPath sets a dotted path as $addFields does (nil removes the field,
// as $$REMOVE; through an array it sets the field in every element).
func setPath(d *tdoc, path []string, v any) {
	k := path[0]
	j := indexOf(d.keys, k)
	if len(path) == 1 {
		switch {
		case v == nil && j >= 0:
			d.keys = append(d.keys[:j], d.keys[j+1:]...)
			d.vals = append(d.vals[:j], d.vals[j+1:]...)
		case v == nil:
		case j >= 0:
			d.vals[j] = v
		default:
			d.keys, d.vals = append(d.keys, k), append(d.vals, v)
		}
		return
	}
	if j < 0 {
		d.keys, d.vals = append(d.keys, k), append(d.vals, &tdoc{})
		j = len(d.keys) - 1
	}
	switch x := d.vals[j].(type) {
	case *tdoc:
		setPath(x, path[1:], v)
	case *tarr:
		for i, e := range x.vals {
			ed, ok := e.(*tdoc)
			if !ok {
				ed = &tdoc{}
				x.vals[i] = ed
			}
			setPath(ed, path[1:], v)
		}
	default:
		nd := &tdoc{}
		d.vals[j] = nd
		setPath(nd, path[1:], v)
	}
}

// ------------------------------------------------------------ expressions --

// expr evaluates against the event; nil is a missing value.
type expr func(root *tdoc) any

var nullValue = bson.RawValue{Type: bson.TypeNull}

func compileExpr(v bson.RawValue) (expr, error) {
	switch v.Type {
	case bson.TypeString:
		s := v.StringValue()
		switch {
		case strings.HasPrefix(s, "$$"):
			name, rest, _ := strings.Cut(s[2:], ".")
			var parts []string
			if rest != "" {
				parts = strings.Split(rest, ".")
			}
			switch name {
			case "ROOT", "CURRENT":
				return func(root *tdoc) any { return getPath(root, parts) }, nil
			case "REMOVE":
				return func(*tdoc) any { return nil }, nil
			}
			return nil, shimErr(17276, "Use of undefined variable: "+name)
		case strings.HasPrefix(s, "$"):
			parts := strings.Split(s[1:], ".")
			return func(root *tdoc) any { return getPath(root, parts) }, nil
		}
		return func(*tdoc) any { return v }, nil
	case bson.TypeEmbeddedDocument:
		d := v.Document()
		es, _ := d.Elements()
		if len(es) > 0 && strings.HasPrefix(es[0].Key(), "$") {
			if len(es) != 1 {
				return nil, shimErr(15983, "an expression specification must contain exactly one field, the name of the expression. Found "+itoa(len(es))+" fields in "+d.String())
			}
			return compileOp(es[0].Key(), es[0].Value())
		}
		type field struct {
			k string
			e expr
		}
		var fs []field
		for _, e := range es {
			x, err := compileExpr(e.Value())
			if err != nil {
				return nil, err
			}
			fs = append(fs, field{e.Key(), x})
		}
		return func(root *tdoc) any {
			out := &tdoc{}
			for _, f := range fs {
				if r := f.e(root); r != nil {
					out.keys, out.vals = append(out.keys, f.k), append(out.vals, r)
				}
			}
			return out
		}, nil
	case bson.TypeArray:
		var xs []expr
		for _, e := range arrayValues(v) {
			x, err := compileExpr(e)
			if err != nil {
				return nil, err
			}
			xs = append(xs, x)
		}
		return func(root *tdoc) any {
			out := &tarr{}
			for _, x := range xs {
				r := x(root)
				if r == nil {
					r = nullValue
				}
				out.vals = append(out.vals, r)
			}
			return out
		}, nil
	}
	return func(*tdoc) any { return v }, nil
}

func compileArgs(v bson.RawValue) ([]expr, error) {
	vals := []bson.RawValue{v}
	if v.Type == bson.TypeArray {
		vals = arrayValues(v)
	}
	var out []expr
	for _, a := range vals {
		x, err := compileExpr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func compileOp(op string, arg bson.RawValue) (expr, error) {
	if op == "$literal" {
		lit := toTree(arg)
		return func(*tdoc) any { return lit }, nil
	}
	if op == "$cond" && arg.Type == bson.TypeEmbeddedDocument {
		d := arg.Document()
		arg = toRawValue(bson.A{d.Lookup("if"), d.Lookup("then"), d.Lookup("else")})
	}
	args, err := compileArgs(arg)
	if err != nil {
		return nil, err
	}
	need := func(n int) error {
		if len(args) != n {
			return shimErr(16020, fmt.Sprintf("Expression %s takes exactly %d arguments. %d were passed in.", op, n, len(args)))
		}
		return nil
	}
	switch op {
	case "$concat":
		return func(root *tdoc) any {
			var b strings.Builder
			for _, a := range args {
				r, ok := a(root).(bson.RawValue)
				if !ok || r.Type == bson.TypeNull || r.Type == bson.TypeUndefined {
					return nullValue
				}
				s, ok := r.StringValueOK()
				if !ok {
					return nullValue // MongoDB fails on a non-string; null keeps a stream going
				}
				b.WriteString(s)
			}
			return toRawValue(b.String())
		}, nil
	case "$ifNull":
		return func(root *tdoc) any {
			for i, a := range args {
				r := a(root)
				if rv, ok := r.(bson.RawValue); i < len(args)-1 && (r == nil || ok && (rv.Type == bson.TypeNull || rv.Type == bson.TypeUndefined)) {
					continue
				}
				return r
			}
			return nil
		}, nil
	case "$cond":
		if err := need(3); err != nil {
			return nil, err
		}
		return func(root *tdoc) any {
			if truthyTree(args[0](root)) {
				return args[1](root)
			}
			return args[2](root)
		}, nil
	case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
		if err := need(2); err != nil {
			return nil, err
		}
		return func(root *tdoc) any {
			c := Compare(treeValue(args[0](root)), treeValue(args[1](root)))
			var r bool
			switch op {
			case "$eq":
				r = c == 0
			case "$ne":
				r = c != 0
			case "$gt":
				r = c > 0
			case "$gte":
				r = c >= 0
			case "$lt":
				r = c < 0
			case "$lte":
				r = c <= 0
			}
			return toRawValue(r)
		}, nil
	case "$and", "$or":
		return func(root *tdoc) any {
			for _, a := range args {
				if t := truthyTree(a(root)); t != (op == "$and") {
					return toRawValue(t)
				}
			}
			return toRawValue(op == "$and")
		}, nil
	case "$not":
		if err := need(1); err != nil {
			return nil, err
		}
		return func(root *tdoc) any { return toRawValue(!truthyTree(args[0](root))) }, nil
	case "$in":
		if err := need(2); err != nil {
			return nil, err
		}
		return func(root *tdoc) any {
			x := treeValue(args[0](root))
			arr, ok := args[1](root).(*tarr)
			if !ok {
				return toRawValue(false)
			}
			for _, e := range arr.vals {
				if Compare(x, treeValue(e)) == 0 {
					return toRawValue(true)
				}
			}
			return toRawValue(false)
		}, nil
	case "$slice":
		if len(args) != 2 && len(args) != 3 {
			return nil, shimErr(28667, fmt.Sprintf("Expression $slice takes at least 2 arguments, and at most 3, but %d were passed in.", len(args)))
		}
		return func(root *tdoc) any {
			arr, ok := args[0](root).(*tarr)
			if !ok {
				return nullValue
			}
			n := len(arr.vals)
			num := func(x any) (int, bool) {
				r, ok := x.(bson.RawValue)
				if !ok {
					return 0, false
				}
				v, ok := r.AsInt64OK()
				if !ok {
					f, isF := r.DoubleOK()
					v, ok = int64(f), isF
				}
				return int(v), ok
			}
			start, count := 0, 0
			if len(args) == 2 {
				c, ok := num(args[1](root))
				if !ok {
					return nullValue
				}
				if c >= 0 {
					count = min(c, n)
				} else {
					start, count = max(0, n+c), min(-c, n)
				}
			} else {
				p, ok1 := num(args[1](root))
				c, ok2 := num(args[2](root))
				if !ok1 || !ok2 || c <= 0 {
					return nullValue
				}
				if p < 0 {
					p = max(0, n+p)
				}
				start, count = min(p, n), c
			}
			end := min(n, start+count)
			return &tarr{vals: append([]any(nil), arr.vals[start:end]...)}
		}, nil
	case "$concatArrays":
		return func(root *tdoc) any {
			out := &tarr{}
			for _, a := range args {
				arr, ok := a(root).(*tarr)
				if !ok {
					return nullValue
				}
				out.vals = append(out.vals, arr.vals...)
			}
			return out
		}, nil
	case "$size":
		if err := need(1); err != nil {
			return nil, err
		}
		return func(root *tdoc) any {
			if arr, ok := args[0](root).(*tarr); ok {
				return toRawValue(int32(len(arr.vals)))
			}
			return nullValue
		}, nil
	case "$toLower", "$toUpper", "$toString":
		if err := need(1); err != nil {
			return nil, err
		}
		return func(root *tdoc) any {
			r, ok := args[0](root).(bson.RawValue)
			if !ok || r.Type == bson.TypeNull {
				if op == "$toString" {
					return nullValue
				}
				return toRawValue("")
			}
			var s string
			switch r.Type {
			case bson.TypeString:
				s = r.StringValue()
			case bson.TypeObjectID:
				s = r.ObjectID().Hex()
			case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeBoolean:
				s = strings.Trim(r.String(), `"`)
				if n, ok := r.AsInt64OK(); ok && r.Type != bson.TypeDouble {
					s = fmt.Sprint(n)
				}
			default:
				s = r.String()
			}
			switch op {
			case "$toLower":
				s = strings.ToLower(s)
			case "$toUpper":
				s = strings.ToUpper(s)
			}
			return toRawValue(s)
		}, nil
	}
	return nil, shimErr(codeIllegalOperation, "mongoshim does not implement the expression "+op+" in a change stream stage (MongoDB does); the aggregate is refused rather than run without it")
}

// getPath reads a field path; through arrays it collects the values of the
// elements, as MongoDB's field paths do. nil: missing.
func getPath(v any, parts []string) any {
	if len(parts) == 0 {
		return v
	}
	switch x := v.(type) {
	case *tdoc:
		j := indexOf(x.keys, parts[0])
		if j < 0 {
			return nil
		}
		return getPath(x.vals[j], parts[1:])
	case *tarr:
		out := &tarr{}
		for _, e := range x.vals {
			if _, isDoc := e.(*tdoc); !isDoc {
				if _, isArr := e.(*tarr); !isArr {
					continue
				}
			}
			if r := getPath(e, parts); r != nil {
				out.vals = append(out.vals, r)
			}
		}
		return out
	}
	return nil
}

func treeValue(v any) bson.RawValue {
	if v == nil {
		return bson.RawValue{Type: bson.TypeUndefined} // missing sorts as undefined/null would
	}
	if r, ok := v.(bson.RawValue); ok {
		return r
	}
	return toRawValue(fromTree(v))
}

func truthyTree(v any) bool {
	if v == nil {
		return false
	}
	r, ok := v.(bson.RawValue)
	if !ok {
		return true
	}
	switch r.Type {
	case bson.TypeBoolean:
		return r.Boolean()
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		n, _ := r.AsFloat64OK()
		return n != 0
	}
	return truthy(r)
}

// updatePipelineStages are the stages MongoDB allows in an update pipeline.
var updatePipelineStages = map[string]bool{"$addFields": true, "$set": true, "$project": true, "$unset": true, "$replaceRoot": true, "$replaceWith": true}

// runUpdatePipeline applies an update pipeline to a document: what
// mongo-java-server cannot do (it fails pipeline updates with a
// ClassCastException), so the shim computes the new document and stores it
// as a replacement (writes.go).
func (s *Server) runUpdatePipeline(pipeline bson.RawValue, doc bson.Raw) (bson.Raw, error) {
	out := doc
	for _, st := range arrayValues(pipeline) {
		d, ok := st.DocumentOK()
		if !ok {
			return nil, shimErr(codeFailedToParse, "each element of the update pipeline must be an object")
		}
		if name := cmdName(d); !updatePipelineStages[name] {
			return nil, shimErr(codeInvalidOptions, name+" is not allowed to be used within an update")
		}
		stage, err := s.parseStage(d)
		if err != nil {
			return nil, err
		}
		if out, _, err = stage.apply(out); err != nil {
			return nil, err
		}
	}
	a, b := doc.Lookup("_id"), out.Lookup("_id")
	if a.Type != b.Type || !bytes.Equal(a.Value, b.Value) {
		return nil, shimErr(66, "Performing an update on the path '_id' would modify the immutable field '_id'")
	}
	return out, nil
}
