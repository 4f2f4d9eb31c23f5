// Package mongox holds the MongoDB helpers both connectors share: connecting
// with clear errors, checking that a source can serve change streams, taking
// a cluster time, the redactor every printed URI goes through (redact.go:
// Redact for one URI, Redactor for free text, errors and slog handlers), and
// the project's one vocabulary of server errors
// (errors.go): IsTransient, IsDuplicateKey, IsNamespaceNotFound,
// IsUserWritesBlocked and the other predicates, each built on the driver's
// mongo.ServerError (HasErrorCode, HasErrorLabel) through errors.As, never on
// error text. Code elsewhere asks these predicates instead of comparing
// codes:
//
//	if mongox.IsNamespaceNotFound(err) { // no collection, so no indexes
//		return nil
//	}
//
// It is not named "mongo" so that it never shadows the driver's package.
package mongox
