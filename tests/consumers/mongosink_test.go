package consumers

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestMongoSinkAppliesDebezium: the MongoDB Kafka Connector's sink, with
// its Debezium MongoDB change stream handler, applies the debezium topic
// (snapshot, inserts, updates with their full document, deletes) to a destination collection,
// and the destination ends byte-equal to the source for the types that
// format carries (int32, int64, Decimal128, strings, dates, field order).
func TestMongoSinkAppliesDebezium(t *testing.T) {
	jars := connectJars(t, "mongo-connect", "mongo-connect-jars")
	const n = 40
	f := newFixture(t, n)
	// The connector's handler applies updates only from the full document
	// (Debezium's capture.mode=change_streams_update_full): updateLookup.
	src := f.source(t, "--encoding", "debezium", "--full-document", "updateLookup")
	waitRecords(t, f.env.KafkaBrokers, f.topic, n, 2*time.Minute, src)

	dir := t.TempDir()
	worker, sink := filepath.Join(dir, "worker.properties"), filepath.Join(dir, "mongo-sink.properties")
	writeWorkerProps(t, worker, f.env.KafkaBrokers, dir)
	writeProps(t, sink, "name", f.prefix+"-mongo-sink", "connector.class", "com.mongodb.kafka.connect.MongoSinkConnector",
		"tasks.max", "1", "topics", f.topic,
		"connection.uri", f.env.DestURI, "database", f.db, "collection", "orders",
		"change.data.capture.handler", "com.mongodb.kafka.connect.sink.cdc.debezium.mongodb.ChangeStreamHandler")
	java, _ := exec.LookPath("java")
	connect := procs.Start(t, "mongo-kafka-connect", java, "-Xmx384m", "-XX:TieredStopAtLevel=1", "-cp", jars+"/*",
		"org.apache.kafka.connect.cli.ConnectStandalone", worker, sink)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafka connect log:\n%s", connect.Tail(8000))
		}
	})

	ctx := testenv.Context(t, 4*time.Minute)
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, connect)
	if _, err := f.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1000)}, {Key: "n", Value: int64(1000)},
		{Key: "late", Value: bson.NewDecimal128(1, 1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 10}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(-1)}, {Key: "added", Value: "yes"}}}, {Key: "$unset", Value: bson.D{{Key: "name", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 30}, {Key: "$lt", Value: 40}}}}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, connect)
}
