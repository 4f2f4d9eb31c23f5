package controlapi

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/testenv"
)

func TestDestinationLag(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name    string
		first   map[tp]unapplied
		lag     time.Duration
		through time.Time
	}{
		{"nothing pending", nil, 0, time.Time{}},
		{"only transaction markers left", map[tp]unapplied{{"a", 0}: {none: true}, {"a", 1}: {none: true}}, 0, time.Time{}},
		{"the oldest unapplied record counts", map[tp]unapplied{
			{"a", 0}: {at: ago(3 * time.Second)},
			{"a", 1}: {none: true},
			{"b", 0}: {at: ago(42 * time.Second)},
			{"b", 1}: {at: ago(time.Second)},
		}, 42 * time.Second, ago(42 * time.Second)},
		{"a record from the future (clock skew) is no negative lag", map[tp]unapplied{{"a", 0}: {at: now.Add(2 * time.Second)}}, 0, now.Add(2 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lag, through := destinationLag(now, tc.first)
			if lag != tc.lag || !through.Equal(tc.through) {
				t.Fatalf("destinationLag = %v, %v; want %v, %v", lag, through, tc.lag, tc.through)
			}
		})
	}
}

func TestEventTime(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_123)
	if got := eventTime(&schema.Event{WallTimeMillis: wall.UnixMilli(), ClusterTime: schema.ClusterTime{T: 1_600_000_000}}); !got.Equal(wall) {
		t.Fatalf("with a wall time: %v, want %v", got, wall)
	}
	if got := eventTime(&schema.Event{ClusterTime: schema.ClusterTime{T: 1_600_000_000, I: 7}}); !got.Equal(time.Unix(1_600_000_000, 0)) {
		t.Fatalf("with a cluster time only: %v", got)
	}
	if got := eventTime(&schema.Event{}); !got.IsZero() {
		t.Fatalf("without times: %v, want zero", got)
	}
	if (partPos{Committed: -1, End: 0}).pending() || (partPos{Committed: 5, End: 5}).pending() ||
		!(partPos{Committed: -1, End: 1}).pending() || !(partPos{Committed: 4, End: 5}).pending() {
		t.Fatal("partPos.pending is wrong")
	}
}

// TestFirstUnappliedKafka measures the lag against the real broker: records
// written in Kafka transactions (as the source writes them, so that
// transaction markers and an aborted transaction sit in the partitions), a
// group's committed offsets, and the probe reading the first unapplied
// record of each partition.
func TestFirstUnappliedKafka(t *testing.T) {
	env := testenv.NewKafka(t)
	ctx := testenv.Context(t, time.Minute)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+".db.c", prefix+"-sink"
	adm := env.Admin(t)
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = adm.DeleteTopics(context.Background(), topic)
		_, _ = adm.DeleteGroups(context.Background(), group)
	})
	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.EncodingSingleObject})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBrokers...), kgo.TransactionalID(prefix+"-txn"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	now := time.Now()
	rec := func(p int32, id int, ev schema.Event) *kgo.Record {
		ev.Op, ev.NS = schema.OpInsert, schema.Namespace{DB: "db", Coll: "c"}
		ev.DocumentKey, _ = bson.Marshal(bson.D{{Key: "_id", Value: id}})
		ev.FullDocument = ev.DocumentKey
		v, err := serde.EncodeValue(topic, &ev)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Partition: p, Key: ev.DocumentKey, Value: v, Headers: []kgo.RecordHeader{serde.Header()}}
	}
	wall := func(d time.Duration) schema.Event { return schema.Event{WallTimeMillis: now.Add(-d).UnixMilli()} }
	txn := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	// p0: offsets 0..2 data (30, 20, 10 s old), 3 the commit marker.
	// p1: offsets 0..1 data, 2 the commit marker.
	// p2: offset 0 aborted data, 1 the abort marker, 2 data (5 s old, cluster
	//     time only), 3 the commit marker.
	txn(true, rec(0, 1, wall(30*time.Second)), rec(0, 2, wall(20*time.Second)), rec(0, 3, wall(10*time.Second)),
		rec(1, 4, wall(50*time.Second)), rec(1, 5, wall(40*time.Second)))
	txn(false, rec(2, 6, wall(time.Hour)))
	txn(true, rec(2, 7, schema.Event{ClusterTime: schema.ClusterTime{T: uint32(now.Add(-5 * time.Second).Unix()), I: 1}}))

	// p0 applied through offset 0, p1 through its last record, p2 nothing.
	commit := func(offs map[int32]int64) {
		t.Helper()
		o := kadm.Offsets{}
		for p, at := range offs {
			o.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
		if err := adm.CommitAllOffsets(ctx, group, o); err != nil {
			t.Fatal(err)
		}
	}
	commit(map[int32]int64{0: 1, 1: 2})

	c := &Controller{cfg: Config{SinkGroup: group}, adm: adm, log: slog.New(slog.DiscardHandler),
		lag: newLagProbe([]kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)}, func(ctx context.Context) (*schema.Serde, error) { return serde, nil })}
	pos := c.sinkPosition(ctx, 1, prefix)
	if pos == nil {
		t.Fatal("no sink position")
	}
	t.Logf("sink position: %+v", *pos)
	if pos.LagError != "" {
		t.Fatalf("lag error: %s", pos.LagError)
	}
	// Ends (last stable offsets) are 4, 3, 4; committed 1, 2, none.
	if pos.Partitions != 3 || pos.Committed != 2 || pos.LagRecords != 3+1+4 || pos.PendingPartitions != 2 {
		t.Fatalf("position %+v: want 3 partitions, 2 committed, 8 records behind, 2 pending", *pos)
	}
	if pos.AppliedThrough == nil || !pos.AppliedThrough.Equal(time.UnixMilli(now.Add(-20*time.Second).UnixMilli())) {
		t.Fatalf("appliedThrough %v, want the time of p0's offset 1 (%v)", pos.AppliedThrough, now.Add(-20*time.Second))
	}
	// The lag is measured against the clock at the probe, so it is the
	// record's age plus the time this test has run since now (slow under load).
	if upper := 20 + time.Since(now).Seconds() + 1; pos.LagSeconds < 20 || pos.LagSeconds > upper {
		t.Fatalf("lagSeconds %.2f, want between 20 and %.2f", pos.LagSeconds, upper)
	}

	// p0 applied to its end: the oldest unapplied record is p2's (cluster time, 5 s).
	commit(map[int32]int64{0: 3})
	pos = c.sinkPosition(ctx, 1, prefix)
	if upper := 5 + time.Since(now).Seconds() + 1; pos.PendingPartitions != 1 || pos.LagSeconds < 5 || pos.LagSeconds > upper {
		t.Fatalf("after p0 is applied: %+v, want p2 pending, lag between 5 and %.2f s", *pos, upper)
	}
	// Everything applied (offsets past the last data record, before the
	// final transaction markers): no lag.
	commit(map[int32]int64{2: 3})
	pos = c.sinkPosition(ctx, 1, prefix)
	if pos.PendingPartitions != 0 || pos.LagSeconds != 0 || pos.AppliedThrough != nil || pos.LagError != "" {
		t.Fatalf("fully applied: %+v, want no pending partition and no lag", *pos)
	}
}
