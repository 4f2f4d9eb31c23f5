package mongoshim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// leaseSeconds is how far ahead of the clock the state file's cluster-time
// lease is kept: after a restart (even a kill -9) the clock starts at the
// lease, so cluster time never goes backwards, and jumps ahead by at most
// this much.
const leaseSeconds = 5

// shimState is the state file (Config.StateFile), BSON.
type shimState struct {
	ClusterTimeLease uint32      `bson:"clusterTimeLease"` // every cluster time issued is below Timestamp(lease, 0)
	WriteBlocked     bool        `bson:"writeBlocked"`
	Collections      []stateColl `bson:"collections"`
}

type stateColl struct {
	NS     string      `bson:"ns"`
	UUID   bson.Binary `bson:"uuid"`
	Images bool        `bson:"images,omitempty"`
	View   bool        `bson:"view,omitempty"`
	Opts   bson.Raw    `bson:"opts,omitempty"`
	Shard  *stateShard `bson:"shard,omitempty"`
}

// stateShard is a sharded collection's config.collections entry (mongos mode).
type stateShard struct {
	Key     bson.Raw       `bson:"key"`
	Unique  bool           `bson:"unique,omitempty"`
	Epoch   bson.ObjectID  `bson:"epoch"`
	TS      bson.Timestamp `bson:"ts"`
	Lastmod time.Time      `bson:"lastmod"`
}

// loadState restores the state file, if any, before the first tick.
func (s *Server) loadState() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	s.clock.extend = s.extendLease
	b, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st shimState
	if err := bson.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("state file %s: %w (delete it to start afresh)", s.cfg.StateFile, err)
	}
	s.clock.mu.Lock()
	if t := mkTS(st.ClusterTimeLease, 0); t > s.clock.last {
		s.clock.last = t
	}
	s.clock.mu.Unlock()
	s.blocked.Store(st.WriteBlocked)
	s.cat.mu.Lock()
	for _, c := range st.Collections {
		ci := &collInfo{uuid: c.UUID, images: c.Images, view: c.View, opts: c.Opts}
		if sh := c.Shard; sh != nil {
			ci.shard = &shardInfo{key: sh.Key, unique: sh.Unique, epoch: sh.Epoch, ts: sh.TS, lastmod: sh.Lastmod}
		}
		s.cat.colls[c.NS] = ci
		s.cat.restored[c.NS] = true
	}
	s.cat.mu.Unlock()
	s.log.Info("state restored", "file", s.cfg.StateFile, "clusterTimeLease", st.ClusterTimeLease, "collections", len(st.Collections))
	return nil
}

// saveState writes the state file when it changed or the cluster time nears
// its lease (always with force).
func (s *Server) saveState(force bool) error {
	if s.cfg.StateFile == "" {
		return nil
	}
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	lease := s.clock.lease
	if hi := max(s.clock.last.T(), uint32(time.Now().Unix())); hi+leaseSeconds/2 >= lease {
		lease = hi + leaseSeconds
	}
	return s.writeState(lease, force)
}

// extendLease is the clock's hook when a tick reaches the lease (the clock's
// mutex is held): it persists a lease above t and returns it.
func (s *Server) extendLease(t uint32) uint32 {
	if err := s.writeState(t+leaseSeconds, true); err != nil {
		s.log.Error("extending the cluster-time lease", "err", err)
	}
	return s.clock.lease
}

// writeState writes the state with lease; the caller holds s.clock.mu.
func (s *Server) writeState(lease uint32, force bool) error {
	st := shimState{ClusterTimeLease: lease, WriteBlocked: s.blocked.Load()}
	s.cat.mu.Lock()
	for ns, ci := range s.cat.colls {
		sc := stateColl{NS: ns, UUID: ci.uuid, Images: ci.images, View: ci.view, Opts: ci.opts}
		if sh := ci.shard; sh != nil {
			sc.Shard = &stateShard{Key: sh.key, Unique: sh.unique, Epoch: sh.epoch, TS: sh.ts, Lastmod: sh.lastmod}
		}
		st.Collections = append(st.Collections, sc)
	}
	s.cat.mu.Unlock()
	sort.Slice(st.Collections, func(i, j int) bool { return st.Collections[i].NS < st.Collections[j].NS })
	b, err := bson.Marshal(st)
	if err != nil {
		return err
	}
	if !force && lease == s.clock.lease && bytes.Equal(b, s.stateSaved) {
		return nil
	}
	tmp := s.cfg.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(s.cfg.StateFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.cfg.StateFile); err != nil {
		return err
	}
	s.clock.lease, s.stateSaved = lease, b
	return nil
}
