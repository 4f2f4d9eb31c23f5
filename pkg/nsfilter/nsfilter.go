package nsfilter

import (
	"fmt"
	"regexp"
	"strings"
)

// MetadataDB is where logbridge keeps its own state on a destination.
const MetadataDB = "__logbridge"

var systemDBs = map[string]bool{"admin": true, "local": true, "config": true, MetadataDB: true}

// IsSystemDB reports a database that is never synced.
func IsSystemDB(db string) bool { return systemDBs[db] }

type pattern struct {
	db, coll string // coll "" or "*": every collection
	re       *regexp.Regexp
}

func (p pattern) match(db, coll string) bool {
	if p.re != nil {
		return p.re.MatchString(db + "." + coll)
	}
	return p.db == db && (p.coll == "" || p.coll == "*" || p.coll == coll)
}

// Filter is a compiled include/exclude pair; the zero value includes everything
// but the system databases.
type Filter struct{ include, exclude []pattern }

// New compiles the patterns; a bad regex is an error naming the pattern.
func New(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.include, err = compile(include); err != nil {
		return nil, err
	}
	if f.exclude, err = compile(exclude); err != nil {
		return nil, err
	}
	return f, nil
}

func compile(list []string) ([]pattern, error) {
	var out []pattern
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			continue
		case len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/"):
			re, err := regexp.Compile(s[1 : len(s)-1])
			if err != nil {
				return nil, fmt.Errorf("namespace pattern %q is not a valid regular expression: %w", s, err)
			}
			out = append(out, pattern{re: re})
		default:
			db, coll, _ := strings.Cut(s, ".")
			if db == "" {
				return nil, fmt.Errorf("namespace pattern %q has no database: write db, db.*, db.coll or /regex/", s)
			}
			out = append(out, pattern{db: db, coll: coll})
		}
	}
	return out, nil
}

// Match reports whether the collection db.coll is included.
func (f *Filter) Match(db, coll string) bool {
	if IsSystemDB(db) || strings.HasPrefix(coll, "system.") {
		return false
	}
	return f.MatchDB(db) && f.matchList(db, coll)
}

func (f *Filter) matchList(db, coll string) bool {
	if f == nil {
		return true
	}
	included := len(f.include) == 0
	for _, p := range f.include {
		if p.match(db, coll) {
			included = true
			break
		}
	}
	if !included {
		return false
	}
	for _, p := range f.exclude {
		if p.match(db, coll) {
			return false
		}
	}
	return true
}

// MatchDB reports whether any collection of db could be included (used for
// database-level events such as dropDatabase).
func (f *Filter) MatchDB(db string) bool {
	if IsSystemDB(db) {
		return false
	}
	if f == nil || len(f.include) == 0 {
		return true
	}
	for _, p := range f.include {
		if p.re != nil || p.db == db {
			return true
		}
	}
	return false
}
