package avroresolve

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
)

func mustParse(t *testing.T, schema string) (*Type, *goavro.Codec) {
	t.Helper()
	c, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatalf("goavro rejects schema %s: %v", schema, err)
	}
	typ, err := Parse(schema)
	if err != nil {
		t.Fatalf("Parse(%s): %v", schema, err)
	}
	return typ, c
}

const personV1 = `{"type":"record","name":"P","namespace":"x","fields":[
	{"name":"name","type":"string"},
	{"name":"age","type":"int"},
	{"name":"kind","type":{"type":"enum","name":"K","symbols":["a","b"],"default":"a"}},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"nick","type":["null","string"],"default":null}
]}`

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		reader  string
		writer  string
		wantErr string // "" = compatible
	}{
		{name: "identical", reader: personV1, writer: personV1},
		{
			name:   "reader adds field with default",
			writer: personV1,
			reader: strings.Replace(personV1, `{"name":"name","type":"string"},`, `{"name":"name","type":"string"},{"name":"title","type":"string","default":"x"},`, 1),
		},
		{
			name:    "reader adds field without default",
			writer:  personV1,
			reader:  strings.Replace(personV1, `{"name":"name","type":"string"},`, `{"name":"name","type":"string"},{"name":"title","type":"string"},`, 1),
			wantErr: "P.title: reader field is missing",
		},
		{
			name:   "reader drops field (writer field skipped)",
			writer: personV1,
			reader: strings.Replace(personV1, `{"name":"age","type":"int"},`, ``, 1),
		},
		{
			name:   "int promoted to long",
			writer: personV1,
			reader: strings.Replace(personV1, `{"name":"age","type":"int"}`, `{"name":"age","type":"long"}`, 1),
		},
		{
			name:    "long not demoted to int",
			reader:  personV1,
			writer:  strings.Replace(personV1, `{"name":"age","type":"int"}`, `{"name":"age","type":"long"}`, 1),
			wantErr: "P.age: writer type long cannot be read as int",
		},
		{
			name:    "type change string to int",
			writer:  personV1,
			reader:  strings.Replace(personV1, `{"name":"name","type":"string"}`, `{"name":"name","type":"int"}`, 1),
			wantErr: "P.name: writer type string cannot be read as int",
		},
		{
			name:   "enum symbol unknown to reader with default",
			reader: personV1,
			writer: strings.Replace(personV1, `["a","b"]`, `["a","b","c"]`, 1),
		},
		{
			name:    "enum symbol unknown to reader without default",
			reader:  strings.Replace(personV1, `,"default":"a"`, ``, 1),
			writer:  strings.Replace(personV1, `["a","b"]`, `["a","b","c"]`, 1),
			wantErr: `writer symbol "c" is unknown`,
		},
		{
			name:   "field renamed with alias",
			writer: personV1,
			reader: strings.Replace(personV1, `{"name":"name","type":"string"}`, `{"name":"fullName","aliases":["name"],"type":"string"}`, 1),
		},
		{
			name:    "record renamed",
			writer:  personV1,
			reader:  strings.Replace(personV1, `"name":"P"`, `"name":"Q"`, 1),
			wantErr: "writer record x.P does not match reader record x.Q",
		},
		{
			name:    "union branch dropped",
			writer:  personV1,
			reader:  strings.Replace(personV1, `["null","string"]`, `["null","int"]`, 1),
			wantErr: "P.nick[1]: writer union branch string matches no branch",
		},
		{
			name:   "non-union widened to union",
			writer: personV1,
			reader: strings.Replace(personV1, `{"name":"age","type":"int"}`, `{"name":"age","type":["null","long"]}`, 1),
		},
		{
			name:   "fields reordered",
			writer: personV1,
			reader: `{"type":"record","name":"P","namespace":"x","fields":[
				{"name":"nick","type":["null","string"],"default":null},
				{"name":"tags","type":{"type":"array","items":"string"}},
				{"name":"age","type":"double"},
				{"name":"name","type":"bytes"},
				{"name":"extra","type":{"type":"map","values":"long"},"default":{"a":1}}
			]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rc := mustParse(t, tt.reader)
			w, wc := mustParse(t, tt.writer)
			err := Check(r, w)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: got %v, want nil", err)
				}
				roundTrip(t, r, w, rc, wc, 200)
				return
			}
			var ie *IncompatibleError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check: got %v, want an IncompatibleError containing %q", err, tt.wantErr)
			}
			if _, err := NewResolver(r, w); err == nil {
				t.Fatal("NewResolver: got nil error for incompatible schemas")
			}
		})
	}
}

// roundTrip writes random data with the writer codec, transcodes it and
// decodes it with the reader codec, which must consume every byte.
func roundTrip(t *testing.T, r, w *Type, rc, wc *goavro.Codec, n int) {
	t.Helper()
	res, err := NewResolver(r, w)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		datum := RandomDatum(w, rnd)
		bin, err := wc.BinaryFromNative(nil, datum)
		if err != nil {
			t.Fatalf("datum %d: writer encode: %v", i, err)
		}
		out, err := res.Transcode(nil, bin)
		if err != nil {
			t.Fatalf("datum %d: Transcode: %v", i, err)
		}
		if _, rest, err := rc.NativeFromBinary(out); err != nil || len(rest) != 0 {
			t.Fatalf("datum %d: reader decode: %v (%d bytes left)", i, err, len(rest))
		}
	}
}

func TestTranscodeValues(t *testing.T) {
	writer := personV1
	reader := `{"type":"record","name":"P","namespace":"x","fields":[
		{"name":"nick","type":["null","string"],"default":null},
		{"name":"age","type":"double"},
		{"name":"kind","type":{"type":"enum","name":"K","symbols":["b","a"]}},
		{"name":"title","type":"string","default":"dr"},
		{"name":"name","type":["null","bytes"]}
	]}`
	r, rc := mustParse(t, reader)
	w, wc := mustParse(t, writer)
	bin, err := wc.BinaryFromNative(nil, map[string]any{
		"name": "ann", "age": int32(42), "kind": "b", "tags": []any{"t1", "t2"},
		"nick": goavro.Union("string", "annie"),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewResolver(r, w)
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.Transcode(nil, bin)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := rc.NativeFromBinary(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"nick": map[string]any{"string": "annie"}, "age": float64(42), "kind": "b",
		"title": "dr", "name": map[string]any{"bytes": []byte("ann")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestTranscodeRejectsBadInput(t *testing.T) {
	w, _ := mustParse(t, personV1)
	res, err := NewResolver(w, w)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "empty", in: nil, want: ErrTruncated},
		{name: "string length beyond input", in: []byte{0x20, 'a'}, want: ErrTruncated},
		{name: "negative length", in: []byte{0x01}, want: ErrMalformed},
		{name: "overlong varint", in: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, want: ErrMalformed},
		{name: "enum out of range", in: []byte{0x00, 0x00, 0x08}, want: ErrMalformed},
		{name: "huge array count", in: []byte{0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f}, want: ErrTruncated},
		{name: "union out of range", in: []byte{0x00, 0x00, 0x00, 0x00, 0x04}, want: ErrMalformed},
		{name: "trailing bytes", in: []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := res.Transcode(nil, tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRecursiveSchema(t *testing.T) {
	const list = `{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"],"default":null}]}`
	const list2 = `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"],"default":null},{"name":"v","type":"double"},{"name":"w","type":"int","default":7}]}`
	r, rc := mustParse(t, list2)
	w, wc := mustParse(t, list)
	if err := Check(r, w); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, r, w, rc, wc, 100)
	// A deeply nested datum is refused, not a stack overflow.
	var bin []byte
	for range 10000 {
		bin = append(bin, 0x02, 0x02) // v=1, next=branch 1
	}
	res, _ := NewResolver(r, w)
	if _, err := res.Transcode(nil, bin); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

func FuzzTranscode(f *testing.F) {
	w, err := Parse(personV1)
	if err != nil {
		f.Fatal(err)
	}
	res, err := NewResolver(w, w)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x06, 'a', 'n', 'n', 0x54, 0x02, 0x02, 0x02, 'x', 0x00, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = res.Transcode(nil, in)
	})
}
