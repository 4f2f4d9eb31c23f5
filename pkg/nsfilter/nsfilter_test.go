package nsfilter

import (
	"regexp"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		db, coll         string
		want             bool
	}{
		{name: "no patterns selects user ns", db: "shop", coll: "orders", want: true},
		{name: "admin never", include: []string{"*"}, db: "admin", coll: "x", want: false},
		{name: "local never", include: []string{"/.*/"}, db: "local", coll: "oplog.rs", want: false},
		{name: "config never", db: "config", coll: "chunks", want: false},
		{name: "metadata db never", db: "__logbridge", coll: "applied", want: false},
		{name: "metadata db prefix never", db: "__logbridge_sink", coll: "x", want: false},
		{name: "system collections never", db: "shop", coll: "system.views", want: false},
		{name: "exact include", include: []string{"shop.orders"}, db: "shop", coll: "orders", want: true},
		{name: "exact include other coll", include: []string{"shop.orders"}, db: "shop", coll: "items", want: false},
		{name: "db wildcard", include: []string{"shop.*"}, db: "shop", coll: "items", want: true},
		{name: "db wildcard other db", include: []string{"shop.*"}, db: "crm", coll: "items", want: false},
		{name: "coll with dots", include: []string{"shop.a.b"}, db: "shop", coll: "a.b", want: true},
		{name: "regex", include: []string{`/^crm\.acc/`}, db: "crm", coll: "accounts", want: true},
		{name: "regex miss", include: []string{`/^crm\.acc/`}, db: "crm", coll: "leads", want: false},
		{name: "exclude wins", include: []string{"shop.*"}, exclude: []string{"shop.tmp"}, db: "shop", coll: "tmp", want: false},
		{name: "exclude only", exclude: []string{"/tmp$/"}, db: "a", coll: "xtmp", want: false},
		{name: "exclude only other", exclude: []string{"/tmp$/"}, db: "a", coll: "x", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.include, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(tc.db, tc.coll); got != tc.want {
				t.Errorf("Match(%q, %q) = %v, want %v (%s)", tc.db, tc.coll, got, tc.want, f)
			}
		})
	}
}

func TestBadPatterns(t *testing.T) {
	for _, p := range []string{"nodot", "/[/", ".coll", "db."} {
		if _, err := New([]string{p}, nil); err == nil {
			t.Errorf("New(%q) = nil error, want an error", p)
		}
	}
}

func TestMayMatchDB(t *testing.T) {
	f, _ := New([]string{"shop.orders"}, nil)
	if !f.MayMatchDB("shop") || f.MayMatchDB("crm") || f.MayMatchDB("admin") {
		t.Errorf("MayMatchDB wrong for %s", f)
	}
	g, _ := New(nil, []string{"crm.*"})
	if g.MayMatchDB("crm") || !g.MayMatchDB("shop") {
		t.Errorf("MayMatchDB wrong for %s", g)
	}
}

func TestRules(t *testing.T) {
	f := FromRules(
		[]Rule{
			{Src: "shop.*", DB: "shop"},
			{Src: "crm.{a,b}", DB: "crm", Colls: []string{"a", "b"}},
			{Src: "/^t_/./x|y/", DBRegex: regexp.MustCompile("^t_"), CollRegex: regexp.MustCompile("x|y")},
		},
		[]Rule{{Src: "shop.tmp", DB: "shop", Colls: []string{"tmp"}}, {Src: "old.*", DB: "old"}},
	)
	for _, tc := range []struct {
		db, coll string
		want     bool
	}{
		{"shop", "orders", true}, {"shop", "tmp", false}, {"crm", "a", true}, {"crm", "c", false},
		{"t_1", "ax", true}, {"t_1", "z", false}, {"x", "x", false}, {"at_1", "x", false}, {"old", "x", false},
	} {
		if got := f.Match(tc.db, tc.coll); got != tc.want {
			t.Errorf("Match(%s.%s): got %v, want %v", tc.db, tc.coll, got, tc.want)
		}
	}
	for _, tc := range []struct {
		db   string
		want bool
	}{{"shop", true}, {"crm", true}, {"t_9", true}, {"other", false}, {"old", false}} {
		if got := f.MayMatchDB(tc.db); got != tc.want {
			t.Errorf("MayMatchDB(%s): got %v, want %v", tc.db, got, tc.want)
		}
	}
	if !f.Excludes("shop", "tmp") || f.Excludes("shop", "orders") || !f.ExcludesDB("old") || f.ExcludesDB("shop") {
		t.Errorf("Excludes/ExcludesDB: got shop.tmp=%v shop.orders=%v old=%v shop=%v, want true false true false",
			f.Excludes("shop", "tmp"), f.Excludes("shop", "orders"), f.ExcludesDB("old"), f.ExcludesDB("shop"))
	}
	if got := f.String(); got != "include=shop.*,crm.{a,b},/^t_/./x|y/ exclude=shop.tmp,old.*" {
		t.Errorf("String: got %q", got)
	}
}

// TestDBs: the databases a change stream may ask the server for, only when
// the include patterns name them all; a database excluded as a whole or
// never streamed is left out.
func TestDBs(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		rules            []Rule
		want             []string // nil: not listable
	}{
		{name: "no include", exclude: []string{"a.x"}},
		{name: "all", include: []string{"a.x", "*"}},
		{name: "regex", include: []string{"a.x", "/^b\\./"}},
		{name: "exact", include: []string{"a.x", "b.*", "a.y"}, want: []string{"a", "b"}},
		{name: "excluded db", include: []string{"a.x", "b.*"}, exclude: []string{"b.*", "a.x"}, want: []string{"a"}},
		{name: "skipped db", include: []string{"admin.x", "a.*"}, want: []string{"a"}},
		{name: "rules", rules: []Rule{{DB: "r"}, {DB: "s", Colls: []string{"c"}}}, want: []string{"r", "s"}},
		{name: "db regex rule", rules: []Rule{{DB: "r"}, {DBRegex: regexp.MustCompile("^s")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if tt.rules != nil {
				f = FromRules(tt.rules, nil)
			}
			got, ok := f.DBs()
			if ok != (tt.want != nil) || len(got) != len(tt.want) {
				t.Fatalf("DBs() = %v, %v; want %v", got, ok, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("DBs() = %v; want %v", got, tt.want)
				}
			}
		})
	}
	if dbs, ok := Through(mustNew(t, "a.*"), func(db, coll string) (string, string, bool) { return db, coll, true }, func(string) bool { return true }, "").DBs(); ok {
		t.Fatalf("a view lists %v; it cannot", dbs)
	}
	if dbs, ok := (*Filter)(nil).DBs(); ok {
		t.Fatalf("the nil filter lists %v; it selects every database", dbs)
	}
}

func mustNew(t *testing.T, include ...string) *Filter {
	t.Helper()
	f, err := New(include, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
