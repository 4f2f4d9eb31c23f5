package apply

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
)

func raw(t *testing.T, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNSMap(t *testing.T) {
	tests := []struct {
		name    string
		rules   []string
		in      schema.Namespace
		want    schema.Namespace
		wantErr bool
	}{
		{name: "none", in: schema.Namespace{DB: "a", Coll: "b"}, want: schema.Namespace{DB: "a", Coll: "b"}},
		{name: "db rule", rules: []string{"src.*=dst.*"}, in: schema.Namespace{DB: "src", Coll: "c"}, want: schema.Namespace{DB: "dst", Coll: "c"}},
		{name: "db rule, database event", rules: []string{"src.*=dst.*"}, in: schema.Namespace{DB: "src"}, want: schema.Namespace{DB: "dst"}},
		{name: "exact wins", rules: []string{"src.*=dst.*", "src.a=other.b"}, in: schema.Namespace{DB: "src", Coll: "a"}, want: schema.Namespace{DB: "other", Coll: "b"}},
		{name: "dotted collection", rules: []string{"db.a.b=db.c"}, in: schema.Namespace{DB: "db", Coll: "a.b"}, want: schema.Namespace{DB: "db", Coll: "c"}},
		{name: "unmatched", rules: []string{"x.*=y.*"}, in: schema.Namespace{DB: "db", Coll: "a"}, want: schema.Namespace{DB: "db", Coll: "a"}},
		{name: "no equals", rules: []string{"db.a"}, wantErr: true},
		{name: "db to coll", rules: []string{"db.*=x.y"}, wantErr: true},
		{name: "partial wildcard", rules: []string{"db.a*=x.a*"}, wantErr: true},
		{name: "no coll", rules: []string{"db=x"}, wantErr: true},
		{name: "duplicate", rules: []string{"db.*=x.*", "db.*=y.*"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseNSMap(tt.rules)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := m.Map(tt.in); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUpdateDocs(t *testing.T) {
	tests := []struct {
		name string
		ud   *schema.UpdateDescription
		want []string // canonical extended JSON
	}{
		{name: "nil", ud: nil},
		{name: "empty", ud: &schema.UpdateDescription{}},
		{name: "set dotted", ud: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "a.b", Value: int32(1)}, {Key: "arr.2", Value: "x"}})},
			want: []string{`{"$set":{"a.b":{"$numberInt":"1"},"arr.2":"x"}}`}},
		{name: "unset", ud: &schema.UpdateDescription{RemovedFields: []string{"x", "y.z"}},
			want: []string{`{"$unset":{"x":"","y.z":""}}`}},
		{name: "set and unset", ud: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "a", Value: true}}), RemovedFields: []string{"b"}},
			want: []string{`{"$set":{"a":true},"$unset":{"b":""}}`}},
		{name: "truncated first", ud: &schema.UpdateDescription{
			UpdatedFields:   raw(t, bson.D{{Key: "arr.1", Value: int32(9)}}),
			TruncatedArrays: []schema.TruncatedArray{{Field: "arr", NewSize: 2}, {Field: "o.list", NewSize: 0}}},
			want: []string{
				`{"$push":{"arr":{"$each":[],"$slice":{"$numberInt":"2"}},"o.list":{"$each":[],"$slice":{"$numberInt":"0"}}}}`,
				`{"$set":{"arr.1":{"$numberInt":"9"}}}`,
			}},
		{name: "empty set, unset", ud: &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{}), RemovedFields: []string{"b"}},
			want: []string{`{"$unset":{"b":""}}`}},
		{name: "only truncated", ud: &schema.UpdateDescription{TruncatedArrays: []schema.TruncatedArray{{Field: "a", NewSize: 1}}},
			want: []string{`{"$push":{"a":{"$each":[],"$slice":{"$numberInt":"1"}}}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UpdateDocs(tt.ud)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d docs %v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if s := strings.ReplaceAll(got[i].String(), " ", ""); s != tt.want[i] {
					t.Errorf("doc %d: got %s, want %s", i, s, tt.want[i])
				}
			}
		})
	}
	if _, err := UpdateDocs(&schema.UpdateDescription{TruncatedArrays: []schema.TruncatedArray{{Field: "a", NewSize: -1}}}); !errors.Is(err, ErrBadEvent) {
		t.Fatalf("negative size: got %v, want ErrBadEvent", err)
	}
	if _, err := UpdateDocs(&schema.UpdateDescription{RemovedFields: []string{"a\x00b"}}); !errors.Is(err, ErrBadEvent) {
		t.Fatalf("a removed field with a NUL byte: got %v, want ErrBadEvent", err)
	}
}

func ev(t *testing.T, op schema.Op, id int, doc any, ud *schema.UpdateDescription) *schema.Event {
	e := &schema.Event{Op: op, NS: schema.Namespace{DB: "db", Coll: "c"}, DocumentKey: raw(t, bson.D{{Key: "_id", Value: int32(id)}}), Update: ud}
	if doc != nil {
		e.FullDocument = raw(t, doc)
	}
	return e
}

func TestBatchCoalesce(t *testing.T) {
	set := &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "v", Value: int32(2)}})}
	trunc := &schema.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "v", Value: int32(3)}}), TruncatedArrays: []schema.TruncatedArray{{Field: "a", NewSize: 1}}}
	d1 := bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}}
	tests := []struct {
		name  string
		evs   []*schema.Event
		gens  [][]string // kind per write, per generation
		ops   int        // events
		noops int
	}{
		{name: "snapshot insert path", evs: []*schema.Event{ev(t, schema.OpSnapshot, 1, d1, nil), ev(t, schema.OpSnapshot, 2, d1, nil)},
			gens: [][]string{{"insert", "insert"}}, ops: 2},
		{name: "last full state wins", evs: []*schema.Event{ev(t, schema.OpInsert, 1, d1, nil), ev(t, schema.OpReplace, 1, d1, nil), ev(t, schema.OpUpdate, 1, d1, set)},
			gens: [][]string{{"replace"}}, ops: 3},
		{name: "delta after full state is a second round", evs: []*schema.Event{ev(t, schema.OpInsert, 1, d1, nil), ev(t, schema.OpUpdate, 1, nil, set), ev(t, schema.OpInsert, 2, d1, nil)},
			gens: [][]string{{"insert", "insert"}, {"update"}}, ops: 3},
		{name: "insert event takes the insert path", evs: []*schema.Event{ev(t, schema.OpInsert, 1, d1, nil), ev(t, schema.OpInsert, 2, d1, nil), ev(t, schema.OpReplace, 3, d1, nil)},
			gens: [][]string{{"insert", "insert", "replace"}}, ops: 3},
		{name: "delete supersedes", evs: []*schema.Event{ev(t, schema.OpInsert, 1, d1, nil), ev(t, schema.OpUpdate, 1, nil, set), ev(t, schema.OpDelete, 1, nil, nil)},
			gens: [][]string{{"delete"}}, ops: 3},
		{name: "reinsert after delete", evs: []*schema.Event{ev(t, schema.OpDelete, 1, nil, nil), ev(t, schema.OpInsert, 1, d1, nil)},
			gens: [][]string{{"replace"}}, ops: 2},
		{name: "snapshot after write is a replace", evs: []*schema.Event{ev(t, schema.OpUpdate, 1, nil, set), ev(t, schema.OpSnapshot, 1, d1, nil)},
			gens: [][]string{{"replace"}}, ops: 2},
		{name: "truncation splits", evs: []*schema.Event{ev(t, schema.OpUpdate, 1, nil, trunc), ev(t, schema.OpUpdate, 1, nil, set)},
			gens: [][]string{{"update"}, {"update"}, {"update"}}, ops: 2},
		{name: "noop update", evs: []*schema.Event{ev(t, schema.OpUpdate, 1, nil, &schema.UpdateDescription{}), ev(t, schema.OpUpdate, 1, nil, set)},
			gens: [][]string{{"update"}}, ops: 2, noops: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBatch(NSMap{})
			for i, e := range tt.evs {
				if err := b.Add(e, Ref{Offset: int64(i), Op: e.Op}); err != nil {
					t.Fatal(err)
				}
			}
			if b.Len() != tt.ops {
				t.Fatalf("got Len %d, want %d", b.Len(), tt.ops)
			}
			gens := b.generations()
			var got [][]string
			events := len(b.noops())
			for _, g := range gens {
				var ks []string
				for _, w := range g {
					ks = append(ks, w.kind.String())
					events += len(w.events)
				}
				got = append(got, ks)
			}
			if len(got) != len(tt.gens) {
				t.Fatalf("got generations %v, want %v", got, tt.gens)
			}
			for i := range got {
				if len(got[i]) != len(tt.gens[i]) {
					t.Fatalf("got generations %v, want %v", got, tt.gens)
				}
				for j := range got[i] {
					if got[i][j] != tt.gens[i][j] {
						t.Fatalf("got generations %v, want %v", got, tt.gens)
					}
				}
			}
			if events != tt.ops {
				t.Fatalf("got %d events accounted for, want %d", events, tt.ops)
			}
			if n := len(b.noops()); n != tt.noops {
				t.Fatalf("got %d noops, want %d", n, tt.noops)
			}
		})
	}
}

func TestBatchBadEvents(t *testing.T) {
	tests := []struct {
		name string
		ev   *schema.Event
	}{
		{name: "no key", ev: &schema.Event{Op: schema.OpInsert, NS: schema.Namespace{DB: "d", Coll: "c"}}},
		{name: "no doc", ev: ev(t, schema.OpInsert, 1, nil, nil)},
		{name: "update without anything", ev: ev(t, schema.OpUpdate, 1, nil, nil)},
		{name: "unknown op", ev: ev(t, schema.Op("frobnicate"), 1, bson.D{}, nil)},
		{name: "no collection", ev: &schema.Event{Op: schema.OpDelete, NS: schema.Namespace{DB: "d"}, DocumentKey: raw(t, bson.D{{Key: "_id", Value: 1}})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBatch(NSMap{})
			if err := b.Add(tt.ev, Ref{}); !errors.Is(err, ErrBadEvent) {
				t.Fatalf("got %v, want ErrBadEvent", err)
			}
			if b.Len() != 0 {
				t.Fatalf("got Len %d, want 0", b.Len())
			}
		})
	}
}

func TestRole(t *testing.T) {
	a := schema.Namespace{DB: "db", Coll: "a"}
	b := schema.Namespace{DB: "db2", Coll: "b"}
	rename := &schema.Event{Op: schema.OpDDL, NS: a, DDL: &schema.DDL{Kind: schema.DDLRename, Target: &b, ID: "x"}}
	dropDB := &schema.Event{Op: schema.OpDDL, NS: schema.Namespace{DB: "db"}, DDL: &schema.DDL{Kind: schema.DDLDropDatabase, ID: "y"}}
	tests := []struct {
		name  string
		topic string
		ev    *schema.Event
		role  BarrierRole
		ns    schema.Namespace
	}{
		{name: "rename source", topic: "lb.db.a", ev: rename, role: RoleApply, ns: a},
		{name: "rename target", topic: "lb.db2.b", ev: rename, role: RoleWaitRename, ns: a},
		{name: "dropDatabase", topic: "lb.db.c.d", ev: dropDB, role: RoleApply, ns: schema.Namespace{DB: "db", Coll: "c.d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, ns := Role(tt.topic, tt.ev)
			if role != tt.role || ns != tt.ns {
				t.Fatalf("got %v %v, want %v %v", role, ns, tt.role, tt.ns)
			}
		})
	}
}

func TestHashedIndex(t *testing.T) {
	for _, tc := range []struct {
		spec bson.D
		want bool
	}{
		{bson.D{{Key: "name", Value: "a_hashed"}, {Key: "key", Value: bson.D{{Key: "a", Value: "hashed"}}}}, true},
		{bson.D{{Key: "name", Value: "b_1_a_hashed"}, {Key: "key", Value: bson.D{{Key: "b", Value: 1}, {Key: "a", Value: "hashed"}}}}, true},
		{bson.D{{Key: "name", Value: "a_1"}, {Key: "key", Value: bson.D{{Key: "a", Value: 1}}}}, false},
		{bson.D{{Key: "name", Value: "t_text"}, {Key: "key", Value: bson.D{{Key: "_fts", Value: "text"}}}}, false},
	} {
		if got := hashedIndex(raw(t, tc.spec)); got != tc.want {
			t.Errorf("hashedIndex(%v): got %v, want %v", tc.spec, got, tc.want)
		}
	}
}
