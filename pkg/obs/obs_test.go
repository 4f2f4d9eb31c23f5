package obs

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/logbridge/logbridge/pkg/version"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := LogConfig{Level: "info", Format: "json"}.NewLogger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("shown", "k", 1)
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"k":1`) {
		t.Fatalf("got %q", buf.String())
	}
	if _, err := (LogConfig{Level: "loud", Format: "text"}).NewLogger(&buf); err == nil {
		t.Fatal("got nil error for a bad level")
	}
}

func TestBuildInfoMetric(t *testing.T) {
	reg := NewRegistry()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	i := version.Get()
	for _, mf := range mfs {
		if mf.GetName() != "logbridge_build_info" {
			continue
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		want := map[string]string{"version": i.Version, "revision": i.Commit, "goversion": i.GoVersion,
			"record_contract": i.RecordContract, "metadata_version": strconv.Itoa(i.Metadata)}
		for k, v := range want {
			if labels[k] != v {
				t.Errorf("label %s = %q, want %q", k, labels[k], v)
			}
		}
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("value %v, want 1", m.GetGauge().GetValue())
		}
		return
	}
	t.Fatal("logbridge_build_info not registered")
}
