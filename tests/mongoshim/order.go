package mongoshim

import (
	"bytes"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The shim's own BSON comparison, written from MongoDB's documentation of
// the comparison/sort order ("Comparison/Sort Order" in the BSON types
// reference) and not shared with the product: the verifier (pkg/verify)
// compares documents with an implementation of its own, and a test outside
// the shim (pkg/verify's cross-check) makes the two agree. Were they one
// function, a mistake in it would make the shim and the verifier agree on
// the wrong answer.

// typeOrder lists the BSON types from lowest to highest. Types on one line
// compare by value with each other (all numbers; strings and symbols); the
// documentation names undefined, DBPointer, JavaScript and JavaScript with
// scope nowhere, so they sit where mongod puts them (undefined just below
// null, the three others between regex and MaxKey).
var typeOrder = [][]bson.Type{
	{bson.TypeMinKey},
	{bson.TypeUndefined},
	{bson.TypeNull},
	{bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128},
	{bson.TypeString, bson.TypeSymbol},
	{bson.TypeEmbeddedDocument},
	{bson.TypeArray},
	{bson.TypeBinary},
	{bson.TypeObjectID},
	{bson.TypeBoolean},
	{bson.TypeDateTime},
	{bson.TypeTimestamp},
	{bson.TypeRegex},
	{bson.TypeDBPointer},
	{bson.TypeJavaScript},
	{bson.TypeCodeWithScope},
	{bson.TypeMaxKey},
}

// typeClass maps a BSON type to its line in typeOrder.
var typeClass = func() map[bson.Type]int {
	m := map[bson.Type]int{}
	for i, types := range typeOrder {
		for _, t := range types {
			m[t] = i
		}
	}
	return m
}()

// class is t's line in typeOrder; an unknown type sorts after every known one.
func class(t bson.Type) int {
	if c, ok := typeClass[t]; ok {
		return c
	}
	return len(typeOrder)
}

// Compare orders two BSON values as MongoDB sorts them without a collation:
// negative when a sorts before b, 0 when they are equal, positive after.
func Compare(a, b bson.RawValue) int {
	if ca, cb := class(a.Type), class(b.Type); ca != cb {
		return sign(ca - cb)
	}
	switch a.Type {
	case bson.TypeMinKey, bson.TypeMaxKey, bson.TypeUndefined, bson.TypeNull:
		return 0
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return compareNumber(a, b)
	case bson.TypeString, bson.TypeSymbol:
		// Simple binary comparison of the UTF-8 bytes.
		return bytes.Compare([]byte(text(a)), []byte(text(b)))
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return compareFields(bson.Raw(a.Value), bson.Raw(b.Value))
	case bson.TypeBinary:
		// By length, then subtype, then the bytes.
		sa, da := a.Binary()
		sb, db := b.Binary()
		if len(da) != len(db) {
			return sign(len(da) - len(db))
		}
		if sa != sb {
			return sign(int(sa) - int(sb))
		}
		return bytes.Compare(da, db)
	case bson.TypeObjectID:
		oa, ob := a.ObjectID(), b.ObjectID()
		return bytes.Compare(oa[:], ob[:])
	case bson.TypeBoolean:
		return sign(boolInt(a.Boolean()) - boolInt(b.Boolean()))
	case bson.TypeDateTime:
		// Signed milliseconds: dates before 1970 sort first.
		return compareOrdered(a.DateTime(), b.DateTime())
	case bson.TypeTimestamp:
		// Unsigned: seconds, then the increment.
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		return compareOrdered(uint64(ta)<<32|uint64(ia), uint64(tb)<<32|uint64(ib))
	case bson.TypeRegex:
		pa, fa := a.Regex()
		pb, fb := b.Regex()
		if c := bytes.Compare([]byte(pa), []byte(pb)); c != 0 {
			return c
		}
		return bytes.Compare([]byte(fa), []byte(fb))
	case bson.TypeDBPointer:
		// mongod compares the encoded values: the namespace's length, then
		// the namespace, then the ObjectId.
		na, oa := a.DBPointer()
		nb, ob := b.DBPointer()
		if len(na) != len(nb) {
			return sign(len(na) - len(nb))
		}
		if c := bytes.Compare([]byte(na), []byte(nb)); c != 0 {
			return c
		}
		return bytes.Compare(oa[:], ob[:])
	case bson.TypeJavaScript:
		return bytes.Compare([]byte(a.JavaScript()), []byte(b.JavaScript()))
	case bson.TypeCodeWithScope:
		ja, sa := a.CodeWithScope()
		jb, sb := b.CodeWithScope()
		if c := bytes.Compare([]byte(ja), []byte(jb)); c != 0 {
			return c
		}
		return compareFields(sa, sb)
	}
	return bytes.Compare(a.Value, b.Value)
}

// compareFields compares two documents (or arrays) pair by pair in their
// stored order: first the values' types, then the field names, then the
// values; a document that runs out of pairs first is the lower one.
func compareFields(a, b bson.Raw) int {
	ea, _ := a.Elements()
	eb, _ := b.Elements()
	for i := range min(len(ea), len(eb)) {
		va, vb := ea[i].Value(), eb[i].Value()
		if ca, cb := class(va.Type), class(vb.Type); ca != cb {
			return sign(ca - cb)
		}
		if c := bytes.Compare([]byte(ea[i].Key()), []byte(eb[i].Key())); c != 0 {
			return c
		}
		if c := Compare(va, vb); c != 0 {
			return c
		}
	}
	return sign(len(ea) - len(eb))
}

// number is a numeric BSON value on one scale: NaN below every other
// number, then -Infinity, the finite values (exact rationals) and +Infinity.
type number struct {
	rank int // 0 NaN, 1 -Inf, 2 finite, 3 +Inf
	r    *big.Rat
}

func toNumber(v bson.RawValue) number {
	switch v.Type {
	case bson.TypeInt32:
		return number{rank: 2, r: new(big.Rat).SetInt64(int64(v.Int32()))}
	case bson.TypeInt64:
		return number{rank: 2, r: new(big.Rat).SetInt64(v.Int64())}
	case bson.TypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return number{rank: 0}
		case math.IsInf(f, -1):
			return number{rank: 1}
		case math.IsInf(f, 1):
			return number{rank: 3}
		}
		return number{rank: 2, r: new(big.Rat).SetFloat64(f)}
	case bson.TypeDecimal128:
		d := v.Decimal128()
		if d.IsNaN() {
			return number{rank: 0}
		}
		if inf := d.IsInf(); inf != 0 {
			return number{rank: 2 + inf}
		}
		coef, exp, err := d.BigInt()
		if err != nil {
			return number{rank: 0}
		}
		r := new(big.Rat).SetInt(coef)
		scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
		if exp >= 0 {
			return number{rank: 2, r: r.Mul(r, scale)}
		}
		return number{rank: 2, r: r.Quo(r, scale)}
	}
	return number{rank: 0}
}

// compareNumber compares numbers by value, whatever their BSON types: 1,
// 1.0, NumberLong(1) and NumberDecimal("1.00") are equal.
func compareNumber(a, b bson.RawValue) int {
	na, nb := toNumber(a), toNumber(b)
	if na.rank != nb.rank || na.rank != 2 {
		return sign(na.rank - nb.rank)
	}
	return na.r.Cmp(nb.r)
}

func text(v bson.RawValue) string {
	if s, ok := v.StringValueOK(); ok {
		return s
	}
	return v.Symbol()
}

func compareOrdered[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
