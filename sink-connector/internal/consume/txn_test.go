package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
)

// Unit tests of the transaction gathering (txn.go) and of the plain flush
// path's rejected writes: real workers, queues, offsets and codec; the
// destination is a fake writer that records what it was asked to apply and
// which offsets were acknowledged at that moment.

type flushCall struct {
	txn   bool
	refs  []string // "topic/partition@offset"
	acked map[tp]int64
}

type fakeDest struct {
	mu     sync.Mutex
	c      *Consumer
	calls  []flushCall
	txnErr error
	reject map[int64]bool // offsets whose writes the destination rejects (set before pushing)
}

func (f *fakeDest) record(txn bool, bs ...*apply.Batch) {
	call := flushCall{txn: txn, acked: f.ackedNow()}
	for _, b := range bs {
		for _, r := range b.Refs() {
			call.refs = append(call.refs, fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset))
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

// ackedNow copies the consumer's acknowledged offsets.
func (f *fakeDest) ackedNow() map[tp]int64 {
	acked := map[tp]int64{}
	f.c.offs.mu.Lock()
	defer f.c.offs.mu.Unlock()
	for k, eo := range f.c.offs.acked {
		acked[k] = eo.Offset
	}
	return acked
}

// Flush records one call for the batches written together.
func (f *fakeDest) Flush(_ context.Context, bs ...*apply.Batch) (apply.Result, error) {
	f.record(false, bs...)
	var res apply.Result
	for _, b := range bs {
		for _, r := range b.Refs() {
			if f.reject[r.Offset] {
				res.Failures = append(res.Failures, apply.Failure{Ref: r, Err: fmt.Errorf("%w: document fails validation", apply.ErrRejected)})
			}
		}
	}
	return res, nil
}

// fakeDLQ records what was sent to the dead-letter topic.
type fakeDLQ struct {
	mu   sync.Mutex
	sent []string // "topic/partition@offset: reason"
}

func (d *fakeDLQ) Send(_ context.Context, r *kgo.Record, reason error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, fmt.Sprintf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, reason))
	return nil
}

func (d *fakeDLQ) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.sent...)
}

func (f *fakeDest) FlushTxn(_ context.Context, b *apply.Batch) (apply.Result, error) {
	f.record(true, b)
	return apply.Result{}, f.txnErr
}

// Apply records a DDL barrier as a call of its own ("DDL:<id>").
func (f *fakeDest) Apply(_ context.Context, _ string, ev *schema.Event) error {
	call := flushCall{refs: []string{"DDL:" + apply.BarrierID(ev)}, acked: f.ackedNow()}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	return nil
}

func (f *fakeDest) snapshot() []flushCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flushCall(nil), f.calls...)
}

// applied lists every ref applied, in call order, marking those applied
// inside a destination transaction with "T:".
func (f *fakeDest) applied() []string {
	var out []string
	for _, c := range f.snapshot() {
		for _, r := range c.refs {
			if c.txn {
				r = "T:" + r
			}
			out = append(out, r)
		}
	}
	return out
}

type txnHarness struct {
	t       *testing.T
	c       *Consumer
	dest    *fakeDest
	serde   *schema.Serde
	workers map[tp]*worker
	next    map[tp]int64
	errs    chan error
	cancel  context.CancelFunc
}

func newTxnHarness(t *testing.T, wait time.Duration, maxEvents int, parts ...tp) *txnHarness {
	t.Helper()
	return newHarness(t, func(c *Config) { c.Transactions, c.TxnWait, c.TxnMaxEvents = true, wait, maxEvents }, nil, parts...)
}

// newHarness runs workers for parts with the defaults below changed by tune;
// dlq (nil: none) receives dead letters.
func newHarness(t *testing.T, tune func(*Config), dlq DeadLetters, parts ...tp) *txnHarness {
	t.Helper()
	serde, err := schema.NewSerde(context.Background(), schema.SerdeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := metrics.New(nil)
	dest := &fakeDest{}
	cfg := Config{Group: "g", TopicRegex: ".*", StartFrom: "earliest", BatchSize: 100, FlushInterval: 5 * time.Millisecond,
		Parallelism: 4, QueueLimit: 1 << 20, Tolerance: ToleranceNone}
	tune(&cfg)
	deps := Deps{Decoder: serde, Writer: dest, TxnWriter: dest, Barriers: dest, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if dlq != nil {
		deps.DeadLetters = dlq
	}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	dest.c = c
	c.runCtx = ctx
	c.offs = newOffsets(func(context.Context, map[string]map[int32]kgo.EpochOffset) error { return nil })
	c.txns = newTxnCoord(cfg.TxnWait, cfg.TxnMaxEvents, c.txnResolved)
	h := &txnHarness{t: t, c: c, dest: dest, serde: serde, workers: map[tp]*worker{}, next: map[tp]int64{}, errs: make(chan error, len(parts)), cancel: cancel}
	c.barriers = map[string]*barrier{}
	perTopic := map[string]int{}
	for _, p := range parts {
		perTopic[p.topic]++
	}
	for topic, n := range perTopic {
		c.barriers[topic] = newBarrier(topic, n)
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		w := &worker{c: c, key: p, q: newQueue(), group: c.flushGroup(p.topic), batch: apply.NewBatch(apply.NSMap{}), recs: map[int64]*kgo.Record{}, prog: &partProgress{}, txns: c.txns}
		h.workers[p] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx); err != nil {
				h.errs <- err
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

var lsidA = func() bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}}})
	return b
}()

// ev is a data event of document id in the topic's namespace; txn (when
// not nil) is (index, count) of transaction 7 of lsidA.
func (h *txnHarness) ev(p tp, id int, txn ...int32) *kgo.Record {
	h.t.Helper()
	e := replaceEvent(p.topic, id)
	if len(txn) > 0 {
		e.Txn = &schema.TxnID{LSID: lsidA, TxnNumber: 7, Index: txn[0], Counted: true, Count: txn[1]}
	}
	return h.record(p, e)
}

// record encodes e as the next record of p.
func (h *txnHarness) record(p tp, e *schema.Event) *kgo.Record {
	h.t.Helper()
	r := encodeRecord(h.t, h.serde, p.topic, e)
	r.Partition, r.Offset = p.partition, h.next[p]
	h.next[p]++
	return r
}

// replaceEvent is a replace of document id in the topic's namespace.
func replaceEvent(topic string, id int) *schema.Event {
	ns := schema.Namespace{DB: "d", Coll: strings.TrimPrefix(topic, "lb.d.")}
	key, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(id)}})
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(id)}, {Key: "v", Value: 1}})
	return &schema.Event{Op: schema.OpReplace, NS: ns, DocumentKey: key, FullDocument: doc, ClusterTime: schema.ClusterTime{T: 1, I: 1}}
}

// encodeRecord is e as a record of topic, keyed by its document key.
func encodeRecord(t *testing.T, serde *schema.Serde, topic string, e *schema.Event) *kgo.Record {
	t.Helper()
	v, err := serde.EncodeValue(topic, e)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: e.DocumentKey, Value: v, Headers: []kgo.RecordHeader{serde.Header()}}
}

func (h *txnHarness) push(p tp, rs ...*kgo.Record) { h.workers[p].q.push(rs) }

func (h *txnHarness) acked(p tp) int64 {
	eo, ok, _, _ := h.c.offs.get(p)
	if !ok {
		return -1
	}
	return eo.Offset
}

// waitFor polls cond for up to 5s.
func (h *txnHarness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		select {
		case err := <-h.errs:
			h.t.Fatalf("worker failed while waiting for %s: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; applied so far: %v", what, h.dest.applied())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var (
	pA = tp{"lb.d.a", 0}
	pB = tp{"lb.d.b", 1}
)

func TestTxnGatheredAcrossTopicsAppliedAtomically(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 100, pA, pB)
	// A: x (outside), T#0, T#2, y (outside, after T);  B: T#1, T#3 (last, count 4).
	h.push(pA, h.ev(pA, 1), h.ev(pA, 2, 0, 0), h.ev(pA, 3, 2, 0), h.ev(pA, 4))
	h.waitFor("x applied", func() bool { return len(h.dest.applied()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if got := h.dest.applied(); len(got) != 1 || got[0] != "lb.d.a/0@0" {
		t.Fatalf("before B's events arrive only x may be applied (y waits behind the transaction); got %v", got)
	}
	if a := h.acked(pA); a != 1 {
		t.Fatalf("partition a acknowledged up to %d, want 1 (nothing of the transaction before it is applied)", a)
	}
	h.push(pB, h.ev(pB, 10, 1, 0))
	time.Sleep(30 * time.Millisecond)
	if n := len(h.dest.applied()); n != 1 {
		t.Fatalf("applied %v with 3 of 4 events gathered", h.dest.applied())
	}
	h.push(pB, h.ev(pB, 11, 3, 4))
	h.waitFor("y applied", func() bool { return len(h.dest.applied()) == 6 })
	calls := h.dest.snapshot()
	var txnCall *flushCall
	for i := range calls {
		if calls[i].txn {
			if txnCall != nil {
				t.Fatalf("two destination transactions: %+v", calls)
			}
			txnCall = &calls[i]
		}
	}
	want := "lb.d.a/0@1 lb.d.b/1@0 lb.d.a/0@2 lb.d.b/1@1" // index order
	if txnCall == nil || strings.Join(txnCall.refs, " ") != want {
		t.Fatalf("destination transaction: got %+v, want the 4 events in index order %q", txnCall, want)
	}
	if txnCall.acked[pA] != 1 || txnCall.acked[pB] > 0 {
		t.Fatalf("offsets acknowledged before the destination transaction committed: %v", txnCall.acked)
	}
	if got := h.dest.applied(); got[len(got)-1] != "lb.d.a/0@3" {
		t.Fatalf("y must be applied after the transaction: %v", got)
	}
	h.waitFor("offsets after the transaction", func() bool { return h.acked(pA) == 4 && h.acked(pB) == 2 })
	if v := counterValue(h.c.m.Txns.WithLabelValues(txnApplied)); v != 1 {
		t.Fatalf("transactions_total{applied} = %v, want 1", v)
	}
}

func TestTxnEventsArrivingInSeveralFetches(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 100, pA)
	h.push(pA, h.ev(pA, 1, 0, 0))
	time.Sleep(20 * time.Millisecond) // the worker is idle, waiting, when the rest comes
	h.push(pA, h.ev(pA, 2, 1, 0), h.ev(pA, 3, 2, 3))
	h.waitFor("the transaction", func() bool { return len(h.dest.applied()) == 3 })
	if c := h.dest.snapshot(); len(c) != 1 || !c[0].txn {
		t.Fatalf("got %+v, want one destination transaction", c)
	}
	h.waitFor("offsets", func() bool { return h.acked(pA) == 3 })
}

func TestTxnTimeoutFallsBackPerEventInOrder(t *testing.T) {
	h := newTxnHarness(t, 150*time.Millisecond, 100, pA)
	// Count 3, but the third event is in a partition this member does not own.
	h.push(pA, h.ev(pA, 1, 0, 0), h.ev(pA, 2, 1, 0), h.ev(pA, 3))
	start := time.Now()
	h.waitFor("fallback", func() bool { return len(h.dest.applied()) == 3 })
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("fell back after %v, before the wait", el)
	}
	if got := strings.Join(h.dest.applied(), " "); got != "lb.d.a/0@0 lb.d.a/0@1 lb.d.a/0@2" {
		t.Fatalf("per-event fallback order: got %s", got)
	}
	for _, c := range h.dest.snapshot() {
		if c.txn {
			t.Fatalf("no destination transaction expected: %+v", c)
		}
	}
	h.waitFor("offsets", func() bool { return h.acked(pA) == 3 })
	if v := counterValue(h.c.m.Txns.WithLabelValues(txnTimeout)); v != 1 {
		t.Fatalf("transactions_total{timeout} = %v, want 1", v)
	}
	// A late event of the resolved transaction is applied per event, at once.
	h.push(pA, h.ev(pA, 4, 2, 3))
	h.waitFor("late event", func() bool { return len(h.dest.applied()) == 4 })
	if v := counterValue(h.c.m.TxnLateEvents); v != 1 {
		t.Fatalf("late events = %v, want 1", v)
	}
}

func TestTxnTooLargeFallsBackWithoutWaiting(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 2, pA)
	h.push(pA, h.ev(pA, 1, 0, 0), h.ev(pA, 2, 1, 0), h.ev(pA, 3, 2, 0), h.ev(pA, 4, 3, 4))
	h.waitFor("per-event apply", func() bool { return len(h.dest.applied()) == 4 })
	if got := strings.Join(h.dest.applied(), " "); got != "lb.d.a/0@0 lb.d.a/0@1 lb.d.a/0@2 lb.d.a/0@3" {
		t.Fatalf("got %s", got)
	}
	if v := counterValue(h.c.m.Txns.WithLabelValues(txnTooLarge)); v != 1 {
		t.Fatalf("transactions_total{too_large} = %v, want 1", v)
	}
}

func TestTxnRejectedFallsBackPerEvent(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 100, pA, pB)
	h.dest.txnErr = fmt.Errorf("%w: document fails validation", apply.ErrRejected)
	h.push(pA, h.ev(pA, 1, 0, 0))
	h.push(pB, h.ev(pB, 2, 1, 2))
	h.waitFor("per-event retry", func() bool { return len(h.dest.applied()) == 4 })
	calls := h.dest.snapshot()
	if !calls[0].txn || calls[1].txn || calls[2].txn {
		t.Fatalf("want the aborted transaction, then per-event flushes: %+v", calls)
	}
	h.waitFor("offsets", func() bool { return h.acked(pA) == 1 && h.acked(pB) == 1 })
	if v := counterValue(h.c.m.Txns.WithLabelValues(txnRejected)); v != 1 {
		t.Fatalf("transactions_total{rejected} = %v, want 1", v)
	}
}

func TestTxnDestinationFailureStopsWithoutAcknowledging(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 100, pA, pB)
	h.dest.txnErr = errors.New("connection refused")
	h.push(pA, h.ev(pA, 1), h.ev(pA, 2, 0, 0), h.ev(pA, 3))
	h.push(pB, h.ev(pB, 4, 1, 2))
	for range 2 { // both contributors stop with the error
		select {
		case err := <-h.errs:
			if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "one destination transaction") {
				t.Fatalf("error: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("workers did not stop")
		}
	}
	if a, b := h.acked(pA), h.acked(pB); a != 1 || b != -1 {
		t.Fatalf("acknowledged a=%d b=%d, want 1 and none: nothing of the failed transaction", a, b)
	}
	if got := h.dest.applied(); got[len(got)-1] == "lb.d.a/0@2" {
		t.Fatalf("the record after the transaction was applied: %v", got)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// ddl is a createIndexes record of the partition's namespace inside
// transaction 7 of lsidA (uncounted, as the source publishes DDL inside a
// transaction).
func (h *txnHarness) ddl(p tp, id string) *kgo.Record {
	h.t.Helper()
	ns := schema.Namespace{DB: "d", Coll: strings.TrimPrefix(p.topic, "lb.d.")}
	idx, _ := bson.Marshal(bson.D{{Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "name", Value: "v_1"}}}}})
	e := &schema.Event{Op: schema.OpDDL, NS: ns, ClusterTime: schema.ClusterTime{T: 1, I: 1},
		DDL: &schema.DDL{Kind: schema.DDLCreateIndexes, ID: id, Indexes: idx},
		Txn: &schema.TxnID{LSID: lsidA, TxnNumber: 7}}
	return h.record(p, e)
}

// A DDL after some of its transaction's events: the transaction is applied
// per event at once (not after --transaction-wait, an hour here), in log
// order around the DDL, and counted as result="ddl".
func TestTxnDDLInsideTransactionFallsBackAtOnce(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 100, pA)
	h.push(pA, h.ev(pA, 1, 0, 0), h.ddl(pA, "ddl-1"), h.ev(pA, 2, 1, 2))
	h.waitFor("all applied", func() bool { return len(h.dest.applied()) == 3 })
	if got := strings.Join(h.dest.applied(), " "); got != "lb.d.a/0@0 DDL:ddl-1 lb.d.a/0@2" {
		t.Fatalf("applied %s, want the first write, the DDL, the second write, per event", got)
	}
	h.waitFor("offsets", func() bool { return h.acked(pA) == 3 })
	if v := counterValue(h.c.m.Txns.WithLabelValues(txnDDL)); v != 1 {
		t.Fatalf("transactions_total{ddl} = %v, want 1", v)
	}
}

// A DDL before its transaction's events (create, then inserts): nothing is
// open yet, so the events after it are still applied as one destination
// transaction.
func TestTxnDDLBeforeItsEventsKeepsTheTransaction(t *testing.T) {
	h := newTxnHarness(t, time.Hour, 100, pA)
	h.push(pA, h.ddl(pA, "ddl-1"), h.ev(pA, 1, 0, 0), h.ev(pA, 2, 1, 2))
	h.waitFor("all applied", func() bool { return len(h.dest.applied()) == 3 })
	if got := strings.Join(h.dest.applied(), " "); got != "DDL:ddl-1 T:lb.d.a/0@1 T:lb.d.a/0@2" {
		t.Fatalf("applied %s, want the DDL, then both writes in one destination transaction", got)
	}
	h.waitFor("offsets", func() bool { return h.acked(pA) == 3 })
}

// TestRejectedWriteGoesToDeadLetters: on the plain (non-transactional) path a
// write the destination rejects goes to the dead-letter topic with its reason
// and is counted; the batch's other writes are acknowledged, and no offset is
// acknowledged before the destination acknowledged the writes it covers.
func TestRejectedWriteGoesToDeadLetters(t *testing.T) {
	dlq := &fakeDLQ{}
	h := newHarness(t, func(c *Config) { c.Tolerance, c.DLQTopic = ToleranceAll, "lb._dlq" }, dlq, pA)
	h.dest.reject = map[int64]bool{1: true}
	h.push(pA, h.ev(pA, 1), h.ev(pA, 2), h.ev(pA, 3))
	h.waitFor("the batch acknowledged", func() bool { return h.acked(pA) == 3 })
	sent := dlq.list()
	if len(sent) != 1 || !strings.HasPrefix(sent[0], "lb.d.a/0@1: ") || !strings.Contains(sent[0], "document fails validation") {
		t.Fatalf("dead letters: %q, want offset 1 with the destination's reason", sent)
	}
	if v := counterValue(h.c.m.DeadLetters.WithLabelValues("rejected")); v != 1 {
		t.Fatalf("dead_letters_total{rejected} = %v, want 1", v)
	}
	checkAckAfterWrite(t, h.dest.snapshot(), pA)
}

// TestRejectedWriteStopsWithToleranceNone: with --error-tolerance=none a
// rejected write stops the sink, and nothing from the rejected record on is
// acknowledged.
func TestRejectedWriteStopsWithToleranceNone(t *testing.T) {
	h := newHarness(t, func(*Config) {}, nil, pA)
	h.dest.reject = map[int64]bool{1: true}
	h.push(pA, h.ev(pA, 1), h.ev(pA, 2), h.ev(pA, 3))
	select {
	case err := <-h.errs:
		if !errors.Is(err, ErrPoison) || !strings.Contains(err.Error(), "offset 1") {
			t.Fatalf("error: %v, want ErrPoison at offset 1", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not stop")
	}
	if a := h.acked(pA); a > 1 {
		t.Fatalf("acknowledged up to offset %d, past the rejected record 1", a)
	}
}

// checkAckAfterWrite fails when a flush saw an offset of p acknowledged that
// covers a record the flush was still writing.
func checkAckAfterWrite(t *testing.T, calls []flushCall, p tp) {
	t.Helper()
	prefix := fmt.Sprintf("%s/%d@", p.topic, p.partition)
	for _, c := range calls {
		for _, ref := range c.refs {
			var off int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(ref, prefix), "%d", &off); err != nil || !strings.HasPrefix(ref, prefix) {
				continue
			}
			if a, ok := c.acked[p]; ok && a > off {
				t.Fatalf("offset %d was acknowledged (next %d) while its write was still being flushed: %+v", off, a, calls)
			}
		}
	}
}

// TestAbortedSourceTransactionNotApplied: the consumer reads the log
// read_committed, so records of a Kafka transaction the source aborted are
// never applied (kfake broker, real consumer group, fake destination).
func TestAbortedSourceTransactionNotApplied(t *testing.T) {
	const topic = "lb.d.a"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := kgo.SeedBrokers(cluster.ListenAddrs()...)
	serde, err := schema.NewSerde(context.Background(), schema.SerdeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(brokers, kgo.TransactionalID("lb-source"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	transact := func(commit kgo.TransactionEndTry, ids ...int) {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := prod.ProduceSync(ctx, encodeRecord(t, serde, topic, replaceEvent(topic, id))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	transact(kgo.TryAbort, 1, 2) // offsets 0, 1; the abort marker at 2
	transact(kgo.TryCommit, 3)   // offset 3; the commit marker at 4

	dest := &fakeDest{}
	cfg := Config{Group: "g", TopicRegex: `lb\.d\..*`, StartFrom: "earliest", BatchSize: 100, FlushInterval: 5 * time.Millisecond,
		Parallelism: 1, Tolerance: ToleranceNone}
	c, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{brokers}, Decoder: serde, Writer: dest, Barriers: dest,
		Metrics: metrics.New(nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	dest.c = c
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(dest.applied(), topic+"/0@3") {
		if time.Now().After(deadline) {
			t.Fatalf("the committed record was not applied; applied: %v", dest.applied())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := dest.applied(); !slices.Equal(got, []string{topic + "/0@3"}) {
		t.Fatalf("applied %v, want only the committed record at offset 3", got)
	}
}

// TestBarrierAcrossPartitions: a DDL is applied once, when both partitions of
// its namespace reached it, after every write before it and before every
// write after it; at that moment each partition is acknowledged exactly up to
// the DDL record, also partition 1, whose first record is the DDL.
func TestBarrierAcrossPartitions(t *testing.T) {
	p0, p1 := tp{"lb.d.a", 0}, tp{"lb.d.a", 1}
	h := newHarness(t, func(*Config) {}, nil, p0, p1)
	h.push(p0, h.ev(p0, 1), h.ddl(p0, "d1"), h.ev(p0, 3))
	time.Sleep(50 * time.Millisecond) // p0 waits at the barrier for p1
	if got := h.dest.applied(); slices.Contains(got, "DDL:d1") || slices.Contains(got, "lb.d.a/0@2") {
		t.Fatalf("applied %v before partition 1 reached the barrier", got)
	}
	h.push(p1, h.ddl(p1, "d1"))
	h.waitFor("the write after the DDL", func() bool { return slices.Contains(h.dest.applied(), "lb.d.a/0@2") })
	got := h.dest.applied()
	if want := []string{"lb.d.a/0@0", "DDL:d1", "lb.d.a/0@2"}; !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v: the DDL once, between the writes before and after it", got, want)
	}
	for _, c := range h.dest.snapshot() {
		a0, ok0 := c.acked[p0]
		a1, ok1 := c.acked[p1]
		if c.refs[0] == "DDL:d1" && (!ok0 || !ok1 || a0 != 1 || a1 != 0) {
			t.Fatalf("acknowledged at the DDL: %v, want each partition at its DDL record (partition 0 offset 1, partition 1 offset 0)", c.acked)
		}
	}
}
