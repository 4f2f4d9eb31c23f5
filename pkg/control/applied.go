package control

// The sink's count of applied change events, which the source reports as
// progress.totalEventsApplied (mongosync's field). The two services share
// no process and the source cannot reach the sink's HTTP server, so the sink
// keeps the count on the destination, beside its other metadata (the
// destination is also where a reversal or a restarted sink finds it): one
// document per sink group, _id the group (so per epoch, as each epoch has
// its own group), eventsApplied raised with $inc every few seconds.
const (
	// AppliedDB is the sink's metadata database on the destination (never
	// synced: nsfilter skips __logbridge*).
	AppliedDB = "__logbridge"
	// AppliedColl holds one AppliedCount per sink group.
	AppliedColl = "sink_progress"
)

// AppliedCount is a sink group's document in AppliedDB.AppliedColl.
// EventsApplied counts change events (insert, update, replace, delete; not
// the initial copy, DDL or markers) whose effect the destination
// acknowledged. Like mongosync's, the count is approximate: events applied
// again after a sink crash (from its last committed offset) count twice, and
// the last seconds before a crash may be missing.
type AppliedCount struct {
	Group         string `bson:"_id"`
	EventsApplied int64  `bson:"eventsApplied"`
}
