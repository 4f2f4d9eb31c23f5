package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// fault is one injection; inject logs what it did and when.
type fault struct {
	name   string
	inject func(s *scenario)
}

// brokerKilled makes the kill -9 of the broker happen once per test binary:
// its unclean recovery is the slowest fault.
var brokerKilled atomic.Bool

// faults returns round n's faults in a seeded order.
func (s *scenario) faults(n int) []fault {
	fs := []fault{
		{"kill -9 source", func(s *scenario) { s.crash(s.source) }},
		{"kill -9 sink", func(s *scenario) { s.crash(s.sink) }},
		{"restart Kafka broker", func(s *scenario) { s.restartBroker() }},
		{"second sink member joins and leaves", func(s *scenario) { s.rebalance() }},
		{"stop/start destination", func(s *scenario) { s.restartDestination() }},
	}
	// Once per test binary in CI; every round of a soak.
	if s.cfg.killBroker && (s.cfg.rounds == 0 || brokerKilled.CompareAndSwap(false, true)) {
		fs = append(fs, fault{"kill -9 Kafka broker", func(s *scenario) { s.killBroker() }})
	}
	// A second crash of each connector at another moment when the round is long.
	if s.cfg.workFor >= 90*time.Second {
		fs = append(fs, fault{"kill -9 source", func(s *scenario) { s.crash(s.source) }},
			fault{"kill -9 sink", func(s *scenario) { s.crash(s.sink) }})
	}
	s.rnd.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
	return fs
}

// crash kills p with SIGKILL and starts it again after a seeded pause.
func (s *scenario) crash(p *proc) {
	s.supervise()
	pid := p.Pid()
	p.Kill9()
	pause := time.Duration(s.rnd.IntN(2000)) * time.Millisecond
	s.logf("FAULT kill -9 %s (pid %d); restarting in %v", p.Name, pid, pause)
	time.Sleep(pause)
	p.Start()
	s.logf("      %s restarted (pid %d)", p.Name, p.Pid())
}

// rebalance starts a second member of the sink's group, leaves it in the
// group for a seeded while, then stops it (it leaves the group).
func (s *scenario) rebalance() {
	stay := time.Duration(5000+s.rnd.IntN(7000)) * time.Millisecond
	s.sink2 = startProc(s.t, "sink2", s.sinkBin, s.sinkArgs()...)
	s.logf("FAULT second sink member joins group %s (pid %d), leaves after %v", s.group, s.sink2.Pid(), stay)
	s.sleep(stay, nil)
	s.sink2.Stop()
	s.sink2 = nil
	s.logf("      second sink member stopped (left the group)")
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func cacheDir() string {
	if d := os.Getenv("LOGBRIDGE_CACHE"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), ".cache")
}

// stack runs scripts/stack.sh with args and fails the test on an error.
func (s *scenario) stack(args ...string) { s.stackEnv(nil, args...) }

func (s *scenario) stackEnv(env []string, args ...string) {
	s.t.Helper()
	t0 := time.Now()
	cmd := exec.CommandContext(s.ctx, filepath.Join(repoRoot(), "scripts", "stack.sh"), args...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("scripts/stack.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	s.logf("      scripts/stack.sh %s done in %v", strings.Join(args, " "), time.Since(t0).Round(100*time.Millisecond))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// usesLocalStack reports whether the broker is the one scripts/stack.sh
// would restart with this process's environment: the broker at
// KAFKA_HOST:KAFKA_PORT (scripts/stack.versions' defaults), whose listener is
// in the server.properties of this cache (LOGBRIDGE_CACHE). A private stack on
// other ports (docs/testing.md) must be run with the same variables, or a
// restart here would hit another stack's broker; then the faults skip.
func (s *scenario) usesLocalStack() bool {
	if os.Getenv("LOGBRIDGE_TESTCONTAINERS") == "1" || len(s.env.KafkaBrokers) != 1 {
		return false
	}
	addr := envOr("KAFKA_HOST", "127.0.0.1") + ":" + envOr("KAFKA_PORT", "19092")
	if s.env.KafkaBrokers[0] != addr {
		return false
	}
	props, err := os.ReadFile(filepath.Join(cacheDir(), "kafka", "server.properties"))
	return err == nil && bytes.Contains(props, []byte("PLAINTEXT://"+addr+","))
}

func (s *scenario) restartBroker() {
	if !s.usesLocalStack() {
		s.logf("SKIP restart Kafka broker: not the local stack's broker (%v)", s.env.KafkaBrokers)
		return
	}
	s.logf("FAULT restart Kafka broker (scripts/stack.sh restart kafka: SIGTERM, then start)")
	s.stack("restart", "kafka")
}

// killBroker sends SIGKILL to the local broker's process, then starts it again.
func (s *scenario) killBroker() {
	if !s.usesLocalStack() {
		s.logf("SKIP kill -9 Kafka broker: not the local stack's broker (%v)", s.env.KafkaBrokers)
		return
	}
	pid, err := stackPID(filepath.Join(cacheDir(), "kafka", "kafka.pid"), "-Dlogbridge.stack=kafka")
	if err != nil {
		s.t.Fatalf("kill -9 Kafka broker: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill -9 Kafka broker (pid %d): %v", pid, err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(100 * time.Millisecond)
	}
	pause := time.Duration(1000+s.rnd.IntN(3000)) * time.Millisecond
	s.logf("FAULT kill -9 Kafka broker (pid %d); scripts/stack.sh up kafka in %v", pid, pause)
	s.sleep(pause, nil)
	s.stack("up", "kafka")
}

// stackPID reads a pid file of scripts/stack.sh and checks that the process
// is the one the stack started (its command line holds marker).
func stackPID(pidfile, marker string) (int, error) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %v", pidfile, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d of %s: %v", pid, pidfile, err)
	}
	if !bytes.Contains(cmdline, []byte(marker)) {
		return 0, fmt.Errorf("process %d of %s is not the stack's (no %q on its command line)", pid, pidfile, marker)
	}
	return pid, nil
}

// destinationPersistence says whether the local destination keeps its data
// across a restart, and why (from scripts/stack.d/mongo.sh's
// <cache>/mongo/destination.server: KIND PORT SHIM BACKEND_PORT STORE).
func (s *scenario) destinationPersistence() (bool, string) {
	dir := filepath.Join(cacheDir(), "mongo")
	server, err := os.ReadFile(filepath.Join(dir, "destination.server"))
	if err != nil {
		return false, "no destination started by scripts/stack.sh (" + err.Error() + ")"
	}
	f := strings.Fields(string(server))
	if len(f) < 4 {
		return false, "unreadable " + filepath.Join(dir, "destination.server")
	}
	// the destination this test writes to must be the one the script runs
	if !strings.Contains(s.env.DestURI, ":"+f[1]+"/") {
		return false, fmt.Sprintf("the test's destination %s is not the one scripts/stack.sh runs in %s (port %s); run the test with the stack's environment", s.env.DestURI, dir, f[1])
	}
	switch f[0] {
	case "nx-27017":
		return true, "nx-27017 keeps its data in SQLite files"
	case "jongodb":
		return false, "jongodb is in-memory only"
	case "mongo-java-server":
		if len(f) < 5 || f[4] == "-" {
			return false, "the destination was started by an older scripts/stack.sh that did not record its back end; scripts/stack.sh restart mongo"
		}
		if f[4] != "h2" {
			return false, "the destination is mongo-java-server with its in-memory back end (MONGO_DEST_MJS_BACKEND=" + f[4] + "): a restart would lose every document"
		}
		if f[2] == "shim" {
			return true, "mongo-java-server's h2 back end keeps the documents; the replica-set shim keeps its cluster-time lease and catalog in a state file"
		}
		return true, "mongo-java-server with the h2 (MVStore) back end"
	}
	return false, "unknown destination server " + f[0]
}

// restartDestination stops the destination server (its replica-set shim,
// then the server: SIGTERM) and starts it again after a seeded pause, when
// its data survives that; it says why not otherwise. The sink keeps running:
// its writes fail meanwhile and must be retried, not lost.
func (s *scenario) restartDestination() {
	if !s.usesLocalStack() {
		s.logf("SKIP stop/start destination: not the local stack's server")
		return
	}
	ok, why := s.destinationPersistence()
	if !ok {
		s.logf("SKIP stop/start destination: %s", why)
		return
	}
	s.logf("FAULT stop destination server (%s): scripts/stack.sh exec mongo stop destination", why)
	s.stack("exec", "mongo", "stop", "destination")
	pause := time.Duration(1000+s.rnd.IntN(3000)) * time.Millisecond
	s.sleep(pause, nil)
	s.logf("      destination down for %v; scripts/stack.sh exec mongo start destination", pause)
	s.stack("exec", "mongo", "start", "destination")
}
