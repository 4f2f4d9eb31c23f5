package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Service is what one epoch runs. Run returns nil after its context ends; an
// error, or returning while the context is live, counts as a failure.
type Service interface {
	Run(ctx context.Context) error
}

// StartFunc builds the service of one attempt; reg is the attempt's fresh
// metrics registry. A start error counts as a failed attempt.
type StartFunc[S Service] func(ctx context.Context, reg *prometheus.Registry) (S, error)

// Config is the restart policy.
type Config struct {
	// Initial is the first delay after a failure; it doubles per failure.
	Initial time.Duration
	// Max caps the delay.
	Max time.Duration
	// ResetAfter: a run that stayed up this long starts the backoff afresh.
	ResetAfter time.Duration
	// Jitter is the share, in [0, 0.5], a delay may be shortened by at random.
	Jitter float64
	// StopTimeout bounds the wait for a stopping service.
	StopTimeout time.Duration
	// Redact cleans error text before it is stored, logged or reported
	// (nil: none; the connectors pass their mongox.Redactor).
	Redact func(string) string
	// OnFailure, when set, is told of each failure (for an owner that
	// explains known errors in its own progress field).
	OnFailure func(epoch int, err error)
	// Permanent, when set, picks the failures a restart cannot cure (e.g.
	// a state written by a newer release): the service is not restarted
	// and Fatal returns the error, for the owner to stop on.
	Permanent func(err error) bool
}

// DefaultConfig is 1 s doubling to 1 min, reset after 1 min up, 20% jitter.
func DefaultConfig() Config {
	return Config{Initial: time.Second, Max: time.Minute, ResetAfter: time.Minute, Jitter: 0.2, StopTimeout: time.Minute}
}

// Validate checks the policy; the errors name the connectors' flag.
func (c Config) Validate() error {
	var errs []error
	if c.Initial <= 0 {
		errs = append(errs, fmt.Errorf("restart backoff initial delay %v: must be positive", c.Initial))
	}
	if c.Max < c.Initial {
		errs = append(errs, fmt.Errorf("restart-backoff-max %v: must be at least the initial delay %v", c.Max, c.Initial))
	}
	if c.ResetAfter <= 0 {
		errs = append(errs, fmt.Errorf("restart backoff reset %v: must be positive", c.ResetAfter))
	}
	if c.Jitter < 0 || c.Jitter > 0.5 {
		errs = append(errs, fmt.Errorf("restart jitter %v: use 0..0.5", c.Jitter))
	}
	if c.StopTimeout <= 0 {
		errs = append(errs, fmt.Errorf("stop timeout %v: must be positive", c.StopTimeout))
	}
	return errors.Join(errs...)
}

// Delay is the backoff before the restart after the n-th consecutive failure
// (n >= 1) without jitter: Initial * 2^(n-1), at most Max.
func (c Config) Delay(n int) time.Duration {
	d := c.Initial
	for i := 1; i < n && d < c.Max; i++ {
		d *= 2
	}
	return min(d, c.Max)
}

// jittered draws the actual delay from [d*(1-Jitter), d].
func (c Config) jittered(d time.Duration, r float64) time.Duration {
	return d - time.Duration(float64(d)*c.Jitter*r)
}

// Status is the supervisor's view of the current epoch.
type Status struct {
	Epoch   int  // 0: none wanted
	Running bool // the service is built and running
	// StartedAt is when the running service started (zero when none runs).
	StartedAt time.Time
	// Restarts counts the failures of this epoch's service that led to a
	// restart (since Ensure started the epoch).
	Restarts    int
	LastError   string // redacted; kept after a recovery, with its time
	LastErrorAt time.Time
	NextStart   time.Time // zero unless waiting out a backoff
}

// Report is Status as the connectors put it into GET /api/v1/progress.
type Report struct {
	EpochRestarts int        `json:"epochRestarts"`
	LastError     string     `json:"lastError,omitempty"`
	LastErrorTime *time.Time `json:"lastErrorTime,omitempty"`
	NextRestart   *time.Time `json:"nextRestart,omitempty"`
}

// Report returns the progress fields of s.
func (s Status) Report() Report {
	r := Report{EpochRestarts: s.Restarts, LastError: s.LastError}
	if !s.LastErrorAt.IsZero() {
		t := s.LastErrorAt.UTC()
		r.LastErrorTime = &t
	}
	if !s.NextStart.IsZero() {
		t := s.NextStart.UTC()
		r.NextRestart = &t
	}
	return r
}

// Supervisor runs one epoch's service at a time. Its methods are safe for
// concurrent use; Ensure and Stop are meant for one owner loop.
type Supervisor[S Service] struct {
	cfg      Config
	log      *slog.Logger
	regs     *Registries
	restarts prometheus.Counter
	lastErr  prometheus.Gauge

	// Test hooks.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
	rand  func() float64

	mu     sync.Mutex
	cur    *epochRun[S]
	status Status
	fatal  error
}

// Fatal returns the failure Config.Permanent picked (nil if none): the
// service was not restarted after it.
func (s *Supervisor[S]) Fatal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

type epochRun[S Service] struct {
	epoch  int
	cancel context.CancelFunc
	done   chan struct{}
	svc    S
	has    bool // svc is running (guarded by Supervisor.mu)
}

// New returns a supervisor for a connector role ("source", "sink") and
// registers its metrics in regs' process registry.
func New[S Service](cfg Config, role string, log *slog.Logger, regs *Registries) (*Supervisor[S], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if regs == nil {
		regs = NewRegistries(prometheus.NewRegistry())
	}
	s := &Supervisor[S]{cfg: cfg, log: log, regs: regs,
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "logbridge", Subsystem: role, Name: "epoch_restarts_total",
			Help: "Restarts of the epoch's service after it failed (backoff between them; see /api/v1/progress lastError)."}),
		lastErr: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "logbridge", Subsystem: role, Name: "epoch_last_error_timestamp_seconds",
			Help: "Unix time of the last failure of the epoch's service (0: none)."}),
		now: time.Now, sleep: sleepCtx, rand: rand.Float64,
	}
	// Read at scrape time, so it is true to the moment: 0 while the
	// service fails to start or waits out a backoff.
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "logbridge", Subsystem: role, Name: "epoch_running",
		Help: "1 while the current epoch's service runs, 0 while none runs (none wanted, failing to start, or waiting out a restart backoff)."},
		func() float64 {
			if s.Status().Running {
				return 1
			}
			return 0
		})
	if err := regs.base.Register(running); err != nil {
		return nil, fmt.Errorf("registering the supervisor metrics: %w", err)
	}
	if err := regs.base.Register(s.restarts); err != nil {
		return nil, fmt.Errorf("registering the supervisor metrics: %w", err)
	}
	if err := regs.base.Register(s.lastErr); err != nil {
		return nil, fmt.Errorf("registering the supervisor metrics: %w", err)
	}
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Ensure runs epoch's service, built by start: nothing happens when that
// epoch already runs (or waits out a backoff); another epoch is stopped
// first. The service's context is ctx without its cancellation: only Stop
// (or a later Ensure) stops it, so that the owner controls the shutdown.
func (s *Supervisor[S]) Ensure(ctx context.Context, epoch int, start StartFunc[S]) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil && cur.epoch == epoch {
		return
	}
	s.Stop()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &epochRun[S]{epoch: epoch, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.cur = e
	s.status = Status{Epoch: epoch}
	s.mu.Unlock()
	go s.loop(rctx, e, start)
}

// Stop stops the current epoch's service and waits for it (at most
// StopTimeout). The last error stays in Status.
func (s *Supervisor[S]) Stop() {
	s.mu.Lock()
	e := s.cur
	s.cur = nil
	s.mu.Unlock()
	if e == nil {
		return
	}
	e.cancel()
	select {
	case <-e.done:
		s.log.Info("epoch service stopped", "epoch", e.epoch)
	case <-time.After(s.cfg.StopTimeout):
		s.log.Warn("epoch service did not stop in time", "epoch", e.epoch, "waited", s.cfg.StopTimeout)
	}
	s.mu.Lock()
	if s.cur == nil {
		s.status.Epoch, s.status.Running, s.status.NextStart = 0, false, time.Time{}
		s.regs.set(nil) // no service, no service metrics
	}
	s.mu.Unlock()
}

// Current returns the running service of the current epoch.
func (s *Supervisor[S]) Current() (svc S, epoch int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || !s.cur.has {
		return svc, 0, false
	}
	return s.cur.svc, s.cur.epoch, true
}

// Status returns the current epoch's supervision state.
func (s *Supervisor[S]) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Supervisor[S]) redact(err error) string {
	if s.cfg.Redact == nil {
		return err.Error()
	}
	return s.cfg.Redact(err.Error())
}

func (s *Supervisor[S]) loop(ctx context.Context, e *epochRun[S], start StartFunc[S]) {
	defer close(e.done)
	failures := 0
	for {
		began := s.now()
		reg := prometheus.NewRegistry()
		svc, err := start(ctx, reg)
		if err == nil {
			s.regs.set(reg)
			s.mu.Lock()
			e.svc, e.has = svc, true
			if s.cur == e {
				s.status.Running, s.status.StartedAt, s.status.NextStart = true, s.now(), time.Time{}
			}
			s.mu.Unlock()
			s.log.Info("epoch service started", "epoch", e.epoch)
			err = svc.Run(ctx)
			s.mu.Lock()
			var zero S
			e.svc, e.has = zero, false
			if s.cur == e {
				s.status.Running, s.status.StartedAt = false, time.Time{}
			}
			s.mu.Unlock()
		}
		if ctx.Err() != nil {
			return // stopped: not a failure
		}
		if err == nil {
			err = errors.New("the service stopped on its own")
		}
		now := s.now()
		if now.Sub(began) >= s.cfg.ResetAfter {
			failures = 0
		}
		failures++
		delay := s.cfg.jittered(s.cfg.Delay(failures), s.rand())
		msg := s.redact(err)
		if s.cfg.Permanent != nil && s.cfg.Permanent(err) {
			s.mu.Lock()
			if s.cur == e {
				s.status.LastError, s.status.LastErrorAt, s.status.NextStart = msg, now, time.Time{}
			}
			s.fatal = err
			s.mu.Unlock()
			s.lastErr.Set(float64(now.UnixNano()) / 1e9)
			s.log.Error("epoch service failed; a restart cannot cure this, not restarting", "epoch", e.epoch, "err", msg)
			return
		}
		s.mu.Lock()
		if s.cur == e {
			s.status.Restarts++
			s.status.LastError, s.status.LastErrorAt, s.status.NextStart = msg, now, now.Add(delay)
		}
		s.mu.Unlock()
		s.restarts.Inc()
		s.lastErr.Set(float64(now.UnixNano()) / 1e9)
		if s.cfg.OnFailure != nil {
			s.cfg.OnFailure(e.epoch, err)
		}
		s.log.Error("epoch service failed; restarting after a backoff", "epoch", e.epoch, "in", delay.Round(time.Millisecond),
			"failures", failures, "err", msg)
		if !s.sleep(ctx, delay) {
			return
		}
	}
}

// Registries serves the process metrics together with those of the current
// attempt's fresh registry.
type Registries struct {
	base *prometheus.Registry
	mu   sync.Mutex
	cur  *prometheus.Registry
}

// NewRegistries wraps the process registry.
func NewRegistries(base *prometheus.Registry) *Registries { return &Registries{base: base} }

// Registerer is the process registry (metrics that outlive epochs).
func (r *Registries) Registerer() prometheus.Registerer { return r.base }

func (r *Registries) set(reg *prometheus.Registry) {
	r.mu.Lock()
	r.cur = reg
	r.mu.Unlock()
}

// Gather implements prometheus.Gatherer.
func (r *Registries) Gather() ([]*dto.MetricFamily, error) {
	r.mu.Lock()
	gs := prometheus.Gatherers{r.base}
	if r.cur != nil {
		gs = append(gs, r.cur)
	}
	r.mu.Unlock()
	return gs.Gather()
}

var _ prometheus.Gatherer = (*Registries)(nil)

// Backoff spaces the retries of one operation that an owner loop attempts on
// every poll (connecting for a commit check, say) with the policy's delays,
// so that a cluster rejecting the credentials is not dialled twice a second.
// Not safe for concurrent use.
type Backoff struct {
	cfg      Config
	failures int
	next     time.Time
}

// NewBackoff returns a backoff with cfg's delays (without jitter).
func NewBackoff(cfg Config) *Backoff { return &Backoff{cfg: cfg} }

// Ready reports whether the operation may be attempted at now.
func (b *Backoff) Ready(now time.Time) bool { return !now.Before(b.next) }

// Failed records a failure at now and returns the wait before the next try.
func (b *Backoff) Failed(now time.Time) time.Duration {
	b.failures++
	d := b.cfg.Delay(b.failures)
	b.next = now.Add(d)
	return d
}

// Succeeded resets the delays.
func (b *Backoff) Succeeded() { b.failures, b.next = 0, time.Time{} }
