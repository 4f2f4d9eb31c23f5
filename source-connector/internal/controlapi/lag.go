package controlapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/schema"
)

// The destination's lag (progress.lagTimeSeconds) is measured on the log:
// the sink group's committed offset in a partition is the first record the
// destination does not hold yet, so the destination reflects the source up to
// the source time of that record (its envelope's wall time, else its cluster
// time). The lag is now minus the oldest such time over every partition with
// unapplied records, and 0 when the sink has applied the whole log.
//
// The first *unapplied* record is used rather than the last applied one: a
// partition quiet for an hour that just received one record is a few
// milliseconds behind, not an hour. Only transaction markers between the
// committed offset and the end (the sink commits past its last data record,
// and a Kafka transaction ends with a control record) count as applied.

// partPos is one partition's sink position.
type partPos struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset; -1 when it has none (the
	// sink starts at the beginning of the partition).
	Committed int64
	// End is the last stable offset (read_committed, as the sink reads).
	End int64
}

// pending reports whether the partition may hold records the sink has not applied.
func (p partPos) pending() bool { return p.End > max(p.Committed, 0) }

type tp struct {
	topic     string
	partition int32
}

// unapplied is what a lookup found from a committed offset on.
type unapplied struct {
	from int64     // the committed offset looked from
	end  int64     // the end offset at lookup time (for none)
	none bool      // no data record in [from, end): only transaction markers
	at   time.Time // source time of the first data record (when !none)
}

// lagProbe finds the source time of each partition's first unapplied record.
// Results are cached per committed offset: the record at or after a given
// offset never changes, so a stalled or caught-up sink costs no reads.
type lagProbe struct {
	opts    []kgo.Opt
	newSerd func(context.Context) (*schema.Serde, error)

	mu         sync.Mutex
	serde      *schema.Serde
	serdeTried time.Time
	cache      map[tp]unapplied
}

func newLagProbe(opts []kgo.Opt, newSerde func(context.Context) (*schema.Serde, error)) *lagProbe {
	return &lagProbe{opts: opts, newSerd: newSerde, cache: map[tp]unapplied{}}
}

// firstUnapplied returns, for every pending partition, its first unapplied
// record (none when it holds only transaction markers up to its end).
// Partitions it could not read in time are missing from the result, and
// the error says which.
func (l *lagProbe) firstUnapplied(ctx context.Context, parts []partPos) (map[tp]unapplied, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[tp]unapplied{}
	want := map[tp]partPos{}
	seen := map[tp]bool{}
	for _, p := range parts {
		k := tp{p.Topic, p.Partition}
		seen[k] = true
		if !p.pending() {
			continue
		}
		if u, ok := l.cache[k]; ok && u.from == p.Committed && (!u.none || u.end == p.End) {
			out[k] = u
			continue
		}
		want[k] = p
	}
	for k := range l.cache { // forget partitions that no longer exist
		if !seen[k] {
			delete(l.cache, k)
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	if l.serde == nil && l.newSerd != nil && time.Since(l.serdeTried) > time.Minute {
		// Without a serde (registry down) the Kafka record timestamp, the
		// time the source published the record, stands in; retried at most
		// once a minute so that progress stays fast.
		l.serdeTried = time.Now()
		l.serde, _ = l.newSerd(ctx)
	}
	offsets := map[string]map[int32]kgo.Offset{}
	for k, p := range want {
		if offsets[k.topic] == nil {
			offsets[k.topic] = map[int32]kgo.Offset{}
		}
		if p.Committed < 0 {
			offsets[k.topic][k.partition] = kgo.NewOffset().AtStart()
		} else {
			offsets[k.topic][k.partition] = kgo.NewOffset().At(p.Committed)
		}
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, l.opts...),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are kept so that a range holding only
		// transaction markers is seen to end, not waited on.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.FetchMaxPartitionBytes(256<<10),
	)...)
	if err != nil {
		return out, fmt.Errorf("creating a client to read the sink's next records: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			p, ok := want[k]
			if !ok || r.Offset < p.Committed {
				// Below the committed offset: the client reset an
				// out-of-range offset to the start; those are applied.
				return
			}
			u := unapplied{from: p.Committed, end: p.End}
			switch {
			case r.Offset >= p.End || (r.Attrs.IsControl() && r.Offset+1 >= p.End):
				u.none = true
			case r.Attrs.IsControl():
				return // a transaction marker: keep reading
			default:
				u.at = l.recordTime(r)
			}
			out[k], l.cache[k] = u, u
			delete(want, k)
		})
	}
	if len(want) > 0 {
		return out, fmt.Errorf("could not read the next record of %d partitions (e.g. %s) in time", len(want), anyKey(want))
	}
	return out, nil
}

func anyKey(m map[tp]partPos) string {
	for k := range m {
		return fmt.Sprintf("%s/%d", k.topic, k.partition)
	}
	return ""
}

// recordTime is the source time of a record: the envelope's wall time, else
// its cluster time, else (undecodable) the Kafka record timestamp.
func (l *lagProbe) recordTime(r *kgo.Record) time.Time {
	if l.serde != nil {
		if enc, err := schema.EncodingOf(r.Headers); err == nil {
			if ev, err := l.serde.DecodeValue(enc, r.Value); err == nil {
				if t := eventTime(ev); !t.IsZero() {
					return t
				}
			}
		}
	}
	return r.Timestamp
}

// eventTime is an event's source time (zero when it carries none).
func eventTime(ev *schema.Event) time.Time {
	switch {
	case ev.WallTimeMillis > 0:
		return time.UnixMilli(ev.WallTimeMillis)
	case ev.ClusterTime.T > 0:
		return time.Unix(int64(ev.ClusterTime.T), 0)
	}
	return time.Time{}
}

// destinationLag is now minus the oldest first-unapplied time, 0 when every
// partition is applied to its end; appliedThrough is that oldest time (zero
// when fully applied).
func destinationLag(now time.Time, first map[tp]unapplied) (lag time.Duration, appliedThrough time.Time) {
	for _, u := range first {
		if u.none || u.at.IsZero() {
			continue
		}
		if appliedThrough.IsZero() || u.at.Before(appliedThrough) {
			appliedThrough = u.at
		}
	}
	if appliedThrough.IsZero() {
		return 0, appliedThrough
	}
	return max(0, now.Sub(appliedThrough)), appliedThrough
}
