package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile parses arbitrary YAML as a --config file. It must never
// panic, every error must name the file, and an accepted file must have
// set only flags that exist. Seeds: testdata/fuzz/FuzzConfigFile.
func FuzzConfigFile(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte) {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		fs, brokers, _, _ := newFS()
		err := Parse(fs, "LBFUZZ", []string{"--config", path})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if *brokers == "" && !strings.Contains(string(yaml), "kafka-brokers") {
			t.Fatalf("kafka-brokers emptied by a file that does not set it: %q", yaml)
		}
	})
}
