// Package validate checks what users deploy logbridge with — the Prometheus
// alerting rules, the Grafana dashboard, docker-compose.yml and the Helm
// chart — with the libraries of the tools that read them, not with regular
// expressions. It is a Go module of its own (deploy/validate/go.mod) so that
// the Prometheus, compose-spec, Helm and Kubernetes libraries stay out of the
// connectors' module graph; `make test` runs it.
//
// The checks, all tests:
//
//   - rules_test.go: the rule file loads with Prometheus' rule loader
//     (rulefmt and the rule manager), and its unit tests,
//     deploy/monitoring/logbridge-rules.test.yaml, pass with promtool's
//     `test rules` semantics (series loaded in promqltest's notation, the
//     rule groups evaluated every evaluation_interval, firing alerts compared
//     with their labels and annotations in full) — every alert fires and
//     resolves.
//   - metrics_test.go: every PromQL expression of the rules and the dashboard
//     is parsed with the Prometheus parser; every metric name, label matcher
//     and grouping label it uses must exist in the /metrics output of the real
//     source-connector and sink-connector, built from this repository and run
//     on the local stack through a sync (integration: needs the stack).
//   - compose_test.go: docker-compose.yml loads with the compose-spec library
//     (the loader Docker Compose itself uses) and runs the product as a user
//     would (structure, references, healthchecks, loopback ports).
//   - helm_test.go: deploy/helm/logbridge renders with the Helm library for
//     several values files, and every manifest decodes strictly into the
//     Kubernetes (and prometheus-operator) API types.
//
// Run: cd deploy/validate && go test ./... (the metrics check skips without
// the local stack unless LOGBRIDGE_REQUIRE_STACK=1).
package validate
