package testenv

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ConfigureFailPoint runs mongod's configureFailPoint test command (which
// the test shim serves too) on cl: name is "failCommand" or
// "failGetMoreAfterCursorCheckout", mode "alwaysOn", "off" or a document
// such as {times: n}, data nil or the fail point's data. The reply's count
// is how often the fail point fired so far (cumulative across settings).
func ConfigureFailPoint(ctx context.Context, cl *mongo.Client, name string, mode any, data bson.D) (bson.Raw, error) {
	cmd := bson.D{{Key: "configureFailPoint", Value: name}, {Key: "mode", Value: mode}}
	if data != nil {
		cmd = append(cmd, bson.E{Key: "data", Value: data})
	}
	return cl.Database("admin").RunCommand(ctx, cmd).Raw()
}
