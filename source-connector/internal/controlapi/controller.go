package controlapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/supervise"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/app"
)

// Config is how the controller runs syncs.
type Config struct {
	// Clusters maps the names used in start requests to URIs.
	Clusters map[string]string
	// Base is the source connector configuration every epoch starts from;
	// the controller sets SourceURI, TopicPrefix, Include/Exclude, SyncEpoch
	// and StartAt per epoch.
	Base app.Config
	// SinkGroup is the sink's consumer group for epoch 1 (progress reads
	// its committed offsets).
	SinkGroup string
	// CommitMaxLag is the largest sink lag, in records, at which canCommit
	// is true.
	CommitMaxLag int64
	// Poll is how often the control log is re-read (default 500 ms).
	Poll time.Duration
	// Restart is the backoff of a failing epoch connector (zero value:
	// supervise.DefaultConfig; Redact is set by New).
	Restart supervise.Config
}

// Validate checks the settings of mongosync mode (the Base connector
// configuration is checked by app.Config.Validate).
func (c Config) Validate() error {
	var errs []error
	if len(c.Clusters) == 0 {
		errs = append(errs, errors.New("the control API needs at least one cluster URI: give --cluster0 and --cluster1"))
	}
	if c.CommitMaxLag < 0 {
		errs = append(errs, fmt.Errorf("commit-max-lag %d: must be 0 or more records (canCommit could never be true)", c.CommitMaxLag))
	}
	if c.SinkGroup == "" {
		errs = append(errs, errors.New("sink-group is empty: name the sink-connector's consumer group"))
	}
	if c.Poll < 0 {
		errs = append(errs, fmt.Errorf("control poll %v: must be positive", c.Poll))
	}
	// The zero Restart means supervise.DefaultConfig (New fills it in).
	if c.Restart.Initial != 0 || c.Restart.Max != 0 {
		if err := c.Restart.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Controller reconciles the running source connector with the control log.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	red  *mongox.Redactor
	sup  *supervise.Supervisor[*app.Service] // the source connector of the current epoch
	clog *control.Log
	adm  *kadm.Client
	// ops serializes whatever writes the control log (requests, the
	// reconcile loop, the commit): each checks the state and appends
	// without another writer in between. It is held across Kafka and
	// MongoDB I/O, so readers never take it.
	ops sync.Mutex
	// mu guards state, committing and commitRetry, and is never held across
	// I/O, so progress answers at once while a request or reconcile is
	// blocked. Writers of state hold ops too; readers hold either.
	mu    sync.Mutex
	state control.Status

	committing  bool
	commitRetry *supervise.Backoff // spaces failed commit attempts
	kick        chan struct{}
	// beforeAppend, when set (tests), runs before each control-log append.
	beforeAppend func(context.Context)
	verif        verifier
	lag          *lagProbe
	ping         *pinger
	// lastCopy keeps the copy totals of an epoch whose connector stopped
	// (PAUSED, COMMITTED), so that progress does not fall back to 0.
	lastCopy map[int]CollectionCopy
	// applied keeps the last totalEventsApplied read per epoch, shown
	// while the destination does not answer.
	applied map[int]int64
	// probe, when set (tests), replaces the pre-start checks of the clusters.
	probe func(context.Context, control.StartParams, *control.Compiled) ([]string, error)
}

// New returns a controller; kafkaOpts connect to the cluster holding the log.
// regs holds the process metrics; each epoch connector (each restart) gets a
// fresh registry served with it.
func New(ctx context.Context, cfg Config, kafkaOpts []kgo.Opt, log *slog.Logger, regs *supervise.Registries) (*Controller, error) {
	if regs == nil {
		regs = supervise.NewRegistries(prometheus.NewRegistry())
	}
	if cfg.Poll == 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.SinkGroup == "" {
		cfg.SinkGroup = "logbridge-sink"
	}
	if cfg.Base.ProgressInterval <= 0 {
		cfg.Base.ProgressInterval = app.DefaultConfig().ProgressInterval
	}
	if cfg.Restart.Initial == 0 && cfg.Restart.Max == 0 {
		cfg.Restart = supervise.DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var uris []string
	for _, u := range cfg.Clusters {
		uris = append(uris, u)
	}
	red := mongox.NewRedactor(uris, cfg.Base.Kafka.SASLPassword)
	cfg.Restart.Redact = red.String
	// A newer release's state or metadata cannot be read by restarting.
	cfg.Restart.Permanent = func(err error) bool { return errors.Is(err, version.ErrNewerFormat) }
	sup, err := supervise.New[*app.Service](cfg.Restart, "source", log, regs)
	if err != nil {
		return nil, err
	}
	clog, err := control.NewLog(ctx, kafkaOpts, cfg.Base.TopicPrefix)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kafkaOpts...)
	if err != nil {
		clog.Close()
		return nil, err
	}
	c := &Controller{cfg: cfg, log: log, red: red, sup: sup, clog: clog, adm: kadm.NewClient(cl), kick: make(chan struct{}, 1),
		commitRetry: supervise.NewBackoff(cfg.Restart), ping: newPinger(), lastCopy: map[int]CollectionCopy{}, applied: map[int]int64{}}
	// The lag probe decodes record values as the sink does (every encoding,
	// with the registry when one is configured).
	c.lag = newLagProbe(kafkaOpts, func(ctx context.Context) (*schema.Serde, error) {
		return schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.Encoding(cfg.Base.Encoding), Registry: cfg.Base.SchemaRegistry})
	})
	if c.state, _, err = clog.Load(ctx); err != nil {
		clog.Close()
		cl.Close()
		return nil, err
	}
	// The state is exported from the moment it is known, whether or not
	// the epoch's connector can start.
	if err := regs.Registerer().Register(control.NewStateCollector("source", c.currentState)); err != nil {
		clog.Close()
		cl.Close()
		return nil, fmt.Errorf("registering the control state metrics: %w", err)
	}
	log.Info("control state loaded", "state", c.state.State, "epoch", c.state.Epoch, "events", c.state.Events)
	return c, nil
}

// Close releases the Kafka clients.
func (c *Controller) Close() {
	c.clog.Close()
	c.adm.Close()
}

// Run reconciles until ctx ends, then stops the running connector.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Poll)
	defer t.Stop()
	defer c.stop()
	pctx, stopPing := context.WithCancel(ctx)
	pinged := make(chan struct{})
	defer func() { stopPing(); <-pinged }()
	go func() { defer close(pinged); c.ping.run(pctx, c, c.clusterPair) }()
	lagT := time.NewTicker(c.cfg.Base.ProgressInterval)
	defer lagT.Stop()
	for {
		if err := c.reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, version.ErrNewerFormat) {
				// A newer release wrote the control log: acting on a state
				// this binary cannot derive could undo what it did. Stop.
				return c.red.Error(err)
			}
			c.log.Error("control reconcile failed; retrying", "err", c.red.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.kick:
		case <-lagT.C:
			c.logLag(ctx)
		}
	}
}

// logLag logs, once the epoch streams, mongomirror's line with how far the
// destination is behind the source (progress.lagTimeSeconds), next to the
// source's own capture lag.
func (c *Controller) logLag(ctx context.Context) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	svc, epoch, ok := c.sup.Current()
	if st.State != control.Running || !ok || epoch != st.Epoch {
		return
	}
	s := svc.Status()
	if s.Phase != app.PhaseStreaming {
		return
	}
	pos := c.sinkPosition(ctx, st.Epoch, control.TopicPrefix(c.cfg.Base.TopicPrefix, st.Epoch))
	if pos == nil {
		return
	}
	c.log.Info(fmt.Sprintf("Current lag from source: %d s", int64(pos.LagSeconds)),
		"destinationLagSeconds", int64(pos.LagSeconds), "lagRecords", pos.LagRecords,
		"sourceCaptureLagSeconds", fmt.Sprintf("%.1f", s.LagSeconds), "epoch", st.Epoch)
}

// clusterPair names the clusters of the current sync (none before start).
func (c *Controller) clusterPair() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.State == control.Idle {
		return nil
	}
	return []string{c.state.Params.Source, c.state.Params.Destination}
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// append records ev and refolds the state. Callers hold c.ops.
func (c *Controller) append(ctx context.Context, ev control.Event) error {
	if c.beforeAppend != nil {
		c.beforeAppend(ctx)
	}
	if err := c.clog.Append(ctx, ev); err != nil {
		return err
	}
	return c.load(ctx)
}

// load refolds the state from the control log. Callers hold c.ops.
func (c *Controller) load(ctx context.Context) error {
	st, _, err := c.clog.Load(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()
	return nil
}

func (c *Controller) reconcile(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := c.sup.Fatal(); err != nil {
		return fmt.Errorf("the epoch's source connector: %w", err)
	}
	if err := c.load(ctx); err != nil {
		return err
	}
	st := c.state // c.ops held: no other writer

	// The supervisor restarts a connector that failed, with backoff, while
	// the state wants it running, and replaces it on an epoch change.
	switch st.State {
	case control.Running, control.Committing:
		if err := c.ensureLocked(ctx, st); err != nil {
			return err
		}
	default:
		c.sup.Stop()
	}

	c.verifyOnCommit(ctx, st)
	if svc, epoch, ok := c.sup.Current(); ok && epoch == st.Epoch {
		svc.SetReadRate(c.readRate(st)) // a throttle changed through the API
	}

	c.mu.Lock()
	startCommit := st.State == control.Committing && st.MarkerID == "" && !c.committing && c.commitRetry.Ready(time.Now())
	c.committing = c.committing || startCommit
	c.mu.Unlock()
	switch {
	case startCommit:
		go c.commit(ctx, st)
	case st.State == control.Committing && st.SinkCommitted:
		if st.Params.EnableUserWriteBlocking.Destination() {
			if err := c.writeBlock(ctx, st.Params.Destination, false); err != nil {
				c.log.Warn(err.Error())
				return c.append(ctx, control.Event{Type: control.EvCommitted, Warnings: []string{err.Error()}})
			}
		}
		return c.append(ctx, control.Event{Type: control.EvCommitted})
	case st.State == control.Reversing:
		rev := st.Params.Reversed()
		return c.append(ctx, control.Event{Type: control.EvReversed, Params: &rev, ClusterTime: st.ResumeDestTime})
	}
	return nil
}

// epochConfig is the source connector configuration of the state's epoch.
func (c *Controller) epochConfig(st control.Status) (app.Config, error) {
	cfg := c.cfg.Base
	uri, ok := c.cfg.Clusters[st.Params.Source]
	if !ok {
		return cfg, fmt.Errorf("source cluster %q is not configured (known: %v)", st.Params.Source, c.names())
	}
	cfg.SourceURI = uri
	cfg.SourceName = st.Params.Source
	cfg.TopicPrefix = control.TopicPrefix(c.cfg.Base.TopicPrefix, st.Epoch)
	cfg.SyncEpoch = int64(st.Epoch)
	cfg.TransactionalID = ""
	// The same compilation that accepted the request at the door (api.go).
	compiled, err := control.Compile(st.Params, c.names())
	if err != nil {
		return cfg, fmt.Errorf("the logged start parameters do not compile: %w", err)
	}
	cfg.Include, cfg.Exclude, cfg.Filter = nil, nil, compiled.Filter
	cfg.IndexesAfterCopy = st.Params.IndexesAfterCopy()
	cfg.MaxReadRate = c.readRate(st)
	if st.EpochStart != nil {
		t := st.EpochStart.Timestamp()
		cfg.StartAt = &t
	}
	return cfg, nil
}

// readRate is the snapshot read throttle in force: the API's, else the flag's.
func (c *Controller) readRate(st control.Status) throttle.Rate {
	if r := st.Throttle.MaxReadRate; r != nil {
		return *r
	}
	return c.cfg.Base.MaxReadRate
}

func (c *Controller) names() []string {
	var out []string
	for n := range c.cfg.Clusters {
		out = append(out, n)
	}
	sort.Strings(out) // a stable order in error messages
	return out
}

// ensureLocked has the supervisor run the source connector of st's epoch.
// Callers hold c.ops.
func (c *Controller) ensureLocked(ctx context.Context, st control.Status) error {
	cfg, err := c.epochConfig(st)
	if err != nil {
		return err
	}
	log := c.log.With("epoch", st.Epoch)
	c.sup.Ensure(ctx, st.Epoch, func(_ context.Context, reg *prometheus.Registry) (*app.Service, error) {
		log.Info("source connector starting", "source", st.Params.Source, "prefix", cfg.TopicPrefix)
		return app.New(cfg, log, reg)
	})
	return nil
}

func (c *Controller) stop() {
	c.ops.Lock()
	defer c.ops.Unlock()
	c.sup.Stop()
}

// commit blocks source writes (when asked), takes the final source cluster
// time, has the running connector write the commit markers after it, and
// records that. It runs outside the lock: the markers wait for the stream.
func (c *Controller) commit(ctx context.Context, st control.Status) {
	failed := true // until the markers are recorded
	defer func() {
		c.mu.Lock()
		c.committing = false
		// A failed attempt (the source rejecting the credentials, say) is
		// retried after a backoff, not on the next poll.
		if failed {
			c.log.Info("commit: retrying", "in", c.commitRetry.Failed(time.Now()))
		} else {
			c.commitRetry.Succeeded()
		}
		c.mu.Unlock()
		c.poke()
	}()
	var warnings []string
	// Writes that reach the source after the final cluster time would be
	// lost: a commit that cannot block them fails and is retried.
	if st.Params.EnableUserWriteBlocking.Source() {
		if err := c.writeBlock(ctx, st.Params.Source, true); err != nil {
			c.log.Error("commit: blocking user writes on the source", "err", err)
			return
		}
	}
	final, err := c.clusterTime(ctx, st.Params.Source)
	if err != nil {
		c.log.Error("commit: taking the final source cluster time", "err", err)
		return
	}
	svc, epoch, ok := c.sup.Current()
	if !ok || epoch != st.Epoch {
		c.log.Error("commit: the epoch's source connector is not running; retrying once it runs", "epoch", st.Epoch)
		return
	}
	id := fmt.Sprintf("commit/e%d/%d.%d", st.Epoch, final.T, final.I)
	c.log.Info("commit: writing commit markers", "marker", id, "after", fmt.Sprintf("%d.%d", final.T, final.I))
	if err := svc.MarkCommit(ctx, id, final); err != nil {
		c.log.Error("commit: writing the markers", "err", err)
		return
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	_, _, estBytes, copiedBytes := svc.Status().Totals()
	if err := c.append(ctx, control.Event{Type: control.EvCommitMarked, MarkerID: id,
		ClusterTime: control.TimeOf(final), Warnings: warnings,
		Copy: &control.CopyTotals{EstimatedTotalBytes: estBytes, EstimatedCopiedBytes: copiedBytes}}); err != nil {
		c.log.Error("commit: recording the markers", "err", err)
		return
	}
	failed = false
}

func (c *Controller) connect(ctx context.Context, name string) (*mongo.Client, error) {
	uri, ok := c.cfg.Clusters[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q is not configured (known: %v)", name, c.names())
	}
	return mongox.Connect(ctx, name, uri)
}

func (c *Controller) clusterTime(ctx context.Context, name string) (bson.Timestamp, error) {
	cl, err := c.connect(ctx, name)
	if err != nil {
		return bson.Timestamp{}, err
	}
	defer cl.Disconnect(context.WithoutCancel(ctx))
	return mongox.ClusterTime(ctx, cl, "logbridge source connector: commit point")
}

// writeBlock turns user write blocking on or off on a cluster. The error
// says what failed and what to do; callers decide whether it is fatal:
// blocking is (the user asked for it, and a reversal relies on it, as in
// mongosync), unblocking after the commit is a warning (the data is in
// place; the user can unblock by hand).
func (c *Controller) writeBlock(ctx context.Context, name string, on bool) error {
	cl, err := c.connect(ctx, name)
	if err == nil {
		defer cl.Disconnect(context.WithoutCancel(ctx))
		err = cl.Database("admin").RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: on}}).Err()
	}
	if err == nil {
		c.log.Info("user write blocking set", "cluster", name, "blocked", on)
		return nil
	}
	if !on {
		return fmt.Errorf("could not unblock user writes on %s with setUserWriteBlockMode (%v): run {setUserWriteBlockMode: 1, global: false} on it as a user with the setUserWriteBlockMode privilege", name, c.red.Error(err))
	}
	return fmt.Errorf("could not block user writes on %s with setUserWriteBlockMode (%w): give the source connector's user for %s the setUserWriteBlockMode privilege (MongoDB 6.0+), or start without enableUserWriteBlocking on that side (not allowed with reversible)", name, c.red.Error(err), name)
}
