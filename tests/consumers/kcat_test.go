package consumers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/testenv"
)

// readmeRecipe returns the shell block that follows "<!-- recipe: name -->"
// in the repository's README.md, so the test runs what users copy.
func readmeRecipe(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- recipe: " + regexp.QuoteMeta(name) + " -->\\s*```sh\\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no recipe %q", name)
	}
	return string(m[1])
}

func runRecipe(t *testing.T, name string, env ...string) []map[string]any {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", readmeRecipe(t, name))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("recipe %s: %v\n%s", name, err, stderr.String())
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("recipe %s printed %q, not a JSON line: %v", name, l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestReadmeKcatRecipes runs the README's kcat + jq recipes, as written,
// against topics the source wrote: the audit trail over a json topic and
// the deletes over a debezium topic.
func TestReadmeKcatRecipes(t *testing.T) {
	for _, tool := range []string{"kcat", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: apt-get install kcat jq)", tool)
		}
	}
	const n = 10
	f := newFixture(t, n)
	jsonTopic, dbzTopic := f.prefix+"-j."+f.db+".orders", f.prefix+"-d."+f.db+".orders"
	a := f.source(t, "--encoding", "json", "--topic-prefix", f.prefix+"-j")
	b := f.source(t, "--encoding", "debezium", "--topic-prefix", f.prefix+"-d")
	waitRecords(t, f.env.KafkaBrokers, dbzTopic, n, 2*time.Minute, a, b)
	waitRecords(t, f.env.KafkaBrokers, jsonTopic, n, 2*time.Minute, a, b)
	waitSnapshotDone(t, a, b)
	ctx := testenv.Context(t, time.Minute)
	if _, err := f.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 3}}}}); err != nil {
		t.Fatal(err)
	}
	brokers := "BROKERS=" + strings.Join(f.env.KafkaBrokers, ",")

	// The records arrive over some seconds: run each recipe until its
	// output is complete (or a minute passes), as a user would re-run it.
	var got string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		ops := map[string]int{}
		for _, l := range runRecipe(t, "audit", brokers, "TOPIC="+jsonTopic) {
			if l["id"] == nil || l["time"] == nil {
				t.Fatalf("audit line %v lacks id or time", l)
			}
			ops[l["op"].(string)]++
		}
		got = fmt.Sprint(ops)
		if ops["snapshot"] == n && ops["delete"] == 3 && len(ops) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit recipe ops %s, want %d snapshot and 3 delete", got, n)
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		var ids []string
		for _, l := range runRecipe(t, "deletes", brokers, "TOPIC="+dbzTopic) {
			ids = append(ids, l["id"].(string))
			if at, ok := l["at"].(float64); !ok || at < 1.6e12 {
				t.Fatalf("deletes line %v: at is not the source time in ms", l)
			}
		}
		sort.Strings(ids) // partitions interleave
		if got = strings.Join(ids, ","); got == "0,1,2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deletes recipe ids %s, want 0,1,2", got)
		}
	}
}
