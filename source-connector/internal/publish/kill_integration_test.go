package publish

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/tests/testenv"
)

// The kill -9 test runs this test binary as a child process that publishes
// a synthetic snapshot (3 namespaces × 4 ranges) and then a synthetic stream
// of updates through the real publisher into the real Kafka, resuming from
// the state topic each time it starts. The parent kills it with SIGKILL at
// random moments, restarts it, and finally checks the log: every snapshot
// document and every stream event exactly once, in order per key.

const (
	childEnv       = "LOGBRIDGE_PUBLISH_CHILD"
	killNamespaces = 3
	killRanges     = 4
	killRangeDocs  = 2500
	killStream     = 40000
	killKeys       = 500
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func killNS(i int) schema.Namespace { return schema.Namespace{DB: "kill", Coll: "c" + strconv.Itoa(i)} }

func child() error {
	ctx := context.Background()
	brokers := strings.Split(os.Getenv("KILL_BROKERS"), ",")
	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.EncodingSingleObject})
	if err != nil {
		return err
	}
	r, err := NewRouter(os.Getenv(childEnv), "")
	if err != nil {
		return err
	}
	p, st, err := Open(ctx, Config{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, TransactionalID: "kill-" + os.Getenv(childEnv),
		Router: r, Partitions: 3, Serde: serde})
	if err != nil {
		return err
	}
	defer p.Close()
	if !st.Planned() {
		var items []checkpoint.Item
		for n := 0; n < killNamespaces; n++ {
			ns := killNS(n)
			var states []checkpoint.StateUpdate
			for i := 0; i < killRanges; i++ {
				rs := &checkpoint.RangeState{NS: ns.String(), DB: ns.DB, Coll: ns.Coll, ID: i}
				states = append(states, checkpoint.StateUpdate{Key: rs.Key(), Value: rs})
			}
			states = append(states, checkpoint.StateUpdate{Key: checkpoint.NSKey(ns.String()), Value: &checkpoint.NamespaceState{DB: ns.DB, Coll: ns.Coll, Topic: r.Topic(ns), InSnapshot: true, Ranges: killRanges}})
			items = append(items, checkpoint.Item{Event: &schema.Event{Op: schema.OpDDL, NS: ns, DDL: &schema.DDL{Kind: schema.DDLCreate, ID: "create-" + ns.String(), Options: emptyDocForTest}},
				Broadcast: true, State: states})
		}
		items = append(items, checkpoint.Item{State: []checkpoint.StateUpdate{{Key: checkpoint.KeyMeta, Value: &checkpoint.Meta{Version: int32(version.Metadata()), T0: bson.Timestamp{T: 1}}}}})
		if err := p.CommitItems(ctx, items...); err != nil {
			return err
		}
		if st, err = p.ReadState(ctx); err != nil {
			return err
		}
	}
	done, docs := 0, int64(0)
	for _, rg := range st.Ranges {
		docs += rg.Docs
		if rg.Done {
			done++
		}
	}
	resume := -1
	if st.Stream != nil {
		resume = int(bson.Raw(st.Stream.Token).Lookup("seq").Int32())
	}
	fmt.Fprintf(os.Stderr, "child start: ranges done %d/%d, snapshot docs %d, snapshotDone %v, stream resumes after seq %d\n",
		done, len(st.Ranges), docs, st.SnapshotDone(), resume)
	lim := Limits{MaxRecords: 300}
	if !st.SnapshotDone() {
		in := make(chan checkpoint.Item, 1000)
		errc := make(chan error, 1)
		go func() { errc <- p.Run(ctx, in, lim, nil) }()
		for _, rg := range st.SortedRanges() {
			if rg.Done {
				continue
			}
			n, _ := strconv.Atoi(strings.TrimPrefix(rg.Coll, "c"))
			next := rg.ID * killRangeDocs
			if rg.Last != nil {
				next = int(bson.Raw(rg.Last).Lookup("_id").Int32()) + 1
			}
			cur := *rg
			for id := next; id < (rg.ID+1)*killRangeDocs; id++ {
				key := IDDocForTest(int32(id))
				cur.Last, cur.Docs = key, cur.Docs+1
				ck := cur
				in <- checkpoint.Item{Event: &schema.Event{Op: schema.OpSnapshot, NS: killNS(n), DocumentKey: key, FullDocument: key}, State: []checkpoint.StateUpdate{{Key: ck.Key(), Value: &ck}}}
			}
			cur.Done = true
			in <- checkpoint.Item{State: []checkpoint.StateUpdate{{Key: cur.Key(), Value: &cur}}}
		}
		close(in)
		if err := <-errc; err != nil {
			return err
		}
		var marks []checkpoint.Item
		for n := 0; n < killNamespaces; n++ {
			marks = append(marks, checkpoint.Item{Event: &schema.Event{Op: schema.OpMarker, NS: killNS(n), Marker: &schema.Marker{Kind: schema.MarkerSnapshotDone, ID: "done"}}, Broadcast: true})
		}
		marks = append(marks, checkpoint.Item{State: []checkpoint.StateUpdate{{Key: checkpoint.KeySnapshot, Value: &checkpoint.SnapshotState{Done: true}}}})
		if err := p.CommitItems(ctx, marks...); err != nil {
			return err
		}
	}
	// Stream: event seq updates key seq%killKeys of namespace seq%killNamespaces to version seq.
	seq := 0
	if st.Stream != nil {
		seq = int(bson.Raw(st.Stream.Token).Lookup("seq").Int32()) + 1
	}
	in := make(chan checkpoint.Item, 1000)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx, in, lim, nil) }()
	for ; seq < killStream; seq++ {
		tok, _ := bson.Marshal(bson.D{{Key: "seq", Value: int32(seq)}})
		upd, _ := bson.Marshal(bson.D{{Key: "v", Value: int32(seq)}})
		in <- checkpoint.Item{Event: &schema.Event{Op: schema.OpUpdate, NS: killNS(seq % killNamespaces), DocumentKey: IDDocForTest(int32(seq % killKeys)),
			Update: &schema.UpdateDescription{UpdatedFields: upd}, ResumeToken: tok, ClusterTime: schema.ClusterTime{T: 2, I: uint32(seq)}},
			State: []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: &checkpoint.StreamState{Token: tok}}}}
	}
	close(in)
	return <-errc
}

var emptyDocForTest = bson.Raw{5, 0, 0, 0, 0}

func IDDocForTest(id int32) bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	return b
}

func TestKill9ExactlyOnce(t *testing.T) {
	brokers := kafkaOnly(t)
	prefix := testenv.TopicPrefix(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+prefix, "KILL_BROKERS="+strings.Join(brokers, ","))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := 0
	for i := 0; i < 8; i++ {
		cmd := start()
		time.Sleep(time.Duration(800+rand.IntN(1500)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
		} else if err != nil {
			t.Fatalf("child failed: %v", err)
		}
	}
	cmd := start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final child: %v", err)
	}
	t.Logf("killed the publisher %d times", kills)

	serde, _ := schema.NewSerde(context.Background(), schema.SerdeConfig{})
	r, _ := NewRouter(prefix, "")
	snap := map[string]int{}
	stream := map[int]int{}
	lastVersion := map[string]int{}
	markers, ddl := 0, 0
	for n := 0; n < killNamespaces; n++ {
		topic := r.Topic(killNS(n))
		recs := readAll(t, brokers, topic)
		for _, rec := range recs {
			enc, err := schema.EncodingOf(rec.Headers)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := serde.DecodeValue(enc, rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			k := topic + "/" + string(rec.Key)
			switch ev.Op {
			case schema.OpSnapshot:
				snap[k]++
				if lastVersion[k] != 0 {
					t.Errorf("snapshot record of %s after its change events", k)
				}
			case schema.OpUpdate:
				v := int(ev.Update.UpdatedFields.Lookup("v").Int32())
				stream[v]++
				if v+1 <= lastVersion[k] {
					t.Errorf("key %s: version %d after %d", k, v, lastVersion[k]-1)
				}
				lastVersion[k] = v + 1
			case schema.OpMarker:
				markers++
			case schema.OpDDL:
				ddl++
			}
		}
	}
	if want := killNamespaces * killRanges * killRangeDocs; len(snap) != want {
		t.Errorf("%d distinct snapshot documents, want %d", len(snap), want)
	}
	for k, c := range snap {
		if c != 1 {
			t.Errorf("snapshot document %s appears %d times", k, c)
		}
	}
	if len(stream) != killStream {
		t.Errorf("%d distinct stream events, want %d", len(stream), killStream)
	}
	for v, c := range stream {
		if c != 1 {
			t.Errorf("stream event %d appears %d times", v, c)
		}
	}
	if markers != killNamespaces*3 || ddl != killNamespaces*3 {
		t.Errorf("markers %d, DDL %d; want %d each (one per partition)", markers, ddl, killNamespaces*3)
	}
}

// kafkaOnly returns the test Kafka brokers (KAFKA_BROKERS or the local
// stack), skipping when Kafka is unreachable: this test needs no MongoDB.
func kafkaOnly(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	brokers := []string{testenv.LocalKafka}
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
	}
	c, err := net.DialTimeout("tcp", brokers[0], 2*time.Second)
	if err != nil {
		if os.Getenv("LOGBRIDGE_REQUIRE_STACK") == "1" {
			t.Fatalf("Kafka at %s is unreachable: %v", brokers[0], err)
		}
		t.Skipf("Kafka at %s is unreachable (%v): run scripts/stack.sh up kafka", brokers[0], err)
	}
	_ = c.Close()
	return brokers
}
