package schema

import (
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// benchEvent is a typical change event: an insert of a document of about
// size bytes (mixed field types plus a string pad).
func benchEvent(b *testing.B, size int) *Event {
	b.Helper()
	build := func(pad int) []byte {
		return doc(b, func(d []byte) []byte {
			d = bsoncore.AppendObjectIDElement(d, "_id", oid(9))
			d = bsoncore.AppendStringElement(d, "customer", "c-0001234")
			d = bsoncore.AppendInt64Element(d, "total", 129900)
			d = bsoncore.AppendDateTimeElement(d, "createdAt", 1700000000123)
			d = bsoncore.AppendBooleanElement(d, "paid", true)
			d = bsoncore.AppendDocumentElement(d, "address", doc(b, func(a []byte) []byte {
				a = bsoncore.AppendStringElement(a, "city", "Lisbon")
				return bsoncore.AppendStringElement(a, "zip", "1100-001")
			}))
			return bsoncore.AppendStringElement(d, "notes", strings.Repeat("x", pad))
		})
	}
	full := build(0)
	full = build(size - len(full))
	if len(full) != size {
		b.Fatalf("bench doc: %d bytes, want %d", len(full), size)
	}
	return &Event{
		Op: OpInsert, NS: Namespace{DB: "shop", Coll: "orders"},
		DocumentKey:  doc(b, func(d []byte) []byte { return bsoncore.AppendObjectIDElement(d, "_id", oid(9)) }),
		FullDocument: full, ClusterTime: ClusterTime{T: 1700000000, I: 12}, WallTimeMillis: 1700000000123,
		ResumeToken: doc(b, func(d []byte) []byte {
			return bsoncore.AppendStringElement(d, "_data", "8265A0B1C2000000012B0429296E1404645F6964006465A0B1C2D3E4F5A6B7C8D90004")
		}),
		Epoch: 1, Source: "east",
	}
}

var benchSizes = []int{1 << 10, 16 << 10}

func BenchmarkEncode(b *testing.B) {
	serdes, _ := newSerdes(b)
	for _, size := range benchSizes {
		ev := benchEvent(b, size)
		for _, enc := range allEncodings {
			s := serdes[enc]
			if _, err := s.EncodeValue("bench", ev); err != nil { // registers the Confluent subject
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, enc), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := s.EncodeValue("bench", ev); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%dKiB/%s/append", size>>10, enc), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				buf := make([]byte, 0, 4*size)
				for b.Loop() {
					var err error
					if buf, err = s.AppendValue(buf[:0], "bench", ev); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	serdes, _ := newSerdes(b)
	for _, size := range benchSizes {
		ev := benchEvent(b, size)
		for _, enc := range allEncodings {
			s := serdes[enc]
			val, err := s.EncodeValue("bench", ev)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, enc), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := s.DecodeValue(enc, val); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGoavro measures goavro's map-based path on the same event, the
// alternative the hand-written codec replaces.
func BenchmarkGoavro(b *testing.B) {
	ev := benchEvent(b, 1<<10)
	bin, err := current.codec.BinaryFromNative(nil, eventNative(ev))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("1KiB/encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(1 << 10)
		for b.Loop() {
			if _, err := current.codec.BinaryFromNative(nil, eventNative(ev)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1KiB/decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(1 << 10)
		for b.Loop() {
			if _, _, err := current.codec.NativeFromBinary(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
}
