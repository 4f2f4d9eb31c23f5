package avroresolve

import (
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/linkedin/goavro/v2"
)

// RandomDatum returns a random datum of t in goavro's native form (records
// as map[string]any, unions as goavro.Union values), for compatibility tests:
// encode it with the writer's goavro codec, Transcode, and decode with the
// reader's goavro codec.
func RandomDatum(t *Type, rnd *rand.Rand) any {
	return randomDatum(t, rnd, 0)
}

func randomDatum(t *Type, rnd *rand.Rand, depth int) any {
	switch t.Kind {
	case Null:
		return nil
	case Boolean:
		return rnd.IntN(2) == 1
	case Int:
		switch t.LogicalType {
		case "date":
			return time.Unix(int64(rnd.IntN(1<<20))*86400, 0).UTC()
		case "time-millis":
			return time.Duration(rnd.IntN(86400000)) * time.Millisecond
		}
		return int32(rnd.Uint32())
	case Long:
		switch t.LogicalType {
		case "timestamp-millis":
			return time.UnixMilli(rnd.Int64N(1 << 42)).UTC()
		case "timestamp-micros":
			return time.UnixMicro(rnd.Int64N(1 << 52)).UTC()
		case "time-micros":
			return time.Duration(rnd.Int64N(86400000000)) * time.Microsecond
		}
		return int64(rnd.Uint64())
	case Float:
		return float32(rnd.NormFloat64())
	case Double:
		return rnd.NormFloat64()
	case Bytes, Fixed:
		if t.LogicalType == "decimal" {
			return big.NewRat(rnd.Int64N(1000000), 100)
		}
		n := t.Size
		if t.Kind == Bytes {
			n = rnd.IntN(40)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	case String:
		const alphabet = "abcdefghijklmnopqrstuvwxyz.$_é"
		r := []rune(alphabet)
		s := make([]rune, rnd.IntN(20))
		for i := range s {
			s[i] = r[rnd.IntN(len(r))]
		}
		return string(s)
	case Enum:
		return t.Symbols[rnd.IntN(len(t.Symbols))]
	case Array:
		n := rnd.IntN(4)
		if depth > 8 {
			n = 0
		}
		out := make([]any, n)
		for i := range out {
			out[i] = randomDatum(t.Items, rnd, depth+1)
		}
		return out
	case Map:
		n := rnd.IntN(4)
		if depth > 8 {
			n = 0
		}
		out := make(map[string]any, n)
		for range n {
			out[randomDatum(&Type{Kind: String}, rnd, depth+1).(string)] = randomDatum(t.Values, rnd, depth+1)
		}
		return out
	case Record:
		out := make(map[string]any, len(t.Fields))
		for _, f := range t.Fields {
			out[f.Name] = randomDatum(f.Type, rnd, depth+1)
		}
		return out
	case Union:
		i := rnd.IntN(len(t.Branches))
		if depth > 8 { // prefer a null branch to end recursive schemas
			for j, b := range t.Branches {
				if b.Kind == Null {
					i = j
				}
			}
		}
		b := t.Branches[i]
		if b.Kind == Null {
			return nil
		}
		return goavro.Union(b.BranchName(), randomDatum(b, rnd, depth+1))
	}
	return nil
}
