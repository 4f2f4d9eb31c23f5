package consumers

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestConnectJSONSyncs: with --encoding connect-json every record is a
// JsonConverter schema+payload record, key and value; it sits in the
// partition of its raw BSON document key (as with every other encoding);
// and the sink applies it to a byte-equal destination, snapshot and changes.
func TestConnectJSONSyncs(t *testing.T) {
	f := newFixture(t, 100)
	src := f.source(t, "--encoding", "connect-json", "--heartbeat-interval", "1s")
	sink := f.sink(t)
	ctx := testenv.Context(t, 3*time.Minute)
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, sink)
	if _, err := f.coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 10}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "updated", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 90}}}}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, sink)

	recs := testenv.ReadTopic(t, f.env.KafkaBrokers, f.topic)
	if len(recs) < 120 {
		t.Fatalf("topic %s holds %d records, want at least 120 (100 snapshot, 10 updates, 10 deletes)", f.topic, len(recs))
	}
	hash := kgo.StickyKeyPartitioner(nil).ForTopic(f.topic)
	td, err := f.env.Admin(t).ListTopics(ctx, f.topic)
	if err != nil || !td.Has(f.topic) {
		t.Fatalf("describing %s: %v", f.topic, err)
	}
	parts := len(td[f.topic].Partitions)
	for _, r := range recs {
		if enc, err := schema.EncodingOf(r.Headers); err != nil || enc != schema.EncodingConnectJSON {
			t.Fatalf("record header: %v %v, want connect-json", enc, err)
		}
		key := parseConnect(t, "key", r.Key)
		val := parseConnect(t, "value", r.Value)
		var kp struct{ DocumentKey string }
		var vp struct{ Op string }
		if err := json.Unmarshal(key.Payload, &kp); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(val.Payload, &vp); err != nil {
			t.Fatal(err)
		}
		if vp.Op == "ddl" || vp.Op == "marker" || vp.Op == "heartbeat" {
			continue // in every partition
		}
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(kp.DocumentKey), true, &raw); err != nil {
			t.Fatalf("key payload documentKey is not canonical Extended JSON: %v: %s", err, r.Key)
		}
		if want := int32(hash.Partition(&kgo.Record{Key: raw}, parts)); r.Partition != want {
			t.Fatalf("a %s record of %s is in partition %d; its raw BSON key hashes to %d", vp.Op, raw, r.Partition, want)
		}
	}
}

// TestDebeziumForConsumersRefusedBySink: --encoding debezium writes
// Debezium MongoDB change events (snapshot "r", insert "c", update "u",
// delete "d"; after as strict Extended JSON; key {"id": ...}), a heartbeat
// in Debezium's heartbeat format to --heartbeat-topic, and says at start-up
// what it loses; a sink on that log stops with a clear error and applies
// nothing.
func TestDebeziumForConsumersRefusedBySink(t *testing.T) {
	f := newFixture(t, 20)
	hb := f.prefix + ".hb"
	src := f.source(t, "--encoding", "debezium", "--heartbeat-interval", "300ms", "--heartbeat-topic", hb)
	waitRecords(t, f.env.KafkaBrokers, f.topic, 20, 2*time.Minute, src)
	ctx := testenv.Context(t, 2*time.Minute)
	if _, err := f.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1000)}, {Key: "late", Value: 1.5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(-1)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(2)}}); err != nil {
		t.Fatal(err)
	}
	recs := waitRecords(t, f.env.KafkaBrokers, f.topic, 23, 2*time.Minute, src)
	if log := src.Tail(1 << 20); !strings.Contains(log, "a logbridge sink refuses to apply it") || !strings.Contains(log, "DBPointer") {
		t.Fatalf("the source's start-up log does not say what the debezium encoding loses:\n%s", src.Tail(3000))
	}
	ops := map[string]int{}
	for _, r := range recs {
		key, val := parseConnect(t, "key", r.Key), parseConnect(t, "value", r.Value)
		// Connect schema names are Avro names: '-' becomes '_' (Debezium's SchemaNameAdjuster).
		name := strings.ReplaceAll(f.topic, "-", "_")
		if val.Schema["name"] != name+".Envelope" || key.Schema["name"] != name+".Key" {
			t.Fatalf("schema names %v / %v, want %s.Envelope / %s.Key", val.Schema["name"], key.Schema["name"], name, name)
		}
		var p struct {
			After  *string
			Op     string
			Source struct{ Connector, DB, Collection string }
		}
		if err := json.Unmarshal(val.Payload, &p); err != nil {
			t.Fatal(err)
		}
		var k struct{ ID string }
		if err := json.Unmarshal(key.Payload, &k); err != nil || k.ID == "" {
			t.Fatalf("key payload %s: want {\"id\": ...} (%v)", key.Payload, err)
		}
		if p.Source.Connector != "mongodb" || p.Source.DB != f.db || p.Source.Collection != "orders" {
			t.Fatalf("source block %+v", p.Source)
		}
		if p.Op == "r" || p.Op == "c" {
			var after bson.Raw
			if p.After == nil || bson.UnmarshalExtJSON([]byte(*p.After), false, &after) != nil {
				t.Fatalf("%s event: after %v is not Extended JSON", p.Op, p.After)
			}
			var kd bson.Raw
			if err := bson.UnmarshalExtJSON([]byte(`{"_id":`+k.ID+`}`), false, &kd); err != nil {
				t.Fatalf("key id %s is not relaxed Extended JSON: %v", k.ID, err)
			}
			if !kd.Lookup("_id").Equal(after.Lookup("_id")) {
				t.Fatalf("key id %s does not match after._id %s", k.ID, after.Lookup("_id"))
			}
		}
		ops[p.Op]++
	}
	if ops["r"] != 20 || ops["c"] != 1 || ops["u"] != 1 || ops["d"] != 1 {
		t.Fatalf("ops %v, want 20 r, 1 c, 1 u, 1 d", ops)
	}

	hbs := waitRecords(t, f.env.KafkaBrokers, hb, 1, time.Minute, src)
	hv := parseConnect(t, "heartbeat value", hbs[len(hbs)-1].Value)
	var hp struct {
		TsMs int64 `json:"ts_ms"`
	}
	if err := json.Unmarshal(hv.Payload, &hp); err != nil || hp.TsMs < 1_600_000_000_000 || hv.Schema["name"] != "io.debezium.connector.common.Heartbeat" {
		t.Fatalf("heartbeat %s is not Debezium's heartbeat with the source time (%v)", hbs[len(hbs)-1].Value, err)
	}

	sink := f.sink(t)
	log := sink.WaitExit(t, 2*time.Minute)
	if !strings.Contains(log, "lossy encoding") || !strings.Contains(log, "re-run the source with a lossless --encoding") {
		t.Fatalf("the sink did not stop with the lossy-encoding error:\n%s", log)
	}
	if n, err := f.dest.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("destination holds %d documents (%v), want 0: nothing may be applied from a lossy encoding", n, err)
	}
	offs, err := f.env.Admin(t).FetchOffsets(ctx, f.prefix+"-sink")
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == f.topic && o.At > 0 {
			t.Fatalf("the sink committed offset %d of partition %d: it must commit nothing past a lossy record", o.At, o.Partition)
		}
	})
}
