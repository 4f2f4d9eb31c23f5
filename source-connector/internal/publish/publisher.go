package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/checkpoint"
	"github.com/logbridge/logbridge/source-connector/internal/metrics"
)

// MaxRecordBytes is the largest record the producer sends, and the
// max.message.bytes given to the topics it creates (kafkax.MaxRecordBytes).
const MaxRecordBytes = kafkax.MaxRecordBytes

// Config configures a Publisher.
type Config struct {
	// KafkaOpts connect to the cluster (kafkax.Config.ClientOpts).
	KafkaOpts []kgo.Opt
	// TransactionalID of the producer; one connector per id.
	TransactionalID string
	Router          *Router
	// Partitions of data topics created by the publisher.
	Partitions int32
	// ReplicationFactor of created topics; -1 for the broker default.
	ReplicationFactor int16
	// TopicConfigs are extra configs of created data topics.
	TopicConfigs map[string]string
	// Serde encodes values; every record carries its encoding header.
	Serde   *schema.Serde
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Retry bounds the retries of one transaction.
	Retry retry.Policy
	// TransactionTimeout is the broker-side timeout of one transaction.
	TransactionTimeout time.Duration
	// StartupTimeout bounds the first contact with Kafka.
	StartupTimeout time.Duration
	// Heartbeat writes heartbeat records for consumers (off when zero).
	Heartbeat HeartbeatConfig
}

// Publisher writes batches of records and the source state that covers
// them, each batch in one Kafka transaction.
//
// Delivery guarantee: Commit returns nil only when the batch's records and
// state are committed (visible to read_committed consumers); when it returns
// an error, the batch is either entirely committed or entirely absent, and a
// later Open reads which one from the state. Commit is not safe for
// concurrent use (one transaction at a time); Topic and the namespace
// catalog are.
type Publisher struct {
	cfg Config
	log *slog.Logger

	admCl *kgo.Client
	adm   *kadm.Client
	// prods are the transactional producers, used in turn (see
	// SecondTransactionalID); turn indexes the next transaction's.
	prods []*producer
	turn  int

	mu      sync.Mutex
	parts   map[string]int32                      // topic → partitions
	catalog map[string]*checkpoint.NamespaceState // "db.coll" → state, committed or pending
	known   map[schema.Namespace]bool             // the catalog's namespaces (a lookup per record without building "db.coll")
	seq     int64

	hdrs []kgo.RecordHeader // every record's headers (shared: read only)

	// describeOff after DescribeTransactions failed once (see
	// awaitCompletion).
	describeOff bool
}

// producer is one transactional producer of the rotation.
type producer struct {
	id string
	cl *kgo.Client
	// committedAt is when its last transaction's commit returned (see
	// awaitCompletion).
	committedAt time.Time
}

// SecondTransactionalID is the transactional id of the publisher's second
// producer: id + "+2" ("+" cannot occur in a topic prefix, so no other
// prefix's default id, logbridge-source-<prefix>, ends like it).
//
// Why two producers: a commit returns once the transaction coordinator has
// prepared it; the coordinator writes the markers after. The next
// transaction of the same transactional id must not produce before they
// are written (the broker would hold its produce for
// add.partitions.to.txn.retry.backoff.ms, 20 ms by default), so with one
// producer every transaction that follows another within a few
// milliseconds first asks the coordinator (DescribeTransactions): one more
// round trip per transaction, a fifth of the source's CPU while streaming
// at 500 events/s (tests/bench, issue 21). Taking turns, each producer's
// previous commit is two transactions old, which at a streaming pace is
// long enough for the coordinator to have completed it (awaitCompletion
// still asks when it is not). Order is kept: a transaction produces only
// after the previous one committed. Both ids are fenced at Open, so an
// older instance of the connector stops at its next transaction, whichever
// producer it uses. Without WRITE on the second id (an ACL granted for the
// first id alone), the publisher uses one producer and says so in its log.
func SecondTransactionalID(id string) string { return id + "+2" }

// Open connects, makes sure the state topic exists, fences any previous
// producer with the same transactional id (completing or aborting its open
// transaction), and reads the state topic to its end with read_committed
// isolation.
func Open(ctx context.Context, cfg Config) (*Publisher, *checkpoint.State, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = time.Minute
	}
	if cfg.StartupTimeout == 0 {
		cfg.StartupTimeout = 30 * time.Second
	}
	if cfg.Retry.Initial == 0 {
		cfg.Retry = retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: 8}
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 4
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	p := &Publisher{cfg: cfg, log: cfg.Logger, parts: map[string]int32{}, catalog: map[string]*checkpoint.NamespaceState{},
		known: map[schema.Namespace]bool{}, hdrs: []kgo.RecordHeader{cfg.Serde.Header()}}
	var err error
	// A short metadata age: topics this client creates show up quickly.
	if p.admCl, err = kgo.NewClient(append(append([]kgo.Opt{}, cfg.KafkaOpts...), kgo.MetadataMinAge(100*time.Millisecond))...); err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	p.adm = kadm.NewClient(p.admCl)
	fail := func(err error) (*Publisher, *checkpoint.State, error) {
		p.Close()
		return nil, nil, err
	}

	sctx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	if _, err := p.adm.ApiVersions(sctx); err != nil || sctx.Err() != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		if x := kafkax.ExplainConnect(err); x != err {
			return fail(fmt.Errorf("connecting to Kafka: %w", x))
		}
		return fail(fmt.Errorf("%w (%v)", ErrKafkaUnreachable, err))
	}
	st := cfg.Router.StateTopic()
	n, err := ensureTopic(sctx, p.adm, kafkax.TopicSpec{Name: st, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "min.insync.replicas": "1"}})
	if err != nil {
		return fail(fmt.Errorf("source state topic: %w", classify(err)))
	}
	if n != 1 {
		return fail(fmt.Errorf("source state topic %s has %d partitions; it must have exactly 1", st, n))
	}
	first := &producer{id: cfg.TransactionalID}
	if err := p.newProducer(sctx, first); err != nil {
		return fail(err)
	}
	p.prods = []*producer{first}
	second := &producer{id: SecondTransactionalID(cfg.TransactionalID)}
	switch err := p.newProducer(sctx, second); {
	case err == nil:
		p.prods = append(p.prods, second)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		// The principal cannot use the id, so no older instance can either:
		// nothing to fence.
		p.log.Info("transactions use one producer: WRITE on the second transactional id is not granted, so a transaction that follows another at once first asks the coordinator whether the previous one completed (one more round trip); grant it to save that",
			"transactionalId", second.id)
	default:
		// It must be fenced: an older instance of the connector may still
		// use it.
		second.close()
		return fail(err)
	}
	state, err := p.ReadState(ctx)
	if err != nil {
		return fail(err)
	}
	p.seq = state.Producer.Seq
	for k, ns := range state.Namespaces {
		p.catalog[k] = ns
		p.known[ns.NS()] = true
	}
	return p, state, nil
}

// newProducer (re)creates pr's transactional producer and loads its
// producer id, which fences older producers with the same transactional id
// and completes or aborts their open transaction.
func (p *Publisher) newProducer(ctx context.Context, pr *producer) error {
	pr.close()
	opts := append([]kgo.Opt{}, p.cfg.KafkaOpts...)
	opts = append(opts,
		kgo.TransactionalID(pr.id),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.RecordPartitioner(Partitioner()),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		kgo.ProducerLinger(0),
		kgo.RecordRetries(10),
		// Records for a topic created a moment ago wait for the producer's
		// next metadata refresh; franz-go's default minimum age of 5 s
		// stalled every new topic's first transaction for 5 s.
		kgo.MetadataMinAge(200*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("initializing the transactional producer %q: %w (%v)", pr.id, ErrKafkaUnreachable, err)
		}
		return fmt.Errorf("initializing the transactional producer %q (the broker must support transactions): %w", pr.id,
			classify(kafkax.Denied(err, "WRITE", kafkax.TransactionalID(pr.id))))
	}
	pr.cl = cl
	return nil
}

func (pr *producer) close() {
	if pr.cl != nil {
		pr.cl.Close()
		pr.cl = nil
	}
}

// Close releases the clients. An open transaction is aborted by the broker
// (or by the next producer with the same transactional id).
func (p *Publisher) Close() {
	for _, pr := range p.prods {
		pr.close()
	}
	if p.admCl != nil {
		p.admCl.Close()
	}
}

// ReadState reads the state topic from its start to its committed end, and
// includes every transaction this publisher committed: a commit returns
// before the broker has written the transaction's markers, so the last stable
// offset can lag behind it for a moment. Reading before it caught up would
// return an older state (a snapshot plan without its ranges, say), so the
// read is repeated until the state shows this publisher's last sequence.
func (p *Publisher) ReadState(ctx context.Context) (*checkpoint.State, error) {
	deadline := time.Now().Add(p.cfg.TransactionTimeout + 30*time.Second)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		st, err := p.readStateOnce(ctx)
		if err != nil || st.Producer.Seq >= p.seq {
			return st, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the source state topic does not show transaction %d that this publisher committed (it shows %d): %w", p.seq, st.Producer.Seq, ErrKafkaUnreachable)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// stateOffsetsRetry retries listing the state topic's offsets, also while
// the broker does not host its partition yet (UNKNOWN_TOPIC_OR_PARTITION is
// retriable): a topic created a moment ago takes a moment to show up. About
// 17 s in all.
var stateOffsetsRetry = retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second, MaxAttempts: 20}

func (p *Publisher) readStateOnce(ctx context.Context) (*checkpoint.State, error) {
	topic := p.cfg.Router.StateTopic()
	st := checkpoint.NewState()
	var start, end int64
	err := retry.Do(ctx, stateOffsetsRetry, isTransient,
		func(ctx context.Context) error {
			ends, err := p.adm.ListCommittedOffsets(ctx, topic)
			if err != nil {
				return err
			}
			e, ok := ends.Lookup(topic, 0)
			if !ok {
				return kerr.UnknownTopicOrPartition
			}
			if e.Err != nil {
				return e.Err
			}
			starts, err := p.adm.ListStartOffsets(ctx, topic)
			if err != nil {
				return err
			}
			s, ok := starts.Lookup(topic, 0)
			if !ok {
				return kerr.UnknownTopicOrPartition
			}
			if s.Err != nil {
				return s.Err
			}
			start, end = s.Offset, e.Offset
			return nil
		})
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("listing offsets of %s: the broker does not host the topic's partition; a topic deleted and at once created again under the same name can stay unknown for a while (17 s seen on a busy broker): start the connector again in a minute, and if this persists, check the topic (kafka-topics --describe --topic %s): %w", topic, topic, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, classify(kafkax.Denied(err, "DESCRIBE", kafkax.Topic(topic))))
	}
	if end <= start {
		return st, nil
	}
	opts := append([]kgo.Opt{}, p.cfg.KafkaOpts...)
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("state reader: %w", err)
	}
	defer cl.Close()
	idle, readTo := 0, start
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, classify(kafkax.Denied(ferr, "READ", kafkax.Topic(topic))))
		}
		last := int64(-1)
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			if r.Attrs.IsControl() || aerr != nil {
				return
			}
			if err := st.Apply(string(r.Key), r.Value); err != nil {
				aerr = fmt.Errorf("reading %s at offset %d: %w", topic, r.Offset, err)
			}
		})
		if aerr != nil {
			return nil, aerr
		}
		if last >= end-1 {
			return st, nil
		}
		if last < 0 {
			// Control records are kept, so the committed end is always
			// reached (compaction never removes the active segment's
			// tail). A slow broker is waited for; a partial state would
			// mean duplicates or gaps, so stalling is an error, never
			// an early return.
			if idle++; idle >= 60 {
				return nil, fmt.Errorf("reading %s: no progress for a minute at offset %d of %d: %w", topic, readTo, end, ErrKafkaUnreachable)
			}
		} else {
			idle, readTo = 0, last
		}
	}
}

// Topic returns the data topic of ns and its partition count, creating the
// topic (configured partitions, retention.ms=-1) when it does not exist.
func (p *Publisher) Topic(ctx context.Context, ns schema.Namespace) (string, int32, error) {
	topic := p.cfg.Router.Topic(ns)
	n, err := p.ensure(ctx, topic)
	return topic, n, err
}

func (p *Publisher) ensure(ctx context.Context, topic string) (int32, error) {
	p.mu.Lock()
	n, ok := p.parts[topic]
	p.mu.Unlock()
	if ok {
		return n, nil
	}
	cfgs := map[string]string{"retention.ms": "-1", "max.message.bytes": strconv.Itoa(MaxRecordBytes)}
	for k, v := range p.cfg.TopicConfigs {
		cfgs[k] = v
	}
	var err error
	err = retry.Do(ctx, p.cfg.Retry, isTransient, func(ctx context.Context) error {
		n, err = ensureTopic(ctx, p.adm, kafkax.TopicSpec{Name: topic, Partitions: p.cfg.Partitions, Configs: cfgs})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("data topic: %w", classify(err))
	}
	if limit := kafkax.TopicMaxMessageBytes(ctx, p.adm, topic); limit >= 0 && limit < MaxRecordBytes {
		// A topic created beforehand (or by an older release) with a smaller limit: say
		// so now rather than when the first large document arrives.
		p.log.Warn("topic accepts smaller records than a MongoDB document can make: a larger record will stop the connector until the limit is raised",
			"topic", topic, "max.message.bytes", limit, "recommended", MaxRecordBytes)
	}
	p.mu.Lock()
	p.parts[topic] = n
	p.mu.Unlock()
	return n, nil
}

// recordSize is about what the broker counts of a record against max.message.bytes.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Known returns the catalog entry of ns, if the log knows the namespace.
func (p *Publisher) Known(ns string) (*checkpoint.NamespaceState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.catalog[ns]
	return n, ok
}

// learn adds ns to the catalog; it returns the new entry, or nil when ns
// was known (a new entry's state record must go into the current
// transaction).
func (p *Publisher) learn(ns schema.Namespace, topic, typ string) *checkpoint.NamespaceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known[ns] {
		return nil
	}
	n := &checkpoint.NamespaceState{DB: ns.DB, Coll: ns.Coll, Topic: topic, Type: typ}
	p.catalog[ns.String()] = n
	p.known[ns] = true
	return n
}

// Catalog returns the known namespaces of db (all when db is ""), sorted.
func (p *Publisher) Catalog(db string) []*checkpoint.NamespaceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*checkpoint.NamespaceState
	for _, n := range p.catalog {
		if db == "" || n.DB == db {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NS().String() < out[j].NS().String() })
	return out
}

// Commit writes b's records and state in one transaction, retrying
// transient failures with a fresh producer. See the Publisher's delivery
// guarantee.
func (p *Publisher) Commit(ctx context.Context, b *Batch) error {
	p.seq++
	seq := p.seq
	state, err := b.stateRecords(p.cfg.Router.StateTopic(), seq)
	if err != nil {
		return err
	}
	p.cfg.Metrics.Retries.WithLabelValues("kafka_transaction")
	pol := p.cfg.Retry
	pol.OnRetry = func(attempt int, err error) {
		p.cfg.Metrics.Retries.WithLabelValues("kafka_transaction").Inc()
		p.log.Warn("kafka transaction failed; retrying", "attempt", attempt, "records", len(b.Records), "err", err)
	}
	first := true
	err = retry.Do(ctx, pol, isTransient, func(ctx context.Context) error {
		if !first {
			// The previous attempt failed: find out whether it
			// committed after all (the state's sequence tells).
			if err := p.newProducer(ctx, p.prods[p.turn]); err != nil {
				return err
			}
			// The new producer's InitProducerID completed (or
			// aborted) the old transaction first, so its markers
			// are written and one read tells.
			st, err := p.readStateOnce(ctx)
			if err != nil {
				return err
			}
			if st.Producer.Seq >= seq {
				p.log.Info("the failed transaction had committed", "seq", seq)
				return nil
			}
		}
		retrying := !first
		first = false
		return p.transact(ctx, b.Records, state, retrying)
	})
	var tl *kafkax.TooLargeError
	if errors.As(err, &tl) {
		tl.Limit = kafkax.TopicMaxMessageBytes(ctx, p.adm, tl.Topic)
	}
	if err != nil {
		return fmt.Errorf("committing a Kafka transaction of %d records: %w", len(b.Records),
			classify(kafkax.Denied(err, "WRITE", topicsOf(b.Records, p.cfg.Router.StateTopic()))))
	}
	return nil
}

func (p *Publisher) transact(ctx context.Context, data, state []*kgo.Record, retrying bool) error {
	start := time.Now()
	pr := p.prods[p.turn]
	p.awaitCompletion(ctx, pr)
	cl := pr.cl
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	var (
		emu  sync.Mutex
		perr error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			emu.Lock()
			if kafkax.IsTooLarge(err) {
				// Policy for oversize records (README, "Record size limits"): the source
				// never drops or truncates a change; it aborts the transaction and stops,
				// naming the topic, the size and the setting to raise.
				err = &kafkax.TooLargeError{Topic: r.Topic, Size: recordSize(r), Limit: -1,
					Policy: "the transaction was aborted, so nothing was written and nothing is lost", Err: err}
			}
			if perr == nil || kafkax.IsTooLarge(err) && !kafkax.IsTooLarge(perr) {
				perr = err
			}
			emu.Unlock()
		}
	}
	produce := func(recs []*kgo.Record) {
		for _, r := range recs {
			if retrying {
				r = cloneRecord(r)
			}
			cl.Produce(ctx, r, promise)
		}
	}
	produce(data)
	produce(state)
	ferr := cl.Flush(ctx)
	emu.Lock()
	if ferr == nil {
		ferr = perr
	}
	emu.Unlock()
	if ferr != nil {
		p.cfg.Metrics.TxnAborts.Inc()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := cl.AbortBufferedRecords(actx); err != nil {
			return errors.Join(ferr, errUncertainCommit)
		}
		if err := cl.EndTransaction(actx, kgo.TryAbort); err != nil {
			return errors.Join(ferr, errUncertainCommit)
		}
		return ferr
	}
	// Never cancel an EndTxn in flight: its outcome would be unknown.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout)
	defer cancel()
	if err := cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		p.cfg.Metrics.TxnAborts.Inc()
		return errors.Join(err, errUncertainCommit)
	}
	pr.committedAt = time.Now()
	p.turn = (p.turn + 1) % len(p.prods)
	p.cfg.Metrics.TxnCommits.Inc()
	p.cfg.Metrics.PublishLatency.Observe(time.Since(start).Seconds())
	return nil
}

// completionWindow bounds awaitCompletion: the broker's first retry of a
// produce that met CONCURRENT_TRANSACTIONS comes after
// add.partitions.to.txn.retry.backoff.ms (default 20 ms), so waiting longer
// than about that gains nothing.
const completionWindow = 20 * time.Millisecond

// settledAfter is how old a producer's last commit must be for
// awaitCompletion not to ask: sampled at 500 events/s on the shared 2-core
// test machine (4,171 transactions, issue 21), the coordinator had
// completed 95% of them by the first look 4.6 ms after the commit returned
// and 99% by 7.3 ms (the slowest 18 ms). A produce that still meets the
// previous transaction open waits the broker's backoff once; asking every
// time cost a round trip per transaction.
const settledAfter = 8 * time.Millisecond

// awaitCompletion waits, when pr committed a moment ago, until the
// transaction coordinator has completed that transaction (written its
// markers), before pr's next transaction produces.
//
// Why: a commit returns once the coordinator has prepared it; it writes the
// markers after. A produce of the next transaction that reaches the broker
// before they are written meets CONCURRENT_TRANSACTIONS, which the broker
// retries after add.partitions.to.txn.retry.backoff.ms (20 ms by default;
// with transaction.version 1 the client backs off the same 20 ms). At a
// moderate steady rate with one producer the next batch is ready at once,
// so most transactions paid those 20 ms: a 14 ms mean transaction instead
// of about 2 ms, and most of the change stream's lag (tests/bench, issue
// 21). The coordinator takes a few milliseconds, so one to three
// DescribeTransactions round trips on the admin connection replace the 20
// ms stall. With two producers taking turns (SecondTransactionalID), a
// producer's last commit is usually older than settledAfter, and nobody
// asks. A broker that does not answer DescribeTransactions (an older
// broker, a principal without DESCRIBE on the transactional id) is not
// asked again.
func (p *Publisher) awaitCompletion(ctx context.Context, pr *producer) {
	if p.describeOff || pr.committedAt.IsZero() || time.Since(pr.committedAt) >= settledAfter {
		return
	}
	deadline := pr.committedAt.Add(completionWindow)
	for time.Now().Before(deadline) {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		ds, err := p.adm.DescribeTransactions(dctx, pr.id)
		cancel()
		if err == nil {
			var d kadm.DescribedTransaction
			if d, err = ds.On(pr.id, nil); err == nil {
				err = d.Err
			}
			if err == nil && d.State != "PrepareCommit" && d.State != "PrepareAbort" {
				return
			}
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				p.describeOff = true
				p.log.Info("cannot see when a Kafka transaction has completed (DescribeTransactions failed), so a transaction that follows another at once may wait for the broker's retry backoff (add.partitions.to.txn.retry.backoff.ms, 20 ms by default): grant DESCRIBE on the transactional id to avoid it",
					"transactionalId", pr.id, "err", err)
			}
			return
		}
	}
}

func cloneRecord(r *kgo.Record) *kgo.Record {
	return &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Topic: r.Topic, Partition: r.Partition, Context: r.Context}
}

// ensureTopic creates topic when missing and returns its partition count,
// mapping authorization failures to this package's sentinel errors.
func ensureTopic(ctx context.Context, adm *kadm.Client, spec kafkax.TopicSpec) (int32, error) {
	n, err := kafkax.EnsureTopic(ctx, adm, spec)
	if err != nil {
		return 0, classify(err)
	}
	return n, nil
}

// topicsOf names the topics a transaction writes, for an error message.
func topicsOf(rs []*kgo.Record, state string) string {
	seen := map[string]bool{state: true}
	names := []string{state}
	for _, r := range rs {
		if !seen[r.Topic] {
			seen[r.Topic] = true
			names = append(names, r.Topic)
		}
	}
	if len(names) > 4 {
		names = append(names[:4], fmt.Sprintf("and %d more", len(names)-4))
	}
	return "topic " + strings.Join(names, ", ")
}
