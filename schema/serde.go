package schema

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/singleflight"

	"github.com/logbridge/logbridge/schema/internal/avroresolve"
)

// Encoding names a record value encoding. It is written in the
// HeaderEncoding record header of every record.
type Encoding string

// The value encodings.
const (
	// EncodingConfluent is the Confluent wire format: 0x00, the 4-byte
	// big-endian schema registry id of the envelope schema, the Avro binary
	// envelope. Needs a schema registry.
	EncodingConfluent Encoding = "confluent"
	// EncodingSingleObject is Avro single-object encoding: 0xC3 0x01, the
	// 8-byte little-endian CRC-64-AVRO fingerprint of the envelope schema's
	// canonical form, the Avro binary envelope.
	EncodingSingleObject Encoding = "avro-single-object"
	// EncodingJSON is the canonical Extended JSON envelope (see json.go).
	EncodingJSON Encoding = "json"
	// EncodingConnectJSON is the envelope as Kafka Connect's JsonConverter
	// writes it with schemas enabled, documents as canonical Extended JSON
	// strings (see connectjson.go). Lossless like EncodingJSON.
	EncodingConnectJSON Encoding = "connect-json"
	// EncodingDebezium is Debezium's MongoDB change event through Kafka
	// Connect's JsonConverter (see debezium.go). For consumers only: it
	// loses what a sync needs (see Loses), so DecodeValue refuses it with
	// ErrLossyEncoding.
	EncodingDebezium Encoding = "debezium"
)

// Encodings lists every encoding a source can write, for flag help and
// validation.
var Encodings = []Encoding{EncodingSingleObject, EncodingConfluent, EncodingJSON, EncodingConnectJSON, EncodingDebezium}

// Loses says what an encoding cannot carry, "" for the lossless encodings.
// The source logs it at start-up; the sink refuses to apply such an
// encoding (ErrLossyEncoding) rather than write a lossy copy.
func (e Encoding) Loses() string {
	if e == EncodingDebezium {
		return "DDL events and control markers (not written), the sync epoch, resume tokens, transaction boundaries, " +
			"shard key fields of the document key (the key holds _id only), and BSON values legacy strict Extended JSON " +
			"cannot reproduce: DBPointer (written as a {$ref, $id} document), NaN payload bits, invalid UTF-8, " +
			"sub-documents whose first key is an Extended JSON keyword"
	}
	return ""
}

// known reports whether e is one of Encodings.
func (e Encoding) known() bool {
	for _, k := range Encodings {
		if e == k {
			return true
		}
	}
	return false
}

// HeaderEncoding is the record header naming the value encoding of a record
// (its value is the Encoding string).
const HeaderEncoding = "logbridge-encoding"

// SerdeConfig configures a Serde.
type SerdeConfig struct {
	// Encoding written by EncodeValue. Empty means EncodingConfluent when
	// Registry.URL is set, else EncodingSingleObject.
	Encoding Encoding
	// Registry is the Confluent-compatible schema registry (Confluent,
	// Karapace, Redpanda, Apicurio's ccompat endpoint such as
	// https://host:8080/apis/ccompat/v7) and how to authenticate to it.
	// Required for EncodingConfluent; with another encoding it lets
	// DecodeValue read Confluent-framed values.
	Registry RegistryConfig
	// ConfluentKeys (EncodingConfluent only) frames record keys in the
	// Confluent wire format too (0x00, the key schema id, the raw BSON key:
	// a value of schema "bytes" as Confluent's serializers write it, without
	// an Avro length prefix) and registers KeySubjectSchema under
	// "<topic>-key", so that
	// registry-aware consumers decode keys as well as values. Partitioning
	// still hashes the raw BSON key (WireKey). Off by default: existing
	// topics keep one key format, and byte-array key readers keep working.
	ConfluentKeys bool
}

// KeySubjectSchema is the key schema registered under "<topic>-key" with
// SerdeConfig.ConfluentKeys: "bytes", the raw BSON document key (or control
// key) after the Confluent header.
const KeySubjectSchema = `{"type":"bytes","doc":"logbridge record key: the raw BSON bytes of the document key ({_id[, shard key fields]}) or of a control key ({$logbridge: ...}) for DDL, marker and heartbeat records"}`

// registryTimeout bounds registry calls made without a caller context (lazy
// registration in EncodeValue, schema lookups in DecodeValue).
const registryTimeout = 30 * time.Second

// negativeTTL is how long a schema id that the registry does not know, or
// that cannot be resolved, is remembered as bad.
const negativeTTL = 30 * time.Second

// maxBadIDs bounds the negative cache.
const maxBadIDs = 4096

// Serde encodes Events into record keys and values and decodes values of
// every encoding. It is safe for concurrent use.
type Serde struct {
	enc    Encoding
	reg    *sr.Client     // nil without a registry URL
	regCfg RegistryConfig // for error messages that name the setting to fix

	soHeader [10]byte
	byFP     map[uint64]*writer // single-object: fingerprint → writer; immutable after NewSerde

	mu      sync.RWMutex
	headers map[string][]byte // Confluent: topic → 5-byte header
	byID    map[int]*writer   // Confluent: schema id → writer
	badID   map[int]badSchema // Confluent: negative cache

	flight singleflight.Group // registry calls

	// now is the clock of the Debezium ts_ms field (tests fix it).
	now func() time.Time

	confluentKeys bool
	keyHeaders    map[string][]byte // ConfluentKeys: topic → 5-byte key header
}

// writer is a known writer schema; res is nil when it is the current schema.
type writer struct {
	res *avroresolve.Resolver
}

type badSchema struct {
	err     error
	expires time.Time
}

// NewSerde returns a Serde. With a registry URL it checks that the registry
// answers (GET /config) and accepts the credentials; schemas are registered per topic by Register or
// lazily by the first EncodeValue for a topic.
func NewSerde(ctx context.Context, cfg SerdeConfig) (*Serde, error) {
	enc := cfg.Encoding
	if enc == "" {
		enc = EncodingSingleObject
		if cfg.Registry.URL != "" {
			enc = EncodingConfluent
		}
	}
	if !enc.known() {
		return nil, fmt.Errorf("%w: %q (want one of %v)", ErrUnknownEncoding, enc, Encodings)
	}
	if enc == EncodingConfluent && cfg.Registry.URL == "" {
		return nil, fmt.Errorf("encoding %q needs a schema registry: give --%s", enc, flagRegistryURL)
	}
	if cfg.ConfluentKeys && enc != EncodingConfluent {
		return nil, fmt.Errorf("confluent-framed keys (--confluent-keys) need encoding %q, not %q", EncodingConfluent, enc)
	}
	s := &Serde{
		enc:     enc,
		headers: map[string][]byte{},
		byID:    map[int]*writer{},
		badID:   map[int]badSchema{},
		byFP:    map[uint64]*writer{current.codec.Rabin: {}},
		now:     time.Now,

		confluentKeys: cfg.ConfluentKeys,
		keyHeaders:    map[string][]byte{},
	}
	s.soHeader[0], s.soHeader[1] = 0xC3, 0x01
	binary.LittleEndian.PutUint64(s.soHeader[2:], current.codec.Rabin)

	versions, err := released()
	if err != nil {
		return nil, fmt.Errorf("reading released schemas: %w", err)
	}
	for _, v := range versions {
		c, err := compile(v.version, v.value)
		if err != nil {
			return nil, err
		}
		if _, ok := s.byFP[c.codec.Rabin]; ok {
			continue
		}
		res, err := avroresolve.NewResolver(current.typ, c.typ)
		if err != nil {
			return nil, fmt.Errorf("released schema %s cannot be read by the current schema: %w", v.version, err)
		}
		s.byFP[c.codec.Rabin] = &writer{res: res}
	}

	if cfg.Registry.URL != "" {
		s.regCfg = cfg.Registry
		opts, err := cfg.Registry.ClientOpts()
		if err != nil {
			return nil, err
		}
		if s.reg, err = sr.NewClient(opts...); err != nil {
			return nil, fmt.Errorf("schema registry client for %s: %w", cfg.Registry.URL, err)
		}
		// An authenticated request, so that wrong credentials or an untrusted
		// certificate stop the process at startup, not at the first record.
		res := s.reg.Compatibility(ctx)
		if err := res[0].Err; err != nil {
			return nil, fmt.Errorf("checking schema registry %s: %w", cfg.Registry.URL, s.registryErr(err))
		}
	}
	return s, nil
}

// Encoding returns the encoding EncodeValue writes.
func (s *Serde) Encoding() Encoding { return s.enc }

// RecordHeader is a Kafka record header. It is an alias of an unnamed struct
// type with the fields of franz-go's kgo.RecordHeader, so that Header's value
// is assignable to a kgo.RecordHeader and EncodingOf takes a []kgo.RecordHeader
// as it is, while the record contract imports no Kafka client.
type RecordHeader = struct {
	Key   string
	Value []byte
}

// Header returns the HeaderEncoding record header for the values this Serde
// writes; add it to every record.
func (s *Serde) Header() RecordHeader {
	return RecordHeader{Key: HeaderEncoding, Value: []byte(s.enc)}
}

// EncodeValue returns the encoded record value of ev for topic. The topic
// matters only for EncodingConfluent (subject "<topic>-value"); the first
// value for a topic registers the schema (up to 30s) unless Register was
// called. Errors wrap ErrInvalidEvent, ErrRegistryUnavailable or a registry
// error.
func (s *Serde) EncodeValue(topic string, ev *Event) ([]byte, error) {
	if ev == nil {
		return nil, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	out, err := s.AppendValue(make([]byte, 0, sizeHint(ev)+10), topic, ev)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendValue appends the encoded record value of ev to dst (see
// EncodeValue). On error it returns dst unchanged.
func (s *Serde) AppendValue(dst []byte, topic string, ev *Event) ([]byte, error) {
	if err := validateEvent(ev); err != nil {
		return dst, err
	}
	switch s.enc {
	case EncodingConfluent:
		hdr, err := s.header(topic)
		if err != nil {
			return dst, err
		}
		return appendAvro(append(dst, hdr...), ev), nil
	case EncodingSingleObject:
		return appendAvro(append(dst, s.soHeader[:]...), ev), nil
	case EncodingConnectJSON:
		return appendConnectJSON(dst, ev)
	case EncodingDebezium:
		return appendDebezium(dst, topic, ev, s.now())
	default:
		return appendJSON(dst, ev)
	}
}

// Carries reports whether the encoding writes events of op at all. The
// Debezium encoding has no DDL or marker events (Debezium's MongoDB format
// has none): a producer skips them (their state still advances) rather than
// put records into data topics that Debezium consumers cannot read.
func (s *Serde) Carries(op Op) bool {
	if s.enc == EncodingDebezium {
		return op == OpHeartbeat || debeziumOp(op) != ""
	}
	return true
}

// WireKey returns the record key as written on the wire for topic, given
// the raw record key (Key: the BSON document key or a control key). For the
// Avro and JSON encodings that is key itself; connect-json wraps it as a
// Connect struct of its canonical Extended JSON; debezium writes
// {"id": <_id in relaxed Extended JSON>} as Debezium does. Partitioning must
// always hash the raw key (PartitionKey), never the wire key, so that all
// events of one document share a partition whatever the encoding (see
// docs/decisions.md "Keys"). nil if key cannot be written in the encoding.
func (s *Serde) WireKey(topic string, key []byte) ([]byte, error) {
	switch s.enc {
	case EncodingConnectJSON:
		return connectJSONKey(key), nil
	case EncodingDebezium:
		if !isDoc(key) || IsControlKey(key) {
			return nil, nil
		}
		return debeziumKey(topic, &Event{Op: OpInsert, DocumentKey: key}), nil
	case EncodingConfluent:
		if !s.confluentKeys || key == nil {
			return key, nil
		}
		hdr, err := s.keyHeader(topic)
		if err != nil {
			return nil, err
		}
		// No Avro length prefix: Confluent's serializers (Java
		// KafkaAvroSerializer, confluent-kafka's AvroSerializer) write a
		// value of schema "bytes" as the bytes themselves after the header,
		// and their deserializers read it so.
		out := make([]byte, 0, len(hdr)+len(key))
		return append(append(out, hdr...), key...), nil
	}
	return key, nil
}

// RawKeys reports whether WireKey returns the raw key unchanged, so
// producers can skip it: every encoding but connect-json, debezium and
// confluent with ConfluentKeys.
func (s *Serde) RawKeys() bool { return !isConnectEncoding(s.enc) && !s.confluentKeys }

// DecodeConfluentKey returns the raw BSON key of a Confluent-framed record
// key (SerdeConfig.ConfluentKeys): the bytes after the 5-byte header (the
// schema id is not looked up: the key schema is always KeySubjectSchema).
// Errors wrap ErrBadMagic, ErrTruncated or ErrMalformed.
func DecodeConfluentKey(key []byte) (bson.Raw, error) {
	if len(key) < 5 {
		return nil, fmt.Errorf("decoding Confluent key: %w: %d bytes", ErrTruncated, len(key))
	}
	if key[0] != 0 {
		return nil, fmt.Errorf("decoding Confluent key: %w: got %#02x, want 0x00", ErrBadMagic, key[0])
	}
	raw := bson.Raw(key[5:])
	if !isDoc(raw) {
		return nil, fmt.Errorf("decoding Confluent key: %w: not a BSON document", ErrMalformed)
	}
	return raw, nil
}

// keyHeader returns the Confluent header of topic's keys, registering the
// key schema the first time.
func (s *Serde) keyHeader(topic string) ([]byte, error) { return s.registered(s.keyHeaders, topic) }

// HeartbeatKey is the record key of a heartbeat record in heartbeat topic
// topic: Debezium's {"serverName": ev.Source} in the Debezium encoding, the
// heartbeat control key (as WireKey writes it) otherwise.
func (s *Serde) HeartbeatKey(topic string, ev *Event) ([]byte, error) {
	if s.enc == EncodingDebezium {
		return debeziumKey(topic, ev), nil
	}
	return s.WireKey(topic, recordKey(ev))
}

func (s *Serde) header(topic string) ([]byte, error) { return s.registered(s.headers, topic) }

// registered returns topic's entry of cache (headers or keyHeaders, both
// filled by Register), registering topic's subjects the first time.
func (s *Serde) registered(cache map[string][]byte, topic string) ([]byte, error) {
	s.mu.RLock()
	hdr, ok := cache[topic]
	s.mu.RUnlock()
	if ok {
		return hdr, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	if _, err := s.Register(ctx, topic); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cache[topic], nil
}

// Register registers the envelope schema under the subject "<topic>-value"
// (TopicNameStrategy), makes sure the subject's compatibility level is
// BACKWARD or stricter (setting BACKWARD otherwise), and returns the schema
// id. Registering a schema that is already registered returns its id. Call it
// at startup for the topics you know; EncodeValue calls it for a topic the
// first time it sees it.
func (s *Serde) Register(ctx context.Context, topic string) (int, error) {
	if s.reg == nil {
		return 0, errors.New("schema: no schema registry configured")
	}
	if topic == "" {
		return 0, errors.New("schema: registering for an empty topic name")
	}
	v, err, _ := s.flight.Do("register/"+topic, func() (any, error) {
		subject := topic + "-value"
		id, err := s.reg.RegisterSchema(ctx, subject, sr.Schema{Schema: ValueSchema, Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			return 0, fmt.Errorf("registering the envelope schema under subject %q: %w", subject, s.registryErr(err))
		}
		if err := s.ensureBackward(ctx, subject); err != nil {
			return 0, err
		}
		var keyHdr []byte
		if s.confluentKeys {
			keySubject := topic + "-key"
			kid, err := s.reg.RegisterSchema(ctx, keySubject, sr.Schema{Schema: KeySubjectSchema, Type: sr.TypeAvro}, -1, -1)
			if err != nil {
				return 0, fmt.Errorf("registering the key schema under subject %q: %w", keySubject, s.registryErr(err))
			}
			if err := s.ensureBackward(ctx, keySubject); err != nil {
				return 0, err
			}
			keyHdr = make([]byte, 5)
			binary.BigEndian.PutUint32(keyHdr[1:], uint32(kid))
		}
		hdr := make([]byte, 5)
		binary.BigEndian.PutUint32(hdr[1:], uint32(id))
		s.mu.Lock()
		s.headers[topic] = hdr
		s.byID[id] = &writer{}
		if keyHdr != nil {
			s.keyHeaders[topic] = keyHdr
		}
		s.mu.Unlock()
		return id, nil
	})
	if err != nil {
		return 0, err
	}
	return v.(int), nil
}

// ensureBackward sets the subject's compatibility to BACKWARD unless it
// already is BACKWARD, BACKWARD_TRANSITIVE, FULL or FULL_TRANSITIVE.
func (s *Serde) ensureBackward(ctx context.Context, subject string) error {
	res := s.reg.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)[0]
	if res.Err == nil {
		switch res.Level {
		case sr.CompatBackward, sr.CompatBackwardTransitive, sr.CompatFull, sr.CompatFullTransitive:
			return nil
		}
	}
	set := s.reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject)[0]
	if set.Err != nil {
		return fmt.Errorf("setting compatibility BACKWARD on subject %q (currently %v): %w", subject, res.Level, s.registryErr(set.Err))
	}
	return nil
}

// registryErr explains failures caused by the settings (ErrRegistryAccess, an
// untrusted certificate: see RegistryConfig.explain) and marks transport
// failures and server errors as ErrRegistryUnavailable.
func (s *Serde) registryErr(err error) error {
	if x := s.regCfg.explain(err); x != err {
		return x
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
}

// DecodeValue decodes a record value written in the given encoding (read it
// from the record header with EncodingOf). Avro values written with an older
// envelope version (a released single-object fingerprint, or any schema id
// the registry holds that resolves to the current envelope) are read through
// Avro schema resolution. BSON fields of the returned Event alias value for
// the Avro encodings. It never panics; errors wrap ErrBadMagic (and so
// ErrBadHeader), ErrUnknownSchema, ErrTruncated, ErrMalformed,
// ErrUnknownEncoding or, for transient registry failures,
// ErrRegistryUnavailable.
func (s *Serde) DecodeValue(encoding Encoding, value []byte) (*Event, error) {
	switch encoding {
	case EncodingConfluent:
		if len(value) > 0 && value[0] != 0 {
			return nil, fmt.Errorf("decoding %s value: %w: got %#02x, want 0x00", encoding, ErrBadMagic, value[0])
		}
		if len(value) < 5 {
			return nil, fmt.Errorf("decoding %s value: %w: %d-byte value, header needs 5", encoding, ErrTruncated, len(value))
		}
		id := int(binary.BigEndian.Uint32(value[1:5]))
		w, err := s.writerByID(id)
		if err != nil {
			return nil, fmt.Errorf("decoding %s value: %w", encoding, err)
		}
		return decodeWith(w, value[5:], encoding)
	case EncodingSingleObject:
		if len(value) > 0 && value[0] != 0xC3 || len(value) > 1 && value[1] != 0x01 {
			return nil, fmt.Errorf("decoding %s value: %w: want 0xC3 0x01", encoding, ErrBadMagic)
		}
		if len(value) < 10 {
			return nil, fmt.Errorf("decoding %s value: %w: %d-byte value, header needs 10", encoding, ErrTruncated, len(value))
		}
		fp := binary.LittleEndian.Uint64(value[2:10])
		w, ok := s.byFP[fp] // immutable after NewSerde
		if !ok {
			return nil, fmt.Errorf("decoding %s value: %w: fingerprint %#016x is no envelope version this build knows", encoding, ErrUnknownSchema, fp)
		}
		return decodeWith(w, value[10:], encoding)
	case EncodingDebezium:
		return nil, fmt.Errorf("decoding %s value: %w: it loses %s; re-run the source with a lossless --encoding (%s, %s, %s or %s) to sync from it",
			encoding, ErrLossyEncoding, encoding.Loses(), EncodingSingleObject, EncodingConfluent, EncodingJSON, EncodingConnectJSON)
	case EncodingConnectJSON:
		if len(value) == 0 {
			return nil, fmt.Errorf("decoding %s value: %w", encoding, ErrTruncated)
		}
		if value[0] != '{' {
			return nil, fmt.Errorf("decoding %s value: %w: got %#02x, want '{'", encoding, ErrBadMagic, value[0])
		}
		ev, err := decodeConnectJSON(value)
		if err != nil {
			return nil, fmt.Errorf("decoding %s value: %w", encoding, err)
		}
		return checkDecoded(ev, encoding)
	case EncodingJSON:
		if len(value) == 0 {
			return nil, fmt.Errorf("decoding %s value: %w", encoding, ErrTruncated)
		}
		if value[0] != '{' {
			return nil, fmt.Errorf("decoding %s value: %w: got %#02x, want '{'", encoding, ErrBadMagic, value[0])
		}
		ev, err := decodeJSON(value)
		if err != nil {
			return nil, fmt.Errorf("decoding %s value: %w", encoding, err)
		}
		return checkDecoded(ev, encoding)
	}
	return nil, fmt.Errorf("decoding value: %w: %q", ErrUnknownEncoding, encoding)
}

func decodeWith(w *writer, body []byte, enc Encoding) (*Event, error) {
	if w.res != nil {
		out, err := w.res.Transcode(make([]byte, 0, len(body)+32), body)
		if err != nil {
			switch {
			case errors.Is(err, avroresolve.ErrTruncated):
				err = fmt.Errorf("%w: %v", ErrTruncated, err)
			default:
				err = fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			return nil, fmt.Errorf("decoding %s value written with an older schema: %w", enc, err)
		}
		body = out
	}
	ev, err := decodeAvro(body)
	if err != nil {
		return nil, fmt.Errorf("decoding %s value: %w", enc, err)
	}
	return checkDecoded(ev, enc)
}

// checkDecoded applies the rules EncodeValue enforces to a decoded event, so
// consumers can rely on them (a data event has a document key, a ddl event a
// DDL payload, ...).
func checkDecoded(ev *Event, enc Encoding) (*Event, error) {
	// The decoders already checked every BSON payload's framing.
	if err := checkShape(ev); err != nil {
		return nil, fmt.Errorf("decoding %s value: %w: %v", enc, ErrMalformed, err)
	}
	return ev, nil
}

// writerByID returns the writer schema for a Confluent schema id, fetching
// it from the registry the first time.
func (s *Serde) writerByID(id int) (*writer, error) {
	s.mu.RLock()
	w, ok := s.byID[id]
	bad, isBad := s.badID[id]
	s.mu.RUnlock()
	if ok {
		return w, nil
	}
	if isBad && time.Now().Before(bad.expires) {
		return nil, bad.err
	}
	if s.reg == nil {
		return nil, fmt.Errorf("%w: schema id %d: no schema registry configured", ErrUnknownSchema, id)
	}
	v, err, _ := s.flight.Do("id/"+strconv.Itoa(id), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
		defer cancel()
		sch, err := s.reg.SchemaByID(ctx, id)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
				return nil, s.rememberBad(id, fmt.Errorf("%w: schema id %d is not in the registry: %v", ErrUnknownSchema, id, err))
			}
			return nil, fmt.Errorf("fetching schema id %d: %w", id, s.registryErr(err))
		}
		w, err := writerFor(sch)
		if err != nil {
			return nil, s.rememberBad(id, fmt.Errorf("%w: schema id %d: %v", ErrUnknownSchema, id, err))
		}
		s.mu.Lock()
		s.byID[id] = w
		s.mu.Unlock()
		return w, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*writer), nil
}

func (s *Serde) rememberBad(id int, err error) error {
	s.mu.Lock()
	if len(s.badID) >= maxBadIDs { // bound memory under a stream of garbage ids
		clear(s.badID)
	}
	s.badID[id] = badSchema{err: err, expires: time.Now().Add(negativeTTL)}
	s.mu.Unlock()
	return err
}

// writerFor compiles a registry schema into a writer of the current envelope.
func writerFor(sch sr.Schema) (*writer, error) {
	if sch.Type != sr.TypeAvro {
		return nil, fmt.Errorf("schema type %s, not Avro", sch.Type)
	}
	if len(sch.References) > 0 {
		return nil, errors.New("schema has references; the envelope has none")
	}
	c, err := compile("registry", sch.Schema)
	if err != nil {
		return nil, err
	}
	if c.codec.CanonicalSchema() == current.codec.CanonicalSchema() {
		return &writer{}, nil
	}
	res, err := avroresolve.NewResolver(current.typ, c.typ)
	if err != nil {
		return nil, fmt.Errorf("not readable as the current envelope: %w", err)
	}
	return &writer{res: res}, nil
}

// EncodingOf returns the value encoding named by the HeaderEncoding record
// header. Errors wrap ErrBadHeader (header missing or given twice with
// different values) or ErrUnknownEncoding.
func EncodingOf[H ~RecordHeader](headers []H) (Encoding, error) {
	var (
		enc   Encoding
		found bool
	)
	for _, hh := range headers {
		h := RecordHeader(hh)
		if h.Key != HeaderEncoding {
			continue
		}
		if found && Encoding(h.Value) != enc {
			return "", fmt.Errorf("%w: conflicting %s headers %q and %q", ErrBadHeader, HeaderEncoding, enc, h.Value)
		}
		enc, found = Encoding(h.Value), true
	}
	if !found {
		return "", fmt.Errorf("%w: no %s record header", ErrBadHeader, HeaderEncoding)
	}
	if enc.known() {
		return enc, nil
	}
	return "", fmt.Errorf("%w: %s header %q", ErrUnknownEncoding, HeaderEncoding, enc)
}
