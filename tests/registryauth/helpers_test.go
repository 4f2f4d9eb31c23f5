package registryauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/tests/procs"
)

// start runs a connector with extraEnv (KEY=value: the secrets, never command-line values).
func start(t *testing.T, name, bin string, extraEnv []string, args ...string) *procs.Proc {
	t.Helper()
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return procs.Start(t, name, bin, args...)
}

// secretFile writes a secret the way operators do (with a trailing newline).
func secretFile(t *testing.T, name, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr is a loopback address nothing listens on now, for a connector's --http-addr.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// get returns the body of an HTTP GET (empty on error: the caller checks contents only).
func get(url string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitExit waits up to d for p to stop by itself and returns its output.
func waitExit(t *testing.T, p *procs.Proc, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := p.Exited(); err != nil {
			return p.Tail(1 << 20)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not stop within %s:\n%s", p.Name, d, p.Tail(4000))
	return ""
}

// waitConverged waits until dst holds exactly src's documents, byte for byte, failing at
// once when a connector exits.
func waitConverged(t *testing.T, ctx context.Context, src, dst *mongo.Collection, ps ...*procs.Proc) {
	t.Helper()
	var last string
	for {
		for _, p := range ps {
			if err := p.Exited(); err != nil {
				t.Fatalf("%s exited: %v", p.Name, err)
			}
		}
		want, got := all(t, ctx, src), all(t, ctx, dst)
		if last = diff(want, got); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the destination did not converge: %s", last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func all(t *testing.T, ctx context.Context, c *mongo.Collection) map[string]bson.Raw {
	t.Helper()
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.Raw{}
	for cur.Next(ctx) {
		out[cur.Current.Lookup("_id").String()] = append(bson.Raw(nil), cur.Current...)
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(want, got map[string]bson.Raw) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d documents, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || string(g) != string(w) {
			return fmt.Sprintf("_id %s: got %v, want %v", id, g, w)
		}
	}
	return ""
}

// writeOtherCA writes a self-signed CA certificate that signed nothing of the gateway's.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "some other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
