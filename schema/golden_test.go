package schema

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// go test ./schema -run 'TestGolden|TestFuzzSeeds' -update rewrites the golden
// encodings in testdata/golden and the generated fuzz seeds in
// testdata/fuzz/FuzzDecodeValue (named regression cases there are kept).
var update = flag.Bool("update", false, "rewrite golden files and generated fuzz seeds")

// goldenName is insert.confluent.bin, insert.avro-single-object.bin,
// insert.json, ...
func goldenName(name string, enc Encoding) string {
	switch enc {
	case EncodingJSON:
		return name + ".json"
	case EncodingConnectJSON, EncodingDebezium:
		return name + "." + string(enc) + ".json"
	}
	return name + "." + string(enc) + ".bin"
}

// goldenSerdes returns Serdes whose Confluent schema id for the golden topic
// is 1 (a fresh in-memory registry assigns ids from 1).
func goldenSerdes(t testing.TB) map[Encoding]*Serde {
	t.Helper()
	serdes, _ := newSerdes(t)
	id, err := serdes[EncodingConfluent].Register(context.Background(), "golden")
	if err != nil || id != 1 {
		t.Fatalf("Register: id %d, %v; want id 1", id, err)
	}
	return serdes
}

// TestGolden pins the wire format: encoding each test event must produce the
// bytes in testdata/golden, and decoding those must give the event back. A
// change here is a wire-format change: see README.md before running -update.
func TestGolden(t *testing.T) {
	serdes := goldenSerdes(t)
	events := testEvents(t)
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range sortedNames(events) {
		for _, enc := range allEncodings {
			t.Run(name+"/"+string(enc), func(t *testing.T) {
				path := filepath.Join(dir, goldenName(name, enc))
				got, err := serdes[enc].EncodeValue("golden", events[name])
				if err != nil {
					t.Fatal(err)
				}
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("encoding differs from %s:\n got %q\nwant %q", path, trunc(got), trunc(want))
				}
				back, err := serdes[enc].DecodeValue(enc, want)
				if err != nil {
					t.Fatal(err)
				}
				checkEvent(t, back, events[name])
			})
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

var fuzzEncodings = [...]Encoding{EncodingConfluent, EncodingSingleObject, EncodingJSON, "unknown", EncodingConnectJSON, EncodingDebezium}

// TestFuzzSeeds writes the golden encodings as seed corpus files of
// FuzzDecodeValue (with -update) and checks that the seed directory exists.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeValue")
	if *update {
		serdes := goldenSerdes(t)
		events := testEvents(t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range sortedNames(events) {
			for i, enc := range fuzzEncodings {
				if serdes[enc] == nil {
					continue // "unknown", and debezium (never decoded)
				}
				val, err := serdes[enc].EncodeValue("golden", events[name])
				if err != nil {
					t.Fatal(err)
				}
				writeSeed(t, filepath.Join(dir, "seed-"+name+"-"+string(enc)), uint8(i), val)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("fuzz seed corpus %s: %v (%d files); run with -update", dir, err, len(entries))
	}
}

func writeSeed(t *testing.T, path string, enc uint8, value []byte) {
	t.Helper()
	body := fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n", enc, strconv.Quote(string(value)))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

var sentinels = []error{ErrBadHeader, ErrUnknownSchema, ErrTruncated, ErrMalformed, ErrUnknownEncoding, ErrLossyEncoding}

// FuzzDecodeValue feeds arbitrary values to DecodeValue. It must never panic,
// every error must wrap a documented sentinel, and every decoded event must
// re-encode in every encoding and decode back to itself (JSON only from
// JSON: Extended JSON cannot tell a keyword-shaped sub-document from the
// type it denotes). Seeds: testdata/fuzz/FuzzDecodeValue (generated seed-*
// files plus named crasher regressions).
func FuzzDecodeValue(f *testing.F) {
	serdes := goldenSerdes(f)
	s := serdes[EncodingConfluent]
	f.Add(uint8(0), []byte{0, 0, 0, 0, 1})
	f.Add(uint8(1), []byte{0xC3, 0x01})
	f.Add(uint8(2), []byte(`{"op":"heartbeat"}`))
	f.Fuzz(func(t *testing.T, enc uint8, value []byte) {
		encoding := fuzzEncodings[int(enc)%len(fuzzEncodings)]
		ev, err := s.DecodeValue(encoding, value)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if ev.Op == OpUnknown {
			return // decodable, never writable
		}
		for _, out := range allEncodings {
			if isJSON(out) && !isJSON(encoding) {
				continue
			}
			val, err := serdes[out].EncodeValue("golden", ev)
			if isJSON(out) && errors.Is(err, ErrInvalidEvent) {
				continue // non-canonical JSON input (e.g. unsorted regex options) that JSON cannot reproduce
			}
			if err != nil {
				t.Fatalf("re-encoding a decoded %s event as %s: %v", encoding, out, err)
			}
			back, err := serdes[out].DecodeValue(out, val)
			if err != nil {
				t.Fatalf("decoding re-encoded %s: %v", out, err)
			}
			checkEvent(t, back, ev)
		}
	})
}
