package mongox

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
)

// Server error codes (the server's src/mongo/base/error_codes.yml). Every
// code the project reacts to is named here and tested through a predicate
// below, so that no package compares numbers or matches error text.
const (
	codeUnauthorized            = 13
	codeAuthenticationFailed    = 18
	codeIllegalOperation        = 20
	codeNamespaceNotFound       = 26
	codeIndexNotFound           = 27
	codeNamespaceExists         = 48
	codeCommandNotFound         = 59
	codeIndexOptionsConflict    = 85
	codeIndexKeySpecsConflict   = 86
	codeNotImplemented          = 238
	codeChangeStreamHistoryLost = 286
	codeUserWritesBlocked       = 371
	codeDuplicateKey            = 11000
	codeDuplicateKeyOnUpdate    = 11001 // legacy servers' duplicate key on update
	codeDuplicateKeyCapped      = 12582 // duplicate key in a capped collection (SERVER-7164)
	codeCursorNotFound          = 43
)

// retryableCodes are the codes after which a read may be retried, as the
// drivers' retryable reads specification lists them (the server labels
// retryable writes, not reads): HostUnreachable, HostNotFound,
// NetworkTimeout, ShutdownInProgress, PrimarySteppedDown, ExceededTimeLimit,
// SocketException, NotWritablePrimary, InterruptedAtShutdown,
// InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk,
// NotPrimaryOrSecondary, ReadConcernMajorityNotAvailableYet.
var retryableCodes = []int{6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 134}

// hasCode reports whether err, or an error it wraps, is a server reply (a
// command error, a write error, a write or bulk write exception) carrying
// one of codes; a bulk write exception carries the codes of all its write
// errors and of its write concern error.
func hasCode(err error, codes ...int) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.HasErrorCode(c) {
			return true
		}
	}
	return false
}

// hasLabel reports whether err is a server reply labelled with one of labels.
func hasLabel(err error, labels ...string) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	for _, l := range labels {
		if se.HasErrorLabel(l) {
			return true
		}
	}
	return false
}

// IsDuplicateKey reports a duplicate key error (DuplicateKey and its legacy
// variants). It takes a single mongo.WriteError or mongo.BulkWriteError too,
// so that a bulk write's per-write errors are classified the same way. Unlike
// the driver's mongo.IsDuplicateKeyError it does not look for "E11000" in the
// message of code 16460, which only mongos before 2.6 returned (SERVER-11493).
func IsDuplicateKey(err error) bool {
	return hasCode(err, codeDuplicateKey, codeDuplicateKeyOnUpdate, codeDuplicateKeyCapped)
}

// IsNamespaceNotFound reports NamespaceNotFound: the database or collection
// does not exist (listIndexes, renameCollection, dropIndexes, and drop on
// servers before 7.0).
func IsNamespaceNotFound(err error) bool { return hasCode(err, codeNamespaceNotFound) }

// IsNamespaceExists reports NamespaceExists: create of a collection that
// exists already.
func IsNamespaceExists(err error) bool { return hasCode(err, codeNamespaceExists) }

// IsIndexNotFound reports IndexNotFound: dropIndexes of an index that does
// not exist.
func IsIndexNotFound(err error) bool { return hasCode(err, codeIndexNotFound) }

// IsIndexConflict reports that createIndexes met an existing index of the
// same name with other options or keys (IndexOptionsConflict,
// IndexKeySpecsConflict).
func IsIndexConflict(err error) bool {
	return hasCode(err, codeIndexOptionsConflict, codeIndexKeySpecsConflict)
}

// IsCommandNotFound reports CommandNotFound: the server does not know the
// command (an older or a MongoDB-compatible server).
func IsCommandNotFound(err error) bool { return hasCode(err, codeCommandNotFound) }

// IsNotSupported reports that the server refused an operation it does not
// allow here or does not implement (IllegalOperation, NotImplemented).
func IsNotSupported(err error) bool { return hasCode(err, codeIllegalOperation, codeNotImplemented) }

// IsUserWritesBlocked reports UserWritesBlocked: the cluster blocks user
// writes (setUserWriteBlockMode, as mongosync's enableUserWriteBlocking sets
// it) and the client's user lacks the bypassWriteBlockingMode privilege.
func IsUserWritesBlocked(err error) bool { return hasCode(err, codeUserWritesBlocked) }

// IsUnauthorized reports Unauthorized: the user lacks a privilege the
// command needs.
func IsUnauthorized(err error) bool { return hasCode(err, codeUnauthorized) }

// IsAuthError reports an authentication or authorization failure
// (AuthenticationFailed, Unauthorized).
func IsAuthError(err error) bool {
	// A failed authentication handshake comes as an auth.Error inside a connection error.
	var ae *auth.Error
	return errors.As(err, &ae) || hasCode(err, codeUnauthorized, codeAuthenticationFailed)
}

// IsHistoryLost reports that a change stream's resume point is no longer in
// the oplog (ChangeStreamHistoryLost).
func IsHistoryLost(err error) bool { return hasCode(err, codeChangeStreamHistoryLost) }

// IsTransient reports whether err is worth retrying: network errors, timeouts
// and errors the server labels retryable. A cancelled context never is.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	return hasLabel(err, "RetryableWriteError", "RetryableReadError", "TransientTransactionError", "ResumableChangeStreamError", "NetworkError") ||
		hasCode(err, retryableCodes...)
}

// IsCursorNotFound reports CursorNotFound: the server no longer has the
// cursor (killed, timed out, or lost with a failover). A reader that knows
// where it was starts a new cursor from there.
func IsCursorNotFound(err error) bool { return hasCode(err, codeCursorNotFound) }
