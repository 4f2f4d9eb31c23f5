package avroresolve

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Errors of the binary reader. Callers map them to their own sentinels.
var (
	// ErrTruncated: the input ended inside a datum.
	ErrTruncated = errors.New("avro: truncated input")
	// ErrMalformed: the input is not a valid encoding of the writer schema.
	ErrMalformed = errors.New("avro: malformed input")
)

// AppendLong appends the Avro (zigzag varint) encoding of v; int uses the
// same encoding.
func AppendLong(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

// ReadLong decodes an Avro long from the front of b and returns it with the
// number of bytes read.
func ReadLong(b []byte) (int64, int, error) {
	u, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, ErrTruncated
	case n < 0:
		return 0, 0, fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed)
	}
	return int64(u>>1) ^ -int64(u&1), n, nil
}

// ReadInt decodes an Avro int.
func ReadInt(b []byte) (int32, int, error) {
	v, n, err := ReadLong(b)
	if err != nil {
		return 0, 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, 0, fmt.Errorf("%w: int out of range: %d", ErrMalformed, v)
	}
	return int32(v), n, nil
}

// ReadBytes decodes Avro bytes or string and returns a sub-slice of b (no
// copy) and the number of bytes read.
func ReadBytes(b []byte) ([]byte, int, error) {
	l, n, err := ReadLong(b)
	if err != nil {
		return nil, 0, err
	}
	if l < 0 {
		return nil, 0, fmt.Errorf("%w: negative length %d", ErrMalformed, l)
	}
	if l > int64(len(b)-n) {
		return nil, 0, ErrTruncated
	}
	end := n + int(l)
	return b[n:end:end], end, nil
}

// AppendBytes appends Avro bytes (or string).
func AppendBytes(b, v []byte) []byte {
	return append(AppendLong(b, int64(len(v))), v...)
}

// AppendString appends an Avro string.
func AppendString(b []byte, v string) []byte {
	return append(AppendLong(b, int64(len(v))), v...)
}
