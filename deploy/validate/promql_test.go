package validate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const dashboardFile = monitoringDir + "/grafana/logbridge-dashboard.json"

// targetLabels are attached by Prometheus to every scraped series (compose's
// static configs and the chart's ServiceMonitor both give job and instance);
// they are not in /metrics.
var targetLabels = map[string]bool{"job": true, "instance": true}

// synthetic are the series Prometheus makes itself, with their labels.
var synthetic = map[string]map[string]bool{
	"up":     {},
	"ALERTS": {"alertname": true, "alertstate": true, "severity": true, "reason": true},
}

// grafanaVars are the Grafana variables the dashboard's queries use, with a
// value of each kind, so that the query parses as Prometheus receives it.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

// ruleQueries returns the expressions of the rule file.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	rgs, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promParser, promslog.NewNopLogger())
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	var out []query
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			out = append(out, query{"rule " + r.Alert, r.Expr})
		}
	}
	return out
}

// dashboardQueries returns the expressions of every panel of the dashboard.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"` // collapsed rows hold theirs
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []query
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: %v", dashboardFile, err)
			}
			for _, tg := range p.Targets {
				out = append(out, query{"panel " + p.Title, grafanaVars.Replace(tg.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// exposition is what /metrics serves: series name → label → values seen.
type exposition map[string]map[string]map[string]bool

// readExposition parses the Prometheus text format; histogram and summary
// families become the series Prometheus stores (_bucket with le, _sum,
// _count; the summary itself with quantile).
func readExposition(r io.Reader, into exposition) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return err
	}
	add := func(name string, m *dto.Metric, extra ...string) {
		ls := into[name]
		if ls == nil {
			ls = map[string]map[string]bool{}
			into[name] = ls
		}
		set := func(k, v string) {
			if ls[k] == nil {
				ls[k] = map[string]bool{}
			}
			ls[k][v] = true
		}
		for _, l := range m.GetLabel() {
			set(l.GetName(), l.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			set(extra[i], extra[i+1])
		}
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					add(name+"_bucket", m, "le", fmt.Sprint(b.GetUpperBound()))
				}
				add(name+"_bucket", m, "le", "+Inf")
				add(name+"_sum", m)
				add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					add(name, m, "quantile", fmt.Sprint(q.GetQuantile()))
				}
				add(name+"_sum", m)
				add(name+"_count", m)
			default:
				add(name, m)
			}
		}
	}
	return nil
}

// checkQuery parses q with the Prometheus parser and returns every metric
// name, label matcher, matcher value and grouping label it uses that the
// exposition lacks.
func checkQuery(q query, exp exposition) []string {
	expr, err := promParser.ParseExpr(q.expr)
	if err != nil {
		return []string{fmt.Sprintf("%s: %q does not parse: %v", q.where, q.expr, err)}
	}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: ", q.where)+fmt.Sprintf(format, args...))
	}
	// labelsOf: every label the series selected under n may carry.
	labelsOf := func(n parser.Node) map[string]bool {
		out := map[string]bool{}
		for k := range targetLabels {
			out[k] = true
		}
		parser.Inspect(n, func(c parser.Node, _ []parser.Node) error {
			if vs, ok := c.(*parser.VectorSelector); ok {
				name := selectorName(vs)
				for l := range exp[name] {
					out[l] = true
				}
				for l := range synthetic[name] {
					out[l] = true
				}
			}
			return nil
		})
		return out
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := selectorName(n)
			if name == "" {
				bad("selector %s names no metric", n)
				return nil
			}
			if syn, ok := synthetic[name]; ok {
				for _, m := range n.LabelMatchers {
					if m.Name != model.MetricNameLabel && !syn[m.Name] && !targetLabels[m.Name] {
						bad("%s has no label %q", name, m.Name)
					}
				}
				return nil
			}
			ls, ok := exp[name]
			if !ok {
				bad("metric %s is not in the connectors' /metrics", name)
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel || targetLabels[m.Name] {
					continue
				}
				vals, ok := ls[m.Name]
				if !ok {
					bad("metric %s has no label %q (it has %v)", name, m.Name, keys(ls))
					continue
				}
				if m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp {
					matched := false
					for v := range vals {
						matched = matched || m.Matches(v)
					}
					if !matched {
						bad("no %s series matches %s (values: %v)", name, m, keys(vals))
					}
				}
			}
		case *parser.AggregateExpr:
			have := labelsOf(n.Expr)
			for _, l := range n.Grouping {
				if !have[l] {
					bad("%s groups by %q, which none of its series has", n.Op, l)
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				lhs, rhs := labelsOf(n.LHS), labelsOf(n.RHS)
				for _, l := range n.VectorMatching.MatchingLabels {
					if !lhs[l] || !rhs[l] {
						bad("%s matches on %q, which one side lacks", n.Op, l)
					}
				}
			}
		}
		return nil
	})
	return problems
}

// selectorName is the metric name a selector selects (from its name or an
// equality matcher on __name__).
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestQueryCheckCatchesMistakes: the check itself finds a misspelled
// metric, a missing label, a label value no series has, a grouping label no
// series has, and an unparsable query, and accepts a correct one.
func TestQueryCheckCatchesMistakes(t *testing.T) {
	exp := exposition{}
	text := `# TYPE logbridge_sink_dead_letters_total counter
logbridge_sink_dead_letters_total{reason="rejected"} 0
# TYPE logbridge_source_control_state gauge
logbridge_source_control_state{state="RUNNING"} 1
# TYPE logbridge_sink_bulk_write_seconds histogram
logbridge_sink_bulk_write_seconds_bucket{kind="data",le="0.5"} 1
logbridge_sink_bulk_write_seconds_bucket{kind="data",le="+Inf"} 1
logbridge_sink_bulk_write_seconds_sum{kind="data"} 0.1
logbridge_sink_bulk_write_seconds_count{kind="data"} 1
`
	if err := readExposition(strings.NewReader(text), exp); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, expr, want string // want "" = no problem
	}{
		{"correct", `sum by (job, reason) (increase(logbridge_sink_dead_letters_total{reason="rejected"}[5m])) and on (job) up == 1`, ""},
		{"histogram", `histogram_quantile(0.99, sum by (le, kind) (rate(logbridge_sink_bulk_write_seconds_bucket[5m])))`, ""},
		{"misspelled metric", `rate(logbridge_sink_dead_letter_total[5m])`, "not in the connectors' /metrics"},
		{"missing label", `logbridge_sink_dead_letters_total{topic="x"}`, `no label "topic"`},
		{"value no series has", `logbridge_source_control_state{state="COMMITING"}`, "no logbridge_source_control_state series matches"},
		{"regex no series matches", `logbridge_source_control_state{state=~"PAUSE.*"}`, "no logbridge_source_control_state series matches"},
		{"grouping label", `sum by (ns) (logbridge_sink_dead_letters_total)`, `groups by "ns"`},
		{"matching label", `logbridge_sink_dead_letters_total and on (state) logbridge_source_control_state`, `matches on "state"`},
		{"unparsable", `sum by (job (x)`, "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(checkQuery(query{"test", tc.expr}, exp), "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want a problem mentioning %q", got, tc.want)
			}
		})
	}
}

// TestQueriesParse: every rule and dashboard query parses (the metric
// names and labels are checked against the real /metrics in
// TestQueriesMatchRealMetrics).
func TestQueriesParse(t *testing.T) {
	qs := append(ruleQueries(t), dashboardQueries(t)...)
	if len(qs) < 30 {
		t.Fatalf("found %d queries, want the rules' and the dashboard's", len(qs))
	}
	for _, q := range qs {
		if _, err := promParser.ParseExpr(q.expr); err != nil {
			t.Errorf("%s: %q: %v", q.where, q.expr, err)
		}
	}
}
