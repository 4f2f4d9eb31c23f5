// Command workload writes a seeded, reproducible mix of documents and
// changes into a MongoDB (the demo's and the soak test's traffic).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/tests/workload"
)

func main() {
	fs := flag.NewFlagSet("workload", flag.ExitOnError)
	uri := fs.String("uri", "", "MongoDB URI to write to")
	seed := fs.Uint64("seed", 1, "seed of the operation sequence")
	dbs := fs.String("dbs", "demo", "comma-separated databases to write")
	docs := fs.Int("docs", 1000, "documents inserted into each collection first")
	ops := fs.Int("ops", 1000, "operations after the initial documents")
	txn := fs.Bool("transactions", false, "include multi-document transactions")
	ddl := fs.Bool("ddl", false, "include collection, database and index DDL")
	drop := fs.Bool("drop", false, "drop the databases first (a fresh demo)")
	exclude := fs.String("exclude-types", "auto", "comma-separated optional BSON types to leave out of documents ("+strings.Join(workload.TypeNames(), ", ")+"); auto: those the server cannot store byte for byte (probed in <first db>.workload_probe); none: every type")
	_ = fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := mongox.Connect(ctx, "target", *uri)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
	defer cl.Disconnect(context.Background())
	if *drop {
		for _, db := range strings.Split(*dbs, ",") {
			if err := cl.Database(db).Drop(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "workload: dropping", db+":", err)
				os.Exit(1)
			}
		}
	}
	var excluded []string
	switch *exclude {
	case "none", "":
	case "auto":
		bad, err := workload.Unstorable(ctx, cl, strings.Split(*dbs, ",")[0], "workload_probe")
		if err != nil {
			fmt.Fprintln(os.Stderr, "workload:", err)
			os.Exit(1)
		}
		for _, t := range workload.TypeNames() {
			if why, ok := bad[t]; ok {
				excluded = append(excluded, t)
				fmt.Fprintf(os.Stderr, "workload: leaving out %s: the server cannot store it (%s)\n", t, why)
			}
		}
	default:
		excluded = strings.Split(*exclude, ",")
	}
	g := workload.New(cl, workload.Options{Seed: *seed, DBs: strings.Split(*dbs, ","), Transactions: *txn, DDL: *ddl, ExcludeTypes: excluded})
	start := time.Now()
	if err := g.Seed(ctx, *docs); err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
	st, err := g.Run(ctx, *ops)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
	fmt.Printf("workload: seeded %d docs per collection and ran %d ops (%s) in %s\n", *docs, *ops, st, time.Since(start).Round(time.Millisecond))
}
