package publish

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionByRawKey: a record whose wire key is JSON (connect-json,
// debezium) lands in the partition of its raw BSON document key, so the
// encoding never changes which partition holds a document's events.
func TestPartitionByRawKey(t *testing.T) {
	tp := Partitioner().ForTopic("t")
	moved := 0
	for i := range 200 {
		raw := []byte(fmt.Sprintf("raw-key-%d", i))
		wire := []byte(fmt.Sprintf(`{"schema":{},"payload":{"id":"%d"}}`, i))
		want := tp.Partition(&kgo.Record{Key: raw}, 12)
		if got := tp.Partition(&kgo.Record{Key: wire, Context: withHashKey(raw)}, 12); got != want {
			t.Fatalf("key %d: got partition %d, want %d (the raw key's)", i, got, want)
		}
		if tp.Partition(&kgo.Record{Key: wire}, 12) != want {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("hashing the wire key gave the raw key's partition every time: the test proves nothing")
	}
}
