package controlapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/source-connector/internal/app"
)

// newTestAPI serves the API over a fake Kafka holding the control log; the
// reconcile loop is not run, so only the request handling is under test.
func newTestAPI(t *testing.T) (*Controller, *httptest.Server, []kgo.Opt) {
	t.Helper()
	return newTestAPIWith(t, map[string]string{"cluster0": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100", "cluster1": "mongodb://127.0.0.1:2/?serverSelectionTimeoutMS=100"})
}

// newTestAPIWith is newTestAPI with the given cluster URIs.
func newTestAPIWith(t *testing.T, clusters map[string]string) (*Controller, *httptest.Server, []kgo.Opt) {
	t.Helper()
	fk, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fk.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(fk.ListenAddrs()...)}
	base := app.DefaultConfig()
	base.TopicPrefix = "lb"
	c, err := New(context.Background(), Config{
		Clusters: clusters,
		Base:     base,
	}, opts, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// No cluster answers here: the pre-start checks have their own tests
	// (prestart_test.go, and tests/lifecycle on real servers).
	c.probe = func(context.Context, control.StartParams, *control.Compiled) ([]string, error) { return nil, nil }
	mux := http.NewServeMux()
	c.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, srv, opts
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: response is not JSON: %s", method, path, b)
	}
	return resp.StatusCode, out
}

func TestLifecycleRequestsAndRefusals(t *testing.T) {
	c, srv, opts := newTestAPI(t)
	steps := []struct {
		name, method, path, body string
		wantCode                 int
		wantState                control.State
		wantInError              string
	}{
		{"progress idle", "GET", "/api/v1/progress", "", 200, control.Idle, ""},
		{"commit before start", "POST", "/api/v1/commit", "", 409, control.Idle, "only a RUNNING sync"},
		{"pause before start", "POST", "/api/v1/pause", "", 409, control.Idle, "only a RUNNING"},
		{"start unknown cluster", "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster9"}`, 400, control.Idle, "not a configured cluster"},
		{"start misspelt option", "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster1","reversable":true}`, 400, control.Idle, "unknown field"},
		{"start same cluster", "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster0"}`, 400, control.Idle, "different"},
		{"start", "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster1","reversible":false,"includeNamespaces":[{"database":"shop"}]}`, 200, control.Running, ""},
		{"start twice", "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster1"}`, 409, control.Running, "already started"},
		{"commit before canCommit", "POST", "/api/v1/commit", "", 409, control.Running, "cannot commit yet"},
		{"resume while running", "POST", "/api/v1/resume", "", 409, control.Running, "only a PAUSED"},
		{"reverse while running", "POST", "/api/v1/reverse", "", 409, control.Running, "COMMITTED"},
		{"pause", "POST", "/api/v1/pause", "", 200, control.Paused, ""},
		{"pause twice", "POST", "/api/v1/pause", "", 409, control.Paused, "only a RUNNING"},
		{"commit while paused", "POST", "/api/v1/commit", "", 409, control.Paused, "only a RUNNING"},
		{"resume", "POST", "/api/v1/resume", "{}", 200, control.Running, ""},
	}
	for _, s := range steps {
		code, body := call(t, srv, s.method, s.path, s.body)
		if code != s.wantCode {
			t.Fatalf("%s: got HTTP %d (%v), want %d", s.name, code, body, s.wantCode)
		}
		if s.wantInError != "" && !strings.Contains(body["errorDescription"].(string), s.wantInError) {
			t.Fatalf("%s: got error %q, want it to mention %q", s.name, body["errorDescription"], s.wantInError)
		}
		if s.wantCode == 200 && body["success"] != true {
			t.Fatalf("%s: got %v, want success", s.name, body)
		}
		_, prog := call(t, srv, "GET", "/api/v1/progress", "")
		if got := prog["progress"].(map[string]any)["state"]; got != string(s.wantState) {
			t.Fatalf("%s: progress state got %v, want %s", s.name, got, s.wantState)
		}
	}
	// The state lives in the control log: a new controller on the same log
	// continues where this one was (a service restart).
	c.Close()
	clog, err := control.NewLog(context.Background(), opts, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	st, events, err := clog.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.State != control.Running || len(events) != 3 || st.Params.IncludeNamespaces[0].Database != "shop" {
		t.Fatalf("reloaded state got %s after %d events (%+v), want RUNNING after start, pause, resume", st.State, len(events), st.Params)
	}
}

// TestProgressAnswersWhileAStartIsBlocked holds a start inside its
// control-log append (the hook blocks until released) and checks that
// progress still answers at once: no lock is held across the I/O.
func TestProgressAnswersWhileAStartIsBlocked(t *testing.T) {
	c, srv, _ := newTestAPI(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.beforeAppend = func(context.Context) {
		once.Do(func() { close(entered) })
		<-release
	}
	started := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/start", strings.NewReader(`{"source":"cluster0","destination":"cluster1"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			started <- -1
			return
		}
		resp.Body.Close()
		started <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the start request never reached the control-log append")
	}
	cl := &http.Client{Timeout: time.Second}
	t0 := time.Now()
	resp, err := cl.Get(srv.URL + "/api/v1/progress")
	if err != nil {
		close(release)
		t.Fatalf("progress while a start is blocked in its append: %v (after %v), want an answer within 1s", err, time.Since(t0))
	}
	var out struct {
		Progress Progress `json:"progress"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || out.Progress.State != control.Idle {
		close(release)
		t.Fatalf("progress during the start: got %+v (%v), want state IDLE (the start is not recorded yet)", out.Progress, err)
	}
	close(release)
	if code := <-started; code != 200 {
		t.Fatalf("the start, once released: got HTTP %d, want 200", code)
	}
	if code, prog := call(t, srv, "GET", "/api/v1/progress", ""); code != 200 || prog["progress"].(map[string]any)["state"] != string(control.Running) {
		t.Fatalf("progress after the start: got %d %v, want RUNNING", code, prog)
	}
}

// TestOversizeBodyIs413 sends a start whose body exceeds the limit without
// a Content-Length (chunked), so only the handler's read can notice.
func TestOversizeBodyIs413(t *testing.T) {
	_, srv, opts := newTestAPI(t)
	big := `{"source":"cluster0","destination":"cluster1","includeNamespaces":[` + strings.Repeat(`{"database":"d"},`, httpapi.MaxBodyBytes/16) + `{"database":"d"}]}`
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/start", io.MultiReader(strings.NewReader(big))) // no Content-Length
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e httpapi.ErrorBody
	if resp.StatusCode != 413 || json.Unmarshal(b, &e) != nil || e.Error != "RequestTooLarge" {
		t.Fatalf("got HTTP %d %s, want 413 RequestTooLarge", resp.StatusCode, b)
	}
	clog, err := control.NewLog(context.Background(), opts, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	if st, events, err := clog.Load(context.Background()); err != nil || len(events) != 0 || st.State != control.Idle {
		t.Fatalf("control log after the refused start: %d events, state %s (%v), want none", len(events), st.State, err)
	}
}

// TestProgressAnswersWhileWriteBlockingHangs starts with write blocking on a
// destination that accepts connections and never answers, so the start is
// stuck in its MongoDB call (setUserWriteBlockMode's connection) until the
// driver gives up; progress must answer meanwhile. The start then fails
// with 503 ClusterUnavailable (blocking was asked for and could not be
// done) and records nothing.
func TestProgressAnswersWhileWriteBlockingHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	var once sync.Once
	var conns []net.Conn
	var connMu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connMu.Lock()
			conns = append(conns, c) // held open, never answered
			connMu.Unlock()
			once.Do(func() { close(accepted) })
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connMu.Lock()
		defer connMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	_, srv, opts := newTestAPIWith(t, map[string]string{
		"cluster0": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100",
		"cluster1": "mongodb://" + ln.Addr().String() + "/?directConnection=true&serverSelectionTimeoutMS=3000&connectTimeoutMS=3000",
	})
	started := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/start", strings.NewReader(`{"source":"cluster0","destination":"cluster1","enableUserWriteBlocking":true}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			started <- -1
			return
		}
		resp.Body.Close()
		started <- resp.StatusCode
	}()
	select {
	case <-accepted: // the start is now inside its MongoDB call
	case <-time.After(10 * time.Second):
		t.Fatal("the start never connected to the destination")
	}
	cl := &http.Client{Timeout: time.Second}
	resp, err := cl.Get(srv.URL + "/api/v1/progress")
	if err != nil {
		t.Fatalf("progress while a start waits on an unresponsive cluster: %v, want an answer within 1s", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("progress: got HTTP %d, want 200", resp.StatusCode)
	}
	if code := <-started; code != http.StatusServiceUnavailable {
		t.Fatalf("the start whose destination could not be blocked: got HTTP %d, want 503 (blocking was asked for)", code)
	}
	clog, err := control.NewLog(context.Background(), opts, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	if st, events, err := clog.Load(context.Background()); err != nil || len(events) != 0 || st.State != control.Idle {
		t.Fatalf("control log after the failed start: %d events, state %s (%v), want none", len(events), st.State, err)
	}
}

// TestStartRefusedLeavesTheLogUntouched: a start that could not run gets
// 400 InvalidRequest naming the problem, and nothing reaches the control
// log (a start there is permanent); a valid start afterwards succeeds.
func TestStartRefusedLeavesTheLogUntouched(t *testing.T) {
	c, srv, opts := newTestAPI(t)
	refused := []struct{ name, body, want string }{
		{"bad regex", `{"source":"cluster0","destination":"cluster1","includeNamespaces":[{"database":"shop","collectionsRegex":{"pattern":"("}}]}`,
			`includeNamespaces[0].collectionsRegex "(": not a valid regular expression`},
		{"lookahead", `{"source":"cluster0","destination":"cluster1","includeNamespaces":[{"database":"shop","collectionsRegex":{"pattern":"^(?=a)"}}]}`,
			`includeNamespaces[0].collectionsRegex "^(?=a)": lookahead (?=...) is not supported (RE2 syntax): rewrite without it`},
		{"backreference", `{"source":"cluster0","destination":"cluster1","excludeNamespaces":[{"databaseRegex":{"pattern":"(a)\\1"}}]}`,
			`backreference \1 is not supported`},
		{"bad remap", `{"source":"cluster0","destination":"cluster1","namespaceRemap":[{"from":{"database":"shop"},"to":{"database":"shop","collection":"x"}}]}`,
			"a database maps onto a database"},
		{"remap collision", `{"source":"cluster0","destination":"cluster1","namespaceRemap":[{"from":{"database":"a"},"to":{"database":"c"}},{"from":{"database":"b"},"to":{"database":"c"}}]}`,
			"c.* is already the target of namespaceRemap[0]"},
		{"remap chain", `{"source":"cluster0","destination":"cluster1","namespaceRemap":[{"from":{"database":"a"},"to":{"database":"b"}},{"from":{"database":"b"},"to":{"database":"c"}}]}`,
			"chains and cycles are not supported"},
		{"reversed remap cannot run", `{"source":"cluster0","destination":"cluster1","reversible":true,"enableUserWriteBlocking":true,"namespaceRemap":[{"from":{"database":"s","collection":"a"},"to":{"database":"x"}},{"from":{"database":"s"},"to":{"database":"y"}}]}`,
			"the reversed sync could not run"},
		{"documentFilter", `{"source":"cluster0","destination":"cluster1","documentFilter":{"status":"active"}}`,
			"documentFilter: logbridge does not filter documents"},
		{"never and reversible", `{"source":"cluster0","destination":"cluster1","buildIndexes":"never","reversible":true,"enableUserWriteBlocking":true}`,
			`buildIndexes "never" with "reversible": true`},
		{"reversible without blocking", `{"source":"cluster0","destination":"cluster1","reversible":true,"enableUserWriteBlocking":"destinationOnly"}`,
			`"reversible": true needs "enableUserWriteBlocking": "sourceAndDestination"`},
		{"unknown write-blocking mode", `{"source":"cluster0","destination":"cluster1","enableUserWriteBlocking":"always"}`,
			`enableUserWriteBlocking "always": use "sourceAndDestination", "destinationOnly", "none", true or false`},
		{"filterOnDestination is the reversal's", `{"source":"cluster0","destination":"cluster1","filterOnDestination":true}`,
			`"filterOnDestination" is set by reverse, not by a start request`},
	}
	for _, r := range refused {
		code, body := call(t, srv, "POST", "/api/v1/start", r.body)
		if code != 400 || body["success"] != false || body["error"] != "InvalidRequest" || !strings.Contains(body["errorDescription"].(string), r.want) {
			t.Fatalf("%s: got HTTP %d %v, want 400 InvalidRequest mentioning %q", r.name, code, body, r.want)
		}
		if st := c.state.State; st != control.Idle {
			t.Fatalf("%s: state %s after a refused start, want IDLE", r.name, st)
		}
	}
	clog, err := control.NewLog(context.Background(), opts, "lb")
	if err != nil {
		t.Fatal(err)
	}
	defer clog.Close()
	if _, events, err := clog.Load(context.Background()); err != nil || len(events) != 0 {
		t.Fatalf("control log after refused starts: %d events (%v), want none", len(events), err)
	}
	code, body := call(t, srv, "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster1","includeNamespaces":[{"databaseRegex":{"pattern":"^ shop $","options":"x"}}]}`)
	if code != 200 {
		t.Fatalf("valid start: got HTTP %d %v, want 200", code, body)
	}
	if _, events, err := clog.Load(context.Background()); err != nil || len(events) != 1 {
		t.Fatalf("control log after a valid start: %d events (%v), want 1", len(events), err)
	}
	// The epoch runs with the compiled filter: the x option's spaces are gone.
	cfg, err := c.epochConfig(c.state)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Filter == nil || !cfg.Filter.Match("shop", "orders") || cfg.Filter.Match("crm", "orders") {
		t.Fatalf("epoch filter %v: want shop.orders selected and crm.orders not", cfg.Filter)
	}
}

// TestProgressNamesTheBuild: progress carries the binary's version, commit,
// record contract and metadata version (what a rolling upgrade checks).
func TestProgressNamesTheBuild(t *testing.T) {
	_, srv, _ := newTestAPI(t)
	_, prog := call(t, srv, "GET", "/api/v1/progress", "")
	b, _ := prog["progress"].(map[string]any)["build"].(map[string]any)
	want := version.Get()
	if b == nil || b["version"] != want.Version || b["commit"] != want.Commit || b["recordContract"] != schema.ContractVersion ||
		b["metadataVersion"] != float64(version.Metadata()) || b["goVersion"] != want.GoVersion {
		t.Fatalf("progress build: got %v, want %+v", b, want)
	}
}

// TestReversedEpochFiltersOnRemappedNames: after a sync of crm remapped to
// crm_v2, the reversed epoch's source connector (reading the old
// destination) selects crm_v2, not crm, as the verifier does.
func TestReversedEpochFiltersOnRemappedNames(t *testing.T) {
	c, _, _ := newTestAPI(t)
	p := control.StartParams{Source: "cluster0", Destination: "cluster1", Reversible: true,
		IncludeNamespaces: []control.NamespaceSpec{{Database: "crm"}},
		NamespaceRemap:    []control.Remap{{From: control.NamespaceRef{Database: "crm"}, To: control.NamespaceRef{Database: "crm_v2"}}}}
	st := control.Fold([]control.Event{
		{Type: control.EvStart, Params: &p}, {Type: control.EvCommit}, {Type: control.EvCommitMarked, MarkerID: "m"},
		{Type: control.EvSinkCommitted, MarkerID: "m"}, {Type: control.EvCommitted}, {Type: control.EvReverse},
	})
	rev := st.Params.Reversed()
	st.Apply(control.Event{Type: control.EvReversed, Params: &rev})
	if st.State != control.Running || st.Epoch != 2 {
		t.Fatalf("folded state %s epoch %d, want RUNNING epoch 2", st.State, st.Epoch)
	}
	cfg, err := c.epochConfig(st)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SourceName != "cluster1" || !cfg.Filter.Match("crm_v2", "accounts") || cfg.Filter.Match("crm", "accounts") || cfg.Filter.MayMatchDB("crm") {
		t.Fatalf("reversed epoch reads %s with filter %v: want cluster1, crm_v2.accounts selected, crm neither as a collection nor as a database",
			cfg.SourceName, cfg.Filter)
	}
}

// TestProgressIdentityAndPing: progress names the instance like mongosync
// (mongosyncID) and reads pingLatencyMs -1 until a ping was measured.
func TestProgressIdentityAndPing(t *testing.T) {
	c, _, _ := newTestAPI(t)
	c.state = control.Fold([]control.Event{{Type: control.EvStart, Params: &control.StartParams{Source: "cluster0", Destination: "cluster1"}}})
	p := c.progress(context.Background())
	if p.MongosyncID != "lb" || p.CoordinatorID != "lb" || p.Source.PingLatencyMs != -1 || p.Destination.PingLatencyMs != -1 {
		t.Fatalf("progress: id %q/%q, ping %d/%d: want lb/lb and -1/-1 before any ping", p.MongosyncID, p.CoordinatorID, p.Source.PingLatencyMs, p.Destination.PingLatencyMs)
	}
	// Nothing answers at cluster0 (127.0.0.1:1): the latency stays unknown.
	c.ping.ping(context.Background(), c, "cluster0")
	if got := c.ping.get("cluster0"); got != -1 {
		t.Fatalf("pingLatencyMs of an unreachable cluster: got %d, want -1", got)
	}
}

// TestThrottleRecorded: POST /api/v1/throttle records the rates in the
// control log (any state), progress shows them, the epoch starts with
// them, and an empty or negative request is refused with nothing written.
func TestThrottleRecorded(t *testing.T) {
	c, srv, _ := newTestAPI(t)
	for _, bad := range []struct{ body, want string }{
		{`{}`, `give "maxReadRate" and/or "maxWriteRate"`},
		{`{"maxReadRate":{"docs":-5}}`, "maxReadRate: rate docs=-5"},
		{`{"maxReadRate":"docs=5"}`, "not valid JSON for this endpoint"},
	} {
		code, body := call(t, srv, "POST", "/api/v1/throttle", bad.body)
		if code != 400 || !strings.Contains(fmt.Sprint(body["errorDescription"]), bad.want) {
			t.Fatalf("%s: got HTTP %d %v, want 400 mentioning %q", bad.body, code, body, bad.want)
		}
	}
	if c.state.Events != 0 {
		t.Fatalf("refused throttles wrote %d control events", c.state.Events)
	}
	if code, body := call(t, srv, "POST", "/api/v1/throttle", `{"maxReadRate":{"docs":500,"bytes":1048576},"maxWriteRate":{"docs":200}}`); code != 200 {
		t.Fatalf("throttle: HTTP %d %v", code, body)
	}
	if code, body := call(t, srv, "POST", "/api/v1/throttle", `{"maxWriteRate":{}}`); code != 200 {
		t.Fatalf("throttle (write unlimited): HTTP %d %v", code, body)
	}
	p := c.progress(context.Background())
	if p.Throttle.MaxReadRate != (throttle.Rate{Docs: 500, Bytes: 1 << 20}) || p.Throttle.MaxWriteRate == nil || !p.Throttle.MaxWriteRate.Unlimited() {
		t.Fatalf("progress.throttle %+v, want read docs=500,bytes=1MiB and write unlimited (the second request left read alone)", p.Throttle)
	}
	code, _ := call(t, srv, "POST", "/api/v1/start", `{"source":"cluster0","destination":"cluster1"}`)
	if code != 200 {
		t.Fatalf("start: HTTP %d", code)
	}
	cfg, err := c.epochConfig(c.state)
	if err != nil || cfg.MaxReadRate != (throttle.Rate{Docs: 500, Bytes: 1 << 20}) {
		t.Fatalf("epoch config read rate %v (%v), want the API's docs=500,bytes=1048576", cfg.MaxReadRate, err)
	}
}
