package schema

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/logbridge/logbridge/schema/internal/avroresolve"
)

func TestSchemasParse(t *testing.T) {
	for name, text := range map[string]string{"value": ValueSchema, "key": KeySchema} {
		c, err := goavro.NewCodec(text)
		if err != nil {
			t.Fatalf("%s schema: %v", name, err)
		}
		if name == "value" && !strings.Contains(c.CanonicalSchema(), `"name":"io.logbridge.Envelope"`) {
			t.Fatalf("value schema canonical form %s lacks io.logbridge.Envelope", c.CanonicalSchema())
		}
	}
	if Fingerprint() != current.codec.Rabin || Fingerprint() == 0 {
		t.Fatalf("Fingerprint() = %#x, want goavro's %#x", Fingerprint(), current.codec.Rabin)
	}
	versions, err := released()
	if err != nil || len(versions) == 0 {
		t.Fatalf("released schemas: %v, %d versions", err, len(versions))
	}
	if !versionLess("v2", "v10") || versionLess("v10", "v2") {
		t.Fatal("versionLess orders v10 before v2")
	}
}

// compatibilityProblems is the versioning gate between a released schema
// (old) and the current one (new): Avro BACKWARD (new reads old), Avro
// FORWARD (old reads new), the project's evolution rules, and a data check
// (random data written with old, resolved, read by goavro with new).
func compatibilityProblems(t *testing.T, old, new string) []error {
	t.Helper()
	oc, err := goavro.NewCodec(old)
	if err != nil {
		return []error{err}
	}
	nc, err := goavro.NewCodec(new)
	if err != nil {
		return []error{err}
	}
	ot, err := avroresolve.Parse(old)
	if err != nil {
		return []error{err}
	}
	nt, err := avroresolve.Parse(new)
	if err != nil {
		return []error{err}
	}
	var problems []error
	if err := avroresolve.Check(nt, ot); err != nil {
		problems = append(problems, errors.New("BACKWARD: "+err.Error()))
	}
	if err := avroresolve.Check(ot, nt); err != nil {
		problems = append(problems, errors.New("FORWARD: "+err.Error()))
	}
	if err := avroresolve.CheckEvolution(ot, nt); err != nil {
		problems = append(problems, errors.New("evolution rules: "+err.Error()))
	}
	if len(problems) > 0 {
		return problems
	}
	res, err := avroresolve.NewResolver(nt, ot)
	if err != nil {
		return []error{err}
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	for range 300 {
		bin, err := oc.BinaryFromNative(nil, avroresolve.RandomDatum(ot, rnd))
		if err != nil {
			return []error{err}
		}
		out, err := res.Transcode(nil, bin)
		if err != nil {
			return []error{errors.New("data check: " + err.Error())}
		}
		if _, rest, err := nc.NativeFromBinary(out); err != nil || len(rest) > 0 {
			return []error{errors.New("data check: current codec cannot read resolved data")}
		}
	}
	return nil
}

// TestReleasedSchemasCompatible checks every current schema against every
// released version (schema/avro/released/*).
func TestReleasedSchemasCompatible(t *testing.T) {
	versions, err := released()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		t.Run(v.version+"/value", func(t *testing.T) {
			for _, p := range compatibilityProblems(t, v.value, ValueSchema) {
				t.Error(p)
			}
		})
		t.Run(v.version+"/key", func(t *testing.T) {
			for _, p := range compatibilityProblems(t, v.key, KeySchema) {
				t.Error(p)
			}
		})
	}
}

// mutate returns ValueSchema with fn applied to its top-level fields.
func mutate(t *testing.T, fn func(fields []any) []any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ValueSchema), &m); err != nil {
		t.Fatal(err)
	}
	m["fields"] = fn(m["fields"].([]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func field(fields []any, name string) map[string]any {
	for _, f := range fields {
		if f.(map[string]any)["name"] == name {
			return f.(map[string]any)
		}
	}
	return nil
}

func without(fields []any, name string) []any {
	var out []any
	for _, f := range fields {
		if f.(map[string]any)["name"] != name {
			out = append(out, f)
		}
	}
	return out
}

// TestCompatibilityCheckCatchesBreakingChanges proves the gate above fails on
// deliberately incompatible schemas, and passes a legal evolution.
func TestCompatibilityCheckCatchesBreakingChanges(t *testing.T) {
	tests := []struct {
		name string
		new  string
		want []string // substrings of the reported problems; nil = compatible
	}{
		{
			name: "remove field without default",
			new:  mutate(t, func(f []any) []any { return without(f, "clusterTime") }),
			want: []string{"FORWARD: incompatible schemas: Envelope.clusterTime: reader field is missing", "Envelope.clusterTime: field removed or renamed"},
		},
		{
			name: "remove field with default",
			new:  mutate(t, func(f []any) []any { return without(f, "epoch") }),
			want: []string{"Envelope.epoch: field removed or renamed"},
		},
		{
			name: "change a type",
			new: mutate(t, func(f []any) []any {
				field(f, "epoch")["type"], field(f, "epoch")["default"] = "string", "0"
				return f
			}),
			want: []string{"BACKWARD: incompatible schemas: Envelope.epoch: writer type long cannot be read as string", "type changed from long to string"},
		},
		{
			name: "add field without default",
			new: mutate(t, func(f []any) []any {
				return append(f, map[string]any{"name": "extra", "type": "string"})
			}),
			want: []string{"BACKWARD: incompatible schemas: Envelope.extra: reader field is missing from the writer schema and has no default"},
		},
		{
			name: "rename field",
			new: mutate(t, func(f []any) []any {
				field(f, "source")["name"] = "origin"
				return f
			}),
			want: []string{"Envelope.source: field removed or renamed"},
		},
		{
			name: "remove enum symbol",
			new: mutate(t, func(f []any) []any {
				op := field(f, "op")["type"].(map[string]any)
				op["symbols"] = []any{"snapshot", "insert", "update", "replace", "delete", "ddl", "marker", "unknown"}
				return f
			}),
			want: []string{"enum symbols may only be appended"},
		},
		{
			name: "legal: append enum symbol, add optional field",
			new: mutate(t, func(f []any) []any {
				op := field(f, "op")["type"].(map[string]any)
				op["symbols"] = append(op["symbols"].([]any), "teleport")
				return append(f, map[string]any{"name": "extra", "type": []any{"null", "string"}, "default": nil})
			}),
		},
	}
	versions, err := released()
	if err != nil {
		t.Fatal(err)
	}
	old := versions[len(versions)-1].value
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := compatibilityProblems(t, old, tt.new)
			all := ""
			for _, p := range problems {
				all += p.Error() + "\n"
			}
			if tt.want == nil && len(problems) > 0 {
				t.Fatalf("got problems %s, want none", all)
			}
			if tt.want != nil && len(problems) == 0 {
				t.Fatal("got no problems for an incompatible schema")
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q lack %q", all, w)
				}
			}
		})
	}
	if p := compatibilityProblems(t, `"bytes"`, `"long"`); len(p) == 0 {
		t.Fatal("key bytes → long: got no problems")
	}
}

// olderEnvelope is a hypothetical earlier envelope version: fewer ops, no
// transaction, DDL or marker fields, ns as a plain string pair in another
// order. Data written with it must still decode through the registry.
const olderEnvelope = `{"type":"record","name":"Envelope","namespace":"io.logbridge","fields":[
	{"name":"op","type":{"type":"enum","name":"Op","symbols":["snapshot","insert","update","replace","delete"]}},
	{"name":"ns","type":{"type":"record","name":"Namespace","fields":[{"name":"coll","type":"string"},{"name":"db","type":"string"}]}},
	{"name":"documentKey","type":["null","bytes"],"default":null},
	{"name":"fullDocument","type":["null","bytes"],"default":null},
	{"name":"clusterTime","type":{"type":"record","name":"ClusterTime","fields":[{"name":"t","type":"int"},{"name":"i","type":"int"}]}},
	{"name":"source","type":"string"},
	{"name":"retired","type":"string","default":""}
]}`

func TestDecodeOlderAndNewerRegisteredVersions(t *testing.T) {
	reg, hc := fakeRegistry(t)
	s, err := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingConfluent, Registry: RegistryConfig{URL: reg.URL(), HTTPClient: hc}})
	if err != nil {
		t.Fatal(err)
	}
	key := idKey(t, 5)
	full := allTypesDoc(t)
	confluent := func(id int, codec *goavro.Codec, native map[string]any) []byte {
		t.Helper()
		b, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, byte(id)}, native)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("older", func(t *testing.T) {
		reg.SeedSchema("shop.orders-value", 1, 41, sr.Schema{Schema: olderEnvelope})
		codec, err := goavro.NewCodec(olderEnvelope)
		if err != nil {
			t.Fatal(err)
		}
		val := confluent(41, codec, map[string]any{
			"op": "update", "ns": map[string]any{"db": "shop", "coll": "orders"},
			"documentKey": goavro.Union("bytes", []byte(key)), "fullDocument": goavro.Union("bytes", []byte(full)),
			"clusterTime": map[string]any{"t": int32(100), "i": int32(2)}, "source": "east", "retired": "x",
		})
		got, err := s.DecodeValue(EncodingConfluent, val)
		if err != nil {
			t.Fatal(err)
		}
		checkEvent(t, got, &Event{Op: OpUpdate, NS: Namespace{DB: "shop", Coll: "orders"}, DocumentKey: key, FullDocument: full,
			ClusterTime: ClusterTime{T: 100, I: 2}, Source: "east"})
	})

	t.Run("newer", func(t *testing.T) {
		newer := mutate(t, func(f []any) []any {
			op := field(f, "op")["type"].(map[string]any)
			op["symbols"] = append(op["symbols"].([]any), "teleport")
			return append(f, map[string]any{"name": "extra", "type": []any{"null", "string"}, "default": nil})
		})
		reg.SeedSchema("shop.orders-value", 2, 42, sr.Schema{Schema: newer})
		codec, err := goavro.NewCodec(newer)
		if err != nil {
			t.Fatal(err)
		}
		ev := &Event{Op: OpHeartbeat, NS: Namespace{DB: "shop"}, ClusterTime: ClusterTime{T: 1}, Source: "east"}
		native := eventNative(ev)
		native["op"] = "teleport"
		native["extra"] = goavro.Union("string", "new data")
		got, err := s.DecodeValue(EncodingConfluent, confluent(42, codec, native))
		if err != nil {
			t.Fatal(err)
		}
		ev.Op = OpUnknown
		checkEvent(t, got, ev)
	})

	t.Run("unresolvable", func(t *testing.T) {
		reg.SeedSchema("other-value", 1, 43, sr.Schema{Schema: `{"type":"record","name":"Envelope","namespace":"io.logbridge","fields":[{"name":"op","type":"string"}]}`})
		reg.SeedSchema("proto-value", 1, 44, sr.Schema{Schema: `syntax = "proto3"; message M {}`, Type: sr.TypeProtobuf})
		for _, id := range []int{43, 44} {
			if _, err := s.DecodeValue(EncodingConfluent, []byte{0, 0, 0, 0, byte(id), 0}); !errors.Is(err, ErrUnknownSchema) {
				t.Fatalf("id %d: got %v, want ErrUnknownSchema", id, err)
			}
		}
	})
}

func TestRegisterSetsBackward(t *testing.T) {
	reg, hc := fakeRegistry(t)
	s, err := NewSerde(context.Background(), SerdeConfig{Encoding: EncodingConfluent, Registry: RegistryConfig{URL: reg.URL(), HTTPClient: hc}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetCompat("already-full-value", sr.CompatFull); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"plain", "already-full"} {
		id, err := s.Register(context.Background(), topic)
		if err != nil || id <= 0 {
			t.Fatalf("Register(%s): %d, %v", topic, id, err)
		}
		again, err := s.Register(context.Background(), topic)
		if err != nil || again != id {
			t.Fatalf("Register(%s) twice: %d then %d, %v", topic, id, again, err)
		}
	}
	cl, _ := sr.NewClient(sr.URLs(reg.URL()), sr.HTTPClient(hc))
	for subject, want := range map[string]sr.CompatibilityLevel{"plain-value": sr.CompatBackward, "already-full-value": sr.CompatFull} {
		res := cl.Compatibility(context.Background(), subject)[0]
		if res.Err != nil || res.Level != want {
			t.Fatalf("%s compatibility: got %v, %v; want %v", subject, res.Level, res.Err, want)
		}
	}
	ss, err := cl.SchemaByVersion(context.Background(), "plain-value", -1)
	if err != nil || ss.Schema.Schema != ValueSchema {
		t.Fatalf("registered schema: %v", err)
	}
}

// TestContractVersionReleased: the version --version prints and records
// carry in /api/v1/progress is a released copy, byte for byte the schemas this
// build writes, and the newest one.
func TestContractVersionReleased(t *testing.T) {
	versions, err := released()
	if err != nil || len(versions) == 0 {
		t.Fatalf("released schemas: %v, %d versions", err, len(versions))
	}
	last := versions[len(versions)-1]
	if last.version != ContractVersion {
		t.Fatalf("ContractVersion %s, but the newest released schema is %s: set ContractVersion to it", ContractVersion, last.version)
	}
	if last.value != ValueSchema || last.key != KeySchema {
		t.Fatalf("schema/avro/*.avsc differ from released/%s: release them as the next version and set ContractVersion", ContractVersion)
	}
}
