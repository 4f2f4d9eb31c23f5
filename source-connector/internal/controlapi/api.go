package controlapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/supervise"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/source-connector/internal/app"
)

// Mux is what the routes are mounted on (obs.Server or http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Routes mounts the API.
func (c *Controller) Routes(m Mux) {
	m.Handle("POST /api/v1/start", http.HandlerFunc(c.handleStart))
	m.Handle("GET /api/v1/progress", http.HandlerFunc(c.handleProgress))
	m.Handle("POST /api/v1/verify", http.HandlerFunc(c.handleVerify))
	m.Handle("POST /api/v1/throttle", http.HandlerFunc(c.handleThrottle))
	for _, a := range []control.Action{control.ActionPause, control.ActionResume, control.ActionCommit, control.ActionReverse} {
		m.Handle("POST /api/v1/"+string(a), c.transition(a))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers with mongosync's error shape, shared with the listener's
// own refusals (401, 413) in pkg/httpapi.
func fail(w http.ResponseWriter, code int, kind string, err error) {
	httpapi.WriteError(w, code, kind, err.Error())
}

func ok(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]bool{"success": true}) }

// decode reads a JSON body, refusing unknown fields so that a misspelt
// option is an error rather than silently ignored, and answers the request
// itself when it returns false: 413 for a body over httpapi.MaxBodyBytes
// (read through http.MaxBytesReader, so it is refused rather than cut to
// the limit), 400 for one that does not decode.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpapi.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			fail(w, http.StatusRequestEntityTooLarge, "RequestTooLarge", errors.New(httpapi.TooLarge))
			return false
		}
		fail(w, http.StatusBadRequest, "InvalidRequest", fmt.Errorf("reading the request body: %w", err))
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "InvalidRequest", fmt.Errorf("the request body is not valid JSON for this endpoint: %w", err))
		return false
	}
	return true
}

func (c *Controller) handleStart(w http.ResponseWriter, r *http.Request) {
	var p control.StartParams
	if !decode(w, r, &p) {
		return
	}
	compiled, err := c.validateStart(p)
	if err != nil {
		fail(w, http.StatusBadRequest, "InvalidRequest", err)
		return
	}
	// c.ops keeps the state from changing until the start is recorded;
	// c.mu only for the check, so progress answers during the I/O below.
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	err = c.state.Check(control.ActionStart)
	c.mu.Unlock()
	if err != nil {
		fail(w, http.StatusConflict, "InvalidStateTransition", err)
		return
	}
	// mongosync's checks of the clusters (prestart.go), then the
	// destination-data policy: refused with 400 before anything is written.
	checked, err := c.preStart(r.Context(), p, compiled)
	switch {
	case errors.Is(err, errPreStart):
		fail(w, http.StatusBadRequest, "InvalidRequest", err)
		return
	case err != nil:
		fail(w, http.StatusServiceUnavailable, "ClusterUnavailable", fmt.Errorf("checking the clusters before the start: %w: retry once they answer", c.red.Error(err)))
		return
	}
	warnings := append(append([]string{}, compiled.Warnings...), checked...)
	// Blocking was asked for: a destination that cannot be blocked refuses
	// the start (mongosync fails it too) instead of a sync that would let
	// application writes reach the destination unseen.
	if p.EnableUserWriteBlocking.Destination() {
		if err := c.writeBlock(r.Context(), p.Destination, true); err != nil {
			var se mongo.ServerError
			if errors.As(err, &se) {
				fail(w, http.StatusBadRequest, "InvalidRequest", err)
			} else {
				fail(w, http.StatusServiceUnavailable, "ClusterUnavailable", err)
			}
			return
		}
	}
	if err := c.append(r.Context(), control.Event{Type: control.EvStart, Params: &p, Warnings: warnings}); err != nil {
		fail(w, http.StatusServiceUnavailable, "ControlLogUnavailable", err)
		return
	}
	c.poke()
	if len(warnings) == 0 {
		ok(w)
		return
	}
	// mongosync answers {"success": true}; the warnings are logbridge's
	// addition (they stay in progress.warnings too).
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "warnings": warnings})
}

// validateStart checks what only a new request must meet
// (control.CheckRequest: reverse prerequisites) and compiles every start
// parameter (control.Compile, the same function every epoch start uses), so
// that a request that could not run is refused with 400 before anything is
// written to the control log.
func (c *Controller) validateStart(p control.StartParams) (*control.Compiled, error) {
	if err := control.CheckRequest(p); err != nil {
		return nil, err
	}
	return control.Compile(p, c.names())
}

// handleThrottle sets the snapshot read rate and/or the sink's write rate
// (POST /api/v1/throttle, logbridge's): recorded in the control log, so
// both services apply it, now and after a restart. Any state.
func (c *Controller) handleThrottle(w http.ResponseWriter, r *http.Request) {
	var t control.Throttle
	if !decode(w, r, &t) {
		return
	}
	if t.MaxReadRate == nil && t.MaxWriteRate == nil {
		fail(w, http.StatusBadRequest, "InvalidRequest", errors.New(`give "maxReadRate" and/or "maxWriteRate", e.g. {"maxReadRate": {"docs": 5000, "bytes": 8388608}} ({} is unlimited)`))
		return
	}
	for name, rate := range map[string]*throttle.Rate{"maxReadRate": t.MaxReadRate, "maxWriteRate": t.MaxWriteRate} {
		if rate != nil {
			if err := rate.Validate(); err != nil {
				fail(w, http.StatusBadRequest, "InvalidRequest", fmt.Errorf("%s: %w", name, err))
				return
			}
		}
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := c.append(r.Context(), control.Event{Type: control.EvThrottle, Throttle: &t}); err != nil {
		fail(w, http.StatusServiceUnavailable, "ControlLogUnavailable", err)
		return
	}
	c.poke()
	ok(w)
}

var transitionEvent = map[control.Action]control.EventType{
	control.ActionPause:   control.EvPause,
	control.ActionResume:  control.EvResume,
	control.ActionCommit:  control.EvCommit,
	control.ActionReverse: control.EvReverse,
}

func (c *Controller) transition(a control.Action) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !decode(w, r, &struct{}{}) {
			return
		}
		if a == control.ActionCommit {
			p := c.progress(r.Context())
			if p.State == control.Running && !p.CanCommit {
				fail(w, http.StatusConflict, "InvalidStateTransition",
					fmt.Errorf("%w: cannot commit yet: %s (wait until progress says canCommit: true)", control.ErrInvalidTransition, p.notReady))
				return
			}
		}
		c.ops.Lock()
		defer c.ops.Unlock()
		c.mu.Lock()
		err := c.state.Check(a)
		c.mu.Unlock()
		if err != nil {
			fail(w, http.StatusConflict, "InvalidStateTransition", err)
			return
		}
		if err := c.append(r.Context(), control.Event{Type: transitionEvent[a]}); err != nil {
			fail(w, http.StatusServiceUnavailable, "ControlLogUnavailable", err)
			return
		}
		c.poke()
		ok(w)
	})
}

// Progress is the body of GET /api/v1/progress (inside "progress"). The
// mongosync fields come first; the rest are logbridge's.
type Progress struct {
	State     control.State `json:"state"`
	CanCommit bool          `json:"canCommit"`
	CanWrite  bool          `json:"canWrite"`
	Info      string        `json:"info"`
	// LagTimeSeconds is how far the destination is behind the source: the
	// age of the oldest change in the log the sink has not applied (0 when
	// it applied everything). See sink.lagSeconds and lag.go.
	LagTimeSeconds int64 `json:"lagTimeSeconds"`
	// TotalEventsApplied is the change events the epoch's sink applied to
	// the destination (approximate, as mongosync's; see
	// control.AppliedCount): the sink keeps the count on the destination.
	TotalEventsApplied int64             `json:"totalEventsApplied"`
	CollectionCopy     CollectionCopy    `json:"collectionCopy"`
	DirectionMapping   *DirectionMapping `json:"directionMapping,omitempty"`
	// MongosyncID names this instance (mongosync's --id); logbridge runs one
	// source-connector per sync, so it is also the coordinator: both are
	// the topic prefix, which names the sync's control log.
	MongosyncID   string       `json:"mongosyncID"`
	CoordinatorID string       `json:"coordinatorID"`
	Source        *ClusterInfo `json:"source,omitempty"`
	Destination   *ClusterInfo `json:"destination,omitempty"`
	Warnings      []string     `json:"warnings"`

	Epoch int `json:"epoch"`
	// SourceLagSeconds is the source connector's own capture lag: now minus
	// the time of the last change event or heartbeat it committed to Kafka.
	SourceLagSeconds float64              `json:"sourceLagSeconds"`
	TopicPrefix      string               `json:"topicPrefix,omitempty"`
	Phase            string               `json:"phase,omitempty"`
	Namespaces       []NamespaceCopy      `json:"namespaces,omitempty"`
	Sink             *SinkPosition        `json:"sink,omitempty"`
	Commit           *control.ClusterTime `json:"commitClusterTime,omitempty"`
	Error            string               `json:"error,omitempty"`
	// Throttle is the rates in force: the snapshot's reads (this service)
	// and the sink's writes (as set here or by the sink's flag).
	Throttle ThrottleRates `json:"throttle"`
	// Verification is the last run started with POST /api/v1/verify.
	Verification *Verification `json:"verification,omitempty"`
	// Report is the epoch connector's supervision: restarts after a
	// failure, the last error (redacted) and its time, the next attempt.
	supervise.Report
	// Build names the binary (pkg/version): what a rolling upgrade checks.
	Build version.Info `json:"build"`

	notReady string
}

// ThrottleRates are progress.throttle. A rate set through the API shows
// here; MaxWriteRate is null until one is (the sink's --max-write-rate is
// then in force, shown in the sink's progress).
type ThrottleRates struct {
	MaxReadRate  throttle.Rate  `json:"maxReadRate"`
	MaxWriteRate *throttle.Rate `json:"maxWriteRate"`
}

// CollectionCopy estimates the copy like mongosync.
type CollectionCopy struct {
	EstimatedTotalBytes  int64 `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes int64 `json:"estimatedCopiedBytes"`
}

// DirectionMapping names the direction of the current epoch.
type DirectionMapping struct {
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
}

// ClusterInfo describes one end.
type ClusterInfo struct {
	Name          string `json:"name"`
	PingLatencyMs int64  `json:"pingLatencyMs"`
}

// NamespaceCopy is one namespace's copy progress.
type NamespaceCopy struct {
	Namespace      string  `json:"namespace"`
	EstimatedDocs  int64   `json:"estimatedDocuments"`
	CopiedDocs     int64   `json:"copiedDocuments"`
	EstimatedBytes int64   `json:"estimatedBytes"`
	CopiedBytes    int64   `json:"copiedBytes"`
	Percent        float64 `json:"percent"`
	Done           bool    `json:"done"`
}

// SinkPosition is the sink's progress from its committed offsets.
type SinkPosition struct {
	Group      string `json:"group"`
	LagRecords int64  `json:"lagRecords"`
	Committed  int64  `json:"committedPartitions"`
	Partitions int64  `json:"partitions"`
	// PendingPartitions hold records the sink has not applied yet.
	PendingPartitions int64 `json:"pendingPartitions"`
	// LagSeconds is now minus AppliedThrough (0 when the whole log is applied).
	LagSeconds float64 `json:"lagSeconds"`
	// AppliedThrough is the source time of the oldest record the sink has
	// not applied: the destination holds every change made before it.
	AppliedThrough *time.Time `json:"appliedThrough,omitempty"`
	// LagError says why some partitions could not be measured.
	LagError string `json:"lagError,omitempty"`
}

func (c *Controller) handleProgress(w http.ResponseWriter, r *http.Request) {
	p := c.progress(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "progress": p})
}

func (c *Controller) progress(ctx context.Context) Progress {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	var svcStatus *app.Status
	var prefix string
	if svc, _, ok := c.sup.Current(); ok {
		s := svc.Status()
		svcStatus = &s
		prefix = svc.Config().TopicPrefix
	}

	p := Progress{State: st.State, Epoch: st.Epoch, TopicPrefix: prefix, Warnings: append([]string{}, st.Warnings...), Commit: st.CommitTime,
		Verification: c.verif.snapshot(), Report: c.sup.Status().Report(), Build: version.Get(),
		MongosyncID: c.cfg.Base.TopicPrefix, CoordinatorID: c.cfg.Base.TopicPrefix,
		Throttle: ThrottleRates{MaxReadRate: c.readRate(st), MaxWriteRate: st.Throttle.MaxWriteRate}}
	if p.Warnings == nil {
		p.Warnings = []string{}
	}
	if st.State != control.Idle {
		p.DirectionMapping = &DirectionMapping{
			Source:      st.Params.Source + ": " + mongox.Redact(c.cfg.Clusters[st.Params.Source]),
			Destination: st.Params.Destination + ": " + mongox.Redact(c.cfg.Clusters[st.Params.Destination]),
		}
		p.Source = &ClusterInfo{Name: st.Params.Source, PingLatencyMs: c.ping.get(st.Params.Source)}
		p.Destination = &ClusterInfo{Name: st.Params.Destination, PingLatencyMs: c.ping.get(st.Params.Destination)}
	}
	if svcStatus != nil {
		p.Phase = string(svcStatus.Phase)
		p.Error = c.red.String(svcStatus.Error)
		p.SourceLagSeconds = svcStatus.LagSeconds
		_, _, estBytes, copiedBytes := svcStatus.Totals()
		p.CollectionCopy = CollectionCopy{EstimatedTotalBytes: estBytes, EstimatedCopiedBytes: copiedBytes}
		c.mu.Lock()
		c.lastCopy[st.Epoch] = p.CollectionCopy
		c.mu.Unlock()
		for _, n := range svcStatus.Namespaces {
			p.Namespaces = append(p.Namespaces, NamespaceCopy{Namespace: n.NS, EstimatedDocs: n.EstimatedDocs, CopiedDocs: n.CopiedDocs,
				EstimatedBytes: n.EstimatedBytes, CopiedBytes: n.CopiedBytes, Percent: n.Percent(), Done: n.Done})
		}
	}
	if svcStatus == nil {
		// The epoch's connector is stopped (PAUSED, COMMITTED) or restarting:
		// the copy totals it last had, or those recorded at commit.
		c.mu.Lock()
		cc, ok := c.lastCopy[st.Epoch]
		c.mu.Unlock()
		if !ok && st.Copy != nil {
			cc, ok = CollectionCopy{EstimatedTotalBytes: st.Copy.EstimatedTotalBytes, EstimatedCopiedBytes: st.Copy.EstimatedCopiedBytes}, true
		}
		if ok {
			p.CollectionCopy = cc
		}
		// A connector that failed and waits out its backoff: its error.
		if p.NextRestart != nil {
			p.Error = p.LastError
		}
	}
	if st.State != control.Idle {
		p.TotalEventsApplied = c.eventsApplied(ctx, st)
	}
	switch st.State {
	case control.Idle:
		p.Info = "waiting for start"
	case control.Running:
		p.Info = "change event application"
		if svcStatus == nil || !svcStatus.SnapshotDone {
			p.Info = "collection copy"
		}
	case control.Paused:
		p.Info = "paused"
	case control.Committing:
		p.Info = "waiting for commit to complete"
	case control.Committed:
		p.Info = "commit completed"
		p.CanWrite = true
	case control.Reversing:
		p.Info = "reversing"
	}
	switch st.State {
	case control.Running, control.Paused, control.Committing:
		// Paused too: the log may hold records the stopped sink has not
		// applied, and the lag says how old they are.
		p.Sink = c.sinkPosition(ctx, st.Epoch, control.TopicPrefix(c.cfg.Base.TopicPrefix, st.Epoch))
		if p.Sink != nil {
			p.LagTimeSeconds = int64(p.Sink.LagSeconds)
		}
		// While paused nothing is captured: the destination is at least
		// as old as the pause, whatever the log holds.
		if st.State == control.Paused && !st.PausedAt.IsZero() {
			p.LagTimeSeconds = max(p.LagTimeSeconds, int64(time.Since(st.PausedAt).Seconds()))
		}
	}
	if st.State == control.Running {
		p.CanCommit, p.notReady = c.canCommit(svcStatus, p.Sink)
	}
	return p
}

func (c *Controller) canCommit(s *app.Status, sink *SinkPosition) (bool, string) {
	switch {
	case s == nil:
		return false, "the source connector is not running"
	case !s.SnapshotDone || s.Phase != app.PhaseStreaming:
		return false, "the initial copy is not finished"
	case sink == nil || sink.Partitions == 0:
		return false, "no sink has consumed the log yet"
	case sink.Committed < sink.Partitions:
		return false, fmt.Sprintf("the sink has committed %d of %d partitions", sink.Committed, sink.Partitions)
	case sink.LagRecords > c.cfg.CommitMaxLag:
		return false, fmt.Sprintf("the sink is %d records behind (at most %d allowed)", sink.LagRecords, c.cfg.CommitMaxLag)
	}
	return true, ""
}

// eventsApplied reads the epoch's sink count of applied change events from
// the destination (control.AppliedCount) over the kept ping client; while
// the destination does not answer it returns the last count read.
func (c *Controller) eventsApplied(ctx context.Context, st control.Status) int64 {
	c.mu.Lock()
	last := c.applied[st.Epoch]
	c.mu.Unlock()
	cl := c.ping.client(st.Params.Destination)
	if cl == nil {
		return last
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var doc control.AppliedCount
	err := cl.Database(control.AppliedDB).Collection(control.AppliedColl).FindOne(ctx,
		bson.D{{Key: "_id", Value: control.SinkGroup(c.cfg.SinkGroup, st.Epoch)}}).Decode(&doc)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) { // no document: none applied yet
		c.log.Debug("reading the sink's applied event count", "err", c.red.Error(err))
		return last
	}
	c.mu.Lock()
	c.applied[st.Epoch] = doc.EventsApplied
	c.mu.Unlock()
	return doc.EventsApplied
}

// sinkPosition reads the sink group's committed offsets against the last
// stable offsets of the epoch's data topics (the sink reads read_committed)
// and measures how far behind the source the destination is (lag.go).
func (c *Controller) sinkPosition(ctx context.Context, epoch int, prefix string) *SinkPosition {
	if prefix == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	group := control.SinkGroup(c.cfg.SinkGroup, epoch)
	topics, err := c.adm.ListTopics(ctx)
	if err != nil {
		return nil
	}
	var data []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, prefix+".") && !strings.HasPrefix(t, prefix+"._") {
			data = append(data, t)
		}
	}
	pos := &SinkPosition{Group: group}
	if len(data) == 0 {
		return pos
	}
	ends, err := c.adm.ListCommittedOffsets(ctx, data...)
	if err != nil {
		return pos
	}
	committed, err := c.adm.FetchOffsets(ctx, group)
	if err != nil {
		committed = nil
	}
	var parts []partPos
	for _, t := range data {
		for p, end := range ends[t] {
			if end.Err != nil {
				continue
			}
			pos.Partitions++
			pp := partPos{Topic: t, Partition: p, Committed: -1, End: end.Offset}
			if committed != nil {
				if o, ok := committed.Lookup(t, p); ok && o.Err == nil && o.At >= 0 {
					pp.Committed = o.At
					pos.Committed++
				} else if end.Offset == 0 {
					pos.Committed++ // an empty partition has nothing to commit
				}
			}
			if pp.pending() {
				pos.LagRecords += pp.End - max(pp.Committed, 0)
			}
			parts = append(parts, pp)
		}
	}
	first, err := c.lag.firstUnapplied(ctx, parts)
	if err != nil {
		pos.LagError = c.red.String(err.Error())
		c.log.Debug("measuring the destination lag", "err", err)
	}
	lag, through := destinationLag(time.Now(), first)
	pos.LagSeconds = lag.Seconds()
	for _, u := range first {
		if !u.none {
			pos.PendingPartitions++
		}
	}
	if !through.IsZero() {
		t := through.UTC()
		pos.AppliedThrough = &t
	}
	return pos
}
