package source

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logbridge/logbridge/tests/testenv"
)

// TestReadyz: a direct-mode source on the real servers becomes ready once
// it is past connecting, and /readyz lists each check it passed.
func TestReadyz(t *testing.T) {
	env := testenv.New(t)
	p := start(t, "--source-uri", env.SourceURI, "--kafka-brokers", strings.Join(env.KafkaBrokers, ","),
		"--topic-prefix", testenv.TopicPrefix(t), "--include", testenv.DBName(t)+".*")
	var code int
	var body string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && !p.exited() {
		resp, err := http.Get("http://" + p.http + "/readyz")
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
		t.Fatalf("/readyz of a running source: got %d %q, want 200 with kafka, mongodb and pipeline ok; output:\n%s", code, body, p.output())
	}
}
