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

// usesLocalStack reports whether the broker and servers are the local
// stack's (only those can be restarted with scripts/stack.sh).
func (s *scenario) usesLocalStack() bool {
	return os.Getenv("LOGBRIDGE_TESTCONTAINERS") != "1" && len(s.env.KafkaBrokers) == 1 &&
		strings.HasSuffix(s.env.KafkaBrokers[0], ":19092")
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
// across a restart, and why (from scripts/stack.d/mongo.sh's state files).
func destinationPersistence() (bool, string) {
	dir := filepath.Join(cacheDir(), "mongo")
	server, err := os.ReadFile(filepath.Join(dir, "destination.server"))
	if err != nil {
		return false, "no destination started by scripts/stack.sh (" + err.Error() + ")"
	}
	kind := strings.Fields(string(server))
	if len(kind) == 0 {
		return false, "unreadable " + filepath.Join(dir, "destination.server")
	}
	switch kind[0] {
	case "nx-27017":
		return true, "nx-27017 keeps its data in SQLite files"
	case "jongodb":
		return false, "jongodb is in-memory only"
	case "mongo-java-server":
		pid, err := stackPID(filepath.Join(dir, "destination.pid"), "-Dlogbridge.stack=mongo-destination")
		if err != nil {
			return false, "destination process not found: " + err.Error()
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("--backend\x00h2")) {
			if len(kind) > 2 && kind[2] == "shim" {
				return false, "mongo-java-server's h2 back end keeps the documents, but the replica-set shim in front of it keeps its oplog and collection UUIDs in memory"
			}
			return true, "mongo-java-server with the h2 (MVStore) back end"
		}
		return false, "the destination is mongo-java-server with its in-memory back end (MONGO_MJS_BACKEND=memory): a restart would lose every document"
	}
	return false, "unknown destination server " + kind[0]
}

// restartDestination stops and starts the destination server when its data
// survives that, and says why it does not otherwise.
func (s *scenario) restartDestination() {
	if !s.usesLocalStack() {
		s.logf("SKIP stop/start destination: not the local stack's server")
		return
	}
	ok, why := destinationPersistence()
	if !ok {
		s.logf("SKIP stop/start destination: %s", why)
		return
	}
	dir := filepath.Join(cacheDir(), "mongo")
	pidfile, marker := filepath.Join(dir, "destination.pid"), "-Dlogbridge.stack=mongo-destination"
	// Start it again as it runs now, whatever this process's environment says.
	b, _ := os.ReadFile(filepath.Join(dir, "destination.server"))
	kind := strings.Fields(string(b))[0]
	env := []string{"MONGO_DEST_SERVER=" + kind}
	if kind == "nx-27017" {
		marker = "--data-dir\x00" + filepath.Join(dir, "data", "destination")
	} else {
		env = append(env, "MONGO_MJS_BACKEND=h2")
	}
	pid, err := stackPID(pidfile, marker)
	if err != nil {
		s.t.Fatalf("stop destination: %v", err)
	}
	s.logf("FAULT stop destination server (%s; SIGTERM pid %d), then scripts/stack.sh up mongo", why, pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.sleep(time.Duration(1000+s.rnd.IntN(3000))*time.Millisecond, nil)
	s.stackEnv(env, "up", "mongo")
}
