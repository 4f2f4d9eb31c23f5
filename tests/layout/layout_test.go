package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/logbridge/logbridge/"

// TestDependencyRules lists the (non-test) dependencies of each product
// tree with `go list -deps` and fails on a forbidden one.
func TestDependencyRules(t *testing.T) {
	rules := []struct {
		tree      string
		forbidden []string
	}{
		{"source-connector", []string{"sink-connector", "tests"}},
		{"sink-connector", []string{"source-connector", "tests"}},
		{"schema", []string{"source-connector", "sink-connector", "tests"}},
		{"pkg", []string{"source-connector", "sink-connector", "tests"}},
		// The shim is the stand-in for mongod that the product is tested
		// against: it must not reuse the product's code (its BSON ordering
		// above all), or a bug there would be on both sides of every test.
		{"tests/mongoshim", []string{"pkg", "schema", "source-connector", "sink-connector", "cmd"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+r.tree+"/...").Output()
		if err != nil {
			t.Fatalf("go list -deps %s/...: %v", r.tree, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 {
			t.Fatalf("go list -deps %s/... listed nothing", r.tree)
		}
		for _, dep := range deps {
			for _, f := range r.forbidden {
				if dep == module+f || strings.HasPrefix(dep, module+f+"/") {
					t.Errorf("%s depends on %s: %s must not import %s", r.tree, dep, r.tree, f)
				}
			}
		}
	}
}

// TestProducersDoNotLinkTheKafkaClient keeps the change-stream reader and
// the snapshot reader (and the checkpoint model they hand their items over
// in) apart from the exactly-once publisher: they must not depend on
// internal/publish, nor link a Kafka client at all, even indirectly (the
// schema registry's HTTP client, franz-go's pkg/sr, reaches them through
// schema's Serde and is allowed).
func TestProducersDoNotLinkTheKafkaClient(t *testing.T) {
	for _, pkg := range []string{"capture", "snapshot", "checkpoint"} {
		path := module + "source-connector/internal/" + pkg
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", path).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", path, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == module+"source-connector/internal/publish" {
				t.Errorf("%s depends on %s: hand items over through internal/checkpoint instead", pkg, dep)
			}
			if strings.HasPrefix(dep, "github.com/twmb/franz-go/") && !strings.HasPrefix(dep, "github.com/twmb/franz-go/pkg/sr") {
				t.Errorf("%s links the Kafka client package %s: Kafka belongs to internal/publish", pkg, dep)
			}
		}
		out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, path).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", path, err)
		}
		for _, imp := range strings.Fields(string(out)) {
			if strings.HasPrefix(imp, "github.com/twmb/franz-go") {
				t.Errorf("%s imports %s: Kafka belongs to internal/publish", pkg, imp)
			}
		}
	}
}

// TestSchemaImportsNoKafkaClient: the record contract is for every consumer
// of the log, whatever Kafka client it uses, so schema/ (tests aside) pulls
// in no Kafka client. franz-go's pkg/sr, a stand-alone HTTP client of the
// schema registry with no Kafka code, is the one franz-go module it may use.
func TestSchemaImportsNoKafkaClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"schema/...").Output()
	if err != nil {
		t.Fatalf("go list -deps schema/...: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps schema/... listed nothing")
	}
	for _, dep := range deps {
		kafka := strings.HasPrefix(dep, "github.com/twmb/franz-go/") && !strings.HasPrefix(dep, "github.com/twmb/franz-go/pkg/sr") ||
			strings.HasPrefix(dep, "github.com/IBM/sarama") || strings.HasPrefix(dep, "github.com/segmentio/kafka-go") ||
			strings.HasPrefix(dep, "github.com/confluentinc/confluent-kafka-go")
		if kafka {
			t.Errorf("schema depends on the Kafka client package %s: keep Kafka reading in the connectors or cmd/", dep)
		}
	}
}
