// Package sink wires the sink-connector service: configuration (flags,
// environment, YAML through pkg/config), the destination client, the schema
// codec, the consumer, the dead-letter producer and the HTTP server
// (/metrics, /healthz, GET /api/v1/progress). It is what main runs and what
// tests and other programs embed in-process.
//
//	cfg := sink.DefaultConfig()
//	cfg.DestURI, cfg.TopicPrefix = "mongodb://…", "logbridge"
//	svc, err := sink.New(ctx, cfg, logger, prometheus.NewRegistry())
//	go svc.Run(ctx)         // until ctx ends (nil) or a fatal error
//	p := svc.Progress()     // position per partition, lag
//
// Metrics are listed in sink-connector/internal/metrics.
package sink
