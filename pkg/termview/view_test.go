package termview

import (
	"bytes"
	"os"
	"regexp"
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
