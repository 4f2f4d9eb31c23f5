// Package mongox holds the MongoDB helpers both connectors share: connecting
// with clear errors, checking that a source can serve change streams, and the
// transient-error classifier (driver error codes and labels, never strings).
// It is not named "mongo" so that it never shadows the driver's package.
package mongox
