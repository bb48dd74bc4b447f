#!/usr/bin/env python3
"""Confluent's own Python client, with its default settings, against Attest.

Run by server/tests/registry.rs with the registry URL, the brokers and the
events topics. Decodes every message on the topics with `AvroDeserializer`
(no settings beyond the client), then makes the registry calls clients make,
and checks Confluent's error codes for what does not exist or may not be
written. Prints one JSON object: decoded event ids and every check's result.
Exit status 0 only if every check passed.

    confluent_clients.py --registry URL --brokers HOST:PORT --topics T1,T2 --expect N
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

SUBJECT = "dev.attest.AuditEvent"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", required=True)
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topics", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    checks = {}

    def check(name, ok, detail=""):
        checks[name] = {"ok": bool(ok), "detail": str(detail)[:500]}

    registry = SchemaRegistryClient({"url": args.registry})
    deserializer = AvroDeserializer(registry)

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": f"confluent-clients-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(args.topics.split(","))
    decoded, failures = [], []
    deadline = time.monotonic() + args.timeout
    while len(decoded) + len(failures) < args.expect and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                failures.append(str(msg.error()))
            continue
        try:
            event = deserializer(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            decoded.append(event["event_id"])
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(f"{type(e).__name__}: {e}")
    consumer.close()
    check("every message decodes with AvroDeserializer's defaults", not failures and len(decoded) == args.expect,
          f"decoded {len(decoded)} of {args.expect}; failures: {failures[:3]}")

    def call(name, fn, want=None):
        try:
            got = fn()
        except Exception as e:  # noqa: BLE001
            check(name, False, f"{type(e).__name__}: {e}")
            return None
        check(name, want is None or want(got), got)
        return got

    current = call("get_version latest", lambda: registry.get_latest_version(SUBJECT), lambda v: v.version >= 1)
    text = current.schema.schema_str if current else "{}"
    call("get_compatibility (global)", lambda: registry.get_compatibility(), lambda c: c == "FULL_TRANSITIVE")
    call("get_compatibility (subject)", lambda: registry.get_compatibility(SUBJECT), lambda c: c == "FULL_TRANSITIVE")
    call("get_config", lambda: registry.get_config(), lambda c: "FULL_TRANSITIVE" in str(c.compatibility_level))
    call("get_mode", lambda: registry.get_mode(SUBJECT), lambda m: m == "READONLY")
    call("test_compatibility_all_versions (the current schema)",
         lambda: registry.test_compatibility_all_versions(SUBJECT, Schema(text, "AVRO")), lambda ok: ok is True)
    call("test_compatibility (latest)",
         lambda: registry.test_compatibility(SUBJECT, Schema(text, "AVRO")), lambda ok: ok is True)
    call("get_subjects_by_schema_id", lambda: registry.get_subjects_by_schema_id(1), lambda s: SUBJECT in s)
    call("get_schema_versions", lambda: registry.get_schema_versions(1),
         lambda vs: any(v.subject == SUBJECT and v.version == 1 for v in vs))
    call("lookup_schema", lambda: registry.lookup_schema(SUBJECT, Schema(text, "AVRO")),
         lambda r: current is not None and r.schema_id == current.schema_id)
    call("get_subjects", lambda: registry.get_subjects(), lambda s: SUBJECT in s)
    call("get_versions", lambda: registry.get_versions(SUBJECT), lambda v: 1 in v)

    def error_code(name, fn, code):
        try:
            got = fn()
            check(name, False, f"answered {got!r} instead of error {code}")
        except SchemaRegistryError as e:
            check(name, e.error_code == code, f"error_code {e.error_code}: {e.error_message}")
        except Exception as e:  # noqa: BLE001
            check(name, False, f"{type(e).__name__}: {e}")

    error_code("unknown subject is 40401", lambda: registry.get_versions("no.such.Subject"), 40401)
    error_code("unknown version is 40402", lambda: registry.get_version(SUBJECT, 999), 40402)
    error_code("unknown schema id is 40403", lambda: registry.get_schema(4242), 40403)
    # A schema the client has not seen (it answers a known one from its
    # cache without asking): version 1 plus a field with a default.
    evolved = json.loads(text)
    evolved["fields"].append({"name": "severity", "type": ["null", "string"], "default": None})
    error_code("registering is refused as read-only (42205)",
               lambda: registry.register_schema(SUBJECT, Schema(json.dumps(evolved), "AVRO")), 42205)

    print(json.dumps({"decoded": decoded, "checks": checks}))
    return 0 if all(c["ok"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
