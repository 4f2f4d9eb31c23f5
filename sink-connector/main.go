// Command sink-connector applies the logbridge log (Kafka topics written by
// the source-connector) to a destination MongoDB, idempotently, committing
// Kafka offsets only after the destination acknowledged the writes. See
// README.md and doc.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/obs"
	"github.com/logbridge/logbridge/sink-connector/internal/follow"
	"github.com/logbridge/logbridge/sink-connector/sink"
)

const envPrefix = "LOGBRIDGE_SINK"

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "sink-connector: %v\n", err)
		if errors.Is(err, errSettings) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errSettings marks an error in the settings (exit status 2).
var errSettings = errors.New("invalid settings")

func run(args []string) error {
	fs := flag.NewFlagSet("sink-connector", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: sink-connector --dest-uri URI [flags]
       sink-connector --cluster0 URI --cluster1 URI [flags]   (mongosync mode)

Applies the logbridge log to a destination MongoDB. With --cluster0/--cluster1
it runs in mongosync mode: it follows the control log <topic-prefix>._control
written by the source-connector's control API and applies each epoch of the
sync to the destination the start request names. Every flag can also be set
with the environment variable %s_<FLAG_NAME> (dashes as underscores, upper
case) or in the YAML file given by --config (flag-name: value); a flag on the
command line wins over the environment, which wins over the file.

The HTTP listener (--http-addr) is on loopback by default; on any other address
it needs the API token (--api-token-file or LOGBRIDGE_API_TOKEN) or client
certificates (--http-tls-client-ca), or the sink refuses to start (exit 2)
unless --api-insecure. See README, Security.

Flags:
`, envPrefix)
		fs.PrintDefaults()
	}
	var cfg sink.Config
	cfg.RegisterFlags(fs)
	if err := config.Parse(fs, envPrefix, args); err != nil {
		return err
	}
	log, err := cfg.Log.NewLogger(os.Stderr)
	if err != nil {
		return err
	}
	// An exposed, unauthenticated listener is refused before anything is
	// dialled (DESIGN.md invariant 7).
	if err := cfg.HTTP.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errSettings, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Managed() {
		f, err := follow.New(ctx, cfg, log, obs.NewRegistry())
		if err != nil {
			return err
		}
		return f.Run(ctx)
	}
	svc, err := sink.New(ctx, cfg, log, obs.NewRegistry())
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
