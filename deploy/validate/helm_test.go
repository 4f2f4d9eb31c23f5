package validate

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/logbridge"

// manifests is a rendered release, strictly decoded.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	networkPolicies []*networkingv1.NetworkPolicy
	pdbs            []*policyv1.PodDisruptionBudget
	serviceMonitors []*monitoringv1.ServiceMonitor
	rules           []*monitoringv1.PrometheusRule
	configMaps      []*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
}

// render renders the chart with the Helm library for valuesFile ("" for
// the chart's defaults) and decodes every manifest strictly (unknown or
// duplicate fields are errors) into its Kubernetes API type.
func render(t *testing.T, valuesFile string) (*manifests, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	vals := chartutil.Values{}
	if valuesFile != "" {
		if vals, err = chartutil.ReadValuesFile(valuesFile); err != nil {
			t.Fatal(err)
		}
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "logbridge", Namespace: "sync", Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, file := range names {
		if strings.HasSuffix(file, "NOTES.txt") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(out[file]) {
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v\n%s", file, err, doc)
			}
			var obj any
			switch meta.Kind {
			case "":
				continue // a template that rendered nothing
			case "Deployment":
				d := &appsv1.Deployment{}
				obj = d
				defer func() { m.deployments[d.Name] = d }()
			case "Service":
				s := &corev1.Service{}
				obj = s
				defer func() { m.services[s.Name] = s }()
			case "NetworkPolicy":
				n := &networkingv1.NetworkPolicy{}
				obj, m.networkPolicies = n, append(m.networkPolicies, n)
			case "PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				obj, m.pdbs = p, append(m.pdbs, p)
			case "ServiceMonitor":
				s := &monitoringv1.ServiceMonitor{}
				obj, m.serviceMonitors = s, append(m.serviceMonitors, s)
			case "PrometheusRule":
				r := &monitoringv1.PrometheusRule{}
				obj, m.rules = r, append(m.rules, r)
			case "ConfigMap":
				c := &corev1.ConfigMap{}
				obj, m.configMaps = c, append(m.configMaps, c)
			case "ServiceAccount":
				s := &corev1.ServiceAccount{}
				obj, m.serviceAccounts = s, append(m.serviceAccounts, s)
			default:
				t.Fatalf("%s renders a %s, which this test does not know: add its API type", file, meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s does not decode strictly into %T: %v\n%s", file, obj, err, doc)
			}
		}
	}
	return m, nil
}

var valuesFiles = []string{"ci/minimal-values.yaml", "ci/secured-values.yaml", "ci/closed-values.yaml"}

// TestChartLints: helm lint (the Helm library's) passes for every values file.
func TestChartLints(t *testing.T) {
	for _, vf := range valuesFiles {
		vals, err := chartutil.ReadValuesFile(filepath.Join(chartDir, vf))
		if err != nil {
			t.Fatal(err)
		}
		res := lint.AllWithKubeVersion(chartDir, vals, "sync", &chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"})
		for _, msg := range res.Messages {
			if msg.Severity >= support.WarningSev {
				t.Errorf("%s: helm lint: %s", vf, msg)
			}
		}
	}
}

// TestChartRefusesMissingSettings: without the Secrets and the brokers the
// chart does not render, and says which value to set.
func TestChartRefusesMissingSettings(t *testing.T) {
	_, err := render(t, "")
	if err == nil || !strings.Contains(err.Error(), "existingSecret") {
		t.Fatalf("rendering the defaults: got %v, want an error naming the missing Secret", err)
	}
}

// TestChartRenders renders every values file and checks what a cluster
// enforcing the "restricted" Pod Security Standard, a careful operator and
// the monitoring stack need.
func TestChartRenders(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range valuesFiles {
		t.Run(filepath.Base(vf), func(t *testing.T) {
			vals, err := chartutil.ReadValuesFile(filepath.Join(chartDir, vf))
			if err != nil {
				t.Fatal(err)
			}
			m, err := render(t, filepath.Join(chartDir, vf))
			if err != nil {
				t.Fatalf("rendering: %v", err)
			}
			checkDeployments(t, m, ch.Metadata.AppVersion, vals)
			checkServices(t, m)
			checkPolicies(t, m, vals)
			checkMonitoring(t, m, vals)
		})
	}
}

func checkDeployments(t *testing.T, m *manifests, appVersion string, vals chartutil.Values) {
	t.Helper()
	src, sink := m.deployments["logbridge-source"], m.deployments["logbridge-sink"]
	if src == nil || sink == nil {
		t.Fatalf("deployments: got %v, want logbridge-source and logbridge-sink", keys(m.deployments))
	}
	if *src.Spec.Replicas != 1 || src.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("source: %d replicas, strategy %s; want 1, Recreate (one transactional producer per prefix)", *src.Spec.Replicas, src.Spec.Strategy.Type)
	}
	digest, _ := vals.PathValue("image.digest")
	for role, d := range map[string]*appsv1.Deployment{"SOURCE": src, "SINK": sink} {
		pod := d.Spec.Template.Spec
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: the selector %v does not select its pods %v", d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and RuntimeDefault seccomp", d.Name, psc)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: the pod mounts a service account token it does not use", d.Name)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", d.Name, len(pod.Containers))
		}
		c := pod.Containers[0]
		// The "restricted" Pod Security Standard.
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: container securityContext %+v: want the restricted profile (no escalation, drop ALL, read-only root)", d.Name, sc)
		}
		// The image tag is the chart's appVersion (or a pinned digest).
		want := "ghcr.io/logbridge/logbridge:" + appVersion
		if digest != nil && digest != "" {
			want = "ghcr.io/logbridge/logbridge@" + digest.(string)
		}
		if c.Image != want {
			t.Errorf("%s: image %s, want %s", d.Name, c.Image, want)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v: want CPU and memory requests and a memory limit", d.Name, c.Resources)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Fatalf("%s: want a liveness and a readiness probe", d.Name)
		}
		if public, _ := vals.PathValue("api.publicRead"); public != false {
			if g := c.LivenessProbe.HTTPGet; g == nil || g.Path != "/healthz" {
				t.Errorf("%s: liveness probe %+v: want GET /healthz", d.Name, c.LivenessProbe)
			}
			if g := c.ReadinessProbe.HTTPGet; g == nil || g.Path != "/readyz" {
				t.Errorf("%s: readiness probe %+v: want GET /readyz", d.Name, c.ReadinessProbe)
			}
		} else if c.LivenessProbe.TCPSocket == nil || c.ReadinessProbe.TCPSocket == nil {
			t.Errorf("%s: without public reads the probes cannot send the token: want tcpSocket probes", d.Name)
		}
		// Secrets by reference only: no literal URI, password or token.
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[strings.TrimPrefix(e.Name, "LOGBRIDGE_"+role+"_")] = e
			if strings.Contains(e.Value, "mongodb://") || strings.Contains(e.Value, "mongodb+srv://") {
				t.Errorf("%s: %s holds a literal MongoDB URI: it must come from the Secret", d.Name, e.Name)
			}
		}
		for _, k := range []string{"CLUSTER0", "CLUSTER1"} {
			if e, ok := env[k]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: %s: want a secretKeyRef (mongosync mode, URIs from a Secret), got %+v", d.Name, k, e)
			}
		}
		if mech, _ := vals.PathValue("kafka.sasl.mechanism"); mech != nil && mech != "" {
			if e, ok := env["KAFKA_SASL_PASSWORD"]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: the SASL password must come from a secretKeyRef, got %+v", d.Name, e)
			}
			if env["KAFKA_TLS"].Value != "true" || env["KAFKA_TLS_CA_FILE"].Value == "" || env["KAFKA_TLS_CERT_FILE"].Value == "" {
				t.Errorf("%s: want Kafka TLS with the CA and client certificate files", d.Name)
			}
		}
		tokenFile := env["API_TOKEN_FILE"].Value
		mounted := false
		for _, vm := range c.VolumeMounts {
			if strings.HasPrefix(tokenFile, vm.MountPath+"/") {
				for _, v := range pod.Volumes {
					mounted = mounted || v.Name == vm.Name && v.Secret != nil
				}
			}
		}
		if !mounted {
			t.Errorf("%s: API_TOKEN_FILE %q is not in a mounted Secret", d.Name, tokenFile)
		}
		for _, vm := range c.VolumeMounts {
			if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
				t.Errorf("%s: mount %s has no volume", d.Name, vm.Name)
			}
		}
	}
	if env := envOf(src); env["LOGBRIDGE_SOURCE_SINK_GROUP"] != envOf(sink)["LOGBRIDGE_SINK_GROUP"] ||
		env["LOGBRIDGE_SOURCE_TOPIC_PREFIX"] != envOf(sink)["LOGBRIDGE_SINK_TOPIC_PREFIX"] {
		t.Errorf("the source's --sink-group and --topic-prefix must be the sink's --group and --topic-prefix")
	}
}

func envOf(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

func checkServices(t *testing.T, m *manifests) {
	t.Helper()
	for name, job := range map[string]string{"logbridge-source": "logbridge-source", "logbridge-sink": "logbridge-sink"} {
		s, d := m.services[name], m.deployments[name]
		if s == nil || d == nil {
			t.Fatalf("service and deployment %s: want both", name)
		}
		if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("service %s selects %v, not the pods %v", name, s.Spec.Selector, d.Spec.Template.Labels)
		}
		if s.Labels["logbridge.io/job"] != job {
			t.Errorf("service %s: label logbridge.io/job %q, want %q (the job name of the alert rules)", name, s.Labels["logbridge.io/job"], job)
		}
		if s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("service %s: type %s, want ClusterIP (not exposed outside the cluster)", name, s.Spec.Type)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort != intstr.FromString("http") || !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == "http" }) {
				t.Errorf("service %s port %+v: want targetPort http, a port of the container", name, p)
			}
		}
	}
}

func checkPolicies(t *testing.T, m *manifests, vals chartutil.Values) {
	t.Helper()
	if on, _ := vals.PathValue("networkPolicy.enabled"); on != false {
		if len(m.networkPolicies) != 1 {
			t.Fatalf("network policies: got %d, want 1", len(m.networkPolicies))
		}
		np := m.networkPolicies[0]
		for _, d := range m.deployments {
			if !selects(np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("the NetworkPolicy does not select %s", d.Name)
			}
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) == 0 || len(np.Spec.Ingress[0].Ports) != 1 ||
			*np.Spec.Ingress[0].Ports[0].Port != intstr.FromString("http") {
			t.Errorf("NetworkPolicy ingress %+v: want the http port from the allowed clients only", np.Spec.Ingress)
		}
	} else if len(m.networkPolicies) != 0 {
		t.Errorf("networkPolicy.enabled false renders %d policies", len(m.networkPolicies))
	}
	sinkPDB := false
	for _, p := range m.pdbs {
		for _, d := range m.deployments {
			if selects(p.Spec.Selector.MatchLabels, d.Spec.Template.Labels) && d.Name == "logbridge-sink" {
				sinkPDB = true
				if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
					t.Errorf("sink PDB minAvailable %v with %d replicas: a drain could never evict a member", p.Spec.MinAvailable, *d.Spec.Replicas)
				}
			}
		}
	}
	if want, _ := vals.PathValue("sink.pdb.enabled"); want != false && !sinkPDB {
		t.Error("no PodDisruptionBudget selects the sink's pods")
	}
}

func checkMonitoring(t *testing.T, m *manifests, vals chartutil.Values) {
	t.Helper()
	if on, _ := vals.PathValue("metrics.serviceMonitor.enabled"); on == true {
		if len(m.serviceMonitors) != 1 {
			t.Fatalf("service monitors: got %d, want 1", len(m.serviceMonitors))
		}
		sm := m.serviceMonitors[0]
		for name, s := range m.services {
			if !selects(sm.Spec.Selector.MatchLabels, s.Labels) {
				t.Errorf("the ServiceMonitor does not select service %s", name)
			}
			if _, ok := s.Labels[sm.Spec.JobLabel]; !ok {
				t.Errorf("service %s lacks the ServiceMonitor's jobLabel %s", name, sm.Spec.JobLabel)
			}
		}
		ep := sm.Spec.Endpoints[0]
		if ep.Port != "http" || ep.Path != "/metrics" || ep.Authorization == nil || ep.Authorization.Credentials == nil ||
			ep.Authorization.Credentials.Name == "" {
			t.Errorf("ServiceMonitor endpoint %+v: want /metrics on port http with the API token", ep)
		}
	}
	if on, _ := vals.PathValue("metrics.prometheusRule.enabled"); on == true {
		if len(m.rules) != 1 {
			t.Fatalf("prometheus rules: got %d, want 1", len(m.rules))
		}
		// The same rules as deploy/monitoring/logbridge-rules.yaml.
		b, err := os.ReadFile(rulesFile)
		if err != nil {
			t.Fatal(err)
		}
		var want monitoringv1.PrometheusRuleSpec
		if err := yaml.UnmarshalStrict(b, &want); err != nil {
			t.Fatalf("%s as a PrometheusRule spec: %v", rulesFile, err)
		}
		if !reflect.DeepEqual(m.rules[0].Spec, want) {
			got, _ := yaml.Marshal(m.rules[0].Spec)
			t.Errorf("the PrometheusRule differs from %s:\n%s", rulesFile, got)
		}
	}
	if on, _ := vals.PathValue("metrics.grafanaDashboard.enabled"); on == true {
		b, _ := os.ReadFile(dashboardFile)
		if len(m.configMaps) != 1 || m.configMaps[0].Data["logbridge-dashboard.json"] != strings.TrimRight(string(b), "\n") ||
			m.configMaps[0].Labels["grafana_dashboard"] != "1" {
			t.Errorf("want the dashboard in a ConfigMap labelled grafana_dashboard=1")
		}
	}
}

// selects reports whether every label of sel is in labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
