#!/usr/bin/env python3
"""Sends 10,000 events through an SDK while the Kafka broker restarts, then
checks that every event is stored exactly once.

    python3 sdk/testing/restart.py python|rust [--events N]

Starts a private one-node Kafka (its own ports and temporary data; the
shared broker is never touched) and an `attest serve` of its own on it
(own topics, consumer group, database and spool; the shared ClickHouse).
The SDK sends at a steady pace; when a third of the events are queued the
broker is stopped (SIGTERM) for 8 s and started again, while the SDK keeps
sending: the server spools, then (its spool kept small) answers 503, which
the SDK retries with the same event ids. Then it waits until every event id the SDK returned is in
ClickHouse, merges (OPTIMIZE ... FINAL), and counts rows per
(tenant_id, event_id). The last line is
    sdk-restart: 1 passed, 0 failed
(what scripts/test.sh sums up), or "0 passed, 1 failed" with the reason.

The Rust SDK is driven through its example `send_events`
($CARGO_TARGET_DIR/debug/examples/send_events; build it with
`cargo build -p attest-client --examples`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

import stack  # noqa: E402

PACE = 600  # events per second: 10,000 take about 17 s, the restart fits inside
# The broker stays down this long: longer than ingest waits for it (the
# server spools), and long enough to fill the small spool below (the
# server answers 503 and the SDK retries).
OUTAGE_S = 8
# Each event carries this much metadata (as send_events does), so that the
# 1 MiB spool fills within the outage.
PAD = 600


def say(text: str) -> None:
    print(f"sdk-restart: {text}", file=sys.stderr, flush=True)


def python_sender(url: str, tenant: str, count: int, progress) -> list[str]:
    from attest_client import Client

    ids: list[str] = []
    with Client(url, batch_size=200, linger=0.1, max_queue=2_000) as client:
        chunk = 50
        started = time.monotonic()
        for first in range(0, count, chunk):
            events = [
                stack.event(tenant, n, metadata={"n": str(n), "pad": "x" * PAD})
                for n in range(first, min(first + chunk, count))
            ]
            ids += client.send_batch(events)
            progress(len(ids))
            # Keep a steady pace, so that the restart falls mid-way.
            ahead = len(ids) / PACE - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        client.flush()
    return ids


def rust_sender(url: str, tenant: str, count: int, progress) -> list[str]:
    target = stack.env("CARGO_TARGET_DIR", str(Path.home() / ".cache/attest/target"))
    binary = Path(target) / "debug" / "examples" / "send_events"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: cargo build -p attest-client --examples")
    process = subprocess.Popen(
        [str(binary), url, tenant, str(count), str(PACE)], stdout=subprocess.PIPE, text=True
    )
    ids: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        kind, _, rest = line.strip().partition(" ")
        if kind == "queued":
            progress(int(rest))
        elif kind == "id":
            ids.append(rest)
    if process.wait() != 0:
        raise RuntimeError(f"send_events exited with {process.returncode}")
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sdk", choices=["python", "rust"])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    sender = python_sender if args.sdk == "python" else rust_sender

    kafka = stack.PrivateKafka().start()
    say(f"private Kafka on {kafka.brokers} ({kafka.dir})")
    # Ingest spools what the broker does not acknowledge within 200 ms, and
    # answers 503 once the spool holds 1 MiB (its smallest): so during the
    # outage events are answered 202 from the spool, then 503, which the
    # SDK retries with the same ids. Every path a restart opens is taken.
    server = stack.Server(
        f"restart-{args.sdk}",
        brokers=kafka.brokers,
        extra_env={
            "ATTEST_INGEST__BROKER_TIMEOUT": "200",
            "ATTEST_INGEST__SPOOL_MAX_BYTES": str(1024 * 1024),
        },
    )
    try:
        server.start()
    except Exception as error:
        kafka.remove()
        say(f"FAILED: {error}")
        stack.report("sdk-restart", 0, 1)
        return 1
    tenant = f"sdk-restart-{args.sdk}-{uuid.uuid4().hex[:8]}"
    restarted = threading.Event()
    restart_error: list[BaseException] = []

    def restart() -> None:
        try:
            say(f"stopping the broker for {OUTAGE_S} s")
            kafka.stop()
            time.sleep(OUTAGE_S)
            kafka.start()
            say("the broker is back")
        except BaseException as error:  # reported below
            restart_error.append(error)
        finally:
            restarted.set()

    threshold = args.events // 3

    def progress(queued: int) -> None:
        if queued >= threshold and not restarted.is_set() and not getattr(progress, "fired", False):
            progress.fired = True
            threading.Thread(target=restart, daemon=True).start()

    failure = None
    try:
        ids = sender(server.url, tenant, args.events, progress)
        restarted.wait(180)
        if restart_error:
            raise RuntimeError(f"the broker did not restart: {restart_error[0]}")
        if not getattr(progress, "fired", False):
            raise RuntimeError("the sender finished before the restart was due")
        if len(ids) != args.events or len(set(ids)) != args.events:
            raise RuntimeError(f"the SDK returned {len(ids)} ids, {len(set(ids))} distinct, for {args.events} events")
        # What the outage did to the path: the spool took events and, once
        # full, the server answered 503, which the SDK retried. Without
        # both the outage did not meet the load, and the test proved less.
        spooled = server.metric("attest_spool_appended_total")
        refused = server.metric('attest_ingest_events_total{result="unavailable"}')
        say(f"during the outage the server spooled {spooled:.0f} event(s) and answered {refused:.0f} with 503")
        if spooled == 0 or refused == 0:
            raise RuntimeError("the outage did not meet the load (nothing spooled, or no 503 to retry)")
        expected = {(tenant, i) for i in ids}
        missing = server.wait_for(expected, timeout=300)
        copies = {k: v for k, v in server.copies().items() if k[0] == tenant}
        duplicated = sum(1 for k, v in copies.items() if v > 1)
        unexpected = len(set(copies) - expected)
        say(f"{args.sdk}: sent {len(ids)}, stored once {sum(1 for v in copies.values() if v == 1)}, "
            f"missing {len(missing)}, duplicated {duplicated}, unexpected {unexpected}")
        if missing or duplicated or unexpected:
            failure = "not every event is stored exactly once"
    except Exception as error:
        failure = str(error)
    finally:
        server.stop(keep_data=failure is not None)
        kafka.remove() if failure is None else kafka.stop()
    if failure:
        say(f"FAILED: {failure} (server log {server.log_path}, broker data {kafka.dir})")
        stack.report("sdk-restart", 0, 1)
        return 1
    stack.report("sdk-restart", 1, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
