package apply

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrBadEvent: the event cannot be applied as it is (unknown op, missing
	// document key or document, malformed update description). Such a record
	// is a dead letter.
	ErrBadEvent = errors.New("event cannot be applied")
	// ErrRejected: the destination refused the write for this document
	// (document validation failure, document too large, …). A dead letter.
	ErrRejected = errors.New("destination rejected the write")
	// ErrUndecodable: the record value could not be decoded into an event.
	ErrUndecodable = errors.New("record cannot be decoded")
)

// Failure is one event the destination would not take.
type Failure struct {
	Ref Ref
	Err error
}
