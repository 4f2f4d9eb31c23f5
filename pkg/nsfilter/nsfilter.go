package nsfilter

import (
	"fmt"
	"regexp"
	"strings"
)

// AlwaysSkippedDBs are the databases that are never copied or streamed.
var AlwaysSkippedDBs = []string{"admin", "local", "config"}

// MetadataDBPrefix starts the names of the tool's own metadata databases,
// which are never copied or streamed.
const MetadataDBPrefix = "__logbridge"

type matcher struct {
	src  string
	db   string         // exact db, or "" with re or dbRe set
	coll string         // exact coll, or "*" for every collection
	re   *regexp.Regexp // /regex/ pattern
	all  bool           // "*"
	// A Rule: db or dbRe, then colls or collRe (neither: every collection).
	rule   bool
	dbRe   *regexp.Regexp
	collRe *regexp.Regexp
	colls  map[string]bool
}

func (m matcher) match(db, coll string) bool {
	switch {
	case m.all:
		return true
	case m.rule:
		return m.matchDB(db) && (m.collRe == nil || m.collRe.MatchString(coll)) && (m.colls == nil || m.colls[coll])
	case m.re != nil:
		return m.re.MatchString(db + "." + coll)
	case m.db != db:
		return false
	default:
		return m.coll == "*" || m.coll == coll
	}
}

func (m matcher) matchDB(db string) bool {
	if m.dbRe != nil {
		return m.dbRe.MatchString(db)
	}
	return m.db == db
}

// wholeDB reports whether m selects every collection of db.
func (m matcher) wholeDB(db string) bool {
	switch {
	case m.all:
		return true
	case m.rule:
		return m.collRe == nil && m.colls == nil && m.matchDB(db)
	default:
		return m.re == nil && m.db == db && m.coll == "*"
	}
}

// Rule is one structured namespace rule, as a mongosync includeNamespaces
// entry gives it. Names compare exactly (no pattern characters, so a name
// can never widen the rule); the regular expressions are matched against
// their name part alone with MongoDB's $regex semantics: a match anywhere in
// the name unless the pattern anchors itself with ^ or $. Matching each part
// on its own keeps a user's pattern (say "a|b") from reaching into the other
// part of the namespace.
type Rule struct {
	// Src describes the rule in logs and in String.
	Src string
	// DB is the exact database name; it is ignored when DBRegex is set.
	DB      string
	DBRegex *regexp.Regexp
	// Colls are exact collection names; with neither Colls nor CollRegex
	// the rule selects every collection of the database.
	Colls     []string
	CollRegex *regexp.Regexp
}

func (r Rule) matcher() matcher {
	m := matcher{src: r.Src, rule: true, db: r.DB, dbRe: r.DBRegex, collRe: r.CollRegex}
	if len(r.Colls) > 0 {
		m.colls = map[string]bool{}
		for _, c := range r.Colls {
			m.colls[c] = true
		}
	}
	return m
}

// FromRules builds a filter from structured rules (the control API's
// includeNamespaces/excludeNamespaces, compiled by package control).
func FromRules(include, exclude []Rule) *Filter {
	f := &Filter{}
	for _, r := range include {
		f.include = append(f.include, r.matcher())
	}
	for _, r := range exclude {
		f.exclude = append(f.exclude, r.matcher())
	}
	return f
}

// Filter selects namespaces. The zero value selects every user namespace.
type Filter struct {
	include, exclude []matcher
	// via, when set, makes this filter a view of another one through a
	// renaming (Through); include and exclude are then empty.
	via *view
}

// view selects a namespace when it renames (back) to one that inner selects.
type view struct {
	inner *Filter
	back  func(db, coll string) (string, string, bool)
	mayDB func(db string) bool
	desc  string
}

// Through returns a filter that selects db.coll when back renames it to a
// namespace inner selects (back answers false for a namespace that has no
// counterpart: the filter never selects it). mayDB answers MayMatchDB: it
// must be true for every database holding a selected collection, and should
// be false for the others, since a dropDatabase event is selected by it.
//
// A reversed sync uses it: its filter was written in the names of the first
// sync's source, and the reversed source holds them under their remapped
// names. desc describes the renaming in String.
func Through(inner *Filter, back func(db, coll string) (string, string, bool), mayDB func(db string) bool, desc string) *Filter {
	return &Filter{via: &view{inner: inner, back: back, mayDB: mayDB, desc: desc}}
}

// New compiles the include and exclude patterns.
func New(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.include, err = compile(include); err != nil {
		return nil, fmt.Errorf("include pattern: %w", err)
	}
	if f.exclude, err = compile(exclude); err != nil {
		return nil, fmt.Errorf("exclude pattern: %w", err)
	}
	return f, nil
}

func compile(patterns []string) ([]matcher, error) {
	var out []matcher
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			continue
		case p == "*" || p == "*.*":
			out = append(out, matcher{src: p, all: true})
		case len(p) >= 2 && strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/"):
			re, err := regexp.Compile(p[1 : len(p)-1])
			if err != nil {
				return nil, fmt.Errorf("%q is not a valid regular expression: %w", p, err)
			}
			out = append(out, matcher{src: p, re: re})
		default:
			db, coll, ok := strings.Cut(p, ".")
			if !ok || db == "" || coll == "" {
				return nil, fmt.Errorf("%q: write db.coll, db.*, * or /regex/", p)
			}
			if strings.ContainsAny(db, "*/\\ \"$") {
				return nil, fmt.Errorf("%q: database name %q is not valid (use /regex/ for patterns)", p, db)
			}
			out = append(out, matcher{src: p, db: db, coll: coll})
		}
	}
	return out, nil
}

// SkippedDB reports whether db is never selected (admin, local, config, the
// tool's metadata databases).
func SkippedDB(db string) bool {
	for _, s := range AlwaysSkippedDBs {
		if db == s {
			return true
		}
	}
	return strings.HasPrefix(db, MetadataDBPrefix)
}

// Match reports whether the collection db.coll is selected.
func (f *Filter) Match(db, coll string) bool {
	if SkippedDB(db) || strings.HasPrefix(coll, "system.") || coll == "" {
		return false
	}
	if f == nil {
		return true
	}
	if f.via != nil {
		bdb, bcoll, ok := f.via.back(db, coll)
		return ok && f.via.inner.Match(bdb, bcoll)
	}
	if len(f.include) > 0 {
		in := false
		for _, m := range f.include {
			if m.match(db, coll) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, m := range f.exclude {
		if m.match(db, coll) {
			return false
		}
	}
	return true
}

// MayMatchDB reports whether some collection of db may be selected. It is
// exact for db.coll and db.* patterns and conservative (true) for regular
// expressions; use it to skip whole databases early.
func (f *Filter) MayMatchDB(db string) bool {
	if SkippedDB(db) {
		return false
	}
	if f != nil && f.via != nil {
		return f.via.mayDB(db)
	}
	if f.ExcludesDB(db) {
		return false
	}
	if f == nil || len(f.include) == 0 {
		return true
	}
	for _, m := range f.include {
		if m.all || m.re != nil || (m.rule && m.matchDB(db)) || (!m.rule && m.db == db) {
			return true
		}
	}
	return false
}

// DBs returns the databases that can hold a selected collection, when the
// include patterns name every one of them exactly (db.coll, db.*, rules
// with a database name); ok is false when they cannot be listed (no include
// pattern, *, a regular expression over databases, a view through a
// renaming). A change stream can then ask the server for the events of
// these databases only: a superset of what Match selects, so Match stays
// the judge.
func (f *Filter) DBs() (dbs []string, ok bool) {
	if f == nil || f.via != nil || len(f.include) == 0 {
		return nil, false
	}
	seen := map[string]bool{}
	for _, m := range f.include {
		if m.all || m.re != nil || m.dbRe != nil || m.db == "" {
			return nil, false
		}
		if !seen[m.db] && !SkippedDB(m.db) && !f.ExcludesDB(m.db) {
			seen[m.db] = true
			dbs = append(dbs, m.db)
		}
	}
	return dbs, true
}

// Excludes reports whether an exclude pattern matches db.coll (whatever
// the include patterns say).
func (f *Filter) Excludes(db, coll string) bool {
	if f != nil && f.via != nil {
		bdb, bcoll, ok := f.via.back(db, coll)
		return ok && f.via.inner.Excludes(bdb, bcoll)
	}
	for _, m := range f.excludeList() {
		if m.match(db, coll) {
			return true
		}
	}
	return false
}

// ExcludesDB reports whether an exclude pattern removes every collection
// of db. Regular expressions over "db.coll" never count: they may spare some;
// nor does a view (Through), whose renaming may spare some too.
func (f *Filter) ExcludesDB(db string) bool {
	for _, m := range f.excludeList() {
		if m.wholeDB(db) {
			return true
		}
	}
	return false
}

func (f *Filter) excludeList() []matcher {
	if f == nil {
		return nil
	}
	return f.exclude
}

// String describes the filter for logs.
func (f *Filter) String() string {
	if f == nil {
		return "include=* exclude="
	}
	if f.via != nil {
		return f.via.inner.String() + " (names " + f.via.desc + ")"
	}
	srcs := func(ms []matcher) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.src)
		}
		return strings.Join(s, ",")
	}
	inc := srcs(f.include)
	if inc == "" {
		inc = "*"
	}
	return "include=" + inc + " exclude=" + srcs(f.exclude)
}
