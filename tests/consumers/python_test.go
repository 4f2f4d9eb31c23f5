package consumers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/testenv"
)

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// pythonVenv returns the python of a venv under .cache holding
// testdata/requirements.txt (created, or re-created when the requirements
// change). It skips the test when python3 is missing (failing with
// LOGBRIDGE_REQUIRE_STACK=1).
func pythonVenv(t *testing.T) string {
	t.Helper()
	py3, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("LOGBRIDGE_REQUIRE_STACK") == "1" {
			t.Fatal("python3 is not installed: the Python consumer test needs it")
		}
		t.Skip("python3 is not installed")
	}
	reqs, err := os.ReadFile(filepath.Join("testdata", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(repoRoot(), ".cache", "consumers-venv")
	stamp := filepath.Join(dir, "requirements.installed")
	python := filepath.Join(dir, "bin", "python")
	if have, err := os.ReadFile(stamp); err == nil && bytes.Equal(have, reqs) {
		return python
	}
	_ = os.RemoveAll(dir)
	for _, args := range [][]string{
		{py3, "-m", "venv", dir},
		{python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", filepath.Join("testdata", "requirements.txt")},
	} {
		ctx := testenv.Context(t, 5*time.Minute)
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.WriteFile(stamp, reqs, 0o644); err != nil {
		t.Fatal(err)
	}
	return python
}

// TestPythonConsumerReadsConfluent: a Python consumer built only from PyPI
// packages (confluent-kafka's Consumer and AvroDeserializer, which uses
// fastavro; pymongo's bson for the documents) decodes the topic the source
// writes with --encoding confluent --confluent-keys, values and keys,
// fetching their schemas from the registry by the id in each record, and
// gets every source document back byte for byte, its key naming it.
func TestPythonConsumerReadsConfluent(t *testing.T) {
	python := pythonVenv(t)
	const n = 50
	f := newFixture(t, n)
	reg := f.env.Registry(t)
	regCl, err := sr.NewClient(sr.URLs(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, sub := range []string{f.topic + "-value", f.topic + "-key"} {
			_, _ = regCl.DeleteSubject(context.Background(), sub, sr.SoftDelete)
			_, _ = regCl.DeleteSubject(context.Background(), sub, sr.HardDelete)
		}
	})
	src := f.source(t, "--encoding", "confluent", "--schema-registry-url", reg, "--confluent-keys")
	waitRecords(t, f.env.KafkaBrokers, f.topic, n, 2*time.Minute, src)

	ctx := testenv.Context(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "confluent_consumer.py"),
		strings.Join(f.env.KafkaBrokers, ","), reg, f.topic, "50")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python consumer: %v\n%s\n%s", err, out, stderr)
	}
	var summary struct {
		Records int   `json:"records"`
		SumN    int64 `json:"sum_n"`
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Op       string
			ID       *int32 `json:"_id"`
			KeyID    *int32 `json:"key_id"`
			Framed   bool   `json:"key_framed"`
			Hex      string `json:"fullDocumentHex"`
			SchemaID int    `json:"schema_id"`
			Records  *int   `json:"records"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("python output line %q: %v", sc.Text(), err)
		}
		if line.Records != nil {
			_ = json.Unmarshal(sc.Bytes(), &summary)
			continue
		}
		if line.SchemaID <= 0 {
			t.Fatalf("no schema id: %s", sc.Text())
		}
		if line.Op == "ddl" || line.Op == "marker" || line.Op == "heartbeat" {
			continue // the collection's create barrier, markers
		}
		if line.Op != "snapshot" || line.ID == nil || line.KeyID == nil || *line.KeyID != *line.ID || !line.Framed {
			t.Fatalf("unexpected record from python: %s", sc.Text())
		}
		got, err := hex.DecodeString(line.Hex)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: *line.ID}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("document %d as python decoded it differs from the source:\n got %s\nwant %s", *line.ID, bson.Raw(got), want)
		}
		checked++
	}
	if want := int64(n * (n - 1) / 2); summary.Records != n || summary.SumN != want || checked != n {
		t.Fatalf("python read %d records (checked %d), sum of n %d; want %d records, sum %d\n%s", summary.Records, checked, summary.SumN, n, want, out)
	}
	// The sink, which reads values only, syncs the same log (framed keys
	// change nothing for it).
	sink := f.sink(t, "--schema-registry-url", reg)
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, sink)
}
