"""The course's experiments on a Kafka-protocol broker, with ``confluent-kafka``, and what they saw.

The broker is whatever :func:`mqlib.real.kafka.start_kafka` returns (Tansu today: one broker,
no replication). Kafka has no per-message acknowledgement, receive count or dead letter queue on
the broker, so the experiments measure what it does instead: a consumer group assigns
*partitions* to members; a member that restarts resumes from the committed offset, so what it
processed after its last commit comes again; a redelivered record carries nothing that counts
deliveries; keys map to partitions by the client's partitioner. Every wait is a poll with a
deadline; group joins are kept near one second with ``session.timeout.ms=2000``.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from mqlib import kafka_partition
from mqlib.real.kafka import KafkaBroker
from mqlib.real.scripts import Cell

# librdkafka writes its own log lines (connection closed, queue purged at shutdown) straight to
# the process's stderr unless the client is given a Python logger; in a notebook those land in a
# cell's output at random moments. Through a logger, informational lines stay quiet.
LOG = logging.getLogger("mqlib.real.scripts.kafka")

__all__ = ["group_experiments", "observe", "partitioner_experiment"]

_PATIENCE = 15.0


def _topic(kafka: KafkaBroker, base: str, partitions: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{base}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers, "logger": LOG})
    admin.create_topics([NewTopic(name, num_partitions=partitions)])[name].result(10)
    return name


def _produce(kafka: KafkaBroker, topic: str, keys: list[str], **config: Any) -> dict[str, int]:
    """One record per key, one request each (Tansu 0.6.0 misreports the log end after a
    multi-record batch); returns key -> partition."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "logger": LOG, **config})
    placed: dict[str, int] = {}
    for key in keys:
        producer.produce(
            topic,
            key=key,
            value=f"value of {key}".encode(),
            on_delivery=lambda err, msg: placed.update({msg.key().decode(): msg.partition()}),
        )
        producer.flush(10)
    return placed


def _consumer(kafka: KafkaBroker, group: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 500,
            "logger": LOG,
        }
    )


def _poll(consumer: Any, count: int, *, commit: bool) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + _PATIENCE
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        got.append({"partition": msg.partition(), "offset": msg.offset(), "headers": msg.headers()})
        if commit:
            consumer.commit(message=msg, asynchronous=False)
    return got


def partitioner_experiment(kafka: KafkaBroker) -> dict[str, Any]:
    """Keys "42", "43", "44" over 4 partitions with librdkafka's default and ``murmur2_random``."""
    topic = _topic(kafka, "cmp-keys", 4)
    keys = ["42", "43", "44"]
    return {
        "consistent_random": _produce(kafka, topic, keys),
        "murmur2_random": _produce(kafka, topic, keys, partitioner="murmur2_random"),
        "java": {k: kafka_partition(k, 4) for k in keys},
    }


def group_experiments(kafka: KafkaBroker) -> dict[str, Any]:
    """Two members share a 4-partition topic; then a member processes 3 records, commits 2,
    restarts, and what it reads again is recorded."""
    topic = _topic(kafka, "cmp-group", 4)
    _produce(kafka, topic, [f"k{n}" for n in range(8)], partitioner="murmur2_random")
    group = f"cmp-{uuid.uuid4().hex[:6]}"
    members = [_consumer(kafka, group), _consumer(kafka, group)]
    for m in members:
        m.subscribe([topic])
    deadline = time.monotonic() + _PATIENCE
    while time.monotonic() < deadline and sum(len(m.assignment()) for m in members) < 4:
        for m in members:
            m.poll(0.1)
    owned = sorted(sorted(tp.partition for tp in m.assignment()) for m in members)
    for m in members:
        m.close()

    single = _topic(kafka, "cmp-restart", 1)
    _produce(kafka, single, ["a", "b", "c", "d"])
    group = f"cmp-{uuid.uuid4().hex[:6]}"
    first = _consumer(kafka, group)
    first.subscribe([single])
    committed = _poll(first, 2, commit=True)
    uncommitted = _poll(first, 1, commit=False)  # processed, then "crashes" before the commit
    first.close()
    again = _consumer(kafka, group)
    again.subscribe([single])
    after = _poll(again, 2, commit=True)
    again.close()
    return {
        "assignment": owned,
        "committed": [r["offset"] for r in committed],
        "uncommitted": [r["offset"] for r in uncommitted],
        "after_restart": [r["offset"] for r in after],
        "redelivered_headers": after[0]["headers"] if after else None,
    }


def observe(server: KafkaBroker) -> dict[str, Cell]:
    """Run the experiments on a running broker and return the table's cells (about 3 s)."""
    if not isinstance(server, KafkaBroker):
        raise TypeError(f"server must be a running KafkaBroker, got {type(server).__name__}")
    parts = partitioner_experiment(server)
    groups = group_experiments(server)
    again = [o for o in groups["after_restart"] if o in groups["uncommitted"]]
    murmur = parts["murmur2_random"]
    return {
        "unit of delivery": Cell(
            "a partition, owned by one member of each consumer group (2 members of a "
            f"4-partition topic got partitions {groups['assignment'][0]} and "
            f"{groups['assignment'][1]})",
            {"assignment": groups["assignment"]},
        ),
        "what triggers redelivery": Cell(
            "a restart or rebalance: the group resumes at the committed offset (offset "
            f"{', '.join(map(str, again)) or 'none'}, processed but not committed, was read "
            "again); no broker-side timeout",
            {k: groups[k] for k in ("committed", "uncommitted", "after_restart")},
        ),
        "delivery counter": Cell(
            "none on the broker for a consumer group: the re-read record carried "
            + ("no headers" if not groups["redelivered_headers"] else "only its own headers")
            + "; the consumer counts attempts itself if it needs to",
            {"headers": groups["redelivered_headers"]},
        ),
        "dead-letter mechanism": Cell(
            "none in the broker: the consumer (or a framework such as Kafka Connect or Spring "
            "Kafka) produces a failing record to a dead-letter topic and commits past it",
            {},
        ),
        "deduplication": Cell(
            "the idempotent producer (per producer id and partition sequence numbers; "
            "enable.idempotence, on by default in the Java client since 3.0, off in librdkafka); "
            "not measured here, a lost PubAck cannot be injected",
            {},
        ),
        "ordering unit": Cell(
            "the partition; the client's partitioner picks it: keys 42, 43, 44 went to "
            f"{murmur['42']}, {murmur['43']}, {murmur['44']} with murmur2_random (as Java) and "
            f"{parts['consistent_random']['44']} for 44 with librdkafka's default",
            parts,
        ),
        "overflow policies": Cell(
            "none on write: a topic keeps records by retention (time or size) and deletes old "
            "segments; a full producer buffer makes librdkafka's produce() fail with QUEUE_FULL "
            "(queue.buffering.max.*) and the Java client's send() block up to max.block.ms; "
            "brokers throttle by quota",
            {},
        ),
    }
