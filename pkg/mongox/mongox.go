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
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
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
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(codeCommandNotFound) {
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

// Error codes the classifiers use (from the server's error_codes.yml).
const (
	codeCommandNotFound         = 59
	codeUnauthorized            = 13
	codeAuthenticationFailed    = 18
	codeChangeStreamHistoryLost = 286
)

// IsTransient reports whether err is worth retrying: network errors, timeouts
// and errors the server labels retryable. A cancelled context never is.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		return se.HasErrorLabel("RetryableWriteError") || se.HasErrorLabel("TransientTransactionError") ||
			se.HasErrorLabel("ResumableChangeStreamError") || se.HasErrorLabel("NetworkError")
	}
	return false
}

// IsAuthError reports an authentication or authorization failure: a server
// error with one of those codes, or a failed authentication handshake (which
// the driver reports as an auth.Error inside a connection error).
func IsAuthError(err error) bool {
	var se mongo.ServerError
	var ae *auth.Error
	return errors.As(err, &ae) || errors.As(err, &se) && (se.HasErrorCode(codeUnauthorized) || se.HasErrorCode(codeAuthenticationFailed))
}

// IsHistoryLost reports that a change stream's resume point is no longer in
// the oplog (ChangeStreamHistoryLost).
func IsHistoryLost(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(codeChangeStreamHistoryLost)
}

// IsDuplicateKey reports a duplicate key error.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }
