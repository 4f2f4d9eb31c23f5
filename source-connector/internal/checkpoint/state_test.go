package checkpoint

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/version"
)

func TestStateApply(t *testing.T) {
	st := NewState()
	id, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.Decimal128{}}})
	rs := &RangeState{NS: "a.b", DB: "a", Coll: "b", ID: 3, Min: id, Last: id, Docs: 7}
	for _, u := range []StateUpdate{
		{KeyMeta, &Meta{Version: 1, T0: bson.Timestamp{T: 5, I: 6}}},
		{rs.Key(), rs},
		{KeyStream, &StreamState{Token: id, ClusterTime: bson.Timestamp{T: 9, I: 1}, TxnNumber: 4, TxnIndex: 2}},
		{KeySnapshot, &SnapshotState{Done: true}},
	} {
		b, err := EncodeState(u.Value)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(u.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	if !st.Planned() || !st.SnapshotDone() || st.Stream.TxnIndex != 2 || st.Ranges["range/a.b/3"].Docs != 7 ||
		!bytes.Equal(st.Ranges["range/a.b/3"].Min, id) || st.Ranges["range/a.b/3"].Max != nil {
		t.Fatalf("state = %+v", st)
	}
	if err := st.Apply(KeySnapshot, nil); err != nil || st.SnapshotDone() {
		t.Fatalf("tombstone not applied: %v", err)
	}
	b, _ := EncodeState(&Meta{Version: int32(version.Metadata() + 1)})
	if err := st.Apply(KeyMeta, b); err == nil {
		t.Fatal("newer state version accepted")
	}
}
