package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/sink-connector/internal/metrics"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestDestinationMetadataVersion runs CheckMetadata on the real destination
// for a group of the test's own: a fresh group gets this binary's version;
// version 1 (older) is upgraded in place, idempotently; a newer version is
// refused naming both versions; applied_ddl records carry v.
func TestDestinationMetadataVersion(t *testing.T) {
	env := testenv.New(t)
	ctx := testenv.Context(t, time.Minute)
	dest := env.Dest(t)
	group := testenv.TopicPrefix(t) + "-g"
	coll := dest.Database(MetaDB).Collection(VersionColl)
	applied := dest.Database(MetaDB).Collection(AppliedColl)
	cleanup := func() {
		_, _ = coll.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: group}})
		_, _ = applied.DeleteMany(context.Background(), bson.D{{Key: "_id.g", Value: group}})
	}
	cleanup()
	t.Cleanup(cleanup)
	log := slog.New(slog.DiscardHandler)
	wc := writeconcern.Majority()
	stored := func() int {
		t.Helper()
		var doc struct {
			V int `bson:"v"`
		}
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: group}}).Decode(&doc); err != nil {
			t.Fatalf("reading the version document: %v", err)
		}
		return doc.V
	}

	if err := CheckMetadata(ctx, dest, wc, group, log); err != nil {
		t.Fatalf("fresh group: %v", err)
	}
	if got := stored(); got != version.Metadata() {
		t.Fatalf("fresh group: v = %d, want %d", got, version.Metadata())
	}

	// Metadata of version 1 (an older release) is upgraded, twice over
	// (a crash right after the update repeats it) without harm.
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: group}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := CheckMetadata(ctx, dest, wc, group, log); err != nil {
			t.Fatalf("version 1: %v", err)
		}
		if got := stored(); got != version.Metadata() {
			t.Fatalf("after the upgrade: v = %d, want %d", got, version.Metadata())
		}
	}

	// A newer release's metadata is refused and left as it is.
	newer := version.Metadata() + 1
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: group}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: newer}}}}); err != nil {
		t.Fatal(err)
	}
	err := CheckMetadata(ctx, dest, wc, group, log)
	if !errors.Is(err, version.ErrNewerFormat) {
		t.Fatalf("newer metadata: got %v, want version.ErrNewerFormat", err)
	}
	for _, want := range []string{fmt.Sprintf("metadata version %d", newer), fmt.Sprintf("reads up to %d", version.Metadata()), group, "newer logbridge release"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if got := stored(); got != newer {
		t.Fatalf("a refused check changed v to %d", got)
	}

	// Applied barriers record the version that applied them.
	a := NewDDLApplier(dest, wc, group, true, NSMap{}, metrics.New(nil), log)
	if err := a.record(ctx, "ddl-1", "db.c", "drop"); err != nil {
		t.Fatal(err)
	}
	raw, err := applied.FindOne(ctx, bson.D{{Key: "_id.g", Value: group}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := raw.Lookup("v").AsInt64OK(); !ok || int(v) != version.Metadata() {
		t.Fatalf("applied_ddl record %v: v missing or not %d", raw, version.Metadata())
	}
}
