package termview

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"
)

// Interval is how often the view polls its Snapshot.
const Interval = 500 * time.Millisecond

// Snapshot is what the view draws at one moment.
type Snapshot struct {
	// Status is the headline: state, phase, epoch ("RUNNING epoch 1: collection copy").
	Status string
	// Copies are the collections of the initial copy (empty when there is none).
	Copies []Copy
	// Streaming is set once change events flow (the copy is done).
	Streaming *Stream
}

// Copy is one collection's copy progress.
type Copy struct {
	NS                    string
	Docs, EstimatedDocs   int64
	Bytes, EstimatedBytes int64
	Done                  bool
}

// Stream is the change-event side.
type Stream struct {
	// Events counts events handled so far (published by the source, applied
	// by the sink); the view derives the rate.
	Events int64
	// LagSeconds is the lag behind the source (0: none or unknown).
	LagSeconds float64
	// Partitions and PartitionsBehind: the sink's partitions, and those holding unapplied records.
	Partitions, PartitionsBehind int
	// Verb names what happens to the events ("streaming" when empty; the sink says "applying").
	Verb string
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// View is a live progress view. Its Write method prints above the bars
// (for the log handler). Safe for concurrent use.
//
// Locking: mpb draws from its own goroutines and calls the decorators,
// which read the view's state under mu; Update and Close call into mpb
// (add a bar, set its counts), which waits for those goroutines. So mu is
// never held across an mpb call (holding it there deadlocked the view and,
// through Write, every log line: issue 25); ops serializes Update and Close
// and is never taken by a decorator.
type View struct {
	p     *mpb.Progress
	w     io.Writer
	title string

	ops    sync.Mutex // Update and Close, one at a time; held across mpb calls
	closed bool       // under ops: Close ran, mpb must not be called again

	mu       sync.Mutex // the state the decorators read; never held across an mpb call
	status   string
	stream   string
	bars     map[string]*copyBar
	statusBr *mpb.Bar
	events   rate // the stream's events per second
}

type copyBar struct {
	bar   *mpb.Bar
	last  Copy
	rate  rate
	bytes rate
}

// New starts drawing to w (a terminal); title names the process.
func New(w io.Writer, title string, opts ...mpb.ContainerOption) *View {
	v := &View{w: w, title: title, bars: map[string]*copyBar{}}
	v.p = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(Interval)}, opts...)...)
	// The status line: always last, never complete until Close.
	v.statusBr = v.p.New(0, mpb.NopStyle(), mpb.BarPriority(math.MaxInt), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		v.mu.Lock()
		defer v.mu.Unlock()
		s := v.title
		if v.status != "" {
			s += " · " + v.status
		}
		if v.stream != "" {
			s += " · " + v.stream
		}
		return s
	})))
	return v
}

// Write prints b above the bars. Once the view is closed (or mpb stopped
// drawing on an error of its own), it writes to the terminal directly, so
// the last log lines, such as the error a connector stops on, still show.
func (v *View) Write(b []byte) (int, error) {
	if n, err := v.p.Write(b); err == nil {
		return n, nil
	}
	return v.w.Write(b)
}

// Run polls get every Interval and updates the view until ctx ends, then
// closes it.
func (v *View) Run(ctx context.Context, get func() Snapshot) {
	t := time.NewTicker(Interval)
	defer t.Stop()
	defer v.Close()
	for {
		v.Update(time.Now(), get())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Update draws s as of now. After Close it does nothing.
func (v *View) Update(now time.Time, s Snapshot) {
	copies := append([]Copy(nil), s.Copies...)
	sort.Slice(copies, func(i, j int) bool { return copies[i].NS < copies[j].NS })
	v.ops.Lock()
	defer v.ops.Unlock()
	if v.closed {
		return
	}
	// First the state the decorators read, under mu; then the mpb calls,
	// without it (see View).
	type pending struct {
		cb   *copyBar
		c    Copy
		prio int
	}
	todo := make([]pending, 0, len(copies))
	v.mu.Lock()
	v.status = s.Status
	for i, c := range copies {
		cb := v.bars[c.NS]
		if cb == nil {
			cb = &copyBar{}
			v.bars[c.NS] = cb
		}
		cb.rate.add(now, c.Docs)
		cb.bytes.add(now, c.Bytes)
		cb.last = c
		todo = append(todo, pending{cb, c, i})
	}
	if st := s.Streaming; st != nil {
		v.stream = st.describe(now, &v.events)
	} else {
		v.stream = ""
	}
	v.mu.Unlock()

	for _, t := range todo {
		cb, c := t.cb, t.c
		if cb.bar == nil { // only Update (under ops) sets and reads bar
			bar, err := v.p.Add(max(c.EstimatedDocs, 1), mpb.BarStyle().Build(), mpb.BarPriority(t.prio),
				mpb.PrependDecorators(decor.Name(c.NS, decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					v.mu.Lock()
					defer v.mu.Unlock()
					return cb.describe()
				})))
			if err != nil {
				return // mpb stopped drawing; the logs still go out through Write
			}
			cb.bar = bar
		}
		total := max(c.EstimatedDocs, c.Docs, 1)
		if !cb.bar.Completed() {
			cb.bar.SetTotal(total, false)
			cb.bar.SetCurrent(min(c.Docs, total))
			if c.Done {
				cb.bar.SetTotal(max(c.Docs, 1), true)
			}
		}
	}
}

func (s *Stream) describe(now time.Time, r *rate) string {
	r.add(now, s.Events)
	verb := s.Verb
	if verb == "" {
		verb = "streaming"
	}
	parts := []string{fmt.Sprintf("%s %s events/s", verb, humanRate(r.perSecond()))}
	parts = append(parts, fmt.Sprintf("lag %s", (time.Duration(s.LagSeconds*float64(time.Second))).Round(100*time.Millisecond)))
	if s.Partitions > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d partitions behind", s.PartitionsBehind, s.Partitions))
	}
	return strings.Join(parts, ", ")
}

// describe is a copy bar's text: documents, bytes, rate, ETA, percentage.
func (cb *copyBar) describe() string {
	c := cb.last
	pct := 0.0
	if c.Done {
		pct = 100
	} else if c.EstimatedDocs > 0 {
		pct = min(99.9, 100*float64(c.Docs)/float64(c.EstimatedDocs))
	}
	s := fmt.Sprintf("%5.1f%% %s/%s docs %s", pct, human(c.Docs), human(c.EstimatedDocs), size(c.Bytes))
	if c.Done {
		return s + " done"
	}
	r := cb.rate.perSecond()
	s += fmt.Sprintf(" %s docs/s %s/s", humanRate(r), size(int64(cb.bytes.perSecond())))
	if r > 0 && c.EstimatedDocs > c.Docs {
		eta := time.Duration(float64(c.EstimatedDocs-c.Docs) / r * float64(time.Second))
		s += " ETA " + eta.Round(time.Second).String()
	}
	return s
}

// Close stops drawing and leaves the last frame; later calls do nothing.
func (v *View) Close() {
	v.ops.Lock()
	defer v.ops.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	bars := []*mpb.Bar{v.statusBr}
	for _, cb := range v.bars {
		if cb.bar != nil {
			bars = append(bars, cb.bar)
		}
	}
	for _, b := range bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	v.p.Wait()
}

// rate is an exponentially smoothed per-second rate of a growing count.
type rate struct {
	at    time.Time
	count int64
	ewma  float64
	init  bool
}

func (r *rate) add(now time.Time, count int64) {
	if !r.at.IsZero() {
		if dt := now.Sub(r.at).Seconds(); dt > 0 {
			cur := float64(max(count-r.count, 0)) / dt
			if !r.init {
				r.ewma, r.init = cur, true
			} else {
				// About a 5 s memory at the 0.5 s polling interval.
				r.ewma += 0.1 * (cur - r.ewma)
			}
		}
	}
	r.at, r.count = now, count
}

func (r *rate) perSecond() float64 { return r.ewma }

func human(n int64) string {
	switch {
	case n >= 1_000_000_000:
		return fmt.Sprintf("%.1fG", float64(n)/1e9)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanRate(r float64) string {
	if r >= 10_000 {
		return human(int64(r))
	}
	return fmt.Sprintf("%.0f", r)
}

func size(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
