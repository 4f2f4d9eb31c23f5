package controlapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logbridge/logbridge/pkg/control"
)

// FuzzStartRequest runs arbitrary bodies through what POST /api/v1/start
// does before it writes anything: decode (size limit, unknown fields
// refused) and control.Compile. It must never panic, and every refusal
// must say something. Seeds: testdata/fuzz/FuzzStartRequest.
func FuzzStartRequest(f *testing.F) {
	clusters := []string{"cluster0", "cluster1"}
	f.Fuzz(func(t *testing.T, body string) {
		var p control.StartParams
		w := httptest.NewRecorder()
		if !decode(w, httptest.NewRequest("POST", "/api/v1/start", strings.NewReader(body)), &p) {
			// decode answered the request itself (400 or 413) with a reason.
			if w.Code != 400 && w.Code != 413 || !strings.Contains(w.Body.String(), "errorDescription") {
				t.Fatalf("a refused body got HTTP %d %q, want 400/413 with a description", w.Code, w.Body.String())
			}
			return
		}
		c, err := control.Compile(p, clusters)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an empty refusal")
			}
			return
		}
		if p.Source == p.Destination || c.Filter == nil {
			t.Fatalf("accepted %+v", p)
		}
		c.Filter.Match("shop", "orders")
		c.Filter.MayMatchDB("shop")
	})
}
