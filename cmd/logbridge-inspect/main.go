// Command logbridge-inspect prints logbridge records as Extended JSON lines.
// See package github.com/logbridge/logbridge/cmd/logbridge-inspect/internal/inspect,
// or run it with --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/logbridge/logbridge/cmd/logbridge-inspect/internal/inspect"
	"github.com/logbridge/logbridge/pkg/version"
)

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := inspect.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, inspect.ErrInvalidSettings):
		fmt.Fprintln(os.Stderr, "logbridge-inspect:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "logbridge-inspect:", err)
		os.Exit(1)
	}
}
