package control

import (
	"strings"
	"testing"
)

var testClusters = []string{"cluster0", "cluster1"}

func TestCompileRegexRefusesByName(t *testing.T) {
	tests := []struct {
		name, pattern, options string
		want                   string
	}{
		{name: "unbalanced", pattern: "(", want: `not a valid regular expression in RE2 syntax (missing closing ): `},
		{name: "lookahead", pattern: "^(?=a)", want: `collectionsRegex "^(?=a)": lookahead (?=...) is not supported (RE2 syntax): rewrite without it`},
		{name: "negative lookahead", pattern: "^(?!tmp_)", want: "negative lookahead (?!...) is not supported"},
		{name: "lookbehind", pattern: "(?<=a)b", want: "lookbehind (?<=...) is not supported"},
		{name: "negative lookbehind", pattern: "(?<!a)b", want: "negative lookbehind (?<!...) is not supported"},
		{name: "backreference", pattern: `(a)\1`, want: `backreference \1 is not supported`},
		{name: "named backreference", pattern: `(?<x>a)\k<x>`, want: `backreference or subroutine \k is not supported`},
		{name: "python named backreference", pattern: `(?P<x>a)(?P=x)`, want: "named backreference (?P=name) is not supported"},
		{name: "atomic group", pattern: "(?>ab|a)c", want: "atomic group (?>...) is not supported"},
		{name: "possessive star", pattern: "a*+b", want: "possessive quantifier (*+) is not supported"},
		{name: "possessive plus", pattern: "a++b", want: "possessive quantifier (++) is not supported"},
		{name: "possessive optional", pattern: "a?+b", want: "possessive quantifier (?+) is not supported"},
		{name: "possessive counted", pattern: "a{2,3}+", want: "possessive quantifier (}+) is not supported"},
		{name: "G anchor", pattern: `\Gabc`, want: `\G (end of the previous match) is not supported`},
		{name: "Z anchor", pattern: `abc\Z`, want: `use \z or $`},
		{name: "K", pattern: `a\Kb`, want: `\K (reset of the match start) is not supported`},
		{name: "conditional", pattern: "(a)?(?(1)b|c)", want: "conditional (?(...)...) is not supported"},
		{name: "recursion", pattern: "a(?R)?b", want: "recursion (?R) is not supported"},
		{name: "subroutine", pattern: "(a)(?1)", want: "subroutine call (?N) is not supported"},
		{name: "comment group", pattern: "a(?#note)", want: "comment (?#...) is not supported"},
		{name: "branch reset", pattern: "(?|a|b)", want: "branch reset (?|...) is not supported"},
		{name: "verb", pattern: "(*SKIP)a", want: "backtracking control verb (*...) is not supported"},
		{name: "unknown option", pattern: "a", options: "ig", want: `option "g" is not supported: use i, m, s, x or u`},
		{name: "bad escape", pattern: `\e`, want: "invalid escape sequence"},
		{name: "invalid UTF-8", pattern: "\xde", want: "the pattern is not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re, err := CompileRegex("collectionsRegex", &Regex{Pattern: tc.pattern, Options: tc.options})
			if err == nil {
				t.Fatalf("got %v, want an error containing %q", re, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "collectionsRegex ") {
				t.Fatalf("got %q, want it to name the field", err)
			}
		})
	}
}

func TestCompileRegexAccepts(t *testing.T) {
	tests := []struct {
		name, pattern, options string
		match, miss            []string
	}{
		{name: "unanchored like $regex", pattern: "log", match: []string{"log", "applog", "logs"}, miss: []string{"lo"}},
		{name: "anchored", pattern: "^log$", match: []string{"log"}, miss: []string{"logs", "applog"}},
		{name: "case insensitive", pattern: "^LOG", options: "i", match: []string{"logs", "Logs"}, miss: []string{"xlog"}},
		{name: "u ignored", pattern: "^é", options: "u", match: []string{"été"}},
		{name: "dot all", pattern: "a.b", options: "s", match: []string{"a\nb"}},
		{name: "multi line", pattern: "^b", options: "m", match: []string{"a\nb"}},
		{name: "escaped chars are not constructs", pattern: `\(\?=\)\\1\++`, match: []string{`(?=)\1++`}},
		{name: "constructs inside a class are literals", pattern: `^[(?=]+$`, match: []string{"(?="}, miss: []string{"a"}},
		{name: "quoted text is literal", pattern: `\Q(?=\E`, match: []string{"(?="}},
		{name: "lazy quantifier", pattern: "^a+?b", match: []string{"aab"}},
		{name: "literal brace then plus", pattern: "^a{+$", match: []string{"a{{"}},
		{name: "named group", pattern: "^(?<y>20[0-9]{2})_", match: []string{"2024_x"}, miss: []string{"1999_x"}},
		{name: "extended", pattern: "^ log  # a comment\n s [ ]x \\ y$", options: "x", match: []string{"logs x y"}, miss: []string{" log s  x y"}},
		{name: "extended keeps quoted spaces", pattern: `^a \Q b #\E c$`, options: "x", match: []string{"a b #c"}, miss: []string{"ab#c"}},
		{name: "extended keeps escaped hash", pattern: `^a\#b$`, options: "x", match: []string{"a#b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re, err := CompileRegex("databaseRegex", &Regex{Pattern: tc.pattern, Options: tc.options})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.match {
				if !re.MatchString(s) {
					t.Errorf("%s did not match %q", re, s)
				}
			}
			for _, s := range tc.miss {
				if re.MatchString(s) {
					t.Errorf("%s matched %q, want no match", re, s)
				}
			}
		})
	}
}

func start(mutate func(*StartParams)) StartParams {
	p := StartParams{Source: "cluster0", Destination: "cluster1"}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func remap(fromDB, fromColl, toDB, toColl string) Remap {
	return Remap{From: NamespaceRef{Database: fromDB, Collection: fromColl}, To: NamespaceRef{Database: toDB, Collection: toColl}}
}

func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name string
		p    StartParams
		want string
	}{
		{"no source", start(func(p *StartParams) { p.Source = "" }), `"source" is required (one of [cluster0 cluster1])`},
		{"unknown destination", start(func(p *StartParams) { p.Destination = "cluster9" }), `destination "cluster9" is not a configured cluster (configured: [cluster0 cluster1]; add it with --cluster9)`},
		{"same cluster", start(func(p *StartParams) { p.Destination = "cluster0" }), "source and destination must be different clusters"},
		{"buildIndexes", start(func(p *StartParams) { p.BuildIndexes = "later" }), `buildIndexes "later": use afterDataCopy, beforeDataCopy, excludeHashed, excludeHashedAfterCopy or never`},
		{"bad regex", start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "shop", CollectionsRegex: &Regex{Pattern: "("}}}
		}), `includeNamespaces[0].collectionsRegex "(": not a valid regular expression`},
		{"lookahead in exclude", start(func(p *StartParams) {
			p.ExcludeNamespaces = []NamespaceSpec{{DatabaseRegex: &Regex{Pattern: "^(?=a)"}}}
		}), `excludeNamespaces[0].databaseRegex "^(?=a)": lookahead (?=...) is not supported (RE2 syntax): rewrite without it`},
		{"no database", start(func(p *StartParams) { p.IncludeNamespaces = []NamespaceSpec{{Collections: []string{"x"}}} }), `includeNamespaces[0]: a namespace entry needs "database" or "databaseRegex"`},
		{"database and regex", start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "a", DatabaseRegex: &Regex{Pattern: "b"}}}
		}), `give "database" or "databaseRegex", not both`},
		{"collections and regex", start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "a", Collections: []string{"x"}, CollectionsRegex: &Regex{Pattern: "b"}}}
		}), `give "collections" or "collectionsRegex", not both`},
		{"bad database name", start(func(p *StartParams) { p.IncludeNamespaces = []NamespaceSpec{{Database: "a.b"}} }), `database name "a.b" is not valid`},
		{"long database name", start(func(p *StartParams) { p.IncludeNamespaces = []NamespaceSpec{{Database: strings.Repeat("d", 64)}} }), "MongoDB allows at most 63"},
		{"bad collection name", start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "a", Collections: []string{"x$y"}}}
		}), `collection name "x$y" is not valid`},
		{"include admin", start(func(p *StartParams) { p.IncludeNamespaces = []NamespaceSpec{{Database: "admin"}} }), `database "admin" is never synced`},
		{"remap bad name", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "b c", "")} }), `namespaceRemap[0].to: database name "b c" is not valid`},
		{"remap no database", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("", "x", "b", "")} }), `namespaceRemap[0].from: the database name is empty`},
		{"remap db onto coll", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "b", "c")} }), "a database maps onto a database"},
		{"remap onto admin", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "admin", "")} }), `namespaceRemap[0].to: database "admin" is never synced`},
		{"remap onto metadata", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "__logbridge_x", "")} }), `database "__logbridge_x" is never synced`},
		{"remap onto system collection", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "x", "a", "system.views")} }), `"system.views" is a system collection`},
		{"remap onto itself", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "x", "a", "")} }), "maps a.x onto itself"},
		{"remap twice", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "b", ""), remap("a", "", "c", "")} }), "a.* is already remapped by namespaceRemap[0]"},
		{"collision of databases", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "c", ""), remap("b", "", "c", "")} }), "c.* is already the target of namespaceRemap[0]"},
		{"collision of collections", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "x", "c", "z"), remap("b", "y", "c", "z")} }), "c.z is already the target of namespaceRemap[0]"},
		{"collision through a database rule", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "c", ""), remap("b", "y", "c", "x")} }), "c.x also receives a.x through namespaceRemap[0]"},
		{"chain", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "", "b", ""), remap("b", "", "c", "")} }), "its target is remapped again by namespaceRemap[1] (b.* -> c.*)"},
		{"cycle", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "x", "b", "x"), remap("b", "x", "a", "x")} }), "chains and cycles are not supported"},
		{"chain into a moved database", start(func(p *StartParams) { p.NamespaceRemap = []Remap{remap("a", "x", "b", "x"), remap("b", "", "c", "")} }), "its target is remapped again"},
		{"remap onto excluded", start(func(p *StartParams) {
			p.ExcludeNamespaces = []NamespaceSpec{{Database: "archive"}}
			p.NamespaceRemap = []Remap{remap("shop", "", "archive", "")}
		}), "to archive.* is excluded by excludeNamespaces"},
		{"remap of excluded", start(func(p *StartParams) {
			p.ExcludeNamespaces = []NamespaceSpec{{Database: "shop", Collections: []string{"tmp"}}}
			p.NamespaceRemap = []Remap{remap("shop", "tmp", "other", "")}
		}), "from shop.tmp is excluded by excludeNamespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compile(tc.p, testClusters)
			if err == nil {
				t.Fatalf("got %+v, want an error containing %q", c, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCompileReversedRefusedOnlyWhenReversible(t *testing.T) {
	// Forward, shop.a goes to x.a and the rest of shop to y: no collision.
	// Reversed, x.a goes back to shop.a and y.* to shop.*, so a y.a on the
	// old destination would land on shop.a too: the reversal could not run.
	p := start(func(p *StartParams) {
		p.NamespaceRemap = []Remap{remap("shop", "a", "x", ""), remap("shop", "", "y", "")}
	})
	if _, err := Compile(p, testClusters); err != nil {
		t.Fatalf("not reversible: got %v, want it accepted", err)
	}
	p.Reversible = true
	_, err := Compile(p, testClusters)
	if want := `"reversible": true, but the reversed sync could not run: namespaceRemap[0] (x.a -> shop.a): shop.a also receives y.a`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reversible: got %v, want an error containing %q", err, want)
	}
}

func TestCompileAccepts(t *testing.T) {
	p := start(func(p *StartParams) {
		p.BuildIndexes = "excludeHashedAfterCopy"
		p.Reversible = true
		p.IncludeNamespaces = []NamespaceSpec{
			{Database: "shop"},
			{Database: "crm", Collections: []string{"a", "b"}},
			{Database: "logs", CollectionsRegex: &Regex{Pattern: "^2024", Options: "i"}},
			{DatabaseRegex: &Regex{Pattern: "^tenant_[0-9]+$"}, Collections: []string{"users"}},
		}
		p.ExcludeNamespaces = []NamespaceSpec{{Database: "shop", Collections: []string{"tmp"}}}
		p.NamespaceRemap = []Remap{remap("shop", "", "shop_v2", ""), remap("crm", "a", "crm2", ""), remap("crm", "b", "crm2", "bb")}
	})
	c, err := Compile(p, testClusters)
	if err != nil {
		t.Fatal(err)
	}
	wantMap := []string{"shop.*=shop_v2.*", "crm.a=crm2.a", "crm.b=crm2.bb"}
	if strings.Join(c.NSMap, " ") != strings.Join(wantMap, " ") {
		t.Errorf("NSMap: got %q, want %q", c.NSMap, wantMap)
	}
	for _, tc := range []struct {
		db, coll string
		want     bool
	}{
		{"shop", "orders", true}, {"shop", "tmp", false}, {"crm", "a", true}, {"crm", "c", false},
		{"logs", "2024_jan", true}, {"logs", "2024", true}, {"logs", "x2024", false},
		{"tenant_7", "users", true}, {"tenant_7", "orders", false}, {"tenant_x", "users", false},
		{"other", "x", false},
	} {
		if got := c.Filter.Match(tc.db, tc.coll); got != tc.want {
			t.Errorf("Match(%s.%s): got %v, want %v", tc.db, tc.coll, got, tc.want)
		}
	}
	for _, tc := range []struct{ db, coll, wantDB, wantColl string }{
		{"shop", "orders", "shop_v2", "orders"}, {"crm", "a", "crm2", "a"}, {"crm", "b", "crm2", "bb"}, {"crm", "c", "crm", "c"},
	} {
		if db, coll := c.Remap(tc.db, tc.coll); db != tc.wantDB || coll != tc.wantColl {
			t.Errorf("Remap(%s.%s): got %s.%s, want %s.%s", tc.db, tc.coll, db, coll, tc.wantDB, tc.wantColl)
		}
	}
}

// A user pattern cannot escape the rule's other part: "a|b" in a collection
// regex under an exact database matches collections of that database only,
// and a database name with regex characters is compared literally.
func TestUserTextCannotEscapeItsAnchor(t *testing.T) {
	c, err := Compile(start(func(p *StartParams) {
		p.IncludeNamespaces = []NamespaceSpec{
			{Database: "shop", CollectionsRegex: &Regex{Pattern: "^a$|^b$"}},
			{Database: "x+y"},
		}
	}), testClusters)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		db, coll string
		want     bool
	}{
		{"shop", "a", true}, {"shop", "b", true}, {"shop", "ab", false},
		{"other", "a", false}, {"other", "b", false}, {"b", "x", false}, {"shopx", "a", false},
		{"x+y", "c", true}, {"xxy", "c", false}, {"xy", "c", false},
	} {
		if got := c.Filter.Match(tc.db, tc.coll); got != tc.want {
			t.Errorf("Match(%s.%s): got %v, want %v", tc.db, tc.coll, got, tc.want)
		}
	}
	// The same with the database as a regex and an alternation in the
	// collection part.
	c, err = Compile(start(func(p *StartParams) {
		p.IncludeNamespaces = []NamespaceSpec{{DatabaseRegex: &Regex{Pattern: "^shop$"}, CollectionsRegex: &Regex{Pattern: "a|b"}}}
	}), testClusters)
	if err != nil {
		t.Fatal(err)
	}
	if c.Filter.Match("crm", "a") || c.Filter.Match("a", "x") || !c.Filter.Match("shop", "xbx") {
		t.Errorf("a|b widened the database part: crm.a=%v a.x=%v shop.xbx=%v", c.Filter.Match("crm", "a"), c.Filter.Match("a", "x"), c.Filter.Match("shop", "xbx"))
	}
}

func TestRemapRulesInvertsCleanly(t *testing.T) {
	p := start(func(p *StartParams) {
		p.NamespaceRemap = []Remap{remap("a", "", "b", ""), remap("c", "x", "d", "y")}
	})
	fwd, err := RemapRules(p.NamespaceRemap)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := RemapRules(p.Reversed().NamespaceRemap)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(fwd, " ") != "a.*=b.* c.x=d.y" || strings.Join(rev, " ") != "b.*=a.* d.y=c.x" {
		t.Fatalf("got %q and %q, want a.*=b.* c.x=d.y and its inverse", fwd, rev)
	}
}
