package workload

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// bsonType is one optional BSON type (or binary subtype) documents carry.
type bsonType struct {
	name  string // Options.ExcludeTypes name: MongoDB's $type alias, binData:<subtype> for binaries
	field string // field that holds it in generated documents
	gen   func(g *Generator) any
}

func binary(sub byte) func(g *Generator) any {
	return func(g *Generator) any {
		b := make([]byte, 1+g.rnd.IntN(24))
		for i := range b {
			b[i] = byte(g.rnd.IntN(256))
		}
		if sub == 3 || sub == 4 { // UUIDs are 16 bytes
			b = make([]byte, 16)
			for i := range b {
				b[i] = byte(g.rnd.IntN(256))
			}
		}
		if sub == 2 { // old binary: int32 length prefix, as drivers write it
			b = append(bson.Raw{byte(len(b)), 0, 0, 0}, b...)
		}
		return bson.Binary{Subtype: sub, Data: b}
	}
}

var specialDoubles = []float64{math.NaN(), math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1, -1.5e-300}

var specialDecimals = []string{"NaN", "-NaN", "Infinity", "-Infinity", "-0", "0.000", "1.000", "9.999999999999999999999999999999999E+6144", "1E-6176", "-123456789012345678901234567890.1234"}

// catalogue is every optional type, in a fixed order (the order of draws).
var catalogue = []bsonType{
	{"double", "dbl", func(g *Generator) any { return specialDoubles[g.rnd.IntN(len(specialDoubles))] }},
	{"decimal", "dec", func(g *Generator) any {
		if g.rnd.IntN(2) == 0 {
			d, _ := bson.ParseDecimal128(specialDecimals[g.rnd.IntN(len(specialDecimals))])
			return d
		}
		d, _ := bson.ParseDecimal128(fmt.Sprintf("%d.%03d", g.rnd.IntN(1000), g.rnd.IntN(1000)))
		return d
	}},
	{"long", "i64", func(g *Generator) any { return g.rnd.Int64() - math.MaxInt64/2 }},
	{"int", "i32", func(g *Generator) any { return int32(g.rnd.Uint32()) }},
	{"binData:0", "bin0", binary(0)},
	{"binData:1", "bin1", binary(1)},
	{"binData:2", "bin2", binary(2)},
	{"binData:3", "bin3", binary(3)},
	{"binData:4", "bin4", binary(4)},
	{"binData:5", "bin5", binary(5)},
	{"binData:6", "bin6", binary(6)},
	{"binData:7", "bin7", binary(7)},
	{"binData:8", "bin8", binary(8)},
	{"binData:128", "bin128", binary(0x80)},
	{"undefined", "undef", func(*Generator) any { return bson.Undefined{} }},
	{"objectId", "oid", func(g *Generator) any { return g.objectID() }},
	{"bool", "b", func(g *Generator) any { return g.rnd.IntN(2) == 0 }},
	{"null", "null", func(*Generator) any { return nil }},
	{"regex", "re", func(g *Generator) any {
		return bson.Regex{Pattern: "^a.*" + g.word(), Options: "imsx"[:1+g.rnd.IntN(4)]}
	}},
	{"dbPointer", "dbp", func(g *Generator) any { return bson.DBPointer{DB: "db." + g.word(), Pointer: g.objectID()} }},
	{"javascript", "js", func(g *Generator) any { return bson.JavaScript("function(){return '" + g.word() + "'}") }},
	{"symbol", "sym", func(g *Generator) any { return bson.Symbol(g.word()) }},
	{"javascriptWithScope", "cws", func(g *Generator) any {
		return bson.CodeWithScope{Code: "function(){return x}", Scope: bson.D{{Key: "x", Value: g.word()}}}
	}},
	{"timestamp", "ts", func(g *Generator) any {
		return bson.Timestamp{T: uint32(g.rnd.IntN(1 << 30)), I: uint32(g.rnd.IntN(100))}
	}},
	{"date", "dt", func(g *Generator) any { return bson.DateTime(g.rnd.Int64N(1<<45) - 1<<44) }}, // also before 1970
	{"minKey", "min", func(*Generator) any { return bson.MinKey{} }},
	{"maxKey", "max", func(*Generator) any { return bson.MaxKey{} }},
	{"array", "deep", func(g *Generator) any { // nested arrays and documents, and an empty key
		return bson.A{bson.A{}, bson.D{}, bson.D{{Key: "", Value: g.word()}, {Key: "a", Value: bson.A{int32(1), bson.D{{Key: "b", Value: nil}}}}}}
	}},
	{"string", "utf8", func(g *Generator) any {
		return []string{"", "ünïcödé", "日本語", "emoji \U0001F600", "nul\x00inside"}[g.rnd.IntN(5)]
	}},
}

// TypeNames lists the optional types generated documents hold, by the
// names Options.ExcludeTypes takes.
func TypeNames() []string {
	out := make([]string, len(catalogue))
	for i, t := range catalogue {
		out[i] = t.name
	}
	return out
}

// Unstorable finds the optional types a server cannot store byte for byte:
// it inserts one document per type into db.coll (dropped afterwards), reads
// it back and compares the bytes. It returns each such type with the reason
// (the server's error, or what came back), for Options.ExcludeTypes.
func Unstorable(ctx context.Context, cl *mongo.Client, db, coll string) (map[string]string, error) {
	c := cl.Database(db).Collection(coll)
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Drop(dctx)
	}()
	out := map[string]string{}
	g := &Generator{rnd: rand.New(rand.NewPCG(1, 2))}
	for i, t := range catalogue {
		// Several draws, so that every special value of a type is tried.
		for k := 0; k < 12 && out[t.name] == ""; k++ {
			id := int32(i*100 + k)
			want, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: t.gen(g)}})
			if err != nil {
				return nil, fmt.Errorf("type %s: %w", t.name, err)
			}
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = c.InsertOne(ictx, bson.Raw(want))
			if err == nil {
				var got bson.Raw
				got, err = c.FindOne(ictx, bson.D{{Key: "_id", Value: id}}).Raw()
				if err == nil && !bytes.Equal(got, want) {
					out[t.name] = fmt.Sprintf("stored %s, read back %s", bson.Raw(want).Lookup("v"), got.Lookup("v"))
				}
			}
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				out[t.name] = err.Error()
			}
		}
	}
	return out, nil
}
