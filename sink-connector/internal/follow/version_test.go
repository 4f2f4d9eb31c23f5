package follow

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/version"
)

// TestStopsOnNewerControlLog: a running follower that meets a control
// event of a newer metadata version (a newer release was started on the
// same sync) stops with an error naming both versions, instead of retrying
// forever or acting on a state it cannot derive.
func TestStopsOnNewerControlLog(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(kc.ListenAddrs())
	cfg.ControlPoll = 20 * time.Millisecond
	f, err := New(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	clog, err := control.NewLog(ctx, []kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	if err := clog.Append(ctx, control.Event{V: version.Metadata() + 1, Type: control.EvPause}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, version.ErrNewerFormat) || !strings.Contains(err.Error(), "lb._control offset 0") {
			t.Fatalf("Run returned %v, want version.ErrNewerFormat naming the event", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower kept running after a newer control event")
	}
}
