// Package follow runs the sink in mongosync mode: it follows the sync's
// control log (<prefix>._control, see pkg/control) and runs one sink service
// for the current epoch, into the cluster the start request names as the
// destination.
//
//   - RUNNING, COMMITTING: the epoch's sink runs (topics
//     control.TopicPrefix(prefix, epoch), group control.SinkGroup(group,
//     epoch), ns-map from namespaceRemap, build-indexes from buildIndexes).
//   - PAUSED, COMMITTED, REVERSING, IDLE: no sink runs; stopping one commits
//     what the destination acknowledged, so a resume continues exactly there.
//   - An epoch change stops the old sink and starts the new one.
//   - COMMITTING with a commit marker: once the destination records the marker
//     as applied in every data topic of the epoch (__logbridge.applied_ddl,
//     {g: group, id: marker, ns: "topic:<topic>"}), the follower takes the
//     destination's cluster time and appends sinkCommitted with it; the
//     source-connector then completes the commit, and a reversal starts the
//     new source's change stream at that time.
//
// All of it is derived from the control log and the destination, so a
// restarted sink continues where it was.
package follow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/supervise"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/sink-connector/internal/apply"
	"github.com/logbridge/logbridge/sink-connector/sink"
)

// restartInitial is the first wait before a failed epoch sink is started
// again (it doubles up to --restart-backoff-max); tests shorten it.
var restartInitial = time.Second

// Follower runs the sink of the control log's current epoch.
type Follower struct {
	base     sink.Config
	prefix   string
	clusters map[string]string
	log      *slog.Logger
	red      *mongox.Redactor
	regs     *supervise.Registries
	sup      *supervise.Supervisor[*sink.Service] // the epoch's sink
	clog     *control.Log
	kcl      *kgo.Client
	adm      *kadm.Client
	http     *httpapi.Server
	mprobe   *mongox.Prober // readiness: the destination reachable

	loopMu    sync.Mutex               // held by the reconcile loop
	dests     map[string]*mongo.Client // by cluster name, for the commit check
	destRetry *supervise.Backoff       // spaces failed connections for the commit check
	destErr   error                    // the last of them

	mu         sync.Mutex // guards what progress reads
	state      control.Status
	lastErr    string
	commitWait string
}

// New validates cfg (which must be in mongosync mode), opens the control log,
// binds the HTTP address and loads the state. reg receives the process
// metrics; each epoch's sink gets a fresh registry served with it.
func New(ctx context.Context, cfg sink.Config, log *slog.Logger, reg *prometheus.Registry) (*Follower, error) {
	if !cfg.Managed() {
		return nil, errors.New("mongosync mode needs --cluster0 and/or --cluster1")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := &Follower{base: cfg, prefix: strings.TrimSuffix(cfg.TopicPrefix, "."), clusters: map[string]string{},
		log: log, regs: supervise.NewRegistries(reg), dests: map[string]*mongo.Client{},
		red: mongox.NewRedactor([]string{cfg.Cluster0, cfg.Cluster1}, cfg.Kafka.SASLPassword)}
	for name, uri := range map[string]string{"cluster0": cfg.Cluster0, "cluster1": cfg.Cluster1} {
		if uri != "" {
			f.clusters[name] = uri
		}
	}
	rc := supervise.DefaultConfig()
	rc.Initial, rc.Max = restartInitial, cfg.RestartBackoffMax
	rc.Redact = f.red.String
	// A newer release's state or metadata cannot be read by restarting.
	rc.Permanent = func(err error) bool { return errors.Is(err, version.ErrNewerFormat) }
	rc.OnFailure = func(epoch int, err error) { f.setErr(fmt.Errorf("epoch %d sink: %w", epoch, err)) }
	var err error
	if f.sup, err = supervise.New[*sink.Service](rc, "sink", log, f.regs); err != nil {
		return nil, err
	}
	f.destRetry = supervise.NewBackoff(rc)
	kopts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, err
	}
	if f.clog, err = control.NewLog(ctx, kopts, f.prefix); err != nil {
		return nil, err
	}
	if f.kcl, err = kgo.NewClient(kopts...); err != nil {
		f.clog.Close()
		return nil, fmt.Errorf("creating Kafka client: %w", err)
	}
	f.adm = kadm.NewClient(f.kcl)
	if f.state, _, err = f.clog.Load(ctx); err != nil {
		f.Close()
		return nil, err
	}
	// The state is exported from the moment it is known, whether or not
	// the epoch's sink can start.
	if err := reg.Register(control.NewStateCollector("sink", f.currentState)); err != nil {
		f.Close()
		return nil, fmt.Errorf("registering the control state metrics: %w", err)
	}
	if cfg.HTTP.Addr != "" {
		if f.http, err = httpapi.New(cfg.HTTP, f.regs, log); err != nil {
			f.Close()
			return nil, err
		}
		f.http.Handle("GET /api/v1/progress", http.HandlerFunc(f.serveProgress))
		f.mprobe = mongox.NewProber()
		f.ready(f.http)
	}
	log.Info("control state loaded (mongosync mode)", "prefix", f.prefix, "state", f.state.State, "epoch", f.state.Epoch, "events", f.state.Events)
	return f, nil
}

// HTTPAddr is the bound address of the HTTP server ("" without one).
func (f *Follower) HTTPAddr() string {
	if f.http == nil {
		return ""
	}
	return f.http.Addr
}

// Close releases the clients; Run calls it on return.
func (f *Follower) Close() {
	if f.clog != nil {
		f.clog.Close()
	}
	if f.kcl != nil {
		f.kcl.Close()
	}
	for _, cl := range f.dests {
		_ = cl.Disconnect(context.Background())
	}
	if f.mprobe != nil {
		f.mprobe.Close()
	}
}

func (f *Follower) currentState() control.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// ready adds the follower's readiness checks:
//
//	kafka     a broker of the control log's cluster answers
//	mongodb   in IDLE every configured cluster answers (a bad URI shows
//	          before start), else the epoch's destination
//	pipeline  in RUNNING and COMMITTING the epoch's sink runs; other states run none
func (f *Follower) ready(srv *httpapi.Server) {
	srv.Ready("kafka", func(ctx context.Context) error {
		return f.red.Error(kafkax.Ping(ctx, f.kcl, f.base.Kafka.Brokers))
	})
	srv.Ready("mongodb", func(ctx context.Context) error {
		st := f.currentState()
		names := []string{st.Params.Destination}
		if st.State == control.Idle || st.State == "" {
			names = f.names()
		}
		for _, n := range names {
			uri, ok := f.clusters[n]
			if !ok {
				return fmt.Errorf("the sync's destination %q is not configured on the sink: give --%s", n, n)
			}
			if err := f.mprobe.Ping(ctx, "cluster "+n, uri); err != nil {
				return f.red.Error(err)
			}
		}
		return nil
	})
	srv.Ready("pipeline", func(context.Context) error {
		st := f.currentState()
		if st.State != control.Running && st.State != control.Committing {
			return nil
		}
		_, epoch, ok := f.sup.Current()
		switch sst := f.sup.Status(); {
		case ok && epoch == st.Epoch:
			return nil
		case sst.LastError != "":
			return fmt.Errorf("the epoch %d sink is not running (last error: %s); it restarts after a backoff, see /api/v1/progress", st.Epoch, sst.LastError)
		default:
			return fmt.Errorf("the epoch %d sink is starting", st.Epoch)
		}
	})
}

// Run follows the control log until ctx ends, then stops the epoch's sink
// (committing what was applied) and returns nil.
func (f *Follower) Run(ctx context.Context) error {
	defer f.Close()
	g, gctx := errgroup.WithContext(ctx)
	if f.http != nil {
		g.Go(func() error { return f.http.Run(gctx) })
	}
	g.Go(func() error {
		defer f.stop()
		t := time.NewTicker(f.base.ControlPoll)
		defer t.Stop()
		for {
			if err := f.Reconcile(gctx); err != nil && gctx.Err() == nil {
				if errors.Is(err, version.ErrNewerFormat) {
					// A newer release wrote the control log: stop rather
					// than act on a state this binary cannot derive.
					return f.red.Error(err)
				}
				f.setErr(err)
				f.log.Error("following the control log failed; retrying", "err", f.red.Error(err))
			}
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	f.log.Info("sink following the control log", "topic", control.Topic(f.prefix), "http", f.HTTPAddr())
	err := g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Reconcile reads the control log once and brings the running sink and the
// commit in line with it.
func (f *Follower) Reconcile(ctx context.Context) error {
	f.loopMu.Lock()
	defer f.loopMu.Unlock()
	if err := f.sup.Fatal(); err != nil {
		return fmt.Errorf("the epoch's sink: %w", err)
	}
	st, _, err := f.clog.Load(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	prev := f.state
	f.state = st
	f.mu.Unlock()
	if prev.State != st.State || prev.Epoch != st.Epoch {
		f.log.Info("control state", "state", st.State, "epoch", st.Epoch)
	}

	// The supervisor restarts a failed sink with backoff (its failures
	// reach setErr through OnFailure) and replaces it on an epoch change.
	if sst := f.sup.Status(); sst.Running && time.Since(sst.StartedAt) > time.Minute {
		f.setErr(nil) // a sink that runs fine clears the last failure (lastError keeps it)
	}
	want := st.State == control.Running || st.State == control.Committing
	if !want {
		f.sup.Stop()
		f.setErr(nil)
	}
	if want {
		if err := f.ensure(ctx, st); err != nil {
			return fmt.Errorf("starting the epoch %d sink: %w", st.Epoch, err)
		}
		if svc, epoch, ok := f.sup.Current(); ok && epoch == st.Epoch {
			svc.SetWriteRate(f.writeRate(st)) // a throttle changed through the API
		}
	}
	if st.State == control.Committing && st.MarkerID != "" && !st.SinkCommitted {
		return f.checkCommit(ctx, st)
	}
	f.mu.Lock()
	f.commitWait = ""
	f.mu.Unlock()
	return nil
}

// EpochConfig is the sink configuration of the state's epoch.
func (f *Follower) EpochConfig(st control.Status) (sink.Config, error) {
	c := f.base
	c.Cluster0, c.Cluster1 = "", ""
	uri, ok := f.clusters[st.Params.Destination]
	if !ok {
		return c, fmt.Errorf("destination cluster %q is not configured on the sink (configured: %v; add it with --%s)", st.Params.Destination, f.names(), st.Params.Destination)
	}
	c.DestURI = uri
	c.TopicPrefix = control.TopicPrefix(f.prefix, st.Epoch)
	c.Group = control.SinkGroup(f.base.Group, st.Epoch)
	c.HTTP = httpapi.Config{} // the follower serves HTTP for every epoch
	c.BuildIndexes = f.base.BuildIndexes && st.Params.BuildIndexes != control.BuildNever
	c.ExcludeHashedIndexes = f.base.ExcludeHashedIndexes || st.Params.ExcludeHashedIndexes()
	c.MaxWriteRate = f.writeRate(st)
	rules, err := NSMapRules(st.Params.NamespaceRemap)
	if err != nil {
		return c, err
	}
	c.NSMap = append(append(c.NSMap[:0:0], f.base.NSMap...), rules...)
	return c, nil
}

// writeRate is the write throttle in force: the one set through the
// control API (POST /api/v1/throttle), else --max-write-rate.
func (f *Follower) writeRate(st control.Status) throttle.Rate {
	if r := st.Throttle.MaxWriteRate; r != nil {
		return *r
	}
	return f.base.MaxWriteRate
}

// NSMapRules turns namespaceRemap entries into --ns-map rules, checked by
// the same compilation the control API accepted them with.
func NSMapRules(remap []control.Remap) ([]string, error) { return control.RemapRules(remap) }

func (f *Follower) names() []string {
	var out []string
	for n := range f.clusters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ensure has the supervisor run the sink of st's epoch.
func (f *Follower) ensure(ctx context.Context, st control.Status) error {
	cfg, err := f.EpochConfig(st)
	if err != nil {
		return err
	}
	log := f.log.With("epoch", st.Epoch)
	f.sup.Ensure(ctx, st.Epoch, func(ctx context.Context, reg *prometheus.Registry) (*sink.Service, error) {
		svc, err := sink.New(ctx, cfg, log, reg)
		if err != nil {
			return nil, err
		}
		log.Info("epoch sink started", "destination", st.Params.Destination,
			"prefix", cfg.TopicPrefix, "group", cfg.Group, "ns-map", strings.Join(cfg.NSMap, ","), "build-indexes", cfg.BuildIndexes)
		return svc, nil
	})
	return nil
}

// stop stops the epoch's sink; its shutdown commits what the destination
// acknowledged (a clean point to continue from).
func (f *Follower) stop() {
	f.loopMu.Lock()
	defer f.loopMu.Unlock()
	f.sup.Stop()
}

func (f *Follower) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		f.lastErr = ""
	case mongox.IsUserWritesBlocked(err):
		f.lastErr = f.red.String(err.Error()) + ": the destination blocks user writes (setUserWriteBlockMode, enableUserWriteBlocking) and the sink's MongoDB user may not bypass it; grant it the bypassWriteBlockingMode privilege"
	default:
		f.lastErr = f.red.String(err.Error())
	}
}

func (f *Follower) dest(ctx context.Context, name string) (*mongo.Client, error) {
	if cl := f.dests[name]; cl != nil {
		return cl, nil
	}
	uri, ok := f.clusters[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q is not configured (configured: %v)", name, f.names())
	}
	// Polled twice a second while committing: a destination that rejects
	// the credentials is dialled again only after a backoff.
	if !f.destRetry.Ready(time.Now()) {
		return nil, f.destErr
	}
	cl, err := mongox.Connect(ctx, name, uri)
	if err != nil {
		f.destErr = fmt.Errorf("%w (connecting again after a backoff of %v)", err, f.destRetry.Failed(time.Now()))
		return nil, f.destErr
	}
	f.destRetry.Succeeded()
	f.dests[name] = cl
	return cl, nil
}

// checkCommit appends sinkCommitted once the destination records the commit
// marker as applied in every data topic of the epoch.
func (f *Follower) checkCommit(ctx context.Context, st control.Status) error {
	cfg, err := f.EpochConfig(st)
	if err != nil {
		return err
	}
	cl, err := f.dest(ctx, st.Params.Destination)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topics, err := f.adm.ListTopics(lctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	applied, err := apply.AppliedMarkerTopics(lctx, cl, cfg.Group, st.MarkerID)
	if err != nil {
		return err
	}
	var data, missing []string
	for _, t := range topics.Names() {
		if cfg.Subscribes(t) {
			data = append(data, t)
			if !applied[t] {
				missing = append(missing, t)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		w := fmt.Sprintf("commit marker %s applied in %d of %d topics; waiting for %s", st.MarkerID, len(data)-len(missing), len(data), strings.Join(missing[:min(3, len(missing))], ", "))
		f.mu.Lock()
		f.commitWait = w
		f.mu.Unlock()
		return nil
	}
	ts, err := ClusterTime(lctx, cl)
	if err != nil {
		return fmt.Errorf("taking the destination cluster time after the commit marker: %w", err)
	}
	if err := f.clog.Append(ctx, control.Event{Type: control.EvSinkCommitted, MarkerID: st.MarkerID,
		DestClusterTime: control.TimeOf(ts)}); err != nil {
		return err
	}
	f.mu.Lock()
	f.commitWait = ""
	f.mu.Unlock()
	f.log.Info("commit marker applied in every topic; recorded sinkCommitted", "marker", st.MarkerID, "topics", len(data),
		"destClusterTime", fmt.Sprintf("%d.%d", ts.T, ts.I))
	return nil
}

// ClusterTime returns a destination cluster time at or after every write
// acknowledged before the call: the time of a no-op oplog entry written with
// appendOplogNote, else (no privilege, not supported) the operationTime /
// $clusterTime of a hello. The same approach as the source-connector's T0.
func ClusterTime(ctx context.Context, cl *mongo.Client) (bson.Timestamp, error) {
	t, err := mongox.ClusterTime(ctx, cl, "logbridge sink connector: commit applied")
	if errors.Is(err, mongox.ErrNoClusterTime) {
		return t, fmt.Errorf("the destination: %w, so a reversed sync could not start its change stream there", err)
	}
	return t, err
}

// Progress is the body of the follower's GET /api/v1/progress (inside
// "progress"): the epoch sink's position (sink.Progress, absent while no sink
// runs) and the control state.
type Progress struct {
	*sink.Progress
	State         control.State        `json:"state"`
	Epoch         int                  `json:"epoch"`
	TopicPrefix   string               `json:"topicPrefix,omitempty"`
	Destination   string               `json:"destination,omitempty"`
	Running       bool                 `json:"running"`
	MarkerID      string               `json:"commitMarkerId,omitempty"`
	SinkCommitted bool                 `json:"sinkCommitted"`
	DestTime      *control.ClusterTime `json:"destClusterTime,omitempty"`
	CommitWait    string               `json:"commitWait,omitempty"`
	Warnings      []string             `json:"warnings"`
	Error         string               `json:"error,omitempty"`
	// MaxWriteRate is the destination write throttle in force.
	MaxWriteRate throttle.Rate `json:"maxWriteRate"`
	// Report is the epoch sink's supervision: restarts after a failure,
	// the last error (redacted) and its time, the next attempt.
	supervise.Report
	// Build names the binary (pkg/version): what a rolling upgrade checks.
	Build version.Info `json:"build"`
}

// Progress returns the follower's view. Safe for concurrent use.
func (f *Follower) Progress() Progress {
	f.mu.Lock()
	st := f.state
	p := Progress{State: st.State, Epoch: st.Epoch, MarkerID: st.MarkerID, SinkCommitted: st.SinkCommitted,
		DestTime: st.ResumeDestTime, CommitWait: f.commitWait, Error: f.lastErr, Warnings: append([]string{}, st.Warnings...),
		Report: f.sup.Status().Report(), Build: version.Get(), MaxWriteRate: f.writeRate(st)}
	f.mu.Unlock()
	if st.State != control.Idle {
		p.Destination = st.Params.Destination
		p.TopicPrefix = control.TopicPrefix(f.prefix, st.Epoch)
	}
	if svc, _, ok := f.sup.Current(); ok {
		sp := svc.Progress()
		p.Progress, p.Running = &sp, true
	}
	return p
}

func (f *Follower) serveProgress(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "progress": f.Progress()})
}
