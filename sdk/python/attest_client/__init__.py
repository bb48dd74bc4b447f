"""Attest's Python client: send audit events to Attest's ingest API.

Standard library only. `Client.send(event)` and `Client.send_batch(events)`
queue events for a background thread that posts them in batches; `flush()`
waits until everything queued is stored (and raises what could not be);
`close()` flushes and stops. `Client.send_now(events)` posts at once.

Every event gets its `event_id` when it is queued (unless it has one), and
keeps it through every retry: Attest stores an exact re-send once, so a
retry never duplicates an event. 429 and 503 answers, and failed
connections, are retried with backoff, waiting at least `Retry-After`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = [
    "AttestError",
    "Client",
    "FieldError",
    "InvalidEvent",
    "QueueFull",
    "Refused",
    "Unavailable",
    "new_event_id",
]

__version__ = "0.1.0"

BATCH_PATH = "/api/v1/events/batch"
# Statuses after which the same request may succeed later.
RETRYABLE = (429, 503)


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): unique without coordination, sorted by time."""
    ms = time.time_ns() // 1_000_000
    rand_a = int.from_bytes(os.urandom(2), "big") & 0x0FFF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    t = f"{value:032x}"
    return f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:]}"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one event, as Attest names it."""

    index: int
    field_path: str
    problem: str
    event_id: str | None = None

    def __str__(self) -> str:
        where = self.field_path or "(the event)"
        return f"{where}: {self.problem}"


class AttestError(Exception):
    """Anything this client could not get stored."""

    def __init__(self, message: str, errors: list[FieldError] | None = None, status: int | None = None):
        super().__init__(message)
        self.errors = errors or []
        self.status = status


class InvalidEvent(AttestError):
    """400: an event breaks the contract. `field` is the first field at
    fault (`errors` holds every one); nothing of it was stored. Retrying it
    as is cannot help."""

    @property
    def field(self) -> str:
        return self.errors[0].field_path if self.errors else ""


class Refused(AttestError):
    """401, 403, 413, 415 and other answers that a retry cannot change:
    a wrong or revoked key, a tenant the key may not send, a body too large."""


class Unavailable(AttestError):
    """Attest kept answering 429/503 (or could not be reached) for longer
    than `retry_for` seconds. Nothing is lost by retrying these events later
    with the same event ids (`event_ids`)."""

    def __init__(self, message: str, event_ids: list[str], status: int | None = None):
        super().__init__(message, status=status)
        self.event_ids = event_ids


class QueueFull(AttestError):
    """The client's queue holds `max_queue` events and `send` may not wait
    (longer). The event was not queued: the caller still has it."""


def _field_errors(body: Any, events: list[dict]) -> list[FieldError]:
    out = []
    for e in (body or {}).get("errors") or []:
        index = int(e.get("index", 0))
        event_id = events[index].get("event_id") if 0 <= index < len(events) else None
        out.append(FieldError(index, e.get("field_path", ""), e.get("problem", ""), event_id))
    return out


def _describe(errors: list[FieldError], fallback: str) -> str:
    if not errors:
        return fallback
    parts = [f"event {e.index}: {e}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


class Client:
    """Sends audit events to Attest.

    url: where Attest listens, e.g. "https://attest.example.com".
    api_key: an ingest key (`attest keys create`); None where the server
        does not ask for keys.
    batch_size: most events in one request (at most the server's
        `ingest.max_batch_events`).
    linger: seconds the background thread waits for a batch to fill.
    max_queue: most events waiting to be sent. When it is full, `send`
        waits up to `block` seconds for room (None: as long as it takes),
        then raises QueueFull without queuing the event. Events are never
        dropped silently: an audit event the caller believes sent and that
        is not is a compliance failure.
    retry_for: seconds a request is retried on 429/503 or a failed
        connection before its events fail with Unavailable.
    backoff, max_backoff: the first retry's delay and the longest, in
        seconds; each retry doubles it, with jitter, and never waits less
        than the server's Retry-After.
    timeout: seconds for one HTTP request.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        batch_size: int = 500,
        linger: float = 0.2,
        max_queue: int = 10_000,
        block: float | None = None,
        retry_for: float = 300.0,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        timeout: float = 30.0,
    ):
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.batch_size = batch_size
        self.linger = linger
        self.max_queue = max_queue
        self.block = block
        self.retry_for = retry_for
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._queue: deque[dict] = deque()
        self._lock = threading.Condition()
        # Events queued or being sent, not yet answered for.
        self._pending = 0
        self._failures: list[AttestError] = []
        self._closed = False
        self._sleeper = threading.Event()
        self._sleep = time.sleep
        self._thread = threading.Thread(target=self._run, name="attest-client", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        # The key stays out of logs and tracebacks.
        return f"Client(url={self.url!r}, api_key={'***' if self._api_key else None})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- queuing -------------------------------------------------------------

    def send(self, event: Mapping[str, Any]) -> str:
        """Queues one event; returns its event_id (given or generated)."""
        return self.send_batch([event])[0]

    def send_batch(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Queues events; returns their event_ids in order. Raises QueueFull
        (nothing of this call queued) when there is no room in time."""
        prepared = [self._prepare(e) for e in events]
        if len(prepared) > self.max_queue:
            raise QueueFull(f"{len(prepared)} events are more than max_queue ({self.max_queue})")
        deadline = None if self.block is None else time.monotonic() + self.block
        with self._lock:
            while True:
                if self._closed:
                    raise AttestError("the client is closed")
                if len(self._queue) + len(prepared) <= self.max_queue:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise QueueFull(
                        f"the queue holds {len(self._queue)} of {self.max_queue} events; "
                        f"the {len(prepared)} event(s) were not queued"
                    )
                self._lock.wait(left)
            self._queue.extend(prepared)
            self._pending += len(prepared)
            self._lock.notify_all()
        return [e["event_id"] for e in prepared]

    @staticmethod
    def _prepare(event: Mapping[str, Any]) -> dict:
        if not isinstance(event, Mapping):
            raise TypeError(f"an event is a mapping (dict), not {type(event).__name__}")
        prepared = dict(event)
        # Chosen once, here: every retry re-sends the same id.
        if not prepared.get("event_id"):
            prepared["event_id"] = new_event_id()
        return prepared

    def flush(self, timeout: float | None = None) -> None:
        """Waits until every event queued so far is stored or has failed,
        then raises the first failure since the last flush (`failures` on
        the exception's client holds them all): InvalidEvent naming the
        field, Refused, or Unavailable."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._lock.notify_all()
            self._sleeper.set()
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"{self._pending} event(s) still being sent")
                self._lock.wait(left)
            failures, self._failures = self._failures, []
        if failures:
            first = failures[0]
            first.failures = failures
            raise first

    def close(self, timeout: float | None = None) -> None:
        """Flushes, then stops the background thread. Raises like flush."""
        try:
            self.flush(timeout)
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            self._sleeper.set()
            self._thread.join(timeout)

    # -- sending -------------------------------------------------------------

    def send_now(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Posts events in one request at once, all or nothing, retrying
        429/503 like the background thread; returns their event_ids. Raises
        InvalidEvent (nothing stored), Refused or Unavailable."""
        prepared = [self._prepare(e) for e in events]
        self._deliver(prepared, partial=False)
        return [e["event_id"] for e in prepared]

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if not self._queue and self._closed:
                    return
            # Let a batch fill unless it is full already or a flush waits.
            if len(self._queue) < self.batch_size and self.linger > 0:
                self._sleeper.wait(self.linger)
            self._sleeper.clear()
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                self._lock.notify_all()  # room for waiting senders
            try:
                self._deliver(batch, partial=True)
            except AttestError as error:
                with self._lock:
                    self._failures.append(error)
            except Exception as error:  # a bug here must not kill the thread
                with self._lock:
                    self._failures.append(AttestError(f"unexpected error sending events: {error!r}"))
            finally:
                with self._lock:
                    self._pending -= len(batch)
                    self._lock.notify_all()

    def _deliver(self, events: list[dict], partial: bool) -> None:
        """Posts until every event is stored or has failed for good."""
        started = time.monotonic()
        attempt = 0
        waited = 0.0
        while events:
            status, body, retry_after = self._post(events, partial)
            if status == 202:
                rejected = [r for r in (body or {}).get("results", []) if r.get("errors")]
                if rejected:
                    errors = [
                        FieldError(r["index"], e.get("field_path", ""), e.get("problem", ""),
                                   events[r["index"]].get("event_id"))
                        for r in rejected for e in r["errors"]
                    ]
                    raise InvalidEvent(_describe(errors, "invalid events"), errors, 400)
                return
            if status == 400:
                errors = _field_errors(body, events)
                raise InvalidEvent(_describe(errors, (body or {}).get("message", "invalid")), errors, 400)
            if status is not None and status not in RETRYABLE:
                message = (body or {}).get("message") or f"HTTP {status}"
                raise Refused(f"{status}: {message}", _field_errors(body, events), status)
            if status == 503 and body and body.get("stored") is not None:
                # Part of the batch is stored; send only the rest again.
                not_stored = {e.get("index") for e in body.get("errors") or []}
                events = [e for i, e in enumerate(events) if i in not_stored] or events
            attempt += 1
            delay = min(self.max_backoff, self.backoff * (2 ** min(attempt, 30)))
            delay = random.uniform(delay / 2, delay)
            if retry_after is not None:
                delay = max(delay, retry_after)
            waited += delay
            if max(waited, time.monotonic() - started + delay) > self.retry_for:
                what = f"HTTP {status}" if status else "no connection"
                raise Unavailable(
                    f"{len(events)} event(s) not stored after {attempt} attempts ({what}); "
                    "retry them later with the same event ids",
                    [e["event_id"] for e in events],
                    status,
                )
            self._sleep(delay)

    def _post(self, events: list[dict], partial: bool) -> tuple[int | None, Any, float | None]:
        """One request: (status or None when unreachable, JSON body, Retry-After)."""
        url = self.url + BATCH_PATH + ("?partial=true" if partial else "")
        request = urllib.request.Request(
            url,
            data=json.dumps(events, separators=(",", ":")).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"attest-client-python/{__version__}"},
        )
        if self._api_key:
            request.add_header("Authorization", f"Bearer {self._api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read()), None
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read()), _retry_after(error.headers.get("Retry-After"))
        except (urllib.error.URLError, OSError):
            # Not answered: maybe stored, maybe not. The retry carries the
            # same event ids, so either way each event is stored once.
            return None, None, None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (Attest sends delta-seconds)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
