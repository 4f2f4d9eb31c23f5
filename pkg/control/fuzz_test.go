package control

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCompileRegex feeds mongosync {pattern, options} pairs to
// CompileRegex. It must never panic; an accepted pattern must be a regexp
// that matches without panicking; and any literal text, quoted with
// regexp.QuoteMeta, must be accepted and match itself (user text quoted
// never turns into a construct). Seeds: testdata/fuzz/FuzzCompileRegex.
func FuzzCompileRegex(f *testing.F) {
	f.Fuzz(func(t *testing.T, pattern, options string) {
		re, err := CompileRegex("collectionsRegex", &Regex{Pattern: pattern, Options: options})
		if !utf8.ValidString(pattern) {
			// Found by this fuzzer: RE2 refused it with a garbled message.
			if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("got %v for invalid UTF-8, want a refusal saying so", err)
			}
			return
		}
		if err == nil {
			re.MatchString(pattern)
			re.MatchString("shop")
		}
		lit, err := CompileRegex("collectionsRegex", &Regex{Pattern: "^" + regexp.QuoteMeta(pattern) + "$"})
		if err != nil {
			t.Fatalf("the quoted literal %q was refused: %v", pattern, err)
		}
		if !lit.MatchString(pattern) {
			t.Fatalf("the quoted literal %q does not match itself (%s)", pattern, lit)
		}
	})
}

// FuzzStartParams decodes a start body as the control log stores it and
// compiles it. An accepted request must compile again, to the same rules,
// after the round trip through the control log (the epoch start re-reads
// it), and its filter and remap must answer without panicking. Seeds:
// testdata/fuzz/FuzzStartParams. (The HTTP decode path itself is fuzzed by
// controlapi's FuzzStartRequest.)
func FuzzStartParams(f *testing.F) {
	clusters := []string{"cluster0", "cluster1"}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p StartParams
		if json.Unmarshal(body, &p) != nil {
			return
		}
		c, err := Compile(p, clusters)
		if err != nil {
			return
		}
		b, err := Event{Type: EvStart, Params: &p}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ev, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Compile(*ev.Params, clusters)
		if err != nil {
			t.Fatalf("accepted at the door but refused at the epoch start: %v\nbody: %s", err, body)
		}
		if !slices.Equal(c.NSMap, again.NSMap) {
			t.Fatalf("ns-map %q at the door, %q at the epoch start", c.NSMap, again.NSMap)
		}
		rules, err := RemapRules(p.NamespaceRemap)
		if err != nil || !slices.Equal(rules, c.NSMap) {
			t.Fatalf("the sink's rules %q (%v) differ from the source's %q", rules, err, c.NSMap)
		}
		// Each rule does what it says (a collection rule without
		// to.collection keeps the name).
		for _, r := range p.NamespaceRemap {
			if r.From.Collection == "" {
				continue
			}
			want := r.To.Collection
			if want == "" {
				want = r.From.Collection
			}
			if db, coll := c.Remap(r.From.Database, r.From.Collection); db != r.To.Database || coll != want {
				t.Fatalf("%+v: Remap gives %s.%s", r, db, coll)
			}
		}
		c.Filter.Match("shop", "orders")
	})
}
