package publish

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

type explicitPartitionKey struct{}

// explicitPartition marks a record whose Partition field is chosen by the
// producer (DDL, markers: one copy per partition).
var explicitPartition = context.WithValue(context.Background(), explicitPartitionKey{}, true)

// Partitioner sends records marked with an explicit partition to that
// partition and hashes every other keyed record with murmur2 exactly as the
// Java client does (kgo.StickyKeyPartitioner(nil)): all events of one
// document key land in one partition.
func Partitioner() kgo.Partitioner { return partitioner{kgo.StickyKeyPartitioner(nil)} }

type partitioner struct{ hash kgo.Partitioner }

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return topicPartitioner{p.hash.ForTopic(t)}
}

type topicPartitioner struct{ hash kgo.TopicPartitioner }

func isExplicit(r *kgo.Record) bool {
	return r.Context != nil && r.Context.Value(explicitPartitionKey{}) != nil
}

func (p topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return isExplicit(r) || r.Key != nil || p.hash.RequiresConsistency(r)
}

func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if isExplicit(r) {
		return int(r.Partition)
	}
	if r.Context != nil {
		if raw, ok := r.Context.Value(hashKeyKey{}).([]byte); ok {
			hashed := *r
			hashed.Key = raw
			return p.hash.Partition(&hashed, n)
		}
	}
	return p.hash.Partition(r, n)
}

type hashKeyKey struct{}

// withHashKey marks a record whose key on the wire is not the raw BSON
// document key (the connect-json and debezium encodings write JSON keys):
// the partitioner hashes raw instead, so a document's partition, and with
// it per-document order, is the same in every encoding (docs/decisions.md
// "Keys").
func withHashKey(raw []byte) context.Context {
	return context.WithValue(context.Background(), hashKeyKey{}, raw)
}
