// Package termview checks the connectors' live terminal view (pkg/termview)
// as a person sees it: each connector runs in a tmux pane (a real terminal)
// against the local stack, and the test reads the pane with
// `tmux capture-pane`. Skipped where tmux is not installed.
package termview
