package consume

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/logbridge/logbridge/schema"
)

type partProgress struct {
	mu          sync.Mutex
	acked       int64 // next offset to apply; -1 unknown
	ackedOK     bool
	lastStable  int64
	highWater   int64
	clusterTime schema.ClusterTime
	appliedAt   time.Time
	barrier     string
}

func (p *partProgress) setLastStable(lso, hwm int64) {
	p.mu.Lock()
	p.lastStable, p.highWater = lso, hwm
	p.mu.Unlock()
}

func (p *partProgress) setAcked(o int64) {
	p.mu.Lock()
	if !p.ackedOK || o > p.acked {
		p.acked, p.ackedOK = o, true
	}
	p.mu.Unlock()
}

func (p *partProgress) setClusterTime(ct schema.ClusterTime) {
	if ct.T == 0 {
		return
	}
	p.mu.Lock()
	if ct.T > p.clusterTime.T || ct.T == p.clusterTime.T && ct.I > p.clusterTime.I {
		p.clusterTime = ct
	}
	p.appliedAt = time.Now()
	p.mu.Unlock()
}

func (p *partProgress) setBarrier(id string) {
	p.mu.Lock()
	p.barrier = id
	p.mu.Unlock()
}

// PartitionProgress is the sink's position in one partition.
type PartitionProgress struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// AppliedOffset is the next offset to apply: every record before it is
	// acknowledged by the destination. -1 before the first record.
	AppliedOffset int64 `json:"appliedOffset"`
	// CommittedOffset is the offset committed to the group (-1: none yet).
	CommittedOffset int64 `json:"committedOffset"`
	// LastStableOffset is the partition's end for read_committed consumers
	// at the last fetch.
	LastStableOffset int64 `json:"lastStableOffset"`
	// LagRecords is LastStableOffset − AppliedOffset (transaction markers
	// count as offsets, so a transactional log shows a small residue).
	LagRecords int64 `json:"lagRecords"`
	// ClusterTime is the source cluster time of the last applied event.
	ClusterTime schema.ClusterTime `json:"clusterTime"`
	// ApplyLagSeconds is now − ClusterTime (0 when unknown).
	ApplyLagSeconds float64 `json:"applyLagSeconds"`
	// Barrier is the DDL or marker ID the partition waits at, if any.
	Barrier string `json:"barrier,omitempty"`
}

// Progress is the sink's position over its assigned partitions.
type Progress struct {
	Group           string              `json:"group"`
	Partitions      []PartitionProgress `json:"partitions"`
	LagRecords      int64               `json:"lagRecords"`
	ApplyLagSeconds float64             `json:"applyLagSeconds"`
}

// Progress returns the position per assigned partition. Safe to call at any
// time, also before Run.
func (c *Consumer) Progress() Progress {
	out := Progress{Group: c.cfg.Group, Partitions: []PartitionProgress{}}
	c.mu.Lock()
	keys := make([]tp, 0, len(c.progress))
	for k := range c.progress {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].topic < keys[j].topic || keys[i].topic == keys[j].topic && keys[i].partition < keys[j].partition
	})
	for _, k := range keys {
		c.mu.Lock()
		pp := c.progress[k]
		c.mu.Unlock()
		if pp == nil {
			continue
		}
		committed := int64(-1)
		if c.offs != nil {
			if _, _, cm, ok := c.offs.get(k); ok {
				committed = cm
			}
		}
		pp.mu.Lock()
		p := PartitionProgress{Topic: k.topic, Partition: k.partition, AppliedOffset: -1, CommittedOffset: committed,
			LastStableOffset: pp.lastStable, ClusterTime: pp.clusterTime, Barrier: pp.barrier}
		if pp.ackedOK {
			p.AppliedOffset = pp.acked
		}
		pos := max(p.AppliedOffset, committed, 0)
		if pp.lastStable > pos {
			p.LagRecords = pp.lastStable - pos
		}
		if pp.clusterTime.T > 0 {
			if p.LagRecords > 0 {
				p.ApplyLagSeconds = max(0, time.Since(time.Unix(int64(pp.clusterTime.T), 0)).Seconds())
			}
		}
		pp.mu.Unlock()
		c.m.ConsumerLag.WithLabelValues(k.topic, strconv.Itoa(int(k.partition))).Set(float64(p.LagRecords))
		out.LagRecords += p.LagRecords
		out.ApplyLagSeconds = max(out.ApplyLagSeconds, p.ApplyLagSeconds)
		out.Partitions = append(out.Partitions, p)
	}
	return out
}

func (c *Consumer) forgetProgress(ps map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, parts := range ps {
		for _, p := range parts {
			delete(c.progress, tp{t, p})
			c.m.ConsumerLag.DeleteLabelValues(t, strconv.Itoa(int(p)))
		}
	}
}
