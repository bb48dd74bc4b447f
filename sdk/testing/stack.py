"""Test support for the SDKs: an `attest serve` of their own on the local
stack, a private Kafka broker they may restart, and ClickHouse queries.

Not part of any SDK (it may use more than the standard library). The
shared broker and ClickHouse are never stopped: a test that restarts a
broker starts its own (`PrivateKafka`), as scripts/stack.sh starts the
shared one, with its own ports and a temporary data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.1.1"


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def attest_bin() -> str:
    if os.environ.get("ATTEST_BIN"):
        return os.environ["ATTEST_BIN"]
    target = env("CARGO_TARGET_DIR", str(Path.home() / ".cache/attest/target"))
    return str(Path(target) / "debug" / "attest")


def clickhouse_url() -> str:
    return env("ATTEST_CLICKHOUSE__URL", "http://127.0.0.1:18123")


def shared_brokers() -> str:
    return env("ATTEST_KAFKA__BROKERS", "127.0.0.1:19092")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def clickhouse(sql: str, timeout: float = 60) -> str:
    request = urllib.request.Request(clickhouse_url() + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


class Server:
    """`attest serve` with its own port, topics, consumer group, database
    and spool, on `brokers` (the shared broker unless told otherwise)."""

    def __init__(self, name: str, brokers: str | None = None, extra_env: dict | None = None):
        # A 32-hex-digit id, as the Rust tests use: what a failed run
        # leaves, scripts/sweep.py removes.
        run = uuid.uuid4().hex
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = f"attest_sdk_{run}"
        self.prefix = f"attest-sdk.{run}"
        self.brokers = brokers or shared_brokers()
        self.work = Path(tempfile.mkdtemp(prefix=f"attest-sdk-{name}-"))
        self.log_path = self.work / "attest.log"
        self.env = dict(os.environ)
        self.env.update(
            {
                "ATTEST_LISTEN": f"127.0.0.1:{self.port}",
                "ATTEST_KAFKA__BROKERS": self.brokers,
                "ATTEST_KAFKA__TOPIC_PREFIX": self.prefix,
                "ATTEST_KAFKA__CONSUMER_GROUP": f"attest-sdk-{name}-{run}",
                "ATTEST_CLICKHOUSE__URL": clickhouse_url(),
                "ATTEST_CLICKHOUSE__DATABASE": self.database,
                "ATTEST_INGEST__SPOOL_DIR": str(self.work / "spool"),
                "ATTEST_INGEST__REQUIRE_API_KEY": "false",
                "ATTEST_CONSOLE__REQUIRE_LOGIN": "false",
                "LEPTOS_OUTPUT_NAME": "attest",
                "LEPTOS_SITE_ROOT": str(ROOT / "target" / "site"),
                "LEPTOS_SITE_PKG_DIR": "pkg",
                "LEPTOS_SITE_ADDR": f"127.0.0.1:{self.port}",
                "LEPTOS_ENV": "PROD",
            }
        )
        self.env.update(extra_env or {})
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "Server":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [attest_bin(), "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"attest serve exited ({self.process.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"attest serve did not answer in {timeout} s; see {self.log_path}")

    def stop(self, keep_data: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not keep_data:
            try:
                clickhouse(f"DROP DATABASE IF EXISTS {self.database}")
            except (urllib.error.URLError, OSError):
                pass
            self.delete_topics()
            shutil.rmtree(self.work, ignore_errors=True)

    def delete_topics(self) -> None:
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:
            return
        admin = AdminClient({"bootstrap.servers": self.brokers})
        try:
            topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(self.prefix + ".")]
            if topics:
                for future in admin.delete_topics(topics, operation_timeout=30).values():
                    future.result()
        except Exception:  # the broker may be gone already: nothing to clean
            pass

    def metric(self, name: str) -> float:
        """The sum of a Prometheus series over its labels (0 when absent)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def table(self) -> str:
        return f"{self.database}.audit_events"

    def present(self) -> set[tuple[str, str]]:
        rows = clickhouse(f"SELECT DISTINCT tenant_id, event_id FROM {self.table()} FORMAT TabSeparated")
        return {tuple(line.split("\t")) for line in rows.splitlines() if line}

    def wait_for(self, expected: set[tuple[str, str]], timeout: float) -> set[tuple[str, str]]:
        """Waits until every expected (tenant, event_id) is stored; returns
        what is still missing at the end."""
        deadline = time.monotonic() + timeout
        missing = set(expected)
        while True:
            try:
                missing = expected - self.present()
            except (urllib.error.URLError, OSError):
                pass
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(1)

    def copies(self) -> dict[tuple[str, str], int]:
        """Stored copies per (tenant, event_id) once merges are done: an
        exact re-send is one row after them (docs/DESIGN.md, "Event identity").
        ClickHouse 18.16's OPTIMIZE ... FINAL does nothing, without an error,
        while a background merge of the partition runs; so it is asked again
        while copies remain, for up to a minute. Two events that share an id
        but differ in content never merge, and stay counted."""
        deadline = time.monotonic() + 60
        while True:
            clickhouse(f"OPTIMIZE TABLE {self.table()} FINAL", timeout=300)
            rows = clickhouse(
                f"SELECT tenant_id, event_id, count() FROM {self.table()} "
                "GROUP BY tenant_id, event_id FORMAT TabSeparated"
            )
            out = {}
            for line in rows.splitlines():
                tenant, event_id, n = line.split("\t")
                out[(tenant, event_id)] = int(n)
            if all(n == 1 for n in out.values()) or time.monotonic() > deadline:
                return out
            time.sleep(2)


class PrivateKafka:
    """A one-node Apache Kafka (KRaft) of the test's own, from the jars
    scripts/install.sh fetched, on free ports with a temporary data
    directory: it may be stopped and started at will."""

    def __init__(self):
        home = Path(env("ATTEST_KAFKA_HOME", str(Path.home() / f".cache/attest/kafka-{KAFKA_VERSION}")))
        self.libs = home / "libs"
        if not (self.libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            raise RuntimeError(f"Kafka {KAFKA_VERSION} not found in {self.libs}; run scripts/install.sh kafka")
        self.port = free_port()
        self.controller_port = free_port()
        self.brokers = f"127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="attest-sdk-kafka-"))
        self.process: subprocess.Popen | None = None
        (self.dir / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.dir / 'data'}",
                    "num.partitions=2",
                    "default.replication.factor=1",
                    "min.insync.replicas=1",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "unclean.leader.election.enable=false",
                    "auto.create.topics.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )
        self._java(["kafka.tools.StorageTool", "format", "--config", str(self.dir / "server.properties"),
                    "--cluster-id", "YXR0ZXN0LXNkay10ZXN0cw", "--ignore-formatted"], wait=True)

    def _java(self, args: list[str], wait: bool = False) -> subprocess.Popen:
        log = open(self.dir / "kafka.log", "ab")
        command = ["java", "-Xms256m", "-Xmx512m", "-XX:+ExitOnOutOfMemoryError",
                   "-Dlog4j2.level=WARN", "-cp", f"{self.libs}/*", *args]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        if wait and process.wait(120) != 0:
            raise RuntimeError(f"{args[0]} failed; see {self.dir / 'kafka.log'}")
        return process

    def start(self, timeout: float = 90) -> "PrivateKafka":
        self.process = self._java(["kafka.Kafka", str(self.dir / "server.properties")])
        wait_for_port(self.port, timeout)
        return self

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a restart for maintenance does."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def event(tenant: str, n: int, **extra) -> dict:
    """A valid event of `tenant`, numbered `n`."""
    body = {
        "tenant_id": tenant,
        "occurred_at": int(time.time() * 1000),
        "category": "data_access",
        "action": "invoice.view",
        "outcome": "success",
        "actor": {"id": f"user-{n % 97}", "type": "user", "ip": "10.0.0.1"},
        "resource": {"type": "invoice", "id": f"inv-{n}"},
        "source_service": "sdk-tests",
        "metadata": {"n": str(n)},
    }
    body.update(extra)
    return body


def report(name: str, passed: int, failed: int) -> None:
    """The line scripts/test.sh sums up."""
    print(f"{name}: {passed} passed, {failed} failed", flush=True)


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
