package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newFS() (*flag.FlagSet, *string, *int, *StringList) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := fs.String("kafka-brokers", "default:9092", "")
	n := fs.Int("partitions", 1, "")
	var l StringList
	fs.Var(&l, "include", "")
	return fs, s, n, &l
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("kafka-brokers: file:9092\npartitions: 7\ninclude: [a.b, c.*]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantBrokers string
		wantParts   int
		wantInclude string
	}{
		{name: "defaults", wantBrokers: "default:9092", wantParts: 1},
		{name: "file", args: []string{"--config", file}, wantBrokers: "file:9092", wantParts: 7, wantInclude: "a.b,c.*"},
		{name: "env over file", args: []string{"--config", file}, env: map[string]string{"LB_KAFKA_BROKERS": "env:9092"}, wantBrokers: "env:9092", wantParts: 7, wantInclude: "a.b,c.*"},
		{name: "flag over env", args: []string{"--config", file, "--kafka-brokers", "flag:9092"}, env: map[string]string{"LB_KAFKA_BROKERS": "env:9092"}, wantBrokers: "flag:9092", wantParts: 7, wantInclude: "a.b,c.*"},
		{name: "config from env", env: map[string]string{"LB_CONFIG": file}, wantBrokers: "file:9092", wantParts: 7, wantInclude: "a.b,c.*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs, s, n, l := newFS()
			if err := Parse(fs, "LB", tt.args); err != nil {
				t.Fatal(err)
			}
			if *s != tt.wantBrokers || *n != tt.wantParts || l.String() != tt.wantInclude {
				t.Fatalf("got brokers=%q partitions=%d include=%q, want %q %d %q", *s, *n, l.String(), tt.wantBrokers, tt.wantParts, tt.wantInclude)
			}
		})
	}
}

func TestErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kafka-brokerz: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, _, _, _ := newFS()
	err := Parse(fs, "LB", []string{"--config", bad})
	if err == nil || !strings.Contains(err.Error(), "kafka-brokerz") {
		t.Fatalf("got %v, want an error naming the unknown setting", err)
	}
	t.Setenv("LB_PARTITIONS", "many")
	fs, _, _, _ = newFS()
	err = Parse(fs, "LB", nil)
	if err == nil || !strings.Contains(err.Error(), "LB_PARTITIONS") {
		t.Fatalf("got %v, want an error naming the variable", err)
	}
}

func TestOnCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{name: "double dash", args: []string{"--kafka-sasl-password", "x"}, want: true},
		{name: "equals", args: []string{"-kafka-sasl-password=x"}, want: true},
		{name: "other flag", args: []string{"--kafka-sasl-password-file", "/p"}},
		{name: "a value spelled like the flag warns too (harmless)", args: []string{"--kafka-sasl-user", "kafka-sasl-password"}, want: true},
		{name: "after terminator", args: []string{"--", "--kafka-sasl-password=x"}},
		{name: "absent", args: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OnCommandLine(tt.args, "kafka-sasl-password"); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	for in, want := range map[string]Bytes{"0": 0, "1048576": 1 << 20, "8MiB": 8 << 20, "512KiB": 512 << 10, "2g": 2 << 30, " 3 MB ": 3 << 20} {
		var b Bytes
		if err := b.Set(in); err != nil || b != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "8XB", "MiB", "1.5MiB"} {
		var b Bytes
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, b)
		}
	}
	for b, want := range map[Bytes]string{0: "0", 8 << 20: "8MiB", 512 << 10: "512KiB", 1000: "1000", 1 << 30: "1GiB"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}
