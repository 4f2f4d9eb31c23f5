package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Exiter is a running connector whose unexpected end WaitSameDocuments
// reports at once (tests/procs.Proc is one).
type Exiter interface {
	Exited() error
}

// WaitSameDocuments waits until dst holds exactly src's documents, byte for
// byte, failing when ctx ends first or when one of running exits.
func WaitSameDocuments(t testing.TB, ctx context.Context, src, dst *mongo.Collection, running ...Exiter) {
	t.Helper()
	var last string
	for {
		for _, p := range running {
			if err := p.Exited(); err != nil {
				t.Fatalf("a connector exited: %v", err)
			}
		}
		want, got := documentsByID(t, ctx, src), documentsByID(t, ctx, dst)
		if last = diffDocuments(want, got); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the destination did not converge: %s", last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func documentsByID(t testing.TB, ctx context.Context, c *mongo.Collection) map[string]bson.Raw {
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

func diffDocuments(want, got map[string]bson.Raw) string {
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
