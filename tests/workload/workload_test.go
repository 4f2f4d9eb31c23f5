package workload

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestSameSeedSameDocuments checks reproducibility without a server: the
// document and _id streams depend only on the seed.
func TestSameSeedSameDocuments(t *testing.T) {
	gen := func(seed uint64) []byte {
		g := New(nil, Options{Seed: seed, DBs: []string{"a"}})
		var out []byte
		for i := 0; i < 50; i++ {
			b, err := bson.Marshal(g.newDoc(g.pick()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
		return out
	}
	a, b, c := gen(1), gen(1), gen(2)
	if string(a) != string(b) {
		t.Fatal("same seed gave different documents")
	}
	if string(a) == string(c) {
		t.Fatal("different seeds gave the same documents")
	}
}

// TestExcludeTypes checks that excluded types never appear and the others do.
func TestExcludeTypes(t *testing.T) {
	g := New(nil, Options{Seed: 3, DBs: []string{"a"}, ExcludeTypes: []string{"symbol", "binData:2", "dbPointer"}})
	seen := map[bson.Type]bool{}
	subtypes := map[byte]bool{}
	for i := 0; i < 200; i++ {
		raw := bson.Raw(mustMarshal(g.newDoc(g.pick())))
		elems, _ := raw.Elements()
		for _, e := range elems {
			v := e.Value()
			seen[v.Type] = true
			if v.Type == bson.TypeBinary {
				st, _ := v.Binary()
				subtypes[st] = true
			}
		}
	}
	for _, bad := range []bson.Type{bson.TypeSymbol, bson.TypeDBPointer} {
		if seen[bad] {
			t.Errorf("excluded type %v generated", bad)
		}
	}
	if subtypes[2] {
		t.Error("excluded binary subtype 2 generated")
	}
	for _, want := range []bson.Type{bson.TypeCodeWithScope, bson.TypeDecimal128, bson.TypeUndefined, bson.TypeMinKey, bson.TypeTimestamp} {
		if !seen[want] {
			t.Errorf("type %v never generated", want)
		}
	}
	if !subtypes[5] || !subtypes[0x80] {
		t.Errorf("binary subtypes generated: %v", subtypes)
	}
}
