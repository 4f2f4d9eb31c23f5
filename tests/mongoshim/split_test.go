package mongoshim

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSplitEvent(t *testing.T) {
	at := pos{ts: mkTS(100, 3), idx: 2}
	ev := mustRaw(bson.D{{Key: "_id", Value: at.token()}, {Key: "operationType", Value: "update"},
		{Key: "fullDocument", Value: bson.D{{Key: "b", Value: strings.Repeat("x", 10<<20)}}},
		{Key: "fullDocumentBeforeChange", Value: bson.D{{Key: "b", Value: strings.Repeat("y", 10<<20)}}}})
	frags, err := splitEvent(ev, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) != 2 {
		t.Fatalf("%d fragments, want 2", len(frags))
	}
	seen := map[string]bool{}
	for i, f := range frags {
		if len(f) > maxEventBytes {
			t.Errorf("fragment %d is %d bytes", i+1, len(f))
		}
		if got := f.Lookup("splitEvent", "fragment").Int32(); got != int32(i+1) || f.Lookup("splitEvent", "of").Int32() != 2 {
			t.Errorf("fragment %d: splitEvent %v", i+1, f.Lookup("splitEvent"))
		}
		elems, _ := f.Elements()
		for _, e := range elems {
			seen[e.Key()] = true
		}
		p, err := parseToken(f.Lookup("_id").Document())
		if err != nil {
			t.Fatal(err)
		}
		// Only the last fragment's token is the event's own: resuming
		// from an earlier one continues with the next fragment.
		if want := i + 1; i < len(frags)-1 && fragmentOf(p) != want {
			t.Errorf("fragment %d token resumes after fragment %d", i+1, fragmentOf(p))
		}
		if i == len(frags)-1 && p != at {
			t.Errorf("last fragment token %+v, want the event's %+v", p, at)
		}
	}
	for _, k := range []string{"operationType", "fullDocument", "fullDocumentBeforeChange"} {
		if !seen[k] {
			t.Errorf("no fragment carries %s", k)
		}
	}
	if got := frags[0].Lookup("operationType").StringValue(); got != "update" {
		t.Errorf("the first fragment lacks the event context (operationType %q)", got)
	}
	if !justBefore(at).less(at) || !(pos{ts: at.ts, idx: 1, flag: 1}).less(justBefore(at)) {
		t.Errorf("justBefore(%+v) = %+v is not just before the event", at, justBefore(at))
	}

	tooBig := mustRaw(bson.D{{Key: "_id", Value: at.token()}, {Key: "fullDocument", Value: bson.D{{Key: "b", Value: strings.Repeat("x", 17<<20)}}}})
	if _, err := splitEvent(tooBig, at); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a single 17 MiB field: err %v, want BSONObjectTooLarge", err)
	}
}
