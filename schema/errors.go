package schema

import (
	"errors"
	"fmt"
)

// Errors returned by the codec, always wrapped with context (fmt.Errorf
// "%w"); test with errors.Is. A record whose value fails to decode with
// ErrBadHeader, ErrUnknownSchema, ErrTruncated, ErrMalformed or
// ErrUnknownEncoding will fail the same way on every retry: send it to the
// dead-letter topic. ErrRegistryUnavailable is transient: retry.
var (
	// ErrBadHeader: the record is not framed as its encoding requires: a
	// missing or repeated logbridge-encoding record header, or a value that
	// does not start with the encoding's magic bytes.
	ErrBadHeader = errors.New("schema: bad header")

	// ErrBadMagic: the value does not start with the magic byte(s) of the
	// encoding named by the record header (0x00 for Confluent, 0xC3 0x01 for
	// Avro single-object, '{' for JSON). It matches ErrBadHeader too.
	ErrBadMagic = fmt.Errorf("%w: wrong magic byte", ErrBadHeader)

	// ErrUnknownSchema: the schema id (Confluent) or fingerprint
	// (single-object) names no schema this process knows or can fetch, or a
	// schema that cannot be resolved to the current envelope (not Avro, not
	// an envelope version, incompatible).
	ErrUnknownSchema = errors.New("schema: unknown schema")

	// ErrTruncated: the value ends inside the envelope.
	ErrTruncated = errors.New("schema: truncated value")

	// ErrMalformed: the value is not a valid envelope (bad varint, index out
	// of range, a BSON payload that is not a BSON document, trailing bytes,
	// invalid JSON, ...).
	ErrMalformed = errors.New("schema: malformed value")

	// ErrUnknownEncoding: an Encoding this build does not know (not in
	// Encodings).
	ErrUnknownEncoding = errors.New("schema: unknown encoding")

	// ErrLossyEncoding: the record is in an encoding written for other
	// consumers that does not carry everything a sync needs
	// (EncodingDebezium; Encoding.Loses says what). Not a problem of one
	// record: every record of the topic fails alike, so a sink stops
	// instead of applying a lossy copy or dead-lettering the whole log.
	ErrLossyEncoding = errors.New("schema: lossy encoding, not applicable")

	// ErrInvalidEvent: EncodeValue was given an Event that cannot be written
	// (unknown op, data event without document key, DDL event without DDL
	// payload, BSON field that is not a BSON document, ...). A bug in the
	// producer, never caused by data on the wire.
	ErrInvalidEvent = errors.New("schema: invalid event")

	// ErrRegistryUnavailable: the schema registry could not be reached or
	// answered with a server error. Transient: retry later.
	ErrRegistryUnavailable = errors.New("schema: schema registry unavailable")

	// ErrRegistryAccess: the settings do not let this process use the
	// schema registry: it refused the credentials (HTTP 401), did not permit
	// the request (HTTP 403), or its TLS certificate is not trusted. Not
	// transient and not a problem of a record: every record would fail the
	// same way until the settings (RegistryConfig) or the registry's grants
	// are fixed, so stop rather than retry or dead-letter.
	ErrRegistryAccess = errors.New("schema: schema registry access denied")
)
