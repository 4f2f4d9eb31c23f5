package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// AuthRegistry is the local stack's authenticating HTTPS gateway in front of the schema
// registry (scripts/stack.d/registry-auth.sh): basic auth (User read-write, ReaderUser
// GET/HEAD only) or the bearer Token, over TLS with a certificate signed by CAFile.
type AuthRegistry struct {
	URL                        string
	CAFile                     string
	User, Password             string
	ReaderUser, ReaderPassword string
	Token                      string
}

// RegistryAuth returns the authenticating registry gateway, skipping (or failing, with
// LOGBRIDGE_REQUIRE_STACK=1) when it or its CA file is missing. The environment printed by
// `scripts/stack.sh env` (SCHEMA_REGISTRY_AUTH_URL, _CA, _USER, _PASSWORD, _READER_USER,
// _READER_PASSWORD, _TOKEN) overrides the local stack's defaults.
func (e Env) RegistryAuth(t testing.TB) AuthRegistry {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	get := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	r := AuthRegistry{
		URL:            get("SCHEMA_REGISTRY_AUTH_URL", "https://127.0.0.1:18443/apis/ccompat/v7"),
		CAFile:         get("SCHEMA_REGISTRY_AUTH_CA", filepath.Join(root, ".cache", "registry-auth", "tls", "ca.pem")),
		User:           get("SCHEMA_REGISTRY_AUTH_USER", "logbridge-registry"),
		Password:       get("SCHEMA_REGISTRY_AUTH_PASSWORD", "registry-secret-local"),
		ReaderUser:     get("SCHEMA_REGISTRY_AUTH_READER_USER", "logbridge-registry-reader"),
		ReaderPassword: get("SCHEMA_REGISTRY_AUTH_READER_PASSWORD", "reader-secret-local"),
		Token:          get("SCHEMA_REGISTRY_AUTH_TOKEN", "registry-token-local-3f9c2a"),
	}
	if err := dial(hostPort(r.URL)); err != nil {
		unavailable(t, "the authenticating schema registry gateway at "+r.URL+" is unreachable ("+err.Error()+"): run `make up` (scripts/stack.d/registry-auth.sh, needs nginx) or set SCHEMA_REGISTRY_AUTH_URL")
	}
	if _, err := os.Stat(r.CAFile); err != nil {
		unavailable(t, "the registry gateway's CA is missing ("+err.Error()+"): run `make up` or set SCHEMA_REGISTRY_AUTH_CA")
	}
	return r
}
