package validate

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/common/promslog"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
)

const composeFile = repoRoot + "/docker-compose.yml"

// loadCompose loads docker-compose.yml with the compose-spec loader, with
// the consistency checks Docker Compose applies (every service, network,
// volume and secret a service refers to exists).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithWorkingDirectory(root), cli.WithConsistency(true),
		cli.WithResolvedPaths(true), cli.WithEnv(nil), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s does not load with the compose-spec library: %v", composeFile, err)
	}
	return p
}

// TestComposeRunsTheProduct: the compose file runs the whole product as a
// user would, as the README describes it.
func TestComposeRunsTheProduct(t *testing.T) {
	p := loadCompose(t)
	want := []string{"source-mongo", "dest-mongo", "kafka", "registry", "source-connector", "sink-connector", "prometheus", "grafana"}
	if got := p.ServiceNames(); !sameSet(got, want) {
		t.Fatalf("services: got %v, want %v", got, want)
	}
	for name, s := range p.Services {
		// Every published port on the host's loopback only.
		for _, port := range s.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q: bind it to 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
		// Restart policies: a connector started before Kafka accepts
		// connections exits; it must come back.
		if s.Restart != types.RestartPolicyUnlessStopped && s.Restart != types.RestartPolicyAlways {
			t.Errorf("service %s: restart %q, want unless-stopped", name, s.Restart)
		}
		// Every bind mount's source is a file of the repository.
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s mounts %s, which does not exist: %v", name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("service %s mounts %s read-write: configuration mounts are read-only", name, v.Source)
				}
			}
		}
		// Infrastructure has healthchecks the connectors wait for.
		if !strings.HasSuffix(name, "-connector") {
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
				t.Errorf("service %s has no healthcheck", name)
			}
		}
	}
	for _, name := range []string{"source-mongo", "dest-mongo"} {
		s := p.Services[name]
		test := strings.Join(s.HealthCheck.Test, " ")
		if !slices.Contains(s.Command, "--replSet") || !strings.Contains(test, "rs.initiate") || !strings.Contains(test, "isWritablePrimary") ||
			!strings.HasPrefix(s.Image, "mongo:") {
			t.Errorf("%s: want a genuine mongo replica set initiated by its healthcheck and healthy with a primary (command %v, healthcheck %q)", name, s.Command, test)
		}
	}
	if test := strings.Join(p.Services["kafka"].HealthCheck.Test, " "); !strings.Contains(test, "kafka-broker-api-versions") {
		t.Errorf("kafka healthcheck %q: want one that asks the broker (kafka-broker-api-versions)", test)
	}

	role := map[string]string{"source-connector": "LOGBRIDGE_SOURCE_", "sink-connector": "LOGBRIDGE_SINK_"}
	for name, env := range role {
		s := p.Services[name]
		for _, dep := range []string{"kafka", "registry", "source-mongo", "dest-mongo"} {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: depends_on %s: got %+v, want condition service_healthy", name, dep, d)
			}
		}
		get := func(k string) string {
			if v := s.Environment[env+k]; v != nil {
				return *v
			}
			return ""
		}
		// mongosync mode: both clusters, no direct-mode URI.
		if get("CLUSTER0") == "" || get("CLUSTER1") == "" || get("SOURCE_URI") != "" || get("DEST_URI") != "" {
			t.Errorf("%s: want mongosync mode (%sCLUSTER0 and CLUSTER1, no direct-mode URI), got %v", name, env, keys(s.Environment))
		}
		for _, k := range []string{"CLUSTER0", "CLUSTER1"} {
			if !strings.Contains(get(k), "replicaSet=") {
				t.Errorf("%s: %s%s %q: want a replica set URI", name, env, k, get(k))
			}
		}
		if get("KAFKA_BROKERS") != "kafka:9092" || !strings.HasPrefix(get("SCHEMA_REGISTRY_URL"), "http://registry:8080/") {
			t.Errorf("%s: want Kafka kafka:9092 and the registry service, got %q and %q", name, get("KAFKA_BROKERS"), get("SCHEMA_REGISTRY_URL"))
		}
		// The API token from the compose secret, never in the environment.
		tokenFile := get("API_TOKEN_FILE")
		if tokenFile != "/run/secrets/api_token" || len(s.Secrets) != 1 || s.Secrets[0].Source != "api_token" || s.Environment["LOGBRIDGE_API_TOKEN"] != nil {
			t.Errorf("%s: want the API token from the secret api_token (%sAPI_TOKEN_FILE=/run/secrets/api_token), got file %q secrets %v", name, env, tokenFile, s.Secrets)
		}
		if s.Build == nil || s.Build.Dockerfile != "deploy/docker/Dockerfile" {
			t.Errorf("%s: want the image built from deploy/docker/Dockerfile", name)
		}
	}
	if sec, ok := p.Secrets["api_token"]; !ok || sec.File == "" {
		t.Errorf("secret api_token: want a file secret, got %+v", sec)
	}
	if p.Services["source-connector"].Environment["LOGBRIDGE_SOURCE_ENCODING"] == nil ||
		*p.Services["source-connector"].Environment["LOGBRIDGE_SOURCE_ENCODING"] != "confluent" {
		t.Error("source-connector: want --encoding confluent (the registry is part of the setup)")
	}
}

// TestComposePrometheusAndGrafana: Prometheus loads its configuration with
// Prometheus' own loader, scrapes both connectors on their service ports
// with the API token and loads the rule file; Grafana is provisioned with
// the Prometheus datasource and the dashboard.
func TestComposePrometheusAndGrafana(t *testing.T) {
	p := loadCompose(t)
	mounts := map[string]string{} // container path → repository file
	for _, name := range []string{"prometheus", "grafana"} {
		for _, v := range p.Services[name].Volumes {
			if v.Type == types.VolumeTypeBind {
				mounts[v.Target] = v.Source
			}
		}
	}
	cfgPath := mounts["/etc/prometheus/prometheus.yml"]
	if cfgPath == "" {
		t.Fatal("prometheus: no configuration mounted at /etc/prometheus/prometheus.yml")
	}
	cfg, err := promconfig.LoadFile(cfgPath, false, promslog.NewNopLogger())
	if err != nil {
		t.Fatalf("%s does not load with Prometheus' config loader: %v", cfgPath, err)
	}
	for _, rf := range cfg.RuleFiles {
		src, ok := mounts[rf]
		if !ok {
			t.Errorf("rule file %s is not mounted into the prometheus service", rf)
			continue
		}
		if abs, _ := filepath.Abs(rulesFile); src != abs {
			t.Errorf("rule file %s is %s, want %s", rf, src, abs)
		}
	}
	if len(cfg.RuleFiles) == 0 {
		t.Error("prometheus loads no rule file")
	}
	want := map[string]string{"logbridge-source": "source-connector:27182", "logbridge-sink": "sink-connector:27183"}
	for _, sc := range cfg.ScrapeConfigs {
		target, ok := want[sc.JobName]
		if !ok {
			continue
		}
		delete(want, sc.JobName)
		auth := sc.HTTPClientConfig.Authorization
		if auth == nil || auth.CredentialsFile != "/run/secrets/api_token" {
			t.Errorf("job %s: want the API token from /run/secrets/api_token, got %+v", sc.JobName, auth)
		}
		var targets []string
		for _, c := range sc.ServiceDiscoveryConfigs {
			if s, ok := c.(discovery.StaticConfig); ok {
				for _, g := range s {
					for _, tg := range g.Targets {
						for _, v := range tg {
							targets = append(targets, string(v))
						}
					}
				}
			}
		}
		if !slices.Contains(targets, target) {
			t.Errorf("job %s scrapes %v, want %s", sc.JobName, targets, target)
		}
	}
	if len(want) > 0 {
		t.Errorf("no scrape job for %v", want)
	}
	if !slices.ContainsFunc(p.Services["prometheus"].Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == "api_token" }) {
		t.Error("prometheus: the api_token secret is not mounted")
	}
	for _, target := range []string{"/etc/grafana/provisioning", "/var/lib/grafana/dashboards/logbridge-dashboard.json"} {
		if _, ok := mounts[target]; !ok {
			t.Errorf("grafana: nothing mounted at %s", target)
		}
	}
	prov := mounts["/etc/grafana/provisioning"]
	ds, _ := os.ReadFile(filepath.Join(prov, "datasources", "prometheus.yaml"))
	dash, _ := os.ReadFile(filepath.Join(prov, "dashboards", "logbridge.yaml"))
	if !strings.Contains(string(ds), "url: http://prometheus:9090") || !strings.Contains(string(dash), "path: /var/lib/grafana/dashboards") {
		t.Errorf("grafana provisioning: want the prometheus datasource and a provider for /var/lib/grafana/dashboards")
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
