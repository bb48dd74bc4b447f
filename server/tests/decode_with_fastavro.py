#!/usr/bin/env python3
"""Decodes one Kafka message of an Attest topic the way a Confluent-aware
consumer does, with code that is not Attest's: read the 5-byte frame (magic
byte 0, big-endian schema id), fetch that schema from the registry endpoint
(GET /schemas/ids/{id}), decode the rest with fastavro. Prints the record as
JSON on stdout.

Usage: decode_with_fastavro.py REGISTRY_URL MESSAGE_FILE
"""
import io
import json
import struct
import sys
import urllib.request

import fastavro


def main(registry, path):
    with open(path, "rb") as f:
        message = f.read()
    magic, schema_id = struct.unpack(">bI", message[:5])
    if magic != 0:
        raise SystemExit(f"not Confluent framing: magic byte {magic}")
    with urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}") as response:
        if not response.headers.get("Content-Type", "").startswith("application/vnd.schemaregistry.v1+json"):
            raise SystemExit(f"unexpected content type {response.headers.get('Content-Type')}")
        schema = json.loads(json.load(response)["schema"])
    parsed = fastavro.parse_schema(schema)
    body = io.BytesIO(message[5:])
    record = fastavro.schemaless_reader(body, parsed)
    if body.read():
        raise SystemExit("trailing bytes after the record")
    print(json.dumps({"schema_id": schema_id, "record": record}, default=str))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
