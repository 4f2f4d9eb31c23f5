package obs

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServerServesMetricsAndHealth(t *testing.T) {
	s, err := NewServer("127.0.0.1:0", NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for _, tc := range []struct{ path, want string }{{"/healthz", "ok"}, {"/metrics", "go_goroutines"}, {"/debug/pprof/", "goroutine"}} {
		resp, err := http.Get("http://" + s.Addr + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: got %q, want it to contain %q", tc.path, b, tc.want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: got %v, want nil", err)
	}
}

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

func TestBusyPortIsAClearError(t *testing.T) {
	s, err := NewServer("127.0.0.1:0", NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	_, err = NewServer(s.Addr, NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "--http-addr") {
		t.Fatalf("got %v, want an error telling to choose another --http-addr", err)
	}
}
