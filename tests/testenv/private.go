package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/procs"
)

// PrivatePair is a source and a destination MongoDB-compatible server that
// belong to one test: a mongo-java-server with the replica-set shim
// (tests/mongoshim) in front of it per role, started as processes on free
// loopback ports exactly as scripts/stack.d/mongo.sh starts the shared ones
// (in-memory back end, --no-oplog, setName rs0 / rs1), and stopped at the
// test's cleanup.
//
// It is for tests that change server-wide state the shared servers must
// not see: setUserWriteBlockMode blocks every user write on a server, and
// on 27018/27019 it would break every other test writing there.
type PrivatePair struct {
	SourceURI, DestURI string
	// SourceProcs and DestProcs are each role's server and shim processes
	// (a benchmark reads their CPU time: how much of a run the servers
	// themselves cost).
	SourceProcs, DestProcs []*procs.Proc
}

// Private starts a PrivatePair. It needs the mongo-java-server that
// `scripts/stack.sh install mongo` put under the stack cache
// (${LOGBRIDGE_CACHE:-<repo>/.cache}/mongo/mongo-java-server-<version>, or
// MONGO_MJS_DIR) and a Java >= 17 (MONGO_JAVA_HOME, JAVA_HOME or PATH); it
// builds the shim with `go build`. Without them it skips, or fails with
// LOGBRIDGE_REQUIRE_STACK=1. Kafka stays the shared one (topics are per
// test anyway).
//
// destShimFlags are extra flags of the destination's shim (e.g.
// --writes-only, for a benchmark that never reads its change stream).
func Private(t testing.TB, destShimFlags ...string) PrivatePair {
	t.Helper()
	mjs, err := mjsDir()
	if err != nil {
		unavailable(t, "a private MongoDB pair: "+err.Error())
	}
	java, err := javaBin()
	if err != nil {
		unavailable(t, "a private MongoDB pair: "+err.Error())
	}
	shim := procs.Tool(t, "./tests/mongoshim/cmd/mongoshim")
	var pair PrivatePair
	for _, r := range []struct {
		role, setName string
		uri           *string
	}{{"source", "rs0", &pair.SourceURI}, {"destination", "rs1", &pair.DestURI}} {
		bport, serverProc := startListening(t, func(port string) *procs.Proc {
			return procs.Start(t, "private-mongo-"+r.role, java, "-Xmx512m", "-Dlogbridge.test=private-mongo-"+r.role,
				"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", filepath.Join(mjs, "lib", "*")+":"+filepath.Join(mjs, "classes"),
				"LogbridgeMongoJavaServer", "--host", "127.0.0.1", "--port", port, "--backend", "memory", "--no-oplog")
		}, 90*time.Second)
		sport, shimProc := startListening(t, func(port string) *procs.Proc {
			args := []string{"--listen", "127.0.0.1:" + port,
				"--backend", "mongodb://127.0.0.1:" + bport + "/?directConnection=true", "--set-name", r.setName,
				"--log-level", "warn", "--oplog-max-events", "300000"}
			if r.role == "destination" {
				args = append(args, destShimFlags...)
			}
			return procs.Start(t, "private-mongo-"+r.role+"-shim", shim, args...)
		}, 60*time.Second)
		*r.uri = fmt.Sprintf("mongodb://127.0.0.1:%s/?replicaSet=%s", sport, r.setName)
		if r.role == "destination" {
			pair.DestProcs = []*procs.Proc{serverProc, shimProc}
		} else {
			pair.SourceProcs = []*procs.Proc{serverProc, shimProc}
		}
	}
	t.Logf("private MongoDB pair: source %s, destination %s", pair.SourceURI, pair.DestURI)
	return pair
}

// mjsDir finds the installed mongo-java-server (its jars in lib/, the
// stack's launcher compiled into classes/).
func mjsDir() (string, error) {
	if d := os.Getenv("MONGO_MJS_DIR"); d != "" {
		return d, nil
	}
	pattern := filepath.Join(StackCache(), "mongo", "mongo-java-server-*")
	if v := os.Getenv("MONGO_MJS_VERSION"); v != "" {
		pattern = filepath.Join(StackCache(), "mongo", "mongo-java-server-"+v)
	}
	dirs, _ := filepath.Glob(pattern)
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "classes", "LogbridgeMongoJavaServer.class")); err == nil && !fi.IsDir() {
			return d, nil
		}
	}
	return "", fmt.Errorf("no installed mongo-java-server with the stack's launcher matches %s: run `scripts/stack.sh install mongo`, or point LOGBRIDGE_CACHE at the stack's cache (or MONGO_MJS_DIR at the install)", pattern)
}

// javaBin finds a java as scripts/stack.sh does (MONGO_JAVA_HOME,
// JAVA_HOME, PATH); the version is left to the JVM to complain about.
func javaBin() (string, error) {
	for _, home := range []string{os.Getenv("MONGO_JAVA_HOME"), os.Getenv("JAVA_HOME")} {
		if home != "" {
			if j := filepath.Join(home, "bin", "java"); fileExists(j) {
				return j, nil
			}
		}
	}
	j, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("no java (>= 17) on PATH, in MONGO_JAVA_HOME or JAVA_HOME: install a JDK (apt-get install -y openjdk-17-jdk-headless)")
	}
	return j, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// startListening starts a server with start(port) on a free port below the
// kernel's ephemeral range (where no outgoing connection can hold it as its
// local end while the server starts, docs/testing.md) and waits until it
// listens; a server that exits first (the port was taken after all) is
// tried again on another port.
func startListening(t testing.TB, start func(port string) *procs.Proc, d time.Duration) (string, *procs.Proc) {
	t.Helper()
	var last error
	for range 3 {
		port := privatePort(t)
		p := start(port)
		if last = waitListening(p, "127.0.0.1:"+port, d); last == nil {
			return port, p
		}
		p.Stop()
	}
	t.Fatalf("a private MongoDB server did not start: %v", last)
	return "", nil
}

// privatePort picks a port in [20000, 27000) that nothing listens on: below
// the ephemeral range and the stack's ports (27018, 27118, 28…, 29…).
func privatePort(t testing.TB) string {
	t.Helper()
	for range 100 {
		port := strconv.Itoa(20000 + rand.IntN(7000))
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free loopback port in [20000, 27000)")
	return ""
}

// waitListening waits until addr accepts connections; an error with the
// process's log when it exits or the time runs out.
func waitListening(p *procs.Proc, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for dial(addr) != nil {
		if err := p.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s after %v; log tail:\n%s", p.Name, addr, d, p.Tail(3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}
