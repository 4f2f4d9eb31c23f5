package controlapi

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/control"
)

func rs(name, version string) clusterInfo {
	return clusterInfo{Name: name, SetName: "rs0", Version: version, FCV: version[:3]}
}

func TestCheckClusters(t *testing.T) {
	base := control.StartParams{Source: "cluster0", Destination: "cluster1"}
	with := func(f func(*control.StartParams)) control.StartParams { p := base; f(&p); return p }
	tests := []struct {
		name     string
		p        control.StartParams
		src, dst clusterInfo
		want     []string // problems, each a substring of one
		warn     string
	}{
		{name: "supported pair", p: base, src: rs("cluster0", "6.0.14"), dst: rs("cluster1", "7.0.2")},
		{name: "mongos source", p: base, src: clusterInfo{Name: "cluster0", Mongos: true, Version: "8.0.1", FCV: "8.0"}, dst: rs("cluster1", "8.0.1")},
		{name: "standalone source", p: base, src: clusterInfo{Name: "cluster0", Version: "7.0.2", FCV: "7.0"}, dst: rs("cluster1", "7.0.2"),
			want: []string{"the source cluster0 is a standalone server: a sync needs a replica set or a sharded cluster"}},
		{name: "source too old", p: base, src: rs("cluster0", "4.2.24"), dst: rs("cluster1", "7.0.2"),
			want: []string{"the source cluster0 runs MongoDB 4.2.24: supported versions are 4.4 to 8.x; upgrade it"}},
		{name: "unknown future version", p: base, src: rs("cluster0", "7.0.2"), dst: rs("cluster1", "9.0.0"),
			want: []string{"the destination cluster1 runs MongoDB 9.0.0: supported versions are 4.4 to 8.x"}},
		{name: "destination older", p: base, src: rs("cluster0", "7.0.2"), dst: rs("cluster1", "6.0.14"),
			want: []string{"the destination cluster1 runs MongoDB 6.0.14, older than the source cluster0 (7.0.2)"}},
		{name: "not a version", p: base, src: clusterInfo{Name: "cluster0", SetName: "rs0", Version: "shim"}, dst: rs("cluster1", "7.0.2"),
			want: []string{`the source cluster0 reports version "shim", which is not a MongoDB version`}},
		{name: "fcv too low", p: base, src: clusterInfo{Name: "cluster0", SetName: "rs0", Version: "5.0.3", FCV: "4.2"}, dst: rs("cluster1", "7.0.2"),
			want: []string{`the source cluster0 has featureCompatibilityVersion "4.2" with MongoDB 5.0.3`}},
		{name: "fcv behind the binary", p: base, src: clusterInfo{Name: "cluster0", SetName: "rs0", Version: "7.0.3", FCV: "6.0"}, dst: rs("cluster1", "7.0.2"),
			warn: "runs MongoDB 7.0.3 with featureCompatibilityVersion 6.0"},
		{name: "fcv unreadable", p: base, src: clusterInfo{Name: "cluster0", SetName: "rs0", Version: "7.0.3", FCVError: "not authorized"}, dst: rs("cluster1", "7.0.2"),
			warn: "could not be read (not authorized): it was not checked"},
		{name: "write blocking on a 5.0 source", p: with(func(p *control.StartParams) { p.EnableUserWriteBlocking = control.WriteBlockSourceAndDestination }),
			src: rs("cluster0", "5.0.3"), dst: rs("cluster1", "7.0.2"),
			want: []string{`enableUserWriteBlocking "sourceAndDestination" blocks user writes on the source cluster0 from commit on, but it runs MongoDB 5.0.3: setUserWriteBlockMode needs 6.0 or later; upgrade it or set enableUserWriteBlocking to "destinationOnly"`}},
		{name: "destination-only blocking needs only the destination", p: with(func(p *control.StartParams) { p.EnableUserWriteBlocking = control.WriteBlockDestinationOnly }),
			src: rs("cluster0", "5.0.3"), dst: rs("cluster1", "7.0.2")},
		{name: "destination-only blocking on a 5.0 destination", p: with(func(p *control.StartParams) { p.EnableUserWriteBlocking = control.WriteBlockDestinationOnly }),
			src: rs("cluster0", "5.0.3"), dst: rs("cluster1", "5.0.3"),
			want: []string{`on the destination cluster1 until canWrite, but it runs MongoDB 5.0.3`}},
		{name: "reversible onto a newer destination", p: with(func(p *control.StartParams) { p.Reversible = true }),
			src: rs("cluster0", "6.0.14"), dst: rs("cluster1", "7.0.2"),
			want: []string{`"reversible": true, but the source cluster0 runs MongoDB 6.0.14 and the destination cluster1 7.0.2: a reversible sync needs the same major version`}},
		{name: "reversible across topologies", p: with(func(p *control.StartParams) { p.Reversible = true }),
			src: rs("cluster0", "7.0.2"), dst: clusterInfo{Name: "cluster1", Mongos: true, Version: "7.0.5", FCV: "7.0"},
			want: []string{`the source cluster0 is a replica set and the destination cluster1 a sharded cluster (mongos): a reversible sync needs the same topology`}},
		{name: "reversible, same major, other patch", p: with(func(p *control.StartParams) { p.Reversible = true }),
			src: rs("cluster0", "7.0.2"), dst: rs("cluster1", "7.0.12")},
		{name: "reversible with a legacy unique index on the source", p: with(func(p *control.StartParams) { p.Reversible = true }),
			src: func() clusterInfo {
				c := rs("cluster0", "7.0.2")
				c.LegacyUnique = []string{"shop.users index email_1 (v: 1)"}
				return c
			}(),
			dst:  rs("cluster1", "7.0.2"),
			want: []string{`"reversible": true, but the source cluster0 has unique indexes in the legacy format, built before MongoDB 4.2 (index version v < 2) (1: shop.users index email_1 (v: 1)): a reversal needs unique indexes in the current format`}},
		{name: "every problem at once", p: base, src: clusterInfo{Name: "cluster0", Version: "4.0.1", FCV: "4.0"}, dst: clusterInfo{Name: "cluster1", Version: "3.6.0", FCV: "3.6"},
			want: []string{"source cluster0 is a standalone", "destination cluster1 is a standalone", "runs MongoDB 4.0.1", "runs MongoDB 3.6.0", "older than the source"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, warnings := checkClusters(tt.p, tt.src, tt.dst)
			got := strings.Join(problems, "\n")
			if len(tt.want) == 0 && len(problems) > 0 {
				t.Fatalf("got problems %q, want none", problems)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems %q: want one containing %q", problems, w)
				}
			}
			if tt.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tt.warn) {
				t.Errorf("warnings %q: want one containing %q", warnings, tt.warn)
			}
		})
	}
}

func TestExistingTargets(t *testing.T) {
	p := control.StartParams{Source: "cluster0", Destination: "cluster1",
		IncludeNamespaces: []control.NamespaceSpec{{Database: "crm"}, {Database: "shop", Collections: []string{"orders"}}},
		NamespaceRemap:    []control.Remap{{From: control.NamespaceRef{Database: "crm"}, To: control.NamespaceRef{Database: "crm_v2"}}}}
	c, err := control.Compile(p, []string{"cluster0", "cluster1"})
	if err != nil {
		t.Fatal(err)
	}
	dst := clusterInfo{Namespaces: []string{"crm.accounts", "crm_v2.accounts", "shop.orders", "shop.items", "other.x"}}
	if got := strings.Join(existingTargets(c, dst), ","); got != "crm_v2.accounts,shop.orders" {
		t.Fatalf("got %s, want crm_v2.accounts,shop.orders (what the sync would write; crm.accounts is no target after the remap)", got)
	}
}

// TestLegacyUnique checks the legacy-format test on listIndexes replies as
// MongoDB gives them: only unique indexes (unique true, or a number as
// servers before 5.0 kept it) of index version 0 or 1 are picked; the _id
// index (no unique field) and v: 2 unique indexes are not.
func TestLegacyUnique(t *testing.T) {
	spec := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	specs := []bson.Raw{
		spec(bson.D{{Key: "v", Value: int32(1)}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}}),
		spec(bson.D{{Key: "v", Value: int32(1)}, {Key: "unique", Value: true}, {Key: "key", Value: bson.D{{Key: "email", Value: 1}}}, {Key: "name", Value: "email_1"}}),
		spec(bson.D{{Key: "v", Value: int32(2)}, {Key: "unique", Value: true}, {Key: "key", Value: bson.D{{Key: "sku", Value: 1}}}, {Key: "name", Value: "sku_1"}}),
		spec(bson.D{{Key: "v", Value: int32(1)}, {Key: "key", Value: bson.D{{Key: "age", Value: 1}}}, {Key: "name", Value: "age_1"}}),
		spec(bson.D{{Key: "v", Value: 0.0}, {Key: "unique", Value: 1.0}, {Key: "key", Value: bson.D{{Key: "old", Value: 1}}}, {Key: "name", Value: "old_1"}}),
		spec(bson.D{{Key: "v", Value: int64(1)}, {Key: "unique", Value: false}, {Key: "key", Value: bson.D{{Key: "f", Value: 1}}}, {Key: "name", Value: "f_1"}}),
		spec(bson.D{{Key: "v", Value: int32(1)}, {Key: "unique", Value: int32(0)}, {Key: "key", Value: bson.D{{Key: "g", Value: 1}}}, {Key: "name", Value: "g_1"}}),
	}
	got := strings.Join(legacyUnique("shop.users", specs), "; ")
	if want := "shop.users index email_1 (v: 1); shop.users index old_1 (v: 0)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
