package obs

import (
	"bytes"
	"strings"
	"testing"
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
