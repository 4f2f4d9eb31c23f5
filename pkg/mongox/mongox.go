package mongox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotReplicaSet: the server is a standalone, which has no oplog and so
	// no change streams.
	ErrNotReplicaSet = errors.New("the source is not a replica set or sharded cluster (change streams need one): convert it to a replica set (even a single-member one) and use its replica set URI")
	// ErrUnreachable: no server answered.
	ErrUnreachable = errors.New("MongoDB is unreachable: check the URI's hosts and ports, the network and TLS options")
)

// Connect opens a client and pings it, so that a bad URI or unreachable server
// is reported at startup.
func Connect(ctx context.Context, role, uri string) (*mongo.Client, error) {
	if uri == "" {
		return nil, fmt.Errorf("%s URI is empty: give a mongodb:// or mongodb+srv:// URI", role)
	}
	opts := options.Client().ApplyURI(uri)
	if opts.AppName == nil {
		// Names the connection in server logs, currentOp and profiles.
		opts.SetAppName("logbridge-" + strings.ReplaceAll(role, " ", "-"))
	}
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(15 * time.Second)
	}
	// Driver errors may quote the URI or an option value (a bad
	// tlsCertificateKeyFilePassword escape, say): they are redacted.
	red := NewRedactor([]string{uri})
	cl, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("%s URI is not valid (%v): fix the URI", role, red.String(err.Error()))
	}
	if err := cl.Ping(ctx, nil); err != nil {
		_ = cl.Disconnect(context.Background())
		if IsAuthError(err) {
			return nil, red.Error(fmt.Errorf("%s at %s: authentication failed (%w): check the user, password and authSource in the URI", role, Redact(uri), err))
		}
		return nil, red.Error(fmt.Errorf("%s at %s: %w (%v)", role, Redact(uri), ErrUnreachable, err))
	}
	return cl, nil
}

// Topology is what the hello command says of a deployment.
type Topology struct {
	SetName        string // replica set name ("" for standalone or mongos)
	IsMongos       bool
	MaxWireVersion int32
}

// Hello runs the hello command.
func Hello(ctx context.Context, cl *mongo.Client) (Topology, error) {
	var res struct {
		SetName        string `bson:"setName"`
		Msg            string `bson:"msg"`
		MaxWireVersion int32  `bson:"maxWireVersion"`
	}
	err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&res)
	if IsCommandNotFound(err) {
		// Servers before MongoDB 4.4.2 know only the legacy name.
		err = cl.Database("admin").RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&res)
	}
	if err != nil {
		return Topology{}, fmt.Errorf("running hello: %w", err)
	}
	return Topology{SetName: res.SetName, IsMongos: res.Msg == "isdbgrid", MaxWireVersion: res.MaxWireVersion}, nil
}

// RequireChangeStreams fails with ErrNotReplicaSet for a standalone server.
func RequireChangeStreams(ctx context.Context, cl *mongo.Client) (Topology, error) {
	t, err := Hello(ctx, cl)
	if err != nil {
		return t, err
	}
	if t.SetName == "" && !t.IsMongos {
		return t, ErrNotReplicaSet
	}
	return t, nil
}
