package mongoshim

import (
	"context"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// collInfo is what the shim knows of a collection beyond the backend.
type collInfo struct {
	uuid   bson.Binary // collectionUUID, stable across renames
	images bool        // changeStreamPreAndPostImages.enabled
	view   bool
	// opts are collection options the backend accepts and drops (validator,
	// validationLevel, validationAction, collation, ...): listed by
	// listCollections, not enforced.
	opts bson.Raw
	// shard: the collection is sharded (mongos mode), its
	// config.collections entry
	shard *shardInfo
}

// keptOptions are the create/collMod options the shim lists for the backend.
var keptOptions = []string{"validator", "validationLevel", "validationAction", "collation", "storageEngine", "indexOptionDefaults"}

// mergeOptions returns old with the kept options of cmd set (a validator
// brings MongoDB's defaults validationLevel strict / validationAction error).
func mergeOptions(old, cmd bson.Raw) bson.Raw {
	if old == nil {
		old = emptyDoc
	}
	var kv []any
	for _, k := range keptOptions {
		if v, err := cmd.LookupErr(k); err == nil {
			kv = append(kv, k, v)
		}
	}
	if len(kv) == 0 {
		return old
	}
	out := withFields(old, kv...)
	if hasKey(out, "validator") {
		if !hasKey(out, "validationLevel") {
			out = withFields(out, "validationLevel", "strict")
		}
		if !hasKey(out, "validationAction") {
			out = withFields(out, "validationAction", "error")
		}
	}
	return out
}

// catalog mirrors the backend's namespaces (loaded lazily per database) so
// that implicit collection creation can be reported and collections keep a
// UUID. Every DDL goes through the shim, so it stays in step.
type catalog struct {
	mu     sync.Mutex
	loaded map[string]bool
	colls  map[string]*collInfo // "db.coll"
	// restored: entries read from the state file, checked against the
	// backend when their database is first loaded
	restored map[string]bool
}

func newCatalog() *catalog {
	return &catalog{loaded: map[string]bool{}, colls: map[string]*collInfo{}, restored: map[string]bool{}}
}

// load reads db's collections from the backend once.
func (s *Server) catalogLoad(ctx context.Context, db string) error {
	s.cat.mu.Lock()
	done := s.cat.loaded[db]
	s.cat.mu.Unlock()
	if done {
		return nil
	}
	infos, err := s.be.listCollections(ctx, db, nil)
	if err != nil {
		return err
	}
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	if s.cat.loaded[db] {
		return nil
	}
	listed := map[string]bool{}
	for _, in := range infos {
		name := lookupString(in, "name")
		if name == "" {
			continue
		}
		ns := db + "." + name
		listed[ns] = true
		if _, ok := s.cat.colls[ns]; !ok {
			s.cat.colls[ns] = &collInfo{uuid: newUUID(), view: lookupString(in, "type") == "view"}
		}
	}
	// a restored entry whose collection is gone (the shim was killed
	// between a drop and saving its state)
	for ns := range s.cat.restored {
		if strings.HasPrefix(ns, db+".") {
			if !listed[ns] {
				delete(s.cat.colls, ns)
			}
			delete(s.cat.restored, ns)
		}
	}
	s.cat.loaded[db] = true
	return nil
}

// lookup returns the collection's info (nil when unknown); load first.
func (s *Server) catalogGet(ctx context.Context, db, coll string) *collInfo {
	if err := s.catalogLoad(ctx, db); err != nil {
		s.log.Warn("listing collections", "db", db, "err", err)
	}
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	return s.cat.colls[db+"."+coll]
}

func (s *Server) catalogPut(db, coll string, ci *collInfo) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	s.cat.colls[db+"."+coll] = ci
}

func (s *Server) catalogDelete(db, coll string) *collInfo {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	ci := s.cat.colls[db+"."+coll]
	delete(s.cat.colls, db+"."+coll)
	return ci
}

func (s *Server) catalogDropDB(db string) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	for ns := range s.cat.colls {
		if strings.HasPrefix(ns, db+".") {
			delete(s.cat.colls, ns)
		}
	}
	s.cat.loaded[db] = true
}
