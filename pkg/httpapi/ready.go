package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CheckTimeout bounds one readiness check: a server that does not answer
// within it counts as unreachable, and /readyz answers within it.
const CheckTimeout = 4 * time.Second

// Check is one readiness condition: nil when it holds, else an error that
// says what is wrong and what to do. The error is shown in the /readyz
// body, so it must not carry secrets (the services pass their checks'
// errors through their redactor).
type Check func(ctx context.Context) error

type namedCheck struct {
	name  string
	check Check
}

// Ready adds a readiness check to GET /readyz under name (e.g. "kafka",
// "mongodb", "pipeline"). Checks run concurrently on every request, each
// bounded by CheckTimeout. Safe to call while the server runs.
func (s *Server) Ready(name string, c Check) {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	s.checks = append(s.checks, namedCheck{name, c})
}

// serveReady answers /readyz in the format of Kubernetes' /readyz?verbose:
// one line per check, "[+]name ok" or "[-]name failed: reason", then the
// verdict; HTTP 200 when every check passes, 503 otherwise. /healthz stays
// "the process is alive": a restart would not bring MongoDB or Kafka back.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	s.readyMu.Lock()
	checks := append([]namedCheck(nil), s.checks...)
	s.readyMu.Unlock()
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), s.checkTimeout)
			defer cancel()
			errs[i] = runCheck(ctx, c.check, s.checkTimeout)
		})
	}
	wg.Wait()
	var b strings.Builder
	var failed []string
	for i, c := range checks {
		if errs[i] != nil {
			failed = append(failed, c.name)
			fmt.Fprintf(&b, "[-]%s failed: %s\n", c.name, oneLine(errs[i].Error()))
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) > 0 {
		fmt.Fprintf(&b, "readyz check failed: %s\n", strings.Join(failed, ", "))
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		b.WriteString("readyz check passed\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

// runCheck runs c and turns a check that outlives its deadline into a
// timeout error, so one hung dial cannot hold the probe.
func runCheck(ctx context.Context, c Check, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("the check panicked: %v", p)
			}
		}()
		done <- c(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v", timeout)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
