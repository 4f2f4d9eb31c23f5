package app

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestStatusMetricsAndReady: the phase and the per-namespace copy progress
// are exported as the status says, and Ready follows the phase.
func TestStatusMetricsAndReady(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SourceURI = "mongodb://127.0.0.1:1/"
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("Ready while starting: got %v, want not ready", err)
	}
	s.mu.Lock()
	s.progress["shop.orders"] = &NamespaceProgress{NS: "shop.orders", EstimatedDocs: 200, CopiedDocs: 50, EstimatedBytes: 2000, CopiedBytes: 500}
	s.mu.Unlock()
	s.setPhase(PhaseSnapshot)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready while copying: got %v, want ready", err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "{" + l.GetValue() + "}"
			}
			got[k] = m.GetGauge().GetValue()
		}
	}
	for k, want := range map[string]float64{
		"logbridge_source_phase{snapshot}":                       1,
		"logbridge_source_phase{starting}":                       0,
		"logbridge_source_copy_estimated_documents{shop.orders}": 200,
		"logbridge_source_copy_copied_documents{shop.orders}":    50,
		"logbridge_source_copy_estimated_bytes{shop.orders}":     2000,
		"logbridge_source_copy_copied_bytes{shop.orders}":        500,
		"logbridge_source_copy_done{shop.orders}":                0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s: got %v (present %v), want %v", k, v, ok, want)
		}
	}
	snap := s.Status().ViewSnapshot("RUNNING epoch 1")
	if snap.Status != "RUNNING epoch 1: snapshot" || len(snap.Copies) != 1 || snap.Copies[0].Docs != 50 || snap.Copies[0].EstimatedDocs != 200 || snap.Streaming != nil {
		t.Fatalf("view while copying: got %+v", snap)
	}
	s.setPhase(PhaseStreaming)
	if snap = s.Status().ViewSnapshot(""); snap.Status != "" || snap.Streaming == nil {
		t.Fatalf("view while streaming: got %+v, want the stream line", snap)
	}
	s.mu.Lock()
	s.status.Phase, s.status.Error = PhaseFailed, "change stream history lost"
	s.mu.Unlock()
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "history lost") {
		t.Fatalf("Ready after a failure: got %v, want the error", err)
	}
}
