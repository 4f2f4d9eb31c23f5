"""Read a logbridge topic written with --encoding confluent, as an analytics
job would: confluent-kafka consumes, its AvroDeserializer (fastavro) fetches
the writer schema from the schema registry by the id in each record, and
pymongo's bson decodes the documents, which the envelope carries as raw BSON.

usage: confluent_consumer.py BROKERS REGISTRY_URL TOPIC COUNT

Keys: with the source's --confluent-keys they are Confluent-framed too
(subject <topic>-key, schema "bytes": the BSON key after the header) and decoded the same
way; otherwise they are the raw BSON key.

Prints one JSON line per record: op, ns, the document's _id (from the value
and, as key_id, from the key), its "n" field,
the raw fullDocument as hex (for byte-exact checks), and the schema id; then
a summary line {"records": N, "sum_n": S}. Exits 1 when COUNT records do not
arrive within 60 s.
"""
import json
import sys
import time

import bson
from bson.codec_options import CodecOptions
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

brokers, registry_url, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

registry = SchemaRegistryClient({"url": registry_url})
# No reader schema: decode with the writer's schema, fetched by id.
deserialize = AvroDeserializer(registry)
deserialize_key = AvroDeserializer(registry)
consumer = Consumer({
    "bootstrap.servers": brokers,
    "group.id": "python-analytics-" + topic,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",  # skip aborted source transactions
    "enable.auto.commit": False,
})
consumer.subscribe([topic])
codec = CodecOptions(tz_aware=True)

seen, total, deadline = 0, 0, time.time() + 60
while seen < count and time.time() < deadline:
    msg = consumer.poll(1.0)
    if msg is None:
        continue
    if msg.error():
        raise SystemExit(f"consume error: {msg.error()}")
    env = deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE))
    schema_id = int.from_bytes(msg.value()[1:5], "big")
    line = {"op": env["op"], "ns": env["ns"], "schema_id": schema_id}
    if env["op"] in ("snapshot", "insert", "update", "replace", "delete"):
        seen += 1
        key = bson.decode(env["documentKey"], codec)
        line["_id"] = key["_id"]
        raw_key = msg.key()
        if raw_key[:1] == b"\x00":  # Confluent-framed (--confluent-keys)
            raw_key = deserialize_key(raw_key, SerializationContext(topic, MessageField.KEY))
            line["key_framed"] = True
        line["key_id"] = bson.decode(raw_key, codec)["_id"]
        if env["fullDocument"] is not None:
            doc = bson.decode(env["fullDocument"], codec)
            line["n"] = int(doc["n"])
            line["fullDocumentHex"] = env["fullDocument"].hex()
            total += int(doc["n"])
    print(json.dumps(line, default=str), flush=True)
consumer.close()
print(json.dumps({"records": seen, "sum_n": total}), flush=True)
sys.exit(0 if seen >= count else 1)
