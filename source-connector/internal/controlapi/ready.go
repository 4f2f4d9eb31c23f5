package controlapi

import (
	"context"
	"fmt"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/termview"
)

// Readier takes readiness checks (*httpapi.Server).
type Readier interface {
	Ready(name string, c httpapi.Check)
}

var _ Readier = (*httpapi.Server)(nil)

// Readiness adds the control API's checks besides "kafka" (which the
// process adds for every mode):
//
//	mongodb   the clusters the state needs answer: in IDLE every configured
//	          cluster (a bad URI shows before start), else the epoch's source
//	pipeline  in RUNNING and COMMITTING the epoch's source connector runs
//	          (planning, copying or streaming); other states run nothing
func (c *Controller) Readiness(r Readier, probe *mongox.Prober) {
	r.Ready("mongodb", func(ctx context.Context) error {
		st := c.currentState()
		names := []string{st.Params.Source}
		if st.State == control.Idle || st.State == "" {
			names = c.names()
		}
		for _, n := range names {
			uri, ok := c.cfg.Clusters[n]
			if !ok {
				return fmt.Errorf("the sync's source %q is not configured: give --%s", n, n)
			}
			if err := probe.Ping(ctx, "cluster "+n, uri); err != nil {
				return c.red.Error(err)
			}
		}
		return nil
	})
	r.Ready("pipeline", func(context.Context) error {
		st := c.currentState()
		if st.State != control.Running && st.State != control.Committing {
			return nil
		}
		svc, epoch, ok := c.sup.Current()
		switch {
		case ok && epoch == st.Epoch:
			if err := svc.Ready(); err != nil {
				return fmt.Errorf("epoch %d: %w", st.Epoch, err)
			}
			return nil
		case c.sup.Status().LastError != "":
			return fmt.Errorf("the epoch %d source connector is not running (last error: %s); it restarts after a backoff, see /api/v1/progress",
				st.Epoch, c.sup.Status().LastError)
		default:
			return fmt.Errorf("the epoch %d source connector is starting", st.Epoch)
		}
	})
}

func (c *Controller) currentState() control.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ViewSnapshot is the controller's state as the live terminal view draws it:
// the sync's state and epoch, and the running epoch connector's copy and
// stream.
func (c *Controller) ViewSnapshot() termview.Snapshot {
	st := c.currentState()
	head := fmt.Sprintf("%s epoch %d", st.State, st.Epoch)
	if st.State == control.Idle || st.State == "" {
		head = "IDLE: waiting for POST /api/v1/start"
	}
	svc, epoch, ok := c.sup.Current()
	if !ok || epoch != st.Epoch {
		if e := c.sup.Status().LastError; e != "" && (st.State == control.Running || st.State == control.Committing) {
			head += ": not running (" + e + ")"
		}
		return termview.Snapshot{Status: head}
	}
	return svc.Status().ViewSnapshot(head)
}
