package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
)

// TokenEnv is the environment variable that holds the API token when no
// --api-token-file is given. One name for both services, so that a single
// secret drives the source's control API and the sink's progress.
const TokenEnv = "LOGBRIDGE_API_TOKEN"

// minTokenLen rejects tokens short enough to guess; `openssl rand -hex 32`
// gives 64 characters.
const minTokenLen = 16

// Config is how a service exposes its HTTP listener.
type Config struct {
	// Addr is the listen address of the API, /metrics and /healthz
	// (--http-addr; "" serves nothing).
	Addr string
	// TokenFile holds the accepted bearer tokens, one per line (several
	// lines let a new token be rolled out before the old one is removed).
	// Without it the token comes from the TokenEnv environment variable.
	TokenFile string
	// TLSCert and TLSKey switch the listener to HTTPS.
	TLSCert, TLSKey string
	// TLSClientCA is a PEM bundle of CAs: a client certificate it verifies
	// authenticates the request like a token does.
	TLSClientCA string
	// Insecure allows a non-loopback listener without authentication, and
	// then serves every request unauthenticated (--api-insecure).
	Insecure bool
	// PublicRead serves GET requests (progress, metrics, health) without
	// authentication on a non-loopback listener too (--api-public-read).
	PublicRead bool
	// PprofAddr serves /debug/pprof/ on its own listener ("" = off).
	PprofAddr string
}

// RegisterFlags adds the listener flags to fs; defaultAddr is the default
// of --http-addr and serves names what that listener carries (for --help).
func (c *Config) RegisterFlags(fs *flag.FlagSet, defaultAddr, serves string) {
	c.Addr = defaultAddr
	fs.StringVar(&c.Addr, "http-addr", defaultAddr,
		"HTTP listen address for "+serves+". Loopback by default; any other address needs --api-token-file (or "+TokenEnv+") or --http-tls-client-ca, or --api-insecure")
	fs.StringVar(&c.TokenFile, "api-token-file", "",
		"file holding the API token(s), one per line, that requests send as 'Authorization: Bearer <token>' (default: the "+TokenEnv+" environment variable).\n"+
			"Every request that changes something needs it; generate one with 'openssl rand -hex 32'")
	fs.StringVar(&c.TLSCert, "http-tls-cert", "", "PEM certificate (chain) of the HTTP listener: serve HTTPS (with --http-tls-key)")
	fs.StringVar(&c.TLSKey, "http-tls-key", "", "PEM private key of --http-tls-cert")
	fs.StringVar(&c.TLSClientCA, "http-tls-client-ca", "",
		"PEM CA bundle: a client certificate it verifies authenticates a request like the API token (needs --http-tls-cert)")
	fs.BoolVar(&c.Insecure, "api-insecure", false,
		"allow a non-loopback --http-addr without authentication and serve every request, including start and commit, to anyone who reaches it (not advised)")
	fs.BoolVar(&c.PublicRead, "api-public-read", false,
		"serve GET requests (progress, /metrics, /healthz) without authentication on a non-loopback listener too (they are always open on loopback)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "",
		"listen address of Go profiles (/debug/pprof/), off when empty; keep it on loopback, e.g. 127.0.0.1:6060 (same authentication rules as --http-addr)")
}

// auth is what Validate loaded: the accepted tokens and the TLS setup.
type auth struct {
	tokens [][sha256.Size]byte // SHA-256 of each token: equal-length compares
	tls    *tls.Config
	certs  bool // TLS client certificates authenticate
}

func (a *auth) configured() bool { return len(a.tokens) > 0 || a.certs }

// Validate checks the settings and reads the token and TLS files, without
// listening. An error is a settings error: the services exit with status 2.
func (c Config) Validate() error {
	_, err := c.load()
	return err
}

func (c Config) load() (*auth, error) {
	a := &auth{}
	var errs []error
	tokens, err := c.readTokens()
	if err != nil {
		errs = append(errs, err)
	}
	for _, t := range tokens {
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	if tc, err := c.tlsConfig(); err != nil {
		errs = append(errs, err)
	} else if tc != nil {
		a.tls = tc
		a.certs = tc.ClientCAs != nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, l := range []struct{ flag, addr string }{{"--http-addr", c.Addr}, {"--pprof-addr", c.PprofAddr}} {
		if l.addr == "" {
			continue
		}
		lo, err := isLoopback(l.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w (use host:port, e.g. 127.0.0.1:27182)", l.flag, l.addr, err))
			continue
		}
		if !lo && !a.configured() && !c.Insecure {
			errs = append(errs, fmt.Errorf("%s %s is not a loopback address and no authentication is configured, so anyone who reaches it could "+
				"start, commit or reverse the sync: set an API token with --api-token-file (or the %s environment variable) and/or client "+
				"certificates with --http-tls-client-ca, or listen on 127.0.0.1, or pass --api-insecure to accept the risk", l.flag, l.addr, TokenEnv))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// readTokens returns the tokens of TokenFile, else of TokenEnv (none: no
// token authentication). The tokens never appear in an error.
func (c Config) readTokens() ([]string, error) {
	env, inEnv := os.LookupEnv(TokenEnv)
	var raw []byte
	src := TokenEnv
	switch {
	case c.TokenFile != "":
		if inEnv {
			return nil, fmt.Errorf("both --api-token-file and the %s environment variable are set: give the API token one way", TokenEnv)
		}
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the API token file (--api-token-file): %w", err)
		}
		raw, src = b, "the API token file "+c.TokenFile
	case inEnv:
		raw = []byte(env)
	default:
		return nil, nil
	}
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		if len(t) < minTokenLen || strings.ContainsAny(t, " \t") {
			return nil, fmt.Errorf("%s holds a token shorter than %d characters or with spaces in it: use a long random one, e.g. from 'openssl rand -hex 32'", src, minTokenLen)
		}
		tokens = append(tokens, t)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s is empty: put the API token in it (e.g. 'openssl rand -hex 32 > token'), or leave it unset", src)
	}
	return tokens, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("--http-tls-cert and --http-tls-key go together: give both to serve HTTPS, or neither")
	}
	if c.TLSCert == "" {
		if c.TLSClientCA != "" {
			return nil, errors.New("--http-tls-client-ca needs HTTPS: give --http-tls-cert and --http-tls-key too")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("loading the HTTPS certificate (--http-tls-cert %s, --http-tls-key %s): %w", c.TLSCert, c.TLSKey, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.TLSClientCA != "" {
		pem, err := os.ReadFile(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading the client CA bundle (--http-tls-client-ca): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--http-tls-client-ca %s holds no PEM certificate", c.TLSClientCA)
		}
		// IfGiven, not Require: a client without a certificate may still
		// authenticate with the token, and loopback reads stay open.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// isLoopback reports whether addr (host:port) listens on loopback only. An
// empty host or an unspecified address listens everywhere; a host name other
// than localhost counts as non-loopback, as it may resolve to anything.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
