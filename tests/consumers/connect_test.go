package consumers

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// connectJars resolves testdata/<pomDir>/pom.xml from Maven Central into
// .cache/<cacheDir>, once per pom content: connect/ is Kafka Connect's
// runtime, JsonConverter and FileStreamSink with Debezium's MongoDB connector
// (for its ExtractNewDocumentState transform); mongo-connect/ is Connect with
// the MongoDB Kafka Connector. It skips the test when java or
// mvn is missing (failing with LOGBRIDGE_REQUIRE_STACK=1).
func connectJars(t *testing.T, pomDir, cacheDir string) string {
	t.Helper()
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("LOGBRIDGE_REQUIRE_STACK") == "1" {
				t.Fatalf("%s is not installed: the Kafka Connect test needs it", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	pom := filepath.Join("testdata", pomDir, "pom.xml")
	want, err := os.ReadFile(pom)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(repoRoot(), ".cache", cacheDir)
	stamp := filepath.Join(dir, "pom.resolved")
	if have, err := os.ReadFile(stamp); err == nil && bytes.Equal(have, want) {
		return dir
	}
	_ = os.RemoveAll(dir)
	ctx := testenv.Context(t, 8*time.Minute)
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", pom,
		"org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
		"-DoutputDirectory="+dir, "-DincludeScope=runtime")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("resolving Kafka Connect from Maven Central: %v\n%s", err, out)
	}
	if err := os.WriteFile(stamp, want, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeWorkerProps writes a standalone Kafka Connect worker's settings: the
// JSON converters with schemas, offsets in dir, its REST listener on a free
// loopback port, and a consumer that reads only committed records from the
// start of the log.
func writeWorkerProps(t *testing.T, path string, brokers []string, dir string) {
	t.Helper()
	writeProps(t, path,
		"bootstrap.servers", strings.Join(brokers, ","),
		"key.converter", "org.apache.kafka.connect.json.JsonConverter",
		"value.converter", "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable", "true",
		"value.converter.schemas.enable", "true",
		"offset.storage.file.filename", filepath.Join(dir, "offsets"),
		"listeners", "http://127.0.0.1:"+strings.Split(freeAddr(t), ":")[1],
		"consumer.isolation.level", "read_committed",
		"consumer.auto.offset.reset", "earliest")
}

func writeProps(t *testing.T, path string, kv ...string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s=%s\n", kv[i], kv[i+1])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaConnectReadsLog: Kafka Connect's standalone worker, with its own
// JsonConverter (schemas enabled) for keys and values, runs two
// FileStreamSink connectors: one on a connect-json topic (the envelope
// arrives as a typed Struct, documents as canonical Extended JSON strings),
// one on a debezium topic through Debezium's ExtractNewDocumentState
// transform (the after document unwrapped into a Struct of its fields, as
// Debezium consumers use it). Both files get every source document.
func TestKafkaConnectReadsLog(t *testing.T) {
	jars := connectJars(t, "connect", "connect-jars")
	const n = 30
	f := newFixture(t, n)
	cjPrefix, dbzPrefix := f.prefix+"-cj", f.prefix+"-dbz"
	cjTopic, dbzTopic := cjPrefix+"."+f.db+".orders", dbzPrefix+"."+f.db+".orders"
	srcCJ := f.source(t, "--encoding", "connect-json", "--topic-prefix", cjPrefix)
	srcDBZ := f.source(t, "--encoding", "debezium", "--topic-prefix", dbzPrefix)
	waitRecords(t, f.env.KafkaBrokers, cjTopic, n, 2*time.Minute, srcCJ, srcDBZ)
	waitRecords(t, f.env.KafkaBrokers, dbzTopic, n, 2*time.Minute, srcCJ, srcDBZ)

	dir := t.TempDir()
	worker, sinkCJ, sinkDBZ := filepath.Join(dir, "worker.properties"), filepath.Join(dir, "cj.properties"), filepath.Join(dir, "dbz.properties")
	outCJ, outDBZ := filepath.Join(dir, "connect-json.txt"), filepath.Join(dir, "debezium.txt")
	writeWorkerProps(t, worker, f.env.KafkaBrokers, dir)
	writeProps(t, sinkCJ, "name", f.prefix+"-cj-file", "connector.class", "org.apache.kafka.connect.file.FileStreamSinkConnector",
		"tasks.max", "1", "topics", cjTopic, "file", outCJ)
	writeProps(t, sinkDBZ, "name", f.prefix+"-dbz-file", "connector.class", "org.apache.kafka.connect.file.FileStreamSinkConnector",
		"tasks.max", "1", "topics", dbzTopic, "file", outDBZ,
		"transforms", "unwrap", "transforms.unwrap.type", "io.debezium.connector.mongodb.transforms.ExtractNewDocumentState")
	java, _ := exec.LookPath("java")
	connect := procs.Start(t, "kafka-connect", java, "-Xmx384m", "-XX:TieredStopAtLevel=1", "-cp", jars+"/*",
		"org.apache.kafka.connect.cli.ConnectStandalone", worker, sinkCJ, sinkDBZ)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafka connect log:\n%s", connect.Tail(8000))
		}
	})

	lines := func(path, prefix string) []string {
		b, _ := os.ReadFile(path)
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		return out
	}
	deadline := time.Now().Add(3 * time.Minute)
	for len(lines(outCJ, "Struct{op=snapshot,")) < n || len(lines(outDBZ, "Struct{_id=")) < n {
		if err := connect.Exited(); err != nil {
			t.Fatalf("kafka connect exited: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafka connect wrote %d connect-json and %d debezium documents in 3m, want %d each",
				len(lines(outCJ, "Struct{op=snapshot,")), len(lines(outDBZ, "Struct{_id=")), n)
		}
		time.Sleep(time.Second)
	}
	// Spot checks of what a Connect sink receives: the envelope's typed
	// fields and the document as canonical Extended JSON; Debezium's
	// unwrapped document with its fields as Connect values.
	cj := strings.Join(lines(outCJ, "Struct{op=snapshot,"), "\n")
	for _, want := range []string{"ns=Struct{db=" + f.db + ",coll=orders}", `"n":{"$numberLong":"7"}`, `"price":{"$numberDecimal":`} {
		if !strings.Contains(cj, want) {
			t.Fatalf("the connect-json file has no %s:\n%s", want, firstLines(cj, 3))
		}
	}
	dbz := strings.Join(lines(outDBZ, "Struct{_id="), "\n")
	for _, want := range []string{"Struct{_id=7,n=7,", "name=x"} {
		if !strings.Contains(dbz, want) {
			t.Fatalf("the debezium file has no %s:\n%s", want, firstLines(dbz, 3))
		}
	}
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(s, "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}
