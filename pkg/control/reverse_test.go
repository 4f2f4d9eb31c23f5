package control

import (
	"fmt"
	"testing"
)

// TestReversedFilterFollowsTheRemap checks, for filters and remaps in
// combination, that the reversed sync selects exactly what the first sync
// wrote (the remapped names), renames each back to its original name, and
// that a second reversal selects what the first sync did.
func TestReversedFilterFollowsTheRemap(t *testing.T) {
	dbs := []string{"crm", "crm_v2", "crm2", "shop", "shop_v2", "tenant_1", "tenant_1_new", "other"}
	colls := []string{"a", "b", "bb", "x", "users", "tmp"}
	tests := []struct {
		name string
		p    StartParams
		// notDBs: databases whose dropDatabase the reversed sync must not select.
		notDBs []string
	}{
		{name: "include database, remap database", p: start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "crm"}}
			p.NamespaceRemap = []Remap{remap("crm", "", "crm_v2", "")}
		}), notDBs: []string{"crm", "shop", "other"}},
		{name: "include collections, remap one collection", p: start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "crm", Collections: []string{"a", "b"}}}
			p.NamespaceRemap = []Remap{remap("crm", "b", "crm2", "bb")}
		}), notDBs: []string{"shop"}},
		{name: "database and collection rules, exclude", p: start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "shop"}, {Database: "crm", Collections: []string{"a", "b"}}}
			p.ExcludeNamespaces = []NamespaceSpec{{Database: "shop", Collections: []string{"tmp"}}}
			p.NamespaceRemap = []Remap{remap("shop", "", "shop_v2", ""), remap("crm", "a", "crm2", ""), remap("crm", "b", "crm2", "bb")}
		}), notDBs: []string{"shop", "other"}},
		{name: "regexes, remap database", p: start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{DatabaseRegex: &Regex{Pattern: "^tenant_"}, CollectionsRegex: &Regex{Pattern: "^(users|a)$"}}}
			p.NamespaceRemap = []Remap{remap("tenant_1", "", "tenant_1_new", "")}
		}), notDBs: []string{"tenant_1"}},
		{name: "no filter, remap a collection", p: start(func(p *StartParams) {
			p.NamespaceRemap = []Remap{remap("crm", "a", "crm", "x")}
		})},
		{name: "filter without remap", p: start(func(p *StartParams) {
			p.IncludeNamespaces = []NamespaceSpec{{Database: "crm"}}
			p.ExcludeNamespaces = []NamespaceSpec{{Database: "crm", Collections: []string{"tmp"}}}
		}), notDBs: []string{"shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Reversible = true
			fwd, err := Compile(tt.p, testClusters)
			if err != nil {
				t.Fatal(err)
			}
			rp := tt.p.Reversed()
			rev, err := Compile(rp, testClusters)
			if err != nil {
				t.Fatal(err)
			}
			// What the first sync wrote: original name by destination name.
			// A target that also exists unmapped on the source receives two
			// collections (Compile cannot see it, see compileRemap): such
			// names are left out of the check.
			wrote, twice := map[string]string{}, map[string]bool{}
			for _, db := range dbs {
				for _, coll := range colls {
					if fwd.Filter.Match(db, coll) {
						ddb, dcoll := fwd.Remap(db, coll)
						if _, dup := wrote[ddb+"."+dcoll]; dup {
							twice[ddb+"."+dcoll] = true
						}
						wrote[ddb+"."+dcoll] = db + "." + coll
					}
				}
			}
			if len(wrote) == 0 {
				t.Fatal("the first sync selects nothing: a hollow case")
			}
			for _, db := range dbs {
				any := false
				for _, coll := range colls {
					ns := db + "." + coll
					if twice[ns] {
						continue
					}
					orig, want := wrote[ns]
					any = any || want
					if got := rev.Filter.Match(db, coll); got != want {
						t.Errorf("reversed Match(%s): got %v, want %v", ns, got, want)
						continue
					}
					if !want {
						continue
					}
					if bdb, bcoll := rev.Remap(db, coll); bdb+"."+bcoll != orig {
						t.Errorf("reversed Remap(%s): got %s.%s, want %s", ns, bdb, bcoll, orig)
					}
				}
				if any && !rev.Filter.MayMatchDB(db) {
					t.Errorf("reversed MayMatchDB(%s): false, but it holds selected collections", db)
				}
			}
			for _, db := range tt.notDBs {
				if rev.Filter.MayMatchDB(db) {
					t.Errorf("reversed MayMatchDB(%s): true, so a dropDatabase of it would be sent back", db)
				}
			}
			// Reversed twice: the first sync again.
			again, err := Compile(rp.Reversed(), testClusters)
			if err != nil {
				t.Fatal(err)
			}
			for _, db := range dbs {
				for _, coll := range colls {
					if a, b := again.Filter.Match(db, coll), fwd.Filter.Match(db, coll); a != b {
						t.Errorf("reversed twice, Match(%s.%s): got %v, want %v", db, coll, a, b)
					}
					if a, b := fmt.Sprint(again.Remap(db, coll)), fmt.Sprint(fwd.Remap(db, coll)); a != b {
						t.Errorf("reversed twice, Remap(%s.%s): got %s, want %s", db, coll, a, b)
					}
				}
			}
		})
	}
}
