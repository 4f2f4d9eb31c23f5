package consume

import (
	"encoding/hex"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
)

// Transaction-consistent apply (--transactions).
//
// The source stamps the last event of each source transaction in the log with
// the number of the transaction's events there (schema.TxnID.Count) and puts
// all of them into one Kafka transaction. They may sit in several partitions
// of several topics. A worker that reaches one flushes what came before it,
// hands the event (and every following event of the same transaction in its
// partition) to the session's txnCoord, and handles nothing else of its
// partition until the transaction is resolved: per-key order holds because a
// key lives in one partition. The worker that hands over the last missing
// event applies them all in one destination transaction; then every
// contributing worker acknowledges its records (offsets are committed only
// after the destination committed).
//
// Fallback, never a hang and never a loss: when the transaction is not
// complete within the wait (a namespace owned by another group member, a
// replay that starts inside a transaction), or holds more than the size
// limit, or the destination rejects one of its writes, each worker applies
// its part per event, in order, as without --transactions; later events of
// that transaction are applied per event too.

// txn resolutions (the "result" label of logbridge_sink_transactions_total).
const (
	txnApplied  = "applied"   // one destination transaction
	txnTimeout  = "timeout"   // not complete within --transaction-wait: per event
	txnTooLarge = "too_large" // over --transaction-max-events: per event
	txnRejected = "rejected"  // the destination rejected a write (or an event was bad): per event, dead letters as usual
	txnDDL      = "ddl"       // a DDL of it (create, createIndexes inside the transaction) came after some of its events: per event
)

// txnPart is what one partition contributed to a transaction, in log order.
type txnPart struct {
	recs []*kgo.Record
	evs  []*schema.Event
}

// txnGather is one source transaction being gathered.
type txnGather struct {
	key      string
	lsid     string // for logs
	number   int64
	first    time.Time
	deadline time.Time

	// Guarded by txnCoord.mu until done is closed; read-only after.
	count     int32 // 0 until the last event arrived
	n         int
	parts     map[tp]*txnPart
	gathering bool

	done    chan struct{}
	applied bool   // true: applied in one destination transaction
	reason  string // the resolution (txn* constants)
	err     error  // fatal: the destination failed past its retries
}

// txnCoord gathers the transactions of one consumer session.
type txnCoord struct {
	wait      time.Duration
	maxEvents int
	onResolve func(*txnGather) // metrics and logs, called once per transaction under mu

	mu     sync.Mutex
	open   map[string]*txnGather
	closed map[string]time.Time // resolved recently: later events go per event
}

func newTxnCoord(wait time.Duration, maxEvents int, onResolve func(*txnGather)) *txnCoord {
	return &txnCoord{wait: wait, maxEvents: maxEvents, onResolve: onResolve, open: map[string]*txnGather{}, closed: map[string]time.Time{}}
}

func txnKey(t *schema.TxnID) string {
	return string(t.LSID) + "\x00" + strconv.FormatInt(t.TxnNumber, 10)
}

// add hands one event of a transaction over. perEvent: the transaction was
// already resolved (or the event is malformed for gathering): apply the event
// per event now. Otherwise g is the transaction the worker now waits for, and
// complete says the caller handed over the last missing event and must
// apply g (see finish). add may resolve g itself (size limit): g.done is then
// closed.
func (c *txnCoord) add(p tp, r *kgo.Record, ev *schema.Event) (g *txnGather, complete, perEvent bool) {
	key := txnKey(ev.Txn)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.closed[key]; ok {
		return nil, false, true
	}
	g = c.open[key]
	if g == nil {
		g = &txnGather{key: key, lsid: lsidString(ev.Txn.LSID), number: ev.Txn.TxnNumber, first: now, deadline: now.Add(c.wait),
			parts: map[tp]*txnPart{}, gathering: true, done: make(chan struct{})}
		c.open[key] = g
	}
	part := g.parts[p]
	if part == nil {
		part = &txnPart{}
		g.parts[p] = part
	}
	part.recs = append(part.recs, r)
	part.evs = append(part.evs, ev)
	g.n++
	if ev.Txn.Count > 0 {
		g.count = ev.Txn.Count
	}
	switch {
	case g.n > c.maxEvents || int(g.count) > c.maxEvents:
		c.resolveLocked(g, false, txnTooLarge, nil)
	case g.count > 0 && g.n >= int(g.count):
		g.gathering = false
		delete(c.open, key)
		c.closeKeyLocked(key, now)
		return g, true, false
	}
	return g, false, false
}

// expire resolves g as timed out when it is still gathering; it reports
// whether it did.
func (c *txnCoord) expire(g *txnGather) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.gathering {
		return false
	}
	c.resolveLocked(g, false, txnTimeout, nil)
	return true
}

// ddl is told by a partition that gathered events of transaction key and
// then met a DDL record of it (MongoDB allows create and createIndexes inside
// a transaction; the source publishes them in place, uncounted, into every
// partition of the namespace's topic). A DDL is a barrier, applied outside
// destination transactions, and it commits the offsets of its topic's
// partitions, so the events gathered before it must be applied first: the
// transaction is resolved per event now. Waiting instead would stall every
// partition of the topic for --transaction-wait (the rest of the
// transaction sits behind the DDL). MongoDB runs a transaction's DDL on a
// namespace before its writes there, so this happens only when several
// namespaces share a topic (--topic-route without {coll}); a DDL that meets
// no gathered event of its transaction is applied as a barrier and the
// transaction stays whole.
func (c *txnCoord) ddl(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.open[key]; g != nil && g.gathering {
		c.resolveLocked(g, false, txnDDL, nil)
	}
}

// finish resolves g after the apply attempt of the worker that completed it.
func (c *txnCoord) finish(g *txnGather, applied bool, reason string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resolveLocked(g, applied, reason, err)
}

func (c *txnCoord) resolveLocked(g *txnGather, applied bool, reason string, err error) {
	select {
	case <-g.done:
		return
	default:
	}
	g.gathering = false
	g.applied, g.reason, g.err = applied, reason, err
	delete(c.open, g.key)
	c.closeKeyLocked(g.key, time.Now())
	if c.onResolve != nil {
		c.onResolve(g)
	}
	close(g.done)
}

// closeKeyLocked remembers a resolved transaction for a while, so that a
// late event of it (after a timeout) is applied per event instead of
// starting a new gather that would wait in vain.
func (c *txnCoord) closeKeyLocked(key string, now time.Time) {
	c.closed[key] = now
	if len(c.closed) < 4096 {
		return
	}
	keep := 10*c.wait + time.Minute
	for k, at := range c.closed {
		if now.Sub(at) > keep {
			delete(c.closed, k)
		}
	}
}

// events returns the gathered events and their records in transaction
// order (by index; log order within a partition breaks ties). Only the
// completing worker calls it, after add returned complete.
func (g *txnGather) events() ([]*schema.Event, []*kgo.Record) {
	var evs []*schema.Event
	var recs []*kgo.Record
	for _, part := range g.parts {
		evs = append(evs, part.evs...)
		recs = append(recs, part.recs...)
	}
	idx := make([]int, len(evs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return evs[idx[a]].Txn.Index < evs[idx[b]].Txn.Index })
	outE := make([]*schema.Event, len(idx))
	outR := make([]*kgo.Record, len(idx))
	for i, k := range idx {
		outE[i], outR[i] = evs[k], recs[k]
	}
	return outE, outR
}

// lsidString is the session id for logs: the hex of lsid.id.
func lsidString(lsid bson.Raw) string {
	if _, data, ok := lsid.Lookup("id").BinaryOK(); ok {
		return hex.EncodeToString(data)
	}
	return lsid.String()
}
