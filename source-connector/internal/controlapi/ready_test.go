package controlapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/mongox"
)

// checks collects what Readiness registers.
type checks map[string]httpapi.Check

func (c checks) Ready(name string, f httpapi.Check) { c[name] = f }

func (c checks) run(t *testing.T, name string) error {
	t.Helper()
	f, ok := c[name]
	if !ok {
		t.Fatalf("no %q readiness check", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return f(ctx)
}

// TestReadinessFollowsTheState: in IDLE every configured cluster must
// answer and no pipeline is wanted; in RUNNING the epoch's connector must
// run, and the check says why it does not.
func TestReadinessFollowsTheState(t *testing.T) {
	c, srv, _ := newTestAPI(t) // clusters on ports 1 and 2: unreachable
	probe := mongox.NewProber()
	t.Cleanup(probe.Close)
	cs := checks{}
	c.Readiness(cs, probe)

	err := cs.run(t, "mongodb")
	if err == nil || !strings.Contains(err.Error(), "cluster cluster0") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("mongodb in IDLE with unreachable clusters: got %v, want cluster0 named as unreachable", err)
	}
	if err := cs.run(t, "pipeline"); err != nil {
		t.Fatalf("pipeline in IDLE: got %v, want ready (nothing to run)", err)
	}
	if v := c.ViewSnapshot(); !strings.HasPrefix(v.Status, "IDLE") {
		t.Fatalf("view in IDLE: got %q", v.Status)
	}

	if code, body := call(t, srv, "POST", "/api/v1/start", `{"source":"cluster1","destination":"cluster0"}`); code != 200 {
		t.Fatalf("start: got %d %v", code, body)
	}
	if st := c.currentState(); st.State != control.Running {
		t.Fatalf("state after start: got %s, want RUNNING", st.State)
	}
	err = cs.run(t, "pipeline")
	if err == nil || !strings.Contains(err.Error(), "epoch 1 source connector") {
		t.Fatalf("pipeline in RUNNING without a connector: got %v, want the epoch 1 connector named", err)
	}
	if v := c.ViewSnapshot(); v.Status != "RUNNING epoch 1" || v.Copies != nil {
		t.Fatalf("view in RUNNING without a connector: got %+v", v)
	}
	// Only the epoch's source is checked now.
	err = cs.run(t, "mongodb")
	if err == nil || !strings.Contains(err.Error(), "cluster cluster1") {
		t.Fatalf("mongodb in RUNNING: got %v, want the source cluster1 named", err)
	}
}
