package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// MaxBodyBytes bounds a request body; a larger one gets HTTP 413. Control
// requests are small JSON documents.
const MaxBodyBytes = 1 << 20

// TooLarge is the errorDescription of an HTTP 413, also for handlers that
// find out while reading a body sent without a Content-Length.
const TooLarge = "the request body is larger than 1 MiB: control requests are small JSON documents; check what is being sent"

// The server's limits: slow or idle clients cannot hold connections open
// forever, and a client cannot make the server buffer huge headers.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	// writeTimeout covers the slowest handler: progress measures the sink
	// lag (bounded at a few seconds) and start/commit append to Kafka.
	writeTimeout   = time.Minute
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 64 << 10
	// pprofWriteTimeout outlasts a CPU profile or trace (?seconds=30 by default).
	pprofWriteTimeout = 5 * time.Minute
)

// ErrorBody is mongosync's error shape, used for every refusal.
type ErrorBody struct {
	Success          bool   `json:"success"`
	Error            string `json:"error"`
	ErrorDescription string `json:"errorDescription"`
}

// WriteError answers code with {"success":false,"error":kind,"errorDescription":desc}.
func WriteError(w http.ResponseWriter, code int, kind, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: kind, ErrorDescription: desc})
}

// Server serves /metrics, /healthz, /readyz and mounted handlers, and /debug/pprof/
// on its own listener when configured, until its context ends.
type Server struct {
	// Addr is the bound address of the API listener; PprofAddr of the
	// profile listener ("" when off).
	Addr, PprofAddr string

	mux     *http.ServeMux
	log     *slog.Logger
	auth    *auth
	cfg     Config
	ln      net.Listener
	pprofLn net.Listener

	readyMu      sync.Mutex
	checks       []namedCheck // see Ready
	checkTimeout time.Duration
}

// New validates cfg (see Validate) and listens at once, so that a bad
// setting or a busy port fails at start-up with a clear error; it mounts
// /metrics (from g), /healthz (the process is alive: always 200) and
// /readyz (the checks added with Ready).
func New(cfg Config, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	a, err := cfg.load()
	if err != nil {
		return nil, err
	}
	s := &Server{mux: http.NewServeMux(), log: log, auth: a, cfg: cfg, checkTimeout: CheckTimeout}
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listening on %s for HTTP (metrics/API): %w; choose another address with --http-addr", cfg.Addr, err)
	}
	s.Addr = s.ln.Addr().String()
	if cfg.PprofAddr != "" {
		if s.pprofLn, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("listening on %s for Go profiles: %w; choose another address with --pprof-addr", cfg.PprofAddr, err)
		}
		s.PprofAddr = s.pprofLn.Addr().String()
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	if !a.configured() && cfg.Insecure {
		log.Warn("HTTP API without authentication (--api-insecure): anyone who reaches it can start, commit or reverse the sync", "addr", s.Addr)
	}
	return s, nil
}

// URL is the base URL of the API listener (https when TLS is on).
func (s *Server) URL() string {
	if s.auth.tls != nil {
		return "https://" + s.Addr
	}
	return "http://" + s.Addr
}

// Handle mounts h on pattern (http.ServeMux syntax, e.g. "POST /api/v1/start").
// Whether a request needs authentication follows from its method (see
// guard), so a new mutating endpoint cannot be mounted unprotected.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.serve(gctx, s.ln, s.mux, writeTimeout) })
	if s.pprofLn != nil {
		pm := http.NewServeMux()
		pm.HandleFunc("GET /debug/pprof/", pprof.Index)
		pm.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		pm.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		g.Go(func() error { return s.serve(gctx, s.pprofLn, pm, pprofWriteTimeout) })
	}
	return g.Wait()
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler, wt time.Duration) error {
	lo, _ := isLoopback(ln.Addr().String())
	srv := &http.Server{
		Handler:           s.guard(h, lo),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      wt,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig:         s.auth.tls,
		// TLS handshake failures and the like: noise at info level.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() {
		if s.auth.tls != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
		return err
	}
}

// guard applies the access policy before any handler runs: mutating
// requests always need authentication, reads only off loopback (unless
// PublicRead); then it bounds the body.
func (s *Server) guard(next http.Handler, loopback bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		open := read && (loopback || s.cfg.PublicRead)
		if !open && !(s.cfg.Insecure && !s.auth.configured()) {
			if desc, invalid := s.authenticate(r); desc != "" {
				s.log.Warn("HTTP request refused: not authenticated", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				challenge := `Bearer realm="logbridge"`
				if invalid {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
				WriteError(w, http.StatusUnauthorized, "Unauthorized", desc)
				return
			}
		}
		if r.ContentLength > MaxBodyBytes {
			WriteError(w, http.StatusRequestEntityTooLarge, "RequestTooLarge", TooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// authenticate returns "" when r carries a verified client certificate or
// a valid bearer token, else why not (invalid: a token was sent but is
// wrong). Every configured token is compared, in constant time, whatever
// matches, so the timing says nothing about the tokens.
func (s *Server) authenticate(r *http.Request) (desc string, invalid bool) {
	if !s.auth.configured() {
		return "this request needs authentication, and no API token is configured: start the service with --api-token-file FILE " +
			"(or the " + TokenEnv + " environment variable) and send 'Authorization: Bearer <token>'", false
	}
	if s.auth.certs && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return "", false
	}
	how := "send the API token (from --api-token-file or " + TokenEnv + ") as 'Authorization: Bearer <token>'"
	if s.auth.certs {
		how += " or present a client certificate signed by --http-tls-client-ca"
	}
	h := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || len(s.auth.tokens) == 0 {
		return "this request needs authentication: " + how, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range s.auth.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match == 1 {
		return "", false
	}
	return "the API token is not valid: " + how, true
}
