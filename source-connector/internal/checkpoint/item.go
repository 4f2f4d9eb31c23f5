package checkpoint

import "github.com/logbridge/logbridge/schema"

// Item is one unit handed to the publisher: an event to publish (or none, for
// a state-only checkpoint) and the state that becomes true once it commits.
type Item struct {
	// Event is published to the topic of Event.NS; nil for state only.
	Event *schema.Event
	// Docs, when set, are snapshot records of Event.NS that a reader keyed
	// and encoded itself (publish.Publisher.EncodeDoc): a snapshot reader hands over
	// a driver batch of documents at a time, encoded in parallel straight
	// from the driver's buffer, with the one checkpoint in State that covers
	// them all. Event then only names the op and namespace. Without Docs,
	// the publisher encodes Event as one record.
	Docs []Doc
	// Recycle, when set, is called once the transaction holding the item
	// has committed and nothing refers to its Docs any more: a snapshot
	// reader then reuses their memory for the next documents.
	Recycle func()
	// Broadcast: one copy of Event into every partition of each topic
	// (DDL, markers). Otherwise the key hashes to one partition.
	Broadcast bool
	// Targets, when set, are the namespaces whose topics get the record
	// instead of Event.NS's (a rename goes to the source and the target).
	// Namespaces the log does not know yet get a topic.
	Targets []schema.Namespace
	// AllOfDB broadcasts into every known topic of Event.NS.DB
	// (dropDatabase) instead of the topic of Event.NS.
	AllOfDB bool
	// NSType is the namespace type recorded when the item's namespace is
	// new to the log (TypeCollection when empty).
	NSType string
	// State is committed with the item; for each key the last value in a
	// batch wins.
	State []StateUpdate
	// Captured is the change stream operationType (statistics), "" for
	// snapshot records and checkpoints.
	Captured string
	// Heartbeat marks a state-only checkpoint of a quiet stream.
	Heartbeat bool
	// More: the items that follow, up to the next item without More, belong
	// to one unit (the events of one source transaction, or of one small
	// change-stream batch: capture's batchMore) and go into the
	// same Kafka transaction as this one, so that a consumer never sees
	// part of a source transaction (publish.Publisher.Run does not cut a
	// batch inside a unit).
	More bool
}

// Doc is one snapshot record, keyed and encoded (publish.Publisher.EncodeDoc).
type Doc struct {
	Key, Value []byte
	// SourceBytes is the size of the source document (statistics).
	SourceBytes int
}

// NSStats are a batch's snapshot statistics of one namespace.
type NSStats struct{ Docs, Bytes int64 }
