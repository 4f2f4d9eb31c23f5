// Package conformance probes a MongoDB-wire-compatible server for the features
// logbridge relies on: as a SOURCE (change streams, resume tokens, cluster time,
// transactions) and as a DESTINATION (CRUD, bulk writes, indexes, collection
// options, lossless BSON).
//
// The check list is reusable: integration tests call Probe (or RunChecks with a
// subset) against the server they were given and skip, with the returned reason,
// the tests whose feature the server lacks. cmd/probe prints the results as a
// markdown table.
//
// Every check works in its own database (prefix "lbconf_"), bounds all its waits
// with the context it is given, and never leaves a write block enabled.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Status is the outcome of one check.
type Status string

const (
	// Pass means the server behaved like genuine MongoDB for this check.
	Pass Status = "PASS"
	// Fail means the server answered, but not like genuine MongoDB.
	Fail Status = "FAIL"
	// Error means the server returned an error (often: command not supported)
	// or did not answer in time.
	Error Status = "ERROR"
	// Skip means the check could not run because a prerequisite failed.
	Skip Status = "SKIP"
)

// Result is the outcome of one named check against one server.
type Result struct {
	Check    string        `json:"check"`
	Status   Status        `json:"status"`
	Reason   string        `json:"reason"`
	Duration time.Duration `json:"duration_ns"`
}

// OK reports whether the check passed.
func (r Result) OK() bool { return r.Status == Pass }

// Check is one probe. A check may report several named results (Results lists
// them, in table order); a result it never reports is recorded as ERROR.
type Check struct {
	// Name of the check (and of its only result when Results is empty).
	Name string
	// Desc says in a few words what genuine MongoDB does here.
	Desc string
	// Role is "source", "destination" or "both": who needs it.
	Role string
	// Results are the names of the results this check reports; empty means
	// one result named Name.
	Results []string
	// Run performs the check. It reports each result with rep.
	Run func(ctx context.Context, e *Env, rep Reporter)
}

// ResultNames returns the result names of c in table order.
func (c Check) ResultNames() []string {
	if len(c.Results) == 0 {
		return []string{c.Name}
	}
	return c.Results
}

// Reporter records one result of a running check.
type Reporter func(result string, st Status, reason string, args ...any)

// Env is what a check gets: a connected client and a unique namespace prefix.
type Env struct {
	Client *mongo.Client
	URI    string
	// Prefix is unique per probe run; every database a check uses starts with it.
	Prefix string
	// Wait bounds a wait for change events or other asynchronous effects.
	Wait time.Duration
	// WatchScope is where change-stream checks open their streams:
	// ScopeCluster (default, what logbridge uses), ScopeDatabase or
	// ScopeCollection (to learn what a server without cluster-wide streams has).
	WatchScope string
}

// Change stream scopes for Env.WatchScope and Options.WatchScope.
const (
	ScopeCluster    = "cluster"
	ScopeDatabase   = "database"
	ScopeCollection = "collection"
)

// DBName returns the database name check `part` should use.
func (e *Env) DBName(part string) string {
	n := e.Prefix + "_" + part
	if len(n) > 60 {
		n = n[:60]
	}
	return n
}

// Options tune a probe run.
type Options struct {
	// CheckTimeout bounds one check (default 30s).
	CheckTimeout time.Duration
	// Wait bounds waits for change events (default 8s).
	Wait time.Duration
	// Only, when non-empty, restricts the run to these check names.
	Only []string
	// OnResult, when set, is called as each result is known (for streaming output).
	OnResult func(Result)
	// ConnectTimeout bounds connecting and server selection (default 10s).
	ConnectTimeout time.Duration
	// PollMonitoring sets serverMonitoringMode=poll in code (the Go driver v2.9
	// ignores it in the URI). jongodb rejects the streaming (awaitable) hello,
	// which the driver sends with $readPreference primaryPreferred.
	PollMonitoring bool
	// WatchScope, see Env.WatchScope.
	WatchScope string
}

func (o *Options) defaults() {
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 30 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 8 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
}

// Connect opens a client with bounded timeouts suitable for probing.
func Connect(uri string, timeout time.Duration) (*mongo.Client, error) {
	return connect(uri, timeout, false)
}

func connect(uri string, timeout time.Duration, poll bool) (*mongo.Client, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout).
		SetRetryWrites(false).
		// not "logbridge…": mongoshim lets clients named so bypass user
		// write blocking (they stand in for the connectors' privileged
		// users), which made set_user_write_block_mode fail
		SetAppName("lbconformance-probe")
	if poll {
		opts.SetServerMonitoringMode(options.ServerMonitoringModePoll)
	}
	return mongo.Connect(opts)
}

// Probe connects to uri and runs all checks (or opts.Only).
func Probe(ctx context.Context, uri string, opts Options) ([]Result, error) {
	opts.defaults()
	client, err := connect(uri, opts.ConnectTimeout, opts.PollMonitoring)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", uri, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()
	pctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	err = client.Ping(pctx, nil)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("ping %s: %w", uri, err)
	}
	env := &Env{Client: client, URI: uri, Prefix: "lbconf_" + randHex(3), Wait: opts.Wait, WatchScope: opts.WatchScope}
	return RunChecks(ctx, env, selectChecks(opts.Only), opts), nil
}

func selectChecks(only []string) []Check {
	all := Checks()
	if len(only) == 0 {
		return all
	}
	want := map[string]bool{}
	for _, n := range only {
		want[strings.TrimSpace(n)] = true
	}
	var out []Check
	for _, c := range all {
		if want[c.Name] {
			out = append(out, c)
			continue
		}
		for _, r := range c.ResultNames() {
			if want[r] {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// RunChecks runs the given checks against env, one after another. A check that
// does not return within opts.CheckTimeout (+5s grace) is abandoned and its
// unreported results are recorded as ERROR "timed out".
func RunChecks(ctx context.Context, env *Env, checks []Check, opts Options) []Result {
	opts.defaults()
	if env.Wait <= 0 {
		env.Wait = opts.Wait
	}
	var all []Result
	for _, c := range checks {
		all = append(all, runOne(ctx, env, c, opts)...)
	}
	return all
}

func runOne(ctx context.Context, env *Env, c Check, opts Options) []Result {
	names := c.ResultNames()
	type rep struct {
		name, reason string
		st           Status
		at           time.Time
	}
	ch := make(chan rep, 64)
	cctx, cancel := context.WithTimeout(ctx, opts.CheckTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				ch <- rep{name: "*", st: Error, reason: fmt.Sprintf("panic: %v", p), at: time.Now()}
			}
		}()
		c.Run(cctx, env, func(result string, st Status, reason string, args ...any) {
			if len(args) > 0 {
				reason = fmt.Sprintf(reason, args...)
			}
			ch <- rep{name: result, st: st, reason: reason, at: time.Now()}
		})
	}()
	got := map[string]Result{}
	var order []string
	record := func(r rep) {
		targets := []string{r.name}
		if r.name == "*" {
			targets = names
		}
		for _, n := range targets {
			if _, dup := got[n]; dup {
				continue
			}
			res := Result{Check: n, Status: r.st, Reason: oneLine(r.reason), Duration: r.at.Sub(start)}
			got[n] = res
			order = append(order, n)
			if opts.OnResult != nil && contains(names, n) {
				opts.OnResult(res)
			}
		}
	}
	grace := time.NewTimer(opts.CheckTimeout + 5*time.Second)
	defer grace.Stop()
loop:
	for {
		select {
		case r := <-ch:
			record(r)
		case <-done:
			for {
				select {
				case r := <-ch:
					record(r)
				default:
					break loop
				}
			}
		case <-grace.C:
			break loop
		}
	}
	var out []Result
	for _, n := range names {
		if r, ok := got[n]; ok {
			out = append(out, r)
			continue
		}
		reason := "check returned without reporting this result"
		if cctx.Err() != nil {
			reason = fmt.Sprintf("timed out after %s", opts.CheckTimeout)
		}
		r := Result{Check: n, Status: Error, Reason: reason, Duration: time.Since(start)}
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
		out = append(out, r)
	}
	_ = order
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Lookup returns the check with the given check or result name.
func Lookup(name string) (Check, bool) {
	for _, c := range Checks() {
		if c.Name == name || contains(c.ResultNames(), name) {
			return c, true
		}
	}
	return Check{}, false
}

// ResultNames lists every result name of every check, in table order.
func ResultNames() []string {
	var out []string
	for _, c := range Checks() {
		out = append(out, c.ResultNames()...)
	}
	return out
}

// Checks returns the full check list in table order.
func Checks() []Check {
	var out []Check
	out = append(out, basicChecks()...)
	out = append(out, indexChecks()...)
	out = append(out, ddlChecks()...)
	out = append(out, changeStreamChecks()...)
	out = append(out, txnChecks()...)
	out = append(out, miscChecks()...)
	return out
}

// Summary maps result name to result.
func Summary(rs []Result) map[string]Result {
	m := make(map[string]Result, len(rs))
	for _, r := range rs {
		m[r.Check] = r
	}
	return m
}

// SkipReason returns "" when every named result passed in rs, otherwise a
// reason suitable for t.Skip naming the first one that did not.
func SkipReason(rs []Result, names ...string) string {
	m := Summary(rs)
	for _, n := range names {
		r, ok := m[n]
		if !ok {
			return fmt.Sprintf("conformance check %q was not run", n)
		}
		if !r.OK() {
			return fmt.Sprintf("server lacks %s (%s: %s)", n, r.Status, r.Reason)
		}
	}
	return ""
}

// MarkdownHeader writes the header of a one-server results table.
func MarkdownHeader(w io.Writer, server string) {
	fmt.Fprintf(w, "| check | %s | reason |\n|---|---|---|\n", mdEscape(server))
}

// MarkdownRow writes one row of a one-server results table.
func MarkdownRow(w io.Writer, r Result) {
	fmt.Fprintf(w, "| %s | %s | %s |\n", r.Check, r.Status, mdEscape(r.Reason))
}

// MatrixMarkdown renders a server x check table (checks as rows, servers as
// columns) from results keyed by server name, in the given server order.
func MatrixMarkdown(w io.Writer, servers []string, results map[string][]Result) {
	fmt.Fprintf(w, "| check |")
	for _, s := range servers {
		fmt.Fprintf(w, " %s |", mdEscape(s))
	}
	fmt.Fprintf(w, "\n|---|")
	for range servers {
		fmt.Fprintf(w, "---|")
	}
	fmt.Fprintln(w)
	sums := map[string]map[string]Result{}
	for _, s := range servers {
		sums[s] = Summary(results[s])
	}
	names := ResultNames()
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	var extra []string
	for _, s := range servers {
		for _, r := range results[s] {
			if !seen[r.Check] {
				seen[r.Check] = true
				extra = append(extra, r.Check)
			}
		}
	}
	sort.Strings(extra)
	for _, n := range append(names, extra...) {
		fmt.Fprintf(w, "| %s |", n)
		for _, s := range servers {
			r, ok := sums[s][n]
			if !ok {
				fmt.Fprintf(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %s |", r.Status)
		}
		fmt.Fprintln(w)
	}
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return oneLine(s)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errText shortens a driver error for a reason column.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s (code %d %s)", ce.Message, ce.Code, ce.Name)
	}
	return err.Error()
}

// errCode returns the server error code in err, or 0.
func errCode(err error) int {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return int(ce.Code)
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		if len(we.WriteErrors) > 0 {
			return we.WriteErrors[0].Code
		}
		if we.WriteConcernError != nil {
			return we.WriteConcernError.Code
		}
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
		return bwe.WriteErrors[0].Code
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range []int{11000, 13, 20, 59, 115, 121, 371} {
			if se.HasErrorCode(c) {
				return c
			}
		}
	}
	return 0
}

// dropDB drops a database best-effort with a short timeout of its own.
func dropDB(c *mongo.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Database(name).Drop(ctx)
}

// lookupType returns the BSON type of a (nested) field, or 0 when absent.
func lookupType(doc bson.Raw, path ...string) bson.Type {
	v, err := doc.LookupErr(path...)
	if err != nil {
		return 0
	}
	return v.Type
}

func lookupString(doc bson.Raw, path ...string) string {
	v, err := doc.LookupErr(path...)
	if err != nil {
		return ""
	}
	s, _ := v.StringValueOK()
	return s
}

func lookupInt(doc bson.Raw, path ...string) (int64, bool) {
	v, err := doc.LookupErr(path...)
	if err != nil {
		return 0, false
	}
	if i, ok := v.AsInt64OK(); ok {
		return i, true
	}
	if f, ok := v.DoubleOK(); ok {
		return int64(f), true
	}
	return 0, false
}

func typeName(t bson.Type) string {
	if t == 0 {
		return "missing"
	}
	return t.String()
}

// join joins non-empty parts with "; ".
func join(parts []string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
