package apply

import (
	"strings"
	"testing"

	"github.com/logbridge/logbridge/schema"
)

// FuzzParseNSMap parses --ns-map rules (one per line of the input). It
// must never panic, and an accepted set must map each rule's source to its
// destination (database rules keep the collection name). Seeds:
// testdata/fuzz/FuzzParseNSMap.
func FuzzParseNSMap(f *testing.F) {
	f.Fuzz(func(t *testing.T, input string) {
		rules := strings.Split(input, "\n")
		m, err := ParseNSMap(rules)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		for _, r := range rules {
			src, dst, _ := strings.Cut(r, "=")
			s, _ := parseNSPattern(strings.TrimSpace(src))
			d, _ := parseNSPattern(strings.TrimSpace(dst))
			if s.Coll == "*" {
				got := m.Map(schema.Namespace{DB: s.DB, Coll: "probe"})
				if !exactRule(rules, s.DB+".probe") && got != (schema.Namespace{DB: d.DB, Coll: "probe"}) {
					t.Fatalf("rule %q maps %s.probe to %s", r, s.DB, got)
				}
				continue
			}
			if got := m.Map(s); got != d {
				t.Fatalf("rule %q maps %s to %s", r, s, got)
			}
		}
	})
}

// exactRule reports whether a rule names the collection ns itself.
func exactRule(rules []string, ns string) bool {
	for _, r := range rules {
		if src, _, _ := strings.Cut(r, "="); strings.TrimSpace(src) == ns {
			return true
		}
	}
	return false
}
