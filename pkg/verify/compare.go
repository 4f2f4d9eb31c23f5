package verify

import (
	"bytes"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// canonicalRank is MongoDB's comparison order of BSON types: values of
// different types compare by this rank, all numbers share one, and so do
// strings and symbols.
func canonicalRank(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return -1
	case bson.TypeUndefined:
		return 0
	case bson.TypeNull:
		return 5
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return 10
	case bson.TypeString, bson.TypeSymbol:
		return 15
	case bson.TypeEmbeddedDocument:
		return 20
	case bson.TypeArray:
		return 25
	case bson.TypeBinary:
		return 30
	case bson.TypeObjectID:
		return 35
	case bson.TypeBoolean:
		return 40
	case bson.TypeDateTime:
		return 45
	case bson.TypeTimestamp:
		return 47
	case bson.TypeRegex:
		return 50
	case bson.TypeDBPointer:
		return 55
	case bson.TypeJavaScript:
		return 60
	case bson.TypeCodeWithScope:
		return 65
	case bson.TypeMaxKey:
		return 100
	}
	return 1000
}

// Compare orders two BSON values the way MongoDB sorts them (without collation).
func Compare(a, b bson.RawValue) int {
	ra, rb := canonicalRank(a.Type), canonicalRank(b.Type)
	if ra != rb {
		return cmpInt(ra, rb)
	}
	switch ra {
	case -1, 0, 5, 100:
		return 0
	case 10:
		return compareNumbers(a, b)
	case 15:
		return bytes.Compare([]byte(stringOf(a)), []byte(stringOf(b)))
	case 20, 25:
		return compareDocs(bson.Raw(a.Value), bson.Raw(b.Value))
	case 30:
		sa, da := a.Binary()
		sb, db := b.Binary()
		if c := cmpInt(len(da), len(db)); c != 0 {
			return c
		}
		if c := cmpInt(int(sa), int(sb)); c != 0 {
			return c
		}
		return bytes.Compare(da, db)
	case 35:
		oa, ob := a.ObjectID(), b.ObjectID()
		return bytes.Compare(oa[:], ob[:])
	case 40:
		return cmpBool(a.Boolean(), b.Boolean())
	case 45:
		return cmpInt64(a.DateTime(), b.DateTime())
	case 47:
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		if c := cmpInt64(int64(ta), int64(tb)); c != 0 {
			return c
		}
		return cmpInt64(int64(ia), int64(ib))
	case 50:
		pa, fa := a.Regex()
		pb, fb := b.Regex()
		if c := bytes.Compare([]byte(pa), []byte(pb)); c != 0 {
			return c
		}
		return bytes.Compare([]byte(fa), []byte(fb))
	case 55:
		na, oa := a.DBPointer()
		nb, ob := b.DBPointer()
		if c := cmpInt(len(na), len(nb)); c != 0 {
			return c
		}
		if c := bytes.Compare([]byte(na), []byte(nb)); c != 0 {
			return c
		}
		return bytes.Compare(oa[:], ob[:])
	case 60:
		return bytes.Compare([]byte(a.JavaScript()), []byte(b.JavaScript()))
	case 65:
		ca, sa := a.CodeWithScope()
		cb, sb := b.CodeWithScope()
		if c := bytes.Compare([]byte(ca), []byte(cb)); c != 0 {
			return c
		}
		return compareDocs(sa, sb)
	}
	return bytes.Compare(a.Value, b.Value)
}

func stringOf(v bson.RawValue) string {
	if v.Type == bson.TypeSymbol {
		return v.Symbol()
	}
	return v.StringValue()
}

// compareDocs compares documents (or arrays) element by element: type rank,
// then field name, then value; a prefix sorts first.
func compareDocs(a, b bson.Raw) int {
	ea, _ := a.Elements()
	eb, _ := b.Elements()
	for i := 0; i < len(ea) && i < len(eb); i++ {
		va, vb := ea[i].Value(), eb[i].Value()
		if c := cmpInt(canonicalRank(va.Type), canonicalRank(vb.Type)); c != 0 {
			return c
		}
		if c := bytes.Compare([]byte(ea[i].Key()), []byte(eb[i].Key())); c != 0 {
			return c
		}
		if c := Compare(va, vb); c != 0 {
			return c
		}
	}
	return cmpInt(len(ea), len(eb))
}

func compareNumbers(a, b bson.RawValue) int {
	ia, aInt := intOf(a)
	ib, bInt := intOf(b)
	if aInt && bInt {
		return cmpInt64(ia, ib)
	}
	fa, fb := bigOf(a), bigOf(b)
	if fa == nil || fb == nil { // NaN sorts before every other number
		return cmpBool(fa != nil, fb != nil)
	}
	return fa.Cmp(fb)
}

func intOf(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), true
	case bson.TypeInt64:
		return v.Int64(), true
	}
	return 0, false
}

// bigOf returns the number exactly as a big.Float (nil for NaN).
func bigOf(v bson.RawValue) *big.Float {
	switch v.Type {
	case bson.TypeInt32:
		return new(big.Float).SetInt64(int64(v.Int32()))
	case bson.TypeInt64:
		return new(big.Float).SetInt64(v.Int64())
	case bson.TypeDouble:
		f := v.Double()
		if f != f {
			return nil
		}
		return new(big.Float).SetFloat64(f)
	case bson.TypeDecimal128:
		d := v.Decimal128()
		s := d.String()
		switch s {
		case "NaN", "-NaN":
			return nil
		case "Infinity":
			return new(big.Float).SetInf(false)
		case "-Infinity":
			return new(big.Float).SetInf(true)
		}
		f, _, err := big.ParseFloat(s, 10, 200, big.ToNearestEven)
		if err != nil {
			return nil
		}
		return f
	}
	return nil
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	if a == b {
		return 0
	}
	if !a {
		return -1
	}
	return 1
}
