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
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/obs"
	"github.com/logbridge/logbridge/source-connector/internal/app"
)

const envPrefix = "LOGBRIDGE_SOURCE"

func main() {
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
	fs.Usage = func() { usage(fs, stderr) }
	if err := config.Parse(fs, envPrefix, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "source-connector: %v\n", err)
		return 2
	}
	log, err := logCfg.NewLogger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "source-connector: %v\n", err)
		return 2
	}
	reg := obs.NewRegistry()
	svc, err := app.New(cfg, log, reg)
	if err != nil {
		fmt.Fprintf(stderr, "source-connector: %v\n", err)
		return 2
	}
	srv, err := obs.NewServer(cfg.HTTPAddr, reg)
	if err != nil {
		fmt.Fprintf(stderr, "source-connector: %v\n", err)
		return 1
	}
	log.Info("HTTP listening", "addr", srv.Addr)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return svc.Run(gctx) })
	err = g.Wait()
	if err != nil && ctx.Err() == nil {
		log.Error("source connector stopped", "err", err)
		fmt.Fprintf(stderr, "source-connector: error: %v\n", err)
		return 1
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
  source-connector --source-uri URI [flags]

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
Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error (unreachable server, missing
privileges, standalone source, lost resume point, ...), 2 on invalid settings.
`)
}
