package consume

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/logbridge/logbridge/schema"
)

// deniedDecoder fails like a Serde whose schema registry refuses the credentials.
type deniedDecoder struct{}

func (deniedDecoder) DecodeValue(schema.Encoding, []byte) (*schema.Event, error) {
	return nil, fmt.Errorf("fetching schema id 7: %w: GET https://r/schemas/ids/7 answered 401 Unauthorized", schema.ErrRegistryAccess)
}

// TestRegistryAccessDeniedStops: a record that cannot be decoded because the registry
// refuses this sink's credentials is not the record's fault: even with
// --error-tolerance=all it is neither dead-lettered nor skipped; the sink stops without
// acknowledging it, so that it is applied once the credentials are fixed.
func TestRegistryAccessDeniedStops(t *testing.T) {
	dlq := &fakeDLQ{}
	h := newHarness(t, func(c *Config) { c.Tolerance, c.DLQTopic = ToleranceAll, "lb._dlq" }, dlq, pA)
	h.c.deps.Decoder = deniedDecoder{} // before any record is pushed
	h.push(pA, h.ev(pA, 1), h.ev(pA, 2))
	select {
	case err := <-h.errs:
		if !errors.Is(err, schema.ErrRegistryAccess) {
			t.Fatalf("error: %v, want ErrRegistryAccess", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not stop on a registry access error")
	}
	if sent := dlq.list(); len(sent) != 0 {
		t.Fatalf("dead letters: %q, want none", sent)
	}
	if got := h.acked(pA); got != -1 {
		t.Fatalf("acknowledged offset %d, want none", got)
	}
}
