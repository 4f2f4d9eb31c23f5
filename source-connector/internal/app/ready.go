package app

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logbridge/logbridge/pkg/termview"
)

// Ready reports whether the connector is past connecting: planning, copying
// or streaming (a readiness check). Safe for concurrent use.
func (s *Service) Ready() error {
	st := s.Status()
	switch st.Phase {
	case PhasePlanning, PhaseSnapshot, PhaseStreaming:
		return nil
	case PhaseFailed:
		return fmt.Errorf("the source connector failed: %s", st.Error)
	default:
		return fmt.Errorf("the source connector is %s", st.Phase)
	}
}

var phases = []Phase{PhaseStarting, PhasePlanning, PhaseSnapshot, PhaseStreaming, PhaseStopped, PhaseFailed}

// statusCollector exports the service's Status at scrape time: the phase and
// the copy progress per namespace, which (unlike the snapshot counters of
// internal/metrics, which count this run) include what earlier runs copied
// and checkpointed, so copied/estimated is the collection's progress.
type statusCollector struct {
	s                                                 *Service
	phase, estDocs, estBytes, copiedDocs, copiedBytes *prometheus.Desc
	done                                              *prometheus.Desc
}

func newStatusCollector(s *Service) *statusCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("logbridge_source_"+name, help, labels, nil)
	}
	return &statusCollector{s: s,
		phase:       d("phase", "1 for the connector's current phase (starting, planning, snapshot, streaming, stopped, failed), 0 for the others.", "phase"),
		estDocs:     d("copy_estimated_documents", "Documents in the namespace when the copy was planned (estimatedDocumentCount).", "ns"),
		estBytes:    d("copy_estimated_bytes", "BSON bytes of the namespace when the copy was planned (0: unknown).", "ns"),
		copiedDocs:  d("copy_copied_documents", "Documents of the namespace copied into Kafka so far, checkpointed runs included.", "ns"),
		copiedBytes: d("copy_copied_bytes", "BSON bytes of the namespace copied into Kafka so far, checkpointed runs included.", "ns"),
		done:        d("copy_done", "1 once the namespace's copy is complete.", "ns"),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.phase, c.estDocs, c.estBytes, c.copiedDocs, c.copiedBytes, c.done} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	for _, p := range phases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.phase, prometheus.GaugeValue, v, string(p))
	}
	for _, n := range st.Namespaces {
		done := 0.0
		if n.Done {
			done = 1
		}
		ch <- prometheus.MustNewConstMetric(c.estDocs, prometheus.GaugeValue, float64(n.EstimatedDocs), n.NS)
		ch <- prometheus.MustNewConstMetric(c.estBytes, prometheus.GaugeValue, float64(n.EstimatedBytes), n.NS)
		ch <- prometheus.MustNewConstMetric(c.copiedDocs, prometheus.GaugeValue, float64(n.CopiedDocs), n.NS)
		ch <- prometheus.MustNewConstMetric(c.copiedBytes, prometheus.GaugeValue, float64(n.CopiedBytes), n.NS)
		ch <- prometheus.MustNewConstMetric(c.done, prometheus.GaugeValue, done, n.NS)
	}
}

// ViewSnapshot is the status as the live terminal view draws it (pkg/termview).
func (st Status) ViewSnapshot(headline string) termview.Snapshot {
	// While streaming, the stream line says so.
	parts := []string{}
	if headline != "" {
		parts = append(parts, headline)
	}
	if st.Phase != PhaseStreaming {
		parts = append(parts, string(st.Phase))
	}
	snap := termview.Snapshot{Status: strings.Join(parts, ": ")}
	for _, n := range st.Namespaces {
		snap.Copies = append(snap.Copies, termview.Copy{NS: n.NS, Docs: n.CopiedDocs, EstimatedDocs: n.EstimatedDocs,
			Bytes: n.CopiedBytes, EstimatedBytes: n.EstimatedBytes, Done: n.Done})
	}
	if st.Phase == PhaseStreaming {
		snap.Streaming = &termview.Stream{Events: st.EventsPublished, LagSeconds: st.LagSeconds}
	}
	return snap
}
