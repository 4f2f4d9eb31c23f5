package schema

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/logbridge/logbridge/pkg/config"
)

func TestRegistryConfigValidate(t *testing.T) {
	const u = "https://registry:8081"
	tests := []struct {
		name string
		cfg  RegistryConfig
		want string // "" = valid; else a part of the error
	}{
		{"no registry", RegistryConfig{}, ""},
		{"url only", RegistryConfig{URL: u}, ""},
		{"basic from env", RegistryConfig{URL: u, User: "a", Password: "pw-S3cr3t"}, ""},
		{"basic from file", RegistryConfig{URL: u, User: "a", PasswordFile: "/run/p"}, ""},
		{"token file", RegistryConfig{URL: u, TokenFile: "/run/t", CAFile: "/ca.pem"}, ""},
		{"token env", RegistryConfig{URL: u, Token: "tok-S3cr3t"}, ""},
		{"credentials without url", RegistryConfig{User: "a", Password: "pw-S3cr3t"}, "without --schema-registry-url"},
		{"ca without url", RegistryConfig{CAFile: "/ca.pem"}, "without --schema-registry-url"},
		{"not http", RegistryConfig{URL: "registry:8081"}, "http:// or https://"},
		{"no host", RegistryConfig{URL: "https:///x"}, "has no host"},
		{"credentials in url", RegistryConfig{URL: "https://a:hunter2@registry:8081"}, "must not carry credentials"},
		{"credentials without scheme", RegistryConfig{URL: "a:hunter2@registry:8081"}, "use an http:// or https:// URL"},
		{"ca with http", RegistryConfig{URL: "http://registry:8081", CAFile: "/ca.pem"}, "https://"},
		{"user without password", RegistryConfig{URL: u, User: "a"}, "--schema-registry-user needs a password"},
		{"password without user", RegistryConfig{URL: u, PasswordFile: "/run/p"}, "without --schema-registry-user"},
		{"password twice", RegistryConfig{URL: u, User: "a", Password: "pw-S3cr3t", PasswordFile: "/run/p"}, "give the password one way"},
		{"token twice", RegistryConfig{URL: u, Token: "tok-S3cr3t", TokenFile: "/run/t"}, "give the token one way"},
		{"basic and bearer", RegistryConfig{URL: u, User: "a", Password: "pw-S3cr3t", TokenFile: "/run/t"}, "use one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			for _, secret := range []string{"hunter2", tc.cfg.Password, tc.cfg.Token} {
				if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// The password and token reach the config through pkg/config's environment mapping, so
// they never need to be command-line values.
func TestRegistryConfigFromEnvironment(t *testing.T) {
	t.Setenv("LOGBRIDGE_SINK_SCHEMA_REGISTRY_PASSWORD", "from-env")
	t.Setenv("LOGBRIDGE_SINK_SCHEMA_REGISTRY_TOKEN", "")
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	var c RegistryConfig
	c.RegisterFlags(fs)
	if err := config.Parse(fs, "LOGBRIDGE_SINK", []string{"--schema-registry-url", "https://r", "--schema-registry-user", "u"}); err != nil {
		t.Fatal(err)
	}
	if c.Password != "from-env" || c.User != "u" || c.URL != "https://r" {
		t.Fatalf("got %+v, want the password from LOGBRIDGE_SINK_SCHEMA_REGISTRY_PASSWORD", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryClientOptsFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty, notPEM := write("empty", "\n"), write("ca.txt", "not a certificate")
	tests := []struct {
		name string
		cfg  RegistryConfig
		want string
	}{
		{"missing password file", RegistryConfig{URL: "https://r", User: "u", PasswordFile: filepath.Join(dir, "nope")}, "reading --schema-registry-password-file"},
		{"empty password file", RegistryConfig{URL: "https://r", User: "u", PasswordFile: empty}, "--schema-registry-password-file " + empty + " is empty"},
		{"missing token file", RegistryConfig{URL: "https://r", TokenFile: filepath.Join(dir, "nope")}, "reading --schema-registry-token-file"},
		{"missing ca file", RegistryConfig{URL: "https://r", CAFile: filepath.Join(dir, "nope")}, "reading --schema-registry-ca-file"},
		{"ca file without PEM", RegistryConfig{URL: "https://r", CAFile: notPEM}, "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.ClientOpts(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A token file is read again when it changes (a rotated short-lived token), with the
// trailing newline dropped, and sent as "Authorization: Bearer".
func TestRegistryTokenFileRotation(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"compatibilityLevel":"BACKWARD"}`)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := RegistryConfig{URL: srv.URL, TokenFile: path}
	opts, err := cfg.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if r := cl.Compatibility(t.Context()); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if err := os.WriteFile(path, []byte("second-longer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if r := cl.Compatibility(t.Context()); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if want := []string{"Bearer first", "Bearer second-longer"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("got Authorization headers %q, want %q", seen, want)
	}
}

// explain names the setting to fix for each refusal and never shows a secret.
func TestRegistryExplain(t *testing.T) {
	resp := func(code int, method string) error {
		return fmt.Errorf("wrapped: %w", &sr.ResponseError{Method: method, URL: "https://r/config", StatusCode: code, Raw: []byte("<html>nginx</html>")})
	}
	tests := []struct {
		name string
		cfg  RegistryConfig
		err  error
		want []string
	}{
		{"401 basic from env", RegistryConfig{URL: "https://r", User: "alice", Password: "pw-secret"}, resp(401, "GET"),
			[]string{"401", `refused user "alice"`, "--schema-registry-user", "LOGBRIDGE_<SOURCE|SINK|INSPECT>_SCHEMA_REGISTRY_PASSWORD"}},
		{"401 basic from file", RegistryConfig{URL: "https://r", User: "alice", PasswordFile: "/run/pw"}, resp(401, "GET"),
			[]string{"--schema-registry-password-file /run/pw"}},
		{"401 token file", RegistryConfig{URL: "https://r", TokenFile: "/run/tok"}, resp(401, "GET"),
			[]string{"bearer token", "--schema-registry-token-file /run/tok"}},
		{"401 token env", RegistryConfig{URL: "https://r", Token: "tok-secret"}, resp(401, "GET"),
			[]string{"bearer token", "SCHEMA_REGISTRY_TOKEN"}},
		{"401 no credentials", RegistryConfig{URL: "https://r"}, resp(401, "GET"),
			[]string{"requires authentication", "--schema-registry-user", "--schema-registry-token-file"}},
		{"403 write", RegistryConfig{URL: "https://r", User: "reader", Password: "pw-secret"}, resp(403, "POST"),
			[]string{"403", `user "reader"`, "write access", "--schema-registry-user"}},
		{"403 read", RegistryConfig{URL: "https://r", TokenFile: "/t"}, resp(403, "GET"),
			[]string{"read access", "--schema-registry-token-file"}},
		{"unknown CA", RegistryConfig{URL: "https://r"}, fmt.Errorf("GET: %w", x509.UnknownAuthorityError{}),
			[]string{"does not trust", "--schema-registry-ca-file"}},
		{"unknown CA with a CA file", RegistryConfig{URL: "https://r", CAFile: "/ca.pem"}, fmt.Errorf("GET: %w", x509.UnknownAuthorityError{}),
			[]string{"not signed by a CA in --schema-registry-ca-file /ca.pem"}},
		{"wrong host", RegistryConfig{URL: "https://r"}, fmt.Errorf("GET: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "r"}),
			[]string{"does not name its host", "--schema-registry-url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.explain(tc.err)
			if !errors.Is(got, ErrRegistryAccess) {
				t.Fatalf("got %v, want ErrRegistryAccess", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("got %q, want it to say %q", got, w)
				}
			}
			if strings.Contains(got.Error(), "secret") || strings.Contains(got.Error(), "<html>") {
				t.Errorf("got %q: shows a secret or the gateway's page", got)
			}
		})
	}
	// Failures that are no settings problem pass unchanged (server errors stay transient).
	for _, err := range []error{resp(500, "GET"), resp(404, "GET"), errors.New("dial tcp: connection refused")} {
		if got := (&RegistryConfig{URL: "https://r"}).explain(err); got != err {
			t.Errorf("explain(%v) = %v, want it unchanged", err, got)
		}
	}
}

// A config printed whole (%v, %+v, slog) never shows the password or token.
func TestRegistryConfigPrintsNoSecret(t *testing.T) {
	type outer struct{ Registry RegistryConfig }
	c := RegistryConfig{URL: "https://r", User: "u", Password: "pw-S3cr3t", Token: "tok-S3cr3t", CAFile: "/ca.pem"}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "registry", c)
	for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", outer{c}), fmt.Sprintf("%+v", &outer{c}), buf.String()} {
		if strings.Contains(out, "S3cr3t") || !strings.Contains(out, "[redacted]") || !strings.Contains(out, "/ca.pem") {
			t.Errorf("printed as %s: want the password and token redacted, the rest shown", out)
		}
	}
}
