package mongoshim

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// matcher evaluates a $match filter on change events: field equality,
// $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $not $type $size, and
// $and $or $nor. Comparison follows MongoDB's BSON order (Compare).
type matcher struct{ filter bson.Raw }

func newMatcher(filter bson.Raw) (*matcher, error) {
	m := &matcher{filter: filter}
	if err := m.check(filter); err != nil {
		return nil, err
	}
	return m, nil
}

var supportedOps = map[string]bool{"$eq": true, "$ne": true, "$gt": true, "$gte": true, "$lt": true, "$lte": true,
	"$in": true, "$nin": true, "$exists": true, "$regex": true, "$options": true, "$not": true, "$type": true, "$size": true}

func (m *matcher) check(f bson.Raw) error {
	elems, err := f.Elements()
	if err != nil {
		return err
	}
	for _, e := range elems {
		k := e.Key()
		switch k {
		case "$and", "$or", "$nor":
			for _, v := range arrayValues(e.Value()) {
				d, ok := v.DocumentOK()
				if !ok {
					return fmt.Errorf("%s entries must be objects", k)
				}
				if err := m.check(d); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasPrefix(k, "$") {
			return fmt.Errorf("unsupported $match operator %s in a change stream pipeline (mongoshim)", k)
		}
		if d, ok := e.Value().DocumentOK(); ok && isOpDoc(d) {
			ops, _ := d.Elements()
			for _, op := range ops {
				if !supportedOps[op.Key()] {
					return fmt.Errorf("unsupported $match operator %s in a change stream pipeline (mongoshim)", op.Key())
				}
			}
		}
	}
	return nil
}

func isOpDoc(d bson.Raw) bool { return strings.HasPrefix(cmdName(d), "$") }

func arrayValues(v bson.RawValue) []bson.RawValue {
	a, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := a.Values()
	return vals
}

func (m *matcher) match(doc bson.Raw) bool { return matchDoc(doc, m.filter) }

func matchDoc(doc, f bson.Raw) bool {
	elems, _ := f.Elements()
	for _, e := range elems {
		switch e.Key() {
		case "$and":
			for _, v := range arrayValues(e.Value()) {
				d, _ := v.DocumentOK()
				if !matchDoc(doc, d) {
					return false
				}
			}
		case "$or":
			any := false
			for _, v := range arrayValues(e.Value()) {
				d, _ := v.DocumentOK()
				if matchDoc(doc, d) {
					any = true
					break
				}
			}
			if !any {
				return false
			}
		case "$nor":
			for _, v := range arrayValues(e.Value()) {
				d, _ := v.DocumentOK()
				if matchDoc(doc, d) {
					return false
				}
			}
		default:
			if !matchField(doc, e.Key(), e.Value()) {
				return false
			}
		}
	}
	return true
}

// lookupPath returns the value at a dotted path (missing: Type 0).
func lookupPath(doc bson.Raw, path string) bson.RawValue {
	v, err := doc.LookupErr(strings.Split(path, ".")...)
	if err != nil {
		return bson.RawValue{}
	}
	return v
}

func matchField(doc bson.Raw, path string, cond bson.RawValue) bool {
	v := lookupPath(doc, path)
	if d, ok := cond.DocumentOK(); ok && isOpDoc(d) {
		ops, _ := d.Elements()
		for _, op := range ops {
			if !matchOp(v, op.Key(), op.Value(), d) {
				return false
			}
		}
		return true
	}
	if cond.Type == bson.TypeRegex {
		return matchRegex(v, cond)
	}
	return equalsAny(v, cond)
}

// candidates: the value and, for arrays, its elements.
func candidates(v bson.RawValue) []bson.RawValue {
	out := []bson.RawValue{v}
	if v.Type == bson.TypeArray {
		out = append(out, arrayValues(v)...)
	}
	return out
}

func equalsAny(v, want bson.RawValue) bool {
	if v.Type == 0 {
		return want.Type == bson.TypeNull
	}
	for _, c := range candidates(v) {
		if c.Type != 0 && Compare(c, want) == 0 && sameBracket(c, want) {
			return true
		}
	}
	return false
}

// sameBracket: comparisons only match within a canonical type (numbers with
// numbers, strings with strings...), as MongoDB's query operators do.
func sameBracket(a, b bson.RawValue) bool { return bracket(a.Type) == bracket(b.Type) }

func bracket(t bson.Type) int {
	switch t {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return 1
	case bson.TypeString, bson.TypeSymbol:
		return 2
	case bson.TypeNull, bson.TypeUndefined:
		return 3
	}
	return int(t) + 10
}

func compareOp(v, want bson.RawValue, ok func(int) bool) bool {
	for _, c := range candidates(v) {
		if c.Type != 0 && sameBracket(c, want) && ok(Compare(c, want)) {
			return true
		}
	}
	return false
}

func matchRegex(v, re bson.RawValue) bool {
	pat, opts := re.Regex()
	return regexMatches(v, pat, opts)
}

func regexMatches(v bson.RawValue, pat, opts string) bool {
	flags := ""
	for _, o := range opts {
		switch o {
		case 'i', 'm', 's':
			flags += string(o)
		}
	}
	if flags != "" {
		pat = "(?" + flags + ")" + pat
	}
	rx := compiledRegex(pat)
	if rx == nil {
		return false
	}
	for _, c := range candidates(v) {
		if s, ok := c.StringValueOK(); ok && rx.MatchString(s) {
			return true
		}
	}
	return false
}

// regexCache holds compiled patterns: a change stream's $match runs for
// every event, and the source connector's pipeline has a $not regex
// (^logbridge_meta) that compiling per event made 45% of the shim's CPU
// serving a backlog (pprof, issue 21). nil caches a pattern that does not
// compile. Bounded: emptied when full (patterns come from clients).
var regexCache = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

const regexCacheMax = 1024

func compiledRegex(pat string) *regexp.Regexp {
	regexCache.Lock()
	defer regexCache.Unlock()
	if rx, ok := regexCache.m[pat]; ok {
		return rx
	}
	rx, err := regexp.Compile(pat)
	if err != nil {
		rx = nil
	}
	if len(regexCache.m) >= regexCacheMax {
		clear(regexCache.m)
	}
	regexCache.m[pat] = rx
	return rx
}

var typeAliases = map[string]bson.Type{"double": bson.TypeDouble, "string": bson.TypeString, "object": bson.TypeEmbeddedDocument,
	"array": bson.TypeArray, "binData": bson.TypeBinary, "objectId": bson.TypeObjectID, "bool": bson.TypeBoolean,
	"date": bson.TypeDateTime, "null": bson.TypeNull, "regex": bson.TypeRegex, "int": bson.TypeInt32,
	"timestamp": bson.TypeTimestamp, "long": bson.TypeInt64, "decimal": bson.TypeDecimal128}

func matchOp(v bson.RawValue, op string, arg bson.RawValue, all bson.Raw) bool {
	switch op {
	case "$eq":
		return equalsAny(v, arg)
	case "$ne":
		return !equalsAny(v, arg)
	case "$gt":
		return compareOp(v, arg, func(c int) bool { return c > 0 })
	case "$gte":
		return compareOp(v, arg, func(c int) bool { return c >= 0 })
	case "$lt":
		return compareOp(v, arg, func(c int) bool { return c < 0 })
	case "$lte":
		return compareOp(v, arg, func(c int) bool { return c <= 0 })
	case "$in":
		for _, w := range arrayValues(arg) {
			if w.Type == bson.TypeRegex {
				if matchRegex(v, w) {
					return true
				}
			} else if equalsAny(v, w) {
				return true
			}
		}
		return false
	case "$nin":
		return !matchOp(v, "$in", arg, all)
	case "$exists":
		return (v.Type != 0) == truthy(arg)
	case "$regex":
		pat := ""
		opts := lookupString(all, "$options")
		if arg.Type == bson.TypeRegex {
			var o string
			pat, o = arg.Regex()
			opts += o
		} else {
			pat, _ = arg.StringValueOK()
		}
		return regexMatches(v, pat, opts)
	case "$options":
		return true
	case "$not":
		if arg.Type == bson.TypeRegex {
			return !matchRegex(v, arg)
		}
		d, _ := arg.DocumentOK()
		ops, _ := d.Elements()
		for _, o := range ops {
			if !matchOp(v, o.Key(), o.Value(), d) {
				return true
			}
		}
		return false
	case "$type":
		want := []bson.RawValue{arg}
		if arg.Type == bson.TypeArray {
			want = arrayValues(arg)
		}
		for _, w := range want {
			for _, c := range candidates(v) {
				if c.Type == 0 {
					continue
				}
				if s, ok := w.StringValueOK(); ok {
					if s == "number" && bracket(c.Type) == 1 || typeAliases[s] == c.Type {
						return true
					}
				} else if n, ok := asInt64(w); ok && bson.Type(n) == c.Type {
					return true
				}
			}
		}
		return false
	case "$size":
		n, _ := asInt64(arg)
		return v.Type == bson.TypeArray && int64(len(arrayValues(v))) == n
	}
	return false
}
