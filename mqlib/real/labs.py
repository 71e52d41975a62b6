"""Five short labs against a real NATS JetStream server.

Each lab is one synchronous function. It starts a throwaway server (or uses the one you pass),
sets up its own streams and consumers from scratch, plays a small scenario and returns a plain
``dict`` of lists, numbers and strings: which worker got which message, delivery counts, what
landed in the dead-letter queue. The results are deterministic (the scenario is driven one
step at a time, never by racing clients), so the same call gives the same answer every time;
the only wall-clock value is the rounded ``elapsed_s``. Every result has a one-line
``summary``.

===================  ====================================================================
lab                  what it shows
===================  ====================================================================
``work_queue_lab``   competing workers on one durable pull consumer of a WorkQueue stream;
                     an un-ACKed job comes back after ``ack_wait`` (visibility timeout)
``pubsub_lab``       one stream, one durable consumer per group: every group sees every
                     event, members inside a group split them
``dedup_lab``        ``Nats-Msg-Id`` makes retried publishes idempotent; an un-ACKed message
                     is delivered again (at-least-once), so consumers must be idempotent too
``dlq_lab``          ``max_deliver`` caps retries of a poison message; the max-deliveries
                     advisory triggers a copy into a dead-letter stream
``log_lab``          sequence numbers as offsets, independent readers, replay from any
                     offset, retention by count and by age
===================  ====================================================================

Pass ``server=`` (a running :class:`~mqlib.real.server.JetStreamServer` or its ``nats://``
URL on 127.0.0.1) to reuse one server for several labs; each lab deletes and re-creates the
streams it uses (all named ``LAB_*``), so labs can be re-run on the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError

from mqlib import _validate
from mqlib.real.server import JetStreamServer, check_loopback_url, run

__all__ = ["dedup_lab", "dlq_lab", "log_lab", "pubsub_lab", "work_queue_lab"]

ServerArg = JetStreamServer | str | None

#: Longest a lab waits for a message that must arrive (beyond ack_wait), in seconds.
_PATIENCE = 5.0
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------------------------
# Plumbing shared by the labs
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _server_url(server: ServerArg) -> Iterator[str]:
    """Yield a loopback NATS URL: a fresh server's (stopped afterwards) or the given one."""
    if server is None:
        with JetStreamServer() as fresh:
            yield fresh.url
    elif isinstance(server, JetStreamServer):
        yield server.url  # raises NatsServerError if it is not running
    elif isinstance(server, str):
        yield check_loopback_url(server, name="server")
    else:
        raise TypeError(
            "server must be None (start a throwaway server), a JetStreamServer or a "
            f"'nats://127.0.0.1:<port>' URL; got {server!r} ({type(server).__name__})"
        )


def _run_lab(server: ServerArg, make: Any) -> dict[str, Any]:
    """Run ``make(url)`` (a coroutine factory) against the server; add ``elapsed_s``."""
    with _server_url(server) as url:
        started = time.perf_counter()
        coro: Coroutine[Any, Any, dict[str, Any]] = make(url)
        result = run(coro)
        result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


@contextlib.asynccontextmanager
async def _connect(url: str, name: str) -> AsyncIterator[NATS]:
    """One client connection, closed on exit. No reconnect loop: a lab fails fast instead."""
    nc = await nats.connect(url, name=name, allow_reconnect=False, connect_timeout=2)
    try:
        yield nc
    finally:
        await nc.close()


async def _fresh_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Delete the stream if a previous run left it, then create it empty."""
    assert config.name is not None
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(config.name)
    await js.add_stream(config)


async def _next(sub: JetStreamContext.PullSubscription, timeout: float) -> Msg:
    """Pull exactly one message (waiting up to ``timeout`` seconds for it)."""
    msgs = await sub.fetch(1, timeout=timeout)
    return msgs[0]


async def _nak_sync(nc: NATS, msg: Msg) -> None:
    """NAK and wait until the server has processed it (``msg.nak()`` does not wait).

    Waiting makes the next pull see the NAK'd message as available again, so the order of
    deliveries does not depend on timing.
    """
    assert msg.reply
    await nc.request(msg.reply, b"-NAK", timeout=2)


async def _read(
    js: JetStreamContext, stream: str, durable: str, count: int, config: ConsumerConfig | None
) -> list[int]:
    """Create (or re-bind) a durable pull consumer, read ``count`` messages, ACK them.

    Returns their stream sequence numbers.
    """
    if config is not None:
        config.durable_name = durable
        config.ack_policy = AckPolicy.EXPLICIT
        await js.add_consumer(stream, config)
    sub = await js.pull_subscribe_bind(durable, stream=stream)
    seqs: list[int] = []
    while len(seqs) < count:
        for msg in await sub.fetch(count - len(seqs), timeout=_PATIENCE):
            seqs.append(msg.metadata.sequence.stream)
            await msg.ack_sync()
    await sub.unsubscribe()
    return seqs


def _text(msg: Msg) -> str:
    return msg.data.decode()


def _seconds(value: float) -> str:
    return f"{value:g} s"


# --------------------------------------------------------------------------------------------
# 1. Work queue: competing consumers and the visibility timeout
# --------------------------------------------------------------------------------------------


def work_queue_lab(
    server: ServerArg = None,
    *,
    jobs: int = 6,
    workers: int = 2,
    crash_on: int = 3,
    ack_wait: float = 1.0,
) -> dict[str, Any]:
    """Competing workers on a work queue; a crashed worker's job comes back after ``ack_wait``.

    A stream with **WorkQueue retention** keeps a message only until it is ACKed. The workers
    (``worker-1`` ... ``worker-<workers>``, each on its own connection) share **one durable
    pull consumer**; they take turns pulling one job at a time, so each job goes to exactly one
    worker. The worker that pulls job ``crash_on`` "crashes" before ACKing it and leaves.
    JetStream does not know the worker died; it just sees no ACK. After ``ack_wait`` seconds
    (the *visibility timeout* of other brokers) the job is delivered again, to a surviving
    worker, with ``metadata.num_delivered == 2``.

    Parameters: ``jobs`` (1-100), ``workers`` (2-10), ``crash_on`` (the job number, 1-``jobs``),
    ``ack_wait`` (seconds, 0.1-30).

    Returns a dict with:

    * ``deliveries``: one entry per delivery, in order: ``worker``, ``job``, ``seq`` (stream
      sequence), ``num_delivered``, ``acked``;
    * ``done_by``: worker -> sequences it completed (ACKed);
    * ``crashed_worker`` and ``redelivered`` (entries of ``deliveries`` with
      ``num_delivered > 1``);
    * ``stream_messages_after_publish`` and ``stream_messages_left`` (0: acked jobs are gone);
    * ``second_consumer_allowed``: False, a WorkQueue stream refuses a second consumer that
      would overlap the first (each message must have one owner);
    * ``jobs``, ``workers`` (names), ``ack_wait``, ``elapsed_s``, ``summary``.
    """
    _validate.integer("jobs", jobs, minimum=1, maximum=100)
    _validate.integer("workers", workers, minimum=2, maximum=10)
    _validate.integer("crash_on", crash_on, minimum=1, maximum=jobs)
    _validate.number("ack_wait", ack_wait, minimum=0.1, maximum=30)
    return _run_lab(server, lambda url: _work_queue(url, jobs, workers, crash_on, ack_wait))


async def _work_queue(
    url: str, jobs: int, workers: int, crash_on: int, ack_wait: float
) -> dict[str, Any]:
    stream, subject, durable = "LAB_WORK", "lab.work.jobs", "workers"
    names = [f"worker-{i}" for i in range(1, workers + 1)]
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(_connect(url, "work-admin"))
        js = admin.jetstream()
        await _fresh_stream(
            js,
            StreamConfig(name=stream, subjects=[subject], retention=RetentionPolicy.WORK_QUEUE),
        )
        await js.add_consumer(
            stream,
            ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait),
        )
        try:
            await js.add_consumer(
                stream, ConsumerConfig(durable_name="intruder", ack_policy=AckPolicy.EXPLICIT)
            )
            second_consumer_allowed = True
        except APIError:
            second_consumer_allowed = False

        for n in range(1, jobs + 1):
            await js.publish(subject, f"job-{n}".encode())
        published = (await js.stream_info(stream)).state.messages

        # One connection per worker, all bound to the same durable consumer.
        conns: dict[str, contextlib.AsyncExitStack] = {}
        subs: dict[str, JetStreamContext.PullSubscription] = {}
        for name in names:
            conns[name] = contextlib.AsyncExitStack()
            nc = await conns[name].enter_async_context(_connect(url, name))
            stack.push_async_callback(conns[name].aclose)
            subs[name] = await nc.jetstream().pull_subscribe_bind(durable, stream=stream)

        turn = list(names)  # round robin; a crashed worker leaves the rotation
        deliveries: list[dict[str, Any]] = []
        done_by: dict[str, list[int]] = {name: [] for name in names}
        crashed: str | None = None
        acked = 0
        while acked < jobs:
            name = turn.pop(0)
            msg = await _next(subs[name], timeout=ack_wait + _PATIENCE)
            meta = msg.metadata
            entry = {
                "worker": name,
                "job": _text(msg),
                "seq": meta.sequence.stream,
                "num_delivered": meta.num_delivered,
                "acked": False,
            }
            deliveries.append(entry)
            if crashed is None and meta.sequence.stream == crash_on:
                crashed = name  # no ACK; the worker disconnects and never comes back
                await conns[name].aclose()
                continue
            await msg.ack_sync()
            entry["acked"] = True
            done_by[name].append(meta.sequence.stream)
            acked += 1
            turn.append(name)

        left = (await js.stream_info(stream)).state.messages

    redelivered = [d for d in deliveries if d["num_delivered"] > 1]
    again = redelivered[0] if redelivered else None
    summary = (
        f"{jobs} jobs shared by {workers} workers; {crashed} took job-{crash_on} and crashed "
        f"without ACK"
        + (
            f"; after ack_wait={_seconds(ack_wait)} JetStream redelivered it to "
            f"{again['worker']} (delivery {again['num_delivered']})"
            if again
            else ""
        )
        + f"; {left} messages left in the work queue."
    )
    return {
        "jobs": jobs,
        "workers": names,
        "ack_wait": ack_wait,
        "deliveries": deliveries,
        "done_by": done_by,
        "crashed_worker": crashed,
        "redelivered": redelivered,
        "stream_messages_after_publish": published,
        "stream_messages_left": left,
        "second_consumer_allowed": second_consumer_allowed,
        "summary": summary,
    }


# --------------------------------------------------------------------------------------------
# 2. Publish/subscribe with consumer groups
# --------------------------------------------------------------------------------------------

_DEFAULT_GROUPS = {"payment": 2, "email": 2, "analytics": 1}


def pubsub_lab(
    server: ServerArg = None,
    *,
    events: int = 6,
    groups: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Fan-out to groups, load-balancing inside each group.

    One stream holds the ``events`` order events. Each group (default: ``payment`` with 2
    members, ``email`` with 2, ``analytics`` with 1) has its **own durable consumer**, which
    tracks its own position in the stream, so every group receives every event. The members
    of a group pull from the group's consumer in turn, so inside a group each event goes to
    one member. That is a Kafka consumer group or an SNS-topic-to-SQS-queue fan-out, built from
    one stream.

    Parameters: ``events`` (1-100); ``groups``: mapping of group name (letters, digits, ``-``,
    ``_``) to member count (1-10), at most 10 groups.

    Returns a dict with:

    * ``groups``: group -> member -> stream sequences that member received, e.g.
      ``{"payment": {"payment-1": [1, 3, 5], "payment-2": [2, 4, 6]}, ...}``;
    * ``seen_by_group``: group -> all sequences the group received (sorted);
    * ``every_group_saw_every_event``: True when each group got 1..events exactly once;
    * ``stream_messages``: messages still in the stream after all ACKs (limits retention keeps
      them; ACKs only move each consumer forward);
    * ``events``, ``elapsed_s``, ``summary``.
    """
    _validate.integer("events", events, minimum=1, maximum=100)
    if groups is None:
        groups = _DEFAULT_GROUPS
    if not isinstance(groups, Mapping):
        raise TypeError(
            f"groups must be a mapping of group name to member count, e.g. "
            f"{_DEFAULT_GROUPS!r}; got {groups!r} ({type(groups).__name__})"
        )
    if not 1 <= len(groups) <= 10:
        raise ValueError(f"groups must have 1 to 10 entries, got {len(groups)}")
    for group, members in groups.items():
        _validate.text("group name", group)
        if not _NAME_RE.match(group):
            raise ValueError(
                f"group name must use only letters, digits, '-' and '_', got {group!r}"
            )
        _validate.integer(f"groups[{group!r}]", members, minimum=1, maximum=10)
    plan = dict(groups)
    return _run_lab(server, lambda url: _pubsub(url, events, plan))


async def _pubsub(url: str, events: int, groups: dict[str, int]) -> dict[str, Any]:
    stream, subject = "LAB_EVENTS", "lab.events.orders"
    async with _connect(url, "pubsub") as nc:
        js = nc.jetstream()
        await _fresh_stream(js, StreamConfig(name=stream, subjects=[subject]))
        for n in range(1, events + 1):
            await js.publish(subject, f"order-{n}".encode())

        received: dict[str, dict[str, list[int]]] = {}
        for group, size in groups.items():
            await js.add_consumer(
                stream, ConsumerConfig(durable_name=group, ack_policy=AckPolicy.EXPLICIT)
            )
            members = [f"{group}-{i}" for i in range(1, size + 1)]
            subs = {m: await js.pull_subscribe_bind(group, stream=stream) for m in members}
            received[group] = {m: [] for m in members}
            for n in range(events):
                member = members[n % size]
                msg = await _next(subs[member], timeout=_PATIENCE)
                received[group][member].append(msg.metadata.sequence.stream)
                await msg.ack_sync()
            for sub in subs.values():
                await sub.unsubscribe()
        kept = (await js.stream_info(stream)).state.messages

    seen = {
        g: sorted(s for seqs in members.values() for s in seqs) for g, members in received.items()
    }
    everyone = all(s == list(range(1, events + 1)) for s in seen.values())
    split = "; ".join(
        f"{g}: " + ", ".join(f"{m} {len(seqs)}" for m, seqs in members.items())
        for g, members in received.items()
    )
    summary = (
        f"{events} events, {len(groups)} groups: "
        + ("every group saw every event" if everyone else "some group missed events")
        + f" ({split}); the stream still holds {kept}."
    )
    return {
        "events": events,
        "groups": received,
        "seen_by_group": seen,
        "every_group_saw_every_event": everyone,
        "stream_messages": kept,
        "summary": summary,
    }


# --------------------------------------------------------------------------------------------
# 3. Idempotent producer (Nats-Msg-Id) and at-least-once delivery
# --------------------------------------------------------------------------------------------


def dedup_lab(
    server: ServerArg = None,
    *,
    orders: int = 3,
    retries: int = 2,
    duplicate_window: float = 60.0,
    crash_on: int = 2,
    ack_wait: float = 1.0,
    late_retry: bool = False,
) -> dict[str, Any]:
    """Duplicates removed at the broker by message id; redelivery handled by an idempotent consumer.

    **Producer side.** Each of ``orders`` orders is published with the header
    ``Nats-Msg-Id: order-<n>`` and then re-sent ``retries`` more times, as a producer does when
    it times out waiting for the PubAck. Within the stream's ``duplicate_window`` JetStream
    drops the copies: their PubAck says ``duplicate=True`` and carries the sequence of the
    original, and the stream keeps one message per order. The same publishes without the
    header (a second stream) store every copy. With ``late_retry=True`` the lab waits until
    the window has passed and re-sends ``order-1`` once more: it is stored again, because the
    broker only remembers ids for ``duplicate_window`` seconds (use a small window, <= 5 s).

    **Consumer side.** A consumer charges each order. On order ``crash_on`` it charges and
    then crashes before the ACK. After ``ack_wait`` JetStream delivers the order again
    (``num_delivered == 2``): delivery is *at least once*. The consumer remembers the
    ``Nats-Msg-Id`` values it has charged, skips the repeat and ACKs it, so each order is
    charged once: broker deduplication plus an idempotent consumer give "effectively once".

    Returns a dict with:

    * ``publishes``: per publish ``msg_id``, ``attempt``, ``seq``, ``duplicate`` (bool);
    * ``stream_messages`` (= ``orders``) and ``without_msg_id_stream_messages``
      (= ``orders * (retries + 1)``);
    * ``late_retry``: None, or ``{"msg_id", "seq", "duplicate"}`` of the re-send after the
      window;
    * ``deliveries``: per delivery ``msg_id``, ``seq``, ``num_delivered``, ``action``
      (``"charged"``, ``"charged, crashed before ACK"``, ``"skipped: already charged"``);
    * ``charges``: the msg ids charged, in order (each once); ``redelivered``: msg ids
      delivered more than once;
    * ``duplicate_window``: the deduplicating stream's window in seconds, as the server reports
      its configuration; ``default_duplicate_window``: the window the server gave the second
      stream, created without one (its default);
    * ``orders``, ``retries``, ``ack_wait``, ``elapsed_s``, ``summary``.
    """
    _validate.integer("orders", orders, minimum=1, maximum=100)
    _validate.integer("retries", retries, minimum=0, maximum=10)
    _validate.number("duplicate_window", duplicate_window, minimum=0.1, maximum=3600)
    _validate.integer("crash_on", crash_on, minimum=1, maximum=orders)
    _validate.number("ack_wait", ack_wait, minimum=0.1, maximum=30)
    _validate.boolean("late_retry", late_retry)
    if late_retry and duplicate_window > 5:
        raise ValueError(
            "late_retry=True waits for the duplicate window to pass, so duplicate_window must "
            f"be <= 5 seconds; got {duplicate_window!r}"
        )
    return _run_lab(
        server,
        lambda url: _dedup(url, orders, retries, duplicate_window, crash_on, ack_wait, late_retry),
    )


async def _dedup(
    url: str,
    orders: int,
    retries: int,
    window: float,
    crash_on: int,
    ack_wait: float,
    late_retry: bool,
) -> dict[str, Any]:
    stream, subject = "LAB_DEDUP", "lab.dedup.orders"
    naive_stream, naive_subject = "LAB_NOID", "lab.noid.orders"
    async with _connect(url, "dedup") as nc:
        js = nc.jetstream()
        await _fresh_stream(
            js, StreamConfig(name=stream, subjects=[subject], duplicate_window=window)
        )
        await _fresh_stream(js, StreamConfig(name=naive_stream, subjects=[naive_subject]))

        publishes: list[dict[str, Any]] = []
        for n in range(1, orders + 1):
            msg_id = f"order-{n}"
            for attempt in range(1, retries + 2):
                ack = await js.publish(subject, msg_id.encode(), headers={"Nats-Msg-Id": msg_id})
                publishes.append(
                    {
                        "msg_id": msg_id,
                        "attempt": attempt,
                        "seq": ack.seq,
                        "duplicate": bool(ack.duplicate),  # None from the server means False
                    }
                )
                await js.publish(naive_subject, msg_id.encode())
        info, naive_info = await js.stream_info(stream), await js.stream_info(naive_stream)
        stored, naive_stored = info.state.messages, naive_info.state.messages
        configured_window = info.config.duplicate_window  # seconds (nats-py converts from ns)
        default_window = naive_info.config.duplicate_window

        late: dict[str, Any] | None = None
        if late_retry:
            await asyncio.sleep(window + 0.2)
            ack = await js.publish(subject, b"order-1", headers={"Nats-Msg-Id": "order-1"})
            late = {"msg_id": "order-1", "seq": ack.seq, "duplicate": bool(ack.duplicate)}

        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name="billing",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ack_wait,
                filter_subject=subject,
            ),
        )
        sub = await js.pull_subscribe_bind("billing", stream=stream)
        expected = stored + (1 if late else 0)
        charged: set[str] = set()
        charges: list[str] = []
        deliveries: list[dict[str, Any]] = []
        crashed = False
        acked = 0
        while acked < expected:
            msg = await _next(sub, timeout=ack_wait + _PATIENCE)
            msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
            entry = {
                "msg_id": msg_id,
                "seq": msg.metadata.sequence.stream,
                "num_delivered": msg.metadata.num_delivered,
            }
            deliveries.append(entry)
            if msg_id in charged:
                entry["action"] = "skipped: already charged"
            else:
                charged.add(msg_id)
                charges.append(msg_id)
                entry["action"] = "charged"
                if not crashed and msg_id == f"order-{crash_on}":
                    crashed = True
                    entry["action"] = "charged, crashed before ACK"
                    continue  # no ACK: JetStream will deliver it again after ack_wait
            await msg.ack_sync()
            acked += 1
        await sub.unsubscribe()

    redelivered = sorted({d["msg_id"] for d in deliveries if d["num_delivered"] > 1})
    dropped = sum(p["duplicate"] for p in publishes)
    summary = (
        f"{len(publishes)} publishes of {orders} orders: {dropped} dropped as duplicates "
        f"(stream keeps {stored}; without Nats-Msg-Id it keeps {naive_stored}); "
        f"order-{crash_on} was redelivered after the consumer crashed before ACK and skipped "
        f"as already charged, so {len(charges)} charges for {len(charged)} orders."
    )
    if late:
        summary = summary[:-1] + (
            f"; a retry after the {_seconds(window)} window was stored again as seq {late['seq']}."
        )
    return {
        "orders": orders,
        "retries": retries,
        "duplicate_window": configured_window,
        "default_duplicate_window": default_window,
        "ack_wait": ack_wait,
        "publishes": publishes,
        "stream_messages": stored,
        "without_msg_id_stream_messages": naive_stored,
        "late_retry": late,
        "deliveries": deliveries,
        "charges": charges,
        "redelivered": redelivered,
        "summary": summary,
    }


# --------------------------------------------------------------------------------------------
# 4. Poison message, max_deliver and a dead-letter queue
# --------------------------------------------------------------------------------------------


def dlq_lab(
    server: ServerArg = None,
    *,
    orders: int = 5,
    poison: int = 3,
    max_deliver: int = 3,
) -> dict[str, Any]:
    """A poison message is retried ``max_deliver`` times, then parked in a dead-letter stream.

    The consumer ``processor`` has ``max_deliver`` (maximum receives). Order ``poison`` can
    never be processed: the handler fails and NAKs it, which asks for an immediate redelivery.
    After the ``max_deliver``-th failure JetStream gives up on that message, publishes an
    advisory on ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.LAB_ORDERS.processor`` (JSON
    with ``stream_seq`` and ``deliveries``) and moves on. JetStream has no built-in DLQ; a
    small listener on that advisory fetches the message by sequence (``get_msg``) and
    publishes a copy, with the error and the delivery count in headers, to the stream
    ``LAB_DLQ``. The other orders are processed normally.

    Note: the advisory is sent when the consumer next *tries* to deliver, i.e. on the next
    pull request after the last failure, not at the moment of the last NAK.

    Parameters: ``orders`` (1-100), ``poison`` (order number 1-``orders``), ``max_deliver``
    (1-10).

    Returns a dict with:

    * ``deliveries``: per delivery ``seq``, ``order``, ``num_delivered``, ``outcome``
      (``"ack"`` or ``"nak"``), sorted by sequence then delivery count;
    * ``processed``: sequences ACKed; ``poison_deliveries``: how often the poison was tried;
    * ``advisory``: ``stream``, ``consumer``, ``stream_seq``, ``deliveries`` from the advisory;
    * ``dlq``: messages in ``LAB_DLQ``: ``dlq_seq``, ``data``, ``headers``;
    * ``consumer_ack_pending``: 0 (the consumer is not stuck on the poison message);
    * ``orders``, ``max_deliver``, ``elapsed_s``, ``summary``.
    """
    _validate.integer("orders", orders, minimum=1, maximum=100)
    _validate.integer("poison", poison, minimum=1, maximum=orders)
    _validate.integer("max_deliver", max_deliver, minimum=1, maximum=10)
    return _run_lab(server, lambda url: _dlq(url, orders, poison, max_deliver))


async def _dlq(url: str, orders: int, poison: int, max_deliver: int) -> dict[str, Any]:
    stream, subject, durable = "LAB_ORDERS", "lab.dlq.orders", "processor"
    dlq_stream, dlq_subject = "LAB_DLQ", "lab.dlq.dead"
    advisory_subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"
    async with _connect(url, "dlq") as nc:
        js = nc.jetstream()
        await _fresh_stream(js, StreamConfig(name=stream, subjects=[subject]))
        await _fresh_stream(js, StreamConfig(name=dlq_stream, subjects=[dlq_subject]))
        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, max_deliver=max_deliver
            ),
        )
        for n in range(1, orders + 1):
            body = f"order-{n}" + (" (malformed)" if n == poison else "")
            await js.publish(subject, body.encode())

        last_error: dict[int, str] = {}
        advisories: list[dict[str, Any]] = []
        moved = asyncio.Event()

        async def to_dead_letter_queue(advisory_msg: Msg) -> None:
            event = json.loads(advisory_msg.data)
            advisories.append(event)
            seq = int(event["stream_seq"])
            original = await js.get_msg(stream, seq)
            await js.publish(
                dlq_subject,
                original.data or b"",
                headers={
                    "Dlq-Original-Stream": stream,
                    "Dlq-Original-Subject": original.subject or "",
                    "Dlq-Original-Seq": str(seq),
                    "Dlq-Deliveries": str(event["deliveries"]),
                    "Dlq-Error": last_error.get(seq, "unknown"),
                },
            )
            moved.set()

        await nc.subscribe(advisory_subject, cb=to_dead_letter_queue)
        await nc.flush()

        sub = await js.pull_subscribe_bind(durable, stream=stream)
        deliveries: list[dict[str, Any]] = []
        processed: list[int] = []
        naks = 0
        while len(processed) < orders - 1 or naks < max_deliver:
            msg = await _next(sub, timeout=_PATIENCE)
            seq, body = msg.metadata.sequence.stream, _text(msg)
            entry = {"seq": seq, "order": body, "num_delivered": msg.metadata.num_delivered}
            deliveries.append(entry)
            if "malformed" in body:
                last_error[seq] = f"ValueError: cannot parse {body!r}"
                entry["outcome"] = "nak"
                naks += 1
                await _nak_sync(nc, msg)
            else:
                entry["outcome"] = "ack"
                processed.append(seq)
                await msg.ack_sync()

        # The advisory goes out when the consumer next looks for a message to deliver, so
        # make one more (empty) pull request.
        with contextlib.suppress(asyncio.TimeoutError, nats.errors.TimeoutError):
            extra = await sub.fetch(1, timeout=0.25)
            raise AssertionError(f"unexpected delivery after the poison gave up: {extra}")
        await asyncio.wait_for(moved.wait(), timeout=_PATIENCE)
        await sub.unsubscribe()

        dlq: list[dict[str, Any]] = []
        for dlq_seq in range(1, (await js.stream_info(dlq_stream)).state.messages + 1):
            raw = await js.get_msg(dlq_stream, dlq_seq)
            headers = {k: v for k, v in (raw.headers or {}).items() if k.startswith("Dlq-")}
            dlq.append({"dlq_seq": dlq_seq, "data": (raw.data or b"").decode(), "headers": headers})
        info = await js.consumer_info(stream, durable)

    event = advisories[0]
    advisory = {k: event[k] for k in ("stream", "consumer", "stream_seq", "deliveries")}
    deliveries.sort(key=lambda d: (d["seq"], d["num_delivered"]))
    summary = (
        f"{orders} orders: {len(processed)} processed; order-{poison} failed "
        f"{naks} times (max_deliver={max_deliver}), the max-deliveries advisory fired and it "
        f"was copied to {dlq_stream} with its error and delivery count; "
        f"{info.num_ack_pending} still pending."
    )
    return {
        "orders": orders,
        "max_deliver": max_deliver,
        "deliveries": deliveries,
        "processed": processed,
        "poison_deliveries": naks,
        "advisory": advisory,
        "dlq": dlq,
        "consumer_ack_pending": info.num_ack_pending,
        "summary": summary,
    }


# --------------------------------------------------------------------------------------------
# 5. The log: offsets, independent readers, replay, retention
# --------------------------------------------------------------------------------------------


def log_lab(
    server: ServerArg = None,
    *,
    events: int = 8,
    a_reads: int = 5,
    b_start: int = 4,
    b_reads: int = 3,
    max_msgs: int = 5,
    max_age: float = 0.5,
) -> dict[str, Any]:
    """A stream as a log: offsets, readers at their own positions, replay and retention.

    ``events`` events are appended to ``LAB_LOG``; their **stream sequence numbers** 1, 2, ...
    are the offsets. Reader A (a durable consumer with ``DeliverPolicy.ALL``) reads ``a_reads``
    of them; reader B (``DeliverPolicy.BY_START_SEQUENCE`` at ``b_start``) reads ``b_reads``.
    Each durable consumer keeps its own position on the server: A later resumes where it
    stopped, whatever B did. Reading removes nothing, so a new consumer can **replay** the log
    from the start.

    Retention decides what is kept, independently of readers. ``LAB_LOG_CAPPED`` keeps the last
    ``max_msgs`` messages (``max_msgs``): after ``events`` appends it holds sequences
    ``events - max_msgs + 1`` .. ``events``, and a replay "from 1" starts at the oldest kept.
    ``LAB_LOG_AGED`` keeps messages for ``max_age`` seconds: three events expire, and the next
    append gets sequence 4; offsets are never reused.

    Parameters: ``events`` (2-100), ``a_reads`` (1-``events``), ``b_start`` (1-``events``),
    ``b_reads`` (1 up to the events from ``b_start``), ``max_msgs`` (1-``events``),
    ``max_age`` (seconds, 0.1-5; the server's minimum is 100 ms).

    Returns a dict with ``offsets``; ``reader_a`` (``read``, ``next``, ``resumed``);
    ``reader_b`` (``start``, ``read``, ``next``); ``stream_messages_after_reads``;
    ``replay_from_start``; ``count_retention`` (``max_msgs``, ``published``, ``messages``,
    ``first_seq``, ``last_seq``, ``replay_from_start``, ``replay_from_seq_1``);
    ``age_retention`` (``max_age``, ``published``, ``messages_before``, ``messages_after``,
    ``next_seq``); ``elapsed_s``; ``summary``.
    """
    _validate.integer("events", events, minimum=2, maximum=100)
    _validate.integer("a_reads", a_reads, minimum=1, maximum=events)
    _validate.integer("b_start", b_start, minimum=1, maximum=events)
    _validate.integer("b_reads", b_reads, minimum=1, maximum=events - b_start + 1)
    _validate.integer("max_msgs", max_msgs, minimum=1, maximum=events)
    _validate.number("max_age", max_age, minimum=0.1, maximum=5)
    return _run_lab(
        server, lambda url: _log(url, events, a_reads, b_start, b_reads, max_msgs, max_age)
    )


async def _log(
    url: str, events: int, a_reads: int, b_start: int, b_reads: int, max_msgs: int, max_age: float
) -> dict[str, Any]:
    async with _connect(url, "log") as nc:
        js = nc.jetstream()

        # Offsets and independent readers.
        stream, subject = "LAB_LOG", "lab.log.events"
        await _fresh_stream(js, StreamConfig(name=stream, subjects=[subject]))
        offsets = [(await js.publish(subject, f"event-{n}".encode())).seq for n in range(events)]
        a_read = await _read(
            js, stream, "reader-a", a_reads, ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        b_read = await _read(
            js,
            stream,
            "reader-b",
            b_reads,
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=b_start),
        )
        a_next = (await js.consumer_info(stream, "reader-a")).delivered.stream_seq + 1
        b_next = (await js.consumer_info(stream, "reader-b")).delivered.stream_seq + 1
        a_resumed = await _read(js, stream, "reader-a", events - a_reads, None)
        kept = (await js.stream_info(stream)).state.messages
        replay = await _read(
            js, stream, "replay", events, ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )

        # Retention by count.
        capped, capped_subject = "LAB_LOG_CAPPED", "lab.capped.events"
        await _fresh_stream(
            js, StreamConfig(name=capped, subjects=[capped_subject], max_msgs=max_msgs)
        )
        for n in range(events):
            await js.publish(capped_subject, f"event-{n + 1}".encode())
        state = (await js.stream_info(capped)).state
        capped_replay = await _read(
            js, capped, "replay", state.messages, ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        capped_from_1 = await _read(
            js,
            capped,
            "from-1",
            state.messages,
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=1),
        )
        count_retention = {
            "max_msgs": max_msgs,
            "published": events,
            "messages": state.messages,
            "first_seq": state.first_seq,
            "last_seq": state.last_seq,
            "replay_from_start": capped_replay,
            "replay_from_seq_1": capped_from_1,
        }

        # Retention by age.
        aged, aged_subject = "LAB_LOG_AGED", "lab.aged.events"
        await _fresh_stream(js, StreamConfig(name=aged, subjects=[aged_subject], max_age=max_age))
        for n in range(3):
            await js.publish(aged_subject, f"event-{n + 1}".encode())
        before = (await js.stream_info(aged)).state.messages
        deadline = time.monotonic() + max_age + _PATIENCE
        after = before
        await asyncio.sleep(max_age)
        while after and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            after = (await js.stream_info(aged)).state.messages
        next_seq = (await js.publish(aged_subject, b"event-4")).seq
        age_retention = {
            "max_age": max_age,
            "published": 3,
            "messages_before": before,
            "messages_after": after,
            "next_seq": next_seq,
        }

    summary = (
        f"{events} events at offsets 1..{events}: reader A read {a_read[0]}..{a_read[-1]}, "
        f"reader B from {b_start} read {b_read[0]}..{b_read[-1]}, A resumed at {a_next}; "
        f"replay from the start gave all {len(replay)}; max_msgs={max_msgs} kept "
        f"{state.first_seq}..{state.last_seq}; max_age={_seconds(max_age)} expired "
        f"{before - after} of {before} and the next append got seq {next_seq}."
    )
    return {
        "offsets": offsets,
        "reader_a": {"read": a_read, "next": a_next, "resumed": a_resumed},
        "reader_b": {"start": b_start, "read": b_read, "next": b_next},
        "stream_messages_after_reads": kept,
        "replay_from_start": replay,
        "count_retention": count_retention,
        "age_retention": age_retention,
        "summary": summary,
    }
