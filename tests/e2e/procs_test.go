package e2e

import (
	"testing"

	"github.com/logbridge/logbridge/tests/procs"
)

type proc = procs.Proc

func binaries(t *testing.T) (string, string) { return procs.Binaries(t) }

func startProc(t *testing.T, name, bin string, args ...string) *proc {
	return procs.Start(t, name, bin, args...)
}
