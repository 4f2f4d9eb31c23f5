package checkpoint

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/version"
)

// TestStateRecordsCarryTheirVersion: every encoded state value carries "v"
// (this binary's metadata version) and still decodes into its struct.
func TestStateRecordsCarryTheirVersion(t *testing.T) {
	for _, u := range []StateUpdate{
		{KeyStream, &StreamState{Token: bson.Raw{5, 0, 0, 0, 0}}},
		{KeySnapshot, &SnapshotState{Done: true}},
		{KeyProducer, ProducerState{Seq: 9}},
		{NSKey("a.b"), &NamespaceState{DB: "a", Coll: "b", Topic: "p.a.b"}},
		{RangeKey("a.b", 1), &RangeState{NS: "a.b", ID: 1, Docs: 3}},
		{KeyMeta, &Meta{Version: int32(version.Metadata())}},
	} {
		b, err := EncodeState(u.Value)
		if err != nil {
			t.Fatal(err)
		}
		if err := bson.Raw(b).Validate(); err != nil {
			t.Fatalf("%s: invalid BSON: %v", u.Key, err)
		}
		v, ok := bson.Raw(b).Lookup("v").Int32OK()
		if !ok || int(v) != version.Metadata() {
			t.Fatalf("%s: v = %v (%v), want %d", u.Key, v, ok, version.Metadata())
		}
		st := NewState()
		if err := st.Apply(u.Key, b); err != nil {
			t.Fatalf("%s: %v", u.Key, err)
		}
	}
	st := NewState()
	b, _ := EncodeState(&RangeState{NS: "a.b", ID: 1, Docs: 3})
	if err := st.Apply(RangeKey("a.b", 1), b); err != nil || st.Ranges[RangeKey("a.b", 1)].Docs != 3 {
		t.Fatalf("range after the version stamp: %+v %v", st.Ranges, err)
	}
}

// TestStateReadsOlderVersions: values written before records carried a
// version (0.1.0's predecessors) are version 1 and read as they were.
func TestStateReadsOlderVersions(t *testing.T) {
	st := NewState()
	old, _ := bson.Marshal(bson.D{{Key: "token", Value: bson.D{{Key: "_data", Value: "82"}}}, {Key: "clusterTime", Value: bson.Timestamp{T: 4, I: 1}}})
	if err := st.Apply(KeyStream, old); err != nil || st.Stream == nil || st.Stream.ClusterTime.T != 4 {
		t.Fatalf("unversioned stream record: %+v %v", st.Stream, err)
	}
	v1, _ := bson.Marshal(bson.D{{Key: "v", Value: int32(1)}, {Key: "done", Value: true}})
	if err := st.Apply(KeySnapshot, v1); err != nil || !st.SnapshotDone() {
		t.Fatalf("version 1 snapshot record: %v", err)
	}
}

// TestStateRefusesNewerAndUnknown: a value of a newer metadata version is
// refused for every key (the message names both versions and what to do),
// and so is a key this build does not know; deleting an unknown key is
// harmless.
func TestStateRefusesNewerAndUnknown(t *testing.T) {
	newer := version.Metadata() + 1
	for _, key := range []string{KeyMeta, KeyStream, KeySnapshot, KeyProducer, NSKey("a.b"), RangeKey("a.b", 0), "someday/x"} {
		b, _ := bson.Marshal(bson.D{{Key: "v", Value: int32(newer)}, {Key: "done", Value: true}})
		err := NewState().Apply(key, b)
		if !errors.Is(err, version.ErrNewerFormat) {
			t.Fatalf("%s: got %v, want version.ErrNewerFormat", key, err)
		}
		for _, want := range []string{fmt.Sprintf("%q", key), fmt.Sprintf("metadata version %d", newer), fmt.Sprintf("reads up to %d", version.Metadata())} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: message lacks %q: %v", key, want, err)
			}
		}
	}
	b, _ := EncodeState(bson.D{{Key: "x", Value: 1}})
	if err := NewState().Apply("someday/x", b); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("unknown key of this version: got %v, want it refused", err)
	}
	if err := NewState().Apply("someday/x", nil); err != nil {
		t.Fatalf("tombstone of an unknown key: %v", err)
	}
}
