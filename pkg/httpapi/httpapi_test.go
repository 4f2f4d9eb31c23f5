package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logbridge/logbridge/tests/testcerts"
)

const (
	token  = "0123456789abcdef0123456789abcdef"
	token2 = "fedcba9876543210fedcba9876543210"
)

// noTokenEnv makes the test independent of a LOGBRIDGE_API_TOKEN in the
// developer's environment (restored after the test).
func noTokenEnv(t *testing.T) {
	t.Helper()
	t.Setenv(TokenEnv, "")
	os.Unsetenv(TokenEnv)
}

func tokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve runs a server for cfg with a POST /api/v1/start handler that counts
// the requests it sees, and a GET /api/v1/progress.
func serve(t *testing.T, cfg Config) (*Server, *atomic.Int64) {
	t.Helper()
	s, err := New(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	s.Handle("POST /api/v1/start", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"success":true}`)
	}))
	s.Handle("GET /api/v1/progress", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"success":true,"progress":{}}`)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: got %v, want nil", err)
		}
	})
	return s, &hits
}

// viaLoopback is the URL of a server listening on every interface, reached
// through 127.0.0.1.
func viaLoopback(t *testing.T, s *Server) string {
	t.Helper()
	_, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + port
}

type answer struct {
	code      int
	challenge string
	body      ErrorBody
	raw       string
}

func do(t *testing.T, cl *http.Client, method, url, bearer string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func TestValidateRefusesExposedListenerWithoutAuth(t *testing.T) {
	noTokenEnv(t)
	tf := tokenFile(t, token+"\n")
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"loopback without auth", Config{Addr: "127.0.0.1:27182"}, ""},
		{"localhost without auth", Config{Addr: "localhost:27182"}, ""},
		{"ipv6 loopback without auth", Config{Addr: "[::1]:27182"}, ""},
		{"all interfaces without auth", Config{Addr: "0.0.0.0:0"}, "--api-token-file"},
		{"empty host without auth", Config{Addr: ":27182"}, "--api-insecure"},
		{"host name without auth", Config{Addr: "db.example.com:27182"}, "not a loopback address"},
		{"pprof exposed without auth", Config{Addr: "127.0.0.1:0", PprofAddr: "0.0.0.0:6060"}, "--pprof-addr"},
		{"all interfaces with a token", Config{Addr: "0.0.0.0:0", TokenFile: tf}, ""},
		{"all interfaces, insecure", Config{Addr: "0.0.0.0:0", Insecure: true}, ""},
		{"no port", Config{Addr: "127.0.0.1"}, "host:port"},
		{"cert without key", Config{Addr: "127.0.0.1:0", TLSCert: "c.pem"}, "go together"},
		{"client CA without TLS", Config{Addr: "127.0.0.1:0", TLSClientCA: "ca.pem"}, "needs HTTPS"},
		{"missing token file", Config{Addr: "127.0.0.1:0", TokenFile: "/nonexistent/token"}, "reading the API token file"},
		{"short token", Config{Addr: "127.0.0.1:0", TokenFile: tokenFile(t, "secret\n")}, "shorter than 16"},
		{"empty token file", Config{Addr: "127.0.0.1:0", TokenFile: tokenFile(t, "\n\n")}, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want valid settings", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error mentioning %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	noTokenEnv(t)
	t.Setenv(TokenEnv, token)
	if err := (Config{Addr: "0.0.0.0:0"}).Validate(); err != nil {
		t.Fatalf("with %s set: got %v, want valid", TokenEnv, err)
	}
	err := Config{Addr: "127.0.0.1:0", TokenFile: tokenFile(t, token)}.Validate()
	if err == nil || !strings.Contains(err.Error(), "one way") {
		t.Fatalf("with both a token file and %s: got %v, want an error", TokenEnv, err)
	}
}

func TestMutatingRequestsNeedTheToken(t *testing.T) {
	noTokenEnv(t)
	s, hits := serve(t, Config{Addr: "127.0.0.1:0", TokenFile: tokenFile(t, token+"\n"+token2+"\n")})
	cl := &http.Client{Timeout: 5 * time.Second}
	start := s.URL() + "/api/v1/start"

	a := do(t, cl, "POST", start, "", strings.NewReader(`{}`))
	if a.code != 401 || a.body.Error != "Unauthorized" || a.body.Success || !strings.Contains(a.body.ErrorDescription, "Authorization: Bearer") ||
		!strings.HasPrefix(a.challenge, "Bearer") {
		t.Fatalf("without a token: got %d %q (WWW-Authenticate %q), want 401 Unauthorized with a Bearer challenge", a.code, a.raw, a.challenge)
	}
	a = do(t, cl, "POST", start, "wrong-token-wrong-token-wrong", strings.NewReader(`{}`))
	if a.code != 401 || !strings.Contains(a.body.ErrorDescription, "not valid") || !strings.Contains(a.challenge, "invalid_token") {
		t.Fatalf("with a wrong token: got %d %q (%q), want 401 invalid_token", a.code, a.raw, a.challenge)
	}
	a = do(t, cl, "POST", start, token[:len(token)-1], strings.NewReader(`{}`))
	if a.code != 401 {
		t.Fatalf("with a prefix of the token: got %d, want 401", a.code)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the handler ran %d times for refused requests, want 0", n)
	}
	for _, tok := range []string{token, token2} { // both lines of the file are accepted
		if a = do(t, cl, "POST", start, tok, strings.NewReader(`{}`)); a.code != 200 {
			t.Fatalf("with a valid token: got %d %q, want 200", a.code, a.raw)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("the handler ran %d times, want 2", n)
	}
	// Reads stay open on loopback.
	for _, p := range []string{"/api/v1/progress", "/metrics", "/healthz"} {
		if a = do(t, cl, "GET", s.URL()+p, "", nil); a.code != 200 {
			t.Fatalf("GET %s on loopback without a token: got %d, want 200", p, a.code)
		}
	}
}

func TestLoopbackWithoutTokenRefusesMutations(t *testing.T) {
	noTokenEnv(t)
	s, hits := serve(t, Config{Addr: "127.0.0.1:0"})
	a := do(t, http.DefaultClient, "POST", s.URL()+"/api/v1/start", "", strings.NewReader(`{}`))
	if a.code != 401 || !strings.Contains(a.body.ErrorDescription, "no API token is configured") || !strings.Contains(a.body.ErrorDescription, "--api-token-file") {
		t.Fatalf("got %d %q, want 401 telling to configure --api-token-file", a.code, a.raw)
	}
	if hits.Load() != 0 {
		t.Fatal("the handler ran for a refused request")
	}
}

func TestNonLoopbackReadsNeedTheTokenUnlessPublic(t *testing.T) {
	noTokenEnv(t)
	tf := tokenFile(t, token)
	// 0.0.0.0 listens on every interface; the test reaches it on loopback,
	// but the policy follows the listener's address.
	s, _ := serve(t, Config{Addr: "0.0.0.0:0", TokenFile: tf})
	base := viaLoopback(t, s)
	for _, p := range []string{"/api/v1/progress", "/metrics", "/healthz"} {
		if a := do(t, http.DefaultClient, "GET", base+p, "", nil); a.code != 401 {
			t.Fatalf("GET %s on 0.0.0.0 without a token: got %d, want 401", p, a.code)
		}
		if a := do(t, http.DefaultClient, "GET", base+p, token, nil); a.code != 200 {
			t.Fatalf("GET %s on 0.0.0.0 with the token: got %d, want 200", p, a.code)
		}
	}

	pub, hits := serve(t, Config{Addr: "0.0.0.0:0", TokenFile: tf, PublicRead: true})
	base = viaLoopback(t, pub)
	if a := do(t, http.DefaultClient, "GET", base+"/api/v1/progress", "", nil); a.code != 200 {
		t.Fatalf("GET progress with --api-public-read: got %d, want 200", a.code)
	}
	if a := do(t, http.DefaultClient, "POST", base+"/api/v1/start", "", nil); a.code != 401 || hits.Load() != 0 {
		t.Fatalf("POST start with --api-public-read and no token: got %d, want 401", a.code)
	}
}

func TestInsecureServesEverything(t *testing.T) {
	noTokenEnv(t)
	s, hits := serve(t, Config{Addr: "0.0.0.0:0", Insecure: true})
	base := viaLoopback(t, s)
	if a := do(t, http.DefaultClient, "POST", base+"/api/v1/start", "", nil); a.code != 200 || hits.Load() != 1 {
		t.Fatalf("POST start with --api-insecure: got %d, want 200", a.code)
	}
}

func TestOversizeBodyIs413(t *testing.T) {
	noTokenEnv(t)
	s, hits := serve(t, Config{Addr: "127.0.0.1:0", TokenFile: tokenFile(t, token)})
	big := strings.Repeat("x", MaxBodyBytes+1)
	a := do(t, http.DefaultClient, "POST", s.URL()+"/api/v1/start", token, strings.NewReader(big))
	if a.code != 413 || a.body.Error != "RequestTooLarge" || a.body.ErrorDescription != TooLarge {
		t.Fatalf("got %d %q, want 413 RequestTooLarge", a.code, a.raw)
	}
	if hits.Load() != 0 {
		t.Fatal("the handler ran for an oversize request")
	}
	// Unauthenticated, the size does not matter: 401 before the body.
	if a = do(t, http.DefaultClient, "POST", s.URL()+"/api/v1/start", "", strings.NewReader(big)); a.code != 401 {
		t.Fatalf("oversize without a token: got %d, want 401", a.code)
	}
}

func TestTLSAndClientCertificates(t *testing.T) {
	noTokenEnv(t)
	ca := testcerts.NewCA(t, "logbridge test CA")
	srvPair := ca.Issue(t, "server", true)
	operator := ca.Issue(t, "operator", false)
	other := testcerts.NewCA(t, "someone else's CA")
	stranger := other.Issue(t, "stranger", false)

	s, hits := serve(t, Config{Addr: "127.0.0.1:0", TokenFile: tokenFile(t, token),
		TLSCert: srvPair.CertFile, TLSKey: srvPair.KeyFile, TLSClientCA: ca.File})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s: want https", s.URL())
	}
	start := s.URL() + "/api/v1/start"

	if a := do(t, ca.Client(), "GET", s.URL()+"/healthz", "", nil); a.code != 200 {
		t.Fatalf("GET /healthz over TLS: got %d, want 200", a.code)
	}
	if a := do(t, ca.Client(), "POST", start, "", nil); a.code != 401 {
		t.Fatalf("POST over TLS without token or certificate: got %d, want 401", a.code)
	}
	if a := do(t, ca.Client(operator), "POST", start, "", nil); a.code != 200 {
		t.Fatalf("POST with a client certificate of the trusted CA: got %d %q, want 200", a.code, a.raw)
	}
	if a := do(t, ca.Client(), "POST", start, token, nil); a.code != 200 {
		t.Fatalf("POST over TLS with the token: got %d, want 200", a.code)
	}
	// A certificate of another CA fails the handshake: no request is served.
	req, _ := http.NewRequest("POST", start, nil)
	if resp, err := ca.Client(stranger).Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("POST with an untrusted client certificate: got %d, want a failed handshake or 401", resp.StatusCode)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("the handler ran %d times, want 2 (certificate, token)", n)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://" + s.Addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP on the HTTPS listener answered 200")
		}
	}
}

func TestPprofOnlyOnItsOwnListener(t *testing.T) {
	noTokenEnv(t)
	s, _ := serve(t, Config{Addr: "127.0.0.1:0"})
	if s.PprofAddr != "" {
		t.Fatalf("pprof listening at %s without --pprof-addr", s.PprofAddr)
	}
	if a := do(t, http.DefaultClient, "GET", s.URL()+"/debug/pprof/", "", nil); a.code != 404 {
		t.Fatalf("GET /debug/pprof/ on the API listener: got %d, want 404", a.code)
	}
	p, _ := serve(t, Config{Addr: "127.0.0.1:0", PprofAddr: "127.0.0.1:0"})
	if a := do(t, http.DefaultClient, "GET", "http://"+p.PprofAddr+"/debug/pprof/", "", nil); a.code != 200 || !strings.Contains(a.raw, "goroutine") {
		t.Fatalf("GET /debug/pprof/ on --pprof-addr: got %d, want 200 with the profile index", a.code)
	}
}

func TestBusyPortIsAClearError(t *testing.T) {
	noTokenEnv(t)
	s, _ := serve(t, Config{Addr: "127.0.0.1:0"})
	_, err := New(Config{Addr: s.Addr}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--http-addr") {
		t.Fatalf("got %v, want an error telling to choose another --http-addr", err)
	}
}

func TestReadyzNamesTheFailingCheck(t *testing.T) {
	noTokenEnv(t)
	s, _ := serve(t, Config{Addr: "127.0.0.1:0"})
	s.checkTimeout = 200 * time.Millisecond
	if a := do(t, http.DefaultClient, "GET", s.URL()+"/readyz", "", nil); a.code != 200 {
		t.Fatalf("/readyz without checks: got %d %q, want 200", a.code, a.raw)
	}
	var mongoErr atomic.Value
	mongoErr.Store("")
	s.Ready("kafka", func(context.Context) error { return nil })
	s.Ready("mongodb", func(context.Context) error {
		if e := mongoErr.Load().(string); e != "" {
			return errors.New(e)
		}
		return nil
	})
	a := do(t, http.DefaultClient, "GET", s.URL()+"/readyz", "", nil)
	if a.code != 200 || !strings.Contains(a.raw, "[+]kafka ok\n[+]mongodb ok\n") {
		t.Fatalf("/readyz with passing checks: got %d %q, want 200 listing both", a.code, a.raw)
	}
	mongoErr.Store("destination at mongodb://d1/: MongoDB is unreachable:\n check the URI")
	a = do(t, http.DefaultClient, "GET", s.URL()+"/readyz", "", nil)
	if a.code != 503 || !strings.Contains(a.raw, "[+]kafka ok\n") ||
		!strings.Contains(a.raw, "[-]mongodb failed: destination at mongodb://d1/: MongoDB is unreachable: check the URI\n") ||
		!strings.HasSuffix(a.raw, "readyz check failed: mongodb\n") {
		t.Fatalf("/readyz with MongoDB down: got %d %q, want 503 naming mongodb", a.code, a.raw)
	}
	// The process is still alive: /healthz does not follow readiness.
	if a = do(t, http.DefaultClient, "GET", s.URL()+"/healthz", "", nil); a.code != 200 {
		t.Fatalf("/healthz while not ready: got %d, want 200", a.code)
	}
	// A check that ignores its context cannot hold the probe.
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	s.Ready("pipeline", func(context.Context) error { <-block; return nil })
	mongoErr.Store("")
	start := time.Now()
	a = do(t, http.DefaultClient, "GET", s.URL()+"/readyz", "", nil)
	if a.code != 503 || !strings.Contains(a.raw, "[-]pipeline failed: no answer within 200ms") || time.Since(start) > 2*time.Second {
		t.Fatalf("/readyz with a hung check: got %d %q after %v, want 503 naming pipeline at once", a.code, a.raw, time.Since(start))
	}
}

func TestReadyzNeedsTheTokenOffLoopback(t *testing.T) {
	noTokenEnv(t)
	s, _ := serve(t, Config{Addr: "0.0.0.0:0", TokenFile: tokenFile(t, token)})
	s.Ready("kafka", func(context.Context) error { return errors.New("broker down") })
	base := viaLoopback(t, s)
	if a := do(t, http.DefaultClient, "GET", base+"/readyz", "", nil); a.code != 401 || strings.Contains(a.raw, "broker down") {
		t.Fatalf("GET /readyz on 0.0.0.0 without a token: got %d %q, want 401 without the check's text", a.code, a.raw)
	}
	if a := do(t, http.DefaultClient, "GET", base+"/readyz", token, nil); a.code != 503 {
		t.Fatalf("GET /readyz on 0.0.0.0 with the token: got %d, want 503", a.code)
	}
}
