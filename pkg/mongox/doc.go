// Package mongox holds the MongoDB helpers both connectors share: connecting
// with clear errors, checking that a source can serve change streams, the
// transient-error classifier (driver error codes and labels, never strings),
// and the redactor every printed URI goes through (redact.go: Redact for one
// URI, Redactor for free text, errors and slog handlers).
// It is not named "mongo" so that it never shadows the driver's package.
package mongox
