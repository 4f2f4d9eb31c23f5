// Package avroresolve implements Avro schema resolution (reader schema vs
// writer schema, Avro specification "Schema Resolution") for the schema
// package: a structural compatibility check and a transcoder that rewrites a
// datum written with one schema version into the binary encoding of another.
//
// goavro (github.com/linkedin/goavro/v2) parses and validates schemas and
// computes fingerprints, but it has no reader/writer resolution: a goavro
// Codec can only decode data written with exactly its own schema. This
// package fills that gap. Parse trusts goavro for validation: callers parse
// every schema with goavro.NewCodec first; Parse itself still rejects
// malformed input with an error instead of panicking.
package avroresolve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kind is an Avro type.
type Kind uint8

// The Avro types.
const (
	Null Kind = iota + 1
	Boolean
	Int
	Long
	Float
	Double
	Bytes
	String
	Record
	Enum
	Array
	Map
	Union
	Fixed
)

var kindNames = map[Kind]string{
	Null: "null", Boolean: "boolean", Int: "int", Long: "long", Float: "float",
	Double: "double", Bytes: "bytes", String: "string", Record: "record",
	Enum: "enum", Array: "array", Map: "map", Union: "union", Fixed: "fixed",
}

var primitives = map[string]Kind{
	"null": Null, "boolean": Boolean, "int": Int, "long": Long, "float": Float,
	"double": Double, "bytes": Bytes, "string": String,
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Type is one node of a parsed schema. Named types (record, enum, fixed) are
// shared between their definition and every reference, so a recursive
// schema is a cyclic graph.
type Type struct {
	Kind        Kind
	Name        string   // full name of a record, enum or fixed
	Aliases     []string // full names
	LogicalType string

	Fields []*Field // record

	Symbols        []string // enum
	EnumDefault    string   // enum
	HasEnumDefault bool     // enum

	Items    *Type   // array
	Values   *Type   // map
	Branches []*Type // union
	Size     int     // fixed
}

// Field is a record field.
type Field struct {
	Name       string
	Aliases    []string
	Type       *Type
	Default    any // decoded JSON (json.Number for numbers)
	HasDefault bool
}

// shortName is the unqualified part of a full name.
func shortName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// String describes t for error messages.
func (t *Type) String() string {
	switch t.Kind {
	case Record, Enum, Fixed:
		return t.Kind.String() + " " + t.Name
	case Array:
		return "array<" + t.Items.String() + ">"
	case Map:
		return "map<" + t.Values.String() + ">"
	case Union:
		parts := make([]string, len(t.Branches))
		for i, b := range t.Branches {
			parts[i] = b.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return t.Kind.String()
	}
}

// BranchName is the name goavro uses for t as a union member.
func (t *Type) BranchName() string {
	switch t.Kind {
	case Record, Enum, Fixed:
		return t.Name
	default:
		if t.LogicalType != "" {
			return t.Kind.String() + "." + t.LogicalType
		}
		return t.Kind.String()
	}
}

// Parse parses an Avro schema (JSON) into a Type graph.
func Parse(schemaJSON string) (*Type, error) {
	dec := json.NewDecoder(strings.NewReader(schemaJSON))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parsing schema JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parsing schema JSON: trailing data")
	}
	p := parser{named: map[string]*Type{}}
	return p.parse(v, "", 0)
}

type parser struct {
	named map[string]*Type
}

const maxSchemaDepth = 256

func fullName(name, namespace string) string {
	if strings.Contains(name, ".") || namespace == "" {
		return name
	}
	return namespace + "." + name
}

func (p *parser) parse(v any, ns string, depth int) (*Type, error) {
	if depth > maxSchemaDepth {
		return nil, errors.New("schema nested too deeply")
	}
	switch v := v.(type) {
	case string:
		if k, ok := primitives[v]; ok {
			return &Type{Kind: k}, nil
		}
		if t, ok := p.named[fullName(v, ns)]; ok {
			return t, nil
		}
		if t, ok := p.named[v]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("unknown type name %q", v)
	case []any:
		u := &Type{Kind: Union}
		for _, b := range v {
			bt, err := p.parse(b, ns, depth+1)
			if err != nil {
				return nil, err
			}
			u.Branches = append(u.Branches, bt)
		}
		if len(u.Branches) == 0 {
			return nil, errors.New("empty union")
		}
		return u, nil
	case map[string]any:
		return p.parseObject(v, ns, depth)
	default:
		return nil, fmt.Errorf("unexpected schema JSON value %T", v)
	}
}

func (p *parser) parseObject(m map[string]any, ns string, depth int) (*Type, error) {
	typ, ok := m["type"]
	if !ok {
		return nil, errors.New(`schema object without "type"`)
	}
	ts, ok := typ.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the attribute is itself a schema.
		return p.parse(typ, ns, depth+1)
	}
	logical, _ := m["logicalType"].(string)
	switch ts {
	case "record", "error", "enum", "fixed":
		return p.parseNamed(ts, m, ns, depth)
	case "array":
		items, ok := m["items"]
		if !ok {
			return nil, errors.New(`array without "items"`)
		}
		it, err := p.parse(items, ns, depth+1)
		if err != nil {
			return nil, err
		}
		return &Type{Kind: Array, Items: it, LogicalType: logical}, nil
	case "map":
		values, ok := m["values"]
		if !ok {
			return nil, errors.New(`map without "values"`)
		}
		vt, err := p.parse(values, ns, depth+1)
		if err != nil {
			return nil, err
		}
		return &Type{Kind: Map, Values: vt, LogicalType: logical}, nil
	}
	if k, ok := primitives[ts]; ok {
		return &Type{Kind: k, LogicalType: logical}, nil
	}
	// {"type": "SomeNamedType"}
	return p.parse(ts, ns, depth+1)
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) parseNamed(ts string, m map[string]any, ns string, depth int) (*Type, error) {
	name, _ := m["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("%s without a name", ts)
	}
	if explicit, ok := m["namespace"].(string); ok && !strings.Contains(name, ".") {
		ns = explicit
	}
	full := fullName(name, ns)
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		ns = full[:i]
	} else {
		ns = ""
	}
	if _, dup := p.named[full]; dup {
		return nil, fmt.Errorf("type %q defined twice", full)
	}
	t := &Type{Name: full}
	for _, a := range stringList(m["aliases"]) {
		t.Aliases = append(t.Aliases, fullName(a, ns))
	}
	t.LogicalType, _ = m["logicalType"].(string)
	p.named[full] = t // before the fields: a record may refer to itself
	switch ts {
	case "record", "error":
		t.Kind = Record
		fields, ok := m["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %s without fields", full)
		}
		seen := map[string]bool{}
		for _, f := range fields {
			fm, ok := f.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %s: field is not an object", full)
			}
			fname, _ := fm["name"].(string)
			if fname == "" || seen[fname] {
				return nil, fmt.Errorf("record %s: missing or duplicate field name %q", full, fname)
			}
			seen[fname] = true
			ft, ok := fm["type"]
			if !ok {
				return nil, fmt.Errorf("record %s: field %s without type", full, fname)
			}
			ftype, err := p.parse(ft, ns, depth+1)
			if err != nil {
				return nil, fmt.Errorf("record %s field %s: %w", full, fname, err)
			}
			field := &Field{Name: fname, Type: ftype, Aliases: stringList(fm["aliases"])}
			field.Default, field.HasDefault = fm["default"]
			t.Fields = append(t.Fields, field)
		}
	case "enum":
		t.Kind = Enum
		t.Symbols = stringList(m["symbols"])
		if len(t.Symbols) == 0 {
			return nil, fmt.Errorf("enum %s without symbols", full)
		}
		if d, ok := m["default"].(string); ok {
			t.EnumDefault, t.HasEnumDefault = d, true
		}
	case "fixed":
		t.Kind = Fixed
		n, ok := m["size"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("fixed %s without size", full)
		}
		size, err := n.Int64()
		if err != nil || size < 0 || size > 1<<30 {
			return nil, fmt.Errorf("fixed %s: bad size %v", full, n)
		}
		t.Size = int(size)
	}
	return t, nil
}

// symbolIndex returns the position of sym in the enum, or -1.
func (t *Type) symbolIndex(sym string) int {
	for i, s := range t.Symbols {
		if s == sym {
			return i
		}
	}
	return -1
}

// minSize is a lower bound of the encoded size of one datum of t, used to
// bound block counts read from untrusted input.
func minSize(t *Type, seen map[*Type]bool) int {
	switch t.Kind {
	case Null:
		return 0
	case Float:
		return 4
	case Double:
		return 8
	case Fixed:
		return t.Size
	case Record:
		if seen[t] {
			return 0
		}
		seen[t] = true
		n := 0
		for _, f := range t.Fields {
			n += minSize(f.Type, seen)
		}
		delete(seen, t)
		return n
	default:
		return 1
	}
}

// canonicalJSON is used in error messages only.
func canonicalJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}
