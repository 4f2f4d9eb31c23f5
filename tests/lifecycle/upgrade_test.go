package lifecycle

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// build is a pair of connector binaries and what their --version says.
type build struct {
	label     string // what the log calls it
	src, sink string
	version   string
	metadata  int
}

// release is one line of RELEASES.
type release struct{ version, commit string }

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// readReleases parses RELEASES ("<version> <commit>" per line, # comments);
// releases without a recorded commit ("-") are left out.
func readReleases(path string) ([]release, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []release
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || parseSemver(fields[0]) == nil {
			return nil, fmt.Errorf("%s line %d: %q is not \"<version> <commit>\"", path, n, line)
		}
		if fields[1] == "-" {
			continue
		}
		if !commitRE.MatchString(fields[1]) {
			return nil, fmt.Errorf("%s line %d: commit %q is not a full 40-digit hash", path, n, fields[1])
		}
		out = append(out, release{version: fields[0], commit: fields[1]})
	}
	return out, sc.Err()
}

// parseSemver returns X, Y, Z and whether there is a pre-release suffix
// (1 without, 0 with: 0.2.0-dev sorts before 0.2.0), or nil.
func parseSemver(v string) []int {
	core, pre, hasPre := strings.Cut(strings.TrimPrefix(v, "v"), "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 || (hasPre && pre == "") {
		return nil
	}
	out := make([]int, 0, 4)
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil
		}
		out = append(out, n)
	}
	if hasPre {
		return append(out, 0)
	}
	return append(out, 1)
}

func semverLess(a, b string) bool {
	x, y := parseSemver(a), parseSemver(b)
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

// previousRelease is the newest release older than tree.
func previousRelease(rels []release, tree string) (release, bool) {
	var best release
	found := false
	for _, r := range rels {
		if semverLess(r.version, tree) && (!found || semverLess(best.version, r.version)) {
			best, found = r, true
		}
	}
	return best, found
}

func TestPreviousRelease(t *testing.T) {
	rels := []release{{"0.1.0", "a"}, {"0.2.0", "b"}, {"0.2.1", "c"}}
	for _, tc := range []struct {
		tree, want string
	}{
		{"0.1.0", ""},          // the first release: none older
		{"0.2.0-dev", "0.1.0"}, // after 0.1.0, before 0.2.0
		{"0.2.1", "0.2.0"},
		{"0.3.0-dev", "0.2.1"},
		{"1.0.0", "0.2.1"},
	} {
		got, ok := previousRelease(rels, tc.tree)
		if tc.want == "" && ok || tc.want != "" && got.version != tc.want {
			t.Errorf("tree %s: got %v %v, want %q", tc.tree, got, ok, tc.want)
		}
	}
	if _, err := readReleases(filepath.Join(procs.Root(), "RELEASES")); err != nil {
		t.Fatalf("RELEASES: %v", err)
	}
}

// versionOf runs bin --version and parses it.
func versionOf(t *testing.T, label, src, sink string) build {
	t.Helper()
	b := build{label: label, src: src, sink: sink}
	for _, bin := range []string{src, sink} {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", bin, err)
		}
		var v string
		var m int
		for _, line := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(line, "logbridge "); ok {
				v = s
			}
			if s, ok := strings.CutPrefix(line, "metadata:"); ok {
				m, _ = strconv.Atoi(strings.TrimSpace(s))
			}
		}
		if parseSemver(v) == nil || m < 1 {
			t.Fatalf("%s --version: no version or metadata version in %q", bin, out)
		}
		if b.version != "" && (b.version != v || b.metadata != m) {
			t.Fatalf("%s says %s/%d, its pair says %s/%d", bin, v, m, b.version, b.metadata)
		}
		b.version, b.metadata = v, m
	}
	return b
}

// oldBuild is the "old" side of the upgrade: the previous release from its
// commit in RELEASES (built in a git worktree), or, while there is none, this
// tree with the metadata version forced one lower.
func oldBuild(t *testing.T) build {
	t.Helper()
	root := procs.Root()
	rels, err := readReleases(filepath.Join(root, "RELEASES"))
	if err != nil {
		t.Fatalf("RELEASES: %v", err)
	}
	tree := version.Get().Version
	if prev, ok := previousRelease(rels, tree); ok {
		dir := filepath.Join(t.TempDir(), "release-"+prev.version)
		git := func(args ...string) error {
			cmd := exec.Command("git", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("git %v: %v\n%s", args, err, out)
			}
			return nil
		}
		if err := git("worktree", "add", "--detach", dir, prev.commit); err != nil {
			t.Fatalf("checking out release %s: %v", prev.version, err)
		}
		t.Cleanup(func() { _ = git("worktree", "remove", "--force", dir); _ = git("worktree", "prune") })
		pkg := "github.com/logbridge/logbridge/pkg/version"
		src, sink := procs.Build(t, dir, "-ldflags", "-X "+pkg+".version="+prev.version+" -X "+pkg+".commit="+prev.commit)
		return versionOf(t, "release "+prev.version+" ("+prev.commit[:12]+")", src, sink)
	}
	if version.CurrentMetadata < 2 {
		t.Fatalf("no release older than %s in RELEASES and no older metadata version to force", tree)
	}
	old := version.CurrentMetadata - 1
	src, sink := procs.Build(t, root, "-ldflags", fmt.Sprintf("-X github.com/logbridge/logbridge/pkg/version.forcedMetadata=%d", old))
	return versionOf(t, fmt.Sprintf("this tree with metadata version %d forced (no older release in RELEASES)", old), src, sink)
}

// buildOf is the "build" object of a progress answer.
func buildOf(p map[string]any) map[string]any {
	b, _ := p["build"].(map[string]any)
	return b
}

// runsBuild: the progress answer comes from a binary of b.
func runsBuild(p map[string]any, b build) bool {
	bi := buildOf(p)
	return bi != nil && str(bi, "version") == b.version && int(num(bi, "metadataVersion")) == b.metadata
}

// copying: the source is in the middle of the initial copy.
func copying(p map[string]any) bool {
	if str(p, "state") != "RUNNING" || str(p, "info") != "collection copy" {
		return false
	}
	var copied int64
	for _, n := range asList(p["namespaces"]) {
		if m, ok := n.(map[string]any); ok {
			copied += int64(num(m, "copiedDocuments"))
		}
	}
	return copied > 0
}

func streaming(p map[string]any) bool {
	return str(p, "state") == "RUNNING" && str(p, "info") == "change event application" && str(p, "phase") == "streaming"
}

// bulkDocs make the snapshot last long enough to replace both services in
// the middle of it (with the throttling flags in snapshotThrottle).
const bulkDocs = 40_000

var snapshotThrottle = []string{"--snapshot-parallelism", "1", "--snapshot-batch-size", "50", "--snapshot-range-docs", "2000", "--batch-max-records", "50"}

func seedBulk(h *harness) {
	h.t.Helper()
	c := h.c0.Database(h.db).Collection("bulk")
	for i := 0; i < bulkDocs; i += 2000 {
		docs := make([]any, 0, 2000)
		for j := i; j < i+2000; j++ {
			docs = append(docs, bson.D{{Key: "_id", Value: j}, {Key: "n", Value: j}, {Key: "s", Value: strings.Repeat("x", 64)}})
		}
		if _, err := c.InsertMany(h.ctx, docs); err != nil {
			h.t.Fatalf("seeding bulk: %v", err)
		}
	}
}

// TestUpgrade is the live-upgrade promise (docs/versioning.md): a sync
// started on the old binaries keeps going while the sink and then the source
// are replaced by the new ones — in the middle of the snapshot, while
// streaming, and while PAUSED, each on a sync of its own (a sync, once the new
// binaries wrote to it, cannot go back to the old ones) — with writes going
// on throughout, and pkg/verify finds nothing lost or doubled. Then the old
// binaries, started on what the new ones wrote, refuse cleanly (exit 1,
// naming both metadata versions) when the metadata version changed between
// them.
func TestUpgrade(t *testing.T) {
	ctx := testenv.Context(t, 30*time.Minute)
	testenv.New(t) // skip (or fail under make test) without the stack, before building
	old := oldBuild(t)
	newSrc, newSink := binaries(t)
	cur := versionOf(t, "this tree", newSrc, newSink)
	if cur.metadata != version.Metadata() {
		t.Fatalf("this tree's binaries say metadata version %d, the test binary %d", cur.metadata, version.Metadata())
	}
	t.Logf("upgrading from %s (%s, metadata %d) to %s (%s, metadata %d)", old.label, old.version, old.metadata, cur.label, cur.version, cur.metadata)
	for i, when := range []string{"snapshot", "streaming", "paused"} {
		t.Run(when, func(t *testing.T) { upgradeScenario(t, ctx, old, cur, when, uint64(10+i)) })
		if t.Failed() {
			return
		}
	}
}

func upgradeScenario(t *testing.T, ctx context.Context, old, cur build, when string, seedN uint64) {
	o := harnessOpts{srcBin: old.src, sinkBin: old.sink}
	if when == "snapshot" {
		o.beforeStart, o.srcArgs = seedBulk, snapshotThrottle
	}
	h := newHarnessWith(t, ctx, o)
	onOld := func(p map[string]any) bool { return runsBuild(p, old) }
	h.waitSource("the old source answers", time.Minute, onOld)
	h.waitSink("the old sink answers", time.Minute, onOld)
	h.post("/api/v1/start", map[string]any{"source": "cluster0", "destination": "cluster1",
		"includeNamespaces": []map[string]any{{"database": h.db}}}, 200)
	w := startWriter(ctx, h.c0, h.db, seedN, 100_000)

	// replace upgrades one service and waits until its progress answers
	// from the new build with want true; the other one keeps running.
	replace := func(p *proc, wait func(string, time.Duration, func(map[string]any) bool) map[string]any, want func(map[string]any) bool) {
		t.Helper()
		p.Replace(map[*proc]string{h.src: cur.src, h.snk: cur.sink}[p])
		wait("the "+p.Name+" runs the new build", 2*time.Minute, func(m map[string]any) bool { return runsBuild(m, cur) && want(m) })
		// Its first log line names the build (as mongosync logs its version).
		startLine := fmt.Sprintf(`msg="%s-connector starting" version=%s commit=`, p.Name, cur.version)
		if log := p.Tail(1 << 24); !strings.Contains(log, startLine) || !strings.Contains(log, fmt.Sprintf("metadataVersion=%d", cur.metadata)) {
			t.Fatalf("the %s's log has no start-up line %q ... metadataVersion=%d", p.Name, startLine, cur.metadata)
		}
		t.Logf("%s replaced by the new build (%s)", p.Name, when)
	}
	anyState := func(map[string]any) bool { return true }
	sinkRunning := func(p map[string]any) bool { return str(p, "state") == "RUNNING" && flag(p, "running") }

	switch when {
	case "snapshot":
		h.waitSource("in the middle of the snapshot", 3*time.Minute, copying)
		replace(h.snk, h.waitSink, sinkRunning)
		time.Sleep(time.Second) // the new sink applies the old source's snapshot records
		if p, err := h.sapi.progress(); err != nil || !copying(p) {
			t.Fatalf("the snapshot ended before the source was replaced (raise bulkDocs or throttle more): %s %v", brief(p), err)
		}
		replace(h.src, h.waitSource, anyState)
		h.waitSource("the new source finishes the snapshot and streams", 5*time.Minute, streaming)
	case "streaming":
		h.waitSource("streaming on the old source", 3*time.Minute, streaming)
		time.Sleep(2 * time.Second)
		replace(h.snk, h.waitSink, sinkRunning)
		time.Sleep(3 * time.Second) // a mixed pair: old source, new sink
		replace(h.src, h.waitSource, streaming)
	case "paused":
		h.waitSource("streaming on the old source", 3*time.Minute, streaming)
		time.Sleep(2 * time.Second)
		h.post("/api/v1/pause", nil, 200)
		h.waitSink("PAUSED, no sink running", 90*time.Second, func(p map[string]any) bool { return str(p, "state") == "PAUSED" && !flag(p, "running") })
		replace(h.snk, h.waitSink, func(p map[string]any) bool { return str(p, "state") == "PAUSED" && !flag(p, "running") })
		replace(h.src, h.waitSource, stateIs("PAUSED"))
		time.Sleep(time.Second) // writes go on while paused
		h.post("/api/v1/resume", nil, 200)
		h.waitSource("RUNNING again after resume on the new source", 2*time.Minute, streaming)
		h.waitSink("RUNNING again after resume on the new sink", time.Minute, sinkRunning)
	}
	time.Sleep(2 * time.Second) // writes flow through the new pair
	if err := w.stop(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("writer: %d operations across the upgrade", w.ops.Load())
	h.waitSource("canCommit on the new pair", 3*time.Minute, func(p map[string]any) bool { return flag(p, "canCommit") })
	h.waitSource("the destination applied the whole log", 2*time.Minute, caughtUp)
	converged(t, ctx, h.c0, h.c1, h.db, 2)
	if when != "paused" {
		return
	}

	h.post("/api/v1/commit", nil, 200)
	h.waitSource("COMMITTED on the new pair", 3*time.Minute, func(p map[string]any) bool {
		return str(p, "state") == "COMMITTED" && flag(p, "canWrite")
	})
	h.waitSink("COMMITTED on the new pair", time.Minute, func(p map[string]any) bool { return str(p, "state") == "COMMITTED" && flag(p, "sinkCommitted") })
	converged(t, ctx, h.c0, h.c1, h.db, 2)
	downgrade(t, h, old, cur)
}

// downgrade starts the old binaries on the sync the new ones wrote to. Across
// a metadata version change each must stop (exit 1) with a message naming
// both versions; without one, each must simply run.
func downgrade(t *testing.T, h *harness, old, cur build) {
	t.Helper()
	if old.metadata >= cur.metadata {
		for _, p := range []*proc{h.snk, h.src} {
			p.Replace(map[*proc]string{h.src: old.src, h.snk: old.sink}[p])
		}
		onOldCommitted := func(p map[string]any) bool { return runsBuild(p, old) && str(p, "state") == "COMMITTED" }
		h.waitSource("the old source runs the committed sync (no metadata change)", time.Minute, onOldCommitted)
		h.waitSink("the old sink runs the committed sync (no metadata change)", time.Minute, onOldCommitted)
		return
	}
	for _, p := range []*proc{h.snk, h.src} {
		p.Replace(map[*proc]string{h.src: old.src, h.snk: old.sink}[p])
		deadline := time.Now().Add(time.Minute)
		var exit error
		for exit == nil {
			if time.Now().After(deadline) {
				t.Fatalf("the old %s still runs a minute after it was started on what the new build wrote:\n%s", p.Name, p.Tail(3000))
			}
			time.Sleep(200 * time.Millisecond)
			exit = p.Exited()
		}
		msg := exit.Error()
		for _, want := range []string{"exit status 1", fmt.Sprintf("metadata version %d", cur.metadata), fmt.Sprintf("reads up to %d", old.metadata), "docs/versioning.md"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the old %s's refusal lacks %q:\n%s", p.Name, want, msg)
			}
		}
		t.Logf("the old %s refused the newer metadata: %s", p.Name, lastLine(p.Tail(2000)))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
