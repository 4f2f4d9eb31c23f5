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
		if err := decode(httptest.NewRequest("POST", "/api/v1/start", strings.NewReader(body)), &p); err != nil {
			if err.Error() == "" {
				t.Fatal("an empty decode error")
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
