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
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/gcfloor"
	"github.com/logbridge/logbridge/pkg/gomaxprocs"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/obs"
	"github.com/logbridge/logbridge/pkg/termview"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/sink-connector/internal/follow"
	"github.com/logbridge/logbridge/sink-connector/sink"
)

const envPrefix = "LOGBRIDGE_SINK"

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout)
		return
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run returns the exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error,
// 2 on invalid settings (as --help says, and as the source-connector does).
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink-connector", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
		fmt.Fprint(fs.Output(), `
Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error (unreachable server,
authentication, a record it cannot apply, ...), 2 on invalid settings.
`)
	}
	var cfg sink.Config
	cfg.RegisterFlags(fs)
	version.RegisterFlag(fs)
	progressView := true
	fs.BoolVar(&progressView, "progress-view", true, "draw a live progress view (records applied per second, destination lag, partitions behind) when stderr is a terminal; log lines go above it. Never drawn to a file or pipe")
	if err := config.Parse(fs, envPrefix, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "sink-connector: %s\n", mongox.NewRedactor(nil).String(err.Error()))
		return 2
	}
	if err := cfg.Kafka.ResolvePassword(); err != nil {
		fmt.Fprintf(stderr, "sink-connector: %v\n", err)
		return 2
	}
	// Every line this process prints goes through the redactor: URI
	// passwords, secret URI options and the SASL password never show.
	red := mongox.NewRedactor([]string{cfg.DestURI, cfg.Cluster0, cfg.Cluster1}, cfg.Kafka.SASLPassword)
	// On a terminal, the live view owns stderr: logs and errors go above it.
	out := stderr
	var view *termview.View
	if f, ok := stderr.(*os.File); ok && progressView && termview.IsTerminal(f) {
		view = termview.New(f, "sink-connector")
		defer view.Close()
		out = view
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(out, "sink-connector: %s\n", red.String(err.Error()))
		return code
	}
	log, err := cfg.Log.NewLogger(out)
	if err != nil {
		return fail(2, err)
	}
	log = slog.New(red.Handler(log.Handler()))
	version.LogStart(log, "sink-connector")
	if config.OnCommandLine(args, "kafka-sasl-password") {
		log.Warn("--kafka-sasl-password on the command line is visible to every local user (ps, /proc): use --kafka-sasl-password-file or " + envPrefix + "_KAFKA_SASL_PASSWORD")
	}
	if err := cfg.Validate(); err != nil {
		return fail(2, err)
	}
	// (Validate refuses an exposed, unauthenticated listener too, before
	// anything is dialled: DESIGN.md invariant 7.)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var runner func(context.Context) error
	var snapshot func() termview.Snapshot
	if cfg.Managed() {
		f, err := follow.New(ctx, cfg, log, obs.NewRegistry())
		if err != nil {
			return fail(1, err)
		}
		runner = f.Run
		snapshot = func() termview.Snapshot {
			p := f.Progress()
			head := fmt.Sprintf("%s epoch %d", p.State, p.Epoch)
			switch {
			case p.Progress != nil:
				return sinkView(*p.Progress, head)
			case p.LastError != "" && !p.Running:
				head += ": not running (" + p.LastError + ")"
			}
			return termview.Snapshot{Status: head}
		}
	} else {
		svc, err := sink.New(ctx, cfg, log, obs.NewRegistry())
		if err != nil {
			return fail(1, err)
		}
		runner = svc.Run
		snapshot = func() termview.Snapshot { return sinkView(svc.Progress(), "group "+cfg.Group) }
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	if view != nil {
		go view.Run(bg, snapshot)
	}
	go gomaxprocs.Adapt(bg, gomaxprocs.Config{Log: log})
	defer gcfloor.Start(gcfloor.DefaultFloor)()
	if err := runner(ctx); err != nil {
		log.Error("sink connector stopped", "err", err)
		return fail(1, err)
	}
	return 0
}

// sinkView is the sink's position as the live terminal view draws it: the
// records applied (the sum of the partitions' applied offsets, whose rate
// the view shows), the destination lag and the partitions holding unapplied
// records (more than the one transaction marker a caught-up partition of the
// exactly-once log still counts).
func sinkView(p sink.Progress, head string) termview.Snapshot {
	st := &termview.Stream{Verb: "applying", LagSeconds: p.ApplyLagSeconds, Partitions: len(p.Partitions)}
	for _, pp := range p.Partitions {
		st.Events += max(pp.AppliedOffset, 0)
		if pp.LagRecords > 1 {
			st.PartitionsBehind++
		}
	}
	return termview.Snapshot{Status: head, Streaming: st}
}
