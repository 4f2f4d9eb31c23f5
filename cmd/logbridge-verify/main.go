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
	"github.com/logbridge/logbridge/pkg/version"
)

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errDifferent):
		os.Exit(1)
	default:
		// Exit 2 on invalid settings and on a runtime error alike: like
		// diff and cmp, 1 means "they differ" (see --help), so scripts can
		// tell a difference from a failure.
		fmt.Fprintln(os.Stderr, "logbridge-verify:", mongox.NewRedactor(nil).String(err.Error()))
		os.Exit(2)
	}
}

var errDifferent = errors.New("source and destination differ")

// settings are the command's flags.
type settings struct {
	sourceURI, destURI string
	include, exclude   config.StringList
	rangeSize          int
	maxReported        int
	checkpoint         string
}

// Validate checks every setting before anything is dialled.
func (s settings) Validate() error {
	var errs []error
	if s.sourceURI == "" {
		errs = append(errs, errors.New("source-uri is required: give the source's mongodb:// URI"))
	}
	if s.destURI == "" {
		errs = append(errs, errors.New("dest-uri is required: give the destination's mongodb:// URI"))
	}
	if s.rangeSize < 1 {
		errs = append(errs, fmt.Errorf("range-size %d: must be at least 1", s.rangeSize))
	}
	if s.maxReported < 0 {
		errs = append(errs, fmt.Errorf("max-reported %d: must be 0 or more", s.maxReported))
	}
	if _, err := nsfilter.New(s.include, s.exclude); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
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
	var st settings
	fs.StringVar(&st.sourceURI, "source-uri", "", "source MongoDB URI (required)")
	fs.StringVar(&st.destURI, "dest-uri", "", "destination MongoDB URI (required)")
	fs.Var(&st.include, "include", "namespaces to verify: db.*, db.coll, * or /regex/ on db.coll (comma-separated; default all)")
	fs.Var(&st.exclude, "exclude", "namespaces to skip, same syntax as --include")
	fs.IntVar(&st.rangeSize, "range-size", 1000, "source documents per compared range (1 or more)")
	fs.IntVar(&st.maxReported, "max-reported", 10, "differing _ids reported per kind and namespace (0 or more)")
	version.RegisterFlag(fs)
	fs.StringVar(&st.checkpoint, "checkpoint", "", "file that records the last verified range of each namespace; a later run with the same file resumes after it (delete the file to start over)")
	if err := config.Parse(fs, "LOGBRIDGE_VERIFY", args); err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return err
	}
	srcURI, dstURI, rangeSize, maxReported, checkpoint := &st.sourceURI, &st.destURI, &st.rangeSize, &st.maxReported, &st.checkpoint
	filter, err := nsfilter.New(st.include, st.exclude)
	if err != nil {
		return err
	}
	red := mongox.NewRedactor([]string{st.sourceURI, st.destURI})
	defer func() { err = red.Error(err) }()
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
