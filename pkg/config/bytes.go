package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Bytes is a flag value of a size in bytes, written as a number with an
// optional unit: 1048576, 512KiB, 8MiB, 1GiB (K, M, G are the same powers
// of 1024: sizes of buffers, not of disks).
type Bytes int64

var byteUnits = map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}

func (b *Bytes) String() string {
	switch n := int64(*b); {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10)
	}
}

// Set parses a size.
func (b *Bytes) Set(s string) error {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, func(c rune) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' })
	mult, ok := byteUnits[strings.ToLower(s[len(num):])]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || !ok || n < 0 {
		return fmt.Errorf("%q is not a size: write a number of bytes with an optional unit, e.g. 8MiB, 512KiB or 1048576", s)
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("%q is too large", s)
	}
	*b = Bytes(n * mult)
	return nil
}
