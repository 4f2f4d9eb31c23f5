package controlapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/control"
	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/nsfilter"
)

// The server versions a sync supports, as major.minor: a cluster-wide
// change stream with the documented event format needs 4.4 (mongosync's
// minimum too); 9.0 and later are not known yet.
var (
	minVersion = serverVersion{4, 4}
	maxVersion = serverVersion{8, 99}
	// setUserWriteBlockMode (enableUserWriteBlocking) is MongoDB 6.0+.
	writeBlockVersion = serverVersion{6, 0}
)

// serverVersion is a MongoDB major.minor.
type serverVersion struct{ major, minor int }

func (v serverVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

func (v serverVersion) less(o serverVersion) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

// parseVersion reads the major.minor of "7.0.12", "8.0.0-rc1", "6.0".
func parseVersion(s string) (serverVersion, bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return serverVersion{}, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return serverVersion{}, false
	}
	return serverVersion{major, minor}, true
}

// clusterInfo is what the pre-start checks learn of a cluster.
type clusterInfo struct {
	Name     string // the start request's name (cluster0, cluster1)
	Mongos   bool
	SetName  string
	Version  string // buildInfo.version
	FCV      string // featureCompatibilityVersion ("" when it could not be read)
	FCVError string // why it could not be read
	// Namespaces are the user collections and views, "db.coll".
	Namespaces []string
	// LegacyUnique are the included namespaces' unique indexes in the
	// legacy format, "db.coll index name (v: N)" (read for a reversible
	// sync's source only: legacyUniqueIndexes).
	LegacyUnique []string
}

// checkClusters runs mongosync's pre-start checks on what the clusters
// said, and returns every problem (each naming it and what to do) and the
// warnings for what could not be checked.
func checkClusters(p control.StartParams, src, dst clusterInfo) (problems, warnings []string) {
	vers := map[string]serverVersion{}
	for _, c := range []struct {
		role string
		info clusterInfo
	}{{"source", src}, {"destination", dst}} {
		if c.info.SetName == "" && !c.info.Mongos {
			problems = append(problems, fmt.Sprintf("the %s %s is a standalone server: a sync needs a replica set or a sharded cluster (mongos) on both sides, for change streams and majority writes; convert it to a one-member replica set (rs.initiate())", c.role, c.info.Name))
		}
		v, ok := parseVersion(c.info.Version)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("the %s %s reports version %q, which is not a MongoDB version: point the cluster URI at a MongoDB server", c.role, c.info.Name, c.info.Version))
			continue
		case v.less(minVersion) || maxVersion.less(v):
			problems = append(problems, fmt.Sprintf("the %s %s runs MongoDB %s: supported versions are %s to 8.x; upgrade it", c.role, c.info.Name, c.info.Version, minVersion))
		}
		vers[c.role] = v
		if c.info.FCV == "" {
			warnings = append(warnings, fmt.Sprintf("the featureCompatibilityVersion of the %s %s could not be read (%s): it was not checked; grant the sync's user clusterMonitor to check it", c.role, c.info.Name, c.info.FCVError))
		} else if fcv, ok := parseVersion(c.info.FCV); !ok || fcv.less(minVersion) || v.less(fcv) {
			problems = append(problems, fmt.Sprintf("the %s %s has featureCompatibilityVersion %q with MongoDB %s: it must be between %s and the server's version; raise it with setFeatureCompatibilityVersion", c.role, c.info.Name, c.info.FCV, c.info.Version, minVersion))
		} else if fcv != v {
			warnings = append(warnings, fmt.Sprintf("the %s %s runs MongoDB %s with featureCompatibilityVersion %s: features of %s are unavailable until you raise it", c.role, c.info.Name, c.info.Version, c.info.FCV, v))
		}
	}
	sv, sok := vers["source"]
	dv, dok := vers["destination"]
	if sok && dok && dv.less(sv) {
		problems = append(problems, fmt.Sprintf("the destination %s runs MongoDB %s, older than the source %s (%s): the destination must run the same or a newer version; upgrade it", dst.Name, dst.Version, src.Name, src.Version))
	}
	wb := p.EnableUserWriteBlocking
	for _, c := range []struct {
		role  string
		info  clusterInfo
		v     serverVersion
		ok    bool
		block bool
		when  string
	}{{"source", src, sv, sok, wb.Source(), "from commit on"}, {"destination", dst, dv, dok, wb.Destination(), "until canWrite"}} {
		if c.block && c.ok && c.v.less(writeBlockVersion) {
			problems = append(problems, fmt.Sprintf("enableUserWriteBlocking %q blocks user writes on the %s %s %s, but it runs MongoDB %s: setUserWriteBlockMode needs %s or later; upgrade it or set enableUserWriteBlocking to %q", wb, c.role, c.info.Name, c.when, c.info.Version, writeBlockVersion, blockingFallback(wb, c.role)))
		}
	}
	if p.Reversible && len(src.LegacyUnique) > 0 {
		problems = append(problems, fmt.Sprintf("\"reversible\": true, but the source %s has unique indexes in the legacy format, built before MongoDB 4.2 (index version v < 2) (%d: %s): a reversal needs unique indexes in the current format, as in mongosync; rebuild each (drop it and create it again: it is then built with v: 2), or drop \"reversible\"", src.Name, len(src.LegacyUnique), listSome(src.LegacyUnique)))
	}
	if p.Reversible {
		// mongosync's reverse prerequisites: the same topology and major
		// version on both sides (after a reversal each side is the other's
		// role; a newer destination could not be the older one's source).
		if sok && dok && sv != dv {
			problems = append(problems, fmt.Sprintf("\"reversible\": true, but the source %s runs MongoDB %s and the destination %s %s: a reversible sync needs the same major version on both sides (the reversed sync's destination must not be older than its source); upgrade one or drop \"reversible\"", src.Name, src.Version, dst.Name, dst.Version))
		}
		if src.Mongos != dst.Mongos {
			problems = append(problems, fmt.Sprintf("\"reversible\": true, but the source %s is %s and the destination %s %s: a reversible sync needs the same topology on both sides; drop \"reversible\"", src.Name, topology(src), dst.Name, topology(dst)))
		}
	}
	return problems, warnings
}

func topology(c clusterInfo) string {
	if c.Mongos {
		return "a sharded cluster (mongos)"
	}
	return "a replica set"
}

func blockingFallback(wb control.WriteBlocking, role string) control.WriteBlocking {
	if role == "source" && wb == control.WriteBlockSourceAndDestination {
		return control.WriteBlockDestinationOnly
	}
	return control.WriteBlockNone
}

// legacyUniqueIndexes lists the unique indexes of the included namespaces
// of a reversible sync's source that use the legacy format, which mongosync
// requires to be absent before a reversal ("Unique indexes on the source
// cluster must not use the legacy format"). What listIndexes shows is
// checked (legacyUnique); keys in the old format inside an index whose
// metadata was upgraded with the server are visible only to a full
// validate, which scans every index entry: that is left to the user
// (mongosync's "Validate Unique Indexes"), as it would load a production
// source. Views are skipped (they have no indexes).
func legacyUniqueIndexes(ctx context.Context, cl *mongo.Client, namespaces []string, f *nsfilter.Filter) ([]string, error) {
	var out []string
	for _, ns := range namespaces {
		db, coll, _ := strings.Cut(ns, ".")
		if !f.Match(db, coll) {
			continue
		}
		cur, err := cl.Database(db).Collection(coll).Indexes().List(ctx)
		if err != nil {
			var se mongo.ServerError
			if errors.As(err, &se) && se.HasErrorCode(codeCommandNotSupportedOnView) {
				continue
			}
			return nil, fmt.Errorf("listing the indexes of %s: %w", ns, err)
		}
		var specs []bson.Raw
		for cur.Next(ctx) {
			specs = append(specs, slices.Clone(cur.Current))
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the indexes of %s: %w", ns, err)
		}
		out = append(out, legacyUnique(ns, specs)...)
	}
	return out, nil
}

// codeCommandNotSupportedOnView is MongoDB's error for listIndexes on a view.
const codeCommandNotSupportedOnView = 166

// legacyUnique picks the unique indexes in the legacy format out of a
// listIndexes reply: index version v 0 or 1 (v: 2 is the default since
// MongoDB 3.4, so a v: 1 unique index was built before the 4.2 unique
// format or on purpose in the old version). unique may be stored as a
// number by servers older than 5.0, which did not validate index options.
func legacyUnique(ns string, specs []bson.Raw) []string {
	var out []string
	for _, spec := range specs {
		u := spec.Lookup("unique")
		unique := u.Type == bson.TypeBoolean && u.Boolean()
		if n, ok := u.AsFloat64OK(); ok { // int32, int64 or double
			unique = n != 0
		}
		v, ok := spec.Lookup("v").AsFloat64OK()
		if !unique || !ok || v >= 2 {
			continue
		}
		name, _ := spec.Lookup("name").StringValueOK()
		out = append(out, fmt.Sprintf("%s index %s (v: %g)", ns, name, v))
	}
	return out
}

// existingTargets lists the destination namespaces the sync would write
// that already exist there.
func existingTargets(c *control.Compiled, dst clusterInfo) []string {
	var out []string
	for _, ns := range dst.Namespaces {
		db, coll, _ := strings.Cut(ns, ".")
		if c.Writes(db, coll) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// errPreStart wraps what the pre-start checks refuse: answered with 400.
var errPreStart = errors.New("the clusters do not meet the sync's requirements")

// probeCluster connects to a cluster and learns what the checks need.
func (c *Controller) probeCluster(ctx context.Context, name string) (clusterInfo, *mongo.Client, error) {
	info := clusterInfo{Name: name}
	cl, err := c.connect(ctx, name)
	if err != nil {
		return info, nil, err
	}
	topo, err := mongox.Hello(ctx, cl)
	if err != nil {
		_ = cl.Disconnect(context.WithoutCancel(ctx))
		return info, nil, fmt.Errorf("%s: %w", name, err)
	}
	info.Mongos, info.SetName = topo.IsMongos, topo.SetName
	var bi struct {
		Version string `bson:"version"`
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		_ = cl.Disconnect(context.WithoutCancel(ctx))
		return info, nil, fmt.Errorf("%s: running buildInfo: %w", name, err)
	}
	info.Version = bi.Version
	var fcv struct {
		FCV struct {
			Version string `bson:"version"`
		} `bson:"featureCompatibilityVersion"`
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "getParameter", Value: 1}, {Key: "featureCompatibilityVersion", Value: 1}}).Decode(&fcv); err != nil {
		info.FCVError = c.red.String(err.Error())
	} else {
		info.FCV = fcv.FCV.Version
	}
	dbs, err := cl.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		_ = cl.Disconnect(context.WithoutCancel(ctx))
		return info, nil, fmt.Errorf("%s: listing databases: %w", name, err)
	}
	for _, db := range dbs {
		if nsfilter.SkippedDB(db) {
			continue
		}
		names, err := cl.Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			_ = cl.Disconnect(context.WithoutCancel(ctx))
			return info, nil, fmt.Errorf("%s: listing the collections of %s: %w", name, db, err)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "system.") {
				info.Namespaces = append(info.Namespaces, db+"."+n)
			}
		}
	}
	return info, cl, nil
}

// preStart dials both clusters, runs the checks and applies the
// destination-data policy. It returns the warnings to record with the
// start, errPreStart (wrapped, naming every problem) for a start that must
// be refused, or another error when a cluster could not be asked.
// Callers hold c.ops: a drop must not race another start.
func (c *Controller) preStart(ctx context.Context, p control.StartParams, compiled *control.Compiled) ([]string, error) {
	if c.probe != nil { // tests
		return c.probe(ctx, p, compiled)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	src, scl, err := c.probeCluster(ctx, p.Source)
	if err != nil {
		return nil, err
	}
	defer scl.Disconnect(context.WithoutCancel(ctx))
	if p.Reversible {
		if src.LegacyUnique, err = legacyUniqueIndexes(ctx, scl, src.Namespaces, compiled.Filter); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Source, err)
		}
	}
	dst, dcl, err := c.probeCluster(ctx, p.Destination)
	if err != nil {
		return nil, err
	}
	defer dcl.Disconnect(context.WithoutCancel(ctx))
	problems, warnings := checkClusters(p, src, dst)
	existing := existingTargets(compiled, dst)
	switch {
	case len(existing) == 0:
	case p.PreExistingDestinationData:
		warnings = append(warnings, fmt.Sprintf("preExistingDestinationData: merging into namespaces the destination already holds (%d: %s): documents with the same _id are replaced, others are kept", len(existing), listSome(existing)))
	case p.DropDestinationData:
		if len(problems) == 0 {
			for _, ns := range existing {
				db, coll, _ := strings.Cut(ns, ".")
				if err := dcl.Database(db).Collection(coll).Drop(ctx); err != nil {
					return nil, fmt.Errorf("dropDestinationData: dropping %s on %s: %w", ns, p.Destination, err)
				}
			}
			c.log.Warn("dropDestinationData: dropped the destination's copies of included namespaces", "destination", p.Destination, "namespaces", existing)
			warnings = append(warnings, fmt.Sprintf("dropDestinationData: dropped namespaces on %s before the copy (%d: %s)", p.Destination, len(existing), listSome(existing)))
		}
	default:
		problems = append(problems, fmt.Sprintf("the destination %s already holds included namespaces (%d: %s): a sync starts on an empty destination; drop them, or start with \"dropDestinationData\": true to drop them first or \"preExistingDestinationData\": true to merge into them", p.Destination, len(existing), listSome(existing)))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", errPreStart, strings.Join(problems, "; "))
	}
	return warnings, nil
}

// listSome joins the first names of a list, saying how many more there are.
func listSome(names []string) string {
	const most = 20
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more", len(names)-most)
}
