package controlapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/verify"
)

// Verification is the state of the last verification run, shown in
// progress: mongosync's shape (source and destination) first, then
// logbridge's result per namespace.
type Verification struct {
	Source      VerifierSide `json:"source"`
	Destination VerifierSide `json:"destination"`

	State string `json:"state"` // running, equal, different, failed
	// Trigger says what started it: "commit" (the start request's
	// verification.enabled, the default) or "request" (POST /api/v1/verify).
	Trigger    string    `json:"trigger"`
	Epoch      int       `json:"epoch"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Checked    int       `json:"namespacesChecked"`
	Total      int       `json:"namespacesTotal"`
	Results    []string  `json:"results"`
	Error      string    `json:"error,omitempty"`
}

// VerifierSide is one side of mongosync's progress.verification. logbridge
// compares once, at commit or on request, instead of hashing a stream:
// phase is "initial hashing" while it runs and "complete" once done
// (lagTimeSeconds is then 0: the comparison ran after the commit point).
type VerifierSide struct {
	Phase                  string `json:"phase"`
	EstimatedDocumentCount int64  `json:"estimatedDocumentCount"`
	HashedDocumentCount    int64  `json:"hashedDocumentCount"`
	LagTimeSeconds         int64  `json:"lagTimeSeconds"`
	TotalCollectionCount   int    `json:"totalCollectionCount"`
	ScannedCollectionCount int    `json:"scannedCollectionCount"`
}

type verifier struct {
	mu   sync.Mutex
	cur  *Verification
	auto int // the epoch whose commit started a verification
}

func (v *verifier) snapshot() *Verification {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cur == nil {
		return nil
	}
	c := *v.cur
	c.Results = append([]string(nil), v.cur.Results...)
	return &c
}

// handleVerify starts a verification of the current epoch's source against
// its destination (POST /api/v1/verify); progress shows it.
func (c *Controller) handleVerify(w http.ResponseWriter, r *http.Request) {
	if !decode(w, r, &struct{}{}) {
		return
	}
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st.State == control.Idle {
		fail(w, http.StatusConflict, "InvalidStateTransition", fmt.Errorf("%w: nothing to verify before start", control.ErrInvalidTransition))
		return
	}
	c.verif.mu.Lock()
	if c.verif.cur != nil && c.verif.cur.State == "running" {
		c.verif.mu.Unlock()
		fail(w, http.StatusConflict, "VerificationRunning", errors.New("a verification is already running; see progress.verification"))
		return
	}
	v := newVerification("request", st.Epoch)
	c.verif.cur = v
	c.verif.mu.Unlock()
	go c.runVerification(context.WithoutCancel(r.Context()), st, v)
	ok(w)
}

func newVerification(trigger string, epoch int) *Verification {
	side := VerifierSide{Phase: "initial hashing"}
	return &Verification{Source: side, Destination: side, State: "running", Trigger: trigger, Epoch: epoch,
		StartedAt: time.Now().UTC(), Results: []string{}}
}

// verifyOnCommit runs the verifier once per committed epoch when the start
// request left verification enabled (mongosync's default): the commit
// point is where source and destination must be equal. After a restart in
// COMMITTED it runs again (as mongosync's verifier restarts from the
// beginning).
func (c *Controller) verifyOnCommit(ctx context.Context, st control.Status) {
	if st.State != control.Committed || !st.Params.VerificationEnabled() {
		return
	}
	c.verif.mu.Lock()
	if c.verif.auto == st.Epoch || (c.verif.cur != nil && c.verif.cur.State == "running") {
		c.verif.mu.Unlock()
		return
	}
	c.verif.auto = st.Epoch
	v := newVerification("commit", st.Epoch)
	c.verif.cur = v
	c.verif.mu.Unlock()
	c.log.Info("verification: comparing source and destination at the commit point", "epoch", st.Epoch)
	go c.runVerification(ctx, st, v)
}

func (c *Controller) runVerification(ctx context.Context, st control.Status, v *Verification) {
	finish := func(state string, err error) {
		c.verif.mu.Lock()
		defer c.verif.mu.Unlock()
		v.State, v.FinishedAt = state, time.Now().UTC()
		v.Source.Phase, v.Destination.Phase = "complete", "complete"
		if err != nil {
			v.Error = c.red.String(err.Error())
		}
		c.log.Info("verification finished", "epoch", v.Epoch, "state", v.State, "namespaces", v.Checked, "error", v.Error)
	}
	compiled, err := control.Compile(st.Params, c.names())
	if err != nil {
		finish("failed", err)
		return
	}
	src, err := c.connect(ctx, st.Params.Source)
	if err != nil {
		finish("failed", err)
		return
	}
	defer src.Disconnect(context.WithoutCancel(ctx))
	dst, err := c.connect(ctx, st.Params.Destination)
	if err != nil {
		finish("failed", err)
		return
	}
	defer dst.Disconnect(context.WithoutCancel(ctx))
	pairs, err := verify.ListPairs(ctx, src, compiled.Filter.Match, compiled.Remap)
	if err != nil {
		finish("failed", err)
		return
	}
	var srcEst, dstEst int64
	for _, p := range pairs {
		// Estimates, as mongosync's are: the collection metadata counts.
		if n, err := src.Database(p.SourceDB).Collection(p.SourceColl).EstimatedDocumentCount(ctx); err == nil {
			srcEst += n
		}
		if n, err := dst.Database(p.DestDB).Collection(p.DestColl).EstimatedDocumentCount(ctx); err == nil {
			dstEst += n
		}
	}
	c.verif.mu.Lock()
	v.Total = len(pairs)
	v.Source.TotalCollectionCount, v.Destination.TotalCollectionCount = len(pairs), len(pairs)
	v.Source.EstimatedDocumentCount, v.Destination.EstimatedDocumentCount = srcEst, dstEst
	c.verif.mu.Unlock()
	rep, err := verify.Run(ctx, src, dst, pairs, verify.Options{}, func(r *verify.Result) {
		c.verif.mu.Lock()
		v.Checked++
		v.Source.ScannedCollectionCount, v.Destination.ScannedCollectionCount = v.Checked, v.Checked
		v.Source.HashedDocumentCount += r.SourceCount
		v.Destination.HashedDocumentCount += r.DestCount
		v.Results = append(v.Results, r.Summary())
		c.verif.mu.Unlock()
	})
	switch {
	case err != nil:
		finish("failed", err)
	case rep.Equal():
		finish("equal", nil)
	default:
		finish("different", nil)
	}
}
