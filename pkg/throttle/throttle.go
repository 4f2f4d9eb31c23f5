package throttle

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a limit per second; a zero field does not limit.
type Rate struct {
	Docs  float64 `json:"docs,omitempty"`
	Bytes float64 `json:"bytes,omitempty"`
}

// Unlimited reports whether r limits nothing.
func (r Rate) Unlimited() bool { return r.Docs <= 0 && r.Bytes <= 0 }

// String writes r as ParseRate reads it ("unlimited" for the zero Rate).
func (r Rate) String() string {
	var parts []string
	if r.Docs > 0 {
		parts = append(parts, "docs="+strconv.FormatFloat(r.Docs, 'f', -1, 64))
	}
	if r.Bytes > 0 {
		parts = append(parts, "bytes="+strconv.FormatFloat(r.Bytes, 'f', -1, 64))
	}
	if len(parts) == 0 {
		return "unlimited"
	}
	return strings.Join(parts, ",")
}

// Validate refuses negative rates.
func (r Rate) Validate() error {
	if r.Docs < 0 || r.Bytes < 0 {
		return fmt.Errorf("rate docs=%g,bytes=%g: documents and bytes per second must be 0 (unlimited) or more", r.Docs, r.Bytes)
	}
	return nil
}

// Set parses a flag value (flag.Value).
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

var units = map[string]float64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}

// ParseRate reads "docs=N", "bytes=N[unit]" or both, comma-separated.
func ParseRate(s string) (Rate, error) {
	var r Rate
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "unlimited" {
		return r, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Rate{}, fmt.Errorf("rate %q: write docs=N and/or bytes=N per second, e.g. docs=5000,bytes=8MiB", s)
		}
		num := strings.TrimRightFunc(v, func(c rune) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' })
		mult, known := units[strings.ToLower(v[len(num):])]
		n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || !known || n < 0 {
			return Rate{}, fmt.Errorf("rate %q: %q is not a number of %s per second (units K, M, G, KiB, MiB, GiB)", s, v, k)
		}
		switch strings.TrimSpace(k) {
		case "docs":
			if unit := strings.ToLower(v[len(num):]); unit != "" && unit != "k" && unit != "m" {
				return Rate{}, fmt.Errorf("rate %q: a number of documents takes K or M, not %q", s, v[len(num):])
			}
			r.Docs = n * mult
		case "bytes":
			r.Bytes = n * mult
		default:
			return Rate{}, fmt.Errorf("rate %q: unknown limit %q: use docs or bytes", s, k)
		}
	}
	return r, nil
}

// Limiter paces work to a Rate. Safe for concurrent use: concurrent
// waiters share the rate.
type Limiter struct {
	mu   sync.Mutex
	rate Rate
	next time.Time // when the next reservation may start
	now  func() time.Time
}

// New returns a limiter at r.
func New(r Rate) *Limiter { return &Limiter{rate: r, now: time.Now} }

// Rate is the current limit.
func (l *Limiter) Rate() Rate {
	if l == nil {
		return Rate{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// Set changes the limit; waits already reserved keep their times.
func (l *Limiter) Set(r Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = r
	if r.Unlimited() {
		l.next = time.Time{}
	}
}

// reserve books the time docs/bytes of work take at the rate, after what
// is booked already, and returns how long the caller must wait: until the
// end of its booking. Waiting to the end rather than the start means that
// work is released only once it has been "paid for": between any two
// releases exactly the released amount passed at the rate, whatever the
// request sizes (a large first request does not go out at once).
func (l *Limiter) reserve(docs, bytes int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate.Unlimited() {
		return 0
	}
	var cost float64 // seconds
	if l.rate.Docs > 0 {
		cost = max(cost, float64(docs)/l.rate.Docs)
	}
	if l.rate.Bytes > 0 {
		cost = max(cost, float64(bytes)/l.rate.Bytes)
	}
	now := l.now()
	start := l.next
	if start.Before(now) {
		start = now
	}
	l.next = start.Add(time.Duration(cost * float64(time.Second)))
	return l.next.Sub(now)
}

// Wait blocks until docs documents of bytes bytes may be processed at the
// rate (at once when unlimited or nil), or ctx ends. A cancelled wait keeps
// its booking: the rate stays a ceiling.
func (l *Limiter) Wait(ctx context.Context, docs, bytes int) error {
	if l == nil {
		return nil
	}
	d := l.reserve(docs, bytes)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
