package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/linkedin/goavro/v2"

	"github.com/logbridge/logbridge/schema/internal/avroresolve"
)

//go:embed avro/*.avsc avro/released/*/*.avsc
var avroFS embed.FS

// ValueSchema is the Avro schema of record values (the io.logbridge.Envelope
// record), as embedded from schema/avro/envelope.avsc.
var ValueSchema = mustRead("avro/envelope.avsc")

// KeySchema documents the record key: Avro "bytes" holding the raw BSON
// document key (schema/avro/key.avsc). Keys are not Avro-framed and the serde
// does not register this schema; see the package documentation.
var KeySchema = mustRead("avro/key.avsc")

func mustRead(name string) string {
	b, err := avroFS.ReadFile(name)
	if err != nil {
		panic(err) // the file is embedded at build time
	}
	return string(b)
}

// compiled is a parsed schema version.
type compiled struct {
	name  string // "current" or "v1", ...
	codec *goavro.Codec
	typ   *avroresolve.Type
}

func compile(name, text string) (*compiled, error) {
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	typ, err := avroresolve.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	return &compiled{name: name, codec: codec, typ: typ}, nil
}

// current is the envelope schema this build writes; its binary layout is
// hand-coded in avro.go (tests cross-check it against goavro).
var current = func() *compiled {
	c, err := compile("current", ValueSchema)
	if err != nil {
		panic(err) // embedded at build time; TestSchemasParse covers it
	}
	return c
}()

// Fingerprint is the CRC-64-AVRO (Rabin) fingerprint of the parsing canonical
// form of ValueSchema, written little-endian after 0xC3 0x01 in the Avro
// single-object encoding.
func Fingerprint() uint64 { return current.codec.Rabin }

// releasedVersion is one released copy of the schemas
// (schema/avro/released/<version>/).
type releasedVersion struct {
	version string
	value   string // envelope.avsc
	key     string // key.avsc
}

// released lists the released schema versions in version order.
func released() ([]releasedVersion, error) {
	dirs, err := fs.ReadDir(avroFS, "avro/released")
	if err != nil {
		return nil, err
	}
	var out []releasedVersion
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := path.Join("avro/released", d.Name())
		value, err := fs.ReadFile(avroFS, dir+"/envelope.avsc")
		if err != nil {
			return nil, err
		}
		key, err := fs.ReadFile(avroFS, dir+"/key.avsc")
		if err != nil {
			return nil, err
		}
		out = append(out, releasedVersion{version: d.Name(), value: string(value), key: string(key)})
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i].version, out[j].version) })
	return out, nil
}

// versionLess orders "v2" before "v10".
func versionLess(a, b string) bool {
	a, b = strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
