// Package inspect implements logbridge-inspect, a command-line reader of the
// log: it prints records of logbridge data topics, whatever their value
// encoding, as canonical Extended JSON lines, with filters on namespace,
// operation and document key. It reads with isolation read_committed, like
// the sink, so it shows exactly what a sink would apply.
//
// It lives with its command, not under schema/, because it reads Kafka: the
// record contract (package schema) imports no Kafka client, so that any
// consumer can take it with the client it already has. --key matches keys
// as MongoDB compares documents, with pkg/verify's BSON ordering.
//
// The command (cmd/logbridge-inspect) is a thin wrapper:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err := inspect.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
//
// Run --help for the flags. Without --follow, Run reads each partition up to
// the last stable offset listed when it starts and returns; with --follow it
// runs until ctx is cancelled.
package inspect
