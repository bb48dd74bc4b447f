#!/usr/bin/env python3
"""Deletes what earlier test and benchmark runs left on the local stack.

Every integration test and benchmark gets topics and a database of its own,
named with a 32-hex-digit id (server/tests/common, server/benches). A test
that passes removes them; one that fails, panics or is interrupted does not.
On a developer's machine they pile up, and they are not harmless: after a
kill -9, Kafka recovers every partition it holds before it serves again, and
with 6,000 leftover partitions that took two minutes instead of seconds
(the chaos campaign waited for it). scripts/test.sh runs this first.

Only names that carry such an id are touched:
  topics     attest-test.<id>.*, attest-bench[-ingest|-sustained].<id>.*,
             attest-sdk.<id>.* (sdk/testing/stack.py),
             attest.chaos.<run>.* (scripts/chaos.sh drops its old databases)
  databases  attest_test_<id>, attest_sdk_<id>,
             attest_bench_[ingest_|sustained_]<id>[_bare|_fresh]
so the console's and e2e's topics, `attest_bench_search` (the search
benchmark's data set, slow to build) and anything of production shape stay.
A test running at the same moment loses its topics: do not sweep while
another test run is going.

    sweep.py [--bootstrap HOST:PORT[,…]] [--clickhouse URL] [--dry-run]

Prints what it deleted; exits 1 if the broker or ClickHouse refused.
"""

import argparse
import os
import re
import sys
import urllib.parse
import urllib.request

ID = r"[0-9a-f]{32}"
# scripts/chaos.sh names its runs by the time they started (14 digits).
RUN = r"[0-9]{14}"
TOPIC = re.compile(rf"^attest-(test|sdk|bench|bench-ingest|bench-sustained)\.{ID}\.|^attest\.chaos\.{RUN}\.")
DATABASE = re.compile(rf"^attest_(test|sdk|bench|bench_ingest|bench_sustained)_{ID}(_bare|_fresh)?$")


def clickhouse(url, sql):
    request = urllib.request.Request(url, data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def sweep_topics(bootstrap, dry_run):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    names = sorted(t for t in admin.list_topics(timeout=30).topics if TOPIC.match(t))
    if dry_run or not names:
        return names, []
    failed = []
    # Batches keep each request well under the broker's request size limit.
    for start in range(0, len(names), 500):
        futures = admin.delete_topics(names[start : start + 500], operation_timeout=60)
        for name, future in futures.items():
            try:
                future.result(timeout=120)
            except Exception as e:  # one refused topic must not hide the others
                failed.append(f"{name}: {e}")
    return names, failed


def sweep_databases(url, dry_run):
    names = [d for d in clickhouse(url, "SHOW DATABASES").split() if DATABASE.match(d)]
    failed = []
    for name in [] if dry_run else names:
        try:
            clickhouse(url, f"DROP DATABASE IF EXISTS {name}")
        except OSError as e:
            failed.append(f"{name}: {e}")
    return names, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("ATTEST_KAFKA__BROKERS", "127.0.0.1:19092"))
    parser.add_argument("--clickhouse", default=os.environ.get("ATTEST_CLICKHOUSE__URL", "http://127.0.0.1:18123"))
    parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    args = parser.parse_args()

    verb = "would delete" if args.dry_run else "deleted"
    topics, topic_failures = sweep_topics(args.bootstrap, args.dry_run)
    databases, database_failures = sweep_databases(args.clickhouse, args.dry_run)
    runs = {re.search(f"{ID}|{RUN}", t).group(0) for t in topics}
    print(
        f"sweep: {verb} {len(topics)} leftover topics (of {len(runs)} tests, benchmarks and chaos runs) "
        f"and {len(databases)} leftover databases"
    )
    for failure in topic_failures + database_failures:
        print(f"sweep: not deleted: {failure}", file=sys.stderr)
    return 1 if topic_failures or database_failures else 0


if __name__ == "__main__":
    sys.exit(main())
