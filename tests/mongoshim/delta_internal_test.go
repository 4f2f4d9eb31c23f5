package mongoshim

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestUpdateDescriptionDelta checks the shim's updateDescription against
// MongoDB's delta rules (docs/testing.md "updateDescription as MongoDB
// reports it"): the expected descriptions are what MongoDB 7.0 reports for
// these updates, written out by hand from those rules.
func TestUpdateDescriptionDelta(t *testing.T) {
	ext := func(s string) bson.Raw {
		var d bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return d
	}
	cases := []struct {
		name, pre, update, post string
		pipeline                bool
		want, wantExpanded      string // wantExpanded "" = no disambiguatedPaths
		replace                 bool
	}{
		{name: "deep set of an existing path",
			pre: `{"_id":1,"a":{"b":{"c":0,"d":1}}}`, update: `{"$set":{"a.b.c":1}}`, post: `{"_id":1,"a":{"b":{"c":1,"d":1}}}`,
			want: `{"updatedFields":{"a.b.c":1},"removedFields":[],"truncatedArrays":[]}`},
		{name: "created path logged at its first new component",
			pre: `{"_id":1,"a":{"x":1}}`, update: `{"$set":{"a.b.c":1,"a.b.d":2}}`, post: `{"_id":1,"a":{"x":1,"b":{"c":1,"d":2}}}`,
			want: `{"updatedFields":{"a.b":{"c":1,"d":2}},"removedFields":[],"truncatedArrays":[]}`},
		{name: "array element set past the end (padding implied)",
			pre: `{"_id":1,"arr":[1,2]}`, update: `{"$set":{"arr.4":5}}`, post: `{"_id":1,"arr":[1,2,null,null,5]}`,
			want: `{"updatedFields":{"arr.4":5},"removedFields":[],"truncatedArrays":[]}`},
		{name: "field of an array element",
			pre: `{"_id":1,"arr":[{"a":1},{"a":2}]}`, update: `{"$inc":{"arr.1.a":1}}`, post: `{"_id":1,"arr":[{"a":1},{"a":3}]}`,
			want: `{"updatedFields":{"arr.1.a":3},"removedFields":[],"truncatedArrays":[]}`},
		{name: "push that appends: one path per element",
			pre: `{"_id":1,"arr":[1,2]}`, update: `{"$push":{"arr":{"$each":[3,4]}}}`, post: `{"_id":1,"arr":[1,2,3,4]}`,
			want: `{"updatedFields":{"arr.2":3,"arr.3":4},"removedFields":[],"truncatedArrays":[]}`},
		{name: "push onto an empty array: whole array",
			pre: `{"_id":1,"arr":[]}`, update: `{"$push":{"arr":1}}`, post: `{"_id":1,"arr":[1]}`,
			want: `{"updatedFields":{"arr":[1]},"removedFields":[],"truncatedArrays":[]}`},
		{name: "push with a trimming slice: whole array, no truncatedArrays",
			pre: `{"_id":1,"arr":[1,2,3]}`, update: `{"$push":{"arr":{"$each":[4],"$slice":-2}}}`, post: `{"_id":1,"arr":[3,4]}`,
			want: `{"updatedFields":{"arr":[3,4]},"removedFields":[],"truncatedArrays":[]}`},
		{name: "push with position: whole array",
			pre: `{"_id":1,"arr":[1,2]}`, update: `{"$push":{"arr":{"$each":[0],"$position":0}}}`, post: `{"_id":1,"arr":[0,1,2]}`,
			want: `{"updatedFields":{"arr":[0,1,2]},"removedFields":[],"truncatedArrays":[]}`},
		{name: "pop: whole array",
			pre: `{"_id":1,"arr":[1,2,3]}`, update: `{"$pop":{"arr":1}}`, post: `{"_id":1,"arr":[1,2]}`,
			want: `{"updatedFields":{"arr":[1,2]},"removedFields":[],"truncatedArrays":[]}`},
		{name: "unset of a nested field and of an array element",
			pre: `{"_id":1,"a":{"b":1,"c":2},"arr":[1,2]}`, update: `{"$unset":{"a.b":"","arr.0":""}}`, post: `{"_id":1,"a":{"c":2},"arr":[null,2]}`,
			want: `{"updatedFields":{"arr.0":null},"removedFields":["a.b"],"truncatedArrays":[]}`},
		{name: "numeric field name below the top level is ambiguous",
			pre: `{"_id":1,"m":{"2":1}}`, update: `{"$inc":{"m.2":1}}`, post: `{"_id":1,"m":{"2":2}}`,
			want:         `{"updatedFields":{"m.2":2},"removedFields":[],"truncatedArrays":[]}`,
			wantExpanded: `{"updatedFields":{"m.2":2},"removedFields":[],"truncatedArrays":[],"disambiguatedPaths":{"m.2":["m","2"]}}`},
		{name: "an array index alone is not ambiguous, after a numeric field it is",
			pre: `{"_id":1,"m":{"0":[1,2]}}`, update: `{"$set":{"m.0.1":5}}`, post: `{"_id":1,"m":{"0":[1,5]}}`,
			want:         `{"updatedFields":{"m.0.1":5},"removedFields":[],"truncatedArrays":[]}`,
			wantExpanded: `{"updatedFields":{"m.0.1":5},"removedFields":[],"truncatedArrays":[],"disambiguatedPaths":{"m.0.1":["m","0",{"$numberInt":"1"}]}}`},
		{name: "rename: target set, source removed",
			pre: `{"_id":1,"a":1,"z":0}`, update: `{"$rename":{"a":"b"}}`, post: `{"_id":1,"z":0,"b":1}`,
			want: `{"updatedFields":{"b":1},"removedFields":["a"],"truncatedArrays":[]}`},
		{name: "existing fields first, then created ones, in path order",
			pre: `{"_id":1,"z":0,"a":0}`, update: `{"$set":{"new":1,"z":1,"a":1}}`, post: `{"_id":1,"z":1,"a":1,"new":1}`,
			want: `{"updatedFields":{"a":1,"z":1,"new":1},"removedFields":[],"truncatedArrays":[]}`},
		{name: "numeric path components in numeric order",
			pre: `{"_id":1,"arr":[0,0,0,0,0,0,0,0,0,0,0]}`, update: `{"$set":{"arr.10":1,"arr.9":1}}`, post: `{"_id":1,"arr":[0,0,0,0,0,0,0,0,0,1,1]}`,
			want: `{"updatedFields":{"arr.9":1,"arr.10":1},"removedFields":[],"truncatedArrays":[]}`},
		{name: "pipeline update: array truncated, element field added",
			pre: `{"_id":1,"arr":["foo",{"a":"bar"},1,2,3]}`, pipeline: true, post: `{"_id":1,"arr":["foo",{"a":"bar","b":3}]}`,
			want: `{"updatedFields":{"arr.1.b":3},"removedFields":[],"truncatedArrays":[{"field":"arr","newSize":2}]}`},
		{name: "pipeline update: dotted top-level name",
			pre: `{"_id":1,"a.b":1,"c":1}`, pipeline: true, post: `{"_id":1,"a.b":2}`,
			want:         `{"updatedFields":{"a.b":2},"removedFields":["c"],"truncatedArrays":[]}`,
			wantExpanded: `{"updatedFields":{"a.b":2},"removedFields":["c"],"truncatedArrays":[],"disambiguatedPaths":{"a.b":["a.b"]}}`},
		{name: "pipeline update that reorders fields: a replace",
			pre: `{"_id":1,"a":1,"b":1}`, pipeline: true, post: `{"_id":1,"b":1,"a":1}`, replace: true},
		{name: "post-image the operators cannot give: falls back to the diff",
			pre: `{"_id":1,"a":{"x":1,"y":1}}`, update: `{"$set":{"a.x":2}}`, post: `{"_id":1,"a":{"x":2,"y":2}}`,
			// the sub-diff would not be smaller than the new value: whole "a"
			want: `{"updatedFields":{"a":{"x":2,"y":2}},"removedFields":[],"truncatedArrays":[]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := bson.RawValue{Type: bson.TypeArray, Value: bson.Raw(mustRaw(bson.D{}))} // a pipeline
			if !c.pipeline {
				u = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: ext(c.update)}
			}
			desc, replace := updateEvent(ext(c.pre), ext(c.post), u, false)
			if replace != c.replace {
				t.Fatalf("replace = %v, want %v", replace, c.replace)
			}
			if c.replace {
				return
			}
			if got, want := desc.plain.String(), ext(c.want).String(); got != want {
				t.Errorf("updateDescription\n got %s\nwant %s", got, want)
			}
			if c.wantExpanded == "" {
				if desc.expanded != nil {
					t.Errorf("disambiguatedPaths where MongoDB has none: %s", desc.expanded)
				}
			} else if got, want := desc.expanded.String(), ext(c.wantExpanded).String(); got != want {
				t.Errorf("with showExpandedEvents\n got %s\nwant %s", got, want)
			}
		})
	}
}
