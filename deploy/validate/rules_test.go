package validate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"sigs.k8s.io/yaml"
)

const (
	monitoringDir = "../monitoring"
	rulesFile     = monitoringDir + "/logbridge-rules.yaml"
	rulesTestFile = monitoringDir + "/logbridge-rules.test.yaml"
)

// promParser is the parser Prometheus uses by default (no experimental
// syntax): what a stock Prometheus accepts.
var promParser = parser.NewParser(parser.Options{})

// TestRuleFileLoads: the rule file passes Prometheus' own rule loader, and
// every alert carries the annotations the runbooks live in.
func TestRuleFileLoads(t *testing.T) {
	rgs, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promParser, promslog.NewNopLogger())
	if len(errs) > 0 {
		t.Fatalf("%s does not load: %v", rulesFile, errs)
	}
	want := []string{"LogbridgeDestinationLagHigh", "LogbridgeSinkStalled", "LogbridgeDeadLettersGrowing", "LogbridgeConnectorRestarting",
		"LogbridgeEpochNotRunning", "LogbridgeCommitStuck", "LogbridgeCopyNotProgressing", "LogbridgeConnectorDown"}
	var got []string
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("alerts: got %v, want %v", got, want)
	}
}

// The promtool unit test file format (promtool's unitTestFile, without
// recording-rule tests, which the rule file does not have).
type unitTestFile struct {
	RuleFiles          []string       `json:"rule_files"`
	EvaluationInterval model.Duration `json:"evaluation_interval"`
	Tests              []testGroup    `json:"tests"`
}

type testGroup struct {
	Name           string          `json:"name"`
	Interval       model.Duration  `json:"interval"`
	InputSeries    []inputSeries   `json:"input_series"`
	AlertRuleTests []alertTestCase `json:"alert_rule_test"`
}

type inputSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type alertTestCase struct {
	EvalTime  model.Duration `json:"eval_time"`
	Alertname string         `json:"alertname"`
	ExpAlerts []expAlert     `json:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `json:"exp_labels"`
	ExpAnnotations map[string]string `json:"exp_annotations"`
}

// TestRuleUnitTests runs logbridge-rules.test.yaml with promtool's
// semantics, and checks that every alert is tested both firing and not.
func TestRuleUnitTests(t *testing.T) {
	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var f unitTestFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	var ruleFiles []string
	for _, rf := range f.RuleFiles {
		ruleFiles = append(ruleFiles, filepath.Join(filepath.Dir(rulesTestFile), rf))
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tg := range f.Tests {
		for _, at := range tg.AlertRuleTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
		t.Run(tg.Name, func(t *testing.T) {
			for _, err := range runTestGroup(tg, time.Duration(f.EvaluationInterval), ruleFiles) {
				t.Error(err)
			}
		})
	}
	rgs, _ := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promParser, promslog.NewNopLogger())
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: the unit tests must see it firing (%v) and not firing (%v)", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
}

// runTestGroup is promtool's testGroup.test for alerting rules: load the
// series, evaluate every rule group at each evaluation interval, and at each
// eval_time compare the firing alerts with the expected ones.
func runTestGroup(tg testGroup, evalInterval time.Duration, ruleFiles []string) []error {
	if tg.Interval == 0 {
		tg.Interval = model.Duration(evalInterval)
	}
	var load strings.Builder
	fmt.Fprintf(&load, "load %v\n", time.Duration(tg.Interval))
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %v %v\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true, Parser: promParser})
	if err != nil {
		return []error{fmt.Errorf("loading the input series: %w", err)}
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval
	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       promslog.NewNopLogger(),
		Parser:       promParser,
	})
	groups, errs := m.LoadGroups(evalInterval, labels.EmptyLabels(), "", nil, false, ruleFiles...)
	if errs != nil {
		return errs
	}
	var maxEval time.Duration
	byTime := map[time.Duration][]alertTestCase{}
	for _, at := range tg.AlertRuleTests {
		d := time.Duration(at.EvalTime)
		byTime[d] = append(byTime[d], at)
		maxEval = max(maxEval, d)
	}
	for _, g := range groups {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // as promtool: no "for" state to restore
			}
		}
	}
	var out []error
	mint := time.Unix(0, 0).UTC()
	for ts := mint; !ts.After(mint.Add(maxEval)); ts = ts.Add(evalInterval) {
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				out = append(out, err)
				return
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						out = append(out, fmt.Errorf("rule %s at %v: %w", r.Name(), ts.Sub(mint), r.LastError()))
					}
				}
			}
		})
		// eval_time t is checked on the evaluation at ts <= t < ts+interval.
		for d, cases := range byTime {
			if d < ts.Sub(mint) || d >= ts.Add(evalInterval).Sub(mint) {
				continue
			}
			for _, at := range cases {
				got := firing(groups, at.Alertname)
				var want []string
				for _, a := range at.ExpAlerts {
					l := map[string]string{"alertname": at.Alertname}
					for k, v := range a.ExpLabels {
						l[k] = v
					}
					want = append(want, describe(labels.FromMap(l), labels.FromMap(a.ExpAnnotations)))
				}
				sort.Strings(want)
				if !slices.Equal(got, want) {
					out = append(out, fmt.Errorf("%s at %v:\n  got  %q\n  want %q", at.Alertname, d, got, want))
				}
			}
		}
	}
	return out
}

// firing returns the firing alerts of the rule name, each as its labels and
// annotations, sorted.
func firing(groups map[string]*rules.Group, name string) []string {
	var out []string
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != name {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					out = append(out, describe(a.Labels, a.Annotations))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func describe(l, a labels.Labels) string { return l.String() + " " + a.String() }
