package mongoshim

import (
	"bytes"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestMarshalDocSameBytes: marshalDoc gives bson.Marshal's bytes for every
// value type it encodes itself, nil and zero values included, and for the
// types it hands to bson.MarshalValue.
func TestMarshalDocSameBytes(t *testing.T) {
	doc := mustRaw(bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.A{"x", 2.5}}})
	cases := []bson.D{
		{},
		{{Key: "nil", Value: nil}, {Key: "s", Value: "é"}, {Key: "empty", Value: ""}, {Key: "t", Value: true}, {Key: "f", Value: false}},
		{{Key: "i32", Value: int32(-7)}, {Key: "i64", Value: int64(1) << 40}, {Key: "int", Value: 3}, {Key: "f64", Value: 1.5}, {Key: "u8", Value: uint8(2)}},
		{{Key: "raw", Value: doc}, {Key: "emptyRaw", Value: emptyDoc}},
		{{Key: "rv", Value: doc.Lookup("a")}, {Key: "rvID", Value: doc.Lookup("_id")}, {Key: "uuid", Value: binaryValue(newUUID())}},
		{{Key: "d", Value: bson.D{{Key: "db", Value: "x"}, {Key: "coll", Value: "y"}, {Key: "in", Value: bson.D{{Key: "z", Value: nil}}}}}, {Key: "emptyD", Value: bson.D{}}},
		{{Key: "ts", Value: bson.Timestamp{T: 1796547562, I: 3}}, {Key: "dt", Value: bson.NewDateTimeFromTime(time.UnixMilli(1796547562123))}},
		{{Key: "a", Value: bson.A{1, "two", bson.D{{Key: "x", Value: 1}}}}, {Key: "m", Value: bson.M{"k": "v"}}, {Key: "oid", Value: bson.NewObjectID()}},
	}
	for i, d := range cases {
		want, err := bson.Marshal(d)
		if err != nil {
			t.Fatalf("case %d: bson.Marshal: %v", i, err)
		}
		if got := marshalDoc(d); !bytes.Equal(got, want) {
			t.Errorf("case %d: marshalDoc\n %v\nbson.Marshal\n %v", i, got, bson.Raw(want))
		}
	}
}
