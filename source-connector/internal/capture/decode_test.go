package capture

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// reference is changeEvent as bson.Unmarshal fills it (the decoder before
// decode.go): decode must read every change event the same way.
type reference struct {
	ID            bson.Raw       `bson:"_id"`
	OperationType string         `bson:"operationType"`
	ClusterTime   bson.Timestamp `bson:"clusterTime"`
	WallTime      *bson.DateTime `bson:"wallTime"`
	NS            *struct {
		DB   string `bson:"db"`
		Coll string `bson:"coll"`
	} `bson:"ns"`
	To *struct {
		DB   string `bson:"db"`
		Coll string `bson:"coll"`
	} `bson:"to"`
	DocumentKey              bson.Raw      `bson:"documentKey"`
	FullDocument             bson.RawValue `bson:"fullDocument"`
	FullDocumentBeforeChange bson.RawValue `bson:"fullDocumentBeforeChange"`
	UpdateDescription        *struct {
		UpdatedFields   bson.Raw `bson:"updatedFields"`
		RemovedFields   []string `bson:"removedFields"`
		TruncatedArrays []struct {
			Field   string `bson:"field"`
			NewSize int32  `bson:"newSize"`
		} `bson:"truncatedArrays"`
	} `bson:"updateDescription"`
	OperationDescription bson.Raw      `bson:"operationDescription"`
	NSType               string        `bson:"nsType"`
	LSID                 bson.Raw      `bson:"lsid"`
	TxnNumber            bson.RawValue `bson:"txnNumber"`
}

// The hand-written decoder reads the events of the MongoDB manual (the fuzz
// seeds, which mapping_test.go's events also are) exactly as bson.Unmarshal
// into the tagged struct did.
func TestDecodeMatchesUnmarshal(t *testing.T) {
	events := corpus(t)
	for name, raw := range events {
		var want reference
		if err := bson.Unmarshal(raw, &want); err != nil {
			continue // decode may refuse what Unmarshal refuses, or be laxer about nulls
		}
		var got changeEvent
		if err := got.decode(raw); err != nil {
			t.Errorf("%s: decode: %v; Unmarshal accepted it", name, err)
			continue
		}
		w := changeEvent{ID: want.ID, OperationType: want.OperationType, ClusterTime: want.ClusterTime, WallTime: want.WallTime,
			DocumentKey: want.DocumentKey, FullDocument: want.FullDocument, FullDocumentBeforeChange: want.FullDocumentBeforeChange,
			OperationDescription: want.OperationDescription, NSType: want.NSType, LSID: want.LSID, TxnNumber: want.TxnNumber}
		if want.NS != nil {
			w.NS = &nsField{DB: want.NS.DB, Coll: want.NS.Coll}
		}
		if want.To != nil {
			w.To = &nsField{DB: want.To.DB, Coll: want.To.Coll}
		}
		if u := want.UpdateDescription; u != nil {
			w.UpdateDescription = &updateDesc{UpdatedFields: u.UpdatedFields, RemovedFields: u.RemovedFields}
			for _, ta := range u.TruncatedArrays {
				w.UpdateDescription.TruncatedArrays = append(w.UpdateDescription.TruncatedArrays, truncatedArray{Field: ta.Field, NewSize: ta.NewSize})
			}
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", name, got, w)
		}
	}
}

// corpus returns the fuzz seeds of FuzzMap (go test fuzz v1 files holding
// one []byte each).
func corpus(t *testing.T) map[string]bson.Raw {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzMap")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.Raw{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(b), "\n", 2)
		if len(lines) < 2 {
			continue
		}
		arg := strings.TrimSpace(lines[1])
		arg = strings.TrimSuffix(strings.TrimPrefix(arg, "[]byte("), ")")
		s, err := strconv.Unquote(arg)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = bson.Raw(s)
	}
	if len(out) == 0 {
		t.Fatal("no seeds")
	}
	return out
}

func BenchmarkMapInsert(b *testing.B) {
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(7)}, {Key: "notes", Value: strings.Repeat("x", 900)}})
	ev, _ := bson.Marshal(bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: "8266A1B2C3000000012B022C0100296E5A1004"}}},
		{Key: "operationType", Value: "insert"},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1, I: 1}},
		{Key: "wallTime", Value: bson.DateTime(1)},
		{Key: "fullDocument", Value: bson.Raw(doc)},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: int64(7)}}},
	})
	m := &Mapper{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Map(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// A change event that is not a whole BSON document is an ErrMalformedEvent
// whose message says so once.
func TestDecodeRefusesBrokenDocuments(t *testing.T) {
	good, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "_data", Value: "82"}}}, {Key: "operationType", Value: "insert"}})
	for name, raw := range map[string][]byte{
		"too short":           good[:3],
		"length past the end": append([]byte{0xff, 0, 0, 0}, good[4:]...),
		"cut element":         append(append([]byte{}, good[:len(good)-6]...), 0),
	} {
		if name == "cut element" {
			raw[0] = byte(len(raw)) // a consistent length around a cut element
		}
		_, err := (&Mapper{Epoch: 1, Source: "c"}).Map(raw)
		if !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("%s: got %v, want ErrMalformedEvent", name, err)
			continue
		}
		if n := strings.Count(err.Error(), ErrMalformedEvent.Error()); n != 1 {
			t.Errorf("%s: %q names the error %d times", name, err, n)
		}
	}
}
