package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/tests/testenv"
)

func fakeKafka(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func openPub(t *testing.T, brokers []string) (*Publisher, *checkpoint.State) {
	t.Helper()
	p, st, err := tryOpenPub(t, brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, st
}

func tryOpenPub(t *testing.T, brokers []string) (*Publisher, *checkpoint.State, error) {
	t.Helper()
	serde, err := schema.NewSerde(context.Background(), schema.SerdeConfig{Encoding: schema.EncodingSingleObject})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouter("lb", "")
	if err != nil {
		t.Fatal(err)
	}
	return Open(context.Background(), Config{
		KafkaOpts:       []kgo.Opt{kgo.SeedBrokers(brokers...)},
		TransactionalID: "lb-source",
		Router:          r,
		Partitions:      3,
		Serde:           serde,
	})
}

func docKey(i int) bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}})
	return b
}

func readAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	return testenv.ReadTopic(t, brokers, topic)
}

func TestCommitAndResumeState(t *testing.T) {
	brokers := fakeKafka(t)
	p, st := openPub(t, brokers)
	if st.Planned() {
		t.Fatal("fresh state is planned")
	}
	ns := schema.Namespace{DB: "shop", Coll: "orders"}
	ctx := context.Background()
	meta := &checkpoint.Meta{Version: int32(version.Metadata()), T0: bson.Timestamp{T: 100, I: 2}, Epoch: 1}
	ddl := checkpoint.Item{Event: &schema.Event{Op: schema.OpDDL, NS: ns, Epoch: 1,
		DDL: &schema.DDL{Kind: schema.DDLCreate, ID: "snap-create-shop.orders", Options: docKey(0)}},
		Broadcast: true, State: []checkpoint.StateUpdate{{Key: checkpoint.KeyMeta, Value: meta}}}
	if err := p.CommitItems(ctx, ddl); err != nil {
		t.Fatal(err)
	}

	var recycled atomic.Int64 // chunks handed back after their commit
	var committed, statDocs, statBytes int64
	in := make(chan checkpoint.Item)
	go func() {
		defer close(in)
		// The first 25 documents one item each (Add encodes them), the
		// rest in chunks of 5 that a reader keyed and encoded (EncodeDoc),
		// each chunk with the checkpoint after its last document.
		var chunk []checkpoint.Doc
		arena := make([]byte, 0, 64)
		for i := 0; i < 50; i++ {
			d := docKey(i)
			r := &checkpoint.RangeState{NS: ns.String(), DB: ns.DB, Coll: ns.Coll, ID: 0, Last: d, Docs: int64(i + 1), Done: i == 49}
			ev := &schema.Event{Op: schema.OpSnapshot, NS: ns, DocumentKey: d, FullDocument: d, Epoch: 1}
			if i < 25 {
				in <- checkpoint.Item{Event: ev, State: []checkpoint.StateUpdate{{Key: r.Key(), Value: r}}}
				continue
			}
			doc, grown, err := p.EncodeDoc(arena, ev)
			if err != nil {
				t.Error(err)
				return
			}
			arena = grown
			if chunk = append(chunk, doc); len(chunk) == 5 {
				end := i + 1
				in <- checkpoint.Item{Event: &schema.Event{Op: schema.OpSnapshot, NS: ns, Epoch: 1}, Docs: chunk, State: []checkpoint.StateUpdate{{Key: r.Key(), Value: r}},
					Recycle: func() {
						// Called by Run's committer after onCommit: the chunk's records are committed.
						if committed < int64(end) {
							t.Errorf("a chunk ending at document %d recycled when %d records were committed", end, committed)
						}
						recycled.Add(1)
					}}
				chunk, arena = nil, make([]byte, 0, 64) // small: values outgrow it
			}
		}
	}()
	if err := p.Run(ctx, in, Limits{MaxRecords: 7}, func(b *Batch) {
		committed += int64(len(b.Records))
		if s := b.Snapshot[ns.String()]; s != nil {
			statDocs, statBytes = statDocs+s.Docs, statBytes+s.Bytes
		}
	}); err != nil {
		t.Fatal(err)
	}
	if committed != 50 {
		t.Fatalf("committed %d records, want 50", committed)
	}
	if n := recycled.Load(); n != 5 {
		t.Fatalf("%d chunks recycled after their commit, want 5", n)
	}
	if wantBytes := int64(50 * len(docKey(0))); statDocs != 50 || statBytes != wantBytes {
		t.Fatalf("snapshot statistics: %d documents, %d bytes; want 50, %d", statDocs, statBytes, wantBytes)
	}
	p.Close()

	_, st2 := openPub(t, brokers)
	if !st2.Planned() || st2.Meta.T0 != meta.T0 {
		t.Fatalf("meta after reopen = %+v, want T0 %v", st2.Meta, meta.T0)
	}
	r := st2.Ranges[checkpoint.RangeKey("shop.orders", 0)]
	if r == nil || !r.Done || r.Docs != 50 || !bytes.Equal(r.Last, docKey(49)) {
		t.Fatalf("range after reopen = %+v", r)
	}
	if n := st2.Namespaces["shop.orders"]; n == nil || n.Topic != "lb.shop.orders" {
		t.Fatalf("namespace catalog after reopen = %+v", st2.Namespaces)
	}
	if st2.Producer.Seq < 2 {
		t.Fatalf("producer seq = %d, want >= 2", st2.Producer.Seq)
	}

	recs := readAll(t, brokers, "lb.shop.orders")
	ddlPerPart := map[int32]int{}
	keyPart := map[string]int32{}
	docs := 0
	for _, r := range recs {
		enc, err := schema.EncodingOf(r.Headers)
		if err != nil || enc != schema.EncodingSingleObject {
			t.Fatalf("record header encoding = %q, %v", enc, err)
		}
		if schema.IsControlKey(r.Key) {
			ddlPerPart[r.Partition]++
			continue
		}
		docs++
		ev, err := p.cfg.Serde.DecodeValue(enc, r.Value)
		if err != nil {
			t.Fatalf("decoding the value of key %v: %v", bson.Raw(r.Key), err)
		}
		if ev.Op != schema.OpSnapshot || !bytes.Equal(ev.DocumentKey, r.Key) || !bytes.Equal(ev.FullDocument, r.Key) {
			t.Fatalf("record of key %v holds %s %v %v; want the snapshot of that document", bson.Raw(r.Key), ev.Op, ev.DocumentKey, ev.FullDocument)
		}
		if p, ok := keyPart[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %x in partitions %d and %d", r.Key, p, r.Partition)
		}
		keyPart[string(r.Key)] = r.Partition
		if want := int32(kgo.KafkaHasher(murmur2ForTest)(r.Key, 3)); want != r.Partition {
			t.Errorf("key %v in partition %d, murmur2 says %d", bson.Raw(r.Key), r.Partition, want)
		}
	}
	if docs != 50 {
		t.Errorf("read %d documents, want 50", docs)
	}
	for part := int32(0); part < 3; part++ {
		if ddlPerPart[part] != 1 {
			t.Errorf("partition %d has %d DDL records, want 1", part, ddlPerPart[part])
		}
	}
}

// TestStatePartitionNotHostedYet: while the broker answers ListOffsets for the
// state topic with UNKNOWN_TOPIC_OR_PARTITION (as a real broker did for 17 s
// after the topic was deleted and created again under the same name), Open
// retries; when the partition stays unknown, the error says what to do.
func TestStatePartitionNotHostedYet(t *testing.T) {
	saved := stateOffsetsRetry
	stateOffsetsRetry = retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxAttempts: 5}
	t.Cleanup(func() { stateOffsetsRetry = saved })
	// unknownFor answers the first n ListOffsets requests with the error.
	unknownFor := func(n int32) ([]string, *atomic.Int32) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		var calls atomic.Int32
		c.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if calls.Add(1) > n {
				return nil, nil, false
			}
			r := req.(*kmsg.ListOffsetsRequest)
			resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
			for _, rt := range r.Topics {
				st := kmsg.NewListOffsetsResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewListOffsetsResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
		return c.ListenAddrs(), &calls
	}

	brokers, calls := unknownFor(3)
	p, _, err := tryOpenPub(t, brokers)
	if err != nil {
		t.Fatalf("a partition unknown for 3 requests: %v", err)
	}
	p.Close()
	if calls.Load() <= 3 {
		t.Errorf("ListOffsets was called %d times, want more than the 3 that failed", calls.Load())
	}

	brokers, _ = unknownFor(1 << 30)
	_, _, err = tryOpenPub(t, brokers)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.Contains(err.Error(), "start the connector again in a minute") {
		t.Fatalf("a partition that stays unknown: got %v", err)
	}
}

// TestTopicCreatedOnceBrokerIsBack: a new collection's topic is created
// with retries while the broker cannot be reached (a restart), as
// transactions are, instead of stopping the connector.
func TestTopicCreatedOnceBrokerIsBack(t *testing.T) {
	down, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	addr := down.ListenAddrs()[0]
	p, _ := openPub(t, []string{addr})
	_, portText, _ := strings.Cut(addr, ":")
	var port int
	if _, err := fmt.Sscan(portText, &port); err != nil {
		t.Fatal(err)
	}
	down.Close()
	up := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second) // longer than the client's own retries of a refused dial
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
		if err == nil {
			t.Cleanup(c.Close)
		}
		up <- err
	}()
	topic, n, err := p.Topic(context.Background(), schema.Namespace{DB: "shop", Coll: "orders"})
	if uerr := <-up; uerr != nil {
		t.Fatalf("restarting the fake broker on port %d: %v", port, uerr)
	}
	if err != nil {
		t.Fatalf("creating the topic while the broker was down for 3 s: %v", err)
	}
	if n != 3 {
		t.Errorf("topic %s has %d partitions, want 3", topic, n)
	}
}

// TestCrashBetweenTransactions: an open (never committed) transaction of a
// crashed producer is invisible, and the next producer fences it.
func TestCrashBetweenTransactions(t *testing.T) {
	brokers := fakeKafka(t)
	p, _ := openPub(t, brokers)
	ns := schema.Namespace{DB: "a", Coll: "b"}
	ctx := context.Background()
	// A transaction that is produced and flushed but never ended.
	cl := p.prods[0].cl
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	b := newBatch()
	d := docKey(1)
	if err := p.Add(ctx, b, checkpoint.Item{Event: &schema.Event{Op: schema.OpInsert, NS: ns, DocumentKey: d, FullDocument: d,
		ResumeToken: d}, State: []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: &checkpoint.StreamState{Token: d}}}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Records {
		cl.Produce(ctx, r, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// "kill -9": a new publisher with the same transactional id.
	_, st := openPub(t, brokers)
	if st.Stream != nil {
		t.Fatalf("uncommitted stream state is visible: %+v", st.Stream)
	}
	if recs := readAll(t, brokers, "lb.a.b"); len(recs) != 0 {
		t.Fatalf("read %d records of an aborted transaction", len(recs))
	}
}

func TestRouter(t *testing.T) {
	r, err := NewRouter("lb", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ns   schema.Namespace
		want string
	}{
		{name: "plain", ns: schema.Namespace{DB: "shop", Coll: "orders"}, want: "lb.shop.orders"},
		{name: "dots", ns: schema.Namespace{DB: "shop", Coll: "a.b"}, want: "lb.shop.a.b"},
		{name: "bad chars", ns: schema.Namespace{DB: "shop", Coll: "a b$c"}, want: "lb.shop.a_b_c"},
	}
	for _, tc := range tests {
		if got := r.Topic(tc.ns); got != tc.want {
			t.Errorf("%s: Topic(%v) = %q, want %q", tc.name, tc.ns, got, tc.want)
		}
	}
	long := r.Topic(schema.Namespace{DB: "d", Coll: fmt.Sprintf("%0300d", 1)})
	if len(long) > 249 {
		t.Errorf("long topic has %d bytes", len(long))
	}
	if _, err := NewRouter("lb", "{prefix}.all"); err == nil {
		t.Error("route without {db}/{coll} accepted")
	}
	if r.StateTopic() != "lb._source_state" {
		t.Errorf("state topic %q", r.StateTopic())
	}
}

// murmur2ForTest is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
func murmur2ForTest(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[3])<<24 + uint32(b[2])<<16 + uint32(b[1])<<8 + uint32(b[0])
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// TestOpenFencesTheSecondProducer: a crashed connector's transaction left
// open on its second transactional id (SecondTransactionalID) is aborted
// when the next publisher opens, so it does not hold back what
// read_committed consumers see (the last stable offset) until the
// transaction timeout: an older instance that still runs cannot commit on
// either id, and the log after the restart is readable at once.
func TestOpenFencesTheSecondProducer(t *testing.T) {
	brokers := fakeKafka(t)
	p, _ := openPub(t, brokers)
	if len(p.prods) != 2 {
		t.Fatalf("%d producers, want 2", len(p.prods))
	}
	ns := schema.Namespace{DB: "a", Coll: "b"}
	ctx := context.Background()
	topic, _, err := p.Topic(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	// A transaction on the second id that is produced and flushed but never ended.
	cl := p.prods[1].cl
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: docKey(1), Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// "kill -9": a new publisher with the same transactional ids.
	openPub(t, brokers)
	adm := kadm.NewClient(p.admCl)
	deadline := time.Now().Add(10 * time.Second)
	for {
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		behind := false
		ends.Each(func(e kadm.ListedOffset) {
			if s, ok := stable.Lookup(topic, e.Partition); !ok || s.Offset < e.Offset {
				behind = true
			}
		})
		if !behind {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open transaction of %s still holds the last stable offset back after the next publisher opened: stable %v, end %v",
				SecondTransactionalID("lb-source"), stable, ends)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
