package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
)

// Tolerance is what the sink does with a record it cannot apply.
type Tolerance string

const (
	ToleranceNone Tolerance = "none" // stop with an error, commit nothing past the record
	ToleranceAll  Tolerance = "all"  // send it to the dead-letter topic and go on
)

// Config is how the consumer reads the log.
type Config struct {
	Group        string
	TopicRegex   string   // topics to consume (Go regexp, anchored by the caller)
	ExcludeRegex []string // topics never to consume even when TopicRegex matches
	StartFrom    string   // "earliest" or "latest": where a partition without a committed offset starts
	BatchSize    int      // events per partition before a flush
	// FlushInterval is how long a partial batch may wait for more events
	// once its partition's queue is empty; 0 flushes it at once (see
	// worker.run).
	FlushInterval time.Duration
	Parallelism   int // concurrent destination flushes
	QueueLimit    int // queued records per partition before its fetches pause
	// QueueMaxBytes bounds the queues in bytes (record keys and values),
	// across the partitions assigned to this member: each queue holds at
	// most its share, QueueMaxBytes / assigned partitions but at least
	// MinQueueBytes; at its share or at QueueLimit records a partition's
	// fetches pause until its worker took the queue (0: no byte bound).
	// Shares, not one sink-wide pause: a worker waiting at a barrier must
	// not stop the partitions whose records it waits for.
	QueueMaxBytes int
	// Fetch bounds what the Kafka client fetches ahead of the queues
	// (kgo.FetchMaxBytes, FetchMaxPartitionBytes, MaxConcurrentFetches;
	// 0: franz-go's defaults, 50 MiB, 1 MiB, one per broker).
	FetchMaxBytes          int32
	FetchMaxPartitionBytes int32
	MaxConcurrentFetches   int
	CommitInterval         time.Duration
	Tolerance              Tolerance
	DLQTopic               string
	// Transactions gathers each source transaction's events and applies
	// them in one destination transaction (txn.go); TxnWait bounds the
	// gathering, TxnMaxEvents its size (beyond either: per event).
	Transactions bool
	TxnWait      time.Duration
	TxnMaxEvents int
}

// Validate checks the settings. It is the one check of them: the sink's
// Config.Validate runs it on the consumer settings it derives from its
// flags, so the messages name those flags.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("group is empty: name the consumer group"))
	}
	if c.TopicRegex == "" {
		errs = append(errs, errors.New("topic-regex is empty: give the topics to consume"))
	} else if _, err := regexp.Compile(c.TopicRegex); err != nil {
		errs = append(errs, fmt.Errorf("topic-regex %q is not a valid regular expression: %w", c.TopicRegex, err))
	}
	for _, x := range c.ExcludeRegex {
		if _, err := regexp.Compile(x); err != nil {
			errs = append(errs, fmt.Errorf("exclude regex %q: %w", x, err))
		}
	}
	if c.StartFrom != "earliest" && c.StartFrom != "latest" {
		errs = append(errs, fmt.Errorf("start-from %q: use earliest or latest", c.StartFrom))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch-size %d: must be at least 1", c.BatchSize))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("flush-interval %v: must be 0 (flush as soon as the partition has nothing more queued) or positive", c.FlushInterval))
	}
	if c.Parallelism < 1 {
		errs = append(errs, fmt.Errorf("parallelism %d: must be at least 1", c.Parallelism))
	}
	if c.FetchMaxBytes < 0 || c.FetchMaxPartitionBytes < 0 || c.QueueMaxBytes < 0 || c.MaxConcurrentFetches < 0 {
		errs = append(errs, fmt.Errorf("fetch-max-bytes %d, fetch-max-partition-bytes %d, queue-max-bytes %d, max-concurrent-fetches %d: none may be negative",
			c.FetchMaxBytes, c.FetchMaxPartitionBytes, c.QueueMaxBytes, c.MaxConcurrentFetches))
	}
	if c.Tolerance != ToleranceNone && c.Tolerance != ToleranceAll {
		errs = append(errs, fmt.Errorf("error-tolerance %q: use none or all", c.Tolerance))
	}
	if c.Transactions && c.TxnWait <= 0 {
		errs = append(errs, fmt.Errorf("transaction-wait %v: must be positive", c.TxnWait))
	}
	if c.Transactions && c.TxnMaxEvents < 1 {
		errs = append(errs, fmt.Errorf("transaction-max-events %d: must be at least 1", c.TxnMaxEvents))
	}
	if c.Tolerance == ToleranceAll && c.DLQTopic == "" {
		errs = append(errs, errors.New("error-tolerance all needs a dead-letter topic: set dlq-topic"))
	}
	return errors.Join(errs...)
}

// Decoder turns record values into events (schema.Serde).
type Decoder interface {
	DecodeValue(enc schema.Encoding, value []byte) (*schema.Event, error)
}

// DataWriter applies batches of disjoint keys (of different partitions of
// one topic) in shared bulk writes and returns once the destination
// acknowledged them (apply.Writer).
type DataWriter interface {
	Flush(ctx context.Context, bs ...*apply.Batch) (apply.Result, error)
}

// TxnWriter applies a batch in one destination multi-document transaction
// (apply.Writer.FlushTxn). An error wrapping apply.ErrRejected means the
// transaction was aborted because the destination rejected a write.
type TxnWriter interface {
	FlushTxn(ctx context.Context, b *apply.Batch) (apply.Result, error)
}

// BarrierApplier applies a DDL or marker once and records it (apply.DDLApplier).
// Apply returns only after the destination acknowledged the change.
type BarrierApplier interface {
	Apply(ctx context.Context, topic string, ev *schema.Event) error
}

// DeadLetters stores records that cannot be applied. Send returns after the
// record is durably stored.
type DeadLetters interface {
	Send(ctx context.Context, r *kgo.Record, reason error) error
}

var (
	_ Decoder        = (*schema.Serde)(nil)
	_ DataWriter     = (*apply.Writer)(nil)
	_ TxnWriter      = (*apply.Writer)(nil)
	_ BarrierApplier = (*apply.DDLApplier)(nil)
)

// Deps are the consumer's collaborators.
type Deps struct {
	KafkaOpts   []kgo.Opt // connection options (brokers, TLS, SASL)
	Decoder     Decoder
	Writer      DataWriter
	TxnWriter   TxnWriter // required with Config.Transactions
	Barriers    BarrierApplier
	DeadLetters DeadLetters // nil unless Tolerance is all
	NSMap       apply.NSMap
	Metrics     *metrics.Metrics
	Log         *slog.Logger
}

// Consumer reads the log as a member of a consumer group and applies it. See
// the package documentation for its guarantees.
type Consumer struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics.Metrics
	cl   *kgo.Client
	offs *offsets
	sem  chan struct{}

	runCtx context.Context
	fail   func(error)

	mu       sync.Mutex
	workers  map[tp]*worker
	barriers map[string]*barrier
	groups   map[string]*flushGroup // per topic: shared bulk writes (group.go)
	sessWG   sync.WaitGroup
	sessCtx  context.Context
	sessStop context.CancelFunc
	paused   map[tp]bool
	progress map[tp]*partProgress
	txns     *txnCoord // this session's transactions (nil without Config.Transactions)
}

// New returns a consumer; Run starts it.
func New(cfg Config, deps Deps) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Transactions && deps.TxnWriter == nil {
		return nil, errors.New("transactions need a transaction writer")
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 4 * cfg.BatchSize
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	c := &Consumer{cfg: cfg, deps: deps, log: deps.Log, m: deps.Metrics, sem: make(chan struct{}, cfg.Parallelism),
		workers: map[tp]*worker{}, barriers: map[string]*barrier{}, groups: map[string]*flushGroup{}, paused: map[tp]bool{}, progress: map[tp]*partProgress{}}
	return c, nil
}

// Run consumes until ctx ends (returning nil) or a fatal error: a record
// that cannot be applied with tolerance none, a destination or Kafka failure
// that outlasted its retries. Offsets acknowledged by the destination are
// committed before it returns.
func (c *Consumer) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.runCtx = runCtx
	var failOnce sync.Once
	var fatal error
	c.fail = func(err error) {
		failOnce.Do(func() {
			c.log.Error("sink stopping", "err", err)
			fatal = err
			cancel(err)
		})
	}

	start := kgo.NewOffset().AtStart()
	if c.cfg.StartFrom == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	opts := append([]kgo.Opt{}, c.deps.KafkaOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(c.cfg.TopicRegex),
		kgo.ConsumeExcludeTopics(c.cfg.ExcludeRegex...),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A partition resumed after a pause (a full queue) joins the next
		// fetch, not the one in flight: with franz-go's 5 s default the
		// last busy partitions of a snapshot sat idle for 2-3 s behind a
		// fetch long-polling the finished ones (a third of the end-to-end
		// benchmark). Idle, this is ten cheap empty fetches a second.
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(NamespaceBalancer{}),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.MetadataMinAge(time.Second),
		// New namespace topics of a log already consumed are found within
		// 5 s; a sink that knows no topic of its log yet polls faster
		// (discover).
		kgo.MetadataMaxAge(5*time.Second),
	)
	if c.cfg.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(c.cfg.FetchMaxBytes))
	}
	if c.cfg.FetchMaxPartitionBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(c.cfg.FetchMaxPartitionBytes))
	}
	if c.cfg.MaxConcurrentFetches > 0 {
		opts = append(opts, kgo.MaxConcurrentFetches(c.cfg.MaxConcurrentFetches))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating Kafka consumer: %w", err)
	}
	c.cl = cl
	c.offs = newOffsets(c.commitSync)

	go c.discover(runCtx)

	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		t := time.NewTicker(c.cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := c.offs.flush(runCtx); err != nil && runCtx.Err() == nil {
					c.log.Warn("periodic offset commit failed; will retry", "err", err)
				}
			}
		}
	}()

	for runCtx.Err() == nil {
		fs := cl.PollRecords(runCtx, 10000)
		if fs.IsClientClosed() {
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if kafkax.IsAuthorizationFailure(err) || errors.Is(err, kerr.SaslAuthenticationFailed) {
				// A missing ACL or wrong credentials never heal by retrying: stop
				// with the permission to grant (nothing was applied from there,
				// so nothing is lost; the committed offsets stay where they were).
				res := kafkax.Topic(t)
				if t == "" {
					res = kafkax.Group(c.cfg.Group)
				}
				c.fail(fmt.Errorf("consuming: %w", kafkax.Denied(err, "READ", res)))
				return
			}
			c.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			c.m.Retries.WithLabelValues("kafka").Inc()
		})
		// Every partition of this poll is expected before any worker gets
		// its records, so the first to flush waits for the others' batches
		// (group.go) instead of writing alone.
		fs.EachPartition(c.expect)
		fs.EachPartition(c.dispatch)
		cl.AllowRebalance()
	}

	<-commitDone
	// Stop the workers (in-flight flushes finish) and commit what was acked:
	// LeaveGroup runs the revoke callback.
	leaveCtx, leaveCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer leaveCancel()
	c.stopSession()
	if err := c.offs.flush(leaveCtx); err != nil {
		c.log.Warn("final offset commit failed; the records after the last commit will be applied again (idempotently)", "err", err)
	}
	_ = cl.LeaveGroupContext(leaveCtx)
	cl.Close()
	if fatal != nil {
		return fatal
	}
	return nil
}

// DiscoverInterval is how often a sink that knows no topic of its log yet
// asks the brokers for their topics.
const DiscoverInterval = 200 * time.Millisecond

// discover refreshes the topic metadata every DiscoverInterval for as long
// as no topic matches the subscription. A sink usually starts next to a
// source that creates the log's topics only after planning its snapshot;
// at the regular metadata refresh (every 5 s) it found them up to 5 s late,
// which was most of the time to the first document on the destination
// (docs/benchmarks.md, issue 21). Once a topic is known the poll stops: a
// member left without partitions (more members than namespaces) must not
// keep asking, and later namespaces are found by the regular refresh. Each
// poll is one Metadata request for every topic of the cluster (a regex
// subscription lists them all).
func (c *Consumer) discover(ctx context.Context) {
	t := time.NewTicker(DiscoverInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(c.cl.GetConsumeTopics()) > 0 {
			return
		}
		c.cl.ForceMetadataRefresh()
	}
}

func (c *Consumer) commitSync(ctx context.Context, offs map[string]map[int32]kgo.EpochOffset) error {
	var rerr error
	c.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && rerr == nil {
					rerr = fmt.Errorf("topic %s partition %d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if rerr != nil {
		c.m.Commits.WithLabelValues("error").Inc()
	} else {
		c.m.Commits.WithLabelValues("ok").Inc()
	}
	return rerr
}

// MinQueueBytes is the least byte share of Config.QueueMaxBytes a
// partition's queue gets, however many partitions are assigned: below it
// bulk writes would shrink to a few documents.
const MinQueueBytes = 256 << 10

// queueFull reports whether a partition's queue of n records and bytes
// reached its bounds, with assigned partitions sharing QueueMaxBytes.
func (c Config) queueFull(n, bytes, assigned int) bool {
	if n >= c.QueueLimit {
		return true
	}
	return c.QueueMaxBytes > 0 && bytes >= max(c.QueueMaxBytes/max(1, assigned), MinQueueBytes)
}

// expect tells a partition's flush group that its worker is about to get
// records.
func (c *Consumer) expect(p kgo.FetchTopicPartition) {
	if len(p.Records) == 0 {
		return
	}
	c.mu.Lock()
	w := c.workers[tp{p.Topic, p.Partition}]
	c.mu.Unlock()
	if w != nil {
		w.group.expect(p.Partition)
	}
}

// flushGroup returns topic's flush group, made on first use. Call with mu
// held.
func (c *Consumer) flushGroup(topic string) *flushGroup {
	g := c.groups[topic]
	if g == nil {
		g = newFlushGroup(c.cfg.BatchSize, groupMaxWait, c.writeShared)
		c.groups[topic] = g
	}
	return g
}

// writeShared applies the batches of a flush group's write. It runs on the
// run context, so that a revocation waits for a write instead of abandoning
// it half-way; ctx (the session's) only ends the wait for a turn.
func (c *Consumer) writeShared(ctx context.Context, bs []*apply.Batch) (apply.Result, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return apply.Result{}, ctx.Err()
	}
	defer func() { <-c.sem }()
	return c.deps.Writer.Flush(c.runCtx, bs...)
}

// dispatch hands one partition's fetched records to its worker.
func (c *Consumer) dispatch(p kgo.FetchTopicPartition) {
	key := tp{p.Topic, p.Partition}
	c.mu.Lock()
	w := c.workers[key]
	if pp := c.progress[key]; pp != nil {
		pp.setLastStable(p.LastStableOffset, p.HighWatermark)
	}
	assigned := len(c.workers)
	c.mu.Unlock()
	if w == nil || len(p.Records) == 0 {
		return
	}
	if n, bytes := w.q.push(p.Records); c.cfg.queueFull(n, bytes, assigned) {
		c.mu.Lock()
		if !c.paused[key] {
			c.paused[key] = true
			c.cl.PauseFetchPartitions(map[string][]int32{key.topic: {key.partition}})
		}
		c.mu.Unlock()
	}
}

// drained is called by a worker that emptied its queue.
func (c *Consumer) drained(key tp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused[key] {
		delete(c.paused, key)
		c.cl.ResumeFetchPartitions(map[string][]int32{key.topic: {key.partition}})
	}
}

func (c *Consumer) assigned(_ context.Context, _ *kgo.Client, as map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessStop == nil {
		c.sessCtx, c.sessStop = context.WithCancel(c.runCtx)
		if c.cfg.Transactions {
			c.txns = newTxnCoord(c.cfg.TxnWait, c.cfg.TxnMaxEvents, c.txnResolved)
		}
	}
	ctx := c.sessCtx
	var summary []string
	for topic, parts := range as {
		b := c.barriers[topic]
		n := len(parts)
		if b != nil {
			n += b.parts
		}
		c.barriers[topic] = newBarrier(topic, n)
		summary = append(summary, fmt.Sprintf("%s%v", topic, parts))
		for _, p := range parts {
			key := tp{topic, p}
			pp := c.progress[key]
			if pp == nil {
				pp = &partProgress{}
				c.progress[key] = pp
			}
			w := &worker{c: c, key: key, q: newQueue(), group: c.flushGroup(topic), batch: apply.NewBatch(c.deps.NSMap), recs: map[int64]*kgo.Record{}, prog: pp, txns: c.txns}
			c.workers[key] = w
			c.sessWG.Add(1)
			go func() {
				defer c.sessWG.Done()
				if err := w.run(ctx); err != nil && ctx.Err() == nil {
					c.fail(err)
				}
			}()
		}
	}
	sort.Strings(summary)
	c.log.Info("partitions assigned", "group", c.cfg.Group, "partitions", strings.Join(summary, " "))
}

// stopSession stops every worker and waits for them: in-flight flushes
// finish (they run on the run context), queued records are dropped (they are
// not acknowledged, so the next owner reads them again).
func (c *Consumer) stopSession() {
	c.mu.Lock()
	stop := c.sessStop
	c.sessStop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	c.sessWG.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workers = map[tp]*worker{}
	c.barriers = map[string]*barrier{}
	c.groups = map[string]*flushGroup{}
	c.txns = nil // gathered, unapplied events are not acknowledged: the next owner reads them again
	var paused = map[string][]int32{}
	for k := range c.paused {
		paused[k.topic] = append(paused[k.topic], k.partition)
	}
	if len(paused) > 0 {
		c.cl.ResumeFetchPartitions(paused)
	}
	c.paused = map[tp]bool{}
}

func (c *Consumer) revoked(ctx context.Context, _ *kgo.Client, rs map[string][]int32) {
	c.stopSession()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.offs.flush(cctx); err != nil {
		c.log.Warn("committing offsets at revocation failed; the new owner re-applies from the previous commit (idempotently)", "err", err)
	}
	c.offs.forget(rs)
	c.forgetProgress(rs)
	c.log.Info("partitions revoked", "group", c.cfg.Group, "topics", len(rs))
}

func (c *Consumer) lost(_ context.Context, _ *kgo.Client, ls map[string][]int32) {
	c.stopSession()
	c.offs.forget(ls)
	c.forgetProgress(ls)
	c.log.Warn("partitions lost (session expired); their acknowledged but uncommitted records will be applied again", "group", c.cfg.Group, "topics", len(ls))
}
