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
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/app"
	"github.com/logbridge/logbridge/source-connector/internal/snapshot"
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
}

// Controller reconciles the running source connector with the control log.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	reg   prometheus.Registerer
	clog  *control.Log
	adm   *kadm.Client
	mu    sync.Mutex // serializes requests and reconciles
	state control.Status

	run        *running // the source connector of the current epoch, if any
	committing bool
	kick       chan struct{}
	verif      verifier
	lag        *lagProbe
}

type running struct {
	epoch  int
	svc    *app.Service
	cancel context.CancelFunc
	done   chan error
}

// New returns a controller; kafkaOpts connect to the cluster holding the log.
func New(ctx context.Context, cfg Config, kafkaOpts []kgo.Opt, log *slog.Logger, reg prometheus.Registerer) (*Controller, error) {
	if len(cfg.Clusters) == 0 {
		return nil, errors.New("the control API needs at least one cluster URI: give --cluster0 and --cluster1")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.SinkGroup == "" {
		cfg.SinkGroup = "logbridge-sink"
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
	c := &Controller{cfg: cfg, log: log, reg: reg, clog: clog, adm: kadm.NewClient(cl), kick: make(chan struct{}, 1)}
	// The lag probe decodes record values as the sink does (every encoding,
	// with the registry when one is configured).
	c.lag = newLagProbe(kafkaOpts, func(ctx context.Context) (*schema.Serde, error) {
		return schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.Encoding(cfg.Base.Encoding), RegistryURL: cfg.Base.SchemaRegistryURL})
	})
	if c.state, _, err = clog.Load(ctx); err != nil {
		clog.Close()
		cl.Close()
		return nil, err
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
	for {
		if err := c.reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Error("control reconcile failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.kick:
		}
	}
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// append records ev and refolds the state. Callers hold c.mu.
func (c *Controller) append(ctx context.Context, ev control.Event) error {
	if err := c.clog.Append(ctx, ev); err != nil {
		return err
	}
	st, _, err := c.clog.Load(ctx)
	if err != nil {
		return err
	}
	c.state = st
	return nil
}

func (c *Controller) reconcile(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, _, err := c.clog.Load(ctx)
	if err != nil {
		return err
	}
	c.state = st

	// A connector that stopped on its own (error) is restarted while the
	// state wants it running; its error is logged by its goroutine.
	if c.run != nil {
		select {
		case err := <-c.run.done:
			c.log.Error("source connector stopped; restarting", "epoch", c.run.epoch, "err", err)
			c.run.cancel()
			c.run = nil
		default:
		}
	}
	switch st.State {
	case control.Running, control.Committing:
		if c.run != nil && c.run.epoch != st.Epoch {
			c.stopLocked()
		}
		if c.run == nil {
			if err := c.startLocked(ctx, st); err != nil {
				return err
			}
		}
	default:
		c.stopLocked()
	}

	switch {
	case st.State == control.Committing && st.MarkerID == "" && !c.committing:
		c.committing = true
		go c.commit(ctx, st)
	case st.State == control.Committing && st.SinkCommitted:
		if st.Params.EnableUserWriteBlocking {
			if w := c.writeBlock(ctx, st.Params.Destination, false); w != "" {
				return c.append(ctx, control.Event{Type: control.EvCommitted, Warnings: []string{w}})
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
	if st.EpochStart != nil {
		cfg.StartAt = &bson.Timestamp{T: st.EpochStart.T, I: st.EpochStart.I}
	}
	return cfg, nil
}

func (c *Controller) names() []string {
	var out []string
	for n := range c.cfg.Clusters {
		out = append(out, n)
	}
	sort.Strings(out) // a stable order in error messages
	return out
}

func (c *Controller) startLocked(ctx context.Context, st control.Status) error {
	cfg, err := c.epochConfig(st)
	if err != nil {
		return err
	}
	svc, err := app.New(cfg, c.log.With("epoch", st.Epoch), c.registerer())
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &running{epoch: st.Epoch, svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(rctx) }()
	c.run = r
	c.log.Info("source connector started", "epoch", st.Epoch, "source", st.Params.Source, "prefix", cfg.TopicPrefix)
	return nil
}

// registerer gives each (re)started connector fresh metrics: a restarted
// epoch would otherwise collide with its predecessor's registrations.
func (c *Controller) registerer() prometheus.Registerer {
	if c.reg == nil {
		return nil
	}
	return &replacingRegisterer{reg: c.reg}
}

// replacingRegisterer replaces a collector already registered under the
// same descriptors instead of failing.
type replacingRegisterer struct{ reg prometheus.Registerer }

func (r *replacingRegisterer) Register(col prometheus.Collector) error {
	err := r.reg.Register(col)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		r.reg.Unregister(are.ExistingCollector)
		return r.reg.Register(col)
	}
	return err
}

func (r *replacingRegisterer) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		if err := r.Register(col); err != nil {
			panic(err)
		}
	}
}

func (r *replacingRegisterer) Unregister(col prometheus.Collector) bool { return r.reg.Unregister(col) }

func (c *Controller) stopLocked() {
	if c.run == nil {
		return
	}
	c.run.cancel()
	select {
	case <-c.run.done:
	case <-time.After(30 * time.Second):
		c.log.Warn("source connector did not stop within 30s", "epoch", c.run.epoch)
	}
	c.log.Info("source connector stopped", "epoch", c.run.epoch)
	c.run = nil
}

func (c *Controller) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

// commit blocks source writes (when asked), takes the final source cluster
// time, has the running connector write the commit markers after it, and
// records that. It runs outside the lock: the markers wait for the stream.
func (c *Controller) commit(ctx context.Context, st control.Status) {
	defer func() {
		c.mu.Lock()
		c.committing = false
		c.mu.Unlock()
		c.poke()
	}()
	var warnings []string
	if st.Params.EnableUserWriteBlocking {
		if w := c.writeBlock(ctx, st.Params.Source, true); w != "" {
			warnings = append(warnings, w)
		}
	}
	final, err := c.clusterTime(ctx, st.Params.Source)
	if err != nil {
		c.log.Error("commit: taking the final source cluster time", "err", err)
		return
	}
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r == nil {
		c.log.Error("commit: no source connector is running")
		return
	}
	id := fmt.Sprintf("commit/e%d/%d.%d", st.Epoch, final.T, final.I)
	c.log.Info("commit: writing commit markers", "marker", id, "after", fmt.Sprintf("%d.%d", final.T, final.I))
	if err := r.svc.MarkCommit(ctx, id, schema.ClusterTime{T: final.T, I: final.I}); err != nil {
		c.log.Error("commit: writing the markers", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.append(ctx, control.Event{Type: control.EvCommitMarked, MarkerID: id,
		ClusterTime: &control.ClusterTime{T: final.T, I: final.I}, Warnings: warnings}); err != nil {
		c.log.Error("commit: recording the markers", "err", err)
	}
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
	return snapshot.ClusterTime(ctx, cl)
}

// writeBlock turns user write blocking on or off on a cluster and returns a
// warning when the server cannot do it.
func (c *Controller) writeBlock(ctx context.Context, name string, on bool) string {
	cl, err := c.connect(ctx, name)
	if err == nil {
		defer cl.Disconnect(context.WithoutCancel(ctx))
		err = cl.Database("admin").RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: on}}).Err()
	}
	if err == nil {
		c.log.Info("user write blocking set", "cluster", name, "blocked", on)
		return ""
	}
	verb := "block"
	if !on {
		verb = "unblock"
	}
	w := fmt.Sprintf("could not %s user writes on %s with setUserWriteBlockMode (%v): the server may not support it (MongoDB 6.0+ needed); stop application writes to the source yourself before commit, and keep them away from the destination until canWrite is true", verb, name, err)
	c.log.Warn(w)
	return w
}
