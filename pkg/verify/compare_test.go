package verify

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func rv(t *testing.T, v any) bson.RawValue {
	t.Helper()
	b, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	return bson.Raw(b).Lookup("v")
}

// TestCompareFollowsMongoDBSortOrder lists values in the order MongoDB's
// documented comparison order sorts them; each must compare below the next.
func TestCompareFollowsMongoDBSortOrder(t *testing.T) {
	oid1, _ := bson.ObjectIDFromHex("5f0000000000000000000001")
	oid2, _ := bson.ObjectIDFromHex("5f0000000000000000000002")
	dec, _ := bson.ParseDecimal128("2.5")
	ordered := []any{
		bson.MinKey{},
		nil,
		-1.5,
		int32(1),
		dec,
		int64(3),
		"a",
		bson.Symbol("b"),
		"c",
		bson.D{{Key: "a", Value: 1}},
		bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}},
		bson.D{{Key: "b", Value: 0}},
		bson.A{1, 2},
		bson.Binary{Subtype: 0x80, Data: []byte{1}},
		bson.Binary{Subtype: 0, Data: []byte{1, 2}},
		oid1, oid2,
		false, true,
		bson.DateTime(1), bson.DateTime(2),
		bson.Timestamp{T: 1, I: 2}, bson.Timestamp{T: 2, I: 1},
		bson.Regex{Pattern: "a", Options: "i"},
		bson.MaxKey{},
	}
	for i := 0; i+1 < len(ordered); i++ {
		a, b := rv(t, ordered[i]), rv(t, ordered[i+1])
		if got := Compare(a, b); got != -1 {
			t.Errorf("Compare(%v, %v) got %d, want -1", a, b, got)
		}
		if got := Compare(b, a); got != 1 {
			t.Errorf("Compare(%v, %v) got %d, want 1", b, a, got)
		}
	}
	for _, v := range ordered {
		if got := Compare(rv(t, v), rv(t, v)); got != 0 {
			t.Errorf("Compare(%v, itself) got %d, want 0", v, got)
		}
	}
	if got := Compare(rv(t, int32(2)), rv(t, 2.0)); got != 0 {
		t.Errorf("int32 2 vs double 2: got %d, want 0 (numbers compare by value)", got)
	}
	if got := Compare(rv(t, int64(1)<<62+1), rv(t, int64(1)<<62)); got != 1 {
		t.Errorf("large int64s: got %d, want 1 (no float rounding)", got)
	}
}
