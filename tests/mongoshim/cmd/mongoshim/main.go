// Command mongoshim runs the test-only replica-set shim (package
// tests/mongoshim) in front of a mongo-java-server:
//
//	mongoshim --listen 127.0.0.1:27018 --backend mongodb://127.0.0.1:27118/?directConnection=true --set-name rs0
//
// With --mongos it presents a mongos of a one-shard sharded cluster instead
// (clients connect without replicaSet=).
//
// It stops cleanly on SIGTERM / SIGINT. See docs/testing.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with --pprof
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/logbridge/logbridge/tests/mongoshim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "address to listen on")
	backend := flag.String("backend", "mongodb://127.0.0.1:27118/?directConnection=true", "mongo-java-server URI (one host)")
	setName := flag.String("set-name", "rs0", "replica set name reported by hello")
	oplogMax := flag.Int("oplog-max-events", 0, "keep at most this many change events in memory (0 = unlimited)")
	noop := flag.Duration("noop-interval", 10*time.Second, "write a no-op oplog entry when idle this long, like MongoDB's periodic no-op writer (0 = off)")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	backendWait := flag.Duration("backend-wait", 60*time.Second, "how long to wait for the backend to answer at start")
	renameByCopy := flag.Bool("rename-by-copy", false, "rename collections within a database by copying them (for mongo-java-server's h2 back end; renames across databases always copy)")
	mongos := flag.Bool("mongos", false, "present a mongos of a one-shard sharded cluster instead of a replica set primary (hello msg isdbgrid, shardCollection, config.collections, shard keys in documentKey)")
	stateFile := flag.String("state-file", "", "keep the cluster-time lease, collection UUIDs and options, write-block mode in this file across restarts (for a persistent backend)")
	writesOnly := flag.Bool("writes-only", false, "forward by-_id updates (not replacements) and deletes of known collections without reading the documents around them, recording no change event: for a destination nothing reads a change stream from (benchmarks); see Config.WritesOnly")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6061) to profile the shim itself; off by default")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(*logLevel))); err != nil {
		fmt.Fprintln(os.Stderr, "mongoshim: bad --log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	srv, err := mongoshim.New(mongoshim.Config{Listen: *listen, Backend: *backend, SetName: *setName, OplogMaxEvents: *oplogMax, NoopInterval: noopFlag(*noop),
		RenameByCopy: *renameByCopy, StateFile: *stateFile, WritesOnly: *writesOnly, Mongos: *mongos, Logger: log})
	if err != nil {
		log.Error("mongoshim: bad configuration", "err", err)
		os.Exit(2)
	}
	if *pprofAddr != "" {
		// The shim's own CPU shows up in every benchmark run against it;
		// a profile says which part of it (issue 21, docs/testing.md).
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				log.Error("mongoshim: --pprof cannot listen", "addr", *pprofAddr, "err", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	deadline := time.Now().Add(*backendWait)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = srv.Start(sctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			log.Error("mongoshim: cannot start", "err", err)
			os.Exit(1)
		}
		log.Info("waiting for the backend", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	<-ctx.Done()
	log.Info("mongoshim stopping")
	if err := srv.Close(); err != nil {
		log.Warn("mongoshim: close", "err", err)
	}
	log.Info("mongoshim stopped")
}

func noopFlag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
