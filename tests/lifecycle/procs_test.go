package lifecycle

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/procs"
)

type proc = procs.Proc

func binaries(t *testing.T) (string, string) { return procs.Binaries(t) }

func startProc(t *testing.T, name, bin string, args ...string) *proc {
	return procs.Start(t, name, bin, args...)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// api talks to one service's HTTP server, sending token as the bearer
// token of every request.
type api struct {
	t     *testing.T
	base  string
	token string
	cl    *http.Client
}

func newAPI(t *testing.T, addr, token string) *api {
	return &api{t: t, base: "http://" + addr, token: token, cl: &http.Client{Timeout: 15 * time.Second}}
}

// tokenFile writes a fresh API token into a file of the test's temp dir,
// for --api-token-file, and returns the file and the token.
func tokenFile(t *testing.T) (path, token string) {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	token = hex.EncodeToString(b)
	path = filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, token
}

func (a *api) do(method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	return a.cl.Do(req)
}

// post sends body (nil: no body) and returns the status code and the decoded answer.
func (a *api) post(path string, body any) (int, map[string]any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	resp, err := a.do("POST", path, r)
	if err != nil {
		a.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		a.t.Fatalf("POST %s: answer is not JSON (%v): %s", path, err, raw)
	}
	return resp.StatusCode, out
}

// get returns the body of GET path.
func (a *api) get(path string) string {
	a.t.Helper()
	resp, err := a.do("GET", path, nil)
	if err != nil {
		a.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// progress returns the "progress" object, or an error while the service is
// not answering (restarting).
func (a *api) progress() (map[string]any, error) {
	resp, err := a.do("GET", "/api/v1/progress", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Progress map[string]any `json:"progress"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || out.Progress == nil {
		return nil, fmt.Errorf("progress: HTTP %d", resp.StatusCode)
	}
	return out.Progress, nil
}

// waitFor polls cond every 250 ms until it returns true, failing the test
// with what it last saw after timeout. check, if set, fails the test early
// (e.g. a process exited).
func waitFor(t *testing.T, ctx context.Context, what string, timeout time.Duration, check func() error, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var last string
	for {
		ok, seen := cond()
		if ok {
			return time.Since(start)
		}
		last = seen
		if check != nil {
			if err := check(); err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: not reached after %v; last seen: %s", what, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func str(m map[string]any, k string) string {
	if v, ok := m[k].(string); ok {
		return v
	}
	return ""
}

func num(m map[string]any, k string) float64 {
	if v, ok := m[k].(float64); ok {
		return v
	}
	return 0
}

func flag(m map[string]any, k string) bool {
	v, _ := m[k].(bool)
	return v
}

func brief(m map[string]any) string {
	if m == nil {
		return "<no answer>"
	}
	keep := map[string]any{}
	for _, k := range []string{"state", "epoch", "canCommit", "canWrite", "info", "phase", "lagTimeSeconds", "sink", "warnings", "error",
		"running", "lagRecords", "sinkCommitted", "commitWait", "commitMarkerId", "topicPrefix", "destination",
		"sourceLagSeconds", "commitClusterTime"} {
		if v, ok := m[k]; ok {
			keep[k] = v
		}
	}
	b, _ := json.Marshal(keep)
	s := string(b)
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return strings.TrimSpace(s)
}
