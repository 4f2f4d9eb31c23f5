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
// that are never streamed. The Go filter stays the source of truth.
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
	m := &Mapper{Epoch: s.cfg.Epoch, Source: s.cfg.Source}
	var (
		tok        bson.Raw // resume point: last event handed over or checkpointed
		ckptTok    bson.Raw // last token handed to out
		startAfter bool
		lastTime   = start.T0
	)
	if a := start.After; a != nil && len(a.Token) > 0 {
		tok, ckptTok, lastTime = a.Token, a.Token, a.ClusterTime
		m.Txn.Restore(a.TxnLSID, a.TxnNumber, a.TxnIndex, a.TxnPublished)
	}
	var pending *checkpoint.StreamState // checkpoint of events that produced no record
	lastEmit := time.Now()

	send := func(it checkpoint.Item) error {
		select {
		case out <- it:
			lastEmit = time.Now()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	state := func(token bson.Raw, ct bson.Timestamp) *checkpoint.StreamState {
		st := &checkpoint.StreamState{Token: token, ClusterTime: ct}
		if m.Txn.active {
			st.TxnLSID, st.TxnNumber, st.TxnIndex, st.TxnPublished = m.Txn.LSID, m.Txn.TxnNumber, m.Txn.Index, m.Txn.Published
		}
		return st
	}

	// Transaction marks: the last data event published of a source
	// transaction is held back until the stream shows whether another one
	// of the transaction follows (the next event, or an idle stream: MongoDB
	// returns a committed transaction's events together). Every event of the
	// transaction but the last is sent with More, so the pipeline puts them
	// all into one Kafka transaction, and the last one carries the count: a
	// sink gathering the transaction knows when it has all of it.
	var (
		held   *checkpoint.Item
		heldSt *checkpoint.StreamState // newest checkpoint while held (a DDL of the transaction may pass it)
		heldN  int32                   // events of held's transaction published, held included
	)
	release := func(last bool) error {
		if held == nil {
			return nil
		}
		it := *held
		held = nil
		it.State = []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: heldSt}}
		if last {
			it.Event.Txn.Count = heldN
		} else {
			it.More = true
		}
		if err := send(it); err != nil {
			return err
		}
		ckptTok = heldSt.Token
		return nil
	}

	for {
		cs, err := s.open(ctx, tok, startAfter, start.T0)
		if err != nil {
			return err
		}
		startAfter = false
		var reasm Reassembler
		reopen := false
		for !reopen {
			if cs.TryNext(ctx) {
				raw := bson.Raw(append([]byte(nil), cs.Current...))
				wasSplit := reasm.Pending() || raw.Lookup("splitEvent").Type != 0
				full, err := reasm.Add(raw)
				if err != nil {
					_ = cs.Close(context.WithoutCancel(ctx))
					return fmt.Errorf("reading the change stream: %w", err)
				}
				if full == nil {
					continue
				}
				if wasSplit {
					s.cfg.Metrics.SplitEvents.Inc()
				}
				mp, err := m.Map(full)
				if err != nil {
					_ = cs.Close(context.WithoutCancel(ctx))
					return fmt.Errorf("mapping change event %s: %w", full, err)
				}
				s.cfg.Metrics.EventsCaptured.WithLabelValues(mp.OpType).Inc()
				if held != nil && !m.Txn.In(held.Event.Txn) {
					// The held event's transaction ended before this event.
					if err := release(true); err != nil {
						_ = cs.Close(context.WithoutCancel(ctx))
						return err
					}
				}
				tok = mp.Token
				if mp.ClusterTime.T != 0 {
					lastTime = mp.ClusterTime
				}
				st := state(mp.Token, lastTime)
				switch {
				case mp.OpType == OpInvalidate:
					s.log.Error("the cluster-wide change stream was invalidated, which MongoDB documents as impossible for a cluster-wide stream; reopening it with startAfter the invalidate event", "clusterTime", mp.ClusterTime)
					pending = st
					startAfter = true
					reopen = true
					continue
				case mp.Item.Event == nil:
					s.log.Debug("skipping a change event this connector does not publish", "operationType", mp.OpType, "ns", mp.NS)
					pending = st
				case !s.selected(mp):
					s.cfg.Metrics.EventsFiltered.Inc()
					pending = st
				case mp.Item.Event.Txn != nil && !mp.Item.Broadcast:
					// A data event of a transaction: the previous one (if
					// any) is not the last; this one is held.
					m.Txn.Published++
					st = state(mp.Token, lastTime)
					if err := release(false); err != nil {
						_ = cs.Close(context.WithoutCancel(ctx))
						return err
					}
					it := mp.Item
					it.Event.Txn.Counted = true
					held, heldSt, heldN = &it, st, m.Txn.Published
					pending = nil
				default:
					it := mp.Item
					it.State = []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: st}}
					if mp.OpType == OpRename {
						it.Targets = s.renameTargets(mp)
					}
					if held != nil {
						// DDL inside a transaction (create, createIndexes):
						// published in place, not counted, in the same Kafka
						// transaction; the held event keeps waiting and will
						// carry this newer checkpoint.
						it.More = true
						heldSt = st
					}
					if err := send(it); err != nil {
						_ = cs.Close(context.WithoutCancel(ctx))
						return err
					}
					ckptTok, pending = mp.Token, nil
				}
				if held != nil && !reasm.Pending() && cs.RemainingBatchLength() == 0 {
					// The batch is done and its postBatchResumeToken moved
					// past the held event: the server scanned to the end of
					// its oplog, and a transaction's events all come from
					// its commit entry, so the held event was the last.
					// (A batch cut by size ends at the last event's token.)
					if pbrt := cs.ResumeToken(); len(pbrt) > 0 && !bytes.Equal(pbrt, heldSt.Token) {
						if err := release(true); err != nil {
							_ = cs.Close(context.WithoutCancel(ctx))
							return err
						}
					}
				}
			} else if err := cs.Err(); err != nil {
				_ = cs.Close(context.WithoutCancel(ctx))
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if mongox.IsHistoryLost(err) {
					// (a held event is not published: its checkpoint is not
					// committed either, so a restart reads it again)
					return fmt.Errorf("%w (%v)", ErrHistoryLost, err)
				}
				if !mongox.IsTransient(err) {
					return fmt.Errorf("reading the change stream: %w", err)
				}
				s.cfg.Metrics.Retries.WithLabelValues("change_stream").Inc()
				s.log.Warn("change stream error; reopening after the last event read", "err", err)
				if reasm.Pending() {
					// Resume before the split event: its fragments come again.
					reasm = Reassembler{}
				}
				reopen = true
				continue
			} else if held != nil && !reasm.Pending() {
				// Idle stream: the held event was its transaction's last.
				if err := release(true); err != nil {
					_ = cs.Close(context.WithoutCancel(ctx))
					return err
				}
			} else if cs.ID() == 0 {
				s.log.Warn("the server closed the change stream; reopening it")
				reopen = true
				continue
			} else if !reasm.Pending() && time.Since(lastEmit) >= s.cfg.Heartbeat {
				// Quiet: checkpoint the postBatchResumeToken.
				if pbrt := cs.ResumeToken(); len(pbrt) > 0 && !bytes.Equal(pbrt, ckptTok) {
					ct := lastTime
					if t, ok := TokenTime(pbrt); ok {
						ct = t
					}
					pending = state(bson.Raw(append([]byte(nil), pbrt...)), ct)
					tok = pending.Token
				}
			}
			if pending != nil && held == nil && !reasm.Pending() && time.Since(lastEmit) >= s.cfg.Heartbeat {
				p := pending
				if err := send(checkpoint.Item{State: []checkpoint.StateUpdate{{Key: checkpoint.KeyStream, Value: p}}, Heartbeat: true,
					Event: nil}); err != nil {
					_ = cs.Close(context.WithoutCancel(ctx))
					return err
				}
				ckptTok, pending = p.Token, nil
				lastTime = p.ClusterTime
			}
		}
		_ = cs.Close(context.WithoutCancel(ctx))
	}
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
