package capture

import (
	"bytes"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/pkg/nsfilter"
	"github.com/logbridge/logbridge/schema"
)

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Events below follow the MongoDB manual, "Change Events" (8.0).
var (
	token   = bson.D{{Key: "_data", Value: "8263A1B2C3000000012B022C0100296E5A1004"}}
	ct      = bson.Timestamp{T: 1700000000, I: 7}
	wall    = bson.DateTime(1700000000123)
	nsD     = bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}
	keyD    = bson.D{{Key: "_id", Value: bson.ObjectID{1, 2, 3}}}
	lsidD   = bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{9}, 16)}}, {Key: "uid", Value: bson.Binary{Data: []byte{1}}}}
	fullDoc = bson.D{{Key: "_id", Value: bson.ObjectID{1, 2, 3}}, {Key: "n", Value: bson.Decimal128{}}, {Key: "r", Value: bson.Regex{Pattern: "a", Options: "i"}}}
)

func base(op string, extra ...bson.E) bson.D {
	d := bson.D{{Key: "_id", Value: token}, {Key: "operationType", Value: op}, {Key: "clusterTime", Value: ct},
		{Key: "wallTime", Value: wall}, {Key: "ns", Value: nsD}}
	return append(d, extra...)
}

func TestMapDataEvents(t *testing.T) {
	tests := []struct {
		name  string
		event bson.D
		check func(t *testing.T, ev *schema.Event)
	}{
		{name: "insert", event: base("insert", bson.E{Key: "documentKey", Value: keyD}, bson.E{Key: "fullDocument", Value: fullDoc}),
			check: func(t *testing.T, ev *schema.Event) {
				if ev.Op != schema.OpInsert || !bytes.Equal(ev.FullDocument, raw(t, fullDoc)) || !bytes.Equal(ev.DocumentKey, raw(t, keyD)) {
					t.Errorf("got %+v", ev)
				}
			}},
		{name: "replace", event: base("replace", bson.E{Key: "documentKey", Value: keyD}, bson.E{Key: "fullDocument", Value: fullDoc}),
			check: func(t *testing.T, ev *schema.Event) {
				if ev.Op != schema.OpReplace || ev.FullDocument == nil {
					t.Errorf("got %+v", ev)
				}
			}},
		{name: "update delta", event: base("update", bson.E{Key: "documentKey", Value: keyD},
			bson.E{Key: "updateDescription", Value: bson.D{
				{Key: "updatedFields", Value: bson.D{{Key: "a.b", Value: 1}, {Key: "arr", Value: bson.A{1}}}},
				{Key: "removedFields", Value: bson.A{"x", "y.z"}},
				{Key: "truncatedArrays", Value: bson.A{bson.D{{Key: "field", Value: "arr"}, {Key: "newSize", Value: int32(1)}}}},
				{Key: "disambiguatedPaths", Value: bson.D{}},
			}}),
			check: func(t *testing.T, ev *schema.Event) {
				u := ev.Update
				if ev.Op != schema.OpUpdate || ev.FullDocument != nil || u == nil {
					t.Fatalf("got %+v", ev)
				}
				if !bytes.Equal(u.UpdatedFields, raw(t, bson.D{{Key: "a.b", Value: 1}, {Key: "arr", Value: bson.A{1}}})) ||
					len(u.RemovedFields) != 2 || u.RemovedFields[1] != "y.z" ||
					len(u.TruncatedArrays) != 1 || u.TruncatedArrays[0] != (schema.TruncatedArray{Field: "arr", NewSize: 1}) {
					t.Errorf("update description %+v", u)
				}
			}},
		{name: "update with updateLookup", event: base("update", bson.E{Key: "documentKey", Value: keyD},
			bson.E{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{}}, {Key: "removedFields", Value: bson.A{}}}},
			bson.E{Key: "fullDocument", Value: fullDoc}, bson.E{Key: "fullDocumentBeforeChange", Value: fullDoc}),
			check: func(t *testing.T, ev *schema.Event) {
				if !bytes.Equal(ev.FullDocument, raw(t, fullDoc)) || !bytes.Equal(ev.FullDocumentBefore, raw(t, fullDoc)) {
					t.Errorf("got %+v", ev)
				}
			}},
		{name: "update lookup of a deleted document is null", event: base("update", bson.E{Key: "documentKey", Value: keyD},
			bson.E{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "removedFields", Value: bson.A{}}}},
			bson.E{Key: "fullDocument", Value: nil}),
			check: func(t *testing.T, ev *schema.Event) {
				if ev.FullDocument != nil || ev.Update == nil {
					t.Errorf("got %+v", ev)
				}
			}},
		{name: "delete with pre-image", event: base("delete", bson.E{Key: "documentKey", Value: keyD}, bson.E{Key: "fullDocumentBeforeChange", Value: fullDoc}),
			check: func(t *testing.T, ev *schema.Event) {
				if ev.Op != schema.OpDelete || ev.FullDocument != nil || !bytes.Equal(ev.FullDocumentBefore, raw(t, fullDoc)) {
					t.Errorf("got %+v", ev)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Mapper{Epoch: 3, Source: "rs0"}
			mp, err := m.Map(raw(t, tc.event))
			if err != nil {
				t.Fatal(err)
			}
			ev := mp.Item.Event
			if ev == nil {
				t.Fatal("no event")
			}
			if ev.NS != (schema.Namespace{DB: "shop", Coll: "orders"}) || ev.ClusterTime != ct ||
				ev.WallTimeMillis != int64(wall) || ev.Epoch != 3 || ev.Source != "rs0" || !bytes.Equal(ev.ResumeToken, raw(t, token)) ||
				ev.Txn != nil || mp.Item.Broadcast {
				t.Errorf("common fields: got %+v", ev)
			}
			tc.check(t, ev)
		})
	}
}

func TestMapDDLEvents(t *testing.T) {
	idx := bson.D{{Key: "indexes", Value: bson.A{bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "name", Value: "a_1"}}}}}
	tests := []struct {
		name     string
		event    bson.D
		kind     schema.DDLKind
		allOfDB  bool
		nsType   string
		options  bson.D
		indexes  bson.D
		target   *schema.Namespace
		wantColl string
	}{
		{name: "create", event: base("create", bson.E{Key: "operationDescription", Value: bson.D{{Key: "capped", Value: true}, {Key: "size", Value: 4096}}}),
			kind: schema.DDLCreate, options: bson.D{{Key: "capped", Value: true}, {Key: "size", Value: 4096}}, wantColl: "orders"},
		{name: "create view", event: base("create", bson.E{Key: "nsType", Value: "view"},
			bson.E{Key: "operationDescription", Value: bson.D{{Key: "viewOn", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}}}),
			kind: schema.DDLCreate, nsType: "view", options: bson.D{{Key: "viewOn", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}}, wantColl: "orders"},
		{name: "create view before 8.1 (no nsType)", event: base("create",
			bson.E{Key: "operationDescription", Value: bson.D{{Key: "viewOn", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}}}),
			kind: schema.DDLCreate, nsType: "view", options: bson.D{{Key: "viewOn", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}}, wantColl: "orders"},
		{name: "createIndexes", event: base("createIndexes", bson.E{Key: "operationDescription", Value: idx}), kind: schema.DDLCreateIndexes, indexes: idx, wantColl: "orders"},
		{name: "dropIndexes", event: base("dropIndexes", bson.E{Key: "operationDescription", Value: idx}), kind: schema.DDLDropIndexes, indexes: idx, wantColl: "orders"},
		{name: "modify", event: base("modify", bson.E{Key: "operationDescription", Value: bson.D{{Key: "index", Value: bson.D{{Key: "name", Value: "a_1"}, {Key: "hidden", Value: true}}}}},
			bson.E{Key: "stateBeforeChange", Value: bson.D{}}),
			kind: schema.DDLModify, options: bson.D{{Key: "index", Value: bson.D{{Key: "name", Value: "a_1"}, {Key: "hidden", Value: true}}}}, wantColl: "orders"},
		{name: "drop", event: base("drop"), kind: schema.DDLDrop, wantColl: "orders"},
		{name: "rename", event: base("rename", bson.E{Key: "to", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders2"}}},
			bson.E{Key: "operationDescription", Value: bson.D{{Key: "to", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders2"}}}}}),
			kind: schema.DDLRename, target: &schema.Namespace{DB: "shop", Coll: "orders2"},
			options: bson.D{{Key: "to", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders2"}}}}, wantColl: "orders"},
		{name: "dropDatabase", event: bson.D{{Key: "_id", Value: token}, {Key: "operationType", Value: "dropDatabase"}, {Key: "clusterTime", Value: ct},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}}}}, kind: schema.DDLDropDatabase, allOfDB: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Mapper{}
			mp, err := m.Map(raw(t, tc.event))
			if err != nil {
				t.Fatal(err)
			}
			ev := mp.Item.Event
			if ev == nil || ev.Op != schema.OpDDL || ev.DDL == nil {
				t.Fatalf("got %+v", ev)
			}
			d := ev.DDL
			if d.Kind != tc.kind || !mp.Item.Broadcast || mp.Item.AllOfDB != tc.allOfDB || mp.Item.NSType != tc.nsType ||
				ev.NS.Coll != tc.wantColl || d.ID != "8263A1B2C3000000012B022C0100296E5A1004" {
				t.Errorf("got %+v %+v item %+v", ev, d, mp.Item)
			}
			if tc.options != nil && !bytes.Equal(d.Options, raw(t, tc.options)) {
				t.Errorf("options %v, want %v", d.Options, raw(t, tc.options))
			}
			if tc.indexes != nil && !bytes.Equal(d.Indexes, raw(t, tc.indexes)) {
				t.Errorf("indexes %v", d.Indexes)
			}
			if (tc.target == nil) != (d.Target == nil) || tc.target != nil && *tc.target != *d.Target {
				t.Errorf("target %v, want %v", d.Target, tc.target)
			}
		})
	}
}

func TestMapSkipsAndErrors(t *testing.T) {
	m := &Mapper{}
	for _, op := range []string{"invalidate", "shardCollection", "reshardCollection", "refineCollectionShardKey"} {
		mp, err := m.Map(raw(t, bson.D{{Key: "_id", Value: token}, {Key: "operationType", Value: op}, {Key: "clusterTime", Value: ct}}))
		if err != nil || mp.Item.Event != nil || mp.OpType != op || mp.Token == nil {
			t.Errorf("%s: got %+v, %v; want no record and a token", op, mp, err)
		}
	}
	bad := []bson.D{
		{{Key: "operationType", Value: "insert"}},                   // no _id
		base("insert", bson.E{Key: "fullDocument", Value: fullDoc}), // no documentKey
		base("insert", bson.E{Key: "documentKey", Value: keyD}),     // no fullDocument
		base("update", bson.E{Key: "documentKey", Value: keyD}),     // no updateDescription
		base("rename"),        // no to
		base("createIndexes"), // no operationDescription
	}
	for i, d := range bad {
		if _, err := m.Map(raw(t, d)); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("bad event %d: err %v, want ErrMalformedEvent", i, err)
		}
	}
}

func TestTransactionIndex(t *testing.T) {
	m := &Mapper{}
	ev := func(lsid bson.D, txn int64) *schema.TxnID {
		d := base("insert", bson.E{Key: "documentKey", Value: keyD}, bson.E{Key: "fullDocument", Value: fullDoc})
		if lsid != nil {
			d = append(d, bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "txnNumber", Value: txn})
		}
		mp, err := m.Map(raw(t, d))
		if err != nil {
			t.Fatal(err)
		}
		return mp.Item.Event.Txn
	}
	other := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{7}, 16)}}}
	var got []int32
	for _, step := range []struct {
		lsid bson.D
		txn  int64
	}{{lsidD, 1}, {lsidD, 1}, {lsidD, 1}, {lsidD, 2}, {other, 2}, {other, 2}, {nil, 0}, {other, 2}} {
		tx := ev(step.lsid, step.txn)
		if step.lsid == nil {
			if tx != nil {
				t.Fatalf("event outside a transaction has %+v", tx)
			}
			continue
		}
		if !bytes.Equal(tx.LSID, raw(t, step.lsid)) || tx.TxnNumber != step.txn {
			t.Fatalf("txn %+v", tx)
		}
		got = append(got, tx.Index)
	}
	want := []int32{0, 1, 2, 0, 0, 1, 0}
	if len(got) != len(want) {
		t.Fatalf("indexes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("indexes %v, want %v", got, want)
		}
	}
	// A restart inside a transaction keeps counting.
	m2 := &Mapper{}
	m2.Txn.Restore(raw(t, lsidD), 9, 4, 2)
	if tx := m2.Txn.Next(raw(t, lsidD), 9); tx.Index != 5 {
		t.Errorf("restored index %d, want 5", tx.Index)
	}
}

func TestTokenTime(t *testing.T) {
	ts, ok := TokenTime(raw(t, token))
	if !ok || ts != (bson.Timestamp{T: 0x63A1B2C3, I: 1}) {
		t.Errorf("TokenTime = %v, %v", ts, ok)
	}
	if _, ok := TokenTime(raw(t, bson.D{{Key: "_data", Value: "6b025be600000204"}})); ok {
		t.Error("short token decoded")
	}
}

func TestReassemble(t *testing.T) {
	tok := func(n int) bson.D { return bson.D{{Key: "_data", Value: "82" + string(rune('A'+n))}} }
	f1 := bson.D{{Key: "_id", Value: tok(1)}, {Key: "splitEvent", Value: bson.D{{Key: "fragment", Value: int32(1)}, {Key: "of", Value: int32(3)}}},
		{Key: "operationType", Value: "update"}, {Key: "clusterTime", Value: ct}, {Key: "ns", Value: nsD}, {Key: "documentKey", Value: keyD},
		{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "removedFields", Value: bson.A{}}}}}
	f2 := bson.D{{Key: "_id", Value: tok(2)}, {Key: "splitEvent", Value: bson.D{{Key: "fragment", Value: int32(2)}, {Key: "of", Value: int32(3)}}},
		{Key: "fullDocument", Value: fullDoc}}
	f3 := bson.D{{Key: "_id", Value: tok(3)}, {Key: "splitEvent", Value: bson.D{{Key: "fragment", Value: int32(3)}, {Key: "of", Value: int32(3)}}},
		{Key: "fullDocumentBeforeChange", Value: fullDoc}}
	var r Reassembler
	for i, f := range []bson.D{f1, f2} {
		got, err := r.Add(raw(t, f))
		if err != nil || got != nil || !r.Pending() {
			t.Fatalf("fragment %d: %v %v", i+1, got, err)
		}
	}
	got, err := r.Add(raw(t, f3))
	if err != nil || got == nil || r.Pending() {
		t.Fatalf("last fragment: %v %v", got, err)
	}
	m := &Mapper{}
	mp, err := m.Map(got)
	if err != nil {
		t.Fatal(err)
	}
	ev := mp.Item.Event
	if !bytes.Equal(mp.Token, raw(t, tok(3))) || ev.Op != schema.OpUpdate || !bytes.Equal(ev.FullDocument, raw(t, fullDoc)) ||
		!bytes.Equal(ev.FullDocumentBefore, raw(t, fullDoc)) || ev.Update == nil {
		t.Errorf("reassembled %v → %+v", got, ev)
	}
	if _, err := got.LookupErr("splitEvent"); err == nil {
		t.Error("splitEvent kept")
	}
	// An unsplit event passes through.
	plain := raw(t, base("drop"))
	if got, err := r.Add(plain); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("plain event: %v %v", got, err)
	}
	// Out of order.
	var r2 Reassembler
	if _, err := r2.Add(raw(t, f2)); !errors.Is(err, ErrBadFragment) {
		t.Errorf("fragment 2 first: %v", err)
	}
	if _, err := r2.Add(raw(t, f1)); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Add(plain); !errors.Is(err, ErrBadFragment) {
		t.Errorf("unsplit event inside a split one: %v", err)
	}
}

func TestStreamFilter(t *testing.T) {
	f, _ := nsfilter.New([]string{"shop.*"}, []string{"shop.tmp"})
	s := New(Config{Filter: f})
	ns := func(db, coll string) schema.Namespace { return schema.Namespace{DB: db, Coll: coll} }
	tests := []struct {
		name    string
		mp      Mapped
		want    bool
		targets []schema.Namespace
	}{
		{name: "included insert", mp: Mapped{OpType: OpInsert, NS: ns("shop", "a")}, want: true},
		{name: "excluded insert", mp: Mapped{OpType: OpInsert, NS: ns("shop", "tmp")}, want: false},
		{name: "other db", mp: Mapped{OpType: OpInsert, NS: ns("crm", "a")}, want: false},
		{name: "rename in→in", mp: Mapped{OpType: OpRename, NS: ns("shop", "a"), To: ns("shop", "b")}, want: true,
			targets: []schema.Namespace{ns("shop", "a"), ns("shop", "b")}},
		{name: "rename in→out", mp: Mapped{OpType: OpRename, NS: ns("shop", "a"), To: ns("shop", "tmp")}, want: true,
			targets: []schema.Namespace{ns("shop", "a")}},
		{name: "rename out→in", mp: Mapped{OpType: OpRename, NS: ns("crm", "a"), To: ns("shop", "b")}, want: true,
			targets: []schema.Namespace{ns("shop", "b")}},
		{name: "rename out→out", mp: Mapped{OpType: OpRename, NS: ns("crm", "a"), To: ns("crm", "b")}, want: false},
		{name: "dropDatabase included", mp: Mapped{OpType: OpDropDatabase, NS: ns("shop", "")}, want: true},
		{name: "dropDatabase other", mp: Mapped{OpType: OpDropDatabase, NS: ns("crm", "")}, want: false},
		{name: "admin", mp: Mapped{OpType: OpInsert, NS: ns("admin", "x")}, want: false},
	}
	for _, tc := range tests {
		if got := s.selected(&tc.mp); got != tc.want {
			t.Errorf("%s: selected = %v, want %v", tc.name, got, tc.want)
		}
		if tc.targets != nil {
			got := s.renameTargets(&tc.mp)
			if len(got) != len(tc.targets) {
				t.Errorf("%s: targets %v, want %v", tc.name, got, tc.targets)
				continue
			}
			for i := range got {
				if got[i] != tc.targets[i] {
					t.Errorf("%s: targets %v, want %v", tc.name, got, tc.targets)
				}
			}
		}
	}
}

func TestPipelineAndOptions(t *testing.T) {
	s := New(Config{SplitLargeEvents: true, ShowExpandedEvents: true, FullDocument: ModeUpdateLookup, FullDocumentBeforeChange: ModeWhenAvailable})
	p := s.Pipeline()
	if len(p) != 2 || p[1][0].Key != "$changeStreamSplitLargeEvent" {
		t.Errorf("pipeline %v: $changeStreamSplitLargeEvent must be last", p)
	}
	f, err := nsfilter.New([]string{"shop.orders", "crm.*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p = New(Config{Filter: f, SplitLargeEvents: true}).Pipeline()
	if len(p) != 3 || p[2][0].Key != "$changeStreamSplitLargeEvent" {
		t.Fatalf("pipeline %v: want the databases' $match, then $changeStreamSplitLargeEvent last", p)
	}
	want := `{"$match":{"$or":[{"ns.db":{"$in":["shop","crm"]}},{"to.db":{"$in":["shop","crm"]}}]}}`
	if got, _ := bson.MarshalExtJSON(p[1], false, false); string(got) != want {
		t.Errorf("the databases' stage is %s, want %s", got, want)
	}
	o := s.options(nil, false, ct)
	var got struct{ n int }
	for _, f := range o.List() {
		_ = f
		got.n++
	}
	if got.n < 4 {
		t.Errorf("%d options set", got.n)
	}
}
