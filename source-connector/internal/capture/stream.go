package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/source-connector/internal/metrics"
)

// ErrHistoryLost: the resume point is no longer in the source's oplog.
var ErrHistoryLost = errors.New("the change stream's resume point is no longer in the source oplog (ChangeStreamHistoryLost), so the log cannot continue without a gap: " +
	"start a new sync (a fresh snapshot into a new --topic-prefix, or delete this prefix's topics to start over), " +
	"and size the oplog (replSetResizeOplog / oplogMinRetentionHours) to cover the snapshot plus any downtime")

// Full document modes (--full-document, --full-document-before-change).
const (
	ModeOff           = "off"
	ModeUpdateLookup  = "updateLookup"
	ModeWhenAvailable = "whenAvailable"
	ModeRequired      = "required"
)

// Config configures a Stream.
type Config struct {
	Client *mongo.Client
	Filter *nsfilter.Filter
	// FullDocument: off, updateLookup, whenAvailable or required.
	FullDocument string
	// FullDocumentBeforeChange: off, whenAvailable or required.
	FullDocumentBeforeChange string
	// ShowExpandedEvents asks for DDL events (create, createIndexes, …;
	// MongoDB 6.0+).
	ShowExpandedEvents bool
	// SplitLargeEvents appends $changeStreamSplitLargeEvent (MongoDB 7.0+).
	SplitLargeEvents bool
	// Heartbeat is the quiet time after which the resume point is
	// checkpointed without an event (default 10s).
	Heartbeat time.Duration
	BatchSize int32
	// BatchWait is how long the reader waits, once it is caught up, after
	// a getMore that returned a small batch (fewer than smallBatch events)
	// before it asks for the next one, so that the events written
	// meanwhile come in one getMore and go into one Kafka transaction.
	// 0 asks again at once, but at a moderate rate every event then costs
	// a getMore and nearly a transaction of its own, at both connectors
	// (docs/benchmarks.md, issue 21; the source-connector's default is
	// 8ms). A stream that is behind gets full batches and never waits.
	BatchWait time.Duration
	// MaxAwait bounds one getMore on a quiet stream (default 1s).
	MaxAwait time.Duration
	Epoch    int64
	Source   string
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	Retry    retry.Policy
}

// Start is where the stream begins.
type Start struct {
	// After is the resume token to continue after (from the state), or nil.
	After *checkpoint.StreamState
	// T0 is the start when After is nil: startAtOperationTime.
	T0 bson.Timestamp
}

// Stream reads the cluster-wide change stream.
type Stream struct {
	cfg Config
	log *slog.Logger
}

// New returns a Stream.
func New(cfg Config) *Stream {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.MaxAwait <= 0 {
		cfg.MaxAwait = time.Second
	}
	if cfg.MaxAwait > cfg.Heartbeat {
		cfg.MaxAwait = cfg.Heartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	if cfg.Retry.Initial == 0 {
		cfg.Retry = retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: 0}
	}
	return &Stream{cfg: cfg, log: cfg.Logger}
}

// Pipeline is the server-side part of the filter: it drops the databases
// that are never streamed and, when the include patterns name their
// databases (nsfilter.Filter.DBs), every other database's events but the
// renames into them. The Go filter stays the source of truth: the server
// sends a superset of what it selects.
//
// Why the second part: the stream is cluster-wide, so without it the source
// reads, decodes and drops every write of every other application of the
// cluster. In the lag benchmark on the shared test stack that was 6,600 to
// 176,000 other events per 30 s run next to 15,000 of its own, all paid for
// in the source's CPU and getMores (docs/benchmarks.md, issue 21).
func (s *Stream) Pipeline() mongo.Pipeline {
	skip := bson.A{}
	for _, db := range nsfilter.AlwaysSkippedDBs {
		skip = append(skip, db)
	}
	p := mongo.Pipeline{{{Key: "$match", Value: bson.D{
		{Key: "ns.db", Value: bson.D{
			{Key: "$nin", Value: skip},
			{Key: "$not", Value: bson.Regex{Pattern: "^" + nsfilter.MetadataDBPrefix}},
		}},
	}}}}
	if dbs, ok := s.cfg.Filter.DBs(); ok {
		in := bson.A{}
		for _, db := range dbs {
			in = append(in, db)
		}
		p = append(p, bson.D{{Key: "$match", Value: bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "ns.db", Value: bson.D{{Key: "$in", Value: in}}}},
			bson.D{{Key: "to.db", Value: bson.D{{Key: "$in", Value: in}}}}, // a rename into them
		}}}}})
	}
	if s.cfg.SplitLargeEvents {
		p = append(p, bson.D{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}})
	}
	return p
}

func (s *Stream) options(tok bson.Raw, startAfter bool, t0 bson.Timestamp) *options.ChangeStreamOptionsBuilder {
	o := options.ChangeStream().SetMaxAwaitTime(s.cfg.MaxAwait)
	if s.cfg.BatchSize > 0 {
		o.SetBatchSize(s.cfg.BatchSize)
	}
	switch s.cfg.FullDocument {
	case ModeUpdateLookup:
		o.SetFullDocument(options.UpdateLookup)
	case ModeWhenAvailable:
		o.SetFullDocument(options.WhenAvailable)
	case ModeRequired:
		o.SetFullDocument(options.Required)
	}
	switch s.cfg.FullDocumentBeforeChange {
	case ModeWhenAvailable:
		o.SetFullDocumentBeforeChange(options.WhenAvailable)
	case ModeRequired:
		o.SetFullDocumentBeforeChange(options.Required)
	}
	if s.cfg.ShowExpandedEvents {
		o.SetShowExpandedEvents(true)
	}
	switch {
	case tok != nil && startAfter:
		o.SetStartAfter(tok)
	case tok != nil:
		o.SetResumeAfter(tok)
	default:
		o.SetStartAtOperationTime(&t0)
	}
	return o
}

// Run streams change events into out until ctx ends or an error that
// retries cannot fix. Each item carries the stream checkpoint that covers
// it.
func (s *Stream) Run(ctx context.Context, start Start, out chan<- checkpoint.Item) error {
	r := &reader{s: s, out: out, m: &Mapper{Epoch: s.cfg.Epoch, Source: s.cfg.Source},
		lastTime: start.T0, lastEmit: time.Now()}
	if a := start.After; a != nil && len(a.Token) > 0 {
		r.tok, r.ckptTok, r.lastTime = a.Token, a.Token, a.ClusterTime
		r.m.Txn.Restore(a.TxnLSID, a.TxnNumber, a.TxnIndex, a.TxnPublished)
	}
	for {
		cs, err := s.open(ctx, r.tok, r.startAfter, start.T0)
		if err != nil {
			return err
		}
		r.startAfter = false
		if err := r.follow(ctx, cs); err != nil {
			return err
		}
	}
}

// reader is the state of one Run that outlives a cursor: the resume point,
// what was handed over, and the held transaction event.
type reader struct {
	s   *Stream
	out chan<- checkpoint.Item
	m   *Mapper

	tok        bson.Raw // resume point: last event handed over or checkpointed
	ckptTok    bson.Raw // last token handed to out
	startAfter bool     // reopen with startAfter tok (after an invalidate)
	lastTime   bson.Timestamp
	pending    *checkpoint.StreamState // checkpoint of events that produced no record
	lastEmit   time.Time
	txn        txnHold
	// batchMore: the cursor batch being read is small (caught up) and has
	// more events after the current one, so items sent now go with More:
	// one getMore batch, one Kafka transaction. Otherwise the publisher,
	// woken by the first event, committed it alone while the rest of the
	// batch was decoded (11 events per transaction from getMores of ~20 at
	// 2,300 events/s), and every transaction costs both connectors a round
	// trip of a few hundred µs (docs/benchmarks.md, issue 21).
	batchMore bool
	unitOpen  bool // the last item sent had More
}

// txnHold holds back the last data event published of a source
// transaction until the stream shows whether another one of the
// transaction follows (the next event, or an idle stream: MongoDB returns a
// committed transaction's events together). Every event of the transaction
// but the last is sent with More, so the pipeline puts them all into one
// Kafka transaction, and the last one carries the count: a sink gathering
// the transaction knows when it has all of it.
type txnHold struct {
	item *checkpoint.Item
	st   *checkpoint.StreamState // newest checkpoint while held (a DDL of the transaction may pass it)
	n    int32                   // events of the transaction published, the held one included
}

func (h *txnHold) held() bool { return h.item != nil }

// take ends the hold and returns the held item with the newest checkpoint:
// as its transaction's last event (with the count) or followed by more.
func (h *txnHold) take(last bool) checkpoint.Item {
	it := *h.item
	h.item = nil
	it.State = []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: h.st}}
	if last {
		it.Event.Txn.Count = h.n
	} else {
		it.More = true
	}
	return it
}

// smallBatch is the getMore batch size below which the stream counts as
// caught up (see Config.BatchWait).
const smallBatch = 100

// follow reads cs until it has to be reopened (nil) or fails. It owns cs.
func (r *reader) follow(ctx context.Context, cs *mongo.ChangeStream) error {
	defer func() { _ = cs.Close(context.WithoutCancel(ctx)) }()
	var reasm Reassembler // per cursor: a reopened stream resumes before a split event
	batchLen := 0         // events of the cursor batch being read; 0 between batches
	for {
		var reopen bool
		var err error
		if cs.TryNext(ctx) {
			if batchLen == 0 {
				batchLen = cs.RemainingBatchLength() + 1
			}
			r.batchMore = batchLen < smallBatch && cs.RemainingBatchLength() > 0
			reopen, err = r.event(ctx, cs, &reasm)
		} else {
			r.batchMore = false // (stale after a reopen in the middle of a batch)
			reopen, err = r.noEvent(ctx, cs, &reasm)
		}
		if err != nil || reopen {
			return err
		}
		if err := r.heartbeat(ctx, &reasm); err != nil {
			return err
		}
		if batchLen > 0 && cs.RemainingBatchLength() == 0 {
			// The batch is read: wait before the next getMore when it was
			// small (caught up), letting events gather on the server.
			small := batchLen < smallBatch
			batchLen = 0
			if err := r.closeBatch(ctx); err != nil {
				return err
			}
			if w := r.s.cfg.BatchWait; w > 0 && small && !reasm.Pending() {
				t := time.NewTimer(w)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
		}
	}
}

// event takes the cursor's current event (or fragment of a split event).
func (r *reader) event(ctx context.Context, cs *mongo.ChangeStream, reasm *Reassembler) (reopen bool, err error) {
	raw := bson.Raw(append([]byte(nil), cs.Current...))
	// Only a fragment, or what comes while fragments are pending, goes
	// through the reassembler: a whole event needs no second look for
	// splitEvent.
	full := raw
	if reasm.Pending() || raw.Lookup("splitEvent").Type != 0 {
		if full, err = reasm.Add(raw); err != nil {
			return false, fmt.Errorf("reading the change stream: %w", err)
		}
		if full == nil {
			return false, nil
		}
		r.s.cfg.Metrics.SplitEvents.Inc()
	}
	mp, err := r.m.Map(full)
	if err != nil {
		return false, fmt.Errorf("mapping change event %s: %w", full, err)
	}
	r.s.cfg.Metrics.EventsCaptured.WithLabelValues(mp.OpType).Inc()
	if r.txn.held() && !r.m.Txn.In(r.txn.item.Event.Txn) {
		// The held event's transaction ended before this event.
		if err := r.release(ctx, true); err != nil {
			return false, err
		}
	}
	r.tok = mp.Token
	if mp.ClusterTime.T != 0 {
		r.lastTime = mp.ClusterTime
	}
	if mp.OpType == OpInvalidate {
		r.s.log.Error("the cluster-wide change stream was invalidated, which MongoDB documents as impossible for a cluster-wide stream; reopening it with startAfter the invalidate event", "clusterTime", mp.ClusterTime)
		r.pending = r.state(mp.Token, r.lastTime)
		r.startAfter = true
		return true, nil
	}
	if err := r.handOver(ctx, mp); err != nil {
		return false, err
	}
	if r.txn.held() && !reasm.Pending() && cs.RemainingBatchLength() == 0 {
		// The batch is done and its postBatchResumeToken moved past the
		// held event: the server scanned to the end of its oplog, and a
		// transaction's events all come from its commit entry, so the held
		// event was the last. (A batch cut by size ends at the last
		// event's token.)
		if pbrt := cs.ResumeToken(); len(pbrt) > 0 && !bytes.Equal(pbrt, r.txn.st.Token) {
			return false, r.release(ctx, true)
		}
	}
	return false, nil
}

// handOver sends a mapped event with its checkpoint, holds it (a data event
// of a transaction), or only notes its checkpoint (no record).
func (r *reader) handOver(ctx context.Context, mp *Mapped) error {
	switch {
	case mp.Item.Event == nil:
		r.s.log.Debug("skipping a change event this connector does not publish", "operationType", mp.OpType, "ns", mp.NS)
		r.pending = r.state(mp.Token, r.lastTime)
	case !r.s.selected(mp):
		r.s.cfg.Metrics.EventsFiltered.Inc()
		r.pending = r.state(mp.Token, r.lastTime)
	case mp.Item.Event.Txn != nil && !mp.Item.Broadcast:
		// A data event of a transaction: the held one (if any) is not the
		// last; this one is held.
		r.m.Txn.Published++
		st := r.state(mp.Token, r.lastTime)
		if err := r.release(ctx, false); err != nil {
			return err
		}
		it := mp.Item
		it.Event.Txn.Counted = true
		r.txn = txnHold{item: &it, st: st, n: r.m.Txn.Published}
		r.pending = nil
	default:
		it := mp.Item
		st := r.state(mp.Token, r.lastTime)
		it.State = []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: st}}
		if mp.OpType == OpRename {
			it.Targets = r.s.renameTargets(mp)
		}
		if r.txn.held() {
			// DDL inside a transaction (create, createIndexes): published
			// in place, not counted, in the same Kafka transaction; the
			// held event keeps waiting and will carry this newer
			// checkpoint.
			it.More = true
			r.txn.st = st
		}
		if err := r.send(ctx, it); err != nil {
			return err
		}
		r.ckptTok, r.pending = mp.Token, nil
	}
	return nil
}

// noEvent handles a TryNext without an event: a cursor error, the end of a
// held transaction, a closed cursor, or a quiet stream whose
// postBatchResumeToken becomes the pending checkpoint.
func (r *reader) noEvent(ctx context.Context, cs *mongo.ChangeStream, reasm *Reassembler) (reopen bool, err error) {
	if err := cs.Err(); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if mongox.IsHistoryLost(err) {
			// (a held event is not published: its checkpoint is not
			// committed either, so a restart reads it again)
			return false, fmt.Errorf("%w (%v)", ErrHistoryLost, err)
		}
		if !mongox.IsTransient(err) {
			return false, fmt.Errorf("reading the change stream: %w", err)
		}
		r.s.cfg.Metrics.Retries.WithLabelValues("change_stream").Inc()
		r.s.log.Warn("change stream error; reopening after the last event read", "err", err)
		return true, nil
	}
	switch {
	case r.txn.held() && !reasm.Pending():
		// Idle stream: the held event was its transaction's last.
		return false, r.release(ctx, true)
	case cs.ID() == 0:
		r.s.log.Warn("the server closed the change stream; reopening it")
		return true, nil
	case !reasm.Pending() && time.Since(r.lastEmit) >= r.s.cfg.Heartbeat:
		// Quiet: checkpoint the postBatchResumeToken.
		if pbrt := cs.ResumeToken(); len(pbrt) > 0 && !bytes.Equal(pbrt, r.ckptTok) {
			ct := r.lastTime
			if t, ok := TokenTime(pbrt); ok {
				ct = t
			}
			r.pending = r.state(bson.Raw(append([]byte(nil), pbrt...)), ct)
			r.tok = r.pending.Token
		}
	}
	return false, nil
}

// heartbeat sends the pending checkpoint (state only) once the stream has
// been quiet for the heartbeat interval, so the resume point keeps moving.
func (r *reader) heartbeat(ctx context.Context, reasm *Reassembler) error {
	if r.pending == nil || r.txn.held() || reasm.Pending() || time.Since(r.lastEmit) < r.s.cfg.Heartbeat {
		return nil
	}
	p := r.pending
	if err := r.send(ctx, checkpoint.Item{State: []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: p}}, Heartbeat: true}); err != nil {
		return err
	}
	r.ckptTok, r.pending = p.Token, nil
	r.lastTime = p.ClusterTime
	return nil
}

// release sends the held event, if any: as its transaction's last or
// followed by more.
func (r *reader) release(ctx context.Context, last bool) error {
	if !r.txn.held() {
		return nil
	}
	it := r.txn.take(last)
	if err := r.send(ctx, it); err != nil {
		return err
	}
	r.ckptTok = r.txn.st.Token
	return nil
}

// closeBatch ends the unit of a small cursor batch (batchMore) when its
// last event sent nothing (filtered, or a transaction's event still held:
// the hold then closes the unit itself), with the pending checkpoint if
// there is one.
func (r *reader) closeBatch(ctx context.Context) error {
	r.batchMore = false
	if !r.unitOpen || r.txn.held() {
		return nil
	}
	it := checkpoint.Item{}
	if p := r.pending; p != nil {
		it.State = []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: p}}
		r.ckptTok, r.pending = p.Token, nil
	}
	return r.send(ctx, it)
}

func (r *reader) send(ctx context.Context, it checkpoint.Item) error {
	it.More = it.More || r.batchMore
	select {
	case r.out <- it:
		r.lastEmit = time.Now()
		r.unitOpen = it.More
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// state is the stream checkpoint at token and cluster time ct, with the
// open transaction's numbering.
func (r *reader) state(token bson.Raw, ct bson.Timestamp) *checkpoint.StreamState {
	st := &checkpoint.StreamState{Token: token, ClusterTime: ct}
	if t := &r.m.Txn; t.active {
		st.TxnLSID, st.TxnNumber, st.TxnIndex, st.TxnPublished = t.LSID, t.TxnNumber, t.Index, t.Published
	}
	return st
}

func (s *Stream) open(ctx context.Context, tok bson.Raw, startAfter bool, t0 bson.Timestamp) (*mongo.ChangeStream, error) {
	var cs *mongo.ChangeStream
	pol := s.cfg.Retry
	pol.OnRetry = func(attempt int, err error) {
		s.cfg.Metrics.Retries.WithLabelValues("change_stream_open").Inc()
		s.log.Warn("opening the change stream failed; retrying", "attempt", attempt, "err", err)
	}
	err := retry.Do(ctx, pol, mongox.IsTransient, func(ctx context.Context) error {
		var err error
		cs, err = s.cfg.Client.Watch(ctx, s.Pipeline(), s.options(tok, startAfter, t0))
		return err
	})
	switch {
	case err == nil:
		where := "startAtOperationTime " + fmt.Sprint(t0)
		if tok != nil {
			where = "after resume token " + tokenID(tok)
		}
		s.log.Info("change stream open", "from", where, "fullDocument", s.cfg.FullDocument,
			"fullDocumentBeforeChange", s.cfg.FullDocumentBeforeChange, "showExpandedEvents", s.cfg.ShowExpandedEvents)
		return cs, nil
	case mongox.IsHistoryLost(err):
		return nil, fmt.Errorf("%w (%v)", ErrHistoryLost, err)
	case mongox.IsAuthError(err):
		return nil, fmt.Errorf("opening the change stream: the source user lacks privileges (it needs the changeStream and find actions on every database, e.g. the built-in readAnyDatabase role): %w", err)
	default:
		return nil, fmt.Errorf("opening the change stream: %w", err)
	}
}

// selected applies the namespace filter: data and collection DDL events by
// their namespace, a rename by its source or target, dropDatabase by its
// database.
func (s *Stream) selected(mp *Mapped) bool {
	f := s.cfg.Filter
	switch mp.OpType {
	case OpRename:
		return f.Match(mp.NS.DB, mp.NS.Coll) || f.Match(mp.To.DB, mp.To.Coll)
	case OpDropDatabase:
		return f.MayMatchDB(mp.NS.DB)
	}
	return f.Match(mp.NS.DB, mp.NS.Coll)
}

// renameTargets lists the selected sides of a rename.
func (s *Stream) renameTargets(mp *Mapped) []schema.Namespace {
	f := s.cfg.Filter
	var out []schema.Namespace
	if f.Match(mp.NS.DB, mp.NS.Coll) {
		out = append(out, mp.NS)
	}
	if f.Match(mp.To.DB, mp.To.Coll) {
		out = append(out, mp.To)
		if !f.Match(mp.NS.DB, mp.NS.Coll) {
			s.log.Warn("a collection outside the filter was renamed into it: its existing documents are not in the log (only later changes are); resync to copy them",
				"from", mp.NS, "to", mp.To)
		}
	}
	return out
}
