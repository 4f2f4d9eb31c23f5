package secrets

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// Markers: each secret is unique, so its absence anywhere is checkable.
const (
	mPass0   = "h5PASSzero"      // cluster0 password (rejected by the server)
	mProxy   = "h5PROXYsecret"   // cluster0 proxyPassword
	mSecret1 = "h5AWSsecretKey"  // cluster1 password (the AWS secret key)
	mToken1  = "h5AWSsessionTok" // cluster1 AWS_SESSION_TOKEN
	mTLSPass = "h5TLSkeyPass"    // tlsCertificateKeyFilePassword
	mSSLPass = "h5SSLkeyPass"    // sslClientCertificateKeyPassword
	mSASL    = "h5SASLpassword"  // Kafka SASL password
)

var markers = []string{mPass0, mProxy, mSecret1, mToken1, mTLSPass, mSSLPass, mSASL}

// withCreds puts user:password@ into a mongodb:// URI and appends options.
func withCreds(t *testing.T, uri, user, pass, opts string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		t.Skipf("the stack's URI %q is not mongodb://", uri)
	}
	out := "mongodb://" + user + ":" + pass + "@" + rest
	if !strings.Contains(out, "?") {
		if !strings.Contains(rest, "/") {
			out += "/"
		}
		return out + "?" + opts
	}
	return out + "&" + opts
}

// assertNoMarkers fails when any marker (escaped or not) is in text.
func assertNoMarkers(t *testing.T, what, text string) {
	t.Helper()
	for _, m := range markers {
		if strings.Contains(text, m) {
			i := strings.Index(text, m)
			t.Errorf("%s holds the secret %s: ...%s...", what, m, text[max(0, i-200):min(len(text), i+100)])
		}
	}
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var httpAddrRe = regexp.MustCompile(`(?:msg="HTTP listening" url=https?://|http=)(127\.0\.0\.1:\d+)`)

// httpAddr waits for the process to log its bound HTTP address.
func httpAddr(t *testing.T, p *procs.Proc) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := p.Exited(); err != nil {
			t.Fatal(err)
		}
		if m := httpAddrRe.FindStringSubmatch(p.Tail(1 << 20)); m != nil {
			return m[1]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s logged no HTTP address; log:\n%s", p.Name, p.Tail(4000))
	return ""
}

type progressBody struct {
	Progress struct {
		State         string     `json:"state"`
		EpochRestarts int        `json:"epochRestarts"`
		LastError     string     `json:"lastError"`
		LastErrorTime *time.Time `json:"lastErrorTime"`
		Error         string     `json:"error"`
	} `json:"progress"`
}

// TestSupervisedEpochsKeepSecrets runs both connectors in mongosync mode
// with secret-laden cluster URIs: cluster0 is the real source server, which
// rejects the credentials; cluster1 refuses connections. A start event in
// the control log makes the source run against cluster0 and the sink write
// to cluster1; both fail, are retried with backoff, and say so in progress
// and metrics, and no secret shows anywhere.
func TestSupervisedEpochsKeepSecrets(t *testing.T) {
	env := testenv.New(t)
	ctx := testenv.Context(t, 3*time.Minute)
	srcBin, sinkBin := procs.Binaries(t)
	prefix := testenv.TopicPrefix(t)
	brokers := strings.Join(env.KafkaBrokers, ",")

	cluster0 := withCreds(t, env.SourceURI, "h5user", mPass0, "authSource=admin&proxyUsername=pu&proxyPassword="+mProxy)
	// A MONGODB-AWS URI to a port that refuses connections: the secret
	// key is the password, the session token an auth property.
	cluster1 := "mongodb://AKIDH5:" + mSecret1 + "@127.0.0.1:1/?authMechanism=MONGODB-AWS&authSource=$external&authMechanismProperties=AWS_SESSION_TOKEN:" + mToken1 + "&serverSelectionTimeoutMS=500"

	// The SASL password comes from a file: the stack's broker has no SASL,
	// so the connectors run without it here (TestSASLPasswordNeverShown
	// covers it).
	common := []string{"--cluster0", cluster0, "--cluster1", cluster1, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--http-addr", "127.0.0.1:0", "--restart-backoff-max", "2s", "--log-level", "debug"}
	src := procs.Start(t, "source", srcBin, append(common, "--sink-group", prefix+"-g")...)
	snk := procs.Start(t, "sink", sinkBin, append(common, "--group", prefix+"-g")...)
	srcAddr, sinkAddr := httpAddr(t, src), httpAddr(t, snk)

	clog, err := control.NewLog(ctx, []kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	params := control.StartParams{Source: "cluster0", Destination: "cluster1"}
	if err := clog.Append(ctx, control.Event{Type: control.EvStart, Params: &params}); err != nil {
		t.Fatal(err)
	}

	for _, svc := range []struct {
		name, addr, metric string
		p                  *procs.Proc
		wantErr            string
	}{
		{"source", srcAddr, "logbridge_source_epoch_restarts_total", src, "authentication failed"},
		{"sink", sinkAddr, "logbridge_sink_epoch_restarts_total", snk, "unreachable"},
	} {
		var body progressBody
		var raw string
		deadline := time.Now().Add(90 * time.Second)
		for {
			if err := svc.p.Exited(); err != nil {
				t.Fatal(err)
			}
			raw, err = get("http://" + svc.addr + "/api/v1/progress")
			if err == nil && json.Unmarshal([]byte(raw), &body) == nil && body.Progress.EpochRestarts >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: fewer than 3 restarts within 90s; progress %s\nlog:\n%s", svc.name, raw, svc.p.Tail(4000))
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s progress: restarts %d, lastError %q", svc.name, body.Progress.EpochRestarts, body.Progress.LastError)
		if !strings.Contains(body.Progress.LastError, svc.wantErr) || body.Progress.LastErrorTime == nil {
			t.Errorf("%s progress: lastError %q (time %v), want %q with its time", svc.name, body.Progress.LastError, body.Progress.LastErrorTime, svc.wantErr)
		}
		if !strings.Contains(body.Progress.LastError, "xxxxx") {
			t.Errorf("%s progress: lastError %q names the server without its masked password", svc.name, body.Progress.LastError)
		}
		assertNoMarkers(t, svc.name+" progress", raw)
		metrics, err := get("http://" + svc.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		assertNoMarkers(t, svc.name+" /metrics", metrics)
		// /readyz names the failing check with the error: redacted too.
		ready, err := get("http://" + svc.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ready, "[-]") {
			t.Errorf("%s /readyz while the epoch cannot start: got %q, want a failed check", svc.name, ready)
		}
		assertNoMarkers(t, svc.name+" /readyz", ready)
		if n := metricValue(metrics, svc.metric); n < 3 {
			t.Errorf("%s: %s = %v, want at least 3", svc.name, svc.metric, n)
		}
		if n := metricValue(metrics, strings.Replace(svc.metric, "restarts_total", "last_error_timestamp_seconds", 1)); n < float64(time.Now().Add(-time.Hour).Unix()) {
			t.Errorf("%s: last error timestamp %v is not recent", svc.name, n)
		}
	}
	src.Stop()
	snk.Stop()
	for _, p := range []*procs.Proc{src, snk} {
		log := p.Tail(1 << 24)
		assertNoMarkers(t, p.Name+" log", log)
		checkBackoff(t, p.Name, log, 2*time.Second)
	}
}

var (
	failLine = regexp.MustCompile(`time=(\S+) level=ERROR msg="epoch service failed; restarting after a backoff".* in=(\S+)`)
)

// checkBackoff reads the supervisor's failure lines: the announced delays
// start near 1s, double, stay within the jitter bound and the cap, and the
// failures are spaced at least by the delay announced before them.
func checkBackoff(t *testing.T, name, log string, maxDelay time.Duration) {
	t.Helper()
	var times []time.Time
	var delays []time.Duration
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := failLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err1 := time.Parse(time.RFC3339Nano, m[1])
		d, err2 := time.ParseDuration(m[2])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("%s: failure line %q: %v", name, sc.Text(), err)
		}
		times, delays = append(times, at), append(delays, d)
	}
	if len(delays) < 3 {
		t.Fatalf("%s: %d failure lines, want at least 3", name, len(delays))
	}
	t.Logf("%s: backoff delays %v", name, delays)
	for i, d := range delays {
		nominal := min(time.Second<<i, maxDelay)
		if d > nominal || d < nominal*8/10 {
			t.Errorf("%s: delay %d is %v, want within [%v, %v] (1s doubling, 20%% jitter, cap %v)", name, i+1, d, nominal*8/10, nominal, maxDelay)
		}
		if i > 0 {
			if gap := times[i].Sub(times[i-1]); gap < delays[i-1] {
				t.Errorf("%s: failure %d came %v after the previous one, before its %v backoff ended", name, i+1, gap, delays[i-1])
			}
		}
	}
}

// metricValue is the value of an unlabelled metric in a Prometheus text page
// (-1 when absent).
func metricValue(page, name string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// run runs a binary to its end and returns its exit status and output.
func run(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running %s: %v", bin, err)
	return 0, ""
}

// TestInvalidSettingsExitTwo: settings that could not run are refused with
// exit status 2 and a message naming the setting, before anything is dialled
// (the URIs and brokers point nowhere).
func TestInvalidSettingsExitTwo(t *testing.T) {
	srcBin, sinkBin := procs.Binaries(t)
	uri := "mongodb://u:" + mPass0 + "@127.0.0.1:1/?tlsCertificateKeyFilePassword=" + mTLSPass
	tests := []struct {
		name string
		bin  string
		args []string
		want string
	}{
		{"source progress interval 0", srcBin, []string{"--source-uri", uri, "--kafka-brokers", "127.0.0.1:1", "--progress-interval", "0"}, "progress-interval 0s"},
		{"source commit-max-lag -5", srcBin, []string{"--cluster0", uri, "--kafka-brokers", "127.0.0.1:1", "--commit-max-lag", "-5"}, "commit-max-lag -5"},
		{"source without a URI", srcBin, []string{"--kafka-brokers", "127.0.0.1:1"}, "source-uri is required"},
		{"source without brokers", srcBin, []string{"--source-uri", uri}, "kafka-brokers is required"},
		{"source restart backoff", srcBin, []string{"--cluster0", uri, "--kafka-brokers", "127.0.0.1:1", "--restart-backoff-max", "10ms"}, "restart-backoff-max"},
		{"source snapshot batch 0", srcBin, []string{"--source-uri", uri, "--kafka-brokers", "127.0.0.1:1", "--snapshot-batch-size", "0"}, "snapshot-batch-size 0"},
		{"sink batch size 0", sinkBin, []string{"--dest-uri", uri, "--kafka-brokers", "127.0.0.1:1", "--batch-size", "0"}, "batch-size 0"},
		{"sink without brokers", sinkBin, []string{"--dest-uri", uri}, "kafka-brokers is required"},
		{"sink unknown flag", sinkBin, []string{"--no-such-flag"}, "no-such-flag"},
		{"sink SASL file and flag", sinkBin, []string{"--dest-uri", uri, "--kafka-brokers", "127.0.0.1:1", "--kafka-sasl-password", mSASL, "--kafka-sasl-password-file", "/nonexistent"}, "give the password once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := run(t, tt.bin, nil, tt.args...)
			if code != 2 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want 2 with %q; output:\n%s", code, tt.want, out)
			}
			assertNoMarkers(t, "output", out)
		})
	}
}

// TestRuntimeErrorExitOne: a sink whose destination rejects the credentials
// or cannot load its TLS key stops with exit status 1, and neither its URI
// secrets nor the SASL password given in the environment show.
func TestRuntimeErrorExitOne(t *testing.T) {
	env := testenv.New(t)
	_, sinkBin := procs.Binaries(t)
	tests := []struct{ name, dest, want string }{
		{"credentials rejected", withCreds(t, env.DestURI, "h5user", mPass0, "authSource=admin&proxyPassword="+mProxy), "authentication failed"},
		{"tls key password", withCreds(t, env.DestURI, "h5user", mPass0, "tls=true&tlsCertificateKeyFile=/nonexistent/h5.pem&tlsCertificateKeyFilePassword="+mTLSPass), "URI is not valid"},
		{"ssl key password", withCreds(t, env.DestURI, "h5user", mPass0, "ssl=true&sslClientCertificateKeyFile=/nonexistent/h5.pem&sslClientCertificateKeyPassword="+mSSLPass), "URI is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := run(t, sinkBin, []string{"LOGBRIDGE_SINK_KAFKA_SASL_PASSWORD=" + mSASL},
				"--dest-uri", tt.dest, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--http-addr", "127.0.0.1:0",
				"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "h5")
			if code != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want 1 with %q; output:\n%s", code, tt.want, out)
			}
			assertNoMarkers(t, "output", out)
			if strings.Contains(out, "visible to every local user") {
				t.Errorf("a password from the environment was warned about as if on the command line:\n%s", out)
			}
		})
	}
}

// TestSASLPasswordNeverShown runs a sink against the broker's SASL_SSL
// listener, logged in as the stack's sink user with its real password, which
// comes from the command line (warned about), a file or the environment, and
// checks its log, progress answer and metrics for the password.
func TestSASLPasswordNeverShown(t *testing.T) {
	env := testenv.New(t)
	sec := env.Secured(t)
	password := sec.Users[sec.Sink]
	_, sinkBin := procs.Binaries(t)
	pwFile := filepath.Join(t.TempDir(), "sasl")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  string
		args []string
		warn bool
	}{
		{name: "flag", args: []string{"--kafka-sasl-password", password}, warn: true},
		{name: "file", args: []string{"--kafka-sasl-password-file", pwFile}},
		{name: "environment", env: "LOGBRIDGE_SINK_KAFKA_SASL_PASSWORD=" + password},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				k, v, _ := strings.Cut(tt.env, "=")
				t.Setenv(k, v)
			}
			prefix := testenv.TopicPrefix(t)
			grantSinkRead(t, env, sec.Sink, prefix)
			args := append([]string{"--dest-uri", env.DestURI, "--kafka-brokers", strings.Join(sec.SASLSSLBrokers, ","),
				"--kafka-tls", "--kafka-tls-ca-file", sec.CAFile(),
				"--topic-prefix", prefix, "--group", prefix, "--http-addr", "127.0.0.1:0", "--log-level", "debug",
				"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", sec.Sink}, tt.args...)
			p := procs.Start(t, "sink-"+tt.name, sinkBin, args...)
			addr := httpAddr(t, p)
			time.Sleep(2 * time.Second) // let the consumer try the broker
			prog, err := get("http://" + addr + "/api/v1/progress")
			if err != nil {
				t.Fatal(err)
			}
			metrics, err := get("http://" + addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			ready, err := get("http://" + addr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			p.Stop()
			log := p.Tail(1 << 24)
			for what, text := range map[string]string{"progress": prog, "metrics": metrics, "readyz": ready, "log": log} {
				assertNoMarkers(t, what, text)
				if strings.Contains(text, password) {
					t.Errorf("the %s shows the SASL password:\n%s", what, text)
				}
			}
			if !strings.Contains(log, "partitions assigned") && !strings.Contains(log, "sink started") {
				t.Errorf("the sink did not get going on the SASL_SSL listener; log:\n%s", log)
			}
			if got := strings.Contains(log, "visible to every local user"); got != tt.warn {
				t.Errorf("command-line warning: got %v, want %v; log:\n%s", got, tt.warn, log)
			}
		})
	}
}

// grantSinkRead lets principal read the topics of prefix and use the group
// named prefix on the secured listeners (the README's sink ACLs), until the
// test ends.
func grantSinkRead(t *testing.T, env testenv.Env, principal, prefix string) {
	t.Helper()
	adm := env.Admin(t)
	b := kadm.NewACLs().Allow("User:" + principal).AllowHosts().ResourcePatternType(kadm.ACLPatternPrefixed).
		Topics(prefix).Groups(prefix).Operations(kadm.OpRead)
	if _, err := adm.CreateACLs(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteACLs(context.Background(), b) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := adm.DescribeACLs(context.Background(), b)
		n := 0
		for _, r := range res {
			n += len(r.Described)
		}
		if err == nil && n >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ACLs not visible on the broker: %d described (%v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
