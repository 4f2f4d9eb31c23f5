package consumers

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestHeartbeatsForConsumers: on a quiet stream, --heartbeat-topic gets
// heartbeat records whose source cluster time advances and that carry the
// resume token, and --heartbeat-data-topics puts them into every partition
// of the data topic, where the sink reads them without applying anything.
func TestHeartbeatsForConsumers(t *testing.T) {
	f := newFixture(t, 5)
	hb := f.prefix + "._heartbeat"
	src := f.source(t, "--encoding", "json", "--heartbeat-interval", "300ms", "--heartbeat-topic", hb, "--heartbeat-data-topics")
	sink := f.sink(t)
	ctx := testenv.Context(t, 2*time.Minute)
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, sink)

	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.EncodingJSON})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(what string, value []byte, headers []kgo.RecordHeader) *schema.Event {
		t.Helper()
		enc, err := schema.EncodingOf(headers)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := serde.DecodeValue(enc, value)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return ev
	}
	recs := waitRecords(t, f.env.KafkaBrokers, hb, 3, time.Minute, src, sink)
	var prev schema.ClusterTime
	for i, r := range recs {
		ev := decode("heartbeat topic", r.Value, r.Headers)
		if ev.Op != schema.OpHeartbeat || ev.ResumeToken == nil || ev.Source == "" {
			t.Fatalf("heartbeat %d: op %s, resume token %v, source %q", i, ev.Op, ev.ResumeToken, ev.Source)
		}
		if i > 0 && !ev.ClusterTime.After(prev) {
			t.Fatalf("heartbeat %d: cluster time %v does not advance past %v", i, ev.ClusterTime, prev)
		}
		prev = ev.ClusterTime
	}

	seen := map[int32]bool{}
	for _, r := range waitRecords(t, f.env.KafkaBrokers, f.topic, 5+4, time.Minute, src, sink) {
		if ev := decode("data topic", r.Value, r.Headers); ev.Op == schema.OpHeartbeat {
			seen[r.Partition] = true
		}
	}
	if len(seen) != 4 {
		t.Fatalf("heartbeats in partitions %v of %s, want all 4", seen, f.topic)
	}
	// The sink kept running over them and the destination is still equal.
	testenv.WaitSameDocuments(t, ctx, f.coll, f.dest, src, sink)
}
