package mongoshim

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func rv(t *testing.T, v any) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatalf("marshalling %#v: %v", v, err)
	}
	return bson.RawValue{Type: typ, Value: data}
}

func dec(t *testing.T, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func oid(last byte) bson.ObjectID {
	var o bson.ObjectID
	o[11] = last
	return o
}

// TestCompareOrder: each value of the list sorts strictly after the one
// before it, in MongoDB's documented order across types and within each.
func TestCompareOrder(t *testing.T) {
	asc := []struct {
		name string
		v    any
	}{
		{"MinKey", bson.MinKey{}},
		{"undefined", bson.Undefined{}},
		{"null", bson.Null{}},
		{"NaN, below every number", math.NaN()},
		{"-Infinity", math.Inf(-1)},
		{"-1e300, beyond int64", -1e300},
		{"min int64", int64(math.MinInt64)},
		{"decimal -1.5", dec(t, "-1.5")},
		{"int32 -1", int32(-1)},
		{"double -0.5", -0.5},
		{"int32 0", int32(0)},
		{"decimal 0.1, below the double nearest 0.1", dec(t, "0.1")},
		{"double 0.1", 0.1},
		{"int32 1", int32(1)},
		{"double 2^53", 9007199254740992.0},
		{"int64 2^53+1, not representable as a double", int64(9007199254740993)},
		{"max int64", int64(math.MaxInt64)},
		{"double 2^63, just above max int64", 9223372036854775808.0},
		{"decimal 1E+400, beyond any double", dec(t, "1E+400")},
		{"+Infinity", math.Inf(1)},
		{"empty string", ""},
		{"string A", "A"},
		{"symbol B, among strings", bson.Symbol("B")},
		{"string a", "a"},
		{"string z", "z"},
		{"string é, by UTF-8 bytes after z", "é"},
		{"empty document", bson.D{}},
		{"{b: null}: a lower type wins over a lower name", bson.D{{Key: "b", Value: nil}}},
		{"{a: 1}", bson.D{{Key: "a", Value: int32(1)}}},
		{"{a: 1, b: 1}: a longer document with the same prefix", bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: int32(1)}}},
		{"{a: 2}", bson.D{{Key: "a", Value: 2.0}}},
		{"{b: 1}", bson.D{{Key: "b", Value: int32(1)}}},
		{"{a: 'x'}", bson.D{{Key: "a", Value: "x"}}},
		{"empty array", bson.A{}},
		{"[1]", bson.A{int32(1)}},
		{"[1, 2]", bson.A{int32(1), int32(2)}},
		{"[2]", bson.A{int32(2)}},
		{"['a']", bson.A{"a"}},
		{"binary of 1 byte, subtype 5: shorter first", bson.Binary{Subtype: 5, Data: []byte("z")}},
		{"binary 'aa' subtype 0", bson.Binary{Subtype: 0, Data: []byte("aa")}},
		{"binary 'ab' subtype 0", bson.Binary{Subtype: 0, Data: []byte("ab")}},
		{"binary 'aa' subtype 4: subtype before bytes", bson.Binary{Subtype: 4, Data: []byte("aa")}},
		{"ObjectId ...01", oid(1)},
		{"ObjectId ...02", oid(2)},
		{"false", false},
		{"true", true},
		{"date before 1970", bson.DateTime(-1)},
		{"date 0", bson.DateTime(0)},
		{"date 2001", bson.DateTime(1_000_000_000_000)},
		{"timestamp 1/5", bson.Timestamp{T: 1, I: 5}},
		{"timestamp 2/0", bson.Timestamp{T: 2, I: 0}},
		{"timestamp 2^31: unsigned", bson.Timestamp{T: 1 << 31, I: 0}},
		{"regex /a/", bson.Regex{Pattern: "a"}},
		{"regex /a/i", bson.Regex{Pattern: "a", Options: "i"}},
		{"regex /a/m", bson.Regex{Pattern: "a", Options: "m"}},
		{"regex /b/", bson.Regex{Pattern: "b"}},
		{"DBPointer db.c ...01", bson.DBPointer{DB: "db.c", Pointer: oid(1)}},
		{"DBPointer db.c ...02", bson.DBPointer{DB: "db.c", Pointer: oid(2)}},
		{"DBPointer a.bcd: a longer namespace sorts after", bson.DBPointer{DB: "a.bcd", Pointer: oid(1)}},
		{"JavaScript a", bson.JavaScript("a")},
		{"JavaScript b", bson.JavaScript("b")},
		{"code a, empty scope", bson.CodeWithScope{Code: "a", Scope: bson.D{}}},
		{"code a, scope {x: 1}", bson.CodeWithScope{Code: "a", Scope: bson.D{{Key: "x", Value: int32(1)}}}},
		{"code b", bson.CodeWithScope{Code: "b", Scope: bson.D{}}},
		{"MaxKey", bson.MaxKey{}},
	}
	vals := make([]bson.RawValue, len(asc))
	for i, a := range asc {
		vals[i] = rv(t, a.v)
	}
	for i := range vals {
		if got := Compare(vals[i], vals[i]); got != 0 {
			t.Errorf("Compare(%s, itself) got %d, want 0", asc[i].name, got)
		}
		for j := i + 1; j < len(vals); j++ {
			if got := Compare(vals[i], vals[j]); got != -1 {
				t.Errorf("Compare(%s, %s) got %d, want -1", asc[i].name, asc[j].name, got)
			}
			if got := Compare(vals[j], vals[i]); got != 1 {
				t.Errorf("Compare(%s, %s) got %d, want 1", asc[j].name, asc[i].name, got)
			}
		}
	}
}

// TestCompareEqual: values of different BSON types that MongoDB treats as
// equal.
func TestCompareEqual(t *testing.T) {
	tests := []struct {
		name string
		vs   []any
	}{
		{"one, whatever the numeric type", []any{int32(1), int64(1), 1.0, dec(t, "1"), dec(t, "1.00"), dec(t, "0.1E1")}},
		{"zero and minus zero", []any{int32(0), 0.0, math.Copysign(0, -1), dec(t, "-0"), dec(t, "0E-10")}},
		{"NaN of either type", []any{math.NaN(), dec(t, "NaN")}},
		{"infinity of either type", []any{math.Inf(1), dec(t, "Infinity")}},
		{"string and symbol", []any{"x", bson.Symbol("x")}},
		{"documents with numbers of other types", []any{bson.D{{Key: "a", Value: int32(1)}}, bson.D{{Key: "a", Value: 1.0}}, bson.D{{Key: "a", Value: int64(1)}}}},
		{"arrays with numbers of other types", []any{bson.A{int32(1), "s"}, bson.A{dec(t, "1.0"), bson.Symbol("s")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.vs {
				for j := range tt.vs {
					if got := Compare(rv(t, tt.vs[i]), rv(t, tt.vs[j])); got != 0 {
						t.Errorf("Compare(%#v, %#v) got %d, want 0", tt.vs[i], tt.vs[j], got)
					}
				}
			}
		})
	}
}
