package control

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/logbridge/logbridge/pkg/nsfilter"
)

// Compiled is a start request checked and compiled into what an epoch runs
// with. The control API compiles a request before it writes anything, and
// every epoch start (source and sink) compiles the logged parameters with
// the same function, so the door and the running sync cannot disagree.
type Compiled struct {
	// Filter selects the source namespaces (includeNamespaces/excludeNamespaces).
	Filter *nsfilter.Filter
	// NSMap is namespaceRemap as the sink's --ns-map rules.
	NSMap []string
	// Remapper renames source namespaces to destination ones (Remap): the
	// one implementation the sink, the verifier and the control API share.
	Remapper
	// Warnings name the accepted fields that logbridge does not apply, and
	// choices that differ from mongosync; the start answers with them and
	// progress shows them.
	Warnings []string
}

// Compile checks every start parameter and compiles the namespace filter
// and the remap rules. clusters are the configured cluster names. The
// error joins every problem found, each naming the field and what to do.
// A reversible request is also compiled in its reversed form (swapped
// clusters, inverted remap), so that a reversal accepted now cannot fail
// to start later.
func Compile(p StartParams, clusters []string) (*Compiled, error) {
	c, err := compile(p, clusters)
	if err != nil {
		return nil, err
	}
	if p.Reversible {
		if _, err := compile(p.Reversed(), clusters); err != nil {
			return nil, fmt.Errorf("\"reversible\": true, but the reversed sync could not run: %w", err)
		}
	}
	return c, nil
}

func compile(p StartParams, clusters []string) (*Compiled, error) {
	var errs []error
	for _, role := range []struct{ field, name string }{{"source", p.Source}, {"destination", p.Destination}} {
		switch {
		case role.name == "":
			errs = append(errs, fmt.Errorf("%q is required (one of %v)", role.field, clusters))
		case !slices.Contains(clusters, role.name):
			errs = append(errs, fmt.Errorf("%s %q is not a configured cluster (configured: %v; add it with --%s)", role.field, role.name, clusters, role.name))
		}
	}
	if p.Source != "" && p.Source == p.Destination {
		errs = append(errs, errors.New("source and destination must be different clusters"))
	}
	switch p.BuildIndexes {
	case "", BuildAfterCopy, BuildBeforeCopy, BuildExcludeHashed, BuildExcludeHashedAfterCopy, BuildNever:
	default:
		errs = append(errs, fmt.Errorf("buildIndexes %q: use afterDataCopy, beforeDataCopy, excludeHashed, excludeHashedAfterCopy or never", p.BuildIndexes))
	}
	if p.BuildIndexes == BuildNever && p.Reversible {
		// As mongosync: the reversed sync would need the indexes the
		// forward one never built (unique constraints above all).
		errs = append(errs, errors.New("buildIndexes \"never\" with \"reversible\": true: a reversible sync must build the indexes; drop one of the two"))
	}
	if len(p.DocumentFilter) > 0 && string(p.DocumentFilter) != "null" {
		errs = append(errs, errors.New("documentFilter: logbridge does not filter documents (it copies whole collections); remove the field, or filter with includeNamespaces/excludeNamespaces"))
	}
	if p.DropDestinationData && p.PreExistingDestinationData {
		errs = append(errs, errors.New("dropDestinationData and preExistingDestinationData both given: drop the destination's copies first, or merge into them, not both"))
	}
	include, err := filterRules("includeNamespaces", p.IncludeNamespaces, true)
	if err != nil {
		errs = append(errs, err)
	}
	exclude, err := filterRules("excludeNamespaces", p.ExcludeNamespaces, false)
	if err != nil {
		errs = append(errs, err)
	}
	c := &Compiled{Filter: nsfilter.FromRules(include, exclude)}
	if err := c.compileRemap(p.NamespaceRemap); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.FilterOnDestination {
		c.Filter = c.Remapper.destinationFilter(c.Filter)
	}
	c.Warnings = warnings(p)
	return c, nil
}

// buildIndexes values (mongosync's).
const (
	BuildAfterCopy              = "afterDataCopy"
	BuildBeforeCopy             = "beforeDataCopy"
	BuildExcludeHashed          = "excludeHashed"
	BuildExcludeHashedAfterCopy = "excludeHashedAfterCopy"
	BuildNever                  = "never"
)

// IndexesAfterCopy reports whether the initial copy's indexes are built
// after its documents (afterDataCopy, the default, and
// excludeHashedAfterCopy) rather than before them.
func (p StartParams) IndexesAfterCopy() bool {
	return p.BuildIndexes == "" || p.BuildIndexes == BuildAfterCopy || p.BuildIndexes == BuildExcludeHashedAfterCopy
}

// ExcludeHashedIndexes reports whether hashed indexes are left out.
func (p StartParams) ExcludeHashedIndexes() bool {
	return p.BuildIndexes == BuildExcludeHashed || p.BuildIndexes == BuildExcludeHashedAfterCopy
}

// warnings names what a valid request asks for that logbridge does not do,
// or does differently from mongosync: never silently.
func warnings(p StartParams) []string {
	var w []string
	if p.Sharding != nil {
		w = append(w, "sharding: accepted but not applied: logbridge does not shard collections on the destination; shard them there yourself (sh.shardCollection) before the start if the destination is a sharded cluster")
	}
	if p.DetectRandomID != nil {
		w = append(w, "detectRandomId: accepted but not applied: logbridge always copies collections in _id ranges")
	}
	if len(p.CopyInNaturalOrder) > 0 && string(p.CopyInNaturalOrder) != "null" {
		w = append(w, "copyInNaturalOrder: accepted but not applied: logbridge always copies collections in _id ranges")
	}
	return w
}

// CheckRequest holds the rules a new start request must meet on top of
// Compile. They are kept out of Compile on purpose: every epoch start
// compiles the logged parameters again, and a sync an earlier version
// accepted (and logged) must keep running after an upgrade.
func CheckRequest(p StartParams) error {
	if p.FilterOnDestination {
		// Only a reversal writes it (StartParams.Reversed).
		return errors.New("\"filterOnDestination\" is set by reverse, not by a start request: name the source's namespaces in includeNamespaces/excludeNamespaces and remove the field")
	}
	if p.Reversible && !p.EnableUserWriteBlocking.Source() {
		// mongosync's reverse prerequisite: without blocking on both sides
		// a write to the source after the commit point is lost to the
		// destination, and one to the destination before canWrite is
		// overwritten or sent back by the reversal.
		return fmt.Errorf("\"reversible\": true needs \"enableUserWriteBlocking\": \"sourceAndDestination\" (or true), as in mongosync: a reversal relies on nobody writing to the destination before the commit nor to the source after it; add it (the sink's MongoDB user needs the bypassWriteBlockingMode privilege, the source's user setUserWriteBlockMode), or drop \"reversible\" (enableUserWriteBlocking is %q)", cmp.Or(p.EnableUserWriteBlocking, WriteBlockNone))
	}
	return nil
}

// filterRules compiles mongosync namespace specs into filter rules. field names
// the request field in errors; include refuses databases that are never
// synced (an include of admin would silently select nothing).
func filterRules(field string, specs []NamespaceSpec, include bool) ([]nsfilter.Rule, error) {
	var out []nsfilter.Rule
	var errs []error
	for i, sp := range specs {
		at := fmt.Sprintf("%s[%d]", field, i)
		r := nsfilter.Rule{DB: sp.Database, Colls: sp.Collections}
		var err error
		switch {
		case sp.Database != "" && sp.DatabaseRegex != nil:
			errs = append(errs, fmt.Errorf("%s: give \"database\" or \"databaseRegex\", not both", at))
			continue
		case len(sp.Collections) > 0 && sp.CollectionsRegex != nil:
			errs = append(errs, fmt.Errorf("%s: give \"collections\" or \"collectionsRegex\", not both", at))
			continue
		case sp.DatabaseRegex != nil:
			if r.DBRegex, err = CompileRegex(at+".databaseRegex", sp.DatabaseRegex); err != nil {
				errs = append(errs, err)
				continue
			}
		case sp.Database == "":
			errs = append(errs, fmt.Errorf("%s: a namespace entry needs \"database\" or \"databaseRegex\"", at))
			continue
		default:
			if err := ValidDatabase(sp.Database); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
				continue
			}
			if include && nsfilter.SkippedDB(sp.Database) {
				errs = append(errs, fmt.Errorf("%s: database %q is never synced (admin, local, config and %s* are skipped): remove the entry", at, sp.Database, nsfilter.MetadataDBPrefix))
				continue
			}
		}
		if sp.CollectionsRegex != nil {
			if r.CollRegex, err = CompileRegex(at+".collectionsRegex", sp.CollectionsRegex); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		for _, coll := range sp.Collections {
			if err := ValidCollection(coll); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
			}
		}
		r.Src = describe(sp)
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func describe(sp NamespaceSpec) string {
	db := sp.Database
	if sp.DatabaseRegex != nil {
		db = "/" + sp.DatabaseRegex.Pattern + "/" + sp.DatabaseRegex.Options
	}
	switch {
	case sp.CollectionsRegex != nil:
		return db + "./" + sp.CollectionsRegex.Pattern + "/" + sp.CollectionsRegex.Options
	case len(sp.Collections) > 0:
		return db + ".{" + strings.Join(sp.Collections, ",") + "}"
	}
	return db + ".*"
}

// ValidDatabase checks a database name against MongoDB's naming rules.
func ValidDatabase(name string) error {
	switch {
	case name == "":
		return errors.New("the database name is empty")
	case len(name) >= 64:
		return fmt.Errorf("database name %q is %d bytes long: MongoDB allows at most 63", name, len(name))
	case strings.ContainsAny(name, "/\\. \"$\x00"):
		return fmt.Errorf("database name %q is not valid: MongoDB database names cannot contain / \\ . space \" $ or NUL", name)
	}
	return nil
}

// ValidCollection checks a collection name against MongoDB's naming rules.
func ValidCollection(name string) error {
	switch {
	case name == "":
		return errors.New("the collection name is empty")
	case strings.ContainsAny(name, "$\x00"):
		return fmt.Errorf("collection name %q is not valid: MongoDB collection names cannot contain $ or NUL", name)
	}
	return nil
}

// compileRemap checks namespaceRemap and builds the rules. Refused: invalid
// names, a database mapped onto a collection, system namespaces on either
// side, namespaces excluded by excludeNamespaces on either side (the
// reversed sync reads the targets with the same filter), a rule mapping a
// namespace onto itself, a source mapped twice, two sources onto one
// target, and chains or cycles (a target that another rule remaps again).
//
// What the rules cannot show is refused nowhere: a target that already
// exists on the source unmapped (remap a.* to b.* while the source holds
// b.x too) collides only if that namespace exists, and the request is
// checked without dialling any cluster.
func (c *Compiled) compileRemap(remaps []Remap) error {
	c.dbs, c.exact = map[string]string{}, map[nsName]nsName{}
	c.rules = nil
	var errs []error
	type rule struct {
		at       string
		from, to nsName
	}
	var rules []rule
	fromAt := map[nsName]string{}
	for i, r := range remaps {
		at := fmt.Sprintf("namespaceRemap[%d]", i)
		from, to := nsName{r.From.Database, r.From.Collection}, nsName{r.To.Database, r.To.Collection}
		var bad []error
		for _, side := range []struct {
			name string
			ns   nsName
		}{{"from", from}, {"to", to}} {
			if err := ValidDatabase(side.ns.db); err != nil {
				bad = append(bad, fmt.Errorf("%s.%s: %w", at, side.name, err))
			} else if nsfilter.SkippedDB(side.ns.db) {
				bad = append(bad, fmt.Errorf("%s.%s: database %q is never synced (admin, local, config and %s* are skipped): remap user databases only", at, side.name, side.ns.db, nsfilter.MetadataDBPrefix))
			}
			if side.ns.coll == "" {
				continue
			}
			if err := ValidCollection(side.ns.coll); err != nil {
				bad = append(bad, fmt.Errorf("%s.%s: %w", at, side.name, err))
			} else if strings.HasPrefix(side.ns.coll, "system.") {
				bad = append(bad, fmt.Errorf("%s.%s: %q is a system collection, which is never synced: remap user collections only", at, side.name, side.ns.coll))
			}
		}
		if from.coll == "" && to.coll != "" {
			bad = append(bad, fmt.Errorf("%s: a database maps onto a database: drop \"collection\" from \"to\", or give one in \"from\"", at))
		}
		if len(bad) > 0 {
			errs = append(errs, bad...)
			continue
		}
		if from.coll != "" && to.coll == "" {
			to.coll = from.coll // a collection keeps its name in another database
		}
		at = fmt.Sprintf("%s (%s -> %s)", at, from, to)
		if from == to {
			errs = append(errs, fmt.Errorf("%s: maps %s onto itself: remove the entry", at, from))
			continue
		}
		if prev, dup := fromAt[from]; dup {
			errs = append(errs, fmt.Errorf("%s: %s is already remapped by %s: give one rule per source", at, from, prev))
			continue
		}
		fromAt[from] = at
		for _, side := range []struct {
			name string
			ns   nsName
		}{{"from", from}, {"to", to}} {
			if (side.ns.coll == "" && c.Filter.ExcludesDB(side.ns.db)) || (side.ns.coll != "" && c.Filter.Excludes(side.ns.db, side.ns.coll)) {
				errs = append(errs, fmt.Errorf("%s: %s %s is excluded by excludeNamespaces: remove the rule or the exclusion", at, side.name, side.ns))
			}
		}
		rules = append(rules, rule{at, from, to})
		c.rules = append(c.rules, [2]nsName{from, to})
		if from.coll == "" {
			c.dbs[from.db] = to.db
		} else {
			c.exact[from] = to
		}
	}
	// Two sources onto one target: compare what each rule's namespaces
	// become. A database rule covers every collection of its database that
	// no collection rule takes elsewhere.
	targetAt := map[nsName]string{}
	for _, r := range rules {
		if prev, dup := targetAt[r.to]; dup {
			errs = append(errs, fmt.Errorf("%s: %s is already the target of %s: two sources cannot share one target", r.at, r.to, prev))
			continue
		}
		targetAt[r.to] = r.at
	}
	for _, r := range rules {
		if r.from.coll == "" {
			continue
		}
		for _, d := range rules {
			if d.from.coll == "" && d.to.db == r.to.db {
				if _, taken := c.exact[nsName{d.from.db, r.to.coll}]; !taken {
					errs = append(errs, fmt.Errorf("%s: %s also receives %s.%s through %s: two sources cannot share one target", r.at, r.to, d.from.db, r.to.coll, d.at))
				}
			}
		}
	}
	// Chains and cycles: a target that is itself remapped.
	for _, r := range rules {
		for _, s := range rules {
			if s.at == r.at {
				continue
			}
			chained := s.from == r.to || // same namespace (or same database rule)
				(s.from.coll == "" && s.from.db == r.to.db) || // a database rule moves the target's database
				(r.to.coll == "" && s.from.db == r.to.db) // a collection rule moves part of the target database
			if chained {
				errs = append(errs, fmt.Errorf("%s: its target is remapped again by %s: chains and cycles are not supported, remap each namespace directly to its final name", r.at, s.at))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, r := range rules {
		if r.from.coll == "" {
			c.NSMap = append(c.NSMap, r.from.db+".*="+r.to.db+".*")
		} else {
			c.NSMap = append(c.NSMap, r.from.db+"."+r.from.coll+"="+r.to.db+"."+r.to.coll)
		}
	}
	return nil
}

// RemapRules checks namespaceRemap alone (no filter) and returns it as the
// sink's --ns-map rules.
func RemapRules(remaps []Remap) ([]string, error) {
	c := &Compiled{Filter: nsfilter.FromRules(nil, nil)}
	if err := c.compileRemap(remaps); err != nil {
		return nil, err
	}
	return c.NSMap, nil
}

// NewRemapper checks remaps as namespaceRemap is checked (no filter) and
// returns the renaming. The sink builds its --ns-map with it.
func NewRemapper(remaps []Remap) (Remapper, error) {
	c := &Compiled{Filter: nsfilter.FromRules(nil, nil)}
	if err := c.compileRemap(remaps); err != nil {
		return Remapper{}, err
	}
	return c.Remapper, nil
}
