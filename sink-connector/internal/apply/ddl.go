package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
)

// Destination metadata: which barriers (DDL and markers) a consumer group has
// applied. _id is {g: group, id: DDL or marker ID, ns: destination namespace}.
const (
	MetaDB      = "__logbridge"
	AppliedColl = "applied_ddl"
)

// DDLApplier applies DDL and marker barriers once per consumer group and
// records them in MetaDB.AppliedColl. Safe for concurrent use.
type DDLApplier struct {
	client       *mongo.Client
	wc           *writeconcern.WriteConcern
	group        string
	buildIndexes bool
	nsmap        NSMap
	metrics      *metrics.Metrics
	log          *slog.Logger
	retry        retry.Policy
	// PollInterval is how often a rename target waits for the rename to be
	// recorded.
	PollInterval time.Duration
	// ExcludeHashed skips hashed indexes in createIndexes (mongosync's
	// buildIndexes excludeHashed): set before the first Apply.
	ExcludeHashed bool
}

// NewDDLApplier returns an applier for the consumer group.
func NewDDLApplier(client *mongo.Client, wc *writeconcern.WriteConcern, group string, buildIndexes bool, m NSMap, mt *metrics.Metrics, log *slog.Logger) *DDLApplier {
	a := &DDLApplier{client: client, wc: wc, group: group, buildIndexes: buildIndexes, nsmap: m, metrics: mt, log: log,
		retry: retry.Default, PollInterval: 100 * time.Millisecond}
	a.retry.OnRetry = func(attempt int, err error) {
		mt.Retries.WithLabelValues("mongo").Inc()
		log.Warn("retrying destination DDL", "attempt", attempt, "err", err)
	}
	return a
}

// BarrierRole says what the barrier of one topic does with a DDL or marker.
type BarrierRole int

const (
	RoleApply      BarrierRole = iota + 1 // apply it to NS
	RoleWaitRename                        // rename target: wait until the source's topic applied the rename
)

// Role returns what the topic's barrier does with ev and the (source)
// namespace it concerns. The topic is "<prefix>.<db>.<coll>": a rename is
// written into the topics of the source and the target, and is applied from
// the source's; dropDatabase is written into the topic of every collection of
// the database and drops that topic's collection (so each namespace stays
// independent of the others' progress).
func Role(topic string, ev *schema.Event) (BarrierRole, schema.Namespace) {
	if ev.Op == schema.OpDDL && ev.DDL != nil {
		switch ev.DDL.Kind {
		case schema.DDLRename:
			if t := ev.DDL.Target; t != nil && strings.HasSuffix(topic, "."+t.String()) && !strings.HasSuffix(topic, "."+ev.NS.String()) {
				return RoleWaitRename, ev.NS
			}
		case schema.DDLDropDatabase:
			if ev.NS.Coll == "" {
				if i := strings.Index(topic, "."+ev.NS.DB+"."); i >= 0 {
					return RoleApply, schema.Namespace{DB: ev.NS.DB, Coll: topic[i+len(ev.NS.DB)+2:]}
				}
			}
		}
	}
	return RoleApply, ev.NS
}

func (a *DDLApplier) key(id string, ns string) bson.D {
	return bson.D{{Key: "g", Value: a.group}, {Key: "id", Value: id}, {Key: "ns", Value: ns}}
}

// MarkerKey is the "ns" part of a marker's applied record. A marker is
// written into every topic of the log with one ID and the same namespace, and
// changes nothing on the destination, so it is recorded per topic instead:
// the record then says that every partition of that topic passed it (what a
// commit waits for, see AppliedMarkerTopics).
func MarkerKey(topic string) string { return "topic:" + topic }

// AppliedMarkerTopics returns the topics in which the group recorded marker
// id as applied, read from the destination's MetaDB.AppliedColl.
func AppliedMarkerTopics(ctx context.Context, client *mongo.Client, group, id string) (map[string]bool, error) {
	cur, err := client.Database(MetaDB).Collection(AppliedColl).Find(ctx,
		bson.D{{Key: "_id.g", Value: group}, {Key: "_id.id", Value: id}})
	if err != nil {
		return nil, fmt.Errorf("reading %s.%s: %w", MetaDB, AppliedColl, err)
	}
	defer cur.Close(ctx)
	out := map[string]bool{}
	for cur.Next(ctx) {
		ns, ok := cur.Current.Lookup("_id", "ns").StringValueOK()
		if t, isMarker := strings.CutPrefix(ns, "topic:"); ok && isMarker {
			out[t] = true
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("reading %s.%s: %w", MetaDB, AppliedColl, err)
	}
	return out, nil
}

func (a *DDLApplier) meta() *mongo.Collection {
	return a.client.Database(MetaDB, options.Database().SetWriteConcern(a.wc)).Collection(AppliedColl)
}

// IsApplied reports whether the barrier id for the destination namespace ns
// is recorded as applied.
func (a *DDLApplier) IsApplied(ctx context.Context, id string, ns schema.Namespace) (bool, error) {
	return a.isApplied(ctx, id, ns.String())
}

func (a *DDLApplier) isApplied(ctx context.Context, id string, ns string) (bool, error) {
	var found bool
	err := retry.Do(ctx, a.retry, mongox.IsTransient, func(ctx context.Context) error {
		n, err := a.meta().CountDocuments(ctx, bson.D{{Key: "_id", Value: a.key(id, ns)}})
		found = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("reading %s.%s: %w", MetaDB, AppliedColl, err)
	}
	return found, nil
}

func (a *DDLApplier) record(ctx context.Context, id string, ns string, kind string) error {
	err := retry.Do(ctx, a.retry, mongox.IsTransient, func(ctx context.Context) error {
		_, err := a.meta().ReplaceOne(ctx, bson.D{{Key: "_id", Value: a.key(id, ns)}},
			bson.D{{Key: "v", Value: version.Metadata()}, {Key: "kind", Value: kind}, {Key: "at", Value: time.Now().UTC()}}, options.Replace().SetUpsert(true))
		return err
	})
	if err != nil {
		return fmt.Errorf("recording barrier %s for %s in %s.%s: %w", id, ns, MetaDB, AppliedColl, err)
	}
	return nil
}

// Apply applies the barrier ev for topic once: it returns at once when the
// barrier is already recorded as applied, and records it after applying.
// For a rename target it waits until the source's topic recorded the rename.
// An error wrapping ErrRejected is a DDL the destination refuses (a dead
// letter); other errors are infrastructure failures.
func (a *DDLApplier) Apply(ctx context.Context, topic string, ev *schema.Event) error {
	id, kind := barrierID(ev)
	if id == "" {
		return fmt.Errorf("%w: %s record without an ID", ErrBadEvent, ev.Op)
	}
	role, srcNS := Role(topic, ev)
	dst := a.nsmap.Map(srcNS)
	if role == RoleWaitRename {
		for {
			ok, err := a.IsApplied(ctx, id, dst)
			if err != nil || ok {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(a.PollInterval):
			}
		}
	}
	rec := dst.String()
	if ev.Op == schema.OpMarker {
		rec = MarkerKey(topic)
	}
	done, err := a.isApplied(ctx, id, rec)
	if err != nil || done {
		return err
	}
	if ev.Op == schema.OpDDL {
		start := time.Now()
		if err := a.applyDDL(ctx, ev, dst); err != nil {
			return err
		}
		a.metrics.BulkSeconds.WithLabelValues("ddl").Observe(time.Since(start).Seconds())
		a.metrics.DDLApplied.WithLabelValues(kind).Inc()
	}
	return a.record(ctx, id, rec, kind)
}

func barrierID(ev *schema.Event) (id, kind string) {
	switch {
	case ev.Op == schema.OpDDL && ev.DDL != nil:
		return ev.DDL.ID, string(ev.DDL.Kind)
	case ev.Op == schema.OpMarker && ev.Marker != nil:
		return ev.Marker.ID, "marker:" + string(ev.Marker.Kind)
	}
	return "", ""
}

// BarrierID returns the ID shared by every copy of a DDL or marker record.
func BarrierID(ev *schema.Event) string { id, _ := barrierID(ev); return id }

func (a *DDLApplier) wcDoc() bson.D {
	d := bson.D{}
	if a.wc != nil && a.wc.W != nil {
		d = append(d, bson.E{Key: "w", Value: a.wc.W})
	}
	if a.wc != nil && a.wc.Journal != nil {
		d = append(d, bson.E{Key: "j", Value: *a.wc.Journal})
	}
	return d
}

// run runs a command on db with the write concern, retrying transient errors;
// an error any of ok matches (mongox predicates) counts as success.
func (a *DDLApplier) run(ctx context.Context, db string, cmd bson.D, ok ...func(error) bool) error {
	if wc := a.wcDoc(); len(wc) > 0 {
		cmd = append(cmd, bson.E{Key: "writeConcern", Value: wc})
	}
	return retry.Do(ctx, a.retry, mongox.IsTransient, func(ctx context.Context) error {
		err := a.client.Database(db).RunCommand(ctx, cmd).Err()
		for _, tolerated := range ok {
			if err != nil && tolerated(err) {
				return nil
			}
		}
		return err
	})
}

func rejected(err error, what string) error {
	if err == nil {
		return nil
	}
	var se mongo.ServerError
	if errors.As(err, &se) && !mongox.IsTransient(err) {
		return fmt.Errorf("%w: %s: %w", ErrRejected, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func appendRaw(cmd bson.D, doc bson.Raw, skip ...string) (bson.D, error) {
	if len(doc) == 0 {
		return cmd, nil
	}
	els, err := doc.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: options are not a BSON document: %v", ErrBadEvent, err)
	}
next:
	for _, e := range els {
		for _, s := range skip {
			if e.Key() == s {
				continue next
			}
		}
		cmd = append(cmd, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return cmd, nil
}

func indexSpecs(raw bson.Raw) ([]bson.Raw, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	v, err := raw.LookupErr("indexes")
	if err != nil {
		return nil, fmt.Errorf("%w: index DDL without an indexes array", ErrBadEvent)
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: indexes is not an array", ErrBadEvent)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: indexes: %v", ErrBadEvent, err)
	}
	out := make([]bson.Raw, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: index spec is not a document", ErrBadEvent)
		}
		out = append(out, bson.Raw(d))
	}
	return out, nil
}

func (a *DDLApplier) applyDDL(ctx context.Context, ev *schema.Event, dst schema.Namespace) error {
	d := ev.DDL
	switch d.Kind {
	case schema.DDLCreate:
		cmd, err := appendRaw(bson.D{{Key: "create", Value: dst.Coll}}, d.Options)
		if err != nil {
			return err
		}
		if v, err := d.Options.LookupErr("viewOn"); err == nil {
			// A view's source collection is renamed like any namespace of the database.
			if on, ok := v.StringValueOK(); ok {
				to := a.nsmap.Map(schema.Namespace{DB: ev.NS.DB, Coll: on})
				if to.DB != dst.DB {
					return fmt.Errorf("%w: view %s on %s: ns-map moves its source to another database (%s)", ErrRejected, dst, on, to.DB)
				}
				for i := range cmd {
					if cmd[i].Key == "viewOn" {
						cmd[i].Value = to.Coll
					}
				}
			}
		}
		return rejected(a.run(ctx, dst.DB, cmd, mongox.IsNamespaceExists), "create "+dst.String())
	case schema.DDLDrop:
		return rejected(a.run(ctx, dst.DB, bson.D{{Key: "drop", Value: dst.Coll}}, mongox.IsNamespaceNotFound), "drop "+dst.String())
	case schema.DDLDropDatabase:
		// Applied per collection topic, see Role.
		return rejected(a.run(ctx, dst.DB, bson.D{{Key: "drop", Value: dst.Coll}}, mongox.IsNamespaceNotFound), "dropDatabase (drop "+dst.String()+")")
	case schema.DDLRename:
		if d.Target == nil {
			return fmt.Errorf("%w: rename without a target", ErrBadEvent)
		}
		to := a.nsmap.Map(*d.Target)
		cmd := bson.D{{Key: "renameCollection", Value: dst.String()}, {Key: "to", Value: to.String()}, {Key: "dropTarget", Value: true}}
		err := a.run(ctx, "admin", cmd)
		if mongox.IsNamespaceNotFound(err) {
			a.log.Warn("rename: source collection missing on the destination; nothing to rename", "from", dst.String(), "to", to.String())
			return nil
		}
		return rejected(err, "renameCollection "+dst.String()+" to "+to.String())
	case schema.DDLCreateIndexes:
		if !a.buildIndexes {
			return nil
		}
		specs, err := indexSpecs(d.Indexes)
		if err != nil {
			return err
		}
		for _, spec := range specs {
			name, _ := spec.Lookup("name").StringValueOK()
			if name == "_id_" {
				continue
			}
			if a.ExcludeHashed && hashedIndex(spec) {
				a.log.Info("buildIndexes excludes hashed indexes: not built", "ns", dst.String(), "index", name)
				continue
			}
			clean, err := appendRaw(bson.D{}, spec, "ns")
			if err != nil {
				return err
			}
			cmd := bson.D{{Key: "createIndexes", Value: dst.Coll}, {Key: "indexes", Value: bson.A{clean}}}
			err = a.run(ctx, dst.DB, cmd)
			if mongox.IsIndexConflict(err) && name != "" {
				// Same name, other definition (a replay after the index changed): rebuild it.
				if err = a.run(ctx, dst.DB, bson.D{{Key: "dropIndexes", Value: dst.Coll}, {Key: "index", Value: name}}, mongox.IsIndexNotFound); err == nil {
					err = a.run(ctx, dst.DB, cmd)
				}
			}
			if err != nil {
				return rejected(err, fmt.Sprintf("createIndexes %s on %s", name, dst))
			}
		}
		return nil
	case schema.DDLDropIndexes:
		specs, err := indexSpecs(d.Indexes)
		if err != nil {
			return err
		}
		for _, spec := range specs {
			name, ok := spec.Lookup("name").StringValueOK()
			if !ok {
				return fmt.Errorf("%w: dropIndexes spec without a name", ErrBadEvent)
			}
			err := a.run(ctx, dst.DB, bson.D{{Key: "dropIndexes", Value: dst.Coll}, {Key: "index", Value: name}}, mongox.IsIndexNotFound, mongox.IsNamespaceNotFound)
			if err != nil {
				return rejected(err, fmt.Sprintf("dropIndexes %s on %s", name, dst))
			}
		}
		return nil
	case schema.DDLModify:
		cmd, err := appendRaw(bson.D{{Key: "collMod", Value: dst.Coll}}, d.Options)
		if err != nil {
			return err
		}
		return rejected(a.run(ctx, dst.DB, cmd), "collMod "+dst.String())
	}
	return fmt.Errorf("%w: unknown DDL kind %q", ErrBadEvent, d.Kind)
}

// hashedIndex reports whether an index spec has a hashed key field.
func hashedIndex(spec bson.Raw) bool {
	key, ok := spec.Lookup("key").DocumentOK()
	if !ok {
		return false
	}
	elems, _ := key.Elements()
	for _, e := range elems {
		if s, ok := e.Value().StringValueOK(); ok && s == "hashed" {
			return true
		}
	}
	return false
}
