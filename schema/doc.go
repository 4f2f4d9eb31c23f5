// Package schema is the record contract of the log: the Event type, the
// record key, the Avro value envelope (schema/avro/*.avsc, embedded), its
// wire encodings, and the rules by which the envelope evolves. The
// source connector writes records through it, the sink connector and every
// other consumer read them through it; the connectors never import each
// other.
//
// # Record key
//
// The key is NOT Avro: it is the raw BSON bytes of the document key
// ({_id}, or {shard key fields..., _id} in a sharded collection:
// Event.DocumentKey), identical in every value
// encoding, so the partitioner's hash, and with it per-document order, never
// depends on the encoding. DDL, marker and heartbeat records are written into
// every partition explicitly and carry a control key, a BSON document whose
// first field is "$logbridge" (see ControlKeyField), never a nil key (Kafka
// refuses null keys on compacted topics), distinct per DDL and marker so
// compaction keeps every barrier. avro/key.avsc documents the key as Avro
// "bytes"; it is not registered in a schema registry because the key carries
// no Confluent framing (registry-aware key deserializers would fail on it):
// consumers read keys as byte arrays.
//
// # Record value
//
// The value is the io.logbridge.Envelope record (avro/envelope.avsc): op,
// namespace, document key, full document, pre-image, update description,
// cluster time, wall time, transaction identity, resume token, sync epoch,
// source identity, DDL and marker payloads. Every document is raw BSON bytes
// (bson.Raw end to end), so every BSON type and the field order survive. The
// HeaderEncoding record header names the encoding of each value:
//
//	confluent           0x00 | schema id (4 bytes, big-endian) | Avro binary
//	avro-single-object  0xC3 0x01 | CRC-64-AVRO fingerprint of the canonical schema (8 bytes, little-endian) | Avro binary
//	json                canonical Extended JSON of the envelope, documents as sub-documents
//	connect-json        Kafka Connect JsonConverter schema+payload of the envelope, documents as canonical Extended JSON strings
//	debezium            Debezium's MongoDB change event via JsonConverter (lossy: DecodeValue refuses it with ErrLossyEncoding)
//
// connect-json and debezium write a JSON record key (Serde.WireKey) for
// Kafka Connect and Debezium consumers; producers still partition by the raw
// BSON key. Encoding.Loses says what an encoding cannot carry.
//
// Confluent registers the envelope under the subject "<topic>-value"
// (TopicNameStrategy) and keeps the subject's compatibility at BACKWARD or
// stricter. RegistryConfig is how a process reaches the registry (URL, basic
// auth or a bearer token, CA file) and registers the same --schema-registry-*
// flags in every binary; refused credentials, a missing permission and an
// untrusted certificate are ErrRegistryAccess, whose message names the flag
// to fix and never a secret. DecodeValue reads any encoding, whatever the Serde writes. Avro
// values written with an older envelope version (a released fingerprint, or
// any registered schema id) are read through Avro schema resolution, which
// goavro lacks and internal/avroresolve implements; an op symbol added by a
// newer version decodes as OpUnknown.
//
// # Implementation
//
// The Avro binary envelope is encoded and decoded by hand (avro.go): goavro's
// map-based path costs several microseconds and dozens of allocations per
// record, the hand-written one appends into the caller's buffer and decodes
// without copying documents (the decoded bson.Raw fields alias the value).
// goavro still parses and validates the schemas, computes fingerprints and
// canonical forms, and tests cross-check that both produce identical bytes.
//
// # Usage
//
//	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{
//		Encoding:    schema.EncodingConfluent,
//		Registry: schema.RegistryConfig{URL: "https://registry:8081", User: "logbridge", PasswordFile: "/run/secrets/registry-password"},
//	})
//	// producing
//	value, err := serde.EncodeValue(topic, ev)
//	rec := &kgo.Record{Topic: topic, Key: serde.Key(ev), Value: value,
//		Headers: []kgo.RecordHeader{serde.Header()}}
//	// consuming
//	enc, err := schema.EncodingOf(rec.Headers)
//	ev, err := serde.DecodeValue(enc, rec.Value)
//	switch {
//	case errors.Is(err, schema.ErrRegistryUnavailable): // transient: retry
//	case err != nil: // undecodable: dead-letter the record with err
//	}
//
// See README.md for the envelope fields, the versioning rules and the
// release process.
package schema
