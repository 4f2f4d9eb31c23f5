package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/testenv"
)

// seeds reads LOGBRIDGE_E2E_SEEDS ("1,2,3"), else def.
func seeds(t *testing.T, def []uint64) []uint64 {
	v := os.Getenv("LOGBRIDGE_E2E_SEEDS")
	if v == "" {
		return def
	}
	var out []uint64
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("LOGBRIDGE_E2E_SEEDS=%q: %v", v, err)
		}
		out = append(out, n)
	}
	return out
}

// TestDisruptiveE2E runs the seeded workload through source-connector →
// Kafka → sink-connector while killing and restarting the connectors,
// restarting the broker (and once killing it), adding and removing a sink
// member, then drains and verifies that every namespace of the destination
// equals the source's. One subtest per seed (LOGBRIDGE_E2E_SEEDS overrides
// the default 1,2,3). It restarts the shared Kafka broker: only with
// LOGBRIDGE_DISRUPTIVE=1 (`make e2e`, the last phase of `make test`).
func TestDisruptiveE2E(t *testing.T) {
	testenv.Disruptive(t)
	testenv.New(t)
	for i, seed := range seeds(t, []uint64{1, 2, 3}) {
		t.Run(fmt.Sprintf("seed_%d", seed), func(t *testing.T) {
			t0 := time.Now()
			runScenario(t, config{seed: seed, seedDocs: 150, workFor: 35 * time.Second, rate: 60, rounds: 1, killBroker: i == 0})
			t.Logf("seed %d: passed=%v in %v", seed, !t.Failed(), time.Since(t0).Round(time.Second))
		})
	}
}

// TestSoak is TestDisruptiveE2E with one seed (the first of
// LOGBRIDGE_E2E_SEEDS, default 1) for LOGBRIDGE_SOAK (a Go duration, e.g.
// 2h): rounds of workload and faults, each drained and verified, until the
// time is up. `make soak DURATION=2h`.
func TestSoak(t *testing.T) {
	v := os.Getenv("LOGBRIDGE_SOAK")
	if v == "" {
		t.Skip("soak test: set LOGBRIDGE_SOAK=<duration> (make soak DURATION=2h)")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("LOGBRIDGE_SOAK=%q: %v", v, err)
	}
	testenv.Disruptive(t)
	seed := seeds(t, []uint64{1})[0]
	runScenario(t, config{seed: seed, seedDocs: 1000, workFor: 2 * time.Minute, rate: 100, deadline: time.Now().Add(d), killBroker: true})
}
