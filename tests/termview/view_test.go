package termview

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// term is a tmux server of the test's own, with one detached session whose
// pane runs a connector. Its own socket and configuration keep it apart from
// any tmux the person running the tests uses, and from earlier runs.
type term struct {
	t    *testing.T
	name string
	sock string
}

// pane runs argv in a cols×rows tmux pane and returns it.
func pane(t *testing.T, name string, argv ...string) *term {
	t.Helper()
	// A short directory of its own: a Unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "tv")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tmux.conf")
	// remain-on-exit from the start (set after new-session it would race a
	// connector that exits at once, and the pane would vanish with its last
	// frame and error); history to read the whole output on a failure.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g history-limit 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, name: name, sock: filepath.Join(dir, "sock")}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	out, err := exec.Command("tmux", "-S", tm.sock, "-f", conf,
		"new-session", "-d", "-s", name, "-x", "180", "-y", "40", "exec "+strings.Join(quoted, " ")).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_ = tm.tmux("kill-server").Run()
		_ = os.RemoveAll(dir)
	})
	return tm
}

func (tm *term) tmux(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...)
}

// screen is what the pane shows now.
func (tm *term) screen() string {
	out, err := tm.tmux("capture-pane", "-p", "-t", tm.name).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	return string(out)
}

// postmortem says why a pane does not show what it should: whether its
// process is still alive (and its exit status if not), and, if it is alive,
// its goroutines (SIGQUIT makes the Go runtime print them to the terminal,
// past the view), with the pane's whole history.
func (tm *term) postmortem() string {
	info, err := tm.tmux("display-message", "-p", "-t", tm.name, "#{pane_pid} #{pane_dead} #{pane_dead_status}").Output()
	if err != nil {
		return fmt.Sprintf("(tmux display-message: %v)", err)
	}
	var pid, dead, status int
	fmt.Sscan(string(info), &pid, &dead, &status)
	head := fmt.Sprintf("the pane's process (pid %d) had exited with status %d", pid, status)
	if dead == 0 {
		head = fmt.Sprintf("the pane's process (pid %d) was alive; its goroutines follow", pid)
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.SIGQUIT) == nil {
			time.Sleep(time.Second)
		}
	}
	hist, _ := tm.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", tm.name).Output()
	return head + ":\n" + strings.TrimRight(string(hist), "\n")
}

// waitFor polls the pane until every want shows, and returns the screen.
func waitFor(t *testing.T, tm *term, d time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		screen := tm.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return screen
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s pane never showed %q in %s; it shows:\n%s\n\n%s", tm.name, missing, d, screen, tm.postmortem())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLiveViewInATerminal copies a collection with the source-connector
// and applies it with the sink-connector, each in a tmux pane: the source
// draws the collection's bar (documents, percentage, done) and then the
// streaming line, the sink its applied rate, lag and partitions (down to
// none behind once it applied everything), and the log lines stay readable
// above the bars.
func TestLiveViewInATerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the live view needs a terminal to be checked (Debian: apt-get install tmux; .ci/run installs it)")
	}
	env := testenv.New(t)
	ctx := testenv.Context(t, 3*time.Minute)
	srcBin, sinkBin := procs.Binaries(t)
	db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
	src := env.Source(t)
	docs := make([]any, 3000)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: strings.Repeat("x", 200)}}
	}
	if _, err := src.Database(db).Collection("orders").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = src.Database(db).Drop(context.Background())
		_ = env.Dest(t).Database(db).Drop(context.Background())
	})
	brokers := strings.Join(env.KafkaBrokers, ",")

	// The waits are generous for a loaded machine (make test runs packages
	// side by side); a healthy run takes a few seconds.
	source := pane(t, "source", srcBin, "--source-uri", env.SourceURI, "--kafka-brokers", brokers, "--topic-prefix", prefix,
		"--include", db+".*", "--http-addr", "127.0.0.1:0")
	screen := waitFor(t, source, time.Minute, db+".orders", "100.0% 3000/3000 docs", "done", "source-connector · streaming ", "events/s, lag")
	if !strings.Contains(screen, "level=INFO") {
		t.Errorf("the log lines do not show above the view:\n%s", screen)
	}
	t.Logf("source pane:\n%s", screen)

	sinkPane := pane(t, "sink", sinkBin, "--dest-uri", env.DestURI, "--kafka-brokers", brokers, "--topic-prefix", prefix,
		"--group", prefix+"-sink", "--http-addr", "127.0.0.1:0")
	// More changes while both run: the source streams them, the sink applies them.
	const more = 200
	moreDocs := make([]any, more)
	for i := range moreDocs {
		moreDocs[i] = bson.D{{Key: "_id", Value: 10000 + i}}
	}
	if _, err := src.Database(db).Collection("orders").InsertMany(ctx, moreDocs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sinkPane, time.Minute, "sink-connector · group "+prefix+"-sink · applying ", "events/s, lag", "partitions behind")
	// The sink applies in the background: wait for all of it, then for the
	// view to say so.
	coll := env.Dest(t).Database(db).Collection("orders")
	for deadline := time.Now().Add(time.Minute); ; {
		n, err := coll.CountDocuments(ctx, bson.D{})
		if err == nil && n == int64(len(docs)+more) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the destination holds %d of %d documents after a minute (%v): the sink under the view did not apply them\n%s",
				n, len(docs)+more, err, sinkPane.postmortem())
		}
		time.Sleep(200 * time.Millisecond)
	}
	screen = waitFor(t, sinkPane, time.Minute, ", 0 of ", " partitions behind")
	t.Logf("sink pane:\n%s", screen)
}
