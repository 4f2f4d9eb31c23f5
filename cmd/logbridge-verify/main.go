// Command logbridge-verify compares a source and a destination MongoDB
// namespace by namespace (documents byte for byte, indexes, options) and exits
// 1 when they differ. Run it before cutting over.
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

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/pkg/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errDifferent):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "logbridge-verify:", err)
		os.Exit(2)
	}
}

var errDifferent = errors.New("source and destination differ")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logbridge-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: logbridge-verify --source-uri URI --dest-uri URI [flags]

Compares every included namespace of the source with the destination: document
counts, each document's BSON bytes within _id ranges, indexes and collection
options. Prints one line per namespace; exits 0 when all are equal, 1 when any
differs, 2 on an error. Settings also come from LOGBRIDGE_VERIFY_<FLAG> variables
or a YAML file (--config).

Flags:
`)
		fs.PrintDefaults()
	}
	srcURI := fs.String("source-uri", "", "source MongoDB URI")
	dstURI := fs.String("dest-uri", "", "destination MongoDB URI")
	var include, exclude config.StringList
	fs.Var(&include, "include", "namespaces to verify: db.*, db.coll, * or /regex/ on db.coll (comma-separated; default all)")
	fs.Var(&exclude, "exclude", "namespaces to skip, same syntax as --include")
	rangeSize := fs.Int("range-size", 1000, "source documents per compared range")
	maxReported := fs.Int("max-reported", 10, "differing _ids reported per kind and namespace")
	checkpoint := fs.String("checkpoint", "", "file that records the last verified range of each namespace; a later run with the same file resumes after it (delete the file to start over)")
	if err := config.Parse(fs, "LOGBRIDGE_VERIFY", args); err != nil {
		return err
	}
	filter, err := nsfilter.New(include, exclude)
	if err != nil {
		return err
	}
	src, err := mongox.Connect(ctx, "source", *srcURI)
	if err != nil {
		return err
	}
	defer src.Disconnect(context.Background())
	dst, err := mongox.Connect(ctx, "destination", *dstURI)
	if err != nil {
		return err
	}
	defer dst.Disconnect(context.Background())
	pairs, err := verify.ListPairs(ctx, src, filter.Match, nil)
	if err != nil {
		return err
	}
	opts := verify.Options{RangeSize: *rangeSize, MaxReported: *maxReported}
	if *checkpoint != "" {
		cp, err := loadCheckpoint(*checkpoint)
		if err != nil {
			return err
		}
		opts.ResumeAfter = cp.resumeAfter()
		opts.OnRange = func(p verify.Pair, last bson.RawValue) {
			if err := cp.save(*checkpoint, p.String(), last); err != nil {
				fmt.Fprintf(stderr, "logbridge-verify: saving the checkpoint: %v\n", err)
			}
		}
		if len(opts.ResumeAfter) > 0 {
			fmt.Fprintf(stdout, "resuming %d namespaces from %s\n", len(opts.ResumeAfter), *checkpoint)
		}
	}
	rep, err := verify.Run(ctx, src, dst, pairs, opts, func(r *verify.Result) { fmt.Fprintln(stdout, r.Summary()) })
	if err != nil {
		return err
	}
	if !rep.Equal() {
		return errDifferent
	}
	fmt.Fprintf(stdout, "all %d namespaces equal\n", len(rep.Namespaces))
	return nil
}
