#!/usr/bin/env python3
"""An integrity verifier written from docs/INTEGRITY.md alone.

It shares no code with Attest: it reads ClickHouse over HTTP, the published
keys from a keys.json, and (optionally) the committed chain heads from Kafka
with Confluent's client, and applies the document's rules. The test suite
(server/tests/integrity.rs) holds its findings to `attest integrity check`'s.

Usage:
  integrity_verifier.py --clickhouse URL --database DB --keys KEYS_JSON
                        [--brokers HOST:PORT --group GROUP]
  integrity_verifier.py export BUNDLE_ZIP [--keys KEYS_JSON]

The export mode checks a bundle offline as sections 10-12 say and prints
{"ok": bool, "rows": n, "first": [kind, subject] or null, "problems": [...],
 "redacted": [[row, event_id, request_id, fields], ...]}
(server/tests/export_proofs.rs holds it to `attest verify`'s verdict).

Prints one JSON object: {"digests": n, "events": n, "problems": [[kind, subject], ...],
"redacted": [[event_id, request_id], ...], "folded": [[event_id, offset], ...], "expired": n} where kind is one of
missing_digest, not_contiguous, off_chain, bad_digest, leaves_altered, event_missing,
event_altered, identity_forged, bad_redaction, bad_retention_record, and subject is the digest hash, the event id, or
(bad_retention_record) "tenant/month".
Redacted events (section 14), re-sent copies folded into another stored copy
(section 8, step 5) and events removed by retention under a valid record
(section 15, counted) are reported apart: they are not problems. Exits 1 if there is
a problem.
"""

import argparse
import hashlib
import json
import re
import sys
import urllib.parse
import urllib.request
import zipfile

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


def leaf(row, content=None):
    """Section 3 (with another content hash: section 14's original one)."""
    content = content_hash(row) if content is None else content
    return sha256(b"\x00" + field(content) + field(int(row["received_at"])) + field(int(row["schema_id"]))
                  + field(int(row["kafka_partition"])) + field(int(row["kafka_offset"])))


def record_message(r):
    """Section 14: the message a redaction record's signature covers."""
    parts = ["attest-redaction-v1", r["request_id"], r["tenant_id"], r["event_id"], int(r["kafka_partition"]),
             int(r["kafka_offset"]), r["original_hash"], r["redacted_hash"], len(r["fields"])]
    parts += list(r["fields"])
    parts += [r["requested_by"], r["approved_by"], r["reason"], int(r["executed_at"]), r["key_id"]]
    return b"".join(field(p) for p in parts)


def signed_ok(keys, key_id, at, message, signature):
    """Section 6: `signature` (hex) is key `key_id`'s Ed25519 signature of
    `message`, and the key is published and valid at `at`."""
    key = keys.get(key_id)
    if key is None or not key_valid(key, int(at)):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public_key"])).verify(
            bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def record_ok(r, keys):
    """Section 14: the signature under a published key valid at executed_at."""
    return signed_ok(keys, r["key_id"], r["executed_at"], record_message(r), r["signature"])


def judge_row(row, sealed_hex, records, keys):
    """Section 14: ("intact"|"redacted"|"bad_redaction"|"altered", record or None)."""
    own = content_hash(row)
    if leaf(row, own).hex() == sealed_hex:
        return "intact", None
    bad = None
    for r in records:
        if (r["tenant_id"], r["event_id"], int(r["kafka_partition"]), int(r["kafka_offset"])) != \
                (row["tenant_id"], row["event_id"], int(row["kafka_partition"]), int(row["kafka_offset"])):
            continue
        if r["redacted_hash"] != own or leaf(row, r["original_hash"]).hex() != sealed_hex:
            continue
        if record_ok(r, keys):
            return "redacted", r
        bad = bad or r
    return ("bad_redaction", bad) if bad else ("altered", None)


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
    message = signed_message(d)
    if not signed_ok(keys, d["key_id"], d["sealed_at"], message, d["signature"]):
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
    problems, events, redacted, folded = [], 0, [], []
    expired, retention_records = 0, {}
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
            sets = ch.rows("SELECT kafka_offsets, tenant_ids, event_ids, arrayMap(l -> lower(hex(l)), leaves) AS leaves, "
                           f"received_ats, schema_ids FROM attest_integrity_leaf_sets WHERE {where} LIMIT 1")
            leaves = []
            if sets:
                s = sets[0]
                n = min(len(s["kafka_offsets"]), len(s["tenant_ids"]), len(s["event_ids"]), len(s["leaves"]))
                leaves = [{"kafka_offset": s["kafka_offsets"][i], "tenant_id": s["tenant_ids"][i],
                           "event_id": s["event_ids"][i], "leaf": s["leaves"][i],
                           # Section 8, step 5: absent in sets stored before they were recorded.
                           "recorded": (s["received_ats"][i], s["schema_ids"][i])
                           if i < min(len(s["received_ats"]), len(s["schema_ids"])) else None}
                          for i in range(n)]
            if len(leaves) != int(d["row_count"]) or \
                    mth([bytes.fromhex(l["leaf"]) for l in leaves]).hex() != d["root"]:
                problems.append(("leaves_altered", d["digest_hash"]))
            events += len(leaves)
            if not leaves:
                continue
            ids = ", ".join(quote(l["event_id"]) for l in leaves)
            rows = ch.rows("SELECT event_id, tenant_id, occurred_at, received_at, category, action, outcome, actor_id, "
                           "actor_type, actor_ip, actor_user_agent, resource_type, resource_id, source_service, "
                           "request_id, metadata.key, metadata.value, schema_id, kafka_partition, kafka_offset, "
                           "content_hash "
                           f"FROM audit_events WHERE event_id IN ({ids}) AND kafka_partition = {partition} "
                           f"AND kafka_offset >= {int(d['first_offset'])} AND kafka_offset <= {int(d['last_offset'])}")
            records = ch.rows("SELECT request_id, tenant_id, event_id, kafka_partition, kafka_offset, original_hash, "
                              "redacted_hash, fields, requested_by, approved_by, reason, executed_at, key_id, signature "
                              f"FROM attest_redaction_records WHERE event_id IN ({ids}) AND kafka_partition = {partition} "
                              f"AND kafka_offset >= {int(d['first_offset'])} AND kafka_offset <= {int(d['last_offset'])}")
            found = {}
            for r in rows:
                found.setdefault((int(r["kafka_offset"]), r["event_id"]), []).append(r)
            rank = {"intact": 0, "redacted": 1, "bad_redaction": 2, "altered": 3}
            for l in leaves:
                copies = found.get((int(l["kafka_offset"]), l["event_id"]))
                if not copies:
                    if removed_by_retention(ch, keys, topic, partition, l, retention_records, problems):
                        expired += 1
                    elif folded_copy(ch, keys, partition, l):
                        folded.append([l["event_id"], int(l["kafka_offset"])])
                    else:
                        problems.append(("event_missing", l["event_id"]))
                    continue
                # Section 8, step 4: every copy's stored identity is the
                # hash of its own content.
                if any(r["content_hash"] != content_hash(r) for r in copies):
                    problems.append(("identity_forged", l["event_id"]))
                # Section 14: the worst copy speaks for the event.
                verdict, record = max((judge_row(r, l["leaf"], records, keys) for r in copies),
                                      key=lambda v: rank[v[0]])
                if verdict == "redacted":
                    redacted.append([l["event_id"], record["request_id"]])
                elif verdict != "intact":
                    problems.append(("event_altered" if verdict == "altered" else verdict, l["event_id"]))
    return {"digests": len(digests), "events": events, "problems": problems, "redacted": sorted(redacted),
            "folded": sorted(folded), "expired": expired}


def retention_message(r):
    """Section 15: the message a retention record's signature covers."""
    parts = ["attest-retention-v1", r["topic"], int(r["partition"]), r["tenant_id"], int(r["month"]),
             int(r["executed_at"]), r["key_id"], len(r["kafka_offsets"])]
    parts += [int(o) for o in r["kafka_offsets"]]
    return b"".join(field(p) for p in parts)


def removed_by_retention(ch, keys, topic, partition, l, cache, problems):
    """Section 15: a leaf without its row whose place a valid retention
    record names was removed by retention. Records are read once per chain
    and tenant; one that does not verify is a problem and names nothing."""
    chain_tenant = (topic, partition, l["tenant_id"])
    if chain_tenant not in cache:
        valid = []
        for r in ch.rows("SELECT topic, partition, tenant_id, month, kafka_offsets, executed_at, key_id, signature "
                         f"FROM attest_retention_records WHERE topic = {quote(topic)} AND partition = {partition} "
                         f"AND tenant_id = {quote(l['tenant_id'])}"):
            if signed_ok(keys, r["key_id"], r["executed_at"], retention_message(r), r["signature"]):
                valid.append({int(o) for o in r["kafka_offsets"]})
            else:
                problems.append(("bad_retention_record", f"{r['tenant_id']}/{r['month']}"))
        cache[chain_tenant] = valid
    return any(int(l["kafka_offset"]) in offsets for offsets in cache[chain_tenant])


def folded_copy(ch, keys, partition, l):
    """Section 8, step 5: a leaf without its row is an exact re-send kept as
    another stored row of the same tenant and event id, if that row's content
    hash (or a valid redaction record's original hash for it) gives the sealed
    leaf with the received_at and schema_id recorded in the set."""
    if l["recorded"] is None:
        return False
    received_at, schema_id = l["recorded"]
    where = f"tenant_id = {quote(l['tenant_id'])} AND event_id = {quote(l['event_id'])}"
    copies = ch.rows("SELECT event_id, tenant_id, occurred_at, received_at, category, action, outcome, actor_id, "
                     "actor_type, actor_ip, actor_user_agent, resource_type, resource_id, source_service, "
                     "request_id, metadata.key, metadata.value, schema_id, kafka_partition, kafka_offset "
                     f"FROM audit_events WHERE {where}")
    records = ch.rows("SELECT request_id, tenant_id, event_id, kafka_partition, kafka_offset, original_hash, "
                      "redacted_hash, fields, requested_by, approved_by, reason, executed_at, key_id, signature "
                      f"FROM attest_redaction_records WHERE {where}")
    for copy in copies:
        at_leaf = dict(copy, received_at=received_at, schema_id=schema_id,
                       kafka_partition=partition, kafka_offset=l["kafka_offset"])
        own = content_hash(copy)
        if leaf(at_leaf, own).hex() == l["leaf"]:
            return True
        for r in records:
            if (int(r["kafka_partition"]), int(r["kafka_offset"])) == \
                    (int(copy["kafka_partition"]), int(copy["kafka_offset"])) and r["redacted_hash"] == own \
                    and leaf(at_leaf, r["original_hash"]).hex() == l["leaf"] and record_ok(r, keys):
                return True
    return False


def key_valid(key, at):
    """Section 6's validity rule, for a digest's sealed_at or a manifest's created_at."""
    return at >= key["not_before"] and (key["not_after"] is None or at <= key["not_after"] + ROTATION_GRACE_MS)


def root_from_path(leaf_hash, index, size, path):
    """RFC 9162, section 2.1.3.2: the root an audit path leads to, or None."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# Section 10, "Reading events.csv": the columns a leaf needs, by kind;
# every other column is text.
CSV_NUMBERS = {"occurred_at": (-2**63, 2**63 - 1), "received_at": (-2**63, 2**63 - 1),
               "schema_id": (0, 2**32 - 1), "kafka_partition": (-2**31, 2**31 - 1),
               "kafka_offset": (-2**63, 2**63 - 1)}
CSV_ARRAYS = ("metadata_key", "metadata_value")
CSV_TEXT = ("event_id", "tenant_id", "category", "action", "outcome", "actor_id", "actor_type", "actor_ip",
            "actor_user_agent", "resource_type", "resource_id", "source_service", "request_id",
            "content_hash")  # the last is not in the leaf: step 8 compares it with the recomputed hash
ARRAY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", "'": "'"}


def csv_records(data):
    """A record ends at a line feed outside double quotes; empty records are skipped."""
    current = None
    for piece in data.split(b"\n"):
        current = piece if current is None else current + b"\n" + piece
        if current.count(b'"') % 2 == 0:
            if current:
                yield current
            current = None
    if current:
        yield current


def csv_fields(record):
    """RFC 4180: a quoted field runs to its closing quote ("" is one quote), an unquoted one to the next comma."""
    fields, i, n = [], 0, len(record)
    while True:
        if record[i:i + 1] == b'"':
            value, i = b"", i + 1
            while True:
                j = record.find(b'"', i)
                if j < 0:
                    raise ValueError("a quoted field is not closed")
                value += record[i:j]
                if record[j + 1:j + 2] == b'"':
                    value, i = value + b'"', j + 2
                else:
                    i = j + 1
                    break
        else:
            j = record.find(b",", i)
            j = n if j < 0 else j
            value, i = record[i:j], j
            if b'"' in value:
                raise ValueError("a quote inside an unquoted field")
        fields.append(value.decode("utf-8"))
        if i >= n:
            return fields
        if record[i:i + 1] != b",":
            raise ValueError("text after a closing quote")
        i += 1


def array_literal(text):
    """ClickHouse's array text: ['a','b'], backslash escapes inside the single quotes."""
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        raise ValueError("an array is not in [ ]")
    inner, out, i = text[1:-1], [], 0
    if not inner:
        return out
    while True:
        if inner[i:i + 1] != "'":
            raise ValueError("an array element does not start with '")
        i += 1
        value = []
        while True:
            if i >= len(inner):
                raise ValueError("an array element is not closed")
            c = inner[i]
            if c == "'":
                i += 1
                break
            if c == "\\":
                e = inner[i + 1:i + 2]
                if e not in ARRAY_ESCAPES:
                    raise ValueError("an unknown escape in an array element")
                value.append(ARRAY_ESCAPES[e])
                i += 2
            else:
                value.append(c)
                i += 1
        out.append("".join(value))
        if i >= len(inner):
            return out
        if inner[i] != ",":
            raise ValueError("text after an array element")
        i += 1


def csv_rows(data):
    """The rows of events.csv, each as the columns a leaf needs (section 10)."""
    records = csv_records(data)
    header = next(records, None)
    if header is None:
        return
    names = csv_fields(header)
    at = {}
    for column in CSV_TEXT + tuple(CSV_NUMBERS) + CSV_ARRAYS:
        if column not in names:
            raise ValueError("the header has no column " + column)
        at[column] = names.index(column)
    for record in records:
        cells = csv_fields(record)
        if len(cells) != len(names):
            raise ValueError(f"has {len(cells)} fields, the header {len(names)}")
        r = {}
        for column in CSV_TEXT:
            v = cells[at[column]]
            r[column] = v[1:] if v.startswith("'") else v  # the export's added quote
        for column, (low, high) in CSV_NUMBERS.items():
            v = cells[at[column]]
            if not re.fullmatch(r"-?[0-9]+", v) or not low <= int(v) <= high:
                raise ValueError(f"column {column}: {v!r} is not a number")
            r[column] = int(v)
        for column in CSV_ARRAYS:
            r[column] = array_literal(cells[at[column]])
        yield r


def verify_export(path, trusted):
    """Sections 10-12: every check in the order of section 12."""
    problems = []
    rows = []
    redacted = []

    def done():
        return {"ok": not problems, "rows": len(rows), "first": problems[0][:2] if problems else None,
                "problems": problems, "redacted": redacted}

    with zipfile.ZipFile(path) as z:
        names = [i.filename for i in z.infolist()]
        files = {}
        for name in names:
            if name in files:
                problems.append(["bundle", name, "appears twice"])
                return done()
            files[name] = z.read(name)

    def need(name):
        if name not in files:
            problems.append(["bundle", name, "missing"])
            return None
        return files[name]

    # Keys: the given ones, or the bundle's own.
    bundled = need("keys.json")
    if bundled is None:
        return done()
    ring = trusted if trusted is not None else {k["key_id"]: k for k in json.loads(bundled)["keys"]}
    manifest_bytes = need("manifest.json")
    if manifest_bytes is None:
        return done()
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != "attest-export-v1":
        problems.append(["bundle", "manifest.json", "unknown format"])
        return done()
    events_format = manifest.get("events_format", "ndjson")  # section 11: absent in older bundles
    if events_format not in ("ndjson", "csv"):
        problems.append(["bundle", "manifest.json", "unknown events_format"])
        return done()
    sig_bytes = need("manifest.sig")
    if sig_bytes is None:
        return done()
    sig = json.loads(sig_bytes)
    message = field("attest-manifest-v1") + field(hashlib.sha256(manifest_bytes).hexdigest())
    if not signed_ok(ring, sig["key_id"], manifest["created_at"], message, sig["signature"]):
        problems.append(["manifest_signature", sig["key_id"], "does not verify with the trusted keys"])

    # Digests: each alone, then the manifest's list, then the chain links.
    digest_bytes = need("digests.ndjson")
    if digest_bytes is None:
        return done()
    digests, order = {}, []
    for line in digest_bytes.split(b"\n"):
        if not line:
            continue
        d = json.loads(line)
        if not digest_ok(d, ring):
            problems.append(["bad_digest", d["digest_hash"], "signature, key or hash"])
        order.append(d["digest_hash"])
        digests[d["digest_hash"]] = d
    for listed in manifest["digests"]:
        if listed not in digests:
            problems.append(["missing_digest", listed, "listed in the manifest"])
    earliest = {}
    for d in digests.values():
        chain = (d["topic"], int(d["partition"]))
        earliest[chain] = min(earliest.get(chain, int(d["first_offset"])), int(d["first_offset"]))
    for h in order:
        d = digests[h]
        if earliest[(d["topic"], int(d["partition"]))] == int(d["first_offset"]):
            continue
        prev = digests.get(d["prev_hash"])
        if prev is None:
            problems.append(["missing_digest", d["prev_hash"], "named by " + h])
        elif int(prev["last_offset"]) + 1 != int(d["first_offset"]):
            problems.append(["not_contiguous", h, "gap after " + prev["digest_hash"]])

    # Rows and their proofs: events.ndjson, or events.csv read back as
    # section 10 says (the manifest's events_format names it).
    events_name = "events." + events_format
    events = need(events_name)
    proofs = need("proofs.ndjson")
    if events is None or proofs is None:
        return done()
    if events_format == "csv":
        parsed = csv_rows(events)
    else:
        parsed = (json.loads(line) for line in events.split(b"\n") if line)
    read = []
    try:
        for r in parsed:
            r["metadata.key"], r["metadata.value"] = r["metadata_key"], r["metadata_value"]
            read.append({"id": (r["tenant_id"], r["event_id"], int(r["kafka_partition"]), int(r["kafka_offset"])),
                         "leaf": leaf(r), "row": r, "proven": False})
    except (ValueError, KeyError) as e:
        problems.append(["bundle", events_name, f"row {len(read)}: {e}"])
        return done()
    rows.extend(read)
    # Section 14: the redaction records, when the manifest lists their file.
    records = []
    if any(e["name"] == "redactions.ndjson" for e in manifest["files"]):
        listed_records = need("redactions.ndjson")
        if listed_records is None:
            return done()
        records = [json.loads(line) for line in listed_records.split(b"\n") if line]
    for line in proofs.split(b"\n"):
        if not line:
            continue
        p = json.loads(line)
        i = int(p["row"])
        if i >= len(rows):
            problems.append(["bad_proof", p["event_id"], "no such row"])
            continue
        row = rows[i]
        if row["id"] != (p["tenant_id"], p["event_id"], int(p["kafka_partition"]), int(p["kafka_offset"])):
            problems.append(["bad_proof", p["event_id"], "the proof is for another row"])
            continue
        if row["proven"]:
            problems.append(["bad_proof", p["event_id"], "proven twice"])
            continue
        start = row["leaf"]
        if row["leaf"].hex() != p["leaf"]:
            verdict, record = judge_row(row["row"], p["leaf"], records, ring)
            if verdict == "bad_redaction":
                problems.append(["bad_redaction", row["id"][1], "its redaction record does not verify"])
                continue
            if verdict != "redacted":
                problems.append(["event_altered", row["id"][1], "leaf differs from the sealed one"])
                continue
            start = bytes.fromhex(p["leaf"])
            redacted.append([i, row["id"][1], record["request_id"], list(record["fields"])])
        d = digests.get(p["digest_hash"])
        if d is None:
            problems.append(["missing_digest", p["digest_hash"], "named by event " + p["event_id"]])
            continue
        if (d["topic"] != p["topic"] or int(d["partition"]) != int(p["kafka_partition"])
                or not int(d["first_offset"]) <= int(p["kafka_offset"]) <= int(d["last_offset"])):
            problems.append(["bad_proof", p["event_id"], "the digest does not cover it"])
            continue
        if int(p["tree_size"]) != int(d["row_count"]):
            problems.append(["bad_proof", p["event_id"], "tree size differs from the digest's count"])
            continue
        got = root_from_path(start, int(p["leaf_index"]), int(p["tree_size"]),
                             [bytes.fromhex(h) for h in p["path"]])
        if got is None or got.hex() != d["root"]:
            problems.append(["bad_proof", p["event_id"], "the path does not lead to the signed root"])
            continue
        row["proven"] = True
    unsealed = {int(u["row"]) for u in manifest["unsealed"]}
    for i, row in enumerate(rows):
        if not row["proven"] and i not in unsealed:
            problems.append(["unproven_row", row["id"][1], "no proof, not listed as unsealed"])
        elif row["row"]["content_hash"] != content_hash(row["row"]):
            problems.append(["identity_forged", row["id"][1], "content_hash is not the hash of the row"])
    if int(manifest["rows"]) != len(rows):
        problems.append(["bundle", events_name, "row count differs from the manifest"])

    # Files against the manifest's hashes.
    for entry in manifest["files"]:
        data = need(entry["name"])
        if data is None:
            return done()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(["file_hash", entry["name"], "SHA-256 differs from the manifest"])
    listed = {e["name"] for e in manifest["files"]}
    for name in (events_name, "proofs.ndjson", "digests.ndjson", "keys.json"):
        if name not in listed:
            problems.append(["bundle", "manifest.json", "does not list " + name])
    return done()


def export_main(argv):
    parser = argparse.ArgumentParser(prog="integrity_verifier.py export")
    parser.add_argument("bundle")
    parser.add_argument("--keys")
    args = parser.parse_args(argv)
    trusted = None
    if args.keys:
        with open(args.keys, encoding="utf-8") as f:
            trusted = {k["key_id"]: k for k in json.load(f)["keys"]}
    report = verify_export(args.bundle, trusted)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        return export_main(sys.argv[2:])
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
