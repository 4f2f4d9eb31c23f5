// Package obs sets up what operators see of a service: the structured logger
// (log/slog, text or JSON) and the Prometheus registry. The HTTP listener
// that serves them is pkg/httpapi. Every registry from NewRegistry carries
// logbridge_build_info (gauge 1; labels version, revision, goversion,
// record_contract, metadata_version), next to the Go and process collectors.
package obs
