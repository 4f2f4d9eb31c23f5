package apply

import (
	"fmt"
	"strings"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/schema"
)

// NSMap renames source namespaces to destination namespaces.
//
// A rule is "src=dst" where both sides are "db.coll" (one collection) or
// "db.*" (every collection of a database, keeping the collection name).
// An exact collection rule wins over a database rule; namespaces that no rule
// matches keep their name. The renaming itself is control.Remapper, the one
// the control API and the verifier use, so --ns-map rules are checked as a
// namespaceRemap is (no two sources onto one target, no chains). The zero
// value maps every namespace to itself.
type NSMap struct {
	r control.Remapper
}

// ParseNSMap parses rules such as "srcdb.*=dstdb.*" and "db.a=db.b".
func ParseNSMap(rules []string) (NSMap, error) {
	var remaps []control.Remap
	for _, r := range rules {
		src, dst, ok := strings.Cut(r, "=")
		if !ok {
			return NSMap{}, fmt.Errorf("ns-map rule %q: want src=dst, e.g. srcdb.*=dstdb.* or db.a=db.b", r)
		}
		s, err := parseNSPattern(strings.TrimSpace(src))
		if err != nil {
			return NSMap{}, fmt.Errorf("ns-map rule %q: source: %w", r, err)
		}
		d, err := parseNSPattern(strings.TrimSpace(dst))
		if err != nil {
			return NSMap{}, fmt.Errorf("ns-map rule %q: destination: %w", r, err)
		}
		if (s.Coll == "*") != (d.Coll == "*") {
			return NSMap{}, fmt.Errorf("ns-map rule %q: map a database (db.*) to a database (db2.*) or a collection (db.a) to a collection (db2.b)", r)
		}
		if s.Coll == "*" {
			s.Coll, d.Coll = "", ""
		}
		remaps = append(remaps, control.Remap{From: control.NamespaceRef{Database: s.DB, Collection: s.Coll},
			To: control.NamespaceRef{Database: d.DB, Collection: d.Coll}})
	}
	m, err := control.NewRemapper(remaps)
	if err != nil {
		// The checks name rules as namespaceRemap[i]; i is the rule's place in --ns-map.
		return NSMap{}, fmt.Errorf("ns-map rules %q (namespaceRemap[i] is the i-th rule, from 0): %w", strings.Join(rules, ","), err)
	}
	return NSMap{r: m}, nil
}

func parseNSPattern(s string) (schema.Namespace, error) {
	db, coll, ok := strings.Cut(s, ".")
	if !ok || db == "" || coll == "" {
		return schema.Namespace{}, fmt.Errorf("%q is not db.coll or db.*", s)
	}
	if strings.ContainsAny(db, "/\\ \"$*") {
		return schema.Namespace{}, fmt.Errorf("%q: invalid database name %q", s, db)
	}
	if strings.Contains(coll, "*") && coll != "*" {
		return schema.Namespace{}, fmt.Errorf("%q: only a whole collection part may be *", s)
	}
	return schema.Namespace{DB: db, Coll: coll}, nil
}

// Map returns the destination namespace of ns. A database-level namespace
// (empty Coll) is mapped by the database rules only.
func (m NSMap) Map(ns schema.Namespace) schema.Namespace {
	db, coll := m.r.Remap(ns.DB, ns.Coll)
	return schema.Namespace{DB: db, Coll: coll}
}
