package testenv

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// SourceBackend returns the URI of the mongo-java-server behind the local
// stack's source shim, for tests that put a mongoshim of their own in front
// of it (e.g. in mongos mode). It is, in order: SOURCE_BACKEND_URI; the host
// of SOURCE_URI with MONGO_SOURCE_BACKEND_PORT; the backend port that
// scripts/stack.sh recorded for the source in
// ${LOGBRIDGE_CACHE:-<repo>/.cache}/mongo/source.server when that source is
// the one SOURCE_URI names; else port 27118 (the stack's default,
// scripts/stack.versions).
//
// It skips when the source is not mongoshim in front of mongo-java-server
// (SOURCE_MONGO_SERVER, as `scripts/stack.sh env` exports it), and skips —
// or fails with LOGBRIDGE_REQUIRE_STACK=1 — when the backend is unreachable.
func (e Env) SourceBackend(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("SOURCE_BACKEND_URI"); v != "" {
		if err := dial(hostPort(v)); err != nil {
			unavailable(t, "the source backend SOURCE_BACKEND_URI="+v+" is unreachable: "+err.Error())
		}
		return v
	}
	if srv := os.Getenv("SOURCE_MONGO_SERVER"); srv != "" && srv != "mongoshim+mongo-java-server" {
		t.Skipf("the source is %s, not mongoshim in front of mongo-java-server: there is no backend to put another shim in front of (set SOURCE_BACKEND_URI)", srv)
	}
	host, srcPort, err := net.SplitHostPort(hostPort(e.SourceURI))
	if err != nil {
		t.Skipf("SOURCE_URI %s: %v", e.SourceURI, err)
	}
	port := os.Getenv("MONGO_SOURCE_BACKEND_PORT")
	if port == "" {
		port = recordedBackendPort(srcPort)
	}
	addr := net.JoinHostPort(host, port)
	if err := dial(addr); err != nil {
		unavailable(t, "the source's mongo-java-server backend at "+addr+" is unreachable ("+err.Error()+"): run `scripts/stack.sh up mongo`, or set MONGO_SOURCE_BACKEND_PORT or SOURCE_BACKEND_URI")
	}
	return "mongodb://" + addr + "/?directConnection=true"
}

// recordedBackendPort reads the source's "KIND PORT SHIM BACKEND_PORT STORE"
// line that scripts/stack.d/mongo.sh writes, and returns BACKEND_PORT when the
// shim it records listens on srcPort; else the default 27118.
func recordedBackendPort(srcPort string) string {
	b, err := os.ReadFile(filepath.Join(StackCache(), "mongo", "source.server"))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) >= 4 && f[1] == srcPort && f[2] == "shim" {
			return f[3]
		}
	}
	return "27118"
}

// StackCache is the directory where scripts/stack.sh keeps the local
// stack's state (pid files, recorded ports): ${LOGBRIDGE_CACHE:-<repo>/.cache}.
func StackCache() string {
	if c := os.Getenv("LOGBRIDGE_CACHE"); c != "" {
		return c
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".cache")
}
