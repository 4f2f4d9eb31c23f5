package kafkax

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
		{name: "defaults"},
		{name: "no port", args: []string{"--kafka-brokers", "localhost"}, wantErr: "has no port"},
		{name: "bad mechanism", args: []string{"--kafka-sasl-mechanism", "GSSAPI"}, wantErr: "not supported"},
		{name: "scram without user", args: []string{"--kafka-sasl-mechanism", "SCRAM-SHA-512"}, wantErr: "needs kafka-sasl-user"},
		{name: "cert without key", args: []string{"--kafka-tls-cert-file", "c.pem"}, wantErr: "together"},
		{name: "scram", args: []string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-user", "u", "--kafka-sasl-password", "p", "--kafka-tls"}},
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
