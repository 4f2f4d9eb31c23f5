package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestSettingsRefused: every out-of-range setting is refused before anything
// is dialled (the URIs point nowhere, so a dial would fail differently).
func TestSettingsRefused(t *testing.T) {
	ok := []string{"--source-uri", "mongodb://127.0.0.1:1/", "--dest-uri", "mongodb://127.0.0.1:2/"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no source", args: []string{"--dest-uri", "mongodb://127.0.0.1:2/"}, want: "source-uri is required"},
		{name: "no destination", args: []string{"--source-uri", "mongodb://127.0.0.1:1/"}, want: "dest-uri is required"},
		{name: "zero range size", args: append(ok, "--range-size", "0"), want: "range-size 0"},
		{name: "negative range size", args: append(ok, "--range-size", "-5"), want: "range-size -5"},
		{name: "negative max reported", args: append(ok, "--max-reported", "-1"), want: "max-reported -1"},
		{name: "bad include", args: append(ok, "--include", "nodot"), want: "include"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestConnectErrorRedacted: a connection failure names the server without
// its password.
func TestConnectErrorRedacted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := run(ctx, []string{"--source-uri", "mongodb://u:VERIFYpassMARK@127.0.0.1:1/?serverSelectionTimeoutMS=100",
		"--dest-uri", "mongodb://127.0.0.1:2/"}, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "VERIFYpassMARK") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("got %v, want an unreachable error without the password", err)
	}
}
