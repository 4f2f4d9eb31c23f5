package kafkax

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no brokers", wantErr: "kafka-brokers is required"},
		{name: "brokers", args: []string{"--kafka-brokers", "k1:9092"}},
		{name: "no port", args: []string{"--kafka-brokers", "localhost"}, wantErr: "has no port"},
		{name: "bad mechanism", args: []string{"--kafka-brokers", "k1:9092", "--kafka-sasl-mechanism", "GSSAPI"}, wantErr: "not supported"},
		{name: "scram without user", args: []string{"--kafka-brokers", "k1:9092", "--kafka-sasl-mechanism", "SCRAM-SHA-512"}, wantErr: "needs kafka-sasl-user"},
		{name: "scram without password", args: []string{"--kafka-brokers", "k1:9092", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "u"}, wantErr: "a password"},
		{name: "cert without key", args: []string{"--kafka-brokers", "k1:9092", "--kafka-tls-cert-file", "c.pem"}, wantErr: "together"},
		{name: "scram", args: []string{"--kafka-brokers", "k1:9092", "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-user", "u", "--kafka-sasl-password", "p", "--kafka-tls"}},
		{name: "missing password file", args: []string{"--kafka-brokers", "k1:9092", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "u", "--kafka-sasl-password-file", "/nonexistent/pw"}, wantErr: "reading kafka-sasl-password-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.RegisterFlags(fs, "test")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			_, err := c.ClientOpts()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestResolvePassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{SASLPasswordFile: path}
	if err := c.ResolvePassword(); err != nil || c.SASLPassword != "s3cret-from-file" {
		t.Fatalf("got %q (%v), want the file's password without its newline", c.SASLPassword, err)
	}
	c = Config{SASLPasswordFile: path, SASLPassword: "other"}
	if err := c.ResolvePassword(); err == nil || !strings.Contains(err.Error(), "give the password once") {
		t.Fatalf("got %v, want the both-set error", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	c = Config{SASLPasswordFile: empty}
	if err := c.ResolvePassword(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("got %v, want the empty-file error", err)
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{kerr.NotLeaderForPartition, true},
		{fmt.Errorf("wrapped: %w", kerr.RequestTimedOut), true},
		{kerr.TopicAuthorizationFailed, false},
		{context.Canceled, false},
		{errors.Join(context.Canceled, kerr.NotLeaderForPartition), false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.want {
			t.Errorf("IsTransient(%v) got %v, want %v", tt.err, got, tt.want)
		}
	}
}
