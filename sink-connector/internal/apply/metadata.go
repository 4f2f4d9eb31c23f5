package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/logbridge/logbridge/pkg/mongox"
	"github.com/logbridge/logbridge/pkg/retry"
	"github.com/logbridge/logbridge/pkg/version"
)

// The destination's metadata version: one document per consumer group in
// MetaDB.VersionColl,
//
//	{_id: <group>, v: <metadata version>, lastStartedBy: "<release>", at: <time>}
//
// v is the highest metadata version (pkg/version) of any sink of that group
// that ran against this destination; without it, the group's metadata was
// written by a release before 0.1.0 (version 1) or by none. It is kept per
// group, as applied_ddl is: syncs of different groups into one destination
// are independent, and each may run its own release. Each applied_ddl
// record also carries the v of the sink that recorded it.
const VersionColl = "version"

// CheckMetadata is what a sink does with the destination's metadata before
// it applies anything: it refuses a destination whose metadata a newer
// release wrote (an error wrapping version.ErrNewerFormat, naming both
// versions), and otherwise records this binary's version, upgrading older
// metadata in place. The upgrade from version 1 needs no rewrite of
// applied_ddl (its records read the same); it is one idempotent update that
// only ever raises v, so a crash or a concurrent older sink cannot lower it.
func CheckMetadata(ctx context.Context, client *mongo.Client, wc *writeconcern.WriteConcern, group string, log *slog.Logger) error {
	coll := client.Database(MetaDB, options.Database().SetWriteConcern(wc)).Collection(VersionColl)
	var doc struct {
		V int `bson:"v"`
	}
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: group}}).Decode(&doc)
	found := err == nil
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("reading the destination's metadata version (%s.%s): %w", MetaDB, VersionColl, err)
	}
	if found {
		if err := version.CheckRead(fmt.Sprintf("the destination's logbridge metadata of group %q (%s.%s)", group, MetaDB, VersionColl), doc.V,
			"a newer logbridge release synced into this destination: run that release (or a newer one); an older sink cannot safely continue its work, and downgrading across a metadata version change needs a new sync (docs/versioning.md)"); err != nil {
			return err
		}
	}
	// The update is idempotent: a transient failure (a write conflict, a
	// failover) is retried like the sink's other writes.
	err = retry.Do(ctx, retry.Default, mongox.IsTransient, func(ctx context.Context) error {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: group}}, bson.D{
			{Key: "$max", Value: bson.D{{Key: "v", Value: version.Metadata()}}},
			{Key: "$set", Value: bson.D{{Key: "lastStartedBy", Value: version.Get().Version}, {Key: "at", Value: time.Now().UTC()}}},
		}, options.UpdateOne().SetUpsert(true))
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the metadata version in the destination (%s.%s): %w", MetaDB, VersionColl, err)
	}
	if from := max(doc.V, 1); found && from < version.Metadata() {
		log.Info("upgraded the destination's logbridge metadata", "group", group, "from", from, "to", version.Metadata())
	}
	return nil
}
