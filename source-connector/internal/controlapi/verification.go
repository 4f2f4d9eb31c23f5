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

// Verification is the state of the last verification run, shown in progress.
type Verification struct {
	State      string    `json:"state"` // running, equal, different, failed
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Checked    int       `json:"namespacesChecked"`
	Total      int       `json:"namespacesTotal"`
	Results    []string  `json:"results"`
	Error      string    `json:"error,omitempty"`
}

type verifier struct {
	mu  sync.Mutex
	cur *Verification
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
	v := &Verification{State: "running", StartedAt: time.Now().UTC(), Results: []string{}}
	c.verif.cur = v
	c.verif.mu.Unlock()
	go c.runVerification(context.WithoutCancel(r.Context()), st, v)
	ok(w)
}

func (c *Controller) runVerification(ctx context.Context, st control.Status, v *Verification) {
	finish := func(state string, err error) {
		c.verif.mu.Lock()
		defer c.verif.mu.Unlock()
		v.State, v.FinishedAt = state, time.Now().UTC()
		if err != nil {
			v.Error = c.red.String(err.Error())
		}
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
	c.verif.mu.Lock()
	v.Total = len(pairs)
	c.verif.mu.Unlock()
	rep, err := verify.Run(ctx, src, dst, pairs, verify.Options{}, func(r *verify.Result) {
		c.verif.mu.Lock()
		v.Checked++
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
