package validate

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const repoRoot = "../.."

// stackEnv is a server address from the environment (as `scripts/stack.sh
// env` exports it), else the local stack's default.
func stackEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// requireStack skips (or, under make test, fails) when a server is missing.
func requireStack(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			msg := fmt.Sprintf("the local stack is not reachable (%s: %v): start it with `make up`", a, err)
			if os.Getenv("LOGBRIDGE_REQUIRE_STACK") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		c.Close()
	}
}

// hostPort is the first host:port of a broker list or mongodb:// URI.
func hostPort(s string) string {
	s = strings.TrimPrefix(s, "mongodb://")
	if i := strings.IndexAny(s, "/?,"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// goRun runs `go args...` in the repository root.
func goRun(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startProcess runs bin with args until the test ends (SIGTERM, then wait);
// its output goes to a log file shown when the test fails.
func startProcess(t *testing.T, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log (tail):\n%s", filepath.Base(bin), b)
		}
	})
}

func httpDo(method, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// TestQueriesMatchRealMetrics builds the real source-connector and
// sink-connector, runs them in mongosync mode on the local stack through a
// sync (copy, change events, DDL), scrapes both /metrics and checks that
// every metric, label matcher, label value and grouping label of every rule
// and dashboard query exists in what they serve.
func TestQueriesMatchRealMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs the connectors on the local stack")
	}
	brokers := stackEnv("KAFKA_BROKERS", "127.0.0.1:19092")
	srcURI := stackEnv("SOURCE_URI", "mongodb://127.0.0.1:27018/?replicaSet=rs0")
	dstURI := stackEnv("DEST_URI", "mongodb://127.0.0.1:27019/?replicaSet=rs1")
	requireStack(t, hostPort(brokers), hostPort(srcURI), hostPort(dstURI))

	bin := t.TempDir()
	goRun(t, "build", "-o", bin+"/", "./source-connector", "./sink-connector")
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	prefix, db := "lbvalidate-"+id, "validate_"+id
	token := "validate-" + id
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	workload := func(uri string, args ...string) {
		goRun(t, append([]string{"run", "./tests/workload/cmd/workload", "--uri", uri, "--dbs", db}, args...)...)
	}
	workload(srcURI, "--seed", "1", "--drop", "--docs", "300", "--ops", "0")
	t.Cleanup(func() {
		workload(srcURI, "--drop", "--docs", "0", "--ops", "0")
		workload(dstURI, "--drop", "--docs", "0", "--ops", "0")
	})

	srcAddr, sinkAddr := freeAddr(t), freeAddr(t)
	startProcess(t, filepath.Join(bin, "sink-connector"), "--cluster0", srcURI, "--cluster1", dstURI, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--group", prefix+"-sink", "--http-addr", sinkAddr, "--api-token-file", tokenFile)
	startProcess(t, filepath.Join(bin, "source-connector"), "--cluster0", srcURI, "--cluster1", dstURI, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--sink-group", prefix+"-sink", "--http-addr", srcAddr, "--api-token-file", tokenFile)
	api := "http://" + srcAddr + "/api/v1"
	deadline := time.Now().Add(time.Minute)
	for {
		if code, _, err := httpDo("GET", api+"/progress", "", ""); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the source-connector's API did not come up within a minute")
		}
		time.Sleep(300 * time.Millisecond)
	}
	body := fmt.Sprintf(`{"source":"cluster0","destination":"cluster1","includeNamespaces":[{"database":%q}]}`, db)
	if code, resp, err := httpDo("POST", api+"/start", token, body); err != nil || code != 200 {
		t.Fatalf("POST /start: %d %s %v", code, resp, err)
	}
	workload(srcURI, "--seed", "2", "--docs", "0", "--ops", "300", "--ddl")

	queries := append(ruleQueries(t), dashboardQueries(t)...)
	exp := exposition{}
	var problems []string
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for {
		for _, addr := range []string{srcAddr, sinkAddr} {
			if code, text, err := httpDo("GET", "http://"+addr+"/metrics", "", ""); err == nil && code == 200 {
				if err := readExposition(strings.NewReader(text), exp); err != nil {
					t.Fatalf("/metrics of %s does not parse: %v", addr, err)
				}
			}
		}
		problems = problems[:0]
		served := exp
		for _, q := range queries {
			problems = append(problems, checkQuery(q, served)...)
		}
		if len(problems) == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d queries checked against %d series names of the real /metrics", len(queries), len(exp))
}
