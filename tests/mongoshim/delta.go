package mongoshim

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An update's change event carries MongoDB's updateDescription, which the
// server derives from the oplog entry's v2 delta ($v: 2, diff). The shim
// has no oplog entry, only the update statement and the pre- and post-images
// it read under its write lock, so it rebuilds the delta the way the server's
// update system logs it (docs/testing.md "updateDescription" has the rules
// with examples):
//
//   - an operator update logs, per modified path in the order the server
//     applies them (path components in field order, numeric components in
//     numeric order): an existing value changed → "u" at that path (the whole
//     new value); a path created → "i" at its first new component (the new
//     sub-document whole; an array index past the end is padded with nulls
//     and only the index set is logged); $unset of a field → "d"; $unset of an
//     array element → "u" null; $push that only appends to a non-empty array
//     → one "u" per appended element; any other array change ($push with
//     $position/$sort/$slice trimming, $pop, $pull, $pullAll, $addToSet) →
//     the whole array; $rename → its target as a $set, its source as $unset.
//     Operator updates never resize arrays in the delta, so they never give
//     truncatedArrays.
//   - a pipeline update is diffed (the server's document diff calculator):
//     removed fields, changed fields (recursing into sub-documents and
//     arrays when the sub-diff is smaller than the new value), arrays that
//     got shorter → truncatedArrays.
//
// The change stream then turns the delta into updatedFields ("u"/"i", dotted
// paths), removedFields ("d") and truncatedArrays (array resize), per level
// in that order, sub-diffs last; disambiguatedPaths lists every path with a
// numeric field name below the top level or a field name containing a dot.
//
// Each rebuilt description is checked by applying it to the pre-image; one
// that does not give the post-image exactly (an operator form not modelled
// here: positional $, arrayFilters, a backend quirk) is replaced by the
// pipeline diff, and if even that cannot express the change (fields that
// changed order), the event becomes a replace, as MongoDB logs a pipeline
// update whose diff is not worth it.

// pathComp is one component of a path in a document: a field name, or an
// array index.
type pathComp struct {
	name  string
	index int
	isIdx bool
}

// dnode is a document level of a delta.
type dnode struct {
	updates []dfield // "u": existing fields given a new value
	inserts []dfield // "i": fields created
	deletes []string // "d"
	subs    []dsub   // "s": sub-diffs, in the order they were added
}

type dfield struct {
	name string
	val  bson.RawValue
}

type dsub struct {
	name string
	doc  *dnode
	arr  *anode
}

// anode is an array level of a delta.
type anode struct {
	newSize int // -1: not resized
	elems   map[int]aelem
}

type aelem struct {
	val *bson.RawValue
	doc *dnode
	arr *anode
}

func newANode() *anode { return &anode{newSize: -1, elems: map[int]aelem{}} }

func (n *dnode) child(name string) (*dsub, bool) {
	for i := range n.subs {
		if n.subs[i].name == name {
			return &n.subs[i], true
		}
	}
	return nil, false
}

// logAt records a leaf at path (types[i] says whether component i is an
// array index): kind is 'u', 'i' or 'd'.
func (n *dnode) logAt(path []pathComp, kind byte, val bson.RawValue) {
	var docNode = n
	var arrNode *anode
	for i, c := range path {
		last := i == len(path)-1
		nextIdx := !last && path[i+1].isIdx
		if last {
			if arrNode != nil {
				v := val
				if kind == 'd' {
					v = bson.RawValue{Type: bson.TypeNull}
				}
				arrNode.elems[c.index] = aelem{val: &v}
				return
			}
			switch kind {
			case 'u':
				docNode.updates = append(docNode.updates, dfield{c.name, val})
			case 'i':
				docNode.inserts = append(docNode.inserts, dfield{c.name, val})
			case 'd':
				docNode.deletes = append(docNode.deletes, c.name)
			}
			return
		}
		if arrNode != nil {
			e, ok := arrNode.elems[c.index]
			if !ok || e.val != nil {
				if nextIdx {
					e = aelem{arr: newANode()}
				} else {
					e = aelem{doc: &dnode{}}
				}
				arrNode.elems[c.index] = e
			}
			docNode, arrNode = e.doc, e.arr
			continue
		}
		s, ok := docNode.child(c.name)
		if !ok {
			ns := dsub{name: c.name}
			if nextIdx {
				ns.arr = newANode()
			} else {
				ns.doc = &dnode{}
			}
			docNode.subs = append(docNode.subs, ns)
			s = &docNode.subs[len(docNode.subs)-1]
		}
		docNode, arrNode = s.doc, s.arr
	}
}

// ------------------------------------------------------------ description --

// describe turns a delta into updateDescription's parts, as the change
// stream's diff parser does.
type descBuilder struct {
	path    []pathComp
	amb     []bool
	updated []bson.E
	removed bson.A
	trunc   bson.A
	disamb  bson.D
}

func (b *descBuilder) push(c pathComp) {
	b.path = append(b.path, c)
	prev := len(b.amb) > 0 && b.amb[len(b.amb)-1]
	a := prev
	if !prev && !c.isIdx {
		numeric := len(b.path) > 1 && strictNumeric(c.name)
		a = numeric || strings.Contains(c.name, ".")
	}
	b.amb = append(b.amb, a)
}

func (b *descBuilder) pop() {
	b.path = b.path[:len(b.path)-1]
	b.amb = b.amb[:len(b.amb)-1]
}

func (b *descBuilder) dotted() string {
	parts := make([]string, len(b.path))
	for i, c := range b.path {
		parts[i] = c.key()
	}
	return strings.Join(parts, ".")
}

func (c pathComp) key() string {
	if c.isIdx {
		return strconv.Itoa(c.index)
	}
	return c.name
}

func (b *descBuilder) noteAmbiguous() {
	if len(b.amb) == 0 || !b.amb[len(b.amb)-1] {
		return
	}
	parts := bson.A{}
	for _, c := range b.path {
		if c.isIdx {
			parts = append(parts, int32(c.index))
		} else {
			parts = append(parts, c.name)
		}
	}
	b.disamb = append(b.disamb, bson.E{Key: b.dotted(), Value: parts})
}

func (b *descBuilder) leaf(c pathComp, f func()) {
	b.push(c)
	f()
	b.noteAmbiguous()
	b.pop()
}

func (b *descBuilder) doc(n *dnode) {
	for _, f := range slices.Concat(n.updates, n.inserts) {
		b.leaf(pathComp{name: f.name}, func() { b.updated = append(b.updated, bson.E{Key: b.dotted(), Value: f.val}) })
	}
	for _, d := range n.deletes {
		b.leaf(pathComp{name: d}, func() { b.removed = append(b.removed, b.dotted()) })
	}
	for _, s := range n.subs {
		b.push(pathComp{name: s.name})
		b.sub(s.doc, s.arr)
		b.pop()
	}
}

func (b *descBuilder) sub(d *dnode, a *anode) {
	if d != nil {
		b.doc(d)
		return
	}
	if a.newSize >= 0 {
		b.trunc = append(b.trunc, bson.D{{Key: "field", Value: b.dotted()}, {Key: "newSize", Value: int32(a.newSize)}})
		b.noteAmbiguous()
	}
	idx := make([]int, 0, len(a.elems))
	for i := range a.elems {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		e := a.elems[i]
		c := pathComp{index: i, isIdx: true}
		if e.val != nil {
			b.leaf(c, func() { b.updated = append(b.updated, bson.E{Key: b.dotted(), Value: *e.val}) })
			continue
		}
		b.push(c)
		b.sub(e.doc, e.arr)
		b.pop()
	}
}

// updateDescription is what a change event shows: plain, and with the
// disambiguatedPaths of showExpandedEvents (nil when no path is ambiguous).
type updateDescription struct {
	plain, expanded bson.Raw
	updated         bson.D
	removed         []string
	trunc           []truncated
	disamb          bson.D
}

type truncated struct {
	field   string
	newSize int
}

func describe(n *dnode) updateDescription {
	b := &descBuilder{}
	b.doc(n)
	upd := bson.D(b.updated)
	if upd == nil {
		upd = bson.D{}
	}
	d := bson.D{
		{Key: "updatedFields", Value: upd},
		{Key: "removedFields", Value: b.removed},
		{Key: "truncatedArrays", Value: b.trunc},
	}
	if d[1].Value.(bson.A) == nil {
		d[1].Value = bson.A{}
	}
	if d[2].Value.(bson.A) == nil {
		d[2].Value = bson.A{}
	}
	out := updateDescription{plain: mustRaw(d), updated: upd}
	for _, r := range b.removed {
		out.removed = append(out.removed, r.(string))
	}
	for _, t := range b.trunc {
		td := t.(bson.D)
		out.trunc = append(out.trunc, truncated{td[0].Value.(string), int(td[1].Value.(int32))})
	}
	if len(b.disamb) > 0 {
		out.disamb = b.disamb
		out.expanded = mustRaw(append(d, bson.E{Key: "disambiguatedPaths", Value: b.disamb}))
	}
	return out
}

// strictNumeric is MongoDB's FieldRef::isNumericPathComponentStrict: digits,
// no leading zero unless "0".
func strictNumeric(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ----------------------------------------------------------- operator log --

type opPath struct {
	op    string
	comps []string
	arg   bson.RawValue
	key   []string // where the server's update tree applies it
}

// comparePaths orders update paths as the server's update tree applies them:
// component by component, numeric components numerically.
func comparePaths(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if strictNumeric(x) && strictNumeric(y) {
			xi, _ := strconv.Atoi(x)
			yi, _ := strconv.Atoi(y)
			if xi != yi {
				return xi - yi
			}
			continue
		}
		return strings.Compare(x, y)
	}
	return len(a) - len(b)
}

// resolved is where a path leads in a document.
type resolved struct {
	comps    []pathComp // the path, typed (index or field name)
	existing int        // components that exist (== len(comps) when found)
	val      bson.RawValue
	viable   bool // false: the path runs through a scalar, or a name into an array
}

func resolvePath(doc bson.Raw, comps []string) resolved {
	r := resolved{comps: make([]pathComp, len(comps)), viable: true}
	cur := bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}
	r.existing = -1
	for i, c := range comps {
		switch cur.Type {
		case bson.TypeEmbeddedDocument:
			r.comps[i] = pathComp{name: c}
			if r.existing >= 0 {
				continue
			}
			v, err := bson.Raw(cur.Value).LookupErr(c)
			if err != nil {
				r.existing = i
				cur = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: emptyDocBytes}
				continue
			}
			cur = v
		case bson.TypeArray:
			if r.existing >= 0 {
				r.comps[i] = pathComp{name: c}
				continue
			}
			if !strictNumeric(c) {
				r.viable = false
				return r
			}
			idx, _ := strconv.Atoi(c)
			r.comps[i] = pathComp{index: idx, isIdx: true}
			vals, _ := bson.Raw(cur.Value).Values()
			if idx >= len(vals) {
				r.existing = i
				cur = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: emptyDocBytes}
				continue
			}
			cur = vals[idx]
		default:
			r.viable = false
			return r
		}
	}
	if r.existing < 0 {
		r.existing = len(comps)
		r.val = cur
	}
	return r
}

var emptyDocBytes = []byte{5, 0, 0, 0, 0}

// valueAt is the value at typed path comps in doc (ok false when absent).
func valueAt(doc bson.Raw, comps []pathComp) (bson.RawValue, bool) {
	cur := bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}
	for _, c := range comps {
		switch {
		case cur.Type == bson.TypeEmbeddedDocument && !c.isIdx:
			v, err := bson.Raw(cur.Value).LookupErr(c.name)
			if err != nil {
				return bson.RawValue{}, false
			}
			cur = v
		case cur.Type == bson.TypeArray && c.isIdx:
			vals, _ := bson.Raw(cur.Value).Values()
			if c.index >= len(vals) {
				return bson.RawValue{}, false
			}
			cur = vals[c.index]
		default:
			return bson.RawValue{}, false
		}
	}
	return cur, true
}

func sameValue(a, b bson.RawValue) bool {
	return a.Type == b.Type && bytes.Equal(a.Value, b.Value)
}

// operatorDelta rebuilds the delta of an operator update; ok is false for
// forms it does not model.
func operatorDelta(pre, post, spec bson.Raw) (*dnode, bool) {
	var ops []opPath
	elems, err := spec.Elements()
	if err != nil {
		return nil, false
	}
	for _, e := range elems {
		op := e.Key()
		fields, ok := e.Value().DocumentOK()
		if !ok {
			return nil, false
		}
		fe, _ := fields.Elements()
		for _, f := range fe {
			comps := strings.Split(f.Key(), ".")
			for _, c := range comps {
				if c == "" || strings.HasPrefix(c, "$") {
					return nil, false // positional and filtered forms
				}
			}
			switch op {
			case "$set", "$inc", "$mul", "$min", "$max", "$currentDate", "$bit", "$unset",
				"$push", "$addToSet", "$pop", "$pull", "$pullAll", "$setOnInsert":
				ops = append(ops, opPath{op, comps, f.Value(), comps})
			case "$rename":
				// applied at its target's place in the tree: the target
				// set first, then the source unset
				to, ok := f.Value().StringValueOK()
				if !ok {
					return nil, false
				}
				toComps := strings.Split(to, ".")
				ops = append(ops, opPath{"$rename", toComps, f.Value(), toComps},
					opPath{"$renameFrom", comps, bson.RawValue{}, toComps})
			default:
				return nil, false
			}
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return comparePaths(ops[i].key, ops[j].key) < 0 })
	root := &dnode{}
	for _, o := range ops {
		if o.op == "$setOnInsert" {
			continue
		}
		r := resolvePath(pre, o.comps)
		if !r.viable {
			if o.op == "$unset" || o.op == "$renameFrom" || o.op == "$pop" || o.op == "$pull" || o.op == "$pullAll" {
				continue // a no-op on a path that cannot exist
			}
			return nil, false
		}
		found := r.existing == len(o.comps)
		switch o.op {
		case "$unset", "$renameFrom":
			if !found {
				continue
			}
			if last := r.comps[len(r.comps)-1]; last.isIdx {
				root.logAt(r.comps, 'u', bson.RawValue{Type: bson.TypeNull})
			} else {
				root.logAt(r.comps, 'd', bson.RawValue{})
			}
		case "$pop", "$pull", "$pullAll":
			if !found {
				continue
			}
			nv, ok := valueAt(post, r.comps)
			if !ok {
				return nil, false
			}
			if !sameValue(nv, r.val) {
				root.logAt(r.comps, 'u', nv)
			}
		case "$push":
			if !found {
				if !logCreated(root, post, r) {
					return nil, false
				}
				continue
			}
			nv, ok := valueAt(post, r.comps)
			if !ok || nv.Type != bson.TypeArray || r.val.Type != bson.TypeArray {
				return nil, false
			}
			if sameValue(nv, r.val) {
				continue
			}
			preVals, _ := bson.Raw(r.val.Value).Values()
			postVals, _ := bson.Raw(nv.Value).Values()
			n := pushCount(o.arg)
			if len(preVals) > 0 && appendOnly(o.arg, len(preVals)) && len(postVals) == len(preVals)+n &&
				bytes.HasPrefix(nv.Value[4:], r.val.Value[4:len(r.val.Value)-1]) {
				for i := len(preVals); i < len(postVals); i++ {
					c := slices.Clone(r.comps)
					c = append(c, pathComp{index: i, isIdx: true})
					root.logAt(c, 'i', postVals[i])
				}
				continue
			}
			root.logAt(r.comps, 'u', nv)
		default: // $set and the other value-setting operators, $addToSet, $rename's target
			if !found {
				if !logCreated(root, post, r) {
					return nil, false
				}
				continue
			}
			nv, ok := valueAt(post, r.comps)
			if !ok {
				return nil, false
			}
			if !sameValue(nv, r.val) {
				root.logAt(r.comps, 'u', nv)
			}
		}
	}
	return root, true
}

// logCreated logs a created path at its first new component, with the value
// the post-image holds there.
func logCreated(root *dnode, post bson.Raw, r resolved) bool {
	at := r.comps[:r.existing+1]
	v, ok := valueAt(post, at)
	if !ok {
		return false
	}
	if at[len(at)-1].isIdx {
		// an element created in an array: it is an update of the array's
		// element (padding nulls before it are implied)
		root.logAt(at, 'i', v)
		return true
	}
	// several operators may create under the same new component: the
	// server logs one insertion of the whole new sub-document
	if n := findDocNode(root, at[:len(at)-1]); n != nil {
		for i, f := range n.inserts {
			if f.name == at[len(at)-1].name {
				n.inserts[i].val = v
				return true
			}
		}
	}
	root.logAt(at, 'i', v)
	return true
}

// findDocNode is the delta's document node at path, nil if absent.
func findDocNode(root *dnode, path []pathComp) *dnode {
	n := root
	var a *anode
	for _, c := range path {
		if a != nil {
			e, ok := a.elems[c.index]
			if !ok {
				return nil
			}
			n, a = e.doc, e.arr
			continue
		}
		if n == nil {
			return nil
		}
		s, ok := n.child(c.name)
		if !ok {
			return nil
		}
		n, a = s.doc, s.arr
	}
	return n
}

// pushCount is how many values a $push argument pushes.
func pushCount(arg bson.RawValue) int {
	d, ok := arg.DocumentOK()
	if !ok {
		return 1
	}
	each, err := d.LookupErr("$each")
	if err != nil {
		return 1
	}
	vals, _ := each.Array().Values()
	return len(vals)
}

// appendOnly reports a $push that the server logs as appended elements: no
// $sort, no $position or one past the end of the array (of preLen elements;
// $position equal to the length is a positional insert, logged whole). A
// $slice that trims is caught by the caller through the post-image.
func appendOnly(arg bson.RawValue, preLen int) bool {
	d, ok := arg.DocumentOK()
	if !ok {
		return true
	}
	if _, err := d.LookupErr("$each"); err != nil {
		return true
	}
	if _, err := d.LookupErr("$sort"); err == nil {
		return false
	}
	if p, err := d.LookupErr("$position"); err == nil {
		n, ok := asInt64(p)
		return ok && n > int64(preLen)
	}
	return true
}

// ----------------------------------------------------------- pipeline diff --

// diffDocs is the document diff calculator's delta of pre → post; ok is false
// when a delta cannot express it (fields reordered).
func diffDocs(pre, post bson.Raw) (*dnode, bool) {
	n := &dnode{}
	pe, _ := pre.Elements()
	qe, _ := post.Elements()
	inPost := map[string]bool{}
	for _, e := range qe {
		inPost[e.Key()] = true
	}
	var kept []bson.RawElement
	for _, e := range pe {
		if inPost[e.Key()] {
			kept = append(kept, e)
		} else {
			n.deletes = append(n.deletes, e.Key())
		}
	}
	// fields kept must stay in their order, new ones come after them
	for i, e := range kept {
		if i >= len(qe) || qe[i].Key() != e.Key() {
			return nil, false
		}
	}
	for i, e := range qe {
		nv := e.Value()
		if i >= len(kept) {
			n.inserts = append(n.inserts, dfield{e.Key(), nv})
			continue
		}
		ov := kept[i].Value()
		if sameValue(ov, nv) {
			continue
		}
		if d, a, ok := diffValues(ov, nv); ok {
			n.subs = append(n.subs, dsub{name: e.Key(), doc: d, arr: a})
			continue
		}
		n.updates = append(n.updates, dfield{e.Key(), nv})
	}
	return n, true
}

// diffValues diffs two sub-documents or two arrays, when the diff is smaller
// than the new value (else the new value is logged whole).
func diffValues(ov, nv bson.RawValue) (*dnode, *anode, bool) {
	switch {
	case ov.Type == bson.TypeEmbeddedDocument && nv.Type == bson.TypeEmbeddedDocument:
		d, ok := diffDocs(ov.Value, nv.Value)
		if ok && d.size() < len(nv.Value) {
			return d, nil, true
		}
	case ov.Type == bson.TypeArray && nv.Type == bson.TypeArray:
		a := diffArrays(ov.Value, nv.Value)
		if a.size() < len(nv.Value) {
			return nil, a, true
		}
	}
	return nil, nil, false
}

func diffArrays(pre, post bson.Raw) *anode {
	a := newANode()
	pv, _ := pre.Values()
	qv, _ := post.Values()
	if len(qv) < len(pv) {
		a.newSize = len(qv)
	}
	for i, nv := range qv {
		if i < len(pv) {
			if sameValue(pv[i], nv) {
				continue
			}
			if d, sa, ok := diffValues(pv[i], nv); ok {
				a.elems[i] = aelem{doc: d, arr: sa}
				continue
			}
		}
		v := nv
		a.elems[i] = aelem{val: &v}
	}
	return a
}

// size estimates a delta's encoded size.
func (n *dnode) size() int {
	s := 5
	for _, f := range slices.Concat(n.updates, n.inserts) {
		s += len(f.name) + 2 + len(f.val.Value)
	}
	for _, d := range n.deletes {
		s += len(d) + 3
	}
	for _, c := range n.subs {
		s += len(c.name) + 3
		if c.doc != nil {
			s += c.doc.size()
		} else {
			s += c.arr.size()
		}
	}
	return s
}

func (a *anode) size() int {
	s := 5 + 4
	if a.newSize >= 0 {
		s += 7
	}
	for i, e := range a.elems {
		s += len(strconv.Itoa(i)) + 3
		switch {
		case e.val != nil:
			s += len(e.val.Value)
		case e.doc != nil:
			s += e.doc.size()
		default:
			s += e.arr.size()
		}
	}
	return s
}

// ----------------------------------------------------------------- check --

// applyDescription applies an updateDescription to doc the way a consumer
// does with $push/$slice (truncation), then $set and $unset by path: what the
// shim checks its description against.
func applyDescription(doc bson.Raw, d updateDescription) (bson.Raw, bool) {
	root, ok := toTree(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}).(*tdoc)
	if !ok {
		return nil, false
	}
	for _, t := range d.trunc {
		v, ok := root.get(pathParts(t.field, d.disamb))
		arr, isArr := v.(*tarr)
		if !ok || !isArr || t.newSize > len(arr.vals) {
			return nil, false
		}
		arr.vals = arr.vals[:t.newSize]
	}
	for _, e := range d.updated {
		if !root.set(pathParts(e.Key, d.disamb), toTree(e.Value.(bson.RawValue))) {
			return nil, false
		}
	}
	for _, r := range d.removed {
		root.unset(pathParts(r, d.disamb))
	}
	return mustRaw(root.bson()), true
}

// pathParts splits a reported path, using its disambiguatedPaths entry.
func pathParts(p string, disamb bson.D) []string {
	for _, e := range disamb {
		if e.Key == p {
			var out []string
			for _, c := range e.Value.(bson.A) {
				switch v := c.(type) {
				case string:
					out = append(out, v)
				case int32:
					out = append(out, strconv.Itoa(int(v)))
				}
			}
			return out
		}
	}
	return strings.Split(p, ".")
}

// A small ordered tree of BSON values for the check.
type (
	tdoc struct {
		keys []string
		vals []any
	}
	tarr struct{ vals []any }
)

func toTree(v bson.RawValue) any {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		d := &tdoc{}
		es, _ := bson.Raw(v.Value).Elements()
		for _, e := range es {
			d.keys = append(d.keys, e.Key())
			d.vals = append(d.vals, toTree(e.Value()))
		}
		return d
	case bson.TypeArray:
		a := &tarr{}
		vs, _ := bson.Raw(v.Value).Values()
		for _, x := range vs {
			a.vals = append(a.vals, toTree(x))
		}
		return a
	}
	return v
}

func (d *tdoc) bson() bson.D {
	out := bson.D{}
	for i, k := range d.keys {
		out = append(out, bson.E{Key: k, Value: fromTree(d.vals[i])})
	}
	return out
}

func fromTree(v any) any {
	switch x := v.(type) {
	case *tdoc:
		return x.bson()
	case *tarr:
		a := bson.A{}
		for _, e := range x.vals {
			a = append(a, fromTree(e))
		}
		return a
	}
	return v
}

func (d *tdoc) get(path []string) (any, bool) {
	var cur any = d
	for _, c := range path {
		switch x := cur.(type) {
		case *tdoc:
			i := slices.Index(x.keys, c)
			if i < 0 {
				return nil, false
			}
			cur = x.vals[i]
		case *tarr:
			i, err := strconv.Atoi(c)
			if err != nil || i >= len(x.vals) {
				return nil, false
			}
			cur = x.vals[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// set sets path as $set does: missing documents are created, an array is
// padded with nulls up to an index set past its end.
func (d *tdoc) set(path []string, v any) bool {
	var cur any = d
	for i, c := range path {
		last := i == len(path)-1
		switch x := cur.(type) {
		case *tdoc:
			j := slices.Index(x.keys, c)
			if last {
				if j < 0 {
					x.keys, x.vals = append(x.keys, c), append(x.vals, v)
				} else {
					x.vals[j] = v
				}
				return true
			}
			if j < 0 {
				x.keys, x.vals = append(x.keys, c), append(x.vals, &tdoc{})
				j = len(x.keys) - 1
			}
			cur = x.vals[j]
		case *tarr:
			j, err := strconv.Atoi(c)
			if err != nil {
				return false
			}
			for len(x.vals) <= j {
				if len(x.vals) == j && !last {
					x.vals = append(x.vals, &tdoc{})
					break
				}
				x.vals = append(x.vals, bson.RawValue{Type: bson.TypeNull})
			}
			if last {
				x.vals[j] = v
				return true
			}
			cur = x.vals[j]
		default:
			return false
		}
	}
	return false
}

func (d *tdoc) unset(path []string) {
	parent, ok := d.get(path[:len(path)-1])
	if !ok {
		return
	}
	last := path[len(path)-1]
	switch x := parent.(type) {
	case *tdoc:
		if j := slices.Index(x.keys, last); j >= 0 {
			x.keys = slices.Delete(x.keys, j, j+1)
			x.vals = slices.Delete(x.vals, j, j+1)
		}
	case *tarr:
		if j, err := strconv.Atoi(last); err == nil && j < len(x.vals) {
			x.vals[j] = bson.RawValue{Type: bson.TypeNull}
		}
	}
}

// updateEvent describes an update of pre into post by the statement u: the
// updateDescription, or replace true when the change must be shown as a
// replacement.
func updateEvent(pre, post bson.Raw, u bson.RawValue, arrayFilters bool) (desc updateDescription, replace bool) {
	if spec, ok := u.DocumentOK(); ok && !arrayFilters {
		if n, ok := operatorDelta(pre, post, spec); ok {
			d := describe(n)
			if got, ok := applyDescription(pre, d); ok && bytes.Equal(got, post) {
				return d, false
			}
		}
	}
	if n, ok := diffDocs(pre, post); ok {
		d := describe(n)
		if got, ok := applyDescription(pre, d); ok && bytes.Equal(got, post) {
			return d, false
		}
	}
	return updateDescription{}, true
}
