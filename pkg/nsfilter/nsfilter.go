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
	db   string         // exact db, or "" with re set
	coll string         // exact coll, or "*" for every collection
	re   *regexp.Regexp // /regex/ pattern
	all  bool           // "*"
}

func (m matcher) match(db, coll string) bool {
	switch {
	case m.all:
		return true
	case m.re != nil:
		return m.re.MatchString(db + "." + coll)
	case m.db != db:
		return false
	default:
		return m.coll == "*" || m.coll == coll
	}
}

// Filter selects namespaces. The zero value selects every user namespace.
type Filter struct {
	include, exclude []matcher
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
	if f == nil || len(f.include) == 0 {
		for _, m := range f.excludeList() {
			if m.db == db && m.coll == "*" || m.all {
				return false
			}
		}
		return true
	}
	for _, m := range f.include {
		if m.all || m.re != nil || m.db == db {
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
