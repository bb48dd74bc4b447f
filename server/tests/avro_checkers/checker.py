"""Apache Avro's Python reference checker (avro.compatibility, the `avro`
package 1.12.2) over the schema pairs server/tests/avro_evolutions.rs hands
it: a JSON file of [{"name", "writer", "reader"}]. Prints one JSON object a
line: {"name", "answer": "compatible" | "incompatible" | "invalid", "detail"}.

    python3 checker.py PAIRS.json
"""

import json
import sys

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType


def answer(pair):
    try:
        writer = avro.schema.parse(json.dumps(pair["writer"]))
        reader = avro.schema.parse(json.dumps(pair["reader"]))
    except avro.errors.AvroException as e:
        return "invalid", str(e)
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return "compatible", ""
    return "incompatible", "; ".join(sorted(result.messages))


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        pairs = json.load(f)
    for pair in pairs:
        verdict, detail = answer(pair)
        print(json.dumps({"name": pair["name"], "answer": verdict, "detail": detail}))


if __name__ == "__main__":
    main()
