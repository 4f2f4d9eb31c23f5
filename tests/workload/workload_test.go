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
