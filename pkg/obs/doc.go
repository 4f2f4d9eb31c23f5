// Package obs sets up what operators see of a service: the structured logger
// (log/slog, text or JSON) and the HTTP listener that serves /metrics
// (Prometheus), /healthz and any API handlers the service mounts.
package obs
