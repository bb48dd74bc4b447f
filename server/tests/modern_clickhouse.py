#!/usr/bin/env python3
"""Checks Attest's SQL on a current ClickHouse, embedded in process by chdb.

The local stack runs ClickHouse 18.16, which the Rust integration tests use.
Production runs the current LTS. This check takes the SQL catalogue that the
server binary prints (`attest sql`), applies every migration (including
version-gated ones) to a fresh chdb session, inserts known rows, and runs every
query template with bound values, comparing the answers with what we expect.

Usage: ATTEST_BIN=path/to/attest modern_clickhouse.py CATALOGUE.json
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import chdb
from chdb import session as chdb_session

NOW_MS = 1_795_435_200_000  # 2026-11-23T12:00:00Z
HOUR_MS = 3_600_000

ROWS = [
    # event_id, tenant, occurred_at, outcome, actor
    ("e-old", "acme", NOW_MS - 48 * HOUR_MS, "success", "alice"),
    ("e-1", "acme", NOW_MS - 2 * HOUR_MS, "success", "alice"),
    ("e-2", "globex", NOW_MS - 1 * HOUR_MS, "denied", "mallory"),
    ("e-3", "acme", NOW_MS - 30 * 60_000, "failure", "mallory"),
]
HOUR_S = 3_600
NOW_S = NOW_MS // 1000


def documented_hash(fields, metadata):
    """The content hash as docs/DESIGN.md ("Event identity") defines it,
    written from the text, to check ClickHouse's expression against."""
    def field(text):
        data = text.encode("utf-8")
        return str(len(data)).encode() + b":" + data
    entries = sorted(metadata)
    encoded = b"".join(field(f) for f in fields) + field(str(len(entries)))
    encoded += b"".join(field(k) + field(v) for k, v in entries)
    return hashlib.sha256(encoded).hexdigest()


def row_hash(event_id, tenant, occurred, outcome, actor):
    """documented_hash of a row as main() inserts it."""
    return documented_hash(
        [event_id, tenant, str(occurred), "admin", "user.update", outcome, actor, "user",
         "203.0.113.1", "", "user", "u-1", "iam", ""],
        [("k", "v")],
    )


def literal(value):
    """Only for the fixed rows this script inserts itself."""
    if isinstance(value, int):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class Binder:
    """Binds values the way Attest does: `attest sql --bind` runs the server's
    own ClickHouse client, so hostile values meet the escaping that really
    reaches ClickHouse, not an imitation of it."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "sql", "--bind"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def __call__(self, sql, names, values):
        assert sql.count("?") == len(names), f"placeholders vs params: {sql}"
        self.proc.stdin.write(json.dumps({"sql": sql, "values": [values[n] for n in names]}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("attest sql --bind stopped answering")
        return json.loads(line)


bind = None  # set in main(): a Binder over the attest binary


def query_rows(sess, sql):
    text = str(sess.query(sql + " FORMAT JSONEachRow"))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def check_retention(sess, statements, check):
    """Retention's reads and removals, on the rows inserted by main()."""
    november = {"from_s": 1_793_491_200, "until_s": 1_796_083_200}  # 2026-11, 2026-12

    def run(name, values, fetch=True, settings=""):
        q = statements.pop(name, None)
        if q is None:
            check(f"query {name} is in the catalogue", False)
            return []
        sql = bind(q["sql"], q["params"], values) + settings
        try:
            return query_rows(sess, sql) if fetch else sess.query(sql)
        except Exception as e:  # noqa: BLE001
            check(f"query {name}", False, str(e))
            return None

    rows = run("retention_months", {})
    check("query retention_months", rows == [{"partition": "202611"}], str(rows))
    rows = run("retention_tenants_in_month", november)
    got = sorted((list(r.values())[0], int(list(r.values())[1])) for r in rows or [])
    check("query retention_tenants_in_month", got == [("acme", 3), ("globex", 1)], str(got))
    rows = run("retention_legal_holds", {})
    check("query retention_legal_holds", rows == [], str(rows))
    # Where acme's November rows are in Kafka (main() stores every row at
    # partition 0, offset 0 of the admin topic): one place, the offset
    # once, when the writers have committed past it; none while they have
    # not (the row may have landed before an older batch in flight).
    below = {"committed_offsets": [0, 1], "committed_keys": ["", "admin/0"]}
    not_yet = {"committed_offsets": [0, 0], "committed_keys": ["", "admin/0"]}
    q = statements.get("retention_places_in_month")
    if q is not None:
        rows = query_rows(sess, bind(q["sql"], q["params"], dict(november, tenant="acme", **not_yet)))
        check("query retention_places_in_month stops at the committed offset", rows == [], str(rows))
    rows = run("retention_places_in_month", dict(november, tenant="acme", **below))
    got = [(r["category"], int(r["kafka_partition"]), [int(o) for o in r["offsets"]]) for r in rows or []]
    check("query retention_places_in_month", got == [("admin", 0, [0])], str(rows))
    # What a removal's audit event counts: the same bound, by identity.
    q = statements.get("retention_delivered_tenants_in_month")
    if q is not None:
        values = dict(november, tenants=["acme", "globex"], **not_yet)
        rows = query_rows(sess, bind(q["sql"], q["params"], values))
        check("query retention_delivered_tenants_in_month stops at the committed offset", rows == [], str(rows))
    rows = run("retention_delivered_tenants_in_month", dict(november, tenants=["acme", "globex"], **below))
    got = sorted((list(r.values())[0], int(list(r.values())[1])) for r in rows or [])
    check("query retention_delivered_tenants_in_month", got == [("acme", 3), ("globex", 1)], str(got))
    sess.query("INSERT INTO attest_retention_records VALUES "
               "('attest.admin', 0, 'acme', 202611, [3, 5], 1800000000000, 'k1', 'sig')")
    rows = run("retention_records_of_chain", {"topic": "attest.admin", "partition": 0, "tenant": "acme"})
    got = [(r["month"], [int(o) for o in r["kafka_offsets"]], r["key_id"]) for r in rows or []]
    check("query retention_records_of_chain", got == [(202611, [3, 5], "k1")], str(rows))

    # Deleting one tenant's month takes it out of the events and the rollups.
    for table in ("audit_events", "audit_counts_per_minute", "audit_failures_per_minute"):
        # Production waits for the background mutation; the check waits here.
        run(f"retention_delete_tenant_{table}", dict(november, tenants=["globex"], **below), fetch=False,
            settings=" SETTINGS mutations_sync = 1")
        left = query_rows(sess, f"SELECT count() AS n FROM {table} WHERE tenant_id = 'globex'")
        check(f"query retention_delete_tenant_{table}", left == [{"n": "0"}] or left == [{"n": 0}], str(left))
    # Dropping the month empties every monthly table.
    for table in ("audit_events", "audit_counts_per_minute", "audit_failures_per_minute"):
        run(f"retention_drop_month_{table}", {"partition": 202611}, fetch=False)
        left = query_rows(sess, f"SELECT count() AS n FROM {table}")
        check(f"query retention_drop_month_{table}", left in ([{"n": "0"}], [{"n": 0}]), str(left))
    check("every retention statement was checked", not statements, str(list(statements)))


# The search templates' values: a window over the last 24 h, the snapshot
# at NOW_MS, and the values of the representative compiled query
# `(outcome:failure OR outcome:denied) -actor.type:service action:user.*
# metadata.k:v mall` (server/src/store/search.rs).
SEARCH_VALUES = {
    "snapshot_ms": NOW_MS,
    "since_ms": NOW_MS - HOUR_MS,
    "q_outcome_1": "failure",
    "q_outcome_2": "denied",
    "q_actor_type": "service",
    "q_action_regex": "^user\\..*$",
    "q_metadata_key": "k",
    "q_metadata_value": "v",
    "q_text": "mall",
    "cursor_ms": NOW_MS - 30 * 60_000,
    "cursor_id": "e-3",
    "cursor_tenant": "acme",
    "cursor_hash": row_hash(*ROWS[3]),
    # A page by actor A to Z after (alice, e-3's time and identity).
    "cursor_actor": "alice",
    "other_tenant": "globex",
    "facet_values": 10,
    "event_id": "e-1",
    "bucket_ms": HOUR_MS,
    "bucket_offset_ms": 0,
    "slot_ms": 15 * 60_000,
    # The live tail's position: partition 0 of the admin topic from offset
    # 0 on (every row here is at offset 0 of partition 0).
    "tail_offsets": [0, 0],
    "tail_keys": ["", "admin/0"],
    # The writers have committed past every row here (offset 0) in the
    # admin topic's partition 0; of other partitions, nothing.
    "committed_offsets": [0, 1],
    "committed_keys": ["", "admin/0"],
    # The metadata columns a page shows (every row here carries k=v).
    "metadata_keys": ["k"],
}


def _address_patterns():
    """The address patterns of app/src/query/compile.rs, written again here
    from their description, so a mistake in either shows."""
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    ipv4 = "^(?:" + octet + "\\.){3}" + octet + "$"
    group = "[0-9A-Fa-f]{1,4}"
    groups = lambda n: ":".join([group] * n)  # noqa: E731
    forms = [groups(8)] + [f"{groups(a)}::{groups(b)}" for a in range(8) for b in range(8 - a)]
    return ipv4, "^(?:" + "|".join(forms) + ")$"


# `ip:203.0.113.0/25 OR ip:2001:db8::/32` (catalogue NETWORK_QUERY): every
# row's address, 203.0.113.1, is in the first.
SEARCH_VALUES.update(
    q_ipv4_regex=_address_patterns()[0],
    q_ipv4_fallback="0.0.0.0",
    q_ipv4_first=0xCB007100,
    q_ipv4_last=0xCB00717F,
    q_ipv6_regex=_address_patterns()[1],
    q_ipv6_fallback="::",
    q_ipv6_first="20010DB8" + "0" * 24,
    q_ipv6_last="20010DB8" + "F" * 24,
)


def search_answer(name, rows):
    """(what the search template answered, what it should), or None."""
    ids = lambda: [r["event_id"] for r in rows]  # noqa: E731
    if name == "search_page":
        # No metadata columns: the hits carry none.
        if any(r["hit_metadata"] for r in rows):
            return [r["hit_metadata"] for r in rows], []
        return ids(), ["e-3", "e-2"]
    if name == "search_page_within_tenants":
        # acme and globex: every event, each once.
        return ids(), ["e-3", "e-2", "e-1"]
    if name == "search_page_for_tenant_after_cursor":
        # After e-3 in acme: e-1, once although it is stored twice.
        return ids(), ["e-1"]
    # Sorted pages (`sort=`): by time oldest first; by resource Z to A,
    # where both rows share `user/u-1` and the newest comes first.
    if name == "search_page_oldest_first":
        return ids(), ["e-2", "e-3"]
    if name == "search_page_by_resource_desc":
        return ids(), ["e-3", "e-2"]
    # After (alice, e-3) by actor in acme: alice's older e-1 (once though
    # stored twice), then mallory's e-3.
    if name == "search_page_by_actor_for_tenant_after_cursor":
        return ids(), ["e-1", "e-3"]
    if name == "search_export_by_outcome":
        # denied before failure.
        return ids(), ["e-2", "e-3"]
    if name == "search_count":
        return [int(r["events"]) for r in rows], [3]
    # Hits carry the entries of the metadata keys asked for, and only them.
    if name == "search_page_with_metadata":
        got = [(r["event_id"], r["hit_metadata"]) for r in rows]
        return got, [("e-3", [["k", "v"]]), ("e-2", [["k", "v"]])]
    if name == "search_tail_with_metadata_for_tenant":
        got = [(r["event_id"], r["hit_metadata"], int(r["kafka_offset"])) for r in rows]
        return got, [("e-3", [["k", "v"]], 0)]
    # Metadata keys and values as facets: e-1, stored twice, counts once.
    if name == "search_metadata_keys_for_tenant":
        return [(r["key"], int(r["events"])) for r in rows], [("k", 2)]
    if name == "search_metadata_keys":
        return [(r["key"], int(r["events"])) for r in rows], [("k", 3)]
    if name == "search_metadata_values_for_tenant":
        return [(r["value"], int(r["events"])) for r in rows], [("v", 2)]
    # "Count by" a key: acme's events with k, e-1 once; none lacks it.
    if name == "search_metadata_key_events_for_tenant":
        return [int(r["events"]) for r in rows], [2]
    # Count by each facet field: acme's two events of the last 24 h (e-1,
    # stored twice, counts once), most first, ties by value.
    count_by = {
        "category": [("admin", 2)],
        "action": [("user.update", 2)],
        "outcome": [("failure", 1), ("success", 1)],
        "actor_id": [("alice", 1), ("mallory", 1)],
        "resource_type": [("user", 2)],
        "source_service": [("iam", 2)],
        "actor_ip": [("203.0.113.1", 2)],
    }
    for column, want in count_by.items():
        if name == f"search_count_by_{column}_for_tenant":
            return [(r["value"], int(r["events"])) for r in rows], want
    if name == "search_count_in_networks":
        return [int(r["events"]) for r in rows], [3]
    if name == "search_newer_for_tenant":
        return [int(r["events"]) for r in rows], [1]
    if name == "search_tail_for_tenant":
        # acme's arrivals of the last hour: e-3, with where it is in Kafka.
        got = [(r["event_id"], int(r["kafka_partition"]), int(r["kafka_offset"])) for r in rows]
        return got, [("e-3", 0, 0)]
    if name == "search_facets_for_tenant":
        got = [(r["field"], r["value"], int(r["events"])) for r in rows]
        return got, [
            ("action", "user.update", 2),
            ("actor_id", "alice", 1),
            ("actor_id", "mallory", 1),
            ("actor_ip", "203.0.113.1", 2),
            ("category", "admin", 2),
            ("outcome", "failure", 1),
            ("outcome", "success", 1),
            ("resource_type", "user", 2),
            ("source_service", "iam", 2),
        ]
    if name == "event_detail":
        got = [
            (r["event_id"], r["tenant_id"], int(r["received_at"]), r["metadata.key"], r["metadata.value"],
             int(r["schema_id"]), int(r["kafka_partition"]), int(r["kafka_offset"]))
            for r in rows
        ]
        return got, [("e-1", "acme", NOW_MS - 2 * HOUR_MS + 5, ["k"], ["v"], 1, 0, 0)]
    # The dashboard's panels: hour buckets (10:00 and 11:00), each event
    # once although e-1 is stored twice.
    bucket_ms = lambda r: int(r["bucket_ms"])  # noqa: E731
    if name == "dashboard_series_by_category":
        got = [(bucket_ms(r), r["key"], int(r["events"])) for r in rows]
        return got, [(NOW_MS - 2 * HOUR_MS, "admin", 1), (NOW_MS - HOUR_MS, "admin", 2)]
    if name == "dashboard_series_by_outcome_for_tenant":
        got = [(bucket_ms(r), r["key"], int(r["events"])) for r in rows]
        return got, [(NOW_MS - 2 * HOUR_MS, "success", 1), (NOW_MS - HOUR_MS, "failure", 1)]
    # Both lists and both totals in one row; a list's entries are
    # (actor, count) with the count as JSON text (a 64-bit integer).
    def top_actors(r):
        pairs = lambda key: [(actor, int(n)) for actor, n in r[key]]  # noqa: E731
        return (int(r["total"]), int(r["failed"]), pairs("by_events"), pairs("by_failures"))
    if name == "dashboard_top_actors":
        return [top_actors(r) for r in rows], [(2, 2, [("mallory", 2)], [("mallory", 2)])]
    if name == "dashboard_top_actors_for_tenant":
        # e-1 is stored twice and counts once; alice never failed.
        return [top_actors(r) for r in rows], [(2, 1, [("alice", 1), ("mallory", 1)], [("mallory", 1)])]
    # Panels 4-9 over the last 24 h (e-old is before it): one row per list
    # (its position in the panel's fields), each with the total (every
    # matching event, with or without a value) and the list.
    tops = {
        "dashboard_top_failure_sources": [(0, 3, [("203.0.113.1", 3)]), (1, 3, [("iam", 3)])],
        "dashboard_top_privileged": [(0, 3, [("user.update", 3)]), (1, 3, [("mallory", 2), ("alice", 1)])],
        "dashboard_top_tenants": [(0, 3, [("acme", 2), ("globex", 1)])],
    }
    if name in tops:
        got = [(int(r["field"]), int(r["total"]), [(v, int(n)) for v, n in r["rows"]]) for r in rows]
        return got, tops[name]
    def new_actors(r):
        return (int(r["total"]), [(t, a, int(first), int(n)) for t, a, first, n in r["rows"]])
    if name == "dashboard_new_actors_for_tenant":
        # alice acted in acme before the window (e-old): not new.
        return [new_actors(r) for r in rows], [(1, [("acme", "mallory", NOW_MS - 30 * 60_000, 1)])]
    if name == "dashboard_new_actors":
        # Per tenant: globex's mallory is new to globex too.
        return [new_actors(r) for r in rows], [(2, [
            ("acme", "mallory", NOW_MS - 30 * 60_000, 1),
            ("globex", "mallory", NOW_MS - HOUR_MS, 1),
        ])]
    if name == "dashboard_heatmap_quarters":
        # e-1 is stored twice and counts once.
        got = [(int(r["quarter_ms"]), int(r["events"])) for r in rows]
        return got, [(NOW_MS - 2 * HOUR_MS, 1), (NOW_MS - HOUR_MS, 1), (NOW_MS - 30 * 60_000, 1)]
    if name in ("dashboard_timeline", "dashboard_timeline_for_tenant"):
        # Per quarter hour, category and outcome; e-1 is stored twice and
        # counts once; globex's e-2 only without a tenant.
        got = sorted((int(r["slot_ms"]), r["category"], r["outcome"], int(r["events"])) for r in rows)
        expected = [(NOW_MS - 2 * HOUR_MS, "admin", "success", 1),
                    (NOW_MS - HOUR_MS, "admin", "denied", 1),
                    (NOW_MS - 30 * 60_000, "admin", "failure", 1)]
        if name == "dashboard_timeline_for_tenant":
            expected = [e for e in expected if e[2] != "denied"]
        return got, expected
    if name in ("search_export", "search_export_csv"):
        got = [(r["event_id"], r["occurred_at_utc"], r["metadata_key"]) for r in rows]
        return got, [("e-3", "2026-11-23 11:30:00.000", ["k"]), ("e-2", "2026-11-23 11:00:00.000", ["k"])]
    return None


EVENT_COLUMNS = (
    "event_id, tenant_id, occurred_at, received_at, category, action, outcome, actor_id, actor_type, "
    "actor_ip, actor_user_agent, resource_type, resource_id, source_service, request_id, "
    "`metadata.key`, `metadata.value`, schema_id, kafka_partition, kafka_offset"
)


def check_redaction(sess, statements, check):
    """Governed redaction (migration 0022): request versions (the newest
    wins), records read once however often stored, the rows a request
    covers, one identity deleted, and the rollups of a minute deleted and
    rebuilt from the raw table to the same counts, the erased actor gone
    from the failures rollup. Runs on the rows inserted by main(), before
    retention removes them."""
    q = dict(statements)

    def run(name, values, fetch=True, settings=""):
        stmt = q.pop(name, None)
        if stmt is None:
            check(f"query {name} is in the catalogue", False)
            return []
        sql = bind(stmt["sql"], stmt["params"], values) + settings
        try:
            return query_rows(sess, sql) if fetch else sess.query(sql)
        except Exception as e:  # noqa: BLE001
            check(f"query {name}", False, str(e))
            return None

    def request(rid, version, executed_at, subject):
        return (f"('{rid}', 'acme', '{subject}', ['e-3'], ['h3'], ['actor.id'], 'gdpr', 'alice', 'a1', 1, "
                f"'bob', 'b1', 2, {executed_at}, {version})")

    def record(event_id, offset, hash_):
        return (f"('r1', 'acme', '{event_id}', 0, {offset}, 'h', '{hash_}', ['actor.id'], 'alice', 'bob', 'gdpr', "
                f"3, 'k', 's')")

    # One INSERT per version, as Attest stores them: current releases apply
    # the table's replacing merge to each inserted block, so versions sent
    # in one block would arrive as one row.
    for version in [request("r1", 1, 0, "mallory"), request("r1", 2, 3, ""), request("r2", 1, 0, "eve")]:
        sess.query("INSERT INTO attest_redaction_requests VALUES " + version)
    sess.query("INSERT INTO attest_redaction_records VALUES " + ", ".join(
        [record("e-1", 0, "x1"), record("e-1", 0, "x1"), record("e-2", 5, "x2")]))
    rows = run("redaction_requests", {})
    got = [(r["request_id"], int(r["executed_at"]), r["subject_actor_id"]) for r in rows or []]
    check("query redaction_requests (the newest version of each)", got == [("r1", 3, ""), ("r2", 0, "eve")], str(got))
    rows = run("redaction_request", {"request_id": "r1"})
    got = [(r["request_id"], int(r["version"])) for r in rows or []]
    check("query redaction_request", got == [("r1", 2)], str(got))
    # Approvals: one stored twice (collapses), another of the same request,
    # one of another request.
    for approval in ["('r1', 2, 'b1', 'bob')", "('r1', 2, 'b1', 'bob')", "('r1', 1, 'c1', 'carol')",
                     "('r2', 1, 'd1', 'dave')"]:
        sess.query("INSERT INTO attest_redaction_approvals VALUES " + approval)
    rows = run("redaction_approvals", {"request_id": "r1"})
    got = [(r["approved_by"], int(r["approved_at"])) for r in rows or []]
    check("query redaction_approvals (every stored approval, once)", got == [("carol", 1), ("bob", 2)], str(got))
    rows = run("redaction_records_of_events", {"tenant": "acme", "event_ids": ["e-1", "e-9"]})
    got = [(r["event_id"], r["redacted_hash"]) for r in rows or []]
    check("query redaction_records_of_events (once each)", got == [("e-1", "x1")], str(got))
    rows = run("redaction_records_in_range", {"partition": 0, "from_offset": 0, "to_offset": 3})
    got = [r["event_id"] for r in rows or []]
    check("query redaction_records_in_range", got == ["e-1"], str(got))
    rows = run("redaction_rows_of_events", {"tenant": "acme", "event_ids": ["e-1", "e-3", "e-2"]})
    got = sorted({r["event_id"] for r in rows or []})
    check("query redaction_rows_of_events (the tenant's only)", got == ["e-1", "e-3"], str(got))
    rows = run("redaction_rows_of_actor", {"tenant": "acme", "actor_id": "mallory", "limit": 10})
    got = [r["event_id"] for r in rows or []]
    check("query redaction_rows_of_actor", got == ["e-3"], str(got))

    def counts():
        total = query_rows(sess, "SELECT uniqExactMerge(events) AS n FROM audit_counts_per_minute WHERE tenant_id = 'acme'")
        actors = query_rows(sess, "SELECT actor_id, uniqExactMerge(events) AS n FROM audit_failures_per_minute "
                                  "WHERE tenant_id = 'acme' GROUP BY actor_id ORDER BY actor_id")
        return int(total[0]["n"]), [(r["actor_id"], int(r["n"])) for r in actors]

    before = counts()
    # e-3 (mallory's failure) redacted: the redacted row in, the original out.
    e3 = [r for r in ROWS if r[0] == "e-3"][0]
    sess.query(
        "INSERT INTO audit_events (event_id, tenant_id, occurred_at, received_at, category, action, outcome, "
        "actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, source_service, "
        "request_id, `metadata.key`, `metadata.value`, schema_id, kafka_partition, kafka_offset) VALUES "
        f"('e-3', 'acme', {e3[2]}, {e3[2] + 5}, 'admin', 'user.update', 'failure', '[redacted]', 'user', "
        "'203.0.113.1', '', 'user', 'u-1', 'iam', '', ['k'], ['v'], 1, 0, 0)")
    identities = [f"e-3/{row_hash(*e3)}", "e-1/" + "0" * 64]  # the second names no stored identity
    run("redaction_delete_rows", {"tenant": "acme", "identities": identities}, fetch=False,
        settings=" SETTINGS mutations_sync = 1")
    left = query_rows(sess, "SELECT DISTINCT event_id, actor_id FROM audit_events WHERE event_id IN ('e-1', 'e-3') "
                            "ORDER BY event_id")
    check("query redaction_delete_rows (those identities only)",
          left == [{"event_id": "e-1", "actor_id": "alice"}, {"event_id": "e-3", "actor_id": "[redacted]"}], str(left))
    rows = run("redaction_pending_mutations", {"table": "audit_events"})
    check("query redaction_pending_mutations", rows is not None and len(rows) == 1, str(rows))
    minute_s = e3[2] // 60_000 * 60
    for table in ("audit_counts_per_minute", "audit_failures_per_minute"):
        run(f"redaction_delete_rollup_{table}", {"tenant": "acme", "minutes_s": [minute_s]}, fetch=False,
            settings=" SETTINGS mutations_sync = 1")
    for table in ("audit_counts_per_minute", "audit_failures_per_minute"):
        run(f"redaction_rebuild_rollup_{table}", {"tenant": "acme", "from_ms": minute_s * 1000,
                                                  "until_ms": minute_s * 1000 + 60_000,
                                                  "minutes": [minute_s // 60]}, fetch=False)
    after = counts()
    check("rollups rebuilt after a redaction count the same", after[0] == before[0], f"{before} {after}")
    check("the erased actor is gone from the failures rollup",
          ("mallory", 1) in before[1] and all(a != "mallory" for a, _ in after[1]) and ("[redacted]", 1) in after[1],
          f"{before} {after}")
    run("redaction_optimize_requests", {}, fetch=False)
    versions = query_rows(sess, "SELECT count() AS n FROM attest_redaction_requests WHERE request_id = 'r1'")
    check("query redaction_optimize_requests (old versions merged away)", int(versions[0]["n"]) == 1, str(versions))
    check("every redaction statement was checked", not q, str(list(q)))


def check_identity(sess, catalogue, check):
    """An upgrade through 0009 on a table that holds a conflict (two events
    with one id, time and category, not merged yet) and an exact re-send:
    both events survive the rebuild and a full merge, the re-send counts
    once, the rollups rebuilt from the table agree with it, and the views
    feed the rollups from the rebuilt table afterwards."""
    sess.query("CREATE DATABASE IF NOT EXISTS identity_check")
    sess.query("USE identity_check")

    def apply(migrations):
        for m in migrations:
            for statement in m["statements"]:
                sess.query(statement)

    def insert(event_id, actor, service, offset):
        sess.query(
            f"INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES ({literal(event_id)}, 'acme', {NOW_MS}, "
            f"{NOW_MS + offset}, 'data_modification', 'invoice.x', 'failure', {literal(actor)}, 'user', '', '', "
            f"'invoice', '7731', {literal(service)}, '', [], [], 1, 0, {offset})"
        )

    def counts():
        rows = query_rows(sess, "SELECT actor_id, source_service FROM audit_events ORDER BY actor_id")
        stored = [(r["actor_id"], r["source_service"]) for r in rows]
        rollup = query_rows(sess, "SELECT uniqExactMerge(events) AS n FROM audit_counts_per_minute")
        failures = query_rows(sess, "SELECT uniqExactMerge(events) AS n FROM audit_failures_per_minute")
        return stored, int(rollup[0]["n"]), int(failures[0]["n"])

    try:
        apply([m for m in catalogue["migrations"] if m["version"] < 9])
        # Unmerged, as a conflict stays until the old key folds it away.
        sess.query("SYSTEM STOP MERGES audit_events")
        insert("inv-7731", "mallory", "billing", 1)
        insert("inv-7731", "alice", "sso", 2)
        insert("inv-7731", "alice", "sso", 3)  # the exact re-send
        apply([m for m in catalogue["migrations"] if m["version"] >= 9])
        sess.query("OPTIMIZE TABLE audit_events FINAL")
        both = [("alice", "sso"), ("mallory", "billing")]
        got = counts()
        check("identity: the rebuild keeps both events and the rollups count them", got == (both, 2, 2), str(got))
        insert("inv-7731", "eve", "sso", 4)
        insert("inv-7731", "eve", "sso", 5)
        sess.query("OPTIMIZE TABLE audit_events FINAL")
        got = counts()
        want = (both[:1] + [("eve", "sso")] + both[1:], 3, 3)
        check("identity: the views feed the rebuilt rollups, once per event", got == want, str(got))
        hashes = query_rows(sess, "SELECT DISTINCT actor_id, content_hash FROM audit_events WHERE actor_id = 'eve'")
        want = documented_hash(
            ["inv-7731", "acme", str(NOW_MS), "data_modification", "invoice.x", "failure", "eve", "user",
             "", "", "invoice", "7731", "sso", ""], [])
        check("identity: content_hash is the documented encoding", hashes == [{"actor_id": "eve", "content_hash": want}], str(hashes))
        key = query_rows(sess, "SELECT sorting_key FROM system.tables WHERE database = 'identity_check' AND name = 'audit_events'")
        check("identity: content_hash ends the sorting key", key and key[0]["sorting_key"].endswith("content_hash"), str(key))
    except Exception as e:  # noqa: BLE001
        check("identity: upgrade through 0009", False, str(e))


def check_saved_searches(sess, statements, check):
    """Save two searches, delete one: the list shows the other, by name."""
    insert, listing = statements.get("saved_search_insert"), statements.get("saved_searches")
    if insert is None or listing is None:
        check("saved search statements are in the catalogue", False, str(list(statements)))
        return
    rows = [
        dict(search_id="s-1", owner="o1", name="zeta", params='{"q":"a"}', created_at=1, deleted=0, version=1),
        dict(search_id="s-2", owner="o1", name="alpha", params='{"q":"b"}', created_at=2, deleted=0, version=1),
        dict(search_id="s-3", owner="o2", name="theirs", params='{"q":"c"}', created_at=3, deleted=0, version=1),
        dict(search_id="s-1", owner="o1", name="", params="", created_at=0, deleted=1, version=2),
    ]
    try:
        for row in rows:
            sess.query(bind(insert["sql"], insert["params"], row))
        got = query_rows(sess, bind(listing["sql"], listing["params"], {"owner": "o1", "limit": 100}))
    except Exception as e:  # noqa: BLE001
        check("query saved_searches", False, str(e))
        return
    got = [(r["search_id"], r["name"], r["params"], int(r["created_at"])) for r in got]
    check("query saved_search_insert and saved_searches (one owner's)", got == [("s-2", "alpha", '{"q":"b"}', 2)], str(got))


def check_sign_outs(sess, statements, check):
    """A signed-out session is listed until it would have expired."""
    insert, listing = statements.get("console_sign_out"), statements.get("console_signed_out_sessions")
    if insert is None or listing is None:
        check("sign-out statements are in the catalogue", False, str(list(statements)))
        return
    try:
        for sid, expires in (("live", NOW_MS + HOUR_MS), ("over", NOW_MS - 1)):
            row = dict(session_id=sid, access_id="c1", signed_out_at=NOW_MS - 5, expires_at=expires)
            sess.query(bind(insert["sql"], insert["params"], row))
        got = query_rows(sess, bind(listing["sql"], listing["params"], {"now_ms": NOW_MS}))
    except Exception as e:  # noqa: BLE001
        check("query console sign-outs", False, str(e))
        return
    check("query console_sign_out and console_signed_out_sessions", [r["session_id"] for r in got] == ["live"], str(got))


def check_migration_lock(sess, statements, check):
    """The migration lock: a second CREATE is refused with TABLE_ALREADY_EXISTS
    (code 57, which the server waits on), the heartbeat and ages read back."""
    need = ("migration_lock_create", "migration_lock_beat", "migration_lock_holder",
            "migration_lock_created", "migration_table_exists")
    if any(n not in statements for n in need):
        check("migration lock statements are in the catalogue", False, str(list(statements)))
        return
    create = statements["migration_lock_create"]["sql"]
    try:
        sess.query(create)
        try:
            sess.query(create)
            refused = "a second CREATE succeeded"
        except Exception as e:  # noqa: BLE001
            refused = str(e)
        beat = statements["migration_lock_beat"]
        sess.query(bind(beat["sql"], beat["params"], {"holder": "pid 1 / x"}))
        holder = query_rows(sess, statements["migration_lock_holder"]["sql"])
        created = query_rows(sess, statements["migration_lock_created"]["sql"])
        exists = statements["migration_table_exists"]
        found = query_rows(sess, bind(exists["sql"], exists["params"], {"table": "attest_migration_lock"}))
        sess.query("DROP TABLE IF EXISTS attest_migration_lock")
    except Exception as e:  # noqa: BLE001
        check("migration lock statements", False, str(e))
        return
    check("a second CREATE of the migration lock is refused with code 57", "Code: 57" in refused, refused)
    check("migration_lock_holder reads the heartbeat",
          len(holder) == 1 and holder[0]["holder"] == "pid 1 / x" and 0 <= int(holder[0]["age_s"]) < 60, str(holder))
    check("migration_lock_created reads the lock's age", len(created) == 1 and 0 <= int(created[0]["age_s"]) < 60, str(created))
    check("migration_table_exists finds the lock", found == [{"name": "attest_migration_lock"}], str(found))


def check_roles(sess, statements, check):
    """A grant with an admin role row reads as admin; one without reads ''."""
    insert, listing = statements.get("console_role"), statements.get("console_access")
    if insert is None or listing is None:
        check("role statements are in the catalogue", False, str(list(statements)))
        return
    access_insert = (
        "INSERT INTO attest_console_access (access_id, name, tenants, all_tenants, secret_sha256, "
        "created_at, revoked_at, version) VALUES "
    )
    try:
        sess.query(access_insert + "('r1', 'oncall', [], 1, 'ef56', 50, 0, 1)")
        sess.query(bind(insert["sql"], insert["params"], dict(access_id="r1", role="analyst", version=1)))
        sess.query(bind(insert["sql"], insert["params"], dict(access_id="r1", role="admin", version=2)))
        got = query_rows(sess, bind(listing["sql"], listing["params"], {}))
    except Exception as e:  # noqa: BLE001
        check("query console_role", False, str(e))
        return
    roles = {r["access_id"]: r["role"] for r in got}
    check("query console_role and console_access (the newest role; none is '')", roles.get("r1") == "admin" and roles.get("c1") == "", str(got))


def check_alerts(sess, statements, check):
    """Alerts: a fired and resolved alert, one still firing (its row written
    twice), delivery attempts and two saved rule versions read back as the
    alerts page and the evaluator read them."""
    names = ("alert_change_insert", "alert_firing", "alert_history", "alert_delivery_insert",
             "alert_deliveries", "alert_rules_insert", "alert_rules")
    missing = [n for n in names if n not in statements]
    if missing:
        check("alert statements are in the catalogue", False, str(missing))
        return
    q = statements
    try:
        for alert_id, rule, state, at in (("a1", "clickhouse_down", "firing", 10), ("a1", "clickhouse_down", "resolved", 20),
                                          ("a2", "writer_lag", "firing", 30), ("a2", "writer_lag", "firing", 30)):
            row = dict(alert_id=alert_id, rule=rule, state=state, summary=f"{rule} {state}", at_ms=at)
            sess.query(bind(q["alert_change_insert"]["sql"], q["alert_change_insert"]["params"], row))
        firing = query_rows(sess, bind(q["alert_firing"]["sql"], q["alert_firing"]["params"], {}))
        history = query_rows(sess, bind(q["alert_history"]["sql"], q["alert_history"]["params"], {"limit": 10}))
        for attempt, status, error in ((1, 0, "cannot connect to the receiver"), (2, 200, "")):
            row = dict(subject="alert:a2:firing", webhook="ops", attempt=attempt, at_ms=30 + attempt,
                       status=status, error=error, duration_ms=5)
            sess.query(bind(q["alert_delivery_insert"]["sql"], q["alert_delivery_insert"]["params"], row))
        deliveries = query_rows(sess, bind(q["alert_deliveries"]["sql"], q["alert_deliveries"]["params"], {"limit": 10}))
        for settings, by, at in (('{"writer_lag":{"threshold_s":5}}', "alice", 100), ('{"writer_lag":{"threshold_s":9}}', "bob", 200)):
            row = dict(settings=settings, changed_by=by, changed_ms=at)
            sess.query(bind(q["alert_rules_insert"]["sql"], q["alert_rules_insert"]["params"], row))
        rules = query_rows(sess, bind(q["alert_rules"]["sql"], q["alert_rules"]["params"], {}))
    except Exception as e:  # noqa: BLE001
        check("alert statements", False, str(e))
        return
    got = [(r["alert_id"], r["rule"], r["summary"], int(r["since_ms"])) for r in firing]
    check("query alert_firing (firing and not resolved, a doubled row once)", got == [("a2", "writer_lag", "writer_lag firing", 30)], str(got))
    got = [(r["alert_id"], r["state"], int(r["at_ms"])) for r in history]
    check("query alert_history (newest first, each change once)", got == [("a2", "firing", 30), ("a1", "resolved", 20), ("a1", "firing", 10)], str(got))
    got = [(int(r["attempt"]), int(r["status"]), r["error"]) for r in deliveries]
    check("query alert_deliveries (newest first)", got == [(2, 200, ""), (1, 0, "cannot connect to the receiver")], str(got))
    got = [(r["changed_by"], r["settings"]) for r in rules]
    check("query alert_rules (the newest version)", got == [("bob", '{"writer_lag":{"threshold_s":9}}')], str(got))


def check_detections(sess, statements, bound, check):
    """Detections: a rule edited and another deleted read back as their
    newest versions; a firing written twice reads once; where a value may
    next fire; the deliveries of detections only; and the per-minute
    counts of the representative query, per group-by field."""
    names = ("detection_rule_insert", "detection_rules", "detection_rules_for_tenant", "detection_rule",
             "detection_firing_insert", "detection_firings", "detection_firings_for_tenant",
             "detection_until", "detection_firing_exists", "detection_deliveries",
             "detection_counts_by_actor", "detection_counts_by_ip", "detection_counts_by_resource",
             "detection_counts_by_service")
    missing = [n for n in names if n not in statements]
    if missing:
        check("detection statements are in the catalogue", False, str(missing))
        return
    q = statements

    def run(name, values, fetch=True):
        sql = bind(q[name]["sql"], q[name]["params"], values)
        return query_rows(sess, sql) if fetch else sess.query(sql)

    try:
        for rule_id, tenant, name, threshold, deleted, at in (
                ("r1", "acme", "Brute force", 10, 0, 100), ("r1", "acme", "Brute force v2", 12, 0, 200),
                ("r2", "globex", "Gone", 5, 0, 100), ("r2", "globex", "Gone", 5, 1, 300),
                ("r3", "globex", "Globex", 3, 0, 100)):
            run("detection_rule_insert", dict(rule_id=rule_id, tenant=tenant, name=name, query="outcome:failure",
                                              group_by="actor", threshold=threshold, window_minutes=5, enabled=1,
                                              deleted=deleted, changed_by="alice", changed_ms=at), fetch=False)
        rules = run("detection_rules", {"limit": 10})
        acme_rules = run("detection_rules_for_tenant", {"tenant": "acme", "limit": 10})
        one = run("detection_rule", {"rule_id": "r1"})
        gone = run("detection_rule", {"rule_id": "r2"})
        for firing_id, tenant, value, until in (("f1", "acme", "mallory", 600), ("f1", "acme", "mallory", 600),
                                               ("f2", "globex", "gus", 900)):
            run("detection_firing_insert", dict(firing_id=firing_id, rule_id="r1", rule_name="Brute force",
                                                tenant=tenant, query="outcome:failure", group_by="actor",
                                                group_value=value, window_from_ms=100, window_to_ms=299,
                                                until_ms=until, events=12, threshold=10, fired_ms=until), fetch=False)
        firings = run("detection_firings", {"from_ms": 0, "to_ms": 1000, "limit": 10})
        acme_firings = run("detection_firings_for_tenant", {"from_ms": 0, "to_ms": 1000, "tenant": "acme", "limit": 10})
        outside = run("detection_firings", {"from_ms": 300, "to_ms": 1000, "limit": 10})
        until = run("detection_until", {"tenant": "acme", "rule_id": "r1", "since_ms": 0})
        exists = run("detection_firing_exists", {"tenant": "acme", "firing_id": "f1"})
        not_theirs = run("detection_firing_exists", {"tenant": "globex", "firing_id": "f1"})
        sess.query("INSERT INTO attest_webhook_deliveries (subject, webhook, attempt, at_ms, status, error, duration_ms) "
                   "VALUES ('detection:f1', 'soc', 1, 50, 200, '', 3), ('alert:a1:firing', 'ops', 1, 60, 200, '', 3)")
        deliveries = run("detection_deliveries", {"subject_like": "detection:%", "limit": 10})
        counts = {g: run(f"detection_counts_by_{g}", bound) for g in ("actor", "ip", "resource", "service")}
    except Exception as e:  # noqa: BLE001
        check("detection statements", False, str(e))
        return
    got = [(r["rule_id"], r["name"], int(r["threshold"])) for r in rules]
    check("query detection_rules (newest versions, deleted left out)", got == [("r1", "Brute force v2", 12), ("r3", "Globex", 3)], str(got))
    got = [r["rule_id"] for r in acme_rules]
    check("query detection_rules_for_tenant", got == ["r1"], str(got))
    check("query detection_rule", [r["name"] for r in one] == ["Brute force v2"] and gone == [], str((one, gone)))
    got = [r["firing_id"] for r in firings]
    check("query detection_firings (a doubled row once, newest first)", got == ["f2", "f1"], str(got))
    got = [r["firing_id"] for r in acme_firings]
    check("query detection_firings_for_tenant", got == ["f1"], str(got))
    check("query detection_firings (window outside the range)", outside == [], str(outside))
    got = [(r["group_value"], int(r["next_ms"])) for r in until]
    check("query detection_until", got == [("mallory", 600)], str(got))
    check("query detection_firing_exists", int(exists[0]["n"]) == 2 and int(not_theirs[0]["n"]) == 0, str((exists, not_theirs)))
    got = [r["subject"] for r in deliveries]
    check("query detection_deliveries (detections only)", got == ["detection:f1"], str(got))
    minute = (NOW_MS - 30 * 60_000) // 60_000
    want = {"actor": "mallory", "ip": "203.0.113.1", "resource": "u-1", "service": "iam"}
    for g, rows in counts.items():
        got = [(r["group_value"], int(r["minute_n"]), int(r["events"])) for r in rows]
        check(f"query detection_counts_by_{g}", got == [(want[g], minute, 1)], str(got))

def check_alert_retention(sess, statements, check):
    """Alert history retention on the rows check_alerts left: a1 (resolved
    at 20) goes whole, a2 (still firing) stays however old; deliveries
    before the cutoff go; every rule version but the newest goes."""
    def run(name, before_ms):
        q = statements.get(name)
        if q is None:
            check(f"query {name} is in the catalogue", False)
            return False
        try:
            sess.query(bind(q["sql"], q["params"], {"before_ms": before_ms}) + " SETTINGS mutations_sync = 1")
            return True
        except Exception as e:  # noqa: BLE001
            check(f"query {name}", False, str(e))
            return False

    if run("alert_retention_changes", 1_000):
        got = sorted({r["alert_id"] for r in query_rows(sess, "SELECT alert_id FROM attest_alert_changes")})
        check("query alert_retention_changes (resolved alerts go, firing ones stay)", got == ["a2"], str(got))
    if run("alert_retention_deliveries", 32):
        got = [int(r["attempt"]) for r in query_rows(sess, "SELECT attempt FROM attest_webhook_deliveries")]
        check("query alert_retention_deliveries", got == [2], str(got))
    if run("alert_retention_rules", 10_000):
        got = [r["changed_by"] for r in query_rows(sess, "SELECT changed_by FROM attest_alert_rules")]
        check("query alert_retention_rules (the newest version stays)", got == ["bob"], str(got))


def check_trends(sess, statements, check):
    """Trend samples: written in one insert, read back per bucket (mean and
    highest) for the series asked, their days listed and dropped."""
    q = statements
    names = ("trends_insert", "trends_window", "trends_days", "trends_retention_drop_day")
    missing = [n for n in names if n not in q]
    if missing:
        check("trends statements are in the catalogue", False, str(missing))
        return
    day = 86_400_000
    try:
        for at, series, value in ((NOW_MS, "lag_s", 1.0), (NOW_MS + 10_000, "lag_s", 3.0),
                                  (NOW_MS + 20_000, "lag_s", 8.0), (NOW_MS, "spool_events", 5.0),
                                  (NOW_MS - 10 * day, "lag_s", 99.0)):
            row = dict(at_ms=at, series=series, value=value, sampler="pid 1")
            sess.query(bind(q["trends_insert"]["sql"], q["trends_insert"]["params"], row))
        values = dict(bucket_ms=20_000, from_ms=NOW_MS - HOUR_MS, to_ms=NOW_MS + HOUR_MS, series_list=["lag_s"])
        rows = query_rows(sess, bind(q["trends_window"]["sql"], q["trends_window"]["params"], values))
        days = query_rows(sess, bind(q["trends_days"]["sql"], q["trends_days"]["params"], {}))
        old_day = (NOW_MS - 10 * day) // day
        sess.query(bind(q["trends_retention_drop_day"]["sql"], q["trends_retention_drop_day"]["params"], {"day": old_day}))
        left = query_rows(sess, "SELECT count() AS n FROM attest_pipeline_samples")
    except Exception as e:  # noqa: BLE001
        check("trends statements", False, str(e))
        return
    got = [(r["series"], int(r["bucket_ms"]), float(r["mean"]), float(r["max"])) for r in rows]
    # NOW_MS is a whole hour: 20 s buckets start at NOW_MS and NOW_MS + 20 s.
    want = [("lag_s", NOW_MS, 2.0, 3.0), ("lag_s", NOW_MS + 20_000, 8.0, 8.0)]
    check("query trends_window (the series asked, per bucket)", got == want, str(got))
    got = [int(r["day"]) for r in days]
    check("query trends_days", got == [(NOW_MS - 10 * day) // day, NOW_MS // day], str(got))
    check("query trends_retention_drop_day", left in ([{"n": "4"}], [{"n": 4}]), str(left))


def check_integrity(sess, statements, check):
    """The seal's digests and leaves: a chain with a fork, rows written
    twice (a retried insert), and the events a digest names read back."""
    q = statements
    names = ("integrity_digests_after", "integrity_digest_by_hash", "integrity_digests_of_partition",
             "integrity_digests_overlapping", "integrity_digests_overlapping_event_topics",
             "integrity_partitions", "integrity_leaves", "integrity_rows",
             "integrity_digests_of_partition_since", "integrity_checkpoints")
    missing = [n for n in names if n not in q]
    if missing:
        check("integrity statements are in the catalogue", False, str(missing))
        return
    genesis = "0" * 64
    auth, login = "t.authentication", "t.login"

    def digest(h, topic, first, last, prev):
        return f"('{h}', '{topic}', 0, {first}, {last}, 1, 'r', '{prev}', 100, 'k', 's')"

    def leaf_set(h, first, entries):
        offsets = ", ".join(str(o) for o, _, _ in entries)
        tenants = ", ".join(f"'{t}'" for _, t, _ in entries)
        ids = ", ".join(f"'{e}'" for _, _, e in entries)
        leaves = ", ".join(f"toFixedString('l{i}', 32)" for i in range(len(entries)))
        return f"('{h}', '{auth}', 0, {first}, [{offsets}], [{tenants}], [{ids}], [{leaves}])"

    def run(name, values):
        return query_rows(sess, bind(q[name]["sql"], q[name]["params"], values))

    try:
        sess.query("INSERT INTO attest_integrity_digests (digest_hash, topic, partition, first_offset, last_offset, "
                   "row_count, root, prev_hash, sealed_at, key_id, signature) VALUES " + ", ".join([
                       digest("h1", auth, 0, 0, genesis), digest("h1", auth, 0, 0, genesis),
                       digest("h2", auth, 1, 9, "h1"), digest("h3", auth, 1, 20, "h1"),
                       digest("h9", login, 0, 5, genesis)]))
        sess.query("INSERT INTO attest_integrity_leaf_sets (digest_hash, topic, partition, first_offset, "
                   "kafka_offsets, tenant_ids, event_ids, leaves) VALUES " + ", ".join([
                       leaf_set("h1", 0, [(0, "acme", "e-1")]),
                       leaf_set("h2", 1, [(3, "acme", "x-3"), (5, "acme", "x-5")]),
                       leaf_set("h2", 1, [(3, "acme", "x-3"), (5, "acme", "x-5")]),
                       leaf_set("h3", 1, [(5, "acme", "x-5")])]))
        first = run("integrity_digests_after", {"topic": auth, "partition": 0, "prev_hash": genesis})
        fork = run("integrity_digests_after", {"topic": auth, "partition": 0, "prev_hash": "h1"})
        one = run("integrity_digest_by_hash", {"topic": auth, "partition": 0, "digest_hash": "h2"})
        chain = run("integrity_digests_of_partition", {"topic": auth, "partition": 0})
        # A checkpointed walk: from a checkpoint at offset 9 on, or sealed
        # since (every digest here was sealed at 100).
        since_cp = run("integrity_digests_of_partition_since",
                       {"topic": auth, "partition": 0, "from_offset": 9, "since_ms": 1000})
        since_all = run("integrity_digests_of_partition_since",
                        {"topic": auth, "partition": 0, "from_offset": 9, "since_ms": 50})
        sess.query("INSERT INTO attest_integrity_checkpoints VALUES "
                   f"('{auth}', 0, 'h1', 0, 10, 'k', 's'), ('{auth}', 0, 'h2', 9, 20, 'k', 's'), "
                   f"('{login}', 0, 'h9', 5, 20, 'k', 's')")
        checkpoints = run("integrity_checkpoints", {"topic": auth, "partition": 0})
        span = run("integrity_digests_overlapping", {"topic": auth, "partition": 0, "from_offset": 0,
                                                     "to_offset": 2})
        # The event page's read: one offset, every events topic at once.
        topics = {f"topic_{i}": t for i, t in enumerate([auth, login, "t.a", "t.b", "t.c", "t.d"], start=1)}
        at = run("integrity_digests_overlapping_event_topics", dict(topics, partition=0, from_offset=3, to_offset=3))
        parts = run("integrity_partitions", {})
        leaves = run("integrity_leaves", {"topic": auth, "partition": 0, "first_offset": 1, "digest_hash": "h2"})
        rows = run("integrity_rows", {"topic": auth, "partition": 0, "first_offset": 0, "from_offset": 0,
                                      "to_offset": 0, "digest_hash": "h1"})
        acme = query_rows(sess, "SELECT DISTINCT event_id FROM audit_events WHERE tenant_id = 'acme' "
                                "AND kafka_partition = 0 AND kafka_offset = 0 ORDER BY event_id")
    except Exception as e:  # noqa: BLE001
        check("integrity statements", False, str(e))
        return
    check("query integrity_digests_after (a chain's start, once)", [r["digest_hash"] for r in first] == ["h1"], str(first))
    check("query integrity_digests_after (a fork, furthest first)", [r["digest_hash"] for r in fork] == ["h3", "h2"], str(fork))
    check("query integrity_digest_by_hash", [r["digest_hash"] for r in one] == ["h2"], str(one))
    check("query integrity_digests_of_partition", [r["digest_hash"] for r in chain] == ["h1", "h2", "h3"], str(chain))
    check("query integrity_digests_of_partition_since (from the checkpoint)",
          [r["digest_hash"] for r in since_cp] == ["h2", "h3"], str(since_cp))
    check("query integrity_digests_of_partition_since (sealed since)",
          [r["digest_hash"] for r in since_all] == ["h1", "h2", "h3"], str(since_all))
    got = [(r["digest_hash"], int(r["last_offset"])) for r in checkpoints]
    check("query integrity_checkpoints (the chain's, newest first)", got == [("h2", 9), ("h1", 0)], str(got))
    check("query integrity_digests_overlapping (once each, by range)",
          [r["digest_hash"] for r in span] == ["h1", "h2", "h3"], str(span))
    check("query integrity_digests_overlapping_event_topics (every topic's digest at the offset)",
          [r["digest_hash"] for r in at] == ["h2", "h3", "h9"], str(at))
    got = [(r["topic"], int(r["partition"])) for r in parts]
    check("query integrity_partitions", got == [(auth, 0), (login, 0)], str(got))
    got = [([int(o) for o in r["kafka_offsets"]], r["event_ids"]) for r in leaves]
    check("query integrity_leaves (one set per digest)", got == [([3, 5], ["x-3", "x-5"])], str(got))
    got = sorted({r["event_id"] for r in rows})
    check("query integrity_rows (the leaves' tenants, the digest's offsets)",
          got == [r["event_id"] for r in acme] and len(got) > 0, str(got))
def check_procs(sess, statements, check):
    """Process status reports: each written in one insert, the newest of
    each process since a time read back, their days listed and dropped."""
    q = statements
    names = ("procs_status_insert", "procs_status_latest", "procs_status_days", "procs_status_drop_day")
    missing = [n for n in names if n not in q]
    if missing:
        check("process status statements are in the catalogue", False, str(missing))
        return
    day = 86_400_000
    row = dict(host="h1", roles=["writer"], version="0.1.0", started_at_ms=NOW_MS - HOUR_MS, interval_ms=10_000,
               writer_state="running", writer_detail="3 messages behind", last_error="Code: 252. Too many parts",
               last_insert_ms=NOW_MS - 1_000, partitions=["p.auth/0", "p.auth/1"], spool_events=0, spool_oldest_ms=0)
    try:
        for at, process, state in ((NOW_MS - 10 * day, "old", "running"), (NOW_MS - 20_000, "a", "running"),
                                   (NOW_MS - 10_000, "a", "backing_off"), (NOW_MS, "b", "paused")):
            values = dict(row, at_ms=at, process=process, writer_state=state)
            sess.query(bind(q["procs_status_insert"]["sql"], q["procs_status_insert"]["params"], values))
        rows = query_rows(sess, bind(q["procs_status_latest"]["sql"], q["procs_status_latest"]["params"],
                                     {"since_ms": NOW_MS - HOUR_MS}))
        days = query_rows(sess, bind(q["procs_status_days"]["sql"], q["procs_status_days"]["params"], {}))
        old_day = (NOW_MS - 10 * day) // day
        sess.query(bind(q["procs_status_drop_day"]["sql"], q["procs_status_drop_day"]["params"], {"day": old_day}))
        left = query_rows(sess, "SELECT count() AS n FROM attest_process_status")
    except Exception as e:  # noqa: BLE001
        check("process status statements", False, str(e))
        return
    got = [(r["process"], int(r["at_ms"]), r["writer_state"], r["partitions"], r["roles"]) for r in rows]
    want = [("a", NOW_MS - 10_000, "backing_off", ["p.auth/0", "p.auth/1"], ["writer"]),
            ("b", NOW_MS, "paused", ["p.auth/0", "p.auth/1"], ["writer"])]
    check("query procs_status_latest (the newest report of each process)", got == want, str(got))
    got = [int(r["day"]) for r in days]
    check("query procs_status_days", got == [old_day, NOW_MS // day], str(got))
    check("query procs_status_drop_day", left in ([{"n": "3"}], [{"n": 3}]), str(left))


def check_pipeline(sess, statements, check):
    """The pipeline page's questions answer, with the shapes the page reads."""
    def one(name):
        q = statements.get(name)
        if q is None:
            check(f"pipeline statement {name} is in the catalogue", False, str(list(statements)))
            return None
        try:
            return query_rows(sess, bind(q["sql"], q["params"], {}))
        except Exception as e:  # noqa: BLE001
            check(f"query {name}", False, str(e))
            return None

    rows = one("pipeline_node")
    if rows is not None:
        check("query pipeline_node", len(rows) == 1 and rows[0]["version"] and int(rows[0]["uptime_s"]) >= 0, str(rows))
    rows = one("pipeline_probe")
    if rows is not None:
        check("query pipeline_probe", rows == [{"one": 1}], str(rows))
    rows = one("pipeline_parts_limit")
    if rows is not None:
        check("query pipeline_parts_limit", len(rows) == 1 and int(rows[0]["parts_to_throw_insert"]) > 0, str(rows))
    rows = one("pipeline_parts")
    if rows is not None:
        check("query pipeline_parts (active parts per month)", any(r["partition"] == "202611" and int(r["active_parts"]) >= 1 for r in rows), str(rows))
    rows = one("pipeline_merges")
    if rows is not None:
        check("query pipeline_merges", len(rows) == 1 and int(rows[0]["merges"]) >= 0, str(rows))
    rows = one("pipeline_has_disks")
    if rows is not None:
        check("query pipeline_has_disks (a current server has system.disks)", rows == [{"tables": 1}] or int(rows[0]["tables"]) == 1, str(rows))
    rows = one("pipeline_replicas")
    if rows is not None:
        check("query pipeline_replicas (no replicated tables here)", len(rows) == 1 and int(rows[0]["tables"]) == 0, str(rows))
    rows = one("pipeline_disks")
    if rows is not None:
        check("query pipeline_disks", len(rows) >= 1 and all(int(r["total_bytes"]) >= int(r["free_bytes"]) for r in rows), str(rows))


def check_dead_letters(sess, statements, check):
    """Two admins act on one letter, another letter is discarded, a letter
    of another topic is redriven: per letter of the topic, the first action."""
    insert = statements.get("dead_letter_action_insert")
    listing = statements.get("dead_letter_actions_handled")
    if not insert or not listing:
        check("dead-letter statements are in the catalogue", False, str(list(statements)))
        return
    rows = [
        dict(dlq_topic="p.dead_letters", dlq_partition=0, dlq_offset=4, action="redriven", reason="",
             actor="alice", access_id="a1", event_id="e-4", acted_at=200),
        dict(dlq_topic="p.dead_letters", dlq_partition=0, dlq_offset=4, action="discarded", reason="late",
             actor="bob", access_id="b1", event_id="e-4", acted_at=300),
        dict(dlq_topic="p.dead_letters", dlq_partition=1, dlq_offset=2, action="discarded",
             reason="junk', 'x", actor="bob", access_id="b1", event_id="", acted_at=100),
        dict(dlq_topic="q.dead_letters", dlq_partition=0, dlq_offset=9, action="redriven", reason="",
             actor="carol", access_id="c1", event_id="e-9", acted_at=50),
    ]
    try:
        for row in rows:
            sess.query(bind(insert["sql"], insert["params"], row))
        got = query_rows(sess, bind(listing["sql"], listing["params"], {"dlq_topic": "p.dead_letters"}))
    except Exception as e:  # noqa: BLE001
        check("dead-letter statements", False, str(e))
        return
    got = [(int(r["dlq_partition"]), int(r["dlq_offset"]), r["action"], r["reason"], r["actor"], int(r["first_acted_at"])) for r in got]
    want = [(0, 4, "redriven", "", "alice", 200), (1, 2, "discarded", "junk', 'x", "bob", 100)]
    check("query dead_letter_actions_handled", got == want, str(got))

    # The pipeline page's count: handled letters within a retained range
    # only, each offset once however many rows, and the run of handled
    # offsets from the lowest (4, 5, then a gap at 6).
    within = statements.get("dead_letter_actions_within")
    if not within:
        check("dead_letter_actions_within is in the catalogue", False, str(list(statements)))
        return
    try:
        for offset in (5, 7, 12):
            sess.query(bind(insert["sql"], insert["params"], dict(rows[0], dlq_offset=offset)))
        counted = {}
        for partition, low, high in ((0, 4, 10), (0, 5, 10), (1, 3, 5)):
            got = query_rows(sess, bind(within["sql"], within["params"], {
                "dlq_topic": "p.dead_letters", "dlq_partition": partition, "low": low, "high": high}))
            counted[(partition, low)] = [(int(r["dlq_partition"]), int(r["handled"]), int(r["lowest"]), int(r["run"])) for r in got]
    except Exception as e:  # noqa: BLE001
        check("query dead_letter_actions_within", False, str(e))
        return
    want = {(0, 4): [(0, 3, 4, 2)], (0, 5): [(0, 2, 5, 1)], (1, 3): []}
    check("query dead_letter_actions_within", counted == want, str(counted))


def main(path):
    global bind
    binary = os.environ.get("ATTEST_BIN")
    if not binary:
        sys.exit("ATTEST_BIN must name the attest binary (values are bound by its own client)")
    bind = Binder(binary)
    with open(path, encoding="utf-8") as f:
        catalogue = json.load(f)
    passed, failed = 0, 0

    def check(name, condition, detail=""):
        nonlocal passed, failed
        if condition:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name} {detail}")

    with tempfile.TemporaryDirectory() as tmp:
        sess = chdb_session.Session(tmp)
        version = str(sess.query("SELECT version()", "CSV")).strip().strip('"')
        print(f"chdb {chdb.__version__}, ClickHouse {version}")
        sess.query("CREATE DATABASE IF NOT EXISTS attest")
        sess.query("USE attest")

        # Each migration twice in a row: one interrupted before the ledger
        # recorded it runs again on the next start. (The ledger never runs
        # a recorded one again, so 0004's backfill need not fit the rollups
        # that 0009 rebuilt.) As Attest does, a migration whose
        # done-when-column is there already is recorded, not run again.
        for m in catalogue["migrations"]:
            for attempt in (1, 2):
                done = m.get("done_when_column")
                if attempt == 2 and done:
                    table, column = done.split(".", 1)
                    found = query_rows(
                        sess,
                        "SELECT name FROM system.columns WHERE database = currentDatabase() "
                        f"AND table = {literal(table)} AND name = {literal(column)}")
                    check(f"migration {m['version']} {m['name']} (run 2: its column is there, recorded)", bool(found))
                    continue
                for statement in m["statements"]:
                    try:
                        sess.query(statement)
                    except Exception as e:  # noqa: BLE001 - report, do not stop
                        check(f"migration {m['version']} {m['name']} (run {attempt})", False, str(e))
                        break
                else:
                    check(f"migration {m['version']} {m['name']} (run {attempt})", True)

        types = {
            r["name"]: r["type"]
            for r in query_rows(sess, "SELECT name, type FROM system.columns WHERE table = 'audit_events' AND database = 'attest'")
        }
        check("repetitive columns are LowCardinality on a modern server", types.get("outcome") == "LowCardinality(String)", str(types.get("outcome")))
        check("DateTime64 view of occurred_at exists", types.get("occurred_at_dt64", "").startswith("DateTime64(3"), str(types.get("occurred_at_dt64")))

        indexes = query_rows(sess, "SELECT name FROM system.data_skipping_indices WHERE table = 'audit_events'")
        check("version-gated skipping index exists on a modern server", {"name": "idx_actor_id"} in indexes, str(indexes))

        values = []
        for event_id, tenant, occurred, outcome, actor in ROWS:
            values.append(
                f"({literal(event_id)}, {literal(tenant)}, {occurred}, {occurred + 5}, 'admin', 'user.update', "
                f"{literal(outcome)}, {literal(actor)}, 'user', '203.0.113.1', '', 'user', 'u-1', 'iam', '', ['k'], ['v'], 1, 0, 0)"
            )
        insert = (
            "INSERT INTO audit_events (event_id, tenant_id, occurred_at, received_at, category, action, outcome, "
            "actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, source_service, "
            "request_id, `metadata.key`, `metadata.value`, schema_id, kafka_partition, kafka_offset) VALUES "
        )
        sess.query(insert + ", ".join(values))
        # A re-delivered batch: the same row again must not show twice.
        sess.query(insert + values[1])

        hashes = query_rows(sess, "SELECT DISTINCT event_id, content_hash FROM audit_events ORDER BY event_id")
        want = sorted((r[0], row_hash(*r)) for r in ROWS)
        got = sorted((h["event_id"], h["content_hash"]) for h in hashes)
        check("content_hash is the documented encoding", got == want, str(hashes))

        dt64 = query_rows(sess, "SELECT toString(occurred_at_dt64) AS t FROM audit_events WHERE event_id = 'e-3' LIMIT 1")
        check("DateTime64 matches occurred_at", dt64 == [{"t": "2026-11-23 11:30:00.000"}], str(dt64))

        partitions = query_rows(sess, "SELECT DISTINCT partition FROM system.parts WHERE table = 'audit_events' AND active")
        check("rows are partitioned by month", {"partition": "202611"} in partitions, str(partitions))

        bound = {
            "from_s": (NOW_MS - 24 * HOUR_MS) // 1000,
            "to_s": NOW_MS // 1000,
            "from_ms": NOW_MS - 24 * HOUR_MS,
            "to_ms": NOW_MS,
            "tenant": "acme",
            "limit": 100,
            "bucket_s": HOUR_S,
            **SEARCH_VALUES,
        }
        # The re-delivered e-1 went through the rollup views twice; distinct
        # counting keeps it at one.
        bucket_10, bucket_11 = NOW_S - 2 * HOUR_S, NOW_S - HOUR_S
        expected_rollups = {
            "activity": [(bucket_10, "success", 1), (bucket_11, "denied", 1), (bucket_11, "failure", 1)],
            "activity_for_tenant": [(bucket_10, "success", 1), (bucket_11, "failure", 1)],
            "failing_actors": [("mallory", 2)],
            "failing_actors_for_tenant": [("mallory", 1)],
        }
        # An API key created, then revoked: two versions, the newer one wins.
        key_insert = (
            "INSERT INTO attest_api_keys (key_id, tenant_id, source_service, categories, secret_sha256, "
            "description, created_at, revoked_at, version) VALUES "
        )
        sess.query(key_insert + "('k1', 'acme', 'sso', ['authentication'], 'ab12', 'd', 100, 0, 1)")
        sess.query(key_insert + "('k1', 'acme', 'sso', ['authentication'], 'ab12', 'd', 100, 200, 2)")
        bound["key_id"] = "k1"
        expected_keys = {"api_keys": [("k1", 200)], "api_key_by_id": [("k1", 200)]}
        # A console access grant, then its revocation.
        access_insert = (
            "INSERT INTO attest_console_access (access_id, name, tenants, all_tenants, secret_sha256, "
            "created_at, revoked_at, version) VALUES "
        )
        sess.query(access_insert + "('c1', 'alice', ['acme'], 0, 'cd34', 100, 0, 1)")
        sess.query(access_insert + "('c1', 'alice', ['acme'], 0, 'cd34', 100, 300, 2)")
        bound["access_id"] = "c1"
        # No role row for c1: it reads '' (an analyst), like grants made before roles.
        expected_access = {"console_access": [("c1", ["acme"], 300, "")], "console_access_by_id": [("c1", ["acme"], 300, "")]}
        expected = {
            "tenants": None,
        }
        # Retention statements change data: run after every read query.
        # Saved searches write their own table: checked on their own.
        # The pipeline page's questions are about the node: checked on their own.
        writes = ("retention_", "saved_search", "console_sign", "console_role", "pipeline_", "migration_", "dead_letter", "alert_",
                  "detection_", "trends_", "integrity_", "procs_", "redaction_")
        reads = [q for q in catalogue["queries"] if not q["name"].startswith(writes)]
        check_saved_searches(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("saved_search")}, check)
        check_sign_outs(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("console_sign")}, check)
        check_migration_lock(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("migration_")}, check)
        check_dead_letters(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("dead_letter")}, check)
        retention = {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("retention_")}
        for q in reads:
            try:
                sql = bind(q["sql"], q["params"], bound)
            except KeyError as e:
                check(f"query {q['name']} has values for its parameters in this check", False, str(e))
                continue
            try:
                rows = query_rows(sess, sql)
            except Exception as e:  # noqa: BLE001
                check(f"query {q['name']}", False, str(e))
                continue
            if q["name"] in expected_rollups:
                if q["name"].startswith("activity"):
                    got = [(int(r["bucket_s"]), r["outcome"], int(r["events"])) for r in rows]
                else:
                    got = [(r["actor_id"], int(r["failures"])) for r in rows]
                check(f"query {q['name']}", got == expected_rollups[q["name"]], str(got))
            elif q["name"] in expected_access:
                got = [(r["access_id"], r["tenants"], int(r["revoked_at"]), r["role"]) for r in rows]
                check(f"query {q['name']}", got == expected_access[q["name"]], str(got))
            elif q["name"] in expected_keys:
                got = [(r["key_id"], int(r["revoked_at"])) for r in rows]
                check(f"query {q['name']}", got == expected_keys[q["name"]], str(got))
            elif q["name"] == "read_node_ping":
                check("query read_node_ping", rows == [{"1": 1}], str(rows))
            elif q["name"] == "tenants":
                got = [r["tenant_id"] for r in rows]
                check("query tenants", got == ["acme", "globex"], str(got))
            elif search_answer(q["name"], rows) is not None:
                got, want = search_answer(q["name"], rows)
                check(f"query {q['name']}", got == want, str(got))
            elif q["name"] in expected:
                got = [r["event_id"] for r in rows]
                check(f"query {q['name']}", got == expected[q["name"]], str(got))
            else:
                check(f"query {q['name']} has an expected answer in this check", False)

        # Injection-shaped input stays a value when bound.
        hostile = dict(bound, tenant="acme' OR '1'='1")
        tenant_query = next(q for q in catalogue["queries"] if q["name"] == "search_metadata_keys_for_tenant")
        rows = query_rows(sess, bind(tenant_query["sql"], tenant_query["params"], hostile))
        check("bound tenant value cannot widen the query", rows == [], str(rows))
        search_query = next(q for q in catalogue["queries"] if q["name"] == "search_page")
        for field in ("q_text", "q_outcome_1", "q_action_regex", "q_metadata_value"):
            hostile = dict(bound, **{field: "' OR 1=1 --"})
            rows = query_rows(sess, bind(search_query["sql"], search_query["params"], hostile))
            check(f"bound search value {field} cannot widen the query", len(rows) <= 2, str(rows))
        # A key no event carries (and shaped to escape its quotes): none
        # has it, so "Count by" puts every event in its "(no key)" row.
        key_events = next(q for q in catalogue["queries"] if q["name"] == "search_metadata_key_events_for_tenant")
        rows = query_rows(sess, bind(key_events["sql"], key_events["params"], dict(bound, q_metadata_key="k') OR 1=1 --")))
        check("query search_metadata_key_events_for_tenant of an absent key", [int(r["events"]) for r in rows] == [0], str(rows))

        check_pipeline(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("pipeline_")}, check)
        check_alerts(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("alert_")}, check)
        # Alert retention works on the rows check_alerts left, before the
        # detections add deliveries of their own to the same table.
        check_alert_retention(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("alert_retention_")}, check)
        check_detections(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("detection_")}, bound, check)
        check_trends(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("trends_")}, check)
        check_integrity(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("integrity_")}, check)
        check_procs(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("procs_")}, check)
        check_roles(sess, {q["name"]: q for q in catalogue["queries"] if q["name"] in ("console_role", "console_access")}, check)
        check_redaction(sess, {q["name"]: q for q in catalogue["queries"] if q["name"].startswith("redaction_")}, check)
        check_retention(sess, retention, check)
        check_identity(sess, catalogue, check)

    print(f"modern-clickhouse: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
