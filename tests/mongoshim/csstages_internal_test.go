package mongoshim

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestChangeStreamStages runs the stages MongoDB allows after $changeStream
// on a rendered event, and checks that the others are refused with
// MongoDB's errors (never skipped).
func TestChangeStreamStages(t *testing.T) {
	ext := func(s string) bson.Raw {
		t.Helper()
		var d bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return d
	}
	s := &Server{}
	event := `{"_id":{"_data":"82AA"},"operationType":"insert","fullDocument":{"_id":1,"a":{"b":2,"c":3},"arr":[{"x":1,"y":2},{"x":3}]},"ns":{"db":"shop","coll":"orders"},"documentKey":{"_id":1}}`
	run := func(pipeline string) (bson.Raw, bool, error) {
		t.Helper()
		var stages bson.A
		if err := bson.UnmarshalExtJSON([]byte(pipeline), false, &stages); err != nil {
			t.Fatal(err)
		}
		doc, keep := ext(event), true
		for _, st := range stages {
			st, err := s.parseStage(mustRaw(st))
			if err != nil {
				return nil, false, err
			}
			if doc, keep, err = st.apply(doc); err != nil || !keep {
				return doc, keep, err
			}
		}
		return doc, keep, checkToken(ext(event), doc)
	}
	for _, c := range []struct{ name, pipeline, want string }{
		{"Debezium's namespace match", `[{"$replaceRoot":{"newRoot":{"_id":"$_id","event":"$$ROOT","namespace":{"$concat":["$ns.db",".","$ns.coll"]}}}},{"$match":{"namespace":"shop.orders"}},{"$replaceRoot":{"newRoot":"$event"}}]`, event},
		{"$project inclusion with dotted paths", `[{"$project":{"operationType":1,"fullDocument.a.b":1,"fullDocument.arr.x":1}}]`,
			`{"_id":{"_data":"82AA"},"operationType":"insert","fullDocument":{"a":{"b":2},"arr":[{"x":1},{"x":3}]}}`},
		{"$project with an expression", `[{"$project":{"ns":{"$concat":["$ns.db","/","$ns.coll"]},"op":"$operationType"}}]`,
			`{"_id":{"_data":"82AA"},"ns":"shop/orders","op":"insert"}`},
		{"$project exclusion", `[{"$project":{"fullDocument":0,"ns.coll":0}}]`,
			`{"_id":{"_data":"82AA"},"operationType":"insert","ns":{"db":"shop"},"documentKey":{"_id":1}}`},
		{"$addFields and $unset", `[{"$addFields":{"ns.full":{"$concat":["$ns.db",".","$ns.coll"]},"isInsert":{"$eq":["$operationType","insert"]}}},{"$unset":["fullDocument","documentKey"]}]`,
			`{"_id":{"_data":"82AA"},"operationType":"insert","ns":{"db":"shop","coll":"orders","full":"shop.orders"},"isInsert":true}`},
		{"$set with $cond and $$REMOVE", `[{"$set":{"operationType":{"$cond":{"if":{"$in":["$operationType",["insert","replace"]]},"then":"upsert","else":"$$REMOVE"}},"fullDocument":"$$REMOVE"}}]`,
			`{"_id":{"_data":"82AA"},"operationType":"upsert","ns":{"db":"shop","coll":"orders"},"documentKey":{"_id":1}}`},
		{"$match that drops", `[{"$match":{"operationType":"delete"}}]`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, keep, err := run(c.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if keep {
					t.Fatalf("kept %s", got)
				}
				return
			}
			if got.String() != ext(c.want).String() {
				t.Errorf("\n got %s\nwant %s", got, ext(c.want))
			}
		})
	}
	for _, c := range []struct {
		name, pipeline string
		code           int32
	}{
		{"a stage MongoDB refuses there", `[{"$group":{"_id":"$operationType"}}]`, codeIllegalOperation},
		{"another", `[{"$limit":1}]`, codeIllegalOperation},
		{"an unknown stage", `[{"$frobnicate":{}}]`, 40324},
		{"an expression the shim lacks", `[{"$addFields":{"n":{"$dateToString":{"date":"$wallTime"}}}}]`, codeIllegalOperation},
		{"the resume token changed", `[{"$project":{"_id":0}}]`, 280},
		{"a replacement that is not a document", `[{"$replaceWith":"$operationType"}]`, 40228},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := run(c.pipeline)
			var ce *cmdErr
			if !errors.As(err, &ce) || ce.Code != c.code {
				t.Errorf("got %v, want code %d", err, c.code)
			}
		})
	}
}
