#!/usr/bin/env python3
"""Health probe for the local Kafka broker (scripts/stack.sh).

An open port is not a healthy broker: once a status said "up" while every
produce failed. So the full probe does what Attest does:

  1. creates the topic `attest.health` if it is missing (AdminClient; 1
     partition, replication factor --replication-factor, short retention),
  2. produces one message with acks=all and enable.idempotence=true, and
     waits for the acknowledgement (flush with a timeout),
  3. reads that message back with a fresh consumer, assigned to the
     acknowledged offset (no consumer group is joined, nothing is committed).

    kafka_probe.py [--bootstrap HOST:PORT[,…]] [--timeout SECONDS]
                   [--replication-factor N] [--expect-broker ID]
    kafka_probe.py --api-versions [--bootstrap HOST:PORT] [--timeout SECONDS]

--expect-broker ID also requires that node ID is in the cluster's metadata
(a broker that is fenced or not yet registered is not listed).
--api-versions is the cheap check for start-up wait loops: one ApiVersions
round trip over a plain socket, no client library needed.

Exit status: 0 healthy, 1 unhealthy (the reason on stderr), 2 usage error or
confluent_kafka missing (run scripts/install.sh python). Prints one line on
stdout when healthy.
"""

import argparse
import socket
import struct
import sys
import time
import uuid

TOPIC = "attest.health"


def fail(message, code=1):
    print(f"kafka probe: {message}", file=sys.stderr)
    sys.exit(code)


def api_versions(bootstrap, timeout):
    """One ApiVersions v0 request to the first bootstrap server."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    client = b"attest-health"
    # RequestHeader v1: api_key=18 (ApiVersions), api_version=0, correlation_id, client_id
    body = struct.pack(">hhih", 18, 0, 4242, len(client)) + client
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 10:
                chunk = s.recv(4096)
                if not chunk:
                    fail(f"{bootstrap} closed the connection")
                buf += chunk
    except OSError as e:
        fail(f"{bootstrap}: {e}")
    _size, corr, err = struct.unpack(">iih", buf[:10])
    if corr != 4242 or err != 0:
        fail(f"{bootstrap}: ApiVersions answered correlation {corr}, error {err}")
    print(f"kafka probe: {bootstrap} answers ApiVersions")


def full(args):
    try:
        from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        fail("python package confluent_kafka missing; run scripts/install.sh python", 2)

    started = time.monotonic()
    deadline = started + args.timeout

    def left():
        return max(0.5, deadline - time.monotonic())

    # librdkafka logs connection errors to stderr by itself; the reason we
    # report is the one that decides.
    quiet = {"bootstrap.servers": args.bootstrap, "log_level": 0, "client.id": "attest-health"}
    admin = AdminClient(dict(quiet))
    try:
        md = admin.list_topics(timeout=left())
    except KafkaException as e:
        fail(f"{args.bootstrap}: no metadata: {e}")
    if args.expect_broker is not None and args.expect_broker not in md.brokers:
        fail(f"node {args.expect_broker} is not among the cluster's brokers {sorted(md.brokers)}")
    topic = md.topics.get(TOPIC)
    if topic is None or topic.error is not None:
        new = NewTopic(
            TOPIC,
            num_partitions=1,
            replication_factor=args.replication_factor,
            config={"retention.ms": "3600000", "segment.ms": "3600000"},
        )
        future = admin.create_topics([new], operation_timeout=left())[TOPIC]
        try:
            future.result(timeout=left())
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                fail(f"cannot create topic {TOPIC}: {e}")

    token = uuid.uuid4().hex.encode()
    delivered = {}

    def on_delivery(err, msg):
        delivered["err"] = err
        if err is None:
            delivered["offset"] = msg.offset()

    producer = Producer(
        {
            **quiet,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            "message.timeout.ms": int(left() * 1000),
        }
    )
    producer.produce(TOPIC, value=token, partition=0, on_delivery=on_delivery)
    remaining = producer.flush(left())
    if remaining or "err" not in delivered:
        fail(f"produce to {TOPIC} not acknowledged within {args.timeout:g}s")
    if delivered["err"] is not None:
        fail(f"produce to {TOPIC} failed: {delivered['err']}")
    offset = delivered["offset"]

    consumer = Consumer(
        {
            **quiet,
            # Required by the client, never joined: assign() reads without a group.
            "group.id": "attest-health-probe",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        consumer.assign([TopicPartition(TOPIC, 0, offset)])
        while time.monotonic() < deadline:
            msg = consumer.poll(min(1.0, left()))
            if msg is None:
                continue
            if msg.error():
                fail(f"fetch from {TOPIC} failed: {msg.error()}")
            if msg.offset() == offset:
                if msg.value() != token:
                    fail(f"offset {offset} of {TOPIC} holds another message")
                ms = (time.monotonic() - started) * 1000
                print(f"kafka probe: produced and fetched offset {offset} of {TOPIC} in {ms:.0f} ms")
                return
    finally:
        consumer.close()
    fail(f"produced offset {offset} of {TOPIC} but could not fetch it within {args.timeout:g}s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", default="127.0.0.1:19092")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole probe")
    p.add_argument("--replication-factor", type=int, default=1, help="of attest.health when it is created")
    p.add_argument("--expect-broker", type=int, help="node id that must be a live broker")
    p.add_argument("--api-versions", action="store_true", help="only the cheap ApiVersions round trip")
    args = p.parse_args()
    if args.api_versions:
        api_versions(args.bootstrap, args.timeout)
    else:
        full(args)


if __name__ == "__main__":
    main()
