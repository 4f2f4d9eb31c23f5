package schema

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The Debezium encoding writes documents the way Debezium's MongoDB connector
// does: with the MongoDB Java driver's JsonWriter, in JsonMode.STRICT (the
// legacy "strict" Extended JSON: {"$date": 1700000000000}, {"$binary": "...",
// "$type": "00"}, int32 as a bare number, doubles as Java's Double.toString)
// with indent on and empty indent and newline strings, which gives
// {"_id": {"$oid": "..."},"a": 1}. The key's id is the _id value in
// JsonMode.RELAXED. Consumers parse both with BsonDocument.parse (the
// MongoDB Kafka Connector's Debezium handler, Debezium's
// ExtractNewDocumentState), so this is what they expect byte for byte.
//
// javaMode selects the JsonWriter output mode.
type javaMode int

const (
	javaStrict javaMode = iota
	javaRelaxed
)

// appendJavaDoc appends doc (a valid BSON document) as the Java driver's
// JsonWriter writes it.
func appendJavaDoc(dst []byte, doc []byte, mode javaMode) []byte {
	dst = append(dst, '{')
	rest := doc[4 : len(doc)-1]
	first := true
	for len(rest) > 0 {
		e, r, ok := bsoncore.ReadElement(rest)
		if !ok {
			break
		}
		rest = r
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJavaString(dst, e.Key())
		dst = append(dst, ": "...)
		dst = appendJavaValue(dst, e.Value(), mode)
	}
	return append(dst, '}')
}

func appendJavaArray(dst []byte, arr []byte, mode javaMode) []byte {
	dst = append(dst, '[')
	rest := arr[4 : len(arr)-1]
	first := true
	for len(rest) > 0 {
		e, r, ok := bsoncore.ReadElement(rest)
		if !ok {
			break
		}
		rest = r
		if !first {
			dst = append(dst, ", "...)
		}
		first = false
		dst = appendJavaValue(dst, e.Value(), mode)
	}
	return append(dst, ']')
}

// appendJavaValue appends one value. Values are validated BSON (the Serde
// validated the documents), so the *OK accessors cannot fail.
func appendJavaValue(dst []byte, v bsoncore.Value, mode javaMode) []byte {
	switch v.Type {
	case bsoncore.TypeDouble:
		f := v.Double()
		if mode == javaRelaxed && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return append(append(dst, `{"$numberDouble": `...), strconv.Quote(javaDouble(f))+"}"...)
		}
		return append(dst, javaDouble(f)...)
	case bsoncore.TypeString:
		return appendJavaString(dst, v.StringValue())
	case bsoncore.TypeEmbeddedDocument:
		return appendJavaDoc(dst, v.Data, mode)
	case bsoncore.TypeArray:
		return appendJavaArray(dst, v.Data, mode)
	case bsoncore.TypeBinary:
		st, data := v.Binary()
		b64 := base64.StdEncoding.EncodeToString(data)
		if mode == javaStrict {
			return fmt.Appendf(dst, `{"$binary": "%s","$type": "%02X"}`, b64, st)
		}
		return fmt.Appendf(dst, `{"$binary": {"base64": "%s","subType": "%02X"}}`, b64, st)
	case bsoncore.TypeUndefined:
		return append(dst, `{"$undefined": true}`...)
	case bsoncore.TypeObjectID:
		id := v.ObjectID()
		return append(append(append(dst, `{"$oid": "`...), hex.EncodeToString(id[:])...), `"}`...)
	case bsoncore.TypeBoolean:
		return strconv.AppendBool(dst, v.Boolean())
	case bsoncore.TypeDateTime:
		ms := v.DateTime()
		switch {
		case mode == javaStrict:
			return fmt.Appendf(dst, `{"$date": %d}`, ms)
		case ms >= 0 && ms <= 253402300799999:
			return fmt.Appendf(dst, `{"$date": "%s"}`, javaISOInstant(ms))
		default:
			return fmt.Appendf(dst, `{"$date": {"$numberLong": "%d"}}`, ms)
		}
	case bsoncore.TypeNull:
		return append(dst, "null"...)
	case bsoncore.TypeRegex:
		p, o := v.Regex()
		if mode == javaStrict {
			dst = appendJavaString(append(dst, `{"$regex": `...), p)
			return append(appendJavaString(append(dst, `,"$options": `...), o), '}')
		}
		dst = appendJavaString(append(dst, `{"$regularExpression": {"pattern": `...), p)
		return append(appendJavaString(append(dst, `,"options": `...), o), "}}"...)
	case bsoncore.TypeDBPointer:
		ns, id := v.DBPointer()
		if mode == javaStrict {
			dst = appendJavaString(append(dst, `{"$ref": `...), ns)
			return append(append(append(dst, `,"$id": {"$oid": "`...), hex.EncodeToString(id[:])...), `"}}`...)
		}
		dst = appendJavaString(append(dst, `{"$dbPointer": {"$ref": `...), ns)
		return append(append(append(dst, `,"$id": {"$oid": "`...), hex.EncodeToString(id[:])...), `"}}}`...)
	case bsoncore.TypeJavaScript:
		return append(appendJavaString(append(dst, `{"$code": `...), v.JavaScript()), '}')
	case bsoncore.TypeSymbol:
		return append(appendJavaString(append(dst, `{"$symbol": `...), v.Symbol()), '}')
	case bsoncore.TypeCodeWithScope:
		code, scope := v.CodeWithScope()
		dst = appendJavaString(append(dst, `{"$code": `...), code)
		return append(appendJavaDoc(append(dst, `,"$scope": `...), scope, mode), '}')
	case bsoncore.TypeInt32:
		return strconv.AppendInt(dst, int64(v.Int32()), 10)
	case bsoncore.TypeTimestamp:
		t, i := v.Timestamp()
		return fmt.Appendf(dst, `{"$timestamp": {"t": %d,"i": %d}}`, t, i)
	case bsoncore.TypeInt64:
		if mode == javaRelaxed {
			return strconv.AppendInt(dst, v.Int64(), 10)
		}
		return fmt.Appendf(dst, `{"$numberLong": "%d"}`, v.Int64())
	case bsoncore.TypeDecimal128:
		h, l := v.Decimal128()
		return fmt.Appendf(dst, `{"$numberDecimal": "%s"}`, bson.NewDecimal128(h, l).String())
	case bsoncore.TypeMinKey:
		return append(dst, `{"$minKey": 1}`...)
	case bsoncore.TypeMaxKey:
		return append(dst, `{"$maxKey": 1}`...)
	}
	return append(dst, "null"...)
}

// javaDouble formats f as Java's Double.toString: the shortest digits that
// identify f, in plain notation for 1e-3 <= |f| < 1e7 (always with a
// fraction: "1.0") and as d.dddE±n otherwise ("1.0E7", "1.5E-5").
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1.5e-05, 1e+07
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	n, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(n)
}

// javaISOInstant formats ms as java.time.Instant.toString (ISO-8601 UTC,
// fraction only when non-zero, in groups of three digits).
func javaISOInstant(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000Z")
}

// appendJavaString appends s quoted as the Java driver's JsonWriter does:
// ", \ and the usual control escapes; letters, digits, punctuation, symbols
// and spaces as they are; every other UTF-16 unit (control and format
// characters, combining marks, modifier letters, characters outside the
// BMP as surrogate pairs) as \uXXXX.
func appendJavaString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch r {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			switch {
			case r == utf8.RuneError:
				dst = fmt.Appendf(dst, `\u%04x`, r)
			case r > 0xFFFF:
				hi, lo := utf16.EncodeRune(r)
				dst = fmt.Appendf(dst, `\u%04x\u%04x`, hi, lo)
			case javaPlain(r):
				dst = utf8.AppendRune(dst, r)
			default:
				dst = fmt.Appendf(dst, `\u%04x`, r)
			}
		}
	}
	return append(dst, '"')
}

// javaPlain reports the character types the Java JsonWriter writes unescaped.
func javaPlain(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lo, unicode.Nd, unicode.Nl, unicode.No,
		unicode.Zs, unicode.Pc, unicode.Pd, unicode.Ps, unicode.Pe, unicode.Pi, unicode.Pf, unicode.Po,
		unicode.Sm, unicode.Sc, unicode.Sk, unicode.So)
}
