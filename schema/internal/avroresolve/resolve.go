package avroresolve

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// IncompatibleError lists why data written with a writer schema cannot be
// read with a reader schema.
type IncompatibleError struct {
	Issues []string // "path: reason", in schema order
}

func (e *IncompatibleError) Error() string {
	return "incompatible schemas: " + strings.Join(e.Issues, "; ")
}

// Check reports whether every datum written with writer can be read with
// reader under the Avro schema resolution rules: primitive promotions
// (int→long/float/double, long→float/double, float→double, string↔bytes),
// records matched by name or alias with fields matched by name or alias,
// reader fields missing from the writer need a default, writer fields
// missing from the reader are skipped, enum symbols unknown to the reader need
// a reader default, fixed sizes must agree, and every branch of a writer
// union must resolve. Logical types are ignored, as Avro does.
//
// Check(newSchema, oldSchema) is the BACKWARD check (new readers read old
// data); Check(oldSchema, newSchema) the FORWARD check. The result is nil or
// an *IncompatibleError.
func Check(reader, writer *Type) error {
	c := newCompiler()
	c.compile(reader, writer, rootPath(reader))
	if len(c.issues) > 0 {
		return &IncompatibleError{Issues: c.issues}
	}
	return nil
}

// Resolver rewrites a datum written with a writer schema into the binary
// encoding of a reader schema, applying the Avro resolution rules (see
// Check). It is immutable and safe for concurrent use.
type Resolver struct {
	root *node
}

// NewResolver compiles the resolution of writer into reader. It fails with an
// *IncompatibleError when Check(reader, writer) would.
func NewResolver(reader, writer *Type) (*Resolver, error) {
	c := newCompiler()
	root := c.compile(reader, writer, rootPath(reader))
	if len(c.issues) > 0 {
		return nil, &IncompatibleError{Issues: c.issues}
	}
	return &Resolver{root: root}, nil
}

// Transcode appends to dst the reader-schema encoding of the single datum in
// src, which must be encoded with the writer schema and nothing else. Errors
// wrap ErrTruncated or ErrMalformed.
func (r *Resolver) Transcode(dst, src []byte) ([]byte, error) {
	dst, rest, err := r.root.run(dst, src, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the datum", ErrMalformed, len(rest))
	}
	return dst, nil
}

func rootPath(t *Type) string {
	if t.Name != "" {
		return shortName(t.Name)
	}
	return t.Kind.String()
}

type nodeKind uint8

const (
	nNull nodeKind = iota + 1
	nBool
	nCopyInt      // int → int
	nCopyLong     // int → long, long → long
	nLongToFloat  // int/long → float
	nLongToDouble // int/long → double
	nCopy4        // float → float
	nFloatToDouble
	nCopy8 // double → double
	nCopyBytes
	nFixed
	nEnum
	nArray
	nMap
	nRecord
	nWriterUnion
	nReaderUnion
)

type node struct {
	kind nodeKind

	size    int     // fixed
	enumMap []int64 // enum: writer symbol index → reader symbol index

	elem    *node // array, map
	elemMin int   // minimum encoded size of one writer element (0 for e.g. null)

	fields   []recField // record, in writer order
	defaults [][]byte   // record: per reader field, the encoded default when the writer lacks the field
	ordered  bool       // record: targets strictly increase, so output can be streamed

	branches []branch // writer union, per writer branch
	rIndex   int64    // reader union: branch chosen for the (non-union) writer type
	inner    *node    // reader union
}

type recField struct {
	target int   // reader field index, or -1 to skip
	node   *node // when target >= 0
	skip   *Type // writer type, when target < 0
}

type branch struct {
	rIndex int64 // reader union branch, or -1 when the reader is not a union
	node   *node
}

type compiler struct {
	memo   map[[2]*Type]*node
	issues []string
}

func newCompiler() *compiler {
	return &compiler{memo: map[[2]*Type]*node{}}
}

func (c *compiler) issue(path, format string, args ...any) {
	c.issues = append(c.issues, path+": "+fmt.Sprintf(format, args...))
}

func namesMatch(r, w *Type) bool {
	if r.Name == w.Name || shortName(r.Name) == shortName(w.Name) {
		return true
	}
	for _, a := range r.Aliases {
		if a == w.Name || shortName(a) == shortName(w.Name) {
			return true
		}
	}
	return false
}

// exactMatch: same type (and name for named types), no promotion.
func exactMatch(r, w *Type) bool {
	if r.Kind != w.Kind {
		return false
	}
	switch r.Kind {
	case Record, Enum, Fixed:
		return namesMatch(r, w)
	}
	return true
}

func promotable(r, w *Type) bool {
	switch w.Kind {
	case Int:
		return r.Kind == Long || r.Kind == Float || r.Kind == Double
	case Long:
		return r.Kind == Float || r.Kind == Double
	case Float:
		return r.Kind == Double
	case String:
		return r.Kind == Bytes
	case Bytes:
		return r.Kind == String
	}
	return false
}

// matchBranch returns the first reader union branch that matches the
// non-union writer type w exactly, else the first it promotes to, else -1.
func matchBranch(r, w *Type) int {
	for i, b := range r.Branches {
		if exactMatch(b, w) {
			return i
		}
	}
	for i, b := range r.Branches {
		if promotable(b, w) {
			return i
		}
	}
	return -1
}

func (c *compiler) compile(r, w *Type, path string) *node {
	if w.Kind == Union {
		n := &node{kind: nWriterUnion}
		for i, wb := range w.Branches {
			b := branch{rIndex: -1}
			bpath := fmt.Sprintf("%s[%d]", path, i)
			if r.Kind == Union {
				ri := matchBranch(r, wb)
				if ri < 0 {
					c.issue(bpath, "writer union branch %s matches no branch of reader union %s", wb, r)
					n.branches = append(n.branches, b)
					continue
				}
				b.rIndex = int64(ri)
				b.node = c.compile(r.Branches[ri], wb, bpath)
			} else {
				b.node = c.compile(r, wb, bpath)
			}
			n.branches = append(n.branches, b)
		}
		return n
	}
	if r.Kind == Union {
		ri := matchBranch(r, w)
		if ri < 0 {
			c.issue(path, "writer type %s matches no branch of reader union %s", w, r)
			return nil
		}
		return &node{kind: nReaderUnion, rIndex: int64(ri), inner: c.compile(r.Branches[ri], w, path)}
	}
	if r.Kind != w.Kind {
		switch {
		case (w.Kind == Int || w.Kind == Long) && r.Kind == Long:
			return &node{kind: nCopyLong}
		case (w.Kind == Int || w.Kind == Long) && r.Kind == Float:
			return &node{kind: nLongToFloat}
		case (w.Kind == Int || w.Kind == Long) && r.Kind == Double:
			return &node{kind: nLongToDouble}
		case w.Kind == Float && r.Kind == Double:
			return &node{kind: nFloatToDouble}
		case (w.Kind == String || w.Kind == Bytes) && (r.Kind == String || r.Kind == Bytes):
			return &node{kind: nCopyBytes}
		}
		c.issue(path, "writer type %s cannot be read as %s", w, r)
		return nil
	}
	switch r.Kind {
	case Null:
		return &node{kind: nNull}
	case Boolean:
		return &node{kind: nBool}
	case Int:
		return &node{kind: nCopyInt}
	case Long:
		return &node{kind: nCopyLong}
	case Float:
		return &node{kind: nCopy4}
	case Double:
		return &node{kind: nCopy8}
	case Bytes, String:
		return &node{kind: nCopyBytes}
	case Fixed:
		if !namesMatch(r, w) {
			c.issue(path, "writer fixed %s does not match reader fixed %s", w.Name, r.Name)
		}
		if r.Size != w.Size {
			c.issue(path, "fixed %s: writer size %d, reader size %d", r.Name, w.Size, r.Size)
		}
		return &node{kind: nFixed, size: w.Size}
	case Enum:
		if !namesMatch(r, w) {
			c.issue(path, "writer enum %s does not match reader enum %s", w.Name, r.Name)
		}
		n := &node{kind: nEnum, enumMap: make([]int64, len(w.Symbols))}
		for i, sym := range w.Symbols {
			ri := r.symbolIndex(sym)
			if ri < 0 && r.HasEnumDefault {
				ri = r.symbolIndex(r.EnumDefault)
				if ri < 0 {
					c.issue(path, "reader enum default %q is not a symbol", r.EnumDefault)
				}
			} else if ri < 0 {
				c.issue(path, "writer symbol %q is unknown to the reader enum %s, which has no default", sym, r.Name)
			}
			n.enumMap[i] = int64(ri)
		}
		return n
	case Array:
		return &node{kind: nArray, elem: c.compile(r.Items, w.Items, path+"[]"), elemMin: minSize(w.Items, map[*Type]bool{})}
	case Map:
		return &node{kind: nMap, elem: c.compile(r.Values, w.Values, path+"{}"), elemMin: 1 + minSize(w.Values, map[*Type]bool{})}
	case Record:
		return c.compileRecord(r, w, path)
	}
	c.issue(path, "unsupported type %s", r)
	return nil
}

func (c *compiler) compileRecord(r, w *Type, path string) *node {
	key := [2]*Type{r, w}
	if n, ok := c.memo[key]; ok {
		return n
	}
	n := &node{kind: nRecord, ordered: true}
	c.memo[key] = n
	if !namesMatch(r, w) {
		c.issue(path, "writer record %s does not match reader record %s", w.Name, r.Name)
		return n
	}
	used := make([]bool, len(r.Fields))
	last := -1
	for _, wf := range w.Fields {
		ri := readerField(r, wf.Name)
		if ri < 0 || used[ri] {
			n.fields = append(n.fields, recField{target: -1, skip: wf.Type})
			continue
		}
		used[ri] = true
		rf := r.Fields[ri]
		n.fields = append(n.fields, recField{target: ri, node: c.compile(rf.Type, wf.Type, path+"."+rf.Name)})
		if ri < last {
			n.ordered = false
		}
		last = ri
	}
	n.defaults = make([][]byte, len(r.Fields))
	for i, rf := range r.Fields {
		if used[i] {
			continue
		}
		if !rf.HasDefault {
			c.issue(path+"."+rf.Name, "reader field is missing from the writer schema and has no default")
			continue
		}
		enc, err := encodeDefault(nil, rf.Type, rf.Default, 0)
		if err != nil {
			c.issue(path+"."+rf.Name, "bad default %s: %v", canonicalJSON(rf.Default), err)
			continue
		}
		if enc == nil {
			enc = []byte{} // null: encoded as nothing, but marked present
		}
		n.defaults[i] = enc
	}
	return n
}

func readerField(r *Type, name string) int {
	for i, f := range r.Fields {
		if f.Name == name {
			return i
		}
	}
	for i, f := range r.Fields {
		for _, a := range f.Aliases {
			if a == name {
				return i
			}
		}
	}
	return -1
}

const (
	maxDepth         = 100     // nesting of records, arrays, maps and unions in data
	maxZeroSizeItems = 1 << 20 // items of a zero-size type (e.g. null) per array
)

var errTooDeep = fmt.Errorf("%w: data nested deeper than %d levels", ErrMalformed, maxDepth)

func (n *node) run(dst, src []byte, depth int) ([]byte, []byte, error) {
	switch n.kind {
	case nNull:
		return dst, src, nil
	case nBool:
		if len(src) < 1 {
			return nil, nil, ErrTruncated
		}
		if src[0] > 1 {
			return nil, nil, fmt.Errorf("%w: boolean byte %#x", ErrMalformed, src[0])
		}
		return append(dst, src[0]), src[1:], nil
	case nCopyInt:
		_, k, err := ReadInt(src)
		if err != nil {
			return nil, nil, err
		}
		return append(dst, src[:k]...), src[k:], nil
	case nCopyLong:
		_, k, err := ReadLong(src)
		if err != nil {
			return nil, nil, err
		}
		return append(dst, src[:k]...), src[k:], nil
	case nLongToFloat, nLongToDouble:
		v, k, err := ReadLong(src)
		if err != nil {
			return nil, nil, err
		}
		if n.kind == nLongToFloat {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(v))), src[k:], nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(v))), src[k:], nil
	case nCopy4, nCopy8, nFixed:
		size := 4
		if n.kind == nCopy8 {
			size = 8
		} else if n.kind == nFixed {
			size = n.size
		}
		if len(src) < size {
			return nil, nil, ErrTruncated
		}
		return append(dst, src[:size]...), src[size:], nil
	case nFloatToDouble:
		if len(src) < 4 {
			return nil, nil, ErrTruncated
		}
		f := math.Float32frombits(binary.LittleEndian.Uint32(src))
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(f))), src[4:], nil
	case nCopyBytes:
		_, k, err := ReadBytes(src)
		if err != nil {
			return nil, nil, err
		}
		return append(dst, src[:k]...), src[k:], nil
	case nEnum:
		i, k, err := ReadInt(src)
		if err != nil {
			return nil, nil, err
		}
		if i < 0 || int(i) >= len(n.enumMap) {
			return nil, nil, fmt.Errorf("%w: enum index %d out of range", ErrMalformed, i)
		}
		return AppendLong(dst, n.enumMap[i]), src[k:], nil
	case nReaderUnion:
		return n.inner.run(AppendLong(dst, n.rIndex), src, depth)
	case nWriterUnion:
		if depth > maxDepth {
			return nil, nil, errTooDeep
		}
		i, k, err := ReadLong(src)
		if err != nil {
			return nil, nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return nil, nil, fmt.Errorf("%w: union index %d out of range", ErrMalformed, i)
		}
		b := n.branches[i]
		if b.rIndex >= 0 {
			dst = AppendLong(dst, b.rIndex)
		}
		return b.node.run(dst, src[k:], depth+1)
	case nArray, nMap:
		return n.runBlocks(dst, src, depth)
	case nRecord:
		return n.runRecord(dst, src, depth)
	}
	return nil, nil, fmt.Errorf("avroresolve: bad plan node %d", n.kind)
}

// readBlockCount reads the count of the next array or map block and checks it
// against the remaining input.
func readBlockCount(src []byte, elemMin int, total *int64) (int64, []byte, error) {
	count, k, err := ReadLong(src)
	if err != nil {
		return 0, nil, err
	}
	src = src[k:]
	if count < 0 {
		if count == math.MinInt64 {
			return 0, nil, fmt.Errorf("%w: block count overflow", ErrMalformed)
		}
		count = -count
		if _, k, err = ReadLong(src); err != nil { // block size in bytes
			return 0, nil, err
		}
		src = src[k:]
	}
	if elemMin > 0 && count > int64(len(src)/elemMin) {
		return 0, nil, fmt.Errorf("%w: block of %d items in %d bytes", ErrTruncated, count, len(src))
	}
	*total += count
	if elemMin == 0 && *total > maxZeroSizeItems {
		return 0, nil, fmt.Errorf("%w: more than %d zero-size items", ErrMalformed, maxZeroSizeItems)
	}
	return count, src, nil
}

func (n *node) runBlocks(dst, src []byte, depth int) ([]byte, []byte, error) {
	if depth > maxDepth {
		return nil, nil, errTooDeep
	}
	var total int64
	for {
		count, rest, err := readBlockCount(src, n.elemMin, &total)
		if err != nil {
			return nil, nil, err
		}
		src = rest
		if count == 0 {
			return AppendLong(dst, 0), src, nil
		}
		dst = AppendLong(dst, count)
		for range count {
			if n.kind == nMap {
				_, k, err := ReadBytes(src)
				if err != nil {
					return nil, nil, err
				}
				dst = append(dst, src[:k]...)
				src = src[k:]
			}
			if dst, src, err = n.elem.run(dst, src, depth+1); err != nil {
				return nil, nil, err
			}
		}
	}
}

func (n *node) runRecord(dst, src []byte, depth int) ([]byte, []byte, error) {
	if depth > maxDepth {
		return nil, nil, errTooDeep
	}
	var err error
	if n.ordered {
		next := 0 // next reader field to emit
		for _, f := range n.fields {
			if f.target < 0 {
				if src, err = skip(f.skip, src, depth+1); err != nil {
					return nil, nil, err
				}
				continue
			}
			for ; next < f.target; next++ {
				dst = append(dst, n.defaults[next]...)
			}
			if dst, src, err = f.node.run(dst, src, depth+1); err != nil {
				return nil, nil, err
			}
			next = f.target + 1
		}
		for ; next < len(n.defaults); next++ {
			dst = append(dst, n.defaults[next]...)
		}
		return dst, src, nil
	}
	// Writer fields in another order: transcode into a scratch buffer, then
	// emit in reader order.
	var scratch []byte
	spans := make([][2]int, len(n.defaults))
	for _, f := range n.fields {
		if f.target < 0 {
			if src, err = skip(f.skip, src, depth+1); err != nil {
				return nil, nil, err
			}
			continue
		}
		start := len(scratch)
		if scratch, src, err = f.node.run(scratch, src, depth+1); err != nil {
			return nil, nil, err
		}
		spans[f.target] = [2]int{start, len(scratch)}
	}
	for i, d := range n.defaults {
		if d != nil {
			dst = append(dst, d...)
		} else {
			dst = append(dst, scratch[spans[i][0]:spans[i][1]]...)
		}
	}
	return dst, src, nil
}

// skip consumes one datum of writer type t.
func skip(t *Type, src []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch t.Kind {
	case Null:
		return src, nil
	case Boolean:
		if len(src) < 1 {
			return nil, ErrTruncated
		}
		return src[1:], nil
	case Int, Long, Enum:
		_, k, err := ReadLong(src)
		if err != nil {
			return nil, err
		}
		return src[k:], nil
	case Float, Double, Fixed:
		size := 4
		if t.Kind == Double {
			size = 8
		} else if t.Kind == Fixed {
			size = t.Size
		}
		if len(src) < size {
			return nil, ErrTruncated
		}
		return src[size:], nil
	case Bytes, String:
		_, k, err := ReadBytes(src)
		if err != nil {
			return nil, err
		}
		return src[k:], nil
	case Record:
		var err error
		for _, f := range t.Fields {
			if src, err = skip(f.Type, src, depth+1); err != nil {
				return nil, err
			}
		}
		return src, nil
	case Union:
		i, k, err := ReadLong(src)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(t.Branches)) {
			return nil, fmt.Errorf("%w: union index %d out of range", ErrMalformed, i)
		}
		return skip(t.Branches[i], src[k:], depth+1)
	case Array, Map:
		elem := t.Items
		elemMin := 0
		if t.Kind == Map {
			elem = t.Values
			elemMin = 1
		}
		elemMin += minSize(elem, map[*Type]bool{})
		var total int64
		for {
			count, k, err := ReadLong(src)
			if err != nil {
				return nil, err
			}
			if count < 0 {
				size, k2, err := ReadLong(src[k:])
				if err != nil {
					return nil, err
				}
				if size >= 0 && size <= int64(len(src)-k-k2) {
					src = src[k+k2+int(size):]
					continue
				}
			}
			count, src, err = readBlockCount(src, elemMin, &total)
			if err != nil {
				return nil, err
			}
			if count == 0 {
				return src, nil
			}
			for range count {
				if t.Kind == Map {
					if src, err = skip(&Type{Kind: String}, src, depth+1); err != nil {
						return nil, err
					}
				}
				if src, err = skip(elem, src, depth+1); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("avroresolve: cannot skip %s", t)
}

// encodeDefault appends the binary encoding of a field default (JSON value v)
// for type t.
func encodeDefault(dst []byte, t *Type, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("default nested too deeply")
	}
	switch t.Kind {
	case Null:
		if v != nil {
			return nil, errors.New("null default must be null")
		}
		return dst, nil
	case Boolean:
		b, ok := v.(bool)
		if !ok {
			return nil, errors.New("boolean default must be true or false")
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case Int, Long:
		num, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s default must be a number", t.Kind)
		}
		i, err := num.Int64()
		if err != nil || (t.Kind == Int && (i < math.MinInt32 || i > math.MaxInt32)) {
			return nil, fmt.Errorf("%s default %s out of range", t.Kind, num)
		}
		return AppendLong(dst, i), nil
	case Float, Double:
		num, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s default must be a number", t.Kind)
		}
		f, err := num.Float64()
		if err != nil {
			return nil, err
		}
		if t.Kind == Float {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("string default must be a string")
		}
		return AppendString(dst, s), nil
	case Bytes, Fixed:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s default must be a string", t.Kind)
		}
		b, err := latin1(s)
		if err != nil {
			return nil, err
		}
		if t.Kind == Fixed {
			if len(b) != t.Size {
				return nil, fmt.Errorf("fixed default has %d bytes, want %d", len(b), t.Size)
			}
			return append(dst, b...), nil
		}
		return AppendBytes(dst, b), nil
	case Enum:
		s, ok := v.(string)
		if !ok || t.symbolIndex(s) < 0 {
			return nil, fmt.Errorf("enum default %v is not a symbol of %s", v, t.Name)
		}
		return AppendLong(dst, int64(t.symbolIndex(s))), nil
	case Array:
		l, ok := v.([]any)
		if !ok {
			return nil, errors.New("array default must be a JSON array")
		}
		var err error
		if len(l) > 0 {
			dst = AppendLong(dst, int64(len(l)))
			for _, e := range l {
				if dst, err = encodeDefault(dst, t.Items, e, depth+1); err != nil {
					return nil, err
				}
			}
		}
		return AppendLong(dst, 0), nil
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("map default must be a JSON object")
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var err error
		if len(keys) > 0 {
			dst = AppendLong(dst, int64(len(keys)))
			for _, k := range keys {
				dst = AppendString(dst, k)
				if dst, err = encodeDefault(dst, t.Values, m[k], depth+1); err != nil {
					return nil, err
				}
			}
		}
		return AppendLong(dst, 0), nil
	case Record:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("record default must be a JSON object")
		}
		var err error
		for _, f := range t.Fields {
			fv, ok := m[f.Name]
			if !ok {
				if !f.HasDefault {
					return nil, fmt.Errorf("record default lacks field %s", f.Name)
				}
				fv = f.Default
			}
			if dst, err = encodeDefault(dst, f.Type, fv, depth+1); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case Union:
		// Avro: the default is for the first branch; later specifications
		// allow any branch, so try them in order.
		var firstErr error
		for i, b := range t.Branches {
			out, err := encodeDefault(AppendLong(dst, int64(i)), b, v, depth+1)
			if err == nil {
				return out, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		return nil, firstErr
	}
	return nil, fmt.Errorf("no default encoding for %s", t)
}

func latin1(s string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, fmt.Errorf("bytes default has code point %U above U+00FF", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// CheckEvolution enforces logbridge's evolution rules from a released schema
// (old) to its successor (new), which are stricter than Avro resolution:
// nothing is removed or renamed (every field, enum symbol and union branch of
// old is still there, at the same position for symbols and branches), no type
// changes (same kind, name, logical type and fixed size), fields added to a
// record have a default, and an enum that gains symbols has a default. Both
// Check(new, old) and Check(old, new) then hold, so old and new readers read
// data of either version (FULL compatibility).
func CheckEvolution(old, new *Type) error {
	e := evolution{seen: map[[2]*Type]bool{}}
	e.walk(old, new, rootPath(new))
	if len(e.issues) > 0 {
		return &IncompatibleError{Issues: e.issues}
	}
	return nil
}

type evolution struct {
	seen   map[[2]*Type]bool
	issues []string
}

func (e *evolution) issue(path, format string, args ...any) {
	e.issues = append(e.issues, path+": "+fmt.Sprintf(format, args...))
}

func (e *evolution) walk(old, new *Type, path string) {
	key := [2]*Type{old, new}
	if e.seen[key] {
		return
	}
	e.seen[key] = true
	if old.Kind != new.Kind {
		e.issue(path, "type changed from %s to %s", old, new)
		return
	}
	if old.Name != new.Name {
		e.issue(path, "type renamed from %s to %s", old.Name, new.Name)
	}
	if old.LogicalType != new.LogicalType {
		e.issue(path, "logical type changed from %q to %q", old.LogicalType, new.LogicalType)
	}
	switch old.Kind {
	case Record:
		for _, of := range old.Fields {
			i := -1
			for j, nf := range new.Fields {
				if nf.Name == of.Name {
					i = j
				}
			}
			if i < 0 {
				e.issue(path+"."+of.Name, "field removed or renamed")
				continue
			}
			e.walk(of.Type, new.Fields[i].Type, path+"."+of.Name)
		}
		for _, nf := range new.Fields {
			if readerField(old, nf.Name) < 0 && !nf.HasDefault {
				e.issue(path+"."+nf.Name, "new field without a default")
			}
		}
	case Enum:
		for i, sym := range old.Symbols {
			if i >= len(new.Symbols) || new.Symbols[i] != sym {
				e.issue(path, "enum symbols may only be appended: released %v, now %v", old.Symbols, new.Symbols)
				return
			}
		}
		if len(new.Symbols) > len(old.Symbols) && !new.HasEnumDefault {
			e.issue(path, "enum gains symbols but has no default")
		}
	case Fixed:
		if old.Size != new.Size {
			e.issue(path, "fixed size changed from %d to %d", old.Size, new.Size)
		}
	case Array:
		e.walk(old.Items, new.Items, path+"[]")
	case Map:
		e.walk(old.Values, new.Values, path+"{}")
	case Union:
		if len(new.Branches) < len(old.Branches) {
			e.issue(path, "union branches removed: released %s, now %s", old, new)
			return
		}
		for i, ob := range old.Branches {
			e.walk(ob, new.Branches[i], fmt.Sprintf("%s[%d]", path, i))
		}
	}
}
