package mongox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestRedact(t *testing.T) {
	got := Redact("mongodb://u:secret@h1:27017,h2:27017/?replicaSet=rs0")
	if strings.Contains(got, "secret") || !strings.Contains(got, "u:xxxxx@") {
		t.Fatalf("got %q", got)
	}
}

func TestClassifiers(t *testing.T) {
	lost := mongo.CommandError{Code: 286, Name: "ChangeStreamHistoryLost"}
	retryable := mongo.CommandError{Code: 91, Labels: []string{"ResumableChangeStreamError"}}
	auth := mongo.CommandError{Code: 13, Name: "Unauthorized"}
	tests := []struct {
		name                      string
		err                       error
		transient, histLost, auth bool
	}{
		{name: "history lost", err: fmt.Errorf("reading: %w", lost), histLost: true},
		{name: "resumable", err: retryable, transient: true},
		{name: "unauthorized", err: auth, auth: true},
		{name: "cancelled", err: context.Canceled},
		{name: "plain", err: errors.New("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.transient {
				t.Errorf("IsTransient got %v, want %v", got, tt.transient)
			}
			if got := IsHistoryLost(tt.err); got != tt.histLost {
				t.Errorf("IsHistoryLost got %v, want %v", got, tt.histLost)
			}
			if got := IsAuthError(tt.err); got != tt.auth {
				t.Errorf("IsAuthError got %v, want %v", got, tt.auth)
			}
		})
	}
}

func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Connect(ctx, "source", ""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("got %v, want an empty-URI error", err)
	}
	if _, err := Connect(ctx, "source", "postgres://x"); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("got %v, want an invalid-URI error", err)
	}
	_, err := Connect(ctx, "source", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
}
