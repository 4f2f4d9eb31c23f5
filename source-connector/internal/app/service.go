package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/capture"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/source-connector/internal/metrics"
	"github.com/logbridge/logbridge/source-connector/internal/publish"
	"github.com/logbridge/logbridge/source-connector/internal/snapshot"
)

// Wire versions of the server features the stream uses when available.
const (
	wireShowExpandedEvents = 17 // MongoDB 6.0
	wireSplitLargeEvent    = 21 // MongoDB 7.0
)

// Service is the source connector. Create it with New and call Run once.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	filter  *nsfilter.Filter
	router  *publish.Router
	// reads throttles the snapshot (MaxReadRate, SetReadRate).
	reads *throttle.Limiter

	marks chan *markRequest

	mu               sync.Mutex
	status           Status
	progress         map[string]*NamespaceProgress
	pendingMarkers   []string        // queued marker ids, in order, not yet committed
	markersCommitted map[string]bool // marker ids whose transaction committed
}

// New validates cfg and returns a service. reg receives the metrics (nil:
// a private registry); log may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := cfg.Filter
	if f == nil {
		f, _ = nsfilter.New(cfg.Include, cfg.Exclude)
	}
	r, _ := publish.NewRouter(cfg.TopicPrefix, cfg.TopicRoute)
	m := metrics.New(reg)
	setRateGauge(m, cfg.MaxReadRate)
	s := &Service{
		cfg: cfg, log: log, metrics: m, filter: f, router: r, reads: throttle.New(cfg.MaxReadRate),
		status:           Status{Phase: PhaseStarting},
		progress:         map[string]*NamespaceProgress{},
		marks:            make(chan *markRequest),
		markersCommitted: map[string]bool{},
	}
	if reg != nil {
		if err := reg.Register(newStatusCollector(s)); err != nil {
			return nil, fmt.Errorf("registering the status metrics: %w", err)
		}
	}
	return s, nil
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// ReadRate is the current snapshot read throttle.
func (s *Service) ReadRate() throttle.Rate { return s.reads.Rate() }

// SetReadRate changes the snapshot read throttle while the service runs.
func (s *Service) SetReadRate(r throttle.Rate) {
	if s.reads.Rate() == r {
		return
	}
	s.reads.Set(r)
	setRateGauge(s.metrics, r)
	s.log.Info("snapshot read throttle changed", "maxReadRate", r.String())
}

func setRateGauge(m *metrics.Metrics, r throttle.Rate) {
	m.MaxReadRate.WithLabelValues("docs").Set(r.Docs)
	m.MaxReadRate.WithLabelValues("bytes").Set(r.Bytes)
}

// Run runs the connector until ctx ends (then it returns ctx's error) or a
// fatal error. A Service runs once.
func (s *Service) Run(ctx context.Context) (err error) {
	s.mu.Lock()
	s.status.StartedAt = time.Now()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if ctx.Err() != nil {
			s.status.Phase = PhaseStopped
		} else if err != nil {
			s.status.Phase = PhaseFailed
			s.status.Error = err.Error()
		}
		s.mu.Unlock()
	}()

	s.log.Info("starting source connector", "source", mongox.Redact(s.cfg.SourceURI), "kafka", strings.Join(s.cfg.Kafka.Brokers, ","),
		"prefix", s.cfg.TopicPrefix, "filter", s.filter.String(), "encoding", s.cfg.Encoding)
	cl, err := mongox.Connect(ctx, "source", s.cfg.SourceURI)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Disconnect(context.WithoutCancel(ctx)) }()
	topo, err := mongox.RequireChangeStreams(ctx, cl)
	if err != nil {
		return fmt.Errorf("checking the source: %w", err)
	}
	source := s.cfg.SourceName
	if source == "" {
		source = topo.SetName
		if topo.IsMongos {
			source = "mongos"
		}
	}

	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.Encoding(s.cfg.Encoding), Registry: s.cfg.SchemaRegistry,
		ConfluentKeys: s.cfg.ConfluentKeys})
	if err != nil {
		return fmt.Errorf("setting up the %s encoding: %w", s.cfg.Encoding, err)
	}
	if loses := serde.Encoding().Loses(); loses != "" {
		s.log.Warn("the encoding is for other consumers of the log, not for a sync: a logbridge sink refuses to apply it",
			"encoding", s.cfg.Encoding, "loses", loses)
	}
	kopts, err := s.cfg.Kafka.ClientOpts()
	if err != nil {
		return err
	}
	kopts = append(kopts, kgo.ProducerBatchCompression(compressionCodecs[s.cfg.Compression]))
	pub, st, err := publish.Open(ctx, publish.Config{
		KafkaOpts:         kopts,
		TransactionalID:   s.cfg.transactionalID(),
		Router:            s.router,
		Partitions:        int32(s.cfg.Partitions),
		ReplicationFactor: int16(s.cfg.ReplicationFactor),
		Serde:             serde,
		Logger:            s.log,
		Metrics:           s.metrics,
		Heartbeat: publish.HeartbeatConfig{Topic: s.cfg.HeartbeatTopic, DataTopics: s.cfg.HeartbeatDataTopics,
			Source: source, Epoch: s.cfg.SyncEpoch},
	})
	if err != nil {
		return fmt.Errorf("opening the Kafka publisher: %w", err)
	}
	defer pub.Close()
	s.log.Info("source state read", "records", st.RecordsRead, "planned", st.Planned(), "snapshotDone", st.SnapshotDone(),
		"resumeToken", st.Stream != nil)

	if st.Planned() && st.Meta.Epoch != s.cfg.SyncEpoch {
		s.log.Warn("the state was written with another sync epoch; keeping the stored epoch for this prefix", "stored", st.Meta.Epoch, "configured", s.cfg.SyncEpoch)
	}
	if !st.Planned() {
		s.setPhase(PhasePlanning)
		if st, err = s.plan(ctx, cl, topo, pub, source); err != nil {
			return err
		}
	}
	epoch := st.Meta.Epoch
	t0 := st.Meta.T0
	s.mu.Lock()
	s.status.T0 = t0
	s.mu.Unlock()
	s.initProgress(st)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.progressLoop(gctx); return nil })
	g.Go(func() error {
		if !st.SnapshotDone() {
			s.setPhase(PhaseSnapshot)
			if err := s.snapshot(gctx, cl, topo, pub, st, source, epoch); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.status.SnapshotDone = true
		s.mu.Unlock()
		s.setPhase(PhaseStreaming)
		return s.stream(gctx, cl, topo, pub, st, source, epoch)
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *Service) sourceErr(action string, err error) error {
	if mongox.IsAuthError(err) {
		return fmt.Errorf("%s: %w: %w", action, ErrSourcePrivileges, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// plan takes T0, lists the namespaces and commits the plan with the
// collections' DDL records.
func (s *Service) plan(ctx context.Context, cl *mongo.Client, topo mongox.Topology, pub *publish.Publisher, source string) (_ *checkpoint.State, err error) {
	// T0 is the time of a no-op oplog entry (appendOplogNote), a real oplog
	// time as with mongomirror and mongosync, unless the user set it.
	var t0 bson.Timestamp
	if s.cfg.StartAt != nil {
		t0 = *s.cfg.StartAt
	} else if t0, err = mongox.ClusterTime(ctx, cl, "logbridge source connector: snapshot T0"); err != nil {
		return nil, s.sourceErr("taking T0", err)
	}
	colls, err := snapshot.ListCollections(ctx, cl, s.filter, topo.IsMongos)
	if err != nil {
		return nil, s.sourceErr("listing namespaces", err)
	}
	meta := &checkpoint.Meta{Version: int32(version.Metadata()), T0: t0, Epoch: s.cfg.SyncEpoch, Source: source, PlannedAt: time.Now().UTC()}
	var items []checkpoint.Item
	var total int64
	for _, c := range colls {
		var ranges []*checkpoint.RangeState
		if s.cfg.StartAt == nil {
			if ranges, err = snapshot.PlanRanges(ctx, cl, c, s.cfg.SnapshotRangeDocs); err != nil {
				return nil, s.sourceErr("planning snapshot ranges", err)
			}
		}
		topic, _, err := pub.Topic(ctx, c.NS)
		if err != nil {
			return nil, err
		}
		nsState := &checkpoint.NamespaceState{DB: c.NS.DB, Coll: c.NS.Coll, Topic: topic, Type: c.Type, InSnapshot: true,
			EstimatedDocs: c.EstimatedDocs, EstimatedBytes: c.EstimatedBytes, Ranges: len(ranges)}
		states := []checkpoint.StateUpdate{{Key: checkpoint.NSKey(c.NS.String()), Value: nsState}}
		for _, r := range ranges {
			states = append(states, checkpoint.StateUpdate{Key: r.Key(), Value: r})
		}
		id := fmt.Sprintf("snapshot/%d.%d/%s", t0.T, t0.I, c.NS)
		items = append(items, checkpoint.Item{
			Event: &schema.Event{Op: schema.OpDDL, NS: c.NS, ClusterTime: t0, Epoch: s.cfg.SyncEpoch, Source: source,
				DDL: &schema.DDL{Kind: schema.DDLCreate, Options: c.Options, ID: id + "/create"}},
			Broadcast: true, NSType: c.Type, State: states,
		})
		if !s.indexesAfterCopy() {
			items = append(items, indexItems(c, t0, s.cfg.SyncEpoch, source)...)
		}
		total += c.EstimatedDocs
		s.log.Info("planned namespace", "ns", c.NS.String(), "type", c.Type, "topic", topic, "estimatedDocs", c.EstimatedDocs, "ranges", len(ranges))
	}
	items = append(items, checkpoint.Item{State: []checkpoint.StateUpdate{{Key: checkpoint.KeyMeta, Value: meta}}})
	if err := pub.CommitItems(ctx, items...); err != nil {
		return nil, fmt.Errorf("committing the snapshot plan: %w", err)
	}
	s.log.Info("snapshot planned", "t0", fmt.Sprintf("%d.%d", t0.T, t0.I), "namespaces", len(colls), "estimatedDocs", total)
	return pub.ReadState(ctx)
}

// indexesAfterCopy: the index definitions follow the snapshot's documents.
// An epoch without a copy (StartAt) publishes them with the metadata.
func (s *Service) indexesAfterCopy() bool { return s.cfg.IndexesAfterCopy && s.cfg.StartAt == nil }

// indexItems is the createIndexes record of a collection (none for a view
// or a collection without indexes).
func indexItems(c snapshot.Collection, t0 bson.Timestamp, epoch int64, source string) []checkpoint.Item {
	if c.Type == checkpoint.TypeView || len(c.Indexes) == 0 {
		return nil
	}
	id := fmt.Sprintf("snapshot/%d.%d/%s", t0.T, t0.I, c.NS)
	return []checkpoint.Item{{
		Event: &schema.Event{Op: schema.OpDDL, NS: c.NS, ClusterTime: t0, Epoch: epoch, Source: source,
			DDL: &schema.DDL{Kind: schema.DDLCreateIndexes, Indexes: c.Indexes, ID: id + "/createIndexes"}},
		Broadcast: true, NSType: c.Type,
	}}
}

// snapshot copies the pending ranges and commits the snapshotDone markers.
func (s *Service) snapshot(ctx context.Context, cl *mongo.Client, topo mongox.Topology, pub *publish.Publisher, st *checkpoint.State, source string, epoch int64) error {
	shardKeys := map[string]bson.Raw{}
	if topo.IsMongos {
		colls, err := snapshot.ListCollections(ctx, cl, s.filter, true)
		if err != nil {
			return s.sourceErr("reading shard keys", err)
		}
		for _, c := range colls {
			if len(c.ShardKey) > 0 {
				shardKeys[c.NS.String()] = c.ShardKey
			}
		}
	}
	var pending []*checkpoint.RangeState
	for _, r := range st.SortedRanges() {
		if !r.Done {
			pending = append(pending, r)
		}
	}
	s.log.Info("snapshot starting", "pendingRanges", len(pending), "totalRanges", len(st.Ranges), "parallelism", s.cfg.SnapshotParallelism)
	start := time.Now()
	// Each item is a reader's chunk (up to a driver batch): two per reader
	// keep every reader busy while the publisher folds.
	items := make(chan checkpoint.Item, 2*s.cfg.SnapshotParallelism)
	rd := &snapshot.Reader{Client: cl, T0: st.Meta.T0, Parallelism: s.cfg.SnapshotParallelism, BatchSize: int32(s.cfg.SnapshotBatchSize),
		Epoch: epoch, Source: source, ShardKeys: shardKeys, Logger: s.log,
		OnRetry: func(error) { s.metrics.Retries.WithLabelValues("snapshot_read").Inc() },
		Encode:  pub.EncodeDoc}
	g, gctx := errgroup.WithContext(ctx)
	read := make(chan checkpoint.Item, cap(items))
	g.Go(func() error {
		defer close(read)
		if err := rd.Run(gctx, pending, read); err != nil {
			return s.sourceErr("snapshot", err)
		}
		return nil
	})
	// The read throttle paces the readers' chunks on their way to the
	// publisher: the bounded channels then hold the readers back.
	g.Go(func() error {
		defer close(items)
		for it := range read {
			var bytes int
			for _, d := range it.Docs {
				bytes += d.SourceBytes
			}
			if err := s.reads.Wait(gctx, len(it.Docs), bytes); err != nil {
				return err
			}
			select {
			case items <- it:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		return pub.Run(gctx, items, s.limits(), s.onCommit)
	})
	if err := g.Wait(); err != nil {
		return err
	}

	// Every range is committed: the snapshotDone markers.
	var docs int64
	var marks []checkpoint.Item
	for _, n := range s.Status().Namespaces {
		docs += n.CopiedDocs
	}
	data, _ := bson.Marshal(bson.D{{Key: "t0", Value: st.Meta.T0}, {Key: "documents", Value: docs}})
	t0 := st.Meta.T0
	if s.indexesAfterCopy() {
		// buildIndexes afterDataCopy: the indexes as they are now, after
		// every document of the copy and in the same transaction as the
		// snapshotDone markers (a crash before it commits redoes both).
		// An index created or dropped during the copy is also in the
		// change stream after T0, which follows and converges.
		colls, err := snapshot.ListCollections(ctx, cl, s.filter, topo.IsMongos)
		if err != nil {
			return s.sourceErr("listing indexes after the copy", err)
		}
		// The plan as committed (st): the publisher's in-memory catalog
		// learns namespaces before their plan records say InSnapshot.
		for _, c := range colls {
			if n := st.Namespaces[c.NS.String()]; n != nil && n.InSnapshot {
				marks = append(marks, indexItems(c, t0, epoch, source)...)
			}
		}
		s.log.Info("buildIndexes afterDataCopy: index definitions published after the copy", "items", len(marks))
	}
	id := fmt.Sprintf("snapshotDone/%d.%d", t0.T, t0.I)
	for _, n := range pub.Catalog("") {
		if !n.InSnapshot {
			continue
		}
		marks = append(marks, checkpoint.Item{
			Event: &schema.Event{Op: schema.OpMarker, NS: n.NS(), ClusterTime: t0, Epoch: epoch, Source: source,
				Marker: &schema.Marker{Kind: schema.MarkerSnapshotDone, ID: id, Data: data}},
			Broadcast: true,
		})
	}
	marks = append(marks, checkpoint.Item{State: []checkpoint.StateUpdate{{Key: checkpoint.KeySnapshot,
		Value: &checkpoint.SnapshotState{Done: true, DoneAt: time.Now().UTC(), Docs: docs}}}})
	if err := pub.CommitItems(ctx, marks...); err != nil {
		return fmt.Errorf("committing the snapshotDone markers: %w", err)
	}
	el := time.Since(start)
	s.log.Info("snapshot done", "documents", docs, "elapsed", el.Round(time.Millisecond).String(),
		"docsPerSecond", int64(float64(docs)/max(el.Seconds(), 1e-3)))
	s.mu.Lock()
	for _, n := range s.progress {
		n.Done = true
		n.RangesDone = n.RangesTotal
	}
	s.mu.Unlock()
	return nil
}

// stream runs the change stream into the publisher.
func (s *Service) stream(ctx context.Context, cl *mongo.Client, topo mongox.Topology, pub *publish.Publisher, st *checkpoint.State, source string, epoch int64) error {
	start := capture.Start{T0: st.Meta.T0, After: st.Stream}
	stream := capture.New(capture.Config{
		Client:                   cl,
		Filter:                   s.filter,
		FullDocument:             s.cfg.FullDocument,
		FullDocumentBeforeChange: s.cfg.FullDocumentBeforeChange,
		ShowExpandedEvents:       topo.MaxWireVersion >= wireShowExpandedEvents,
		SplitLargeEvents:         topo.MaxWireVersion >= wireSplitLargeEvent,
		Heartbeat:                s.cfg.HeartbeatInterval,
		BatchWait:                s.cfg.StreamBatchWait,
		Epoch:                    epoch,
		Source:                   source,
		Logger:                   s.log,
		Metrics:                  s.metrics,
	})
	if topo.MaxWireVersion < wireShowExpandedEvents {
		s.log.Warn("the source is older than MongoDB 6.0 (no showExpandedEvents): create, createIndexes, dropIndexes and modify events are not streamed; only drop, rename and dropDatabase", "maxWireVersion", topo.MaxWireVersion)
	}
	raw := make(chan checkpoint.Item, 1024)
	items := make(chan checkpoint.Item, 16)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(raw)
		return stream.Run(gctx, start, raw)
	})
	g.Go(func() error { return s.mergeMarks(gctx, pub, epoch, source, raw, items) })
	g.Go(func() error { return pub.Run(gctx, items, s.limits(), s.onCommit) })
	return g.Wait()
}

func (s *Service) limits() publish.Limits {
	return publish.Limits{MaxRecords: s.cfg.BatchMaxRecords, MaxBytes: s.cfg.BatchMaxBytes}
}

// onCommit folds a committed batch into the status.
func (s *Service) onCommit(b *publish.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Markers enter the pipeline in order, one item each, so a batch with
	// n marker items commits the n oldest pending ones.
	for i := 0; i < b.MarkerItems && len(s.pendingMarkers) > 0; i++ {
		s.markersCommitted[s.pendingMarkers[0]] = true
		s.pendingMarkers = s.pendingMarkers[1:]
	}
	for ns, st := range b.Snapshot {
		if p := s.progress[ns]; p != nil {
			p.CopiedDocs += st.Docs
			p.CopiedBytes += st.Bytes
		}
	}
	for _, u := range rangeUpdates(b) {
		if u.Done {
			if p := s.progress[u.NS]; p != nil && p.RangesDone < p.RangesTotal {
				p.RangesDone++
				p.Done = p.RangesDone == p.RangesTotal
			}
		}
	}
	for op, n := range b.Ops {
		if op != schema.OpSnapshot {
			s.status.EventsPublished += int64(n)
		}
	}
	if b.LastClusterTime.T != 0 && s.status.Phase == PhaseStreaming {
		s.status.LastClusterTime = b.LastClusterTime
		t := time.Unix(int64(b.LastClusterTime.T), 0)
		if b.LastWallTime != 0 {
			t = time.UnixMilli(b.LastWallTime)
		}
		s.status.LastEventTime = t
		s.metrics.StreamLag.Set(max(0, time.Since(t).Seconds()))
	}
}

func rangeUpdates(b *publish.Batch) []*checkpoint.RangeState {
	var out []*checkpoint.RangeState
	for _, k := range b.StateKeys() {
		if v, ok := b.State(k); ok {
			if r, ok := v.(*checkpoint.RangeState); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func (s *Service) initProgress(st *checkpoint.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range st.Namespaces {
		if !n.InSnapshot {
			continue
		}
		s.progress[k] = &NamespaceProgress{NS: k, Topic: n.Topic, Type: n.Type, EstimatedDocs: n.EstimatedDocs,
			EstimatedBytes: n.EstimatedBytes, RangesTotal: n.Ranges, Done: st.SnapshotDone() || n.Ranges == 0}
	}
	for _, r := range st.Ranges {
		p := s.progress[r.NS]
		if p == nil {
			continue
		}
		p.CopiedDocs += r.Docs
		p.CopiedBytes += r.Bytes
		if r.Done {
			p.RangesDone++
		}
	}
	for _, p := range s.progress {
		if p.RangesDone == p.RangesTotal {
			p.Done = true
		}
	}
	s.status.SnapshotDone = st.SnapshotDone()
}

// progressLoop logs copy progress per collection (like mongomirror) during
// the snapshot and the lag while streaming, and keeps the lag gauge fresh.
func (s *Service) progressLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ProgressInterval)
	defer t.Stop()
	lagT := time.NewTicker(time.Second)
	defer lagT.Stop()
	lastLogged := map[string]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-lagT.C:
			if st := s.Status(); st.Phase == PhaseStreaming && !st.LastEventTime.IsZero() {
				s.metrics.StreamLag.Set(st.LagSeconds)
			}
		case <-t.C:
			st := s.Status()
			switch st.Phase {
			case PhaseSnapshot:
				for _, n := range st.Namespaces {
					if n.Done && lastLogged[n.NS] == -1 {
						continue
					}
					if !n.Done && lastLogged[n.NS] == n.CopiedDocs {
						continue
					}
					s.log.Info(fmt.Sprintf("[%s] %s %d/%d (%.1f%%)", bar(n.Percent()), n.NS, n.CopiedDocs, n.EstimatedDocs, n.Percent()),
						"copiedBytes", n.CopiedBytes, "ranges", fmt.Sprintf("%d/%d", n.RangesDone, n.RangesTotal))
					lastLogged[n.NS] = n.CopiedDocs
					if n.Done {
						lastLogged[n.NS] = -1
					}
				}
				ed, cd, _, cb := st.Totals()
				s.log.Info("snapshot progress", "copiedDocs", cd, "estimatedDocs", ed, "copiedBytes", cb)
			case PhaseStreaming:
				s.log.Info("streaming", "lagSeconds", fmt.Sprintf("%.1f", st.LagSeconds), "eventsPublished", st.EventsPublished,
					"lastClusterTime", fmt.Sprintf("%d.%d", st.LastClusterTime.T, st.LastClusterTime.I))
			}
		}
	}
}

func bar(pct float64) string {
	const w = 20
	n := int(pct / 100 * w)
	return strings.Repeat("#", n) + strings.Repeat(".", w-n)
}
