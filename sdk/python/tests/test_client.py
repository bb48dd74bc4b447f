"""The Python SDK against a real `attest serve` on the local stack (its own
topics and database), plus the retry policy against a local HTTP stand-in
that answers 429/503 on cue (Attest answers those only under load or when
the broker is away; tests/restart.py covers the broker restart itself)."""

import http.server
import json
import sys
import threading
import unittest
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "testing"))

import attest_client  # noqa: E402
from attest_client import Client, InvalidEvent, QueueFull, Refused, Unavailable  # noqa: E402
import stack  # noqa: E402

SERVER: stack.Server | None = None


def setUpModule():
    global SERVER
    SERVER = stack.Server("python").start()


def tearDownModule():
    if SERVER:
        SERVER.stop()


class AgainstAttest(unittest.TestCase):
    def setUp(self):
        self.tenant = f"sdk-py-{uuid.uuid4().hex[:10]}"

    def test_send_and_send_batch_store_every_event_once(self):
        with Client(SERVER.url, batch_size=50, linger=0.05) as client:
            ids = [client.send(stack.event(self.tenant, n)) for n in range(120)]
            ids += client.send_batch(stack.event(self.tenant, n) for n in range(120, 300))
        self.assertEqual(len(set(ids)), 300)
        expected = {(self.tenant, i) for i in ids}
        self.assertEqual(SERVER.wait_for(expected, timeout=60), set())
        copies = {k: v for k, v in SERVER.copies().items() if k[0] == self.tenant}
        self.assertEqual(copies, {k: 1 for k in expected})

    def test_a_given_event_id_is_kept_and_a_resend_is_stored_once(self):
        event = stack.event(self.tenant, 1, event_id=f"given-{uuid.uuid4().hex}")
        with Client(SERVER.url) as client:
            first = client.send_now([event])
            # What a retry after a lost answer does: the same event again.
            second = client.send_now([event])
        self.assertEqual(first, [event["event_id"]])
        self.assertEqual(first, second)
        key = (self.tenant, event["event_id"])
        self.assertEqual(SERVER.wait_for({key}, timeout=60), set())
        self.assertEqual(SERVER.copies()[key], 1)

    def test_an_invalid_event_raises_naming_the_field(self):
        bad = stack.event(self.tenant, 2)
        bad["actor"]["ip"] = "not-an-ip"
        with Client(SERVER.url) as client:
            with self.assertRaises(InvalidEvent) as caught:
                client.send_now([stack.event(self.tenant, 1), bad])
            self.assertEqual(caught.exception.field, "actor.ip")
            self.assertEqual(caught.exception.errors[0].index, 1)
            self.assertIn("actor.ip", str(caught.exception))
            # In the background: the valid events of the batch are stored,
            # the invalid one comes back from flush.
            good_id = client.send(stack.event(self.tenant, 3))
            bad_id = client.send(bad)
            with self.assertRaises(InvalidEvent) as caught:
                client.flush()
            self.assertEqual(caught.exception.field, "actor.ip")
            self.assertEqual(caught.exception.errors[0].event_id, bad_id)
        self.assertEqual(SERVER.wait_for({(self.tenant, good_id)}, timeout=60), set())
        self.assertNotIn((self.tenant, bad_id), SERVER.present())

    def test_an_unknown_field_is_named(self):
        with Client(SERVER.url) as client:
            with self.assertRaises(InvalidEvent) as caught:
                client.send_now([stack.event(self.tenant, 1, colour="red")])
        self.assertIn("colour", str(caught.exception))


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, headers, body)."""

    script: list = []
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        status, headers, answer = type(self).script.pop(0)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class RetryPolicy(unittest.TestCase):
    def serve(self, script):
        Scripted.script = list(script)
        Scripted.seen = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def client(self, url, **options):
        client = Client(url, **options)
        self.waits = []
        client._sleep = self.waits.append  # record, do not wait
        self.addCleanup(client.close)
        return client

    def accepted(self, n):
        return (202, {}, {"accepted": n, "rejected": 0, "results": []})

    def test_429_and_503_are_retried_honouring_retry_after_with_the_same_ids(self):
        url = self.serve([
            (429, {"Retry-After": "3"}, {"error": "busy", "message": "busy", "errors": []}),
            (503, {"Retry-After": "7"}, {"error": "unavailable", "message": "broker", "errors": []}),
            self.accepted(2),
        ])
        client = self.client(url, backoff=0.01, max_backoff=0.02)
        ids = client.send_now([{"tenant_id": "t", "n": 1}, {"tenant_id": "t", "n": 2}])
        self.assertEqual(len(Scripted.seen), 3)
        for attempt in Scripted.seen:
            self.assertEqual([e["event_id"] for e in attempt], ids)
        self.assertGreaterEqual(self.waits[0], 3)
        self.assertGreaterEqual(self.waits[1], 7)

    def test_a_partly_stored_batch_resends_only_the_rest(self):
        url = self.serve([
            (503, {"Retry-After": "1"}, {"error": "unavailable", "message": "", "stored": [{"index": 0, "event_id": "a"}],
                                          "errors": [{"index": 1, "field_path": "", "problem": "not stored"}]}),
            self.accepted(1),
        ])
        client = self.client(url)
        client.send_now([{"event_id": "a"}, {"event_id": "b"}])
        self.assertEqual([[e["event_id"] for e in s] for s in Scripted.seen], [["a", "b"], ["b"]])

    def test_gives_up_after_retry_for_with_the_ids_to_retry(self):
        busy = (503, {"Retry-After": "5"}, {"error": "unavailable", "message": "", "errors": []})
        url = self.serve([busy] * 3)
        client = self.client(url, retry_for=12)
        with self.assertRaises(Unavailable) as caught:
            client.send_now([{"event_id": "x"}])
        self.assertEqual(caught.exception.event_ids, ["x"])
        self.assertEqual(len(Scripted.seen), 3)

    def test_401_is_refused_without_retrying(self):
        url = self.serve([(401, {}, {"error": "unauthorized", "message": "unknown key", "errors": []})])
        client = self.client(url)
        with self.assertRaises(Refused) as caught:
            client.send_now([{"event_id": "x"}])
        self.assertEqual(caught.exception.status, 401)
        self.assertEqual(len(Scripted.seen), 1)

    def test_a_full_queue_refuses_without_dropping(self):
        # Nothing listens there, and the thread waits a long linger first.
        client = Client("http://127.0.0.1:9", max_queue=2, block=0, linger=60, batch_size=100, retry_for=0)
        client.send({"event_id": "1"})
        client.send({"event_id": "2"})
        with self.assertRaises(QueueFull):
            client.send({"event_id": "3"})
        with self.assertRaises(Unavailable) as caught:
            client.close()
        self.assertEqual(sorted(caught.exception.event_ids), ["1", "2"])

    def test_the_key_never_shows(self):
        client = Client("http://127.0.0.1:9", api_key="secret-key-123")
        self.addCleanup(client.close)
        self.assertNotIn("secret-key-123", repr(client))

    def test_event_ids_are_uuid_v7(self):
        parsed = uuid.UUID(attest_client.new_event_id())
        self.assertEqual(parsed.version, 7)


if __name__ == "__main__":
    unittest.main()
