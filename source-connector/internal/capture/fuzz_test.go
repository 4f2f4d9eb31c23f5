package capture

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzMap feeds arbitrary bytes to Mapper.Map as change events (through
// its exported API only). It must never panic; a refusal must be
// ErrMalformedEvent or say why; an accepted event must carry the resume
// token it came with. Seeds: testdata/fuzz/FuzzMap (events from the
// MongoDB manual, as in mapping_test.go).
func FuzzMap(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &Mapper{Epoch: 1, Source: "cluster0"}
		got, err := m.Map(bson.Raw(data))
		if err != nil {
			if !errors.Is(err, ErrMalformedEvent) && err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		id, err := bson.Raw(data).LookupErr("_id")
		if err != nil {
			t.Fatalf("accepted an event without _id: %+v", got)
		}
		if string(got.Token) != string(id.Value) {
			t.Fatalf("token %x, want the event's _id %x", got.Token, id.Value)
		}
	})
}
