package kafkax

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPing(t *testing.T) {
	fk, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Close()
	up, err := kgo.NewClient(kgo.SeedBrokers(fk.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := Ping(ctx, up, fk.ListenAddrs()); err != nil {
		t.Fatalf("a live broker: got %v, want nil", err)
	}
	// Nothing listens on port 1.
	down, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := Ping(ctx, down, []string{"127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "--kafka-brokers") {
		t.Fatalf("no broker: got %v, want an error naming the brokers and the flag", err)
	}
}
