// Package obs sets up what operators see of a service: the structured logger
// (log/slog, text or JSON) and the Prometheus registry. The HTTP listener
// that serves them is pkg/httpapi.
package obs
