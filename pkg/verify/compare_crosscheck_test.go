package verify_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/tests/mongoshim"
)

// TestCompareAgreesWithTheShim cross-checks verify.Compare against the test
// shim's ordering, an implementation of MongoDB's BSON sort order written
// separately (tests/mongoshim/order.go): on a varied corpus, every pair must
// order the same way in both. The shim serves min/max range scans and
// filters by its ordering, and the verifier splits and compares ranges by
// this one, so a disagreement would hide a wrong answer in either.
func TestCompareAgreesWithTheShim(t *testing.T) {
	corpus := crossCorpus(t, rand.New(rand.NewPCG(27, 5)), 400)
	sign := func(n int) int { return min(max(n, -1), 1) }
	disagree := 0
	for i, a := range corpus {
		for _, b := range corpus[i:] {
			v, s := sign(verify.Compare(a, b)), sign(mongoshim.Compare(a, b))
			if v != s {
				if disagree++; disagree <= 20 {
					t.Errorf("Compare(%v, %v): verify got %d, the shim got %d", a, b, v, s)
				}
			}
			if r := sign(verify.Compare(b, a)); r != -v {
				t.Errorf("verify.Compare is not antisymmetric on %v and %v: %d and %d", a, b, v, r)
			}
		}
	}
	if disagree > 20 {
		t.Errorf("%d disagreements in all", disagree)
	}
}

// crossCorpus returns edge values of every BSON type and n random ones,
// numbers of all four types near each other, and nested documents and
// arrays built of them.
func crossCorpus(t *testing.T, rnd *rand.Rand, n int) []bson.RawValue {
	t.Helper()
	dec := func(s string) bson.Decimal128 {
		d, err := bson.ParseDecimal128(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	edges := []any{
		bson.MinKey{}, bson.MaxKey{}, bson.Null{}, bson.Undefined{},
		math.NaN(), math.Inf(1), math.Inf(-1), 0.0, math.Copysign(0, -1), 0.1, -1e300, 1e300,
		9007199254740992.0, 9223372036854775808.0,
		int32(0), int32(1), int32(-1), int32(math.MaxInt32), int32(math.MinInt32),
		int64(9007199254740993), int64(math.MaxInt64), int64(math.MinInt64),
		dec("0.1"), dec("1.00"), dec("-0"), dec("NaN"), dec("Infinity"), dec("-Infinity"), dec("1E+400"), dec("-1E-400"),
		dec("9223372036854775807.5"),
		"", "a", "A", "é", "a\x00b", bson.Symbol("a"), bson.Symbol("b"),
		bson.D{}, bson.A{}, bson.D{{Key: "a", Value: nil}}, bson.D{{Key: "b", Value: int32(1)}},
		bson.Binary{Subtype: 0, Data: []byte{}}, bson.Binary{Subtype: 4, Data: []byte{1}}, bson.Binary{Subtype: 0, Data: []byte{2, 0}},
		bson.ObjectID{}, bson.ObjectID{0xff}, false, true,
		bson.DateTime(math.MinInt64), bson.DateTime(-1), bson.DateTime(0), bson.DateTime(math.MaxInt64),
		bson.Timestamp{}, bson.Timestamp{T: 1 << 31}, bson.Timestamp{T: 1, I: math.MaxUint32},
		bson.Regex{Pattern: "a"}, bson.Regex{Pattern: "a", Options: "i"},
		bson.DBPointer{DB: "db.c"}, bson.DBPointer{DB: "a.bcd"}, bson.JavaScript("x"),
		bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "k", Value: int32(1)}}},
	}
	scalar := func() any {
		switch rnd.IntN(14) {
		case 0:
			return int32(rnd.IntN(7) - 3)
		case 1:
			return int64(rnd.IntN(7) - 3)
		case 2:
			return float64(rnd.IntN(13)-6) / 2
		case 3:
			return dec([]string{"-1.5", "0", "0.5", "1", "1.0", "2", "2.50", "3E0"}[rnd.IntN(8)])
		case 4:
			return []string{"", "a", "ab", "b", "B", "é"}[rnd.IntN(6)]
		case 5:
			return bson.Symbol([]string{"a", "b"}[rnd.IntN(2)])
		case 6:
			return bson.Binary{Subtype: byte(rnd.IntN(3)), Data: []byte("ab")[:rnd.IntN(3)]}
		case 7:
			var o bson.ObjectID
			o[rnd.IntN(12)] = byte(rnd.IntN(3))
			return o
		case 8:
			return rnd.IntN(2) == 0
		case 9:
			return bson.DateTime(rnd.IntN(5) - 2)
		case 10:
			return bson.Timestamp{T: uint32(rnd.IntN(3)), I: uint32(rnd.IntN(3))}
		case 11:
			return bson.Regex{Pattern: []string{"a", "b"}[rnd.IntN(2)], Options: []string{"", "i"}[rnd.IntN(2)]}
		case 12:
			return []any{bson.Null{}, bson.MinKey{}, bson.MaxKey{}, bson.Undefined{}}[rnd.IntN(4)]
		}
		return edges[rnd.IntN(len(edges))]
	}
	var value func(depth int) any
	value = func(depth int) any {
		if depth > 2 || rnd.IntN(3) != 0 {
			return scalar()
		}
		k := rnd.IntN(3)
		if rnd.IntN(2) == 0 {
			a := bson.A{}
			for range k {
				a = append(a, value(depth+1))
			}
			return a
		}
		d := bson.D{}
		for range k {
			d = append(d, bson.E{Key: []string{"a", "b", "_id"}[rnd.IntN(3)], Value: value(depth + 1)})
		}
		return d
	}
	out := make([]bson.RawValue, 0, len(edges)+n)
	add := func(v any) {
		typ, data, err := bson.MarshalValue(v)
		if err != nil {
			t.Fatalf("marshalling %#v: %v", v, err)
		}
		out = append(out, bson.RawValue{Type: typ, Value: data})
	}
	for _, v := range edges {
		add(v)
	}
	for range n {
		add(value(0))
	}
	return out
}
