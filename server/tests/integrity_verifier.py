#!/usr/bin/env python3
"""An integrity verifier written from docs/INTEGRITY.md alone.

It shares no code with Attest: it reads ClickHouse over HTTP, the published
keys from a keys.json, and (optionally) the committed chain heads from Kafka
with Confluent's client, and applies the document's rules. The test suite
(server/tests/integrity.rs) holds its findings to `attest integrity check`'s.

Usage:
  integrity_verifier.py --clickhouse URL --database DB --keys KEYS_JSON
                        [--brokers HOST:PORT --group GROUP]

Prints one JSON object: {"digests": n, "events": n, "problems": [[kind, subject], ...]}
where kind is one of missing_digest, not_contiguous, off_chain, bad_digest,
leaves_altered, event_missing, event_altered, and subject is the digest hash
or the event id. Exits 1 if there is a problem.
"""

import argparse
import hashlib
import json
import sys
import urllib.parse
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
ROTATION_GRACE_MS = 300_000  # section 6


def field(value):
    """Section 1: <length in bytes>:<bytes>; numbers as decimal text."""
    if isinstance(value, int):
        value = str(value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return str(len(data)).encode("ascii") + b":" + data


def sha256(data):
    return hashlib.sha256(data).digest()


def content_hash(row):
    """Section 2."""
    entries = sorted(zip(row["metadata.key"], row["metadata.value"]),
                     key=lambda kv: (kv[0].encode("utf-8"), kv[1].encode("utf-8")))
    parts = [row["event_id"], row["tenant_id"], int(row["occurred_at"]), row["category"], row["action"],
             row["outcome"], row["actor_id"], row["actor_type"], row["actor_ip"], row["actor_user_agent"],
             row["resource_type"], row["resource_id"], row["source_service"], row["request_id"], len(entries)]
    for k, v in entries:
        parts += [k, v]
    return sha256(b"".join(field(p) for p in parts)).hex()


def leaf(row):
    """Section 3."""
    return sha256(b"\x00" + field(content_hash(row)) + field(int(row["received_at"])) + field(int(row["schema_id"]))
                  + field(int(row["kafka_partition"])) + field(int(row["kafka_offset"])))


def mth(leaves):
    """Section 4: RFC 6962's Merkle tree hash."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def signed_message(d):
    """Section 5."""
    return b"".join(field(p) for p in ("attest-digest-v1", d["topic"], int(d["partition"]), int(d["first_offset"]),
                                       int(d["last_offset"]), int(d["row_count"]), d["root"], d["prev_hash"],
                                       int(d["sealed_at"]), d["key_id"]))


def digest_ok(d, keys):
    """Sections 5 and 6: the key, its validity, the signature, the hash."""
    key = keys.get(d["key_id"])
    if key is None:
        return False
    sealed = int(d["sealed_at"])
    if sealed < key["not_before"] or (key["not_after"] is not None and sealed > key["not_after"] + ROTATION_GRACE_MS):
        return False
    message = signed_message(d)
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public_key"])).verify(bytes.fromhex(d["signature"]), message)
    except (InvalidSignature, ValueError):
        return False
    return sha256(message + field(d["signature"])).hex() == d["digest_hash"]


class ClickHouse:
    def __init__(self, url, database):
        self.url, self.database = url, database

    def rows(self, sql):
        query = urllib.parse.urlencode({"database": self.database})
        request = urllib.request.Request(f"{self.url}/?{query}", data=(sql + " FORMAT JSONEachRow").encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]


def quote(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def committed_heads(brokers, group, chains):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        answer = consumer.committed([TopicPartition(t, p) for t, p in chains], timeout=10)
    finally:
        consumer.close()
    heads = {}
    for tp in answer:
        # The head is exactly 64 hex digits (section 7). confluent-kafka's
        # Python binding reads commit metadata as a NUL-terminated C string
        # while librdkafka's copy is not NUL-terminated, so stray bytes can
        # follow the 64 characters: keep the first 64.
        try:
            meta = tp.metadata or ""
        except UnicodeDecodeError as e:
            meta = e.object[:64].decode("ascii", "replace")
        meta = meta[:64]
        if len(meta) == 64 and all(c in "0123456789abcdef" for c in meta):
            heads[(tp.topic, tp.partition)] = meta
    return heads


def verify(ch, keys, heads):
    digests = ch.rows("SELECT DISTINCT digest_hash, topic, partition, first_offset, last_offset, row_count, root, "
                      "prev_hash, sealed_at, key_id, signature FROM attest_integrity_digests")
    chains = {}
    for d in digests:
        chains.setdefault((d["topic"], int(d["partition"])), []).append(d)
    problems, events = [], 0
    for chain_key in sorted(set(chains) | set(heads)):
        ds = chains.get(chain_key, [])
        by_hash = {d["digest_hash"]: d for d in ds}
        # Section 7: walk from the committed head, else the furthest digest.
        head = heads.get(chain_key)
        if head is not None and head not in by_hash:
            problems.append(("missing_digest", head))
        start = by_hash.get(head) if head else None
        # Section 7: a stored digest extending the head moves it on (its
        # commit is not made yet); the furthest one, ties to the smaller hash.
        while start is not None:
            nxt = [d for d in ds if d["prev_hash"] == start["digest_hash"]
                   and int(d["last_offset"]) > int(start["last_offset"])]
            if not nxt:
                break
            start = min(nxt, key=lambda d: (-int(d["last_offset"]), d["digest_hash"]))
        if start is None and ds:
            start = max(ds, key=lambda d: (int(d["last_offset"]), [-ord(c) for c in d["digest_hash"]]))
        walked, seen = [], set()
        current = start
        while current is not None and current["digest_hash"] not in seen:
            seen.add(current["digest_hash"])
            if walked and walked[-1]["prev_hash"] == current["digest_hash"] and \
                    int(walked[-1]["first_offset"]) != int(current["last_offset"]) + 1:
                problems.append(("not_contiguous", walked[-1]["digest_hash"]))
            walked.append(current)
            prev = current["prev_hash"]
            if prev == GENESIS:
                break
            if prev in by_hash:
                current = by_hash[prev]
                continue
            problems.append(("missing_digest", prev))
            older = [d for d in ds if int(d["last_offset"]) < int(current["first_offset"]) and d["digest_hash"] not in seen]
            current = max(older, key=lambda d: int(d["last_offset"])) if older else None
        spans = []  # the chain's offset ranges, merged where they touch
        for first, last in sorted((int(w["first_offset"]), int(w["last_offset"])) for w in walked):
            if spans and first <= spans[-1][1] + 1:
                spans[-1][1] = max(spans[-1][1], last)
            else:
                spans.append([first, last])
        for d in ds:
            if d["digest_hash"] in seen:
                continue
            first, last = int(d["first_offset"]), int(d["last_offset"])
            if not any(a <= first and last <= b for a, b in spans):
                problems.append(("off_chain", d["digest_hash"]))
        for d in reversed(walked):
            if not digest_ok(d, keys):
                problems.append(("bad_digest", d["digest_hash"]))
            topic, partition = chain_key
            # Section 8, step 3: the digest's leaf set, one row however
            # often it was stored; its arrays are parallel, in position order.
            where = (f"topic = {quote(topic)} AND partition = {partition} AND digest_hash = {quote(d['digest_hash'])} "
                     f"AND first_offset = {int(d['first_offset'])}")
            sets = ch.rows("SELECT kafka_offsets, tenant_ids, event_ids, arrayMap(l -> lower(hex(l)), leaves) AS leaves "
                           f"FROM attest_integrity_leaf_sets WHERE {where} LIMIT 1")
            leaves = []
            if sets:
                s = sets[0]
                n = min(len(s["kafka_offsets"]), len(s["tenant_ids"]), len(s["event_ids"]), len(s["leaves"]))
                leaves = [{"kafka_offset": s["kafka_offsets"][i], "tenant_id": s["tenant_ids"][i],
                           "event_id": s["event_ids"][i], "leaf": s["leaves"][i]} for i in range(n)]
            if len(leaves) != int(d["row_count"]) or \
                    mth([bytes.fromhex(l["leaf"]) for l in leaves]).hex() != d["root"]:
                problems.append(("leaves_altered", d["digest_hash"]))
            events += len(leaves)
            if not leaves:
                continue
            ids = ", ".join(quote(l["event_id"]) for l in leaves)
            rows = ch.rows("SELECT event_id, tenant_id, occurred_at, received_at, category, action, outcome, actor_id, "
                           "actor_type, actor_ip, actor_user_agent, resource_type, resource_id, source_service, "
                           "request_id, metadata.key, metadata.value, schema_id, kafka_partition, kafka_offset "
                           f"FROM audit_events WHERE event_id IN ({ids}) AND kafka_partition = {partition} "
                           f"AND kafka_offset >= {int(d['first_offset'])} AND kafka_offset <= {int(d['last_offset'])}")
            found = {}
            for r in rows:
                found.setdefault((int(r["kafka_offset"]), r["event_id"]), []).append(r)
            for l in leaves:
                copies = found.get((int(l["kafka_offset"]), l["event_id"]))
                if not copies:
                    problems.append(("event_missing", l["event_id"]))
                elif any(leaf(r).hex() != l["leaf"] for r in copies):
                    problems.append(("event_altered", l["event_id"]))
    return {"digests": len(digests), "events": events, "problems": problems}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clickhouse", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--brokers")
    parser.add_argument("--group")
    args = parser.parse_args()
    with open(args.keys, encoding="utf-8") as f:
        keys = {k["key_id"]: k for k in json.load(f)["keys"]}
    ch = ClickHouse(args.clickhouse, args.database)
    heads = {}
    if args.brokers and args.group:
        chains = {(d["topic"], int(d["partition"])) for d in
                  ch.rows("SELECT DISTINCT topic, partition FROM attest_integrity_digests")}
        heads = committed_heads(args.brokers, args.group, sorted(chains))
    report = verify(ch, keys, heads)
    print(json.dumps(report))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
