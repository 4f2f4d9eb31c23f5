package conformance

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestResultNamesUniqueAndLookup(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if c.Run == nil || c.Name == "" || c.Desc == "" {
			t.Errorf("check %q incomplete", c.Name)
		}
		switch c.Role {
		case "source", "destination", "both":
		default:
			t.Errorf("check %q has role %q", c.Name, c.Role)
		}
		for _, r := range c.ResultNames() {
			if seen[r] {
				t.Errorf("result name %q used twice", r)
			}
			seen[r] = true
			if got, ok := Lookup(r); !ok || got.Name != c.Name {
				t.Errorf("Lookup(%q) = %q, %v", r, got.Name, ok)
			}
		}
	}
}

func TestSkipReasonAndMatrix(t *testing.T) {
	rs := []Result{{Check: "crud", Status: Pass}, {Check: "cs_cluster_wide", Status: Error, Reason: "no such command"}}
	if r := SkipReason(rs, "crud"); r != "" {
		t.Errorf("SkipReason(crud) = %q", r)
	}
	if r := SkipReason(rs, "crud", "cs_cluster_wide"); !strings.Contains(r, "cs_cluster_wide") || !strings.Contains(r, "no such command") {
		t.Errorf("SkipReason = %q", r)
	}
	if r := SkipReason(rs, "txn_commit"); !strings.Contains(r, "not run") {
		t.Errorf("SkipReason(unrun) = %q", r)
	}
	var b bytes.Buffer
	MatrixMarkdown(&b, []string{"a|b"}, map[string][]Result{"a|b": rs})
	if !strings.Contains(b.String(), "| crud | PASS |") || !strings.Contains(b.String(), `a\|b`) {
		t.Errorf("matrix:\n%s", b.String())
	}
}

// TestProbeLive runs the whole probe against LOGBRIDGE_CONFORMANCE_URI when set
// (e.g. the source of scripts/stack.sh); it reports, it does not judge.
func TestProbeLive(t *testing.T) {
	uri := os.Getenv("LOGBRIDGE_CONFORMANCE_URI")
	if uri == "" {
		t.Skip("LOGBRIDGE_CONFORMANCE_URI not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rs, err := Probe(ctx, uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Logf("%-32s %-5s %s", r.Check, r.Status, r.Reason)
	}
}
