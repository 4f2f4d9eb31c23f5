package inspect

import (
	"io"
	"testing"
)

// FuzzKeyFilter parses arbitrary --key values (Extended JSON) and compares
// arbitrary record keys with them. It must never panic, and an accepted
// --key document must equal itself as a record key. Seeds:
// testdata/fuzz/FuzzKeyFilter. (This file moves with the package.)
func FuzzKeyFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string, recordKey []byte) {
		cfg, err := parseArgs([]string{"--topic", "t", "--key", key}, io.Discard)
		if err != nil {
			keysEqual(recordKey, nil)
			return
		}
		if cfg.key == nil {
			// An empty --key filters nothing (found by this fuzzer: the
			// first version of this test expected a document).
			return
		}
		if !keysEqual(cfg.key, cfg.key) {
			t.Fatalf("--key %q does not equal itself", key)
		}
		keysEqual(recordKey, cfg.key)
	})
}
