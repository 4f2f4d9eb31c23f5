package schema

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// RegistryConfig is how a process reaches a Confluent-compatible schema
// registry: its URL, how it authenticates (HTTP basic auth or a bearer token)
// and which CA it trusts for https://. Every binary that talks to the
// registry (source-connector, sink-connector, logbridge-inspect) registers the
// same flags with RegisterFlags, so the settings have one name everywhere.
//
// Secrets never come only from the command line (where ps shows them): the
// password and the token are read from a file (--schema-registry-password-file,
// --schema-registry-token-file, e.g. a mounted Kubernetes secret) or set
// through the service's environment (LOGBRIDGE_SOURCE_SCHEMA_REGISTRY_PASSWORD,
// LOGBRIDGE_SINK_SCHEMA_REGISTRY_TOKEN, ... via pkg/config) or its --config
// file. No secret appears in an error this package returns.
type RegistryConfig struct {
	// URL is the base URL of the registry's Confluent-compatible API, e.g.
	// https://registry:8081 or Apicurio's https://host/apis/ccompat/v7. It
	// must not carry credentials (they would show wherever the URL does).
	URL string
	// User and Password (or PasswordFile) are HTTP basic auth credentials.
	User         string
	Password     string
	PasswordFile string
	// Token (or TokenFile) is an OAuth/OIDC bearer token. A TokenFile is
	// read again whenever it changes, so a sidecar can rotate short-lived
	// tokens without restarting the service.
	Token     string
	TokenFile string
	// CAFile is a PEM file of the CA certificates to trust for an https://
	// URL instead of the system roots.
	CAFile string
	// HTTPClient, when set, replaces the client built from CAFile (tests,
	// or a caller with its own transport).
	HTTPClient *http.Client
}

// The flag names, used in error messages so they say what to change.
const (
	flagRegistryURL          = "schema-registry-url"
	flagRegistryUser         = "schema-registry-user"
	flagRegistryPassword     = "schema-registry-password"
	flagRegistryPasswordFile = "schema-registry-password-file"
	flagRegistryToken        = "schema-registry-token"
	flagRegistryTokenFile    = "schema-registry-token-file"
	flagRegistryCAFile       = "schema-registry-ca-file"
)

// registryHTTPTimeout bounds one registry request (sr's default is 5s, short
// for a registry behind a gateway on a busy cluster).
const registryHTTPTimeout = 15 * time.Second

// RegisterFlags adds the schema-registry-* flags to fs, with c's values as
// defaults.
func (c *RegistryConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, flagRegistryURL, c.URL,
		"Confluent-compatible schema registry, e.g. https://registry:8081 (or Apicurio's https://host/apis/ccompat/v7); needed for --encoding confluent and to decode Confluent-framed records")
	fs.StringVar(&c.User, flagRegistryUser, c.User,
		"schema registry user for HTTP basic auth; the password comes from --schema-registry-password-file or the environment")
	fs.StringVar(&c.Password, flagRegistryPassword, c.Password,
		"schema registry basic auth password: set it through the environment (LOGBRIDGE_<SOURCE|SINK|INSPECT>_SCHEMA_REGISTRY_PASSWORD) or the --config file, not on the command line, where ps shows it")
	fs.StringVar(&c.PasswordFile, flagRegistryPasswordFile, c.PasswordFile,
		"file holding the schema registry basic auth password (a trailing newline is ignored)")
	fs.StringVar(&c.Token, flagRegistryToken, c.Token,
		"schema registry bearer token: set it through the environment (LOGBRIDGE_<SOURCE|SINK|INSPECT>_SCHEMA_REGISTRY_TOKEN) or the --config file, not on the command line")
	fs.StringVar(&c.TokenFile, flagRegistryTokenFile, c.TokenFile,
		"file holding a bearer token for the schema registry (OAuth/OIDC), sent as 'Authorization: Bearer'; read again whenever the file changes")
	fs.StringVar(&c.CAFile, flagRegistryCAFile, c.CAFile,
		"PEM file of the CA certificates to trust for an https:// schema registry (default: the system roots)")
}

// String shows the settings with the password and token redacted, so that a
// config printed with %v or %+v (a debug line, a panic) never carries them.
func (c RegistryConfig) String() string {
	redact := func(v string) string {
		if v == "" {
			return ""
		}
		return "[redacted]"
	}
	return fmt.Sprintf("{URL:%s User:%s Password:%s PasswordFile:%s Token:%s TokenFile:%s CAFile:%s}",
		redactURL(c.URL), c.User, redact(c.Password), c.PasswordFile, redact(c.Token), c.TokenFile, c.CAFile)
}

// LogValue is String for log/slog.
func (c RegistryConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Configured reports whether a registry URL is set.
func (c *RegistryConfig) Configured() bool { return c.URL != "" }

// Validate checks the settings together, without reading any file.
func (c *RegistryConfig) Validate() error {
	var errs []error
	basic := c.User != "" || c.Password != "" || c.PasswordFile != ""
	bearer := c.Token != "" || c.TokenFile != ""
	if c.URL == "" {
		if basic || bearer || c.CAFile != "" {
			errs = append(errs, fmt.Errorf("schema registry credentials or CA file given without --%s: give the registry's URL too, or drop them", flagRegistryURL))
		}
		return errors.Join(errs...)
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		// url.Parse's error quotes the URL; say only what is wrong.
		errs = append(errs, fmt.Errorf("--%s is not a valid URL: write it as https://host:port/path", flagRegistryURL))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("--%s must not carry credentials (user:password@): give the user with --%s and the password with --%s or the environment",
			flagRegistryURL, flagRegistryUser, flagRegistryPasswordFile))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("--%s %q: use an http:// or https:// URL", flagRegistryURL, redactURL(c.URL)))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("--%s %q has no host: write it as https://host:port/path", flagRegistryURL, redactURL(c.URL)))
	case u.Scheme == "http" && c.CAFile != "":
		errs = append(errs, fmt.Errorf("--%s is given but --%s is http://: use the registry's https:// URL", flagRegistryCAFile, flagRegistryURL))
	}
	if basic {
		if c.User == "" {
			errs = append(errs, fmt.Errorf("a schema registry password is given without --%s: give the user name too", flagRegistryUser))
		}
		switch {
		case c.Password != "" && c.PasswordFile != "":
			errs = append(errs, fmt.Errorf("both --%s (or its environment variable) and --%s are set: give the password one way", flagRegistryPassword, flagRegistryPasswordFile))
		case c.Password == "" && c.PasswordFile == "":
			errs = append(errs, fmt.Errorf("--%s needs a password: give --%s, or set %s", flagRegistryUser, flagRegistryPasswordFile, envVar(flagRegistryPassword)))
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, fmt.Errorf("both --%s (or its environment variable) and --%s are set: give the token one way", flagRegistryToken, flagRegistryTokenFile))
	}
	if basic && bearer {
		errs = append(errs, fmt.Errorf("schema registry basic auth (--%s) and a bearer token (--%s) are both set: use one", flagRegistryUser, flagRegistryTokenFile))
	}
	return errors.Join(errs...)
}

// redactURL drops everything up to the last '@' of a malformed URL, which
// may be a "user:password@" that url.Parse did not recognise as one.
func redactURL(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return "…@" + s[i+1:]
	}
	return s
}

// ClientOpts returns the franz-go sr options for these settings: URL, user
// agent, credentials and the HTTP client with the CA. It reads the password,
// token and CA files; errors name the flag and the file, never its content.
func (c *RegistryConfig) ClientOpts() ([]sr.ClientOpt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.URL == "" {
		return nil, fmt.Errorf("no schema registry configured: give --%s", flagRegistryURL)
	}
	opts := []sr.ClientOpt{sr.URLs(c.URL), sr.UserAgent("logbridge")}
	hc := c.HTTPClient
	if hc == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading --%s: %w", flagRegistryCAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--%s %s holds no PEM certificate: give the CA certificate(s) that signed the registry's certificate, PEM-encoded", flagRegistryCAFile, c.CAFile)
			}
			tc.RootCAs = pool
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		hc = &http.Client{Timeout: registryHTTPTimeout, Transport: tr}
	}
	opts = append(opts, sr.HTTPClient(hc))
	switch {
	case c.User != "":
		pass := c.Password
		if c.PasswordFile != "" {
			var err error
			if pass, err = readSecretFile(flagRegistryPasswordFile, c.PasswordFile); err != nil {
				return nil, err
			}
		}
		opts = append(opts, sr.BasicAuth(c.User, pass))
	case c.Token != "":
		opts = append(opts, sr.BearerToken(c.Token))
	case c.TokenFile != "":
		tf := &tokenFile{path: c.TokenFile}
		if _, err := tf.get(); err != nil {
			return nil, err
		}
		opts = append(opts, sr.PreReq(func(req *http.Request) error {
			tok, err := tf.get()
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}))
	}
	return opts, nil
}

// readSecretFile reads a password or token file: its content without the
// trailing newline that editors and `echo` add.
func readSecretFile(flagName, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// os.PathError names the file and the cause, never the content.
		return "", fmt.Errorf("reading --%s: %w", flagName, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("--%s %s is empty: write the secret into it", flagName, path)
	}
	return s, nil
}

// tokenFile is a bearer token file read again when its size or modification
// time changes (a rotated token), and kept when a re-read fails.
type tokenFile struct {
	path string

	mu    sync.Mutex
	tok   string
	size  int64
	mtime time.Time
}

func (f *tokenFile) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err == nil && f.tok != "" && st.Size() == f.size && st.ModTime().Equal(f.mtime) {
		return f.tok, nil
	}
	if err != nil {
		if f.tok != "" {
			return f.tok, nil // briefly missing while a sidecar replaces it
		}
		return "", fmt.Errorf("reading --%s: %w", flagRegistryTokenFile, err)
	}
	tok, err := readSecretFile(flagRegistryTokenFile, f.path)
	if err != nil {
		if f.tok != "" {
			return f.tok, nil
		}
		return "", err
	}
	f.tok, f.size, f.mtime = tok, st.Size(), st.ModTime()
	return f.tok, nil
}

// explain turns a registry failure caused by the settings (credentials
// refused, an untrusted or mismatched certificate, http against https) into
// an error that wraps ErrRegistryAccess and names the flag to check; other
// errors are returned unchanged. The registry's answer body is left out: a
// gateway's 401 page says nothing the status does not.
func (c *RegistryConfig) explain(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %s %s answered 401 Unauthorized: %s", ErrRegistryAccess, re.Method, re.URL, c.credentialHint())
		case http.StatusForbidden:
			access := "write" // the source registers schemas and sets compatibility
			if re.Method == http.MethodGet {
				access = "read" // the sink and logbridge-inspect only read
			}
			return fmt.Errorf("%w: %s %s answered 403 Forbidden: %s may not do this; grant it %s access in the registry, or use credentials that have it (%s)",
				ErrRegistryAccess, re.Method, re.URL, c.principal(), access, c.credentialFlags())
		case http.StatusBadRequest:
			if strings.Contains(string(re.Raw), "plain HTTP request was sent to HTTPS port") {
				return fmt.Errorf("%w: the schema registry at %s expects TLS: use an https:// --%s", ErrRegistryAccess, c.URL, flagRegistryURL)
			}
		}
		return err
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA):
		if c.CAFile != "" {
			return fmt.Errorf("%w: the TLS certificate of %s is not signed by a CA in --%s %s (%v): give the CA that signed it", ErrRegistryAccess, c.URL, flagRegistryCAFile, c.CAFile, unknownCA.Error())
		}
		return fmt.Errorf("%w: the TLS certificate of %s is signed by an authority this machine does not trust (%v): give that CA's certificate with --%s", ErrRegistryAccess, c.URL, unknownCA.Error(), flagRegistryCAFile)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: the TLS certificate of %s does not name its host (%v): use in --%s a host name the certificate is issued for", ErrRegistryAccess, c.URL, hostErr.Error(), flagRegistryURL)
	case errors.As(err, &invalid):
		return fmt.Errorf("%w: the TLS certificate of %s is not valid (%v): check the registry's certificate and --%s", ErrRegistryAccess, c.URL, invalid.Error(), flagRegistryCAFile)
	case errors.As(err, &recErr):
		return fmt.Errorf("%w: the schema registry at %s does not speak TLS: use its http:// URL in --%s", ErrRegistryAccess, c.URL, flagRegistryURL)
	}
	return err
}

// credentialHint says which settings to check after a 401.
func (c *RegistryConfig) credentialHint() string {
	switch {
	case c.User != "":
		src := "--" + flagRegistryPasswordFile + " " + c.PasswordFile
		if c.PasswordFile == "" {
			src = envVar(flagRegistryPassword) + " (or --" + flagRegistryPassword + ")"
		}
		return fmt.Sprintf("the registry refused user %q: check --%s and the password in %s", c.User, flagRegistryUser, src)
	case c.TokenFile != "":
		return fmt.Sprintf("the registry refused the bearer token: check --%s %s (a wrong or expired token)", flagRegistryTokenFile, c.TokenFile)
	case c.Token != "":
		return fmt.Sprintf("the registry refused the bearer token: check %s (or --%s; a wrong or expired token)", envVar(flagRegistryToken), flagRegistryToken)
	}
	return fmt.Sprintf("the registry requires authentication: give --%s with --%s (or %s), or --%s",
		flagRegistryUser, flagRegistryPasswordFile, envVar(flagRegistryPassword), flagRegistryTokenFile)
}

// envVar names the environment variable of a flag in each service (pkg/config
// maps flag names under the service's prefix).
func envVar(flagName string) string {
	return "LOGBRIDGE_<SOURCE|SINK|INSPECT>_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *RegistryConfig) principal() string {
	switch {
	case c.User != "":
		return fmt.Sprintf("user %q", c.User)
	case c.Token != "" || c.TokenFile != "":
		return "the bearer token's principal"
	}
	return "an anonymous client"
}

func (c *RegistryConfig) credentialFlags() string {
	switch {
	case c.User != "":
		return "--" + flagRegistryUser
	case c.Token != "" || c.TokenFile != "":
		return "--" + flagRegistryTokenFile
	}
	return "--" + flagRegistryUser + " or --" + flagRegistryTokenFile
}
