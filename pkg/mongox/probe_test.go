package mongox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProberReportsAnUnreachableClusterWithoutTheSecret(t *testing.T) {
	p := NewProber()
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	err := p.Ping(ctx, "destination", "mongodb://u:hunter22secret@127.0.0.1:1/?serverSelectionTimeoutMS=300&directConnection=true")
	if err == nil || !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "destination at mongodb://") {
		t.Fatalf("got %v, want ErrUnreachable naming the destination", err)
	}
	if strings.Contains(err.Error(), "hunter22secret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if err := p.Ping(ctx, "source", "mongodb://%zz"); err == nil || !strings.Contains(err.Error(), "fix the URI") {
		t.Fatalf("bad URI: got %v, want a URI error", err)
	}
	p.Close()
	if err := p.Ping(ctx, "source", "mongodb://127.0.0.1:1/"); err == nil {
		t.Fatal("ping after Close: got nil, want an error")
	}
}
