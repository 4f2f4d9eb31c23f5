package control

import (
	"strings"

	"github.com/logbridge/logbridge/pkg/nsfilter"
)

type nsName struct{ db, coll string }

func (n nsName) String() string {
	if n.coll == "" {
		return n.db + ".*"
	}
	return n.db + "." + n.coll
}

// Remapper renames namespaces by namespaceRemap rules: a collection rule
// wins over a database rule; other namespaces keep their name. It is the
// one renaming used by the sink (--ns-map and namespaceRemap), the
// verifier and the control API, built only by Compile or NewRemapper,
// which refuse rules that would not be a one-to-one renaming. The zero
// value renames nothing.
type Remapper struct {
	dbs   map[string]string
	exact map[nsName]nsName
	rules [][2]nsName // from, to (to.coll filled in), in request order
}

// Remap returns the destination name of the source namespace db.coll. A
// database-level name (coll "", as a dropDatabase event has) is renamed by
// the database rules only.
func (m Remapper) Remap(db, coll string) (string, string) {
	if to, ok := m.exact[nsName{db, coll}]; ok {
		return to.db, to.coll
	}
	if to, ok := m.dbs[db]; ok {
		return to, coll
	}
	return db, coll
}

// inverse is the renaming back: every rule turned around. The checks that
// built m (no two sources onto one target, no chains) make it exact for
// every name m produces.
func (m Remapper) inverse() Remapper {
	inv := Remapper{dbs: map[string]string{}, exact: map[nsName]nsName{}}
	for _, r := range m.rules {
		from, to := r[1], r[0]
		inv.rules = append(inv.rules, [2]nsName{from, to})
		if from.coll == "" {
			inv.dbs[from.db] = to.db
		} else {
			inv.exact[from] = to
		}
	}
	return inv
}

// destinationFilter is the filter of a sync whose includeNamespaces and
// excludeNamespaces name the destination's namespaces (a reversed sync:
// they were written in the first source's names, which this sync's
// destination holds). A source namespace is selected when m renames it to
// a namespace f selects, and it is what the earlier sync wrote there: the
// inverse renaming leads back to it. Without the second condition a
// reversed crm→crm_v2 sync would also pick up a stray crm.x on its
// source, and send a dropDatabase of crm back onto the original crm.
func (m Remapper) destinationFilter(f *nsfilter.Filter) *nsfilter.Filter {
	inv := m.inverse()
	back := func(db, coll string) (string, string, bool) {
		ddb, dcoll := m.Remap(db, coll)
		if sdb, scoll := inv.Remap(ddb, dcoll); sdb != db || scoll != coll {
			return "", "", false
		}
		return ddb, dcoll, true
	}
	mayDB := func(db string) bool {
		// Collection rules out of db name their target exactly.
		for from, to := range m.exact {
			if from.db == db && f.Match(to.db, to.coll) {
				return true
			}
		}
		if to, ok := m.dbs[db]; ok {
			return f.MayMatchDB(to)
		}
		// db keeps its name, unless the earlier sync moved db away (its
		// names here are then not the earlier sync's).
		if _, moved := inv.dbs[db]; moved {
			return false
		}
		return f.MayMatchDB(db)
	}
	var desc []string
	for _, r := range m.rules {
		desc = append(desc, r[0].String()+"->"+r[1].String())
	}
	return nsfilter.Through(f, back, mayDB, "renamed by "+strings.Join(desc, ","))
}

// Writes reports whether the sync writes the destination namespace
// db.coll: some namespace the filter selects is renamed to it. The
// destination-data check at start uses it to find the included namespaces
// the destination already holds.
func (c *Compiled) Writes(db, coll string) bool {
	sdb, scoll := c.inverse().Remap(db, coll)
	if rdb, rcoll := c.Remap(sdb, scoll); rdb != db || rcoll != coll {
		return false // db.coll keeps no source name: its source was renamed away
	}
	return c.Filter.Match(sdb, scoll)
}
