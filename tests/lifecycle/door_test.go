package lifecycle

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestStartRefusedAtTheDoor sends starts that could not run to a real
// source-connector: each is answered 400 InvalidRequest naming the problem,
// and the control log <prefix>._control keeps every record it had (none) —
// a start is permanent there, so one that slipped through would wedge the
// prefix. A valid start (regexes with options, a collection remap) then
// succeeds and the sync runs to canCommit with the destination equal to
// the source under the remap (checked here and by POST /api/v1/verify).
func TestStartRefusedAtTheDoor(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	h := newHarness(t, ctx, false)
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.env.KafkaBrokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	records := func() int64 {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, control.Topic(h.prefix))
		if err != nil {
			t.Fatalf("reading the end of the control log: %v", err)
		}
		end, ok := ends.Lookup(control.Topic(h.prefix), 0)
		if !ok || end.Err != nil {
			t.Fatalf("reading the end of the control log: %v", end.Err)
		}
		return end.Offset
	}
	before := records()

	base := func(extra map[string]any) map[string]any {
		b := map[string]any{"source": "cluster0", "destination": "cluster1"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	refused := []struct {
		name string
		body map[string]any
		want string
	}{
		{"bad regex", base(map[string]any{"includeNamespaces": []any{map[string]any{
			"database": h.db, "collectionsRegex": map[string]any{"pattern": "("}}}}),
			`includeNamespaces[0].collectionsRegex "(": not a valid regular expression in RE2 syntax`},
		{"lookahead", base(map[string]any{"includeNamespaces": []any{map[string]any{
			"database": h.db, "collectionsRegex": map[string]any{"pattern": "^(?=a)"}}}}),
			`includeNamespaces[0].collectionsRegex "^(?=a)": lookahead (?=...) is not supported (RE2 syntax): rewrite without it`},
		{"unknown regex option", base(map[string]any{"excludeNamespaces": []any{map[string]any{
			"databaseRegex": map[string]any{"pattern": "^tmp", "options": "g"}}}}),
			`option "g" is not supported: use i, m, s, x or u`},
		{"bad remap", base(map[string]any{"namespaceRemap": []any{map[string]any{
			"from": map[string]any{"database": h.db}, "to": map[string]any{"database": "bad.name"}}}}),
			`namespaceRemap[0].to: database name "bad.name" is not valid`},
		{"remap collision", base(map[string]any{"namespaceRemap": []any{
			map[string]any{"from": map[string]any{"database": h.db, "collection": "items"}, "to": map[string]any{"database": h.db, "collection": "all"}},
			map[string]any{"from": map[string]any{"database": h.db, "collection": "orders"}, "to": map[string]any{"database": h.db, "collection": "all"}}}}),
			"is already the target of namespaceRemap[0]"},
		{"remap onto a system database", base(map[string]any{"namespaceRemap": []any{map[string]any{
			"from": map[string]any{"database": h.db}, "to": map[string]any{"database": "admin"}}}}),
			`database "admin" is never synced`},
		{"unknown cluster", map[string]any{"source": "cluster0", "destination": "cluster7"},
			`destination "cluster7" is not a configured cluster`},
		// "none", not "destinationOnly": were it accepted, the shared
		// destination must not be blocked for the other tests.
		{"reversible without write blocking on both sides", base(map[string]any{"reversible": true, "enableUserWriteBlocking": "none",
			"includeNamespaces": []any{map[string]any{"database": h.db}}}),
			`"reversible": true needs "enableUserWriteBlocking": "sourceAndDestination" (or true), as in mongosync`},
	}
	for _, r := range refused {
		ans := h.post("/api/v1/start", r.body, 400)
		desc := str(ans, "errorDescription")
		if ans["success"] != false || str(ans, "error") != "InvalidRequest" || !strings.Contains(desc, r.want) {
			t.Fatalf("%s: got %v, want success false, InvalidRequest mentioning %q", r.name, ans, r.want)
		}
		if got := records(); got != before {
			t.Fatalf("%s: the control log holds %d records after the refused start, want %d (untouched)", r.name, got, before)
		}
		if st := str(h.waitSource("progress after a refused start", 10*time.Second, func(map[string]any) bool { return true }), "state"); st != "IDLE" {
			t.Fatalf("%s: progress state %s after a refused start, want IDLE", r.name, st)
		}
		t.Logf("%s: refused: %s", r.name, desc)
	}

	// Now a start that can run: the regexes use mongosync's options (x
	// strips the spaces) and orders moves to another collection.
	valid := base(map[string]any{
		"includeNamespaces": []any{map[string]any{
			"databaseRegex":    map[string]any{"pattern": "^" + h.db + "$"},
			"collectionsRegex": map[string]any{"pattern": "^ (ITEMS | orders) $", "options": "xi"},
		}},
		"namespaceRemap": []any{map[string]any{
			"from": map[string]any{"database": h.db, "collection": "orders"}, "to": map[string]any{"database": h.db, "collection": "orders_v2"}}},
	})
	h.post("/api/v1/start", valid, 200)
	if got := records(); got != before+1 {
		t.Fatalf("the control log holds %d records after the valid start, want %d", got, before+1)
	}
	h.waitSource("canCommit", 5*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })

	// What was logged compiles to the remap the sink applied.
	st := h.controlState()
	compiled, err := control.Compile(st.Params, []string{"cluster0", "cluster1"})
	if err != nil {
		t.Fatalf("the logged start does not compile: %v", err)
	}
	pairs, err := verify.ListPairs(ctx, h.c0, func(d, c string) bool { return d == h.db && compiled.Filter.Match(d, c) }, compiled.Remap)
	if err != nil {
		t.Fatal(err)
	}
	var remapped bool
	for _, p := range pairs {
		remapped = remapped || (p.SourceColl == "orders" && p.DestColl == "orders_v2")
		if r := verify.Namespace(ctx, h.c0, h.c1, p, verify.Options{}); !r.Equal() || r.SourceCount == 0 {
			t.Errorf("verify %s: %s", p, r.Summary())
		}
	}
	if len(pairs) != 2 || !remapped {
		t.Fatalf("got pairs %v, want items and orders -> orders_v2", pairs)
	}
	// The API's own verification compares through the same compiled remap.
	h.post("/api/v1/verify", nil, 200)
	p := h.waitSource("verification finished", 3*time.Minute, func(p map[string]any) bool {
		v, _ := p["verification"].(map[string]any)
		return v != nil && str(v, "state") != "running"
	})
	if v := p["verification"].(map[string]any); str(v, "state") != "equal" || num(v, "namespacesTotal") != 2 {
		t.Fatalf("POST /api/v1/verify: got %v, want equal over 2 namespaces (items, orders -> orders_v2)", v)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := h.c1.Database(h.db).Collection("orders").CountDocuments(cctx, map[string]any{}); err != nil || n != 0 {
		t.Fatalf("destination %s.orders holds %d documents (%v), want none: the remap sends them to orders_v2", h.db, n, err)
	}
}

// TestMalformedClusterURIRefusedAtStartup runs the real source-connector
// with a malformed --cluster0: it exits 2 at once, naming the flag and the
// problem, without showing the URI's password.
func TestMalformedClusterURIRefusedAtStartup(t *testing.T) {
	srcBin, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, srcBin, "--cluster0", "mongodb://alice:s3cret@db.example:99999/", "--cluster1", "mongodb://127.0.0.1:1/",
		"--kafka-brokers", "127.0.0.1:1", "--http-addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("got %v, want exit status 2; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "--cluster0: not a valid MongoDB connection string") || !strings.Contains(string(out), "port must be in the range") {
		t.Fatalf("output does not name the flag and the problem:\n%s", out)
	}
	if strings.Contains(string(out), "s3cret") {
		t.Fatalf("output shows the password:\n%s", out)
	}
}
