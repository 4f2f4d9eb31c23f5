package termview

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"
)

// syncBuf is a bytes.Buffer safe for the renderer's goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// TestViewDrawsCopyAndStream feeds the view two snapshots a second apart
// and reads the frame it draws: per-collection percentage, counts, rate and
// ETA, then the streaming status line; log lines written to the view come
// out above the bars.
func TestViewDrawsCopyAndStream(t *testing.T) {
	var out syncBuf
	v := New(&out, "source-connector", mpb.ForceAutoRefresh(), mpb.WithWidth(160))
	t0 := time.Unix(1000, 0)
	v.Update(t0, Snapshot{Status: "RUNNING epoch 1: collection copy", Copies: []Copy{
		{NS: "shop.orders", EstimatedDocs: 1000, EstimatedBytes: 1 << 20},
		{NS: "shop.users", EstimatedDocs: 10, Docs: 10, Done: true},
	}})
	v.Update(t0.Add(time.Second), Snapshot{Status: "RUNNING epoch 1: collection copy", Copies: []Copy{
		{NS: "shop.orders", Docs: 100, EstimatedDocs: 1000, Bytes: 100 << 10, EstimatedBytes: 1 << 20},
		{NS: "shop.users", EstimatedDocs: 10, Docs: 10, Done: true},
	}})
	if _, err := v.Write([]byte("time=... level=INFO msg=\"a log line\"\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * Interval)
	v.Update(t0.Add(2*time.Second), Snapshot{Status: "RUNNING epoch 1: change event application",
		Streaming: &Stream{Events: 0, LagSeconds: 1.2, Partitions: 8, PartitionsBehind: 2}})
	v.Update(t0.Add(3*time.Second), Snapshot{Status: "RUNNING epoch 1: change event application",
		Streaming: &Stream{Events: 50, LagSeconds: 1.2, Partitions: 8, PartitionsBehind: 2}})
	time.Sleep(3 * Interval)
	v.Close()
	frame := ansi.ReplaceAllString(out.String(), "")
	for _, want := range []string{
		"shop.orders", "10.0% 100/1000 docs 100.0 KiB 100 docs/s 100.0 KiB/s ETA 9s",
		"shop.users", "100.0% 10/10 docs", "done",
		"source-connector · RUNNING epoch 1: collection copy",
		"streaming 50 events/s, lag 1.2s, 2 of 8 partitions behind",
		`msg="a log line"`,
	} {
		if !strings.Contains(frame, want) {
			t.Errorf("the view does not show %q; it drew:\n%s", want, frame)
		}
	}
}

func TestIsTerminalOnAFile(t *testing.T) {
	f, err := createTemp(t)
	if err != nil {
		t.Fatal(err)
	}
	if IsTerminal(f) {
		t.Fatal("a regular file counts as a terminal")
	}
}

func createTemp(t *testing.T) (*os.File, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

// TestUpdateWhileDrawingNeverBlocks feeds the view new collections and
// progress while mpb redraws as fast as it can: the decorators read the
// view's state during each redraw, so Update must not hold that state's lock
// while it waits on mpb (adding a bar, setting its counts), or the two wait
// for each other forever and every log line written to the view blocks too.
// (That deadlock left the source's tmux pane blank: issue 25.)
func TestUpdateWhileDrawingNeverBlocks(t *testing.T) {
	var out syncBuf
	v := New(&out, "source-connector", mpb.ForceAutoRefresh(), mpb.WithWidth(160), mpb.WithRefreshRate(time.Millisecond))
	done := make(chan struct{})
	go func() {
		defer close(done)
		now, start := time.Unix(1000, 0), time.Now()
		var copies []Copy
		// Two seconds of updates (about 2000 redraws): without the fix it
		// blocked within the first few hundred in most runs.
		for i := 0; time.Since(start) < 2*time.Second; i++ {
			if i%10 == 0 && len(copies) < 60 {
				copies = append(copies, Copy{NS: fmt.Sprintf("shop.c%03d", i), EstimatedDocs: 5000})
			}
			for j := range copies {
				copies[j].Docs = min(copies[j].Docs+7, 5000)
				copies[j].Done = copies[j].Docs == 5000
			}
			now = now.Add(Interval)
			v.Update(now, Snapshot{Status: "RUNNING epoch 1: collection copy", Copies: copies,
				Streaming: &Stream{Events: int64(i)}})
			if _, err := v.Write([]byte("level=INFO msg=\"a log line\"\n")); err != nil {
				t.Errorf("writing a log line to the view: %v", err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Update or Write blocked while the view was drawing (deadlock); goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	v.Close()
}

// TestWriteAfterClose: a connector's run closes the view when its pipeline
// stops, and only then logs the error it stops on; that line must still
// reach the terminal (mpb refuses writes once it is closed), and a late
// Update must neither draw nor panic.
func TestWriteAfterClose(t *testing.T) {
	var out syncBuf
	v := New(&out, "source-connector", mpb.ForceAutoRefresh(), mpb.WithWidth(160))
	v.Close()
	v.Update(time.Now(), Snapshot{Copies: []Copy{{NS: "shop.orders", EstimatedDocs: 10}}})
	line := "source-connector: error: Kafka is unreachable\n"
	if n, err := v.Write([]byte(line)); err != nil || n != len(line) {
		t.Fatalf("Write after Close = %d, %v", n, err)
	}
	if got := out.String(); !strings.Contains(got, line) || strings.Contains(got, "shop.orders") {
		t.Fatalf("after Close the terminal shows %q: want the log line and no new bar", got)
	}
	v.Close() // a second Close does nothing
}
