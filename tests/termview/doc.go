// Package termview checks the connectors' live terminal view (pkg/termview)
// as a person sees it: each connector runs in a tmux pane (a real terminal)
// against the local stack, and the test reads the pane with
// `tmux capture-pane`. Each pane has a tmux server of its own (socket and
// configuration in a temporary directory), so neither a tmux the person
// uses nor an earlier run can interfere. When a pane does not show what it
// should, the failure says whether the connector had exited, and if not,
// prints its goroutines (SIGQUIT) with the pane's whole history: that is how
// a view that froze (issue 25) is told apart from a connector that waits.
//
// It runs in make test. Where tmux is not installed it is skipped, like the
// kcat recipes of tests/consumers: tmux is a tool of the machine, not a
// server of the stack (.ci/run installs it; Debian: apt-get install tmux).
package termview
