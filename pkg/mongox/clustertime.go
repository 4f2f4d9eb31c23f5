package mongox

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ErrNoClusterTime: the server reports no cluster time, so it is neither a
// replica set member nor a mongos.
var ErrNoClusterTime = errors.New("the server reports no cluster time (operationTime / $clusterTime / lastWrite): it is not a replica set member or mongos")

// ClusterTime returns a cluster time at or after every write acknowledged
// before the call: the time of a no-op oplog entry written with
// appendOplogNote (note is its message), else, where that is not allowed or
// not supported, the operationTime / $clusterTime of a hello.
func ClusterTime(ctx context.Context, cl *mongo.Client, note string) (bson.Timestamp, error) {
	raw, err := cl.Database("admin").RunCommand(ctx, bson.D{
		{Key: "appendOplogNote", Value: 1},
		{Key: "data", Value: bson.D{{Key: "msg", Value: note}}},
	}).Raw()
	if err == nil {
		if ts, ok := ResponseTime(raw); ok {
			return ts, nil
		}
	} else {
		if !(IsUnauthorized(err) || IsCommandNotFound(err) || IsNotSupported(err) || IsUserWritesBlocked(err)) {
			return bson.Timestamp{}, fmt.Errorf("taking the cluster time with appendOplogNote: %w", err)
		}
	}
	raw, err = cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("taking the cluster time with hello: %w", err)
	}
	if ts, ok := ResponseTime(raw); ok {
		return ts, nil
	}
	return bson.Timestamp{}, ErrNoClusterTime
}

// ResponseTime reads operationTime, else $clusterTime.clusterTime, else
// lastWrite.opTime.ts of a command response.
func ResponseTime(raw bson.Raw) (bson.Timestamp, bool) {
	for _, path := range [][]string{{"operationTime"}, {"$clusterTime", "clusterTime"}, {"lastWrite", "opTime", "ts"}} {
		if v, err := raw.LookupErr(path...); err == nil {
			if t, i, ok := v.TimestampOK(); ok && t != 0 {
				return bson.Timestamp{T: t, I: i}, true
			}
		}
	}
	return bson.Timestamp{}, false
}
