// Package termview draws the live progress view both connectors show when
// stderr is a terminal: one bar per collection during the initial copy
// (documents, bytes, rate, ETA, percentage), and a status line while
// streaming (events per second, destination lag, partitions behind). It
// uses github.com/vbauerster/mpb, which keeps the bars at the bottom of the
// terminal and writes log lines above them, so the structured log stays
// readable. When stderr is not a terminal (a file, a pipe, a container
// log), nothing is drawn and the logs are plain structured lines.
//
// Lifecycle: New starts drawing; the owner feeds it with a Snapshot
// function it polls every Interval; Close (or the end of Run's context)
// stops it and leaves the last frame on the screen.
//
//	if termview.IsTerminal(os.Stderr) {
//		v := termview.New(os.Stderr, "source-connector")
//		log = slog.New(slog.NewTextHandler(v, nil)) // log lines above the bars
//		go v.Run(ctx, svc.Snapshot)
//	}
package termview
