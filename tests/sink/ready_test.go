package sink_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/testenv"
)

// TestReadyzOnTheStack: a direct-mode sink on the real servers is ready
// once it consumes, and /readyz lists each check it passed.
func TestReadyzOnTheStack(t *testing.T) {
	env := testenv.New(t)
	cfg := sourceSinkCfg(env, testenv.TopicPrefix(t))
	cfg.HTTP.Addr = "127.0.0.1:0"
	svc := runSink(t, cfg)
	var code int
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + svc.HTTPAddr() + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if code == 200 {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 200 || body != "[+]kafka ok\n[+]mongodb ok\n[+]pipeline ok\nreadyz check passed\n" {
		t.Fatalf("/readyz of a running sink: got %d %q, want 200 with kafka, mongodb and pipeline ok", code, body)
	}
}
