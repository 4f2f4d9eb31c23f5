package lifecycle

// Invariant 7 (safe exposure) against real source-connector and
// sink-connector processes: every mutating endpoint refuses a request
// without a valid token with 401 and writes nothing to the control log; the
// token, and a TLS client certificate, are accepted; an oversize body is
// 413; an exposed listener without authentication is refused at start-up
// with exit status 2.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/tests/testcerts"
	"github.com/logbridge/logbridge/tests/testenv"
)

// mutating are the endpoints that change a sync.
var mutating = []string{"start", "pause", "resume", "commit", "reverse", "verify"}

// controlRecords reads the control topic of prefix from the beginning with
// franz-go and counts its records.
func controlRecords(t *testing.T, ctx context.Context, env testenv.Env, prefix string) int {
	t.Helper()
	topic := control.Topic(prefix)
	ends, err := env.Admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing the end of %s: %v", topic, err)
	}
	end, ok := ends.Lookup(topic, 0)
	if !ok || end.Err != nil {
		t.Fatalf("end offset of %s: %v", topic, end.Err)
	}
	if end.Offset == 0 {
		return 0
	}
	cl := env.Kafka(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) { n++; last = r.Offset })
		if last >= end.Offset-1 {
			return n
		}
	}
}

// secureSource starts a source-connector in mongosync mode with a fresh
// topic prefix and the extra flags, and waits until its API answers.
func secureSource(t *testing.T, ctx context.Context, env testenv.Env, prefix string, a *api, extra ...string) *proc {
	t.Helper()
	srcBin, _ := binaries(t)
	args := append([]string{"--cluster0", env.SourceURI, "--cluster1", env.DestURI,
		"--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--topic-prefix", prefix, "--sink-group", prefix + "-sink"}, extra...)
	p := startProc(t, "source", srcBin, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log tail:\n%s", p.Tail(4000))
		}
	})
	waitFor(t, ctx, "the source's API to answer", time.Minute, p.Exited, func() (bool, string) {
		pr, err := a.progress()
		if err != nil {
			return false, err.Error()
		}
		return str(pr, "state") == string(control.Idle), brief(pr)
	})
	return p
}

// raw sends a request with the given bearer token ("" = none) and returns
// the status, the challenge header and the decoded error body.
func raw(t *testing.T, cl *http.Client, method, url, bearer string, body []byte) (int, string, httpapi.ErrorBody, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e httpapi.ErrorBody
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), e, string(b)
}

func TestControlAPINeedsTheToken(t *testing.T) {
	ctx := testenv.Context(t, 3*time.Minute)
	env := testenv.New(t)
	prefix := testenv.TopicPrefix(t)
	tf, token := tokenFile(t)
	addr := freePort(t)
	a := newAPI(t, addr, "") // progress on loopback needs no token
	src := secureSource(t, ctx, env, prefix, a, "--http-addr", addr, "--api-token-file", tf)
	cl := &http.Client{Timeout: 15 * time.Second}
	startBody := []byte(`{"source":"cluster0","destination":"cluster1","includeNamespaces":[{"database":"` + testenv.DBName(t) + `"}]}`)

	before := controlRecords(t, ctx, env, prefix)
	for _, ep := range mutating {
		url := a.base + "/api/v1/" + ep
		body := []byte(nil)
		if ep == "start" {
			body = startBody
		}
		for _, bearer := range []string{"", "not-the-token-not-the-token-not-the-token"} {
			code, challenge, e, rawBody := raw(t, cl, "POST", url, bearer, body)
			if code != 401 || e.Success || e.Error != "Unauthorized" || e.ErrorDescription == "" || !strings.HasPrefix(challenge, "Bearer") {
				t.Fatalf("POST /api/v1/%s with token %q: got %d %s (WWW-Authenticate %q), want 401 Unauthorized with a Bearer challenge",
					ep, bearer, code, rawBody, challenge)
			}
			if strings.Contains(rawBody, token) {
				t.Fatalf("the refusal shows the token: %s", rawBody)
			}
		}
	}
	// An authenticated request with a body over the limit: 413, nothing recorded.
	big := append(append([]byte(`{"source":"cluster0","destination":"cluster1","includeNamespaces":[`),
		bytes.Repeat([]byte(`{"database":"d"},`), httpapi.MaxBodyBytes/16)...), []byte(`{"database":"d"}]}`)...)
	if code, _, e, rawBody := raw(t, cl, "POST", a.base+"/api/v1/start", token, big); code != 413 || e.Error != "RequestTooLarge" {
		t.Fatalf("POST /api/v1/start with %d bytes: got %d %s, want 413 RequestTooLarge", len(big), code, rawBody)
	}
	if after := controlRecords(t, ctx, env, prefix); after != before {
		t.Fatalf("the control log holds %d records after the refused requests, had %d: a refused request wrote to it", after, before)
	}
	if p, err := a.progress(); err != nil || str(p, "state") != string(control.Idle) {
		t.Fatalf("progress after the refused requests: %v (%v), want IDLE", brief(p), err)
	}

	// The token is accepted: the start is recorded.
	code, _, _, rawBody := raw(t, cl, "POST", a.base+"/api/v1/start", token, startBody)
	if code != 200 {
		t.Fatalf("POST /api/v1/start with the token: got %d %s, want 200", code, rawBody)
	}
	if after := controlRecords(t, ctx, env, prefix); after != before+1 {
		t.Fatalf("the control log holds %d records after an accepted start, want %d", after, before+1)
	}
	// Mutations after the start are authenticated but refused by the state:
	// 409, not 401, with the token.
	if code, _, e, rawBody := raw(t, cl, "POST", a.base+"/api/v1/resume", token, nil); code != 409 || e.Error != "InvalidStateTransition" {
		t.Fatalf("POST /api/v1/resume with the token while RUNNING: got %d %s, want 409", code, rawBody)
	}
	// The refusals were logged, the token never.
	logText := src.Tail(1 << 22)
	if !strings.Contains(logText, "not authenticated") {
		t.Fatalf("the source log does not record the refused requests:\n%s", src.Tail(3000))
	}
	if strings.Contains(logText, token) {
		t.Fatal("the source log shows the API token")
	}
}

func TestControlAPIOverTLSWithClientCertificates(t *testing.T) {
	ctx := testenv.Context(t, 3*time.Minute)
	env := testenv.New(t)
	prefix := testenv.TopicPrefix(t)
	ca := testcerts.NewCA(t, "logbridge test CA")
	srv := ca.Issue(t, "server", true)
	operator := ca.Issue(t, "operator", false)
	addr := freePort(t)
	a := newAPI(t, addr, "")
	a.base = "https://" + addr
	a.cl = ca.Client() // trusts the CA, presents no certificate
	secureSource(t, ctx, env, prefix, a, "--http-addr", addr,
		"--http-tls-cert", srv.CertFile, "--http-tls-key", srv.KeyFile, "--http-tls-client-ca", ca.File)

	before := controlRecords(t, ctx, env, prefix)
	if code, _, _, rawBody := raw(t, ca.Client(), "POST", a.base+"/api/v1/pause", "", nil); code != 401 {
		t.Fatalf("POST /api/v1/pause over TLS without a client certificate: got %d %s, want 401", code, rawBody)
	}
	// The certificate authenticates: the request reaches the state machine,
	// which refuses a pause before start (409, not 401).
	if code, _, e, rawBody := raw(t, ca.Client(operator), "POST", a.base+"/api/v1/pause", "", nil); code != 409 || e.Error != "InvalidStateTransition" {
		t.Fatalf("POST /api/v1/pause with a client certificate: got %d %s, want 409 InvalidStateTransition", code, rawBody)
	}
	startBody := []byte(`{"source":"cluster0","destination":"cluster1","includeNamespaces":[{"database":"` + testenv.DBName(t) + `"}]}`)
	if code, _, _, rawBody := raw(t, ca.Client(operator), "POST", a.base+"/api/v1/start", "", startBody); code != 200 {
		t.Fatalf("POST /api/v1/start with a client certificate: got %d %s, want 200", code, rawBody)
	}
	if after := controlRecords(t, ctx, env, prefix); after != before+1 {
		t.Fatalf("the control log holds %d records, want %d (the certificate-authenticated start)", after, before+1)
	}
}

// TestExposedListenerWithoutAuthExits2 needs no stack: the refusal comes
// before anything is dialled (the brokers given are unreachable).
func TestExposedListenerWithoutAuthExits2(t *testing.T) {
	srcBin, sinkBin := binaries(t)
	for _, tc := range []struct {
		name string
		bin  string
		args []string
	}{
		{"source", srcBin, []string{"--cluster0", "mongodb://127.0.0.1:1", "--cluster1", "mongodb://127.0.0.1:2", "--kafka-brokers", "127.0.0.1:1", "--http-addr", "0.0.0.0:0"}},
		{"source pprof", srcBin, []string{"--source-uri", "mongodb://127.0.0.1:1", "--kafka-brokers", "127.0.0.1:1", "--pprof-addr", ":6060"}},
		{"sink", sinkBin, []string{"--dest-uri", "mongodb://127.0.0.1:1", "--kafka-brokers", "127.0.0.1:1", "--http-addr", "0.0.0.0:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, tc.bin, tc.args...)
			cmd.Env = withoutTokenEnv()
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("got %v, want exit status 2; output:\n%s", err, out)
			}
			for _, want := range []string{"not a loopback address", "--api-token-file", httpapi.TokenEnv, "--api-insecure"} {
				if !strings.Contains(string(out), want) {
					t.Fatalf("the message does not mention %q:\n%s", want, out)
				}
			}
		})
	}
}

// withoutTokenEnv is the test's environment without an API token, so that
// a token in the developer's shell does not change the outcome.
func withoutTokenEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, httpapi.TokenEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}
