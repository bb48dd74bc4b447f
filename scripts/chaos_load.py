#!/usr/bin/env python3
"""Load and verification for scripts/chaos.sh (Python standard library only).

  chaos_load.py load   --url URL --seconds S --rate R --acked FILE [--batch B] [--tenants T] [--run RUN]
  chaos_load.py verify --clickhouse URL --database DB --acked FILE [--timeout S]
                       [--metrics URL] [--last-kill EPOCH] [--load-end EPOCH]

load: posts JSON-array batches to URL/api/v1/events/batch at a steady R
events/s for S seconds from a pool of threads. Every event has its own
event_id; a batch that does not get 202 (an error status, a refused or cut
connection, a timeout) is posted again with the same events, since that is
what makes a retry idempotent, until it gets 202 or has been tried for
--give-up seconds. Only the ids of a 202 count as acknowledged: they are
written to FILE as "tenant_id<TAB>event_id" lines.

verify: waits (at most --timeout seconds) until every acknowledged id has a
row in DB.audit_events, waits for the writer to settle, runs OPTIMIZE ...
FINAL on every partition and counts rows per (tenant_id, event_id) in the
raw table. Prints one line per count and last
"chaos: acknowledged A, stored once S, missing M, duplicated D".
Exits 1 if M or D is not 0.
"""
import argparse
import http.client
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CATEGORIES = [
    ("authentication", "user.login"),
    ("data_access", "document.read"),
    ("data_modification", "document.update"),
    ("permission_change", "role.grant"),
    ("admin", "settings.change"),
    ("system", "job.run"),
]
OUTCOMES = ["success", "failure", "denied"]


def say(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# load


class Load:
    def __init__(self, args):
        self.args = args
        self.url = args.url.rstrip("/") + "/api/v1/events/batch"
        self.batches = queue.Queue()
        self.lock = threading.Lock()
        self.acked = []  # (tenant_id, event_id)
        self.failures = {}  # kind -> count
        self.retried_batches = 0
        self.gave_up = []  # events of batches that never got 202
        self.offered = 0
        self.generating = True

    def event(self, seq, now_ms):
        category, action = CATEGORIES[seq % len(CATEGORIES)]
        tenant = f"chaos-t{seq % self.args.tenants}"
        return {
            "event_id": f"chaos-{self.args.run}-{seq:09d}",
            "tenant_id": tenant,
            "occurred_at": now_ms,
            "category": category,
            "action": action,
            "outcome": OUTCOMES[seq % len(OUTCOMES)],
            "actor": {"id": f"user-{seq % 97}", "type": "user", "ip": f"203.0.113.{seq % 250 + 1}"},
            "resource": {"type": "document", "id": f"doc-{seq % 1009}"},
            "source_service": "chaos",
            "metadata": {"seq": str(seq), "run": self.args.run},
        }

    def generate(self):
        """Offers a batch every batch/rate seconds, on a fixed clock."""
        interval = self.args.batch / self.args.rate
        start = time.monotonic()
        seq = 0
        n = 0
        while True:
            due = start + n * interval
            if due - start >= self.args.seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now_ms = int(time.time() * 1000)
            batch = [self.event(seq + i, now_ms) for i in range(self.args.batch)]
            seq += self.args.batch
            n += 1
            with self.lock:
                self.offered += len(batch)
            self.batches.put((time.monotonic(), batch))
        self.generating = False

    def failed(self, kind):
        with self.lock:
            self.failures[kind] = self.failures.get(kind, 0) + 1

    def post(self, body):
        """One attempt: (status or None, parsed body or reason, retry_after)."""
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.args.request_timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}"), None
        except urllib.error.HTTPError as e:
            retry_after = e.headers.get("Retry-After")
            try:
                e.read()
            except (OSError, http.client.HTTPException):
                pass
            return e.code, f"HTTP {e.code}", retry_after
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            return None, type(reason).__name__ if not isinstance(reason, str) else reason, None

    def work(self):
        while True:
            try:
                first, batch = self.batches.get(timeout=0.2)
            except queue.Empty:
                if not self.generating:
                    return
                continue
            body = json.dumps(batch).encode()
            attempt = 0
            while True:
                attempt += 1
                status, answer, retry_after = self.post(body)
                if status == 202:
                    ok = {r.get("event_id") for r in answer.get("results", []) if not r.get("errors")}
                    ids = [(e["tenant_id"], e["event_id"]) for e in batch if e["event_id"] in ok]
                    with self.lock:
                        self.acked.extend(ids)
                        if attempt > 1:
                            self.retried_batches += 1
                    if len(ids) != len(batch):
                        self.failed("202 without every event")
                    break
                self.failed(f"HTTP {status}" if status else str(answer))
                if time.monotonic() - first > self.args.give_up:
                    with self.lock:
                        self.gave_up.extend(batch)
                    break
                pause = min(2.0, 0.25 * attempt)
                if retry_after and retry_after.isdigit():
                    pause = max(pause, float(retry_after))
                time.sleep(pause)

    def progress(self, start):
        with self.lock:
            fails = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
            say(
                f"load: t={time.monotonic() - start:5.0f}s offered {self.offered}, "
                f"acknowledged {len(self.acked)}, waiting {self.batches.qsize()} batches, "
                f"failed attempts: {fails}"
            )

    def run(self):
        start = time.monotonic()
        gen = threading.Thread(target=self.generate, daemon=True)
        workers = [threading.Thread(target=self.work, daemon=True) for _ in range(self.args.workers)]
        gen.start()
        for w in workers:
            w.start()
        last = start
        while any(w.is_alive() for w in workers) or gen.is_alive():
            time.sleep(0.5)
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                self.progress(start)
        if time.monotonic() - last >= 1:
            self.progress(start)
        with open(self.args.acked, "w", encoding="utf-8") as f:
            for tenant, event_id in self.acked:
                f.write(f"{tenant}\t{event_id}\n")
        say(
            f"load: done: offered {self.offered} events in {self.args.seconds} s, acknowledged "
            f"{len(self.acked)}, batches that needed a retry {self.retried_batches}, "
            f"events given up after {self.args.give_up} s {len(self.gave_up)}"
        )
        return 0


# ---------------------------------------------------------------------------
# verify


class ClickHouse:
    def __init__(self, url):
        self.url = url.rstrip("/") + "/"

    def query(self, sql, timeout=60):
        req = urllib.request.Request(self.url, data=sql.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read().decode()

    def rows(self, sql):
        return [line.split("\t") for line in self.query(sql + " FORMAT TabSeparated").splitlines() if line]


def lag(metrics_url):
    """Sum of attest_writer_lag_messages, or None when /metrics does not answer."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith("attest_writer_lag_messages"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def verify(args):
    ch = ClickHouse(args.clickhouse)
    table = f"{args.database}.audit_events"
    with open(args.acked, encoding="utf-8") as f:
        acked = {tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()}
    say(f"chaos: waiting until every acknowledged event is in {table} (at most {args.timeout} s)")

    start = time.monotonic()
    last_report = start
    missing = set(acked)
    stored_at = None
    while True:
        try:
            present = {(t, e) for t, e in ch.rows(f"SELECT DISTINCT tenant_id, event_id FROM {table}")}
            missing = acked - present
        except (urllib.error.URLError, OSError) as e:
            say(f"chaos: ClickHouse did not answer ({e}); retrying")
        if not missing:
            stored_at = time.time()
            break
        if time.monotonic() - start >= args.timeout:
            break
        if time.monotonic() - last_report >= 15:
            last_report = time.monotonic()
            say(f"chaos: {len(missing)} acknowledged events not in ClickHouse yet")
        time.sleep(2)

    if stored_at is not None:
        since = []
        if args.last_kill:
            since.append(f"{stored_at - args.last_kill:.1f} s after the last kill")
        if args.load_end:
            since.append(f"{max(0.0, stored_at - args.load_end):.1f} s after the load ended")
        say(f"chaos: every acknowledged event is in ClickHouse ({', '.join(since) or 'now'})")
    else:
        say(f"chaos: {len(missing)} acknowledged events still not in ClickHouse after {args.timeout} s")

    # Let the writer settle (its lag at 0 and the row count steady), so that
    # no re-delivery arrives after the merge below.
    settle_until = time.monotonic() + 60
    previous = None
    steady = 0
    while time.monotonic() < settle_until:
        try:
            count = int(ch.query(f"SELECT count() FROM {table}").strip())
        except (urllib.error.URLError, OSError, ValueError):
            count = None
        pending = lag(args.metrics) if args.metrics else 0
        steady = steady + 1 if count is not None and count == previous and not pending else 0
        if steady >= 3:
            break
        previous = count
        time.sleep(2)

    raw = ch.query(f"SELECT count() FROM {table}").strip()
    say(f"chaos: rows in the raw table before OPTIMIZE ... FINAL: {raw} (re-deliveries merge away)")
    partitions = [r[0] for r in ch.rows(
        f"SELECT DISTINCT partition FROM system.parts WHERE database = '{args.database}' "
        "AND table = 'audit_events' AND active"
    )]
    for p in partitions:
        ch.query(f"OPTIMIZE TABLE {table} PARTITION {p} FINAL", timeout=300)

    counts = {}
    for tenant, event_id, n in ch.rows(f"SELECT tenant_id, event_id, count() FROM {table} GROUP BY tenant_id, event_id"):
        counts[(tenant, event_id)] = int(n)
    stored_once = sum(1 for k in acked if counts.get(k) == 1)
    missing_n = sum(1 for k in acked if k not in counts)
    duplicated = sum(1 for n in counts.values() if n > 1)
    unacked = sum(1 for k in counts if k not in acked)
    say(f"chaos: acknowledged (202)               {len(acked)}")
    say(f"chaos: stored once                      {stored_once}")
    say(f"chaos: missing                          {missing_n}")
    say(f"chaos: duplicated (rows after FINAL)    {duplicated}")
    say(f"chaos: stored but never acknowledged    {unacked} (batches that never got a 202; not an error)")
    say(f"chaos: acknowledged {len(acked)}, stored once {stored_once}, missing {missing_n}, duplicated {duplicated}")
    return 1 if missing_n or duplicated else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    lo.add_argument("--url", required=True)
    lo.add_argument("--seconds", type=float, required=True)
    lo.add_argument("--rate", type=float, required=True, help="events per second")
    lo.add_argument("--batch", type=int, default=50, help="events per request")
    lo.add_argument("--tenants", type=int, default=5)
    lo.add_argument("--workers", type=int, default=12)
    lo.add_argument("--run", default=time.strftime("%Y%m%d%H%M%S"))
    lo.add_argument("--request-timeout", type=float, default=30)
    lo.add_argument("--give-up", type=float, default=180, help="seconds a batch is retried")
    lo.add_argument("--acked", required=True)
    ve = sub.add_parser("verify")
    ve.add_argument("--clickhouse", required=True)
    ve.add_argument("--database", required=True)
    ve.add_argument("--acked", required=True)
    ve.add_argument("--timeout", type=float, default=300)
    ve.add_argument("--metrics", help="the instance's /metrics, to wait for its writer's lag to reach 0")
    ve.add_argument("--last-kill", type=float, help="epoch seconds of the last kill")
    ve.add_argument("--load-end", type=float, help="epoch seconds when the load ended")
    args = p.parse_args()
    if args.cmd == "load":
        if args.rate <= 0 or args.batch <= 0 or args.seconds <= 0:
            p.error("--rate, --batch and --seconds must be positive")
        return Load(args).run()
    return verify(args)


if __name__ == "__main__":
    sys.exit(main())
