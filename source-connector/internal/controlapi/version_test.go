package controlapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/version"
)

// TestStopsOnNewerControlLog: the controller's loop stops (the process
// exits 1) when the control log holds an event of a newer metadata version,
// naming both versions, instead of logging and retrying forever.
func TestStopsOnNewerControlLog(t *testing.T) {
	c, _, opts := newTestAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.cfg.Poll = 20 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	clog, err := control.NewLog(ctx, opts, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	if err := clog.Append(ctx, control.Event{V: version.Metadata() + 1, Type: control.EvStart, Params: &control.StartParams{Source: "cluster0", Destination: "cluster1"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, version.ErrNewerFormat) || !strings.Contains(err.Error(), "reads up to") {
			t.Fatalf("Run returned %v, want version.ErrNewerFormat naming both versions", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the controller kept running after a newer control event")
	}
}
