// Package httpapi is the HTTP listener both connectors serve their API,
// /metrics and /healthz on (source :27182 with the control API, sink :27183
// with its progress), and the policy that keeps it safe by default
// (DESIGN.md invariant 7):
//
//   - Listeners default to loopback. A listener on any other address must
//     have authentication (an API token or TLS client certificates); without
//     it Validate refuses the settings (the services exit with status 2)
//     unless the operator opts out with --api-insecure.
//   - Every request that changes something (any method but GET and HEAD:
//     start, pause, resume, commit, reverse, verify) needs authentication: a
//     bearer token from --api-token-file or the LOGBRIDGE_API_TOKEN
//     environment variable (never a command-line value, which other users
//     see in ps), compared in constant time, or a TLS client certificate
//     verified against --http-tls-client-ca. A refusal is HTTP 401 with
//     mongosync's error shape and a WWW-Authenticate: Bearer header, decided
//     before the handler runs, so nothing reaches the control log.
//   - Reads (progress, metrics, health) are open on a loopback listener and
//     need authentication elsewhere, unless --api-public-read.
//   - The server has read, write and idle timeouts, a header size limit and
//     a request body limit (MaxBodyBytes; larger bodies get HTTP 413).
//   - Go profiles (/debug/pprof/) are served only on their own listener,
//     --pprof-addr, off by default, under the same policy.
//
// Health: GET /healthz answers 200 "ok" while the process serves HTTP (a
// liveness probe: restarting would not help anything else); GET /readyz runs
// the readiness checks the service added with Ready — MongoDB and Kafka
// reachable, the current epoch's pipeline running — concurrently, each
// bounded by CheckTimeout, and answers 200, or 503 naming the failing check
// ("[-]kafka failed: ...", the Kubernetes /readyz?verbose format).
//
// Usage:
//
//	var hc httpapi.Config
//	hc.RegisterFlags(fs, "127.0.0.1:27182", "metrics, health and the control API")
//	// after parsing: hc.Validate() is a settings error (exit 2)
//	srv, err := httpapi.New(hc, registry, log)
//	srv.Handle("POST /api/v1/start", h)
//	srv.Ready("kafka", func(ctx context.Context) error { return kcl.Ping(ctx) })
//	go srv.Run(ctx)
package httpapi
