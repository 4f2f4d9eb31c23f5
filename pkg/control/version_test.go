package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logbridge/logbridge/pkg/version"
)

// TestEventVersion: events are stamped with the writer's metadata version;
// an event without one is version 1; a newer one is refused, naming both
// versions and what to do.
func TestEventVersion(t *testing.T) {
	b, err := Event{Type: EvPause}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"v":%d,"type":"pause"`, version.Metadata()); !strings.HasPrefix(string(b), want) {
		t.Fatalf("marshalled %s, want it to start with %s", b, want)
	}
	for _, tc := range []struct {
		name, json string
		wantErr    bool
	}{
		{"unversioned (before 0.1.0)", `{"type":"pause","time":"2026-12-01T00:00:00Z"}`, false},
		{"version 1", `{"v":1,"type":"pause"}`, false},
		{"this version", fmt.Sprintf(`{"v":%d,"type":"pause"}`, version.Metadata()), false},
		{"newer", fmt.Sprintf(`{"v":%d,"type":"pause"}`, version.Metadata()+1), true},
	} {
		ev, err := Unmarshal([]byte(tc.json))
		if got := err != nil; got != tc.wantErr {
			t.Fatalf("%s: got error %v, want error %v", tc.name, err, tc.wantErr)
		}
		if !tc.wantErr {
			if ev.Type != EvPause {
				t.Fatalf("%s: got %+v", tc.name, ev)
			}
			continue
		}
		if !errors.Is(err, version.ErrNewerFormat) {
			t.Fatalf("%s: got %v, want version.ErrNewerFormat", tc.name, err)
		}
		for _, want := range []string{fmt.Sprintf("metadata version %d", version.Metadata()+1), fmt.Sprintf("reads up to %d", version.Metadata()), "newer logbridge release"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: message lacks %q: %v", tc.name, want, err)
			}
		}
	}
}

// TestUnknownEventTypeRefused: an event type this binary does not know is
// never skipped (it could change the state); folding reports it.
func TestUnknownEventTypeRefused(t *testing.T) {
	s := Fold([]Event{{Type: EvStart, Params: &StartParams{Source: "a", Destination: "b"}}, {Type: "freeze", Offset: 1, V: 1}, {Type: EvPause}})
	err := s.Err()
	if err == nil || !errors.Is(err, version.ErrNewerFormat) || !strings.Contains(err.Error(), `"freeze"`) || !strings.Contains(err.Error(), "offset 1") {
		t.Fatalf("got %v, want an error naming the unknown type and its offset", err)
	}
	if s := Fold([]Event{{Type: EvStart, Params: &StartParams{Source: "a", Destination: "b"}}, {Type: EvPause}}); s.Err() != nil {
		t.Fatalf("known events: %v", s.Err())
	}
}

// TestLoadRefusesNewerEvents reads a control log on an in-memory Kafka that
// holds an event of a newer metadata version and one of an unknown type:
// Load fails naming the topic and offset instead of folding past them.
func TestLoadRefusesNewerEvents(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}
	for _, tc := range []struct {
		name, prefix string
		second       Event
		want         []string
	}{
		{"newer version", "newer", Event{V: version.Metadata() + 1, Type: EvPause},
			[]string{"newer._control offset 1", fmt.Sprintf("metadata version %d", version.Metadata()+1)}},
		{"unknown type", "unknown", Event{Type: "freeze"}, []string{"newer format", `"freeze"`, "offset 1"}},
	} {
		l, err := NewLog(ctx, opts, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Append(ctx, Event{Type: EvStart, Params: &StartParams{Source: "a", Destination: "b"}}); err != nil {
			t.Fatal(err)
		}
		if st, _, err := l.Load(ctx); err != nil || st.State != Running {
			t.Fatalf("%s: before: %v %v", tc.name, st.State, err)
		}
		if err := l.Append(ctx, tc.second); err != nil {
			t.Fatal(err)
		}
		_, _, err = l.Load(ctx)
		if !errors.Is(err, version.ErrNewerFormat) {
			t.Fatalf("%s: got %v, want version.ErrNewerFormat", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message lacks %q: %v", tc.name, w, err)
			}
		}
	}
}
