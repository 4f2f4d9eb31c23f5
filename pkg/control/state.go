package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/throttle"
	"github.com/logbridge/logbridge/pkg/version"
)

// State is the sync's phase, named as mongosync names it.
type State string

const (
	Idle       State = "IDLE"
	Running    State = "RUNNING"
	Paused     State = "PAUSED"
	Committing State = "COMMITTING"
	Committed  State = "COMMITTED"
	Reversing  State = "REVERSING"
)

// EventType names a control event.
type EventType string

const (
	EvStart         EventType = "start"
	EvPause         EventType = "pause"
	EvResume        EventType = "resume"
	EvCommit        EventType = "commit"
	EvCommitMarked  EventType = "commitMarked"
	EvSinkCommitted EventType = "sinkCommitted"
	EvCommitted     EventType = "committed"
	EvReverse       EventType = "reverse"
	EvReversed      EventType = "reversed"
	// EvThrottle sets the read and/or write throttle (any state).
	EvThrottle EventType = "throttle"
)

// NamespaceSpec is one entry of includeNamespaces/excludeNamespaces, as in
// mongosync: a database with optional collection names, or regexes.
type NamespaceSpec struct {
	Database         string   `json:"database,omitempty"`
	Collections      []string `json:"collections,omitempty"`
	DatabaseRegex    *Regex   `json:"databaseRegex,omitempty"`
	CollectionsRegex *Regex   `json:"collectionsRegex,omitempty"`
}

// Regex is a pattern with options ("i" for case-insensitive), as mongosync takes it.
type Regex struct {
	Pattern string `json:"pattern"`
	Options string `json:"options,omitempty"`
}

// StartParams is the body of POST /api/v1/start: every field of
// mongosync's current start API, with its documented types and values, and
// logbridge's own extensions (dropDestinationData). README.md has a table of
// each field and what logbridge does with it.
type StartParams struct {
	Source            string          `json:"source"`
	Destination       string          `json:"destination"`
	IncludeNamespaces []NamespaceSpec `json:"includeNamespaces,omitempty"`
	ExcludeNamespaces []NamespaceSpec `json:"excludeNamespaces,omitempty"`
	Reversible        bool            `json:"reversible,omitempty"`
	// EnableUserWriteBlocking takes mongosync's strings or its older booleans.
	EnableUserWriteBlocking WriteBlocking `json:"enableUserWriteBlocking,omitempty"`
	// BuildIndexes: afterDataCopy (the default), beforeDataCopy,
	// excludeHashed, excludeHashedAfterCopy or never.
	BuildIndexes string `json:"buildIndexes,omitempty"`
	// NamespaceRemap renames namespaces on the destination.
	NamespaceRemap []Remap `json:"namespaceRemap,omitempty"`
	// PreExistingDestinationData: true lets the sync merge into included
	// namespaces that already exist on the destination; without it (or
	// dropDestinationData) such a start is refused, as mongosync refuses it.
	PreExistingDestinationData bool `json:"preExistingDestinationData,omitempty"`
	// DropDestinationData (logbridge; mongomirror's --drop) drops the
	// included namespaces on the destination before the copy.
	DropDestinationData bool `json:"dropDestinationData,omitempty"`
	// Verification maps mongosync's embedded verifier onto logbridge's
	// verifier (pkg/verify): enabled (the default, as in mongosync) runs it
	// when the sync is committed.
	Verification *VerificationParams `json:"verification,omitempty"`
	// Sharding (mongosync: shard collections on a sharded destination) is
	// accepted and not applied: the start answers with a warning.
	Sharding *ShardingParams `json:"sharding,omitempty"`
	// DetectRandomID (mongosync's detectRandomId) is accepted and not
	// applied (logbridge always copies in _id ranges): a warning says so.
	DetectRandomID *bool `json:"detectRandomId,omitempty"`
	// CopyInNaturalOrder (mongosync 1.16+: namespaces copied in natural
	// order) is accepted and not applied, with a warning, like detectRandomId.
	CopyInNaturalOrder json.RawMessage `json:"copyInNaturalOrder,omitempty"`
	// DocumentFilter is mongosync's (beta) document filter. logbridge does
	// not filter documents; a start with one is refused rather than
	// copying documents the user meant to leave behind.
	DocumentFilter json.RawMessage `json:"documentFilter,omitempty"`
	// FilterOnDestination says that IncludeNamespaces and ExcludeNamespaces
	// name the destination's namespaces, not the source's. Reversed sets it
	// (the filter of a reversed sync keeps the first source's names, which
	// its source holds remapped); a start request cannot give it.
	FilterOnDestination bool `json:"filterOnDestination,omitempty"`
}

// VerificationParams is mongosync's "verification" start option.
type VerificationParams struct {
	Enabled *bool `json:"enabled,omitempty"`
}

// VerificationEnabled reports whether the built-in verifier runs on
// commit: yes unless the request says "verification": {"enabled": false}.
func (p StartParams) VerificationEnabled() bool {
	return p.Verification == nil || p.Verification.Enabled == nil || *p.Verification.Enabled
}

// ShardingParams is mongosync's "sharding" start option.
type ShardingParams struct {
	CreateSupportingIndexes bool            `json:"createSupportingIndexes,omitempty"`
	ShardingEntries         []ShardingEntry `json:"shardingEntries,omitempty"`
}

// ShardingEntry names a collection to shard on the destination and its key.
type ShardingEntry struct {
	Database        string          `json:"database"`
	Collection      string          `json:"collection"`
	ShardCollection json.RawMessage `json:"shardCollection,omitempty"`
}

// WriteBlocking is enableUserWriteBlocking, kept as mongosync's string.
type WriteBlocking string

const (
	// WriteBlockNone blocks nothing (logbridge's default, see README).
	WriteBlockNone WriteBlocking = "none"
	// WriteBlockDestinationOnly blocks user writes on the destination
	// until canWrite is true.
	WriteBlockDestinationOnly WriteBlocking = "destinationOnly"
	// WriteBlockSourceAndDestination also blocks user writes on the source
	// from commit on (true, in mongosync's older form).
	WriteBlockSourceAndDestination WriteBlocking = "sourceAndDestination"
)

// UnmarshalJSON takes "none", "destinationOnly", "sourceAndDestination",
// true (sourceAndDestination) or false (none), as mongosync does.
func (w *WriteBlocking) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*w = WriteBlockNone
		if v {
			*w = WriteBlockSourceAndDestination
		}
		return nil
	case string:
		switch x := WriteBlocking(v); x {
		case WriteBlockNone, WriteBlockDestinationOnly, WriteBlockSourceAndDestination:
			*w = x
			return nil
		}
	}
	return fmt.Errorf("enableUserWriteBlocking %s: use \"sourceAndDestination\", \"destinationOnly\", \"none\", true or false", b)
}

// Destination reports whether user writes are blocked on the destination
// until canWrite.
func (w WriteBlocking) Destination() bool {
	return w == WriteBlockDestinationOnly || w == WriteBlockSourceAndDestination
}

// Source reports whether user writes are blocked on the source from commit on.
func (w WriteBlocking) Source() bool { return w == WriteBlockSourceAndDestination }

// Remap renames a source database (and optionally collection) on the destination.
type Remap struct {
	From NamespaceRef `json:"from"`
	To   NamespaceRef `json:"to"`
}

// NamespaceRef names a database and optionally a collection.
type NamespaceRef struct {
	Database   string `json:"database"`
	Collection string `json:"collection,omitempty"`
}

// ClusterTime is a cluster time in the control log. It is not an alias of
// bson.Timestamp (as schema.ClusterTime is) because the log is JSON and its
// records say {"t":…,"i":…}: bson.Timestamp has no JSON tags and would write
// {"T":…,"I":…}. TimeOf and Timestamp are the one place that converts.
type ClusterTime struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

// TimeOf returns ts as a control-log cluster time.
func TimeOf(ts bson.Timestamp) *ClusterTime { return &ClusterTime{T: ts.T, I: ts.I} }

// Timestamp returns c as a BSON timestamp.
func (c ClusterTime) Timestamp() bson.Timestamp { return bson.Timestamp{T: c.T, I: c.I} }

// Event is one entry of the control log.
type Event struct {
	// V is the metadata version (pkg/version) of the binary that wrote the
	// event; Marshal sets it. Events written before it existed have none:
	// they are version 1. A reader refuses an event of a newer version
	// (Unmarshal) and an event type it does not know (Status.Err).
	V    int       `json:"v,omitempty"`
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	// Start: the request; Reversed: the swapped parameters of the new epoch.
	Params *StartParams `json:"params,omitempty"`
	// CommitMarked: the marker id and the final cluster time on the source.
	MarkerID    string       `json:"markerId,omitempty"`
	ClusterTime *ClusterTime `json:"clusterTime,omitempty"`
	// SinkCommitted: the destination's cluster time when the last marker was applied
	// (the reversed source starts its change stream there).
	DestClusterTime *ClusterTime `json:"destClusterTime,omitempty"`
	// Warnings to show in progress (e.g. write blocking unsupported).
	Warnings []string `json:"warnings,omitempty"`
	// CommitMarked: the epoch's copy totals, so that progress shows them
	// after the epoch's connector stopped (and after a restart).
	Copy *CopyTotals `json:"copy,omitempty"`
	// Throttle: the rates it sets (a nil rate leaves that one as it was).
	Throttle *Throttle `json:"throttle,omitempty"`
	// Offset is the event's offset in the control topic (set when read).
	Offset int64 `json:"-"`
}

// Throttle is the body of POST /api/v1/throttle and its control event:
// the source's snapshot read rate and the sink's write rate, in documents
// and bytes per second ({} is unlimited). They override --max-read-rate
// and --max-write-rate from then on, in every epoch.
type Throttle struct {
	MaxReadRate  *throttle.Rate `json:"maxReadRate,omitempty"`
	MaxWriteRate *throttle.Rate `json:"maxWriteRate,omitempty"`
}

// CopyTotals are progress.collectionCopy of an epoch.
type CopyTotals struct {
	EstimatedTotalBytes  int64 `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes int64 `json:"estimatedCopiedBytes"`
}

// Status is the folded control log.
type Status struct {
	State    State
	Epoch    int // 0 before start; +1 on each reversal
	Params   StartParams
	MarkerID string // commit marker of the current epoch, once written
	// CommitTime is the source's final cluster time of the current commit.
	CommitTime *ClusterTime
	// ResumeDestTime: where the reversed source starts (the old destination's
	// cluster time after the sink applied the commit).
	ResumeDestTime *ClusterTime
	SinkCommitted  bool
	// EpochStart: where the current epoch's change stream starts without a
	// snapshot (set by a reversal; nil for epoch 1, which snapshots).
	EpochStart *ClusterTime
	// PausedAt is when the current pause was recorded (zero unless PAUSED):
	// the destination knows nothing of the source after it.
	PausedAt time.Time
	// Copy: the current epoch's copy totals, recorded at commit.
	Copy *CopyTotals
	// Throttle: the rates set through the API (nil: the flags' rates).
	Throttle Throttle
	Warnings []string
	Events   int
	// unknown is the first event whose type this binary does not know
	// (Err reports it).
	unknown *Event
}

// Err is non-nil when the folded log holds an event type this binary does
// not know. A newer release that adds an event type raises the metadata
// version, so such an event is either from a release that forgot to, or
// foreign data; either way the state cannot be derived safely, and the
// service stops instead of ignoring it.
func (s Status) Err() error {
	if s.unknown == nil {
		return nil
	}
	return fmt.Errorf("control event at offset %d has the unknown type %q (metadata version %d): %w; run the logbridge release that wrote it, or check that nothing else writes to the control topic",
		s.unknown.Offset, s.unknown.Type, max(s.unknown.V, 1), version.ErrNewerFormat)
}

// Action is a request a user makes of the API.
type Action string

const (
	ActionStart   Action = "start"
	ActionPause   Action = "pause"
	ActionResume  Action = "resume"
	ActionCommit  Action = "commit"
	ActionReverse Action = "reverse"
)

// ErrInvalidTransition is returned (wrapped with the reason) by Check.
var ErrInvalidTransition = errors.New("invalid state transition")

// Check says whether action is allowed now, and why not.
func (s Status) Check(a Action) error {
	refuse := func(why string) error {
		return fmt.Errorf("%w: cannot %s while %s: %s", ErrInvalidTransition, a, s.State, why)
	}
	switch a {
	case ActionStart:
		if s.State != Idle {
			return refuse("a sync was already started; it continues from the control log (to start over, use a new topic prefix)")
		}
	case ActionPause:
		if s.State != Running {
			return refuse("only a RUNNING sync can be paused")
		}
	case ActionResume:
		if s.State != Paused {
			return refuse("only a PAUSED sync can be resumed")
		}
	case ActionCommit:
		if s.State != Running {
			return refuse("only a RUNNING sync can be committed")
		}
	case ActionReverse:
		if s.State != Committed {
			return refuse("reverse needs a COMMITTED sync")
		}
		if !s.Params.Reversible {
			return refuse("the sync was started without \"reversible\": true")
		}
	default:
		return fmt.Errorf("unknown action %q", a)
	}
	return nil
}

// Apply folds one event into the status. Events that do not fit the state
// (a duplicate written by a retried request, say) are ignored, so folding is
// deterministic whatever was appended.
func (s *Status) Apply(ev Event) {
	s.Events++
	switch ev.Type {
	case EvStart:
		if s.State == Idle && ev.Params != nil {
			s.State, s.Epoch, s.Params = Running, 1, *ev.Params
		}
	case EvPause:
		if s.State == Running {
			s.State, s.PausedAt = Paused, ev.Time
		}
	case EvResume:
		if s.State == Paused {
			s.State, s.PausedAt = Running, time.Time{}
		}
	case EvCommit:
		if s.State == Running {
			s.State = Committing
		}
	case EvCommitMarked:
		if s.State == Committing && s.MarkerID == "" {
			s.MarkerID, s.CommitTime, s.Copy = ev.MarkerID, ev.ClusterTime, ev.Copy
		}
	case EvSinkCommitted:
		// The first one counts: a duplicate (a restarted sink) must not move
		// the reversed source's start time.
		if s.State == Committing && s.MarkerID != "" && ev.MarkerID == s.MarkerID && !s.SinkCommitted {
			s.SinkCommitted, s.ResumeDestTime = true, ev.DestClusterTime
		}
	case EvCommitted:
		if s.State == Committing && s.SinkCommitted {
			s.State = Committed
		}
	case EvReverse:
		if s.State == Committed && s.Params.Reversible {
			s.State = Reversing
		}
	case EvReversed:
		if s.State == Reversing && ev.Params != nil {
			s.State, s.Epoch, s.Params, s.EpochStart = Running, s.Epoch+1, *ev.Params, ev.ClusterTime
			s.MarkerID, s.CommitTime, s.SinkCommitted, s.Copy = "", nil, false, nil
		}
	case EvThrottle: // in any state
		if ev.Throttle != nil {
			if r := ev.Throttle.MaxReadRate; r != nil {
				s.Throttle.MaxReadRate = r
			}
			if r := ev.Throttle.MaxWriteRate; r != nil {
				s.Throttle.MaxWriteRate = r
			}
		}
	default:
		if s.unknown == nil {
			u := ev
			s.unknown = &u
		}
	}
	s.Warnings = appendNew(s.Warnings, ev.Warnings...)
}

func appendNew(list []string, items ...string) []string {
outer:
	for _, it := range items {
		for _, have := range list {
			if have == it {
				continue outer
			}
		}
		list = append(list, it)
	}
	return list
}

// Fold returns the status after events, starting from IDLE.
func Fold(events []Event) Status {
	s := Status{State: Idle}
	for _, ev := range events {
		s.Apply(ev)
	}
	return s
}

// Reversed returns the parameters of the reversed epoch: source and
// destination swapped, namespace remapping inverted, and the namespace
// filter kept as it was written, now naming the destination's side
// (FilterOnDestination flips): reversing twice gives back the request.
func (p StartParams) Reversed() StartParams {
	r := p
	r.Source, r.Destination = p.Destination, p.Source
	r.FilterOnDestination = !p.FilterOnDestination
	r.NamespaceRemap = nil
	for _, m := range p.NamespaceRemap {
		// A collection rule without "to.collection" keeps the name; spelt
		// out, so that the inverse is not read as a database rule.
		if m.From.Collection != "" && m.To.Collection == "" {
			m.To.Collection = m.From.Collection
		}
		r.NamespaceRemap = append(r.NamespaceRemap, Remap{From: m.To, To: m.From})
	}
	return r
}

// TopicPrefix is the data topic prefix of an epoch: the base prefix for epoch
// 1, "<prefix>-e<N>" after N-1 reversals, so that each direction's log stays
// a clean, separately replayable history.
func TopicPrefix(base string, epoch int) string {
	if epoch <= 1 {
		return base
	}
	return fmt.Sprintf("%s-e%d", base, epoch)
}

// Marshal encodes an event for the control topic, stamped with this
// binary's metadata version unless ev.V is set.
func (ev Event) Marshal() ([]byte, error) {
	if ev.V == 0 {
		ev.V = version.Metadata()
	}
	return json.Marshal(ev)
}

// Unmarshal decodes an event read from the control topic. An event of a
// newer metadata version than this binary reads is an error wrapping
// version.ErrNewerFormat: its fields may mean what this binary cannot know.
func Unmarshal(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("control event is not valid JSON (%v): the control topic holds foreign data", err)
	}
	if err := version.CheckRead(fmt.Sprintf("control event %q", ev.Type), ev.V, version.UpgradeAdvice); err != nil {
		return ev, err
	}
	return ev, nil
}

// SinkGroup is the sink's consumer group of an epoch: the base group for
// epoch 1, "<group>-e<N>" after that (each epoch reads its own topics).
func SinkGroup(base string, epoch int) string {
	if epoch <= 1 {
		return base
	}
	return fmt.Sprintf("%s-e%d", base, epoch)
}
