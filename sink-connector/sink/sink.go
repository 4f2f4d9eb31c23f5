package sink

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/obs"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
	"github.com/logbridge/logbridge/sink-connector/internal/consume"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
)

// ErrPoison: the sink stopped at a record it cannot apply (error tolerance
// none); nothing past the record is committed.
var ErrPoison = consume.ErrPoison

// Config is every setting of the sink-connector.
type Config struct {
	Kafka         kafkax.Config
	Group         string
	TopicPrefix   string
	TopicRegex    string // overrides TopicPrefix for subscription when set
	DestURI       string
	NSMap         config.StringList
	WriteConcern  string
	BatchSize     int
	FlushInterval time.Duration
	Parallelism   int
	// The memory bounds (README, Memory): what the Kafka client fetches
	// ahead (FetchMaxBytes per fetch, FetchMaxPartitionBytes per partition
	// in one, MaxConcurrentFetches at once) and what waits in each
	// partition's queue (QueueMaxBytes, besides 4 × BatchSize records).
	FetchMaxBytes          config.Bytes
	FetchMaxPartitionBytes config.Bytes
	MaxConcurrentFetches   int
	QueueMaxBytes          config.Bytes
	DLQTopic               string // default "<prefix>._dlq"
	ErrorTolerance         string // none | all
	BuildIndexes           bool
	// ExcludeHashedIndexes leaves hashed indexes out of createIndexes
	// (buildIndexes excludeHashed / excludeHashedAfterCopy).
	ExcludeHashedIndexes bool
	Transactions         bool
	TxnWait              time.Duration  // --transaction-wait
	TxnMaxEvents         int            // --transaction-max-events
	HTTP                 httpapi.Config // HTTP.Addr "" disables the HTTP server
	SchemaRegistry       schema.RegistryConfig
	StartFrom            string // earliest | latest
	// SessionTimeout is the consumer group session timeout: how long a
	// member that died without leaving keeps its partitions (0: Kafka's default).
	SessionTimeout time.Duration
	// Cluster0 and Cluster1 switch on mongosync mode: the sink follows the
	// control log of TopicPrefix and syncs into the cluster the start
	// request names as destination (see internal/follow).
	Cluster0, Cluster1 string
	// ControlPoll is how often mongosync mode re-reads the control log.
	ControlPoll time.Duration
	// RestartBackoffMax caps the wait between restarts of a failed epoch
	// sink in mongosync mode (waits start at 1 s and double).
	RestartBackoffMax time.Duration
	// MaxWriteRate throttles the destination writes (documents and bytes
	// per second; zero: unlimited).
	MaxWriteRate throttle.Rate
	// ProgressInterval is the period of the progress log line (records
	// applied, rate, how far the destination is behind).
	ProgressInterval time.Duration
	Log              obs.LogConfig
}

// DefaultConfig returns the defaults the flags also have.
func DefaultConfig() Config {
	return Config{
		// No default broker: see kafkax.Config.RegisterFlags.
		Kafka:         kafkax.Config{ClientID: "logbridge-sink"},
		Group:         "logbridge-sink",
		TopicPrefix:   "logbridge",
		WriteConcern:  "majority",
		BatchSize:     1000,
		FlushInterval: 0,
		Parallelism:   max(4, 2*runtime.GOMAXPROCS(0)),
		// Measured with BenchmarkSnapshotMemory (docs/benchmarks.md):
		// franz-go's defaults (50 MiB per fetch, one fetch per broker)
		// fetched hundreds of MiB ahead once decompressed.
		FetchMaxBytes:          2 << 20,
		FetchMaxPartitionBytes: 128 << 10,
		MaxConcurrentFetches:   1,
		QueueMaxBytes:          16 << 20,
		ErrorTolerance:         "none",
		BuildIndexes:           true,
		HTTP:                   httpapi.Config{Addr: "127.0.0.1:27183"},
		StartFrom:              "earliest",
		SessionTimeout:         45 * time.Second,
		ControlPoll:            500 * time.Millisecond,
		RestartBackoffMax:      time.Minute,
		ProgressInterval:       10 * time.Second,
		TxnWait:                10 * time.Second,
		TxnMaxEvents:           10000,
		Log:                    obs.LogConfig{Level: "info", Format: "text"},
	}
}

// RegisterFlags adds every setting to fs, with the defaults of DefaultConfig.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	c.Kafka.RegisterFlags(fs, d.Kafka.ClientID)
	fs.StringVar(&c.Group, "group", d.Group, "Kafka consumer group; its committed offsets are the sink's checkpoints (one group per destination: two groups fan one log out to two destinations)")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", d.TopicPrefix, "topic prefix of the log: consumes <prefix>.<db>.<coll> topics, never <prefix>._* (source state, control, dead letters)")
	fs.StringVar(&c.TopicRegex, "topic-regex", "", "consume the topics matching this Go regular expression instead of every <prefix>.<db>.<coll> (topics ending in ._source_state, ._control, ._dlq are always excluded)")
	fs.StringVar(&c.DestURI, "dest-uri", "", "destination MongoDB URI (mongodb:// or mongodb+srv://; TLS and auth through the URI) (required)")
	fs.Var(&c.NSMap, "ns-map", "comma-separated namespace rename rules src=dst: srcdb.*=dstdb.* renames a database, db.a=db2.b a collection (an exact rule wins over a database rule; checked as the control API's namespaceRemap: no two sources onto one target, no chains)")
	fs.StringVar(&c.WriteConcern, "write-concern", d.WriteConcern, "destination write concern: majority, a number of members (>= 1) or a tag set name; offsets are committed only after writes are acknowledged with it")
	fs.IntVar(&c.BatchSize, "batch-size", d.BatchSize, "events per partition gathered into one bulk write before a flush")
	fs.DurationVar(&c.FlushInterval, "flush-interval", d.FlushInterval, "how long a partial batch waits for more events once its partition has nothing more queued; 0 (the default) flushes it at once, which keeps the lag low; a positive value trades lag for fewer, larger bulk writes at low rates")
	fs.IntVar(&c.Parallelism, "parallelism", d.Parallelism, "bulk writes in flight at once across partitions")
	c.FetchMaxBytes, c.FetchMaxPartitionBytes, c.QueueMaxBytes = d.FetchMaxBytes, d.FetchMaxPartitionBytes, d.QueueMaxBytes
	fs.Var(&c.FetchMaxBytes, "fetch-max-bytes", "most bytes one Kafka fetch returns (as stored: compressed; a batch larger than this still comes whole; 0: the client's default, 50MiB). With --max-concurrent-fetches and --queue-max-bytes it bounds the sink's memory (README, Memory)")
	fs.Var(&c.FetchMaxPartitionBytes, "fetch-max-partition-bytes", "most bytes one fetch returns per partition (compressed, as --fetch-max-bytes; 0: the client's default, 1MiB)")
	fs.IntVar(&c.MaxConcurrentFetches, "max-concurrent-fetches", d.MaxConcurrentFetches, "Kafka fetches in flight or fetched but not yet handed to the partitions' queues, across all brokers; 0: one per broker")
	fs.Var(&c.QueueMaxBytes, "queue-max-bytes", "bytes of fetched records (keys and values, uncompressed) waiting to be applied, across the partitions assigned to this member: each partition's queue pauses its fetches at its share (this / assigned partitions, at least 256KiB) or at 4 × --batch-size records; the workers hold about as much again while applying; 0: no byte bound")
	fs.StringVar(&c.DLQTopic, "dlq-topic", "", "dead-letter topic for records that cannot be applied (default <prefix>._dlq)")
	fs.StringVar(&c.ErrorTolerance, "error-tolerance", d.ErrorTolerance, "none: stop at a record that cannot be applied, without committing past it; all: send it to the dead-letter topic with the reason and go on")
	fs.BoolVar(&c.BuildIndexes, "build-indexes", d.BuildIndexes, "apply createIndexes records (false: create collections but no secondary indexes)")
	fs.BoolVar(&c.ExcludeHashedIndexes, "exclude-hashed-indexes", false, "with --build-indexes: leave hashed indexes out (mongosync's buildIndexes excludeHashed)")
	fs.BoolVar(&c.Transactions, "transactions", false, "apply the events of one source transaction (same lsid and txnNumber) in one destination multi-document transaction, so that readers never see half of one (needs a replica set or sharded destination; see README for the per-event fallback)")
	fs.DurationVar(&c.TxnWait, "transaction-wait", d.TxnWait, "with --transactions: longest wait for all events of a source transaction to reach this member; then its events are applied per event (counted, logged)")
	fs.IntVar(&c.TxnMaxEvents, "transaction-max-events", d.TxnMaxEvents, "with --transactions: source transactions with more events are applied per event (bounds the events held in memory)")
	c.HTTP.RegisterFlags(fs, d.HTTP.Addr, "/metrics, /healthz and GET /api/v1/progress (empty: no server)")
	c.SchemaRegistry.RegisterFlags(fs) // to decode records written in the Confluent wire format
	fs.StringVar(&c.StartFrom, "start-from", d.StartFrom, "where a new group starts in partitions without a committed offset: earliest (rebuild from the retained log) or latest")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", d.SessionTimeout, "consumer group session timeout: a member killed without leaving the group keeps its partitions this long (the broker bounds it with group.min/max.session.timeout.ms)")
	fs.StringVar(&c.Cluster0, "cluster0", "", "URI of the cluster named \"cluster0\" in control API requests; with --cluster0/--cluster1 the sink follows the control log <topic-prefix>._control (mongosync mode: the source-connector's /api/v1/start names the destination) instead of applying to --dest-uri")
	fs.StringVar(&c.Cluster1, "cluster1", "", "URI of the cluster named \"cluster1\" in control API requests (see --cluster0)")
	fs.DurationVar(&c.ControlPoll, "control-poll", d.ControlPoll, "how often the control log is re-read (mongosync mode)")
	fs.Var(&c.MaxWriteRate, "max-write-rate", "throttle of the destination writes, per second: docs=N, bytes=N[K|M|G|KiB|MiB|GiB] or both (docs=5000,bytes=8MiB); empty: unlimited. In mongosync mode POST /api/v1/throttle on the source-connector overrides it while running")
	fs.DurationVar(&c.ProgressInterval, "progress-interval", d.ProgressInterval, "period of the progress log line: records applied, rate, and how far the destination is behind the source")
	fs.DurationVar(&c.RestartBackoffMax, "restart-backoff-max", d.RestartBackoffMax,
		"longest wait between restarts of a failed epoch sink (mongosync mode): waits start at 1s and double up to this, so a cluster that rejects the credentials sees few login attempts")
	c.Log.RegisterFlags(fs)
}

// Managed reports whether the sink runs in mongosync mode (--cluster0/--cluster1).
func (c *Config) Managed() bool { return c.Cluster0 != "" || c.Cluster1 != "" }

// Subscribes reports whether the sink consumes topic (a data topic of its log).
func (c *Config) Subscribes(topic string) bool {
	include, exclude := c.subscription()
	if ok, _ := regexp.MatchString(include, topic); !ok {
		return false
	}
	for _, x := range exclude {
		if ok, _ := regexp.MatchString(x, topic); ok {
			return false
		}
	}
	return true
}

func (c *Config) prefix() string { return strings.TrimSuffix(c.TopicPrefix, ".") }

// DLQ returns the dead-letter topic.
func (c *Config) DLQ() string {
	if c.DLQTopic != "" {
		return c.DLQTopic
	}
	return c.prefix() + "._dlq"
}

func (c *Config) subscription() (include string, exclude []string) {
	exclude = []string{`^.*\._(source_state|control|dlq)$`, "^" + regexp.QuoteMeta(c.DLQ()) + "$"}
	if c.TopicRegex != "" {
		return c.TopicRegex, exclude
	}
	p := regexp.QuoteMeta(c.prefix())
	// <prefix>.<db>.<coll>; <prefix>.<name> without a collection part is
	// reserved for the log's own topics.
	return "^" + p + `\.[^.]+\..+$`, append(exclude, "^"+p+`\._[^.]*$`)
}

func (c *Config) writeConcern() (*writeconcern.WriteConcern, error) {
	switch w := c.WriteConcern; {
	case w == "majority":
		return writeconcern.Majority(), nil
	case w == "":
		return nil, errors.New("write-concern is empty: use majority, a number >= 1 or a tag set name")
	default:
		if n, err := strconv.Atoi(w); err == nil {
			if n < 1 {
				return nil, fmt.Errorf("write-concern %d: unacknowledged writes cannot checkpoint; use majority or a number >= 1", n)
			}
			return &writeconcern.WriteConcern{W: n}, nil
		}
		return &writeconcern.WriteConcern{W: w}, nil
	}
}

// Validate checks the settings together.
func (c *Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.HTTP.Validate(), c.SchemaRegistry.Validate()}
	switch {
	case c.Managed():
		if c.DestURI != "" {
			errs = append(errs, errors.New("dest-uri: in mongosync mode (--cluster0/--cluster1) the start request names the destination; drop --dest-uri"))
		}
		if c.TopicRegex != "" {
			errs = append(errs, errors.New("topic-regex: in mongosync mode the topics follow from --topic-prefix and the sync's epoch; drop --topic-regex"))
		}
	case c.DestURI == "":
		errs = append(errs, errors.New("dest-uri is required: the destination MongoDB URI (or --cluster0/--cluster1 for mongosync mode)"))
	}
	// A malformed URI is refused now, not on every connection attempt later.
	for _, u := range []struct{ flag, uri string }{{"dest-uri", c.DestURI}, {"cluster0", c.Cluster0}, {"cluster1", c.Cluster1}} {
		if u.uri != "" {
			if err := mongox.ValidateURI(u.uri); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", u.flag, err))
			}
		}
	}
	if c.SessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("session-timeout %v: must not be negative (0: the broker's default)", c.SessionTimeout))
	}
	if c.ControlPoll <= 0 {
		errs = append(errs, fmt.Errorf("control-poll %v: must be positive, e.g. 500ms", c.ControlPoll))
	}
	if err := c.MaxWriteRate.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("max-write-rate: %w", err))
	}
	if c.ProgressInterval <= 0 {
		errs = append(errs, fmt.Errorf("progress-interval %v: must be positive, e.g. 10s", c.ProgressInterval))
	}
	if c.RestartBackoffMax < time.Second {
		errs = append(errs, fmt.Errorf("restart-backoff-max %v: must be at least 1s (the first wait)", c.RestartBackoffMax))
	}
	if c.TopicRegex == "" && c.prefix() == "" {
		errs = append(errs, errors.New("topic-prefix is empty: give a prefix or a topic-regex"))
	}
	if _, err := apply.ParseNSMap(c.NSMap); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.writeConcern(); err != nil {
		errs = append(errs, err)
	}
	// The consumer's settings (group, topics, batching, tolerance,
	// transactions) are checked once, by the consumer's own Validate.
	// Transaction settings are checked with or without --transactions, so that
	// a bad value never waits until the option is switched on.
	cc := c.consumeConfig()
	cc.Transactions = true
	errs = append(errs, cc.Validate())
	return errors.Join(errs...)
}

// consumeConfig is how the sink's consumer reads the log.
func (c *Config) consumeConfig() consume.Config {
	include, exclude := c.subscription()
	return consume.Config{
		Group: c.Group, TopicRegex: include, ExcludeRegex: exclude, StartFrom: c.StartFrom,
		BatchSize: c.BatchSize, FlushInterval: c.FlushInterval, Parallelism: c.Parallelism,
		QueueMaxBytes: int(c.QueueMaxBytes), FetchMaxBytes: int32(min(c.FetchMaxBytes, 1<<30)),
		FetchMaxPartitionBytes: int32(min(c.FetchMaxPartitionBytes, 1<<30)), MaxConcurrentFetches: c.MaxConcurrentFetches,
		Tolerance: consume.Tolerance(c.ErrorTolerance), DLQTopic: c.DLQ(),
		Transactions: c.Transactions, TxnWait: c.TxnWait, TxnMaxEvents: c.TxnMaxEvents,
	}
}

// Service is a running sink: consumer, writers, DLQ producer and HTTP server.
type Service struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *metrics.Metrics
	consumer *consume.Consumer
	dest     *mongo.Client
	dlq      *kgo.Client
	http     *httpapi.Server
	kprobe   *kgo.Client       // readiness: Kafka reachable (HTTP server only)
	mprobe   *mongox.Prober    // readiness: destination reachable (HTTP server only)
	running  atomic.Bool       // Run is consuming
	writes   *throttle.Limiter // MaxWriteRate, SetWriteRate
	// appliedRecorded is the change-event count (of metrics.Applied) already
	// added to the destination's control.AppliedCount (progress.go).
	appliedRecorded float64
}

// New connects to the destination (and the schema registry when set), creates
// the dead-letter topic when the tolerance is all, binds the HTTP address and
// returns the service; Run starts it. reg receives the metrics and is served
// on /metrics (nil: a fresh registry).
func New(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Service{cfg: cfg, log: log, reg: reg, metrics: metrics.New(reg)}
	s.appliedRecorded = changeEvents(s.metrics.Applied)
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	nsmap, _ := apply.ParseNSMap(cfg.NSMap)
	wc, _ := cfg.writeConcern()
	kopts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, err
	}
	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Registry: cfg.SchemaRegistry})
	if err != nil {
		return nil, fmt.Errorf("schema codec: %w", err)
	}
	if s.dest, err = mongox.Connect(ctx, "destination", cfg.DestURI); err != nil {
		return nil, err
	}
	if cfg.Transactions {
		if err := supportsTransactions(ctx, s.dest); err != nil {
			return nil, err
		}
	}
	// Before anything is applied: refuse metadata a newer release wrote,
	// record (or upgrade to) this binary's version.
	if err := apply.CheckMetadata(ctx, s.dest, wc, cfg.Group, log); err != nil {
		return nil, err
	}
	if cfg.TopicRegex == "" {
		// A principal without READ on the prefix would be shown no topic and wait forever.
		if err := checkTopicAccess(ctx, kopts, cfg); err != nil {
			return nil, err
		}
	}
	var dlq consume.DeadLetters
	if cfg.ErrorTolerance == "all" {
		// The dead-letter topic accepts every record a data topic accepts, plus the
		// dead-letter headers; franz-go's default ~1 MB batch limit would refuse more.
		dlqMax := kafkax.MaxRecordBytes + kafkax.DeadLetterHeadroomBytes
		if s.dlq, err = kgo.NewClient(append(append([]kgo.Opt{}, kopts...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
			kgo.ProducerBatchMaxBytes(int32(dlqMax)))...); err != nil {
			return nil, fmt.Errorf("creating the dead-letter producer: %w", err)
		}
		dlqAdm := kadm.NewClient(s.dlq)
		if _, err := kafkax.EnsureTopic(ctx, dlqAdm, kafkax.TopicSpec{Name: cfg.DLQ(), Partitions: 1,
			Configs: map[string]string{"retention.ms": "-1", "max.message.bytes": strconv.Itoa(dlqMax)}}); err != nil {
			return nil, fmt.Errorf("dead-letter topic: %w", err)
		}
		if limit := kafkax.TopicMaxMessageBytes(ctx, dlqAdm, cfg.DLQ()); limit >= 0 && limit < dlqMax {
			log.Warn("the dead-letter topic accepts smaller records than the data topics: a larger dead letter will stop the sink until its limit is raised",
				"topic", cfg.DLQ(), "max.message.bytes", limit, "recommended", dlqMax)
		}
		dlq = consume.NewKafkaDLQ(s.dlq, cfg.DLQ(), cfg.Group)
	}
	ckopts := append([]kgo.Opt{}, kopts...)
	if cfg.SessionTimeout > 0 {
		ckopts = append(ckopts, kgo.SessionTimeout(cfg.SessionTimeout), kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)))
	}
	writer := apply.NewWriter(s.dest, wc, s.metrics, log)
	s.writes = throttle.New(cfg.MaxWriteRate)
	writer.SetLimiter(s.writes)
	s.setRateGauge(cfg.MaxWriteRate)
	ddl := apply.NewDDLApplier(s.dest, wc, cfg.Group, cfg.BuildIndexes, nsmap, s.metrics, log)
	ddl.ExcludeHashed = cfg.ExcludeHashedIndexes
	s.consumer, err = consume.New(cfg.consumeConfig(), consume.Deps{
		KafkaOpts:   ckopts,
		Decoder:     serde,
		Writer:      writer,
		TxnWriter:   writer,
		Barriers:    ddl,
		DeadLetters: dlq,
		NSMap:       nsmap,
		Metrics:     s.metrics,
		Log:         log,
	})
	if err != nil {
		return nil, err
	}
	s.metrics.RefreshLagOnScrape(func() { s.consumer.Progress() })
	if cfg.HTTP.Addr != "" {
		if s.http, err = httpapi.New(cfg.HTTP, reg, log); err != nil {
			return nil, err
		}
		s.http.Handle("GET /api/v1/progress", http.HandlerFunc(s.serveProgress))
		if s.kprobe, err = kgo.NewClient(kopts...); err != nil {
			return nil, fmt.Errorf("creating the Kafka client: %w", err)
		}
		s.mprobe = mongox.NewProber()
		s.ready(s.http)
	}
	ok = true
	return s, nil
}

// supportsTransactions checks that the destination has multi-document
// transactions: a replica set member or mongos (a standalone has none).
func supportsTransactions(ctx context.Context, cl *mongo.Client) error {
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return fmt.Errorf("transactions: asking the destination whether it is a replica set (hello): %w", err)
	}
	if hello.SetName == "" && hello.Msg != "isdbgrid" {
		return errors.New("transactions: the destination is a standalone server, which has no multi-document transactions; " +
			"make it a replica set (a single-member one will do) or run without --transactions")
	}
	return nil
}

// HTTPAddr is the bound address of the HTTP server ("" without one).
func (s *Service) HTTPAddr() string {
	if s.http == nil {
		return ""
	}
	return s.http.Addr
}

// Progress is the sink's position per partition (see consume.Progress).
type Progress = consume.Progress

// Progress returns the sink's position and lag. Safe for concurrent use.
func (s *Service) Progress() Progress { return s.consumer.Progress() }

// WriteRate is the destination write throttle in force.
func (s *Service) WriteRate() throttle.Rate { return s.writes.Rate() }

// SetWriteRate changes the destination write throttle while the sink runs.
func (s *Service) SetWriteRate(r throttle.Rate) {
	if s.writes.Rate() == r {
		return
	}
	s.writes.Set(r)
	s.setRateGauge(r)
	s.log.Info("destination write throttle changed", "maxWriteRate", r.String())
}

func (s *Service) setRateGauge(r throttle.Rate) {
	s.metrics.MaxWriteRate.WithLabelValues("docs").Set(r.Docs)
	s.metrics.MaxWriteRate.WithLabelValues("bytes").Set(r.Bytes)
}

func (s *Service) serveProgress(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	// "build" names the binary (pkg/version), as in the source's progress;
	// the write throttle in force next to the position.
	_ = json.NewEncoder(w).Encode(map[string]any{"progress": struct {
		Progress
		Build        version.Info  `json:"build"`
		MaxWriteRate throttle.Rate `json:"maxWriteRate"`
	}{s.Progress(), version.Get(), s.WriteRate()}})
}

// Run consumes and applies until ctx ends (nil) or a fatal error. It closes
// the service's clients before returning; a Service runs once.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.consumer.Run(gctx) })
	g.Go(func() error { s.logProgress(gctx); return nil })
	g.Go(func() error { s.recordApplied(gctx); return nil })
	if s.http != nil {
		g.Go(func() error { return s.http.Run(gctx) })
	}
	s.log.Info("sink started", "group", s.cfg.Group, "dest", mongox.Redact(s.cfg.DestURI), "http", s.HTTPAddr())
	s.running.Store(true)
	err := g.Wait()
	s.running.Store(false)
	// What the consumer applied while it stopped: the count's last addition.
	s.addApplied(context.WithoutCancel(ctx))
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Service) close() {
	if s.kprobe != nil {
		s.kprobe.Close()
	}
	if s.mprobe != nil {
		s.mprobe.Close()
	}
	if s.dlq != nil {
		s.dlq.Close()
	}
	if s.dest != nil {
		_ = s.dest.Disconnect(context.Background())
	}
}

// checkTopicAccess fails fast when Kafka would hide the log's topics from the sink's
// principal (no READ ACL on the prefix).
func checkTopicAccess(ctx context.Context, kopts []kgo.Opt, cfg Config) error {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("creating a Kafka client: %w", err)
	}
	defer cl.Close()
	probe := cfg.prefix() + "._source_state"
	if err := kafkax.CheckTopicAccess(ctx, kadm.NewClient(cl), probe, "READ",
		fmt.Sprintf("the topics of prefix %q (a PREFIXED topic ACL)", cfg.prefix())); err != nil {
		return fmt.Errorf("checking access to the log: %w", err)
	}
	return nil
}

// ready adds the sink's readiness checks (direct mode): Kafka and the
// destination reachable, the consumer running.
func (s *Service) ready(srv *httpapi.Server) {
	red := mongox.NewRedactor([]string{s.cfg.DestURI}, s.cfg.Kafka.SASLPassword)
	srv.Ready("kafka", func(ctx context.Context) error { return red.Error(kafkax.Ping(ctx, s.kprobe, s.cfg.Kafka.Brokers)) })
	srv.Ready("mongodb", func(ctx context.Context) error { return red.Error(s.mprobe.Ping(ctx, "destination", s.cfg.DestURI)) })
	srv.Ready("pipeline", func(context.Context) error {
		if !s.running.Load() {
			return errors.New("the sink is not consuming (starting or stopped)")
		}
		return nil
	})
}
