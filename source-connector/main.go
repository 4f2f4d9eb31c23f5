// Command source-connector turns a MongoDB cluster into a Kafka log: an
// initial snapshot of every included namespace, then the change stream,
// exactly once into keyed topics. See README.md and internal/app.
//
// Settings come from flags, then LOGBRIDGE_SOURCE_<FLAG_NAME> environment
// variables, then a YAML file (--config); run with --help for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/gcfloor"
	"github.com/logbridge/logbridge/pkg/gomaxprocs"
	"github.com/logbridge/logbridge/pkg/httpapi"
	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/obs"
	"github.com/logbridge/logbridge/pkg/supervise"
	"github.com/logbridge/logbridge/pkg/termview"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/source-connector/internal/app"
	"github.com/logbridge/logbridge/source-connector/internal/controlapi"
)

const envPrefix = "LOGBRIDGE_SOURCE"

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("source-connector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.DefaultConfig()
	cfg.RegisterFlags(fs)
	var logCfg obs.LogConfig
	logCfg.RegisterFlags(fs)
	var httpCfg httpapi.Config
	httpCfg.RegisterFlags(fs, "127.0.0.1:27182", "/metrics, /healthz and the control API (/api/v1/...)")
	var managed controlapi.Config
	var cluster0, cluster1 string
	fs.StringVar(&cluster0, "cluster0", "", "URI of the cluster named \"cluster0\" in control API requests; with --cluster0/--cluster1 the connector waits for POST /api/v1/start (mongosync mode) instead of syncing --source-uri at once")
	fs.StringVar(&cluster1, "cluster1", "", "URI of the cluster named \"cluster1\" in control API requests (see --cluster0)")
	fs.StringVar(&managed.SinkGroup, "sink-group", "logbridge-sink", "consumer group of the sink-connector, whose committed offsets progress reports (mongosync mode)")
	fs.Int64Var(&managed.CommitMaxLag, "commit-max-lag", 1000, "canCommit is true once the sink is at most this many records behind (mongosync mode; 0 or more)")
	progressView := true
	fs.BoolVar(&progressView, "progress-view", true, "draw a live progress view (collections copied, rate, ETA; events/s and lag while streaming) when stderr is a terminal; log lines go above it. Never drawn to a file or pipe")
	managed.Restart = supervise.DefaultConfig()
	fs.DurationVar(&managed.Restart.Max, "restart-backoff-max", managed.Restart.Max,
		"longest wait between restarts of a failed epoch connector (mongosync mode): waits start at 1s and double up to this, so a cluster that rejects the credentials sees few login attempts")
	version.RegisterFlag(fs)
	fs.Usage = func() { usage(fs, stderr) }
	if err := config.Parse(fs, envPrefix, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "source-connector: %v\n", mongox.NewRedactor(nil).String(err.Error()))
		return 2
	}
	// Every line this process prints goes through the redactor: URI
	// passwords, secret URI options and the SASL password never show.
	if err := cfg.Kafka.ResolvePassword(); err != nil {
		fmt.Fprintf(stderr, "source-connector: %v\n", err)
		return 2
	}
	red := mongox.NewRedactor([]string{cfg.SourceURI, cluster0, cluster1}, cfg.Kafka.SASLPassword)
	// On a terminal, the live view owns stderr: logs and errors go above it.
	out := stderr
	var view *termview.View
	if f, ok := stderr.(*os.File); ok && progressView && termview.IsTerminal(f) {
		view = termview.New(f, "source-connector")
		defer view.Close()
		out = view
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(out, "source-connector: %s\n", red.String(err.Error()))
		return code
	}
	log, err := logCfg.NewLogger(out)
	if err != nil {
		return fail(2, err)
	}
	log = slog.New(red.Handler(log.Handler()))
	version.LogStart(log, "source-connector")
	if config.OnCommandLine(args, "kafka-sasl-password") {
		log.Warn("--kafka-sasl-password on the command line is visible to every local user (ps, /proc): use --kafka-sasl-password-file or " + envPrefix + "_KAFKA_SASL_PASSWORD")
	}
	mongosync := cluster0 != "" || cluster1 != ""
	if mongosync {
		managed.Clusters = map[string]string{}
		for name, uri := range map[string]string{"cluster0": cluster0, "cluster1": cluster1} {
			if uri != "" {
				if err := mongox.ValidateURI(uri); err != nil {
					fmt.Fprintf(stderr, "source-connector: --%s: %v\n", name, err)
					return 2
				}
				managed.Clusters[name] = uri
			}
		}
		if cfg.SourceURI == "" {
			cfg.SourceURI = "mongodb://unused" // each epoch sets its own
		}
		if err := managed.Validate(); err != nil {
			return fail(2, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fail(2, err)
	}
	// An exposed, unauthenticated API is a settings error, refused before
	// anything is dialled (DESIGN.md invariant 7).
	if err := httpCfg.Validate(); err != nil {
		return fail(2, err)
	}
	reg := obs.NewRegistry()
	regs := supervise.NewRegistries(reg) // the process metrics and the epoch connector's
	var runner func(context.Context) error
	var snapshot func() termview.Snapshot
	srv, err := httpapi.New(httpCfg, regs, log)
	if err != nil {
		return fail(1, err)
	}
	kopts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return fail(2, err)
	}
	// Readiness (/readyz): Kafka and MongoDB reachable, the pipeline
	// running. The probes keep their own clients, so a check never waits
	// behind the pipeline's work.
	kprobe, err := kgo.NewClient(kopts...)
	if err != nil {
		return fail(2, fmt.Errorf("creating the Kafka client: %w", err))
	}
	defer kprobe.Close()
	mprobe := mongox.NewProber()
	defer mprobe.Close()
	srv.Ready("kafka", func(ctx context.Context) error { return red.Error(kafkax.Ping(ctx, kprobe, cfg.Kafka.Brokers)) })
	if mongosync {
		managed.Base = cfg
		ctl, err := controlapi.New(ctx, managed, kopts, log, regs)
		if err != nil {
			return fail(1, err)
		}
		defer ctl.Close()
		ctl.Routes(srv)
		ctl.Readiness(srv, mprobe)
		runner = ctl.Run
		snapshot = ctl.ViewSnapshot
		log.Info("control API ready (mongosync mode)", "addr", srv.Addr, "clusters", len(managed.Clusters))
	} else {
		svc, err := app.New(cfg, log, reg)
		if err != nil {
			return fail(2, err)
		}
		srv.Ready("mongodb", func(ctx context.Context) error { return red.Error(mprobe.Ping(ctx, "source", cfg.SourceURI)) })
		srv.Ready("pipeline", func(context.Context) error { return red.Error(svc.Ready()) })
		runner = svc.Run
		snapshot = func() termview.Snapshot { return svc.Status().ViewSnapshot("") }
	}
	log.Info("HTTP listening", "url", srv.URL(), "pprof", srv.PprofAddr)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return runner(gctx) })
	g.Go(func() error { gomaxprocs.Adapt(gctx, gomaxprocs.Config{Log: log}); return nil })
	defer gcfloor.Start(gcfloor.DefaultFloor)()
	if view != nil {
		g.Go(func() error { view.Run(gctx, snapshot); return nil })
	}
	err = g.Wait()
	if err != nil && ctx.Err() == nil {
		log.Error("source connector stopped", "err", err)
		return fail(1, fmt.Errorf("error: %w", err))
	}
	log.Info("source connector stopped")
	return 0
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `source-connector: copy a MongoDB cluster into Kafka, then stream its changes, exactly once.

It takes the source cluster time T0, publishes each included collection's options and
indexes, copies every document (parallel, checkpointed _id ranges), then streams the
change events from T0 on. Records and the progress that covers them are committed in
one Kafka transaction, so a restart after any crash continues without gap or duplicate.

Usage:
  source-connector --source-uri URI [flags]                  sync at once
  source-connector --cluster0 URI --cluster1 URI [flags]     mongosync mode: drive it with
                                                             the control API (README)

Every flag can also be set with the environment variable %s_<FLAG_NAME>
(e.g. %s_SOURCE_URI, %s_KAFKA_BROKERS) or in a YAML file given with --config
(flag-name: value). Command-line flags win over the environment, which wins over the file.

Examples:
  source-connector --source-uri 'mongodb://db1:27017,db2:27017/?replicaSet=rs0' \
      --kafka-brokers k1:9092,k2:9092 --topic-prefix shop --include 'shop.*' --exclude shop.tmp
  source-connector --config /etc/logbridge/source.yaml --full-document updateLookup
  source-connector --source-uri ... --encoding confluent --schema-registry-url http://registry:8081

Flags:
`, envPrefix, envPrefix, envPrefix)
	fs.PrintDefaults()
	fmt.Fprint(w, `
The HTTP listener (--http-addr) is on loopback by default; requests that change the
sync (start, pause, resume, commit, reverse, verify) need the API token from
--api-token-file or LOGBRIDGE_API_TOKEN (header 'Authorization: Bearer <token>') or a
client certificate (--http-tls-client-ca). A non-loopback address without either is
refused (exit 2) unless --api-insecure. See README, Security.

Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error (unreachable server, missing
privileges, standalone source, lost resume point, ...), 2 on invalid settings.
`)
}
