package mongoshim

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ---------------------------------------------------------------- clock --

// ts packs a BSON timestamp (T seconds, I increment) into a sortable uint64.
type ts uint64

func mkTS(t, i uint32) ts         { return ts(uint64(t)<<32 | uint64(i)) }
func (x ts) T() uint32            { return uint32(x >> 32) }
func (x ts) I() uint32            { return uint32(x) }
func (x ts) bson() bson.Timestamp { return bson.Timestamp{T: x.T(), I: x.I()} }
func (x ts) String() string       { return fmt.Sprintf("Timestamp(%d, %d)", x.T(), x.I()) }

// clock is the hybrid logical clock of the shim's single-member "replica set":
// T follows the wall clock in seconds, I counts within the second.
type clock struct {
	mu   sync.Mutex
	last ts
	now  func() time.Time
	// With a state file: every T below lease is covered by the file's
	// lease; a tick reaching it calls extend (under mu) for a new one.
	lease  uint32
	extend func(t uint32) uint32
}

func (c *clock) tick() ts {
	c.mu.Lock()
	defer c.mu.Unlock()
	sec := uint32(c.now().Unix())
	if sec > c.last.T() {
		c.last = mkTS(sec, 1)
	} else {
		c.last = mkTS(c.last.T(), c.last.I()+1)
	}
	if c.extend != nil && c.last.T() >= c.lease {
		c.lease = c.extend(c.last.T())
	}
	return c.last
}

func (c *clock) current() ts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// ---------------------------------------------------------------- tokens --

// pos is a position in the oplog: events sort by (ts, txn index, flag).
// An event's resume token encodes its pos; a high-water mark "after every
// event at ts" has idx hwmIdx.
type pos struct {
	ts   ts
	idx  uint32
	flag uint8 // 0 event, 1 invalidate
}

const hwmIdx = ^uint32(0)

func (a pos) less(b pos) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.idx != b.idx {
		return a.idx < b.idx
	}
	return a.flag < b.flag
}

// hwm is the position after every event at or before t.
func hwm(t ts) pos { return pos{ts: t, idx: hwmIdx} }

// before is the position just before the first event at t.
func before(t ts) pos {
	if t == 0 {
		return pos{}
	}
	return hwm(t - 1)
}

// Token layout (hex of): 0x82 | T (4 bytes BE) | I (4 bytes BE) | 0x2B |
// idx (4 bytes BE) | flag | 0x04. Like MongoDB's KeyString tokens it starts
// with type byte 130 and the big-endian cluster time, and tokens of later
// events compare greater as strings.
func (p pos) token() bson.Raw {
	var b [16]byte
	b[0] = 0x82
	binary.BigEndian.PutUint32(b[1:], p.ts.T())
	binary.BigEndian.PutUint32(b[5:], p.ts.I())
	b[9] = 0x2B
	binary.BigEndian.PutUint32(b[10:], p.idx)
	b[14] = p.flag
	b[15] = 0x04
	return marshalDoc(bson.D{{Key: "_data", Value: strings.ToUpper(hex.EncodeToString(b[:]))}})
}

func parseToken(tok bson.Raw) (pos, error) {
	s := lookupString(tok, "_data")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 || b[0] != 0x82 || b[9] != 0x2B || b[15] != 0x04 {
		return pos{}, fmt.Errorf("invalid resume token %s: not issued by this server", tok)
	}
	return pos{
		ts:   mkTS(binary.BigEndian.Uint32(b[1:]), binary.BigEndian.Uint32(b[5:])),
		idx:  binary.BigEndian.Uint32(b[10:]),
		flag: b[14],
	}, nil
}

// ---------------------------------------------------------------- events --

// event is one oplog-derived change event, stored in a neutral form and
// rendered per stream (fullDocument modes, showExpandedEvents).
type event struct {
	pos      pos
	wall     time.Time
	op       string // insert, update, replace, delete, drop, rename, dropDatabase, create, createIndexes, dropIndexes, modify
	db, coll string
	toDB     string
	toColl   string
	uuid     bson.RawValue // collectionUUID (binary subtype 4), may be empty
	docKey   bson.Raw
	doc      bson.Raw // insert/replace fullDocument
	post     bson.Raw // post-image (update/replace)
	pre      bson.Raw // pre-image (update/replace/delete)
	images   bool     // changeStreamPreAndPostImages was enabled on the collection
	updDesc  bson.Raw // updateDescription
	// updDescExpanded is updateDescription with disambiguatedPaths, shown
	// with showExpandedEvents; nil when no path is ambiguous
	updDescExpanded bson.Raw
	opDesc          bson.Raw // operationDescription (expanded events, rename)
	lsid            bson.Raw
	txnNum          int64
	inTxn           bool
	expanded        bool // shown only with showExpandedEvents
}

// oplog is the in-memory event history.
type oplog struct {
	mu      sync.RWMutex
	events  []*event
	last    ts  // latest oplog time (events and no-ops)
	minPos  pos // oldest resumable position
	max     int // events kept (0 = unlimited)
	notify  chan struct{}
	written time.Time // time of the last append
}

func newOplog(start ts, max int) *oplog {
	return &oplog{last: start, minPos: before(start), max: max, notify: make(chan struct{}), written: time.Now()}
}

// append adds events (one oplog time each, or one shared time for a
// transaction) and wakes waiting streams.
func (o *oplog) append(evs []*event, at ts) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, evs...)
	o.written = time.Now()
	if at > o.last {
		o.last = at
	}
	if o.max > 0 && len(o.events) > o.max+o.max/4 {
		// Trim whole oplog times, down to max, once a quarter of max has
		// piled up above it: trimming copies the kept events, and doing
		// it on every append once full made each write cost a copy of
		// the whole oplog (0.5 ms per insert at 300,000 events).
		cut := len(o.events) - o.max
		for cut < len(o.events) && cut > 0 && o.events[cut].pos.ts == o.events[cut-1].pos.ts {
			cut++
		}
		if cut < len(o.events) {
			o.minPos = before(o.events[cut].pos.ts)
		} else {
			o.minPos = before(o.last + 1)
		}
		o.events = append([]*event(nil), o.events[cut:]...)
	}
	close(o.notify)
	o.notify = make(chan struct{})
}

// noop advances the oplog time without an event (appendOplogNote, writes
// to internal databases).
func (o *oplog) noop(at ts) { o.append(nil, at) }

// since returns up to max events after p, the oplog time scanned through, and
// the channel closed on the next append.
func (o *oplog) since(p pos, max int) ([]*event, ts, <-chan struct{}) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	i := sort.Search(len(o.events), func(i int) bool { return p.less(o.events[i].pos) })
	j := len(o.events)
	if max > 0 && j-i > max {
		j = i + max
	}
	last := o.last
	if j < len(o.events) {
		last = 0 // not scanned to the end
	}
	return o.events[i:j], last, o.notify
}

func (o *oplog) lost(p pos) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return p.less(o.minPos)
}

func (o *oplog) lastTS() ts {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.last
}

// idleFor is how long ago the oplog was last written.
func (o *oplog) idleFor() time.Duration {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return time.Since(o.written)
}
