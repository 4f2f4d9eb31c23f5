// Package supervise runs the service of one sync epoch and restarts it when
// it fails, for both connectors in mongosync mode (the source-connector's
// control API and the sink's control-log follower).
//
// Lifecycle: Ensure(ctx, epoch, start) starts the epoch's service (unless
// that epoch already runs) after stopping the previous one; Stop stops it and
// waits. A service that fails (its start function or its Run returns an
// error, or Run returns on its own) is started again after an exponential
// backoff with jitter: Initial (1 s), doubling, capped at Max (the
// connectors' --restart-backoff-max, 1 min by default); each delay is drawn
// from [d*(1-Jitter), d], so the cap is never exceeded and many connectors
// failing together do not retry in lockstep. A run that stayed up for
// ResetAfter starts the backoff afresh. The backoff keeps a cluster that
// rejects the credentials from seeing a login storm (and the account from
// being locked out).
//
// Every attempt gets a fresh Prometheus registry (a restarted service
// registers its collectors again); Registries serves the process registry
// together with the current attempt's.
//
// A failure Config.Permanent picks (a state written by a newer release) is
// not retried: the supervisor keeps it in Fatal, and the owner stops.
//
// The last error (redacted by the owner's Redact function), its time, the
// restart count and the next attempt are in Status and Report (the JSON the
// connectors add to GET /api/v1/progress), and in the metrics
//
//	logbridge_<role>_epoch_restarts_total                 counter: restarts after a failure
//	logbridge_<role>_epoch_last_error_timestamp_seconds   gauge: Unix time of the last failure
//	logbridge_<role>_epoch_running                        gauge: 1 while the epoch's service runs
//
// Usage:
//
//	regs := supervise.NewRegistries(obs.NewRegistry())
//	sup, err := supervise.New[*app.Service](supervise.DefaultConfig(), "source", log, regs)
//	sup.Ensure(ctx, epoch, func(ctx context.Context, reg prometheus.Registerer) (*app.Service, error) {
//		return app.New(cfg, log, reg)
//	})
//	defer sup.Stop()
package supervise
