package control

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStartBodyMongosyncForms decodes start bodies as mongosync's current
// documentation writes them.
func TestStartBodyMongosyncForms(t *testing.T) {
	tests := []struct {
		name, body string
		wantWB     WriteBlocking
		dst, src   bool
		wantErr    string
	}{
		{name: "true", body: `{"enableUserWriteBlocking":true}`, wantWB: WriteBlockSourceAndDestination, dst: true, src: true},
		{name: "false", body: `{"enableUserWriteBlocking":false}`, wantWB: WriteBlockNone},
		{name: "sourceAndDestination", body: `{"enableUserWriteBlocking":"sourceAndDestination"}`, wantWB: WriteBlockSourceAndDestination, dst: true, src: true},
		{name: "destinationOnly", body: `{"enableUserWriteBlocking":"destinationOnly"}`, wantWB: WriteBlockDestinationOnly, dst: true},
		{name: "none", body: `{"enableUserWriteBlocking":"none"}`, wantWB: WriteBlockNone},
		{name: "absent", body: `{}`, wantWB: ""},
		{name: "unknown string", body: `{"enableUserWriteBlocking":"sourceOnly"}`, wantErr: `enableUserWriteBlocking "sourceOnly": use "sourceAndDestination", "destinationOnly", "none", true or false`},
		{name: "number", body: `{"enableUserWriteBlocking":1}`, wantErr: "enableUserWriteBlocking 1: use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p StartParams
			err := json.Unmarshal([]byte(tt.body), &p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w := p.EnableUserWriteBlocking; w != tt.wantWB || w.Destination() != tt.dst || w.Source() != tt.src {
				t.Fatalf("got %q (destination %v, source %v), want %q (%v, %v)", w, w.Destination(), w.Source(), tt.wantWB, tt.dst, tt.src)
			}
			// The control log keeps the string form, and reads it back.
			b, _ := json.Marshal(p)
			var again StartParams
			if err := json.Unmarshal(b, &again); err != nil || again.EnableUserWriteBlocking != p.EnableUserWriteBlocking {
				t.Fatalf("round trip through the log: %s -> %q (%v)", b, again.EnableUserWriteBlocking, err)
			}
		})
	}
	// Every other field of the current start API decodes.
	body := `{"source":"cluster0","destination":"cluster1","buildIndexes":"excludeHashed","reversible":true,
		"enableUserWriteBlocking":"sourceAndDestination","preExistingDestinationData":true,
		"verification":{"enabled":false},"detectRandomId":false,"copyInNaturalOrder":[{"database":"shop","collections":["orders"]}],
		"sharding":{"createSupportingIndexes":true,"shardingEntries":[{"database":"shop","collection":"orders","shardCollection":{"key":[{"cust":1}]}}]},
		"includeNamespaces":[{"database":"shop"}],"namespaceRemap":[{"from":{"database":"shop"},"to":{"database":"shop2"}}]}`
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	var p StartParams
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.VerificationEnabled() || !p.ExcludeHashedIndexes() || p.IndexesAfterCopy() || len(p.Sharding.ShardingEntries) != 1 {
		t.Fatalf("decoded %+v: want verification off, hashed excluded, indexes before the copy, one sharding entry", p)
	}
	c, err := Compile(p, testClusters)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Warnings, "\n"); !strings.Contains(got, "sharding: accepted but not applied") || !strings.Contains(got, "detectRandomId: accepted but not applied") ||
		!strings.Contains(got, "copyInNaturalOrder: accepted but not applied") {
		t.Fatalf("warnings %q: want sharding and detectRandomId named", c.Warnings)
	}
}

func TestStartBodyRefusals(t *testing.T) {
	tests := []struct {
		name string
		p    StartParams
		want string
	}{
		{"never and reversible", start(func(p *StartParams) { p.BuildIndexes, p.Reversible = "never", true }), `buildIndexes "never" with "reversible": true`},
		{"unknown buildIndexes", start(func(p *StartParams) { p.BuildIndexes = "sometimes" }), `buildIndexes "sometimes": use afterDataCopy, beforeDataCopy, excludeHashed, excludeHashedAfterCopy or never`},
		{"documentFilter", start(func(p *StartParams) { p.DocumentFilter = json.RawMessage(`{"a":1}`) }), "documentFilter: logbridge does not filter documents"},
		{"drop and merge", start(func(p *StartParams) { p.DropDestinationData, p.PreExistingDestinationData = true, true }), "dropDestinationData and preExistingDestinationData both given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.p, testClusters); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Defaults: indexes after the copy, verification on, no warnings.
	p := start(nil)
	c, err := Compile(p, testClusters)
	if err != nil || !p.IndexesAfterCopy() || !p.VerificationEnabled() || len(c.Warnings) != 0 {
		t.Fatalf("defaults: err %v, after copy %v, verification %v, warnings %q", err, p.IndexesAfterCopy(), p.VerificationEnabled(), c.Warnings)
	}
}

// TestReversibleNeedsBlockingOnBothSides: as mongosync, a reversible start
// is refused unless user writes are blocked on the source and the
// destination; a sync already in the control log still compiles (an
// upgraded binary keeps running what an earlier one accepted).
func TestReversibleNeedsBlockingOnBothSides(t *testing.T) {
	for _, wb := range []WriteBlocking{"", WriteBlockNone, WriteBlockDestinationOnly} {
		p := start(func(p *StartParams) { p.Reversible, p.EnableUserWriteBlocking = true, wb })
		err := CheckRequest(p)
		if err == nil || !strings.Contains(err.Error(), `"reversible": true needs "enableUserWriteBlocking": "sourceAndDestination"`) {
			t.Fatalf("reversible with enableUserWriteBlocking %q: got %v, want the prerequisite named", wb, err)
		}
		if _, err := Compile(p, testClusters); err != nil {
			t.Fatalf("reversible with enableUserWriteBlocking %q as logged by an earlier version: Compile refused it: %v", wb, err)
		}
	}
	for _, p := range []StartParams{
		start(func(p *StartParams) { p.Reversible, p.EnableUserWriteBlocking = true, WriteBlockSourceAndDestination }),
		start(func(p *StartParams) { p.EnableUserWriteBlocking = WriteBlockNone }),
	} {
		if err := CheckRequest(p); err != nil {
			t.Fatalf("reversible %v with enableUserWriteBlocking %q: refused: %v", p.Reversible, p.EnableUserWriteBlocking, err)
		}
	}
	if err := CheckRequest(start(func(p *StartParams) { p.FilterOnDestination = true })); err == nil || !strings.Contains(err.Error(), "set by reverse") {
		t.Fatalf("filterOnDestination in a request: got %v, want it refused", err)
	}
}

// The copy totals recorded at commit stay in the folded state until the
// next epoch starts (progress shows them after the connector stopped).
func TestCopyTotalsFold(t *testing.T) {
	p := start(func(p *StartParams) { p.Reversible = true })
	rev := p.Reversed()
	events := []Event{{Type: EvStart, Params: &p}, {Type: EvCommit},
		{Type: EvCommitMarked, MarkerID: "m", Copy: &CopyTotals{EstimatedTotalBytes: 100, EstimatedCopiedBytes: 90}},
		{Type: EvSinkCommitted, MarkerID: "m"}, {Type: EvCommitted}}
	st := Fold(events)
	if st.State != Committed || st.Copy == nil || st.Copy.EstimatedTotalBytes != 100 || st.Copy.EstimatedCopiedBytes != 90 {
		t.Fatalf("after commit: state %s, copy %+v, want COMMITTED with 100/90", st.State, st.Copy)
	}
	st = Fold(append(events, Event{Type: EvReverse}, Event{Type: EvReversed, Params: &rev}))
	if st.Copy != nil {
		t.Fatalf("the reversed epoch kept the first epoch's copy totals: %+v", st.Copy)
	}
}
