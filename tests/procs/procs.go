// Package procs runs the connector binaries as real processes for tests that
// kill (-9) and restart them: the end-to-end fault suite and the control-API
// lifecycle test.
//
//	src, sink := procs.Binaries(t)                 // built once per test binary
//	p := procs.Start(t, "source", src, "--source-uri", uri)
//	p.Kill9(); p.Start()                           // crash and come back
//	inspect := procs.Tool(t, "./cmd/logbridge-inspect") // another command of the repo, built once
package procs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds both connectors once per test binary and returns their paths.
func Binaries(t testing.TB) (source, sink string) {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "logbridge-bin"); buildErr != nil {
			return
		}
		buildErr = build(Root(), binDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "source-connector"), filepath.Join(binDir, "sink-connector")
}

// tools are the commands Tool built, by package path.
var tools sync.Map // string → *toolBuild

type toolBuild struct {
	once sync.Once
	path string
	err  error
}

// Tool builds the main package pkg of this repository (e.g.
// "./cmd/logbridge-inspect") once per test binary and returns the path of
// the command.
func Tool(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := tools.LoadOrStore(pkg, &toolBuild{})
	b := v.(*toolBuild)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "logbridge-tool")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Root is the root of the repository this package is in.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Build builds both connectors of the module at root (this tree or another
// checkout, e.g. a previous release) into a fresh directory of the test,
// with extra go build flags (e.g. -ldflags), and returns their paths.
func Build(t testing.TB, root string, flags ...string) (source, sink string) {
	t.Helper()
	dir := t.TempDir()
	if err := build(root, dir, flags...); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "source-connector"), filepath.Join(dir, "sink-connector")
}

func build(root, dir string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", dir+"/", "./source-connector", "./sink-connector")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the connectors in %s (go %v): %v\n%s", root, args, err, out)
	}
	return nil
}

// Proc is one connector process that a test kills and restarts. Its output
// goes to Log (in LOGBRIDGE_PROC_LOG_DIR when set, else the test's temp dir),
// with a header line per run.
type Proc struct {
	Name string
	Log  string
	t    testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan error
	runs int
}

// Start runs bin with args; the process is stopped at the test's cleanup.
func Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	dir := os.Getenv("LOGBRIDGE_PROC_LOG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	p := &Proc{t: t, Name: name, bin: bin, args: args, Log: filepath.Join(dir, name+".log")}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start runs the process (again) with its arguments.
func (p *Proc) Start() {
	p.t.Helper()
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== run %d at %s: %s\n", p.runs, time.Now().Format(time.RFC3339Nano), p.bin)
	p.runs++
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.Name, err)
	}
	done := make(chan error, 1)
	p.done = done
	cmd := p.cmd
	go func() { done <- cmd.Wait(); f.Close() }()
}

// Kill9 kills the process without warning and waits until it is gone.
func (p *Proc) Kill9() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Stop ends the process gracefully (SIGTERM), killing it after 30 s.
func (p *Proc) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

// Replace is a live upgrade (or downgrade): it stops the process
// gracefully, swaps its binary for bin and starts it with the same
// arguments.
func (p *Proc) Replace(bin string) {
	p.t.Helper()
	p.Stop()
	p.bin = bin
	p.Start()
}

// Binary is the path of the binary the process runs.
func (p *Proc) Binary() string { return p.bin }

// Restart stops the process gracefully and starts it again.
func (p *Proc) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

// CrashRestart is kill -9 and a fresh start with the same arguments.
func (p *Proc) CrashRestart() {
	p.t.Helper()
	p.Kill9()
	p.Start()
}

// Exited returns an error with the log's tail if the process ended on its
// own since it was started, nil while it runs (or after Stop/Kill9).
func (p *Proc) Exited() error {
	if p.cmd == nil {
		return nil
	}
	select {
	case err := <-p.done:
		p.cmd = nil
		return fmt.Errorf("%s exited (%v); log tail:\n%s", p.Name, err, p.Tail(3000))
	default:
		return nil
	}
}

// Pid is the running process's id (0 when stopped).
func (p *Proc) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process was started and not yet seen to end.
func (p *Proc) Running() bool { return p.cmd != nil }

// Tail returns the last n bytes of the process's log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// WaitExit waits up to d for the process to end by itself and returns its
// log; the test fails if it is still running then.
func (p *Proc) WaitExit(t testing.TB, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := p.Exited(); err != nil {
			return p.Tail(1 << 20)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not stop within %s:\n%s", p.Name, d, p.Tail(4000))
	return ""
}
