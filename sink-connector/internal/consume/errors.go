package consume

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrPoison: a record cannot be applied and the error tolerance is
	// "none": the sink stops without committing past the record.
	ErrPoison = errors.New("record cannot be applied")
	// ErrBarrierMismatch: partitions of one topic reached different
	// barriers; the log does not hold DDL and markers in the same order in
	// every partition, which the source guarantees.
	ErrBarrierMismatch = errors.New("partitions disagree on the next barrier")
)
