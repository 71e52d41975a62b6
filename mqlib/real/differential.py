"""Differential runs: the same script played on the simulator and on a real JetStream server.

The simulator claims to model real brokers; this module checks the claim. A scenario is written
**once**, as data, and two adapters play it:

* on the simulator (:mod:`mqlib.models`, simulated time), and
* on a throwaway NATS JetStream server (real time, real client),

and both return the same plain structure, so a test (or a notebook) can compare them with ``==``.

Two kinds of script:

**Work-queue scripts** (chapters 1 and 6) are a list of steps: :class:`Publish` a message,
:class:`Receive` one as a named worker and then ACK it, crash without ACK or fail without ACK,
:class:`WaitPastTimeout` (let the visibility timeout / ``ack_wait`` expire), :class:`ExpectNothing`.
On the simulator they drive a :class:`~mqlib.models.work_queue.WorkQueue` (or, with
``max_receives``, a :class:`~mqlib.models.dlq.RedriveQueue` with a dead letter queue). On
JetStream they drive a stream with work-queue retention and **one durable pull consumer shared by
all workers** (each worker on its own connection), ``ack_wait`` = the visibility timeout,
``max_deliver`` = ``max_receives``; the max-deliveries advisory *moves* the message to a DLQ
stream (copy, then delete from the work queue). :func:`simulate_script` and
:func:`run_script_on_jetstream` both return a :class:`QueueOutcome`.

**Delivery-guarantee runs** (chapter 3) reuse the chapter's own fault schedule
(:class:`~mqlib.models.delivery.Fault`: lost message, lost ACK, consumer crash before/after the
effect, lost commit). :func:`simulate_guarantee` runs
:func:`~mqlib.models.delivery.simulate_pipeline`; :func:`run_guarantee_on_jetstream` plays the
same faults against JetStream - the idempotent producer is ``Nats-Msg-Id`` deduplication, a
consumer that never ACKs is redelivered after ``ack_wait`` - with the same handlers
(:func:`~mqlib.models.delivery.charge`, :func:`~mqlib.models.delivery.charge_once`). Both return
a :class:`GuaranteeOutcome`.

A real network cannot lose one chosen packet on request, so the JetStream adapter *acts out* a
fault: a "lost" publish is not sent, a "lost" PubAck is ignored (the producer retries), a crashed
consumer closes its connection without ACKing. Everything the broker does in response
(deduplication, redelivery, delivery counts, max-deliveries) is the real broker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from mqlib import _validate
from mqlib.core import Simulation
from mqlib.models.delivery import (
    GUARANTEES,
    BalanceStore,
    ChargeMessage,
    Fault,
    FaultSchedule,
    charge,
    charge_once,
    simulate_pipeline,
)
from mqlib.models.dlq import DeadLetterQueue, RedriveQueue
from mqlib.models.work_queue import WorkQueue
from mqlib.real.labs import ServerArg, _connect, _fresh_stream, _server_url
from mqlib.real.server import run

__all__ = [
    "LATE_ACK",
    "HEARTBEAT",
    "AckHeld",
    "AckResult",
    "Heartbeat",
    "Wait",
    "CHAPTER_1",
    "CHAPTER_3_FAULTS",
    "CHAPTER_6",
    "DeadLetterRow",
    "Delivered",
    "ExpectNothing",
    "GuaranteeOutcome",
    "LogDelivery",
    "Publication",
    "Publish",
    "QueueOutcome",
    "QueueScript",
    "Receive",
    "WaitPastTimeout",
    "run_guarantee_on_jetstream",
    "run_script_on_jetstream",
    "simulate_guarantee",
    "simulate_script",
    "side_by_side",
]

#: Seconds a real receive waits for a message the script expects (beyond any ack_wait).
PATIENCE = 5.0
#: Seconds a real :class:`ExpectNothing` listens before concluding that nothing is there.
QUIET = 0.3
#: Seconds past the timeout that :class:`WaitPastTimeout` waits, at least (both adapters).
MIN_MARGIN = 0.25

OUTCOMES = ("ack", "crash", "fail", "hold")


# --------------------------------------------------------------------------------------------
# Work-queue scripts: the steps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Publish:
    """The producer sends message ``message`` (its id) with ``body`` (default: the id)."""

    message: str
    body: str | None = None

    def __post_init__(self) -> None:
        _validate.text("message", self.message)
        if self.body is not None:
            _validate.text("body", self.body)


@dataclass(frozen=True)
class Receive:
    """Worker ``who`` receives the next message, then:

    * ``"ack"``: processes it and ACKs it;
    * ``"crash"``: dies before the ACK (the message stays in flight until the timeout);
    * ``"fail"``: its handler fails with ``error``; no ACK, so the message comes back after the
      timeout - or, after ``max_receives`` receives, goes to the dead letter queue;
    * ``"hold"``: it keeps the message and goes on working (alive, connection open); a later
      :class:`Heartbeat` or :class:`AckHeld` by the same worker refers to it.
    """

    who: str
    then: str = "ack"
    error: str | None = None

    def __post_init__(self) -> None:
        _validate.text("who", self.who)
        _validate.choice("then", self.then, OUTCOMES)
        if self.then == "fail":
            _validate.text("error", self.error)
        elif self.error is not None:
            raise ValueError(f"error is only for then='fail', got then={self.then!r}")


@dataclass(frozen=True)
class WaitPastTimeout:
    """Let the visibility timeout (``ack_wait``) of every un-ACKed message expire."""


@dataclass(frozen=True)
class ExpectNothing:
    """Worker ``who`` asks for a message and should get none (recorded like an empty receive).

    On JetStream this pull is also what makes the consumer notice that a message has used up
    ``max_deliver`` and send the max-deliveries advisory.
    """

    who: str

    def __post_init__(self) -> None:
        _validate.text("who", self.who)


@dataclass(frozen=True)
class Wait:
    """Let ``seconds`` pass (0 < seconds <= 30): a worker's processing time, say."""

    seconds: float

    def __post_init__(self) -> None:
        _validate.number("seconds", self.seconds, minimum=0, allow_min=False, maximum=30)


@dataclass(frozen=True)
class Heartbeat:
    """Worker ``who``, still working on the message it holds, asks for more time.

    Simulator: ``WorkQueue.extend_visibility(delivery)`` (a fresh visibility timeout, counted
    from now); JetStream: ``msg.in_progress()`` (the consumer restarts ``ack_wait``); SQS would
    call ``ChangeMessageVisibility``.
    """

    who: str

    def __post_init__(self) -> None:
        _validate.text("who", self.who)


@dataclass(frozen=True)
class AckHeld:
    """Worker ``who`` finishes the message it holds and ACKs it, however late that is.

    Whether the ACK was *accepted* (it deleted the message) is recorded in
    :attr:`QueueOutcome.acks`.
    """

    who: str

    def __post_init__(self) -> None:
        _validate.text("who", self.who)


Step = Publish | Receive | WaitPastTimeout | ExpectNothing | Wait | Heartbeat | AckHeld
_STEP_TYPES = (Publish, Receive, WaitPastTimeout, ExpectNothing, Wait, Heartbeat, AckHeld)


@dataclass(frozen=True)
class QueueScript:
    """A work-queue scenario: ``steps`` plus the queue's settings.

    ``visibility_timeout`` is JetStream's ``ack_wait`` (seconds; keep it small, the real run
    sleeps through it). ``max_receives``: ``None`` for no dead letter queue, else SQS's
    ``maxReceiveCount`` = JetStream's ``max_deliver``.
    """

    steps: tuple[Step, ...]
    visibility_timeout: float = 0.5
    max_receives: int | None = None
    name: str = "script"

    def __post_init__(self) -> None:
        steps = tuple(_validate.collection("steps", self.steps))
        for step in steps:
            if not isinstance(step, _STEP_TYPES):
                raise TypeError(
                    "steps must be Publish, Receive, WaitPastTimeout, ExpectNothing, Wait, "
                    f"Heartbeat or AckHeld, got {step!r}"
                )
        ids = [s.message for s in steps if isinstance(s, Publish)]
        if len(set(ids)) != len(ids):
            raise ValueError(f"each Publish needs a distinct message id, got {ids!r}")
        holding: set[str] = set()
        for step in steps:  # a Heartbeat/AckHeld needs a message held by that worker
            if isinstance(step, Receive) and step.then == "hold":
                if step.who in holding:
                    raise ValueError(f"worker {step.who!r} already holds a message")
                holding.add(step.who)
            elif isinstance(step, Heartbeat | AckHeld):
                if step.who not in holding:
                    raise ValueError(
                        f"{type(step).__name__}({step.who!r}) needs an earlier "
                        f"Receive({step.who!r}, 'hold')"
                    )
                if isinstance(step, AckHeld):
                    holding.discard(step.who)
        object.__setattr__(self, "steps", steps)
        _validate.number("visibility_timeout", self.visibility_timeout, minimum=0.1, maximum=30)
        if self.max_receives is not None:
            _validate.integer("max_receives", self.max_receives, minimum=1, maximum=10)
        _validate.text("name", self.name)

    @property
    def wait_seconds(self) -> float:
        """How long :class:`WaitPastTimeout` waits: the timeout plus a margin."""
        return self.visibility_timeout + max(MIN_MARGIN, self.visibility_timeout / 2)

    def body_of(self, message: str) -> str:
        for step in self.steps:
            if isinstance(step, Publish) and step.message == message:
                return step.message if step.body is None else step.body
        raise KeyError(message)


class Delivered(NamedTuple):
    """One receive: ``who`` got ``message`` for the ``count``-th time and ``acked`` it.

    An empty receive is ``(who, None, 0, False)``.
    """

    who: str
    message: str | None
    count: int
    acked: bool


class DeadLetterRow(NamedTuple):
    """A message in the dead letter queue: id, body, receive count and last error."""

    message: str
    body: str
    receive_count: int
    error: str | None


class AckResult(NamedTuple):
    """An :class:`AckHeld`: ``who`` ACKed its ``count``-th delivery of ``message``;
    ``accepted`` is True when that ACK deleted the message."""

    who: str
    message: str
    count: int
    accepted: bool


@dataclass(frozen=True)
class QueueOutcome:
    """What a work-queue script did: every receive, every held ACK and whether it was accepted,
    the DLQ's contents, messages left."""

    deliveries: list[Delivered]
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    remaining: int = 0
    acks: list[AckResult] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Work-queue scripts: the simulator
# --------------------------------------------------------------------------------------------


def simulate_script(script: QueueScript) -> QueueOutcome:
    """Play ``script`` on the simulator's work queue (with a DLQ if ``max_receives`` is set)."""
    if not isinstance(script, QueueScript):
        raise TypeError(f"script must be a QueueScript, got {type(script).__name__}")
    sim = Simulation(seed=0)
    dlq: DeadLetterQueue | None = None
    queue: WorkQueue
    if script.max_receives is None:
        queue = WorkQueue(sim, visibility_timeout=script.visibility_timeout, name="work")
    else:
        dlq = DeadLetterQueue(sim, name="dlq")
        queue = RedriveQueue(
            sim,
            visibility_timeout=script.visibility_timeout,
            name="work",
            dead_letter_queue=dlq,
            max_receives=script.max_receives,
        )
    deliveries: list[Delivered] = []
    acks: list[AckResult] = []
    held: dict[str, Any] = {}
    for step in script.steps:
        if isinstance(step, Publish):
            queue.send(script.body_of(step.message), message_id=step.message)
        elif isinstance(step, WaitPastTimeout):
            sim.advance(script.wait_seconds)
        elif isinstance(step, Wait):
            sim.advance(step.seconds)
        elif isinstance(step, Heartbeat):
            queue.extend_visibility(held[step.who])
        elif isinstance(step, AckHeld):
            delivery = held.pop(step.who)
            accepted = queue.ack(delivery)
            acks.append(AckResult(step.who, delivery.message.id, delivery.receive_count, accepted))
        else:
            request = queue.receive(step.who)
            if not request.triggered:  # nothing visible: stop long-polling
                queue.cancel_receive(request)
                deliveries.append(Delivered(step.who, None, 0, False))
                continue
            delivery = request.value
            acked = False
            if isinstance(step, ExpectNothing) or step.then == "crash":
                pass  # never ACKed: it stays in flight until the visibility timeout
            elif step.then == "hold":
                held[step.who] = delivery
            elif step.then == "ack":
                acked = queue.ack(delivery)
            elif isinstance(queue, RedriveQueue):
                queue.fail(delivery, step.error or "")
            deliveries.append(
                Delivered(step.who, delivery.message.id, delivery.receive_count, acked)
            )
    dead = [] if dlq is None else dlq.inspect()
    return QueueOutcome(
        deliveries=deliveries,
        dead_letters=[
            DeadLetterRow(d["message_id"], d["body"], d["receive_count"], d["last_error"])
            for d in dead
        ],
        remaining=queue.depth,
        acks=acks,
    )


# --------------------------------------------------------------------------------------------
# Work-queue scripts: JetStream
# --------------------------------------------------------------------------------------------

_STREAM, _SUBJECT, _DURABLE = "DIFF_WORK", "diff.work.jobs", "workers"
_DLQ_STREAM, _DLQ_SUBJECT = "DIFF_DLQ", "diff.work.dead"


def run_script_on_jetstream(script: QueueScript, server: ServerArg = None) -> QueueOutcome:
    """Play ``script`` on a real JetStream server (a throwaway one unless ``server`` is given).

    ``server``: ``None``, a running :class:`~mqlib.real.server.JetStreamServer` or its
    ``nats://127.0.0.1:<port>`` URL. The streams ``DIFF_WORK`` and ``DIFF_DLQ`` are re-created.
    """
    if not isinstance(script, QueueScript):
        raise TypeError(f"script must be a QueueScript, got {type(script).__name__}")
    with _server_url(server) as url:
        return run(_play(url, script))


async def _fetch_one(sub: JetStreamContext.PullSubscription, timeout: float) -> Msg | None:
    with contextlib.suppress(asyncio.TimeoutError, nats.errors.TimeoutError):
        return (await sub.fetch(1, timeout=timeout))[0]
    return None


async def _play(url: str, script: QueueScript) -> QueueOutcome:
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(_connect(url, "diff-admin"))
        js = admin.jetstream()
        await _fresh_stream(
            js,
            StreamConfig(name=_STREAM, subjects=[_SUBJECT], retention=RetentionPolicy.WORK_QUEUE),
        )
        await _fresh_stream(js, StreamConfig(name=_DLQ_STREAM, subjects=[_DLQ_SUBJECT]))
        await js.add_consumer(
            _STREAM,
            ConsumerConfig(
                durable_name=_DURABLE,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=script.visibility_timeout,
                max_deliver=script.max_receives or -1,
            ),
        )

        # The DLQ: on the max-deliveries advisory, copy the message to DIFF_DLQ with its error
        # and delivery count, then delete it from the work queue (SQS "moves" it).
        last_error: dict[int, str] = {}
        moved: list[int] = []

        async def to_dead_letter_queue(advisory: Msg) -> None:
            event = json.loads(advisory.data)
            seq = int(event["stream_seq"])
            original = await js.get_msg(_STREAM, seq)
            headers = {
                "Dlq-Message-Id": (original.headers or {}).get("Nats-Msg-Id", ""),
                "Dlq-Deliveries": str(event["deliveries"]),
            }
            if seq in last_error:
                headers["Dlq-Error"] = last_error[seq]
            await js.publish(_DLQ_SUBJECT, original.data or b"", headers=headers)
            await js.delete_msg(_STREAM, seq)
            moved.append(seq)

        advisories = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{_STREAM}.{_DURABLE}"
        await admin.subscribe(advisories, cb=to_dead_letter_queue)
        await admin.flush()

        workers: dict[str, tuple[NATS, JetStreamContext.PullSubscription]] = {}

        async def worker(name: str) -> JetStreamContext.PullSubscription:
            if name not in workers:  # first use, or restarted after a crash
                nc = await nats.connect(url, name=name, allow_reconnect=False, connect_timeout=2)
                stack.push_async_callback(nc.close)
                sub = await nc.jetstream().pull_subscribe_bind(_DURABLE, stream=_STREAM)
                workers[name] = (nc, sub)
            return workers[name][1]

        deliveries: list[Delivered] = []
        acks: list[AckResult] = []
        held: dict[str, Msg] = {}
        failed_out: set[int] = set()  # seqs whose last allowed delivery failed: DLQ-bound
        for step in script.steps:
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Heartbeat):
                await held[step.who].in_progress()
                await admin.flush()  # a round trip, so the server has seen it before we go on
            elif isinstance(step, AckHeld):
                msg = held.pop(step.who)
                # A work-queue stream deletes a message when it is ACKed, so an ACK was accepted
                # exactly when the stream lost a message by it.
                before = (await js.stream_info(_STREAM)).state.messages
                await msg.ack_sync()
                after = (await js.stream_info(_STREAM)).state.messages
                acks.append(
                    AckResult(
                        step.who,
                        (msg.headers or {}).get("Nats-Msg-Id", ""),
                        msg.metadata.num_delivered,
                        after < before,
                    )
                )
            elif isinstance(step, Publish):
                await js.publish(
                    _SUBJECT,
                    script.body_of(step.message).encode(),
                    headers={"Nats-Msg-Id": step.message},
                )
            elif isinstance(step, WaitPastTimeout):
                await asyncio.sleep(script.wait_seconds)
            else:
                sub = await worker(step.who)
                quiet = isinstance(step, ExpectNothing)
                msg = await _fetch_one(sub, QUIET if quiet else PATIENCE)
                if msg is None:
                    deliveries.append(Delivered(step.who, None, 0, False))
                    continue
                seq, count = msg.metadata.sequence.stream, msg.metadata.num_delivered
                acked = False
                if quiet or step.then == "crash":
                    nc, _ = workers.pop(step.who)  # dies without ACK; a later Receive restarts it
                    await nc.close()
                elif step.then == "hold":
                    held[step.who] = msg  # alive and working: no ACK yet, connection open
                elif step.then == "ack":
                    await msg.ack_sync()
                    acked = True
                else:  # "fail": no ACK, so it comes back after ack_wait (or is dead-lettered)
                    last_error[seq] = step.error or ""
                if not acked and script.max_receives is not None and count >= script.max_receives:
                    failed_out.add(seq)
                message_id = (msg.headers or {}).get("Nats-Msg-Id")
                deliveries.append(Delivered(step.who, message_id, count, acked))

        # The advisory handler runs concurrently; wait for the moves the deliveries call for.
        # (JetStream sends the advisory on the first pull after the last ack_wait expired.)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while len(moved) < len(failed_out) and loop.time() < deadline:
            await asyncio.sleep(0.02)

        dead_letters: list[DeadLetterRow] = []
        dlq_state = (await js.stream_info(_DLQ_STREAM)).state
        dlq_seqs = range(dlq_state.first_seq, dlq_state.last_seq + 1) if dlq_state.messages else ()
        for dlq_seq in dlq_seqs:
            raw = await js.get_msg(_DLQ_STREAM, dlq_seq)
            headers = raw.headers or {}
            dead_letters.append(
                DeadLetterRow(
                    headers.get("Dlq-Message-Id", ""),
                    (raw.data or b"").decode(),
                    int(headers.get("Dlq-Deliveries", "0")),
                    headers.get("Dlq-Error"),
                )
            )
        remaining = (await js.stream_info(_STREAM)).state.messages
    return QueueOutcome(
        deliveries=deliveries, dead_letters=dead_letters, remaining=remaining, acks=acks
    )


# --------------------------------------------------------------------------------------------
# Chapter 3: delivery guarantees under a fault schedule
# --------------------------------------------------------------------------------------------


class Publication(NamedTuple):
    """One send attempt by the producer and what became of it: ``"stored"``, ``"duplicate"``
    (the broker recognised a retry and stored nothing) or ``"lost"`` (never reached it)."""

    message: str
    attempt: int
    result: str


class LogDelivery(NamedTuple):
    """The consumer fetched the message stored at ``position`` (1, 2, ...) for the ``count``-th
    time (JetStream's ``num_delivered``)."""

    message: str
    position: int
    count: int


@dataclass(frozen=True)
class GuaranteeOutcome:
    """What a chapter 3 run did, end to end.

    ``publications``: every send attempt; ``stored``: message ids in the broker's log, in order;
    ``deliveries``: every fetch; ``effects``: charges applied per message id; ``balance``: the
    account at the end (1000 at the start, $10 a charge).
    """

    guarantee: str
    publications: list[Publication]
    stored: list[str]
    deliveries: list[LogDelivery]
    effects: dict[str, int]
    balance: int


def _check_run(guarantee: str, messages: int, faults: Any) -> list[Fault]:
    _validate.choice("guarantee", guarantee, GUARANTEES)
    _validate.integer("messages", messages, minimum=1, maximum=100)
    faults = list(_validate.collection("faults", faults))
    FaultSchedule(faults)  # validates
    return faults


def simulate_guarantee(
    guarantee: str, messages: int, faults: list[Fault] | tuple[Fault, ...] = ()
) -> GuaranteeOutcome:
    """Run chapter 3's producer -> broker -> consumer pipeline on the simulator.

    JetStream acknowledges each message on its own, so the simulator runs with
    ``commit_rule="per-message"``: a lost consumer ack brings that message back after
    ``ack_wait``. (The chapter's default is Kafka's rule, ``"offset"``, under which a later commit
    covers a lost one; the two differ only on ``lose_commit`` faults.)
    """
    faults = _check_run(guarantee, messages, faults)
    pipeline = simulate_pipeline(guarantee, messages, faults, commit_rule="per-message")
    publications: list[Publication] = []
    in_flight: dict[str, list[int]] = {}
    per_position: Counter[int] = Counter()
    deliveries: list[LogDelivery] = []
    results = {"stored": "stored", "duplicate_rejected": "duplicate", "message_lost": "lost"}
    for event in pipeline.sim.trace:
        data = event.data
        if event.kind == "send":
            in_flight.setdefault(data["message"], []).append(data["attempt"])
        elif event.kind in results:
            attempt = in_flight[data["message"]].pop(0)
            publications.append(Publication(data["message"], attempt, results[event.kind]))
        elif event.kind == "delivered":
            position = data["offset"] + 1
            per_position[position] += 1
            deliveries.append(LogDelivery(data["message"], position, per_position[position]))
    return GuaranteeOutcome(
        guarantee=guarantee,
        publications=publications,
        stored=[record.message.id for record in pipeline.broker.log],
        deliveries=deliveries,
        effects={row["message"]: row["effects"] for row in pipeline.per_message()},
        balance=pipeline.store.balance,
    )


def run_guarantee_on_jetstream(
    guarantee: str,
    messages: int,
    faults: list[Fault] | tuple[Fault, ...] = (),
    *,
    server: ServerArg = None,
    ack_wait: float = 0.5,
) -> GuaranteeOutcome:
    """Play the same run on JetStream.

    Producer: ``exactly-once`` publishes with ``Nats-Msg-Id`` = the message id (the broker drops
    a retry it has already stored), the others without; a lost message or lost PubAck makes the
    producer retry, except under ``at-most-once`` (fire and forget). Consumer: one durable pull
    consumer with ``ack_wait``; ``at-most-once`` ACKs before the charge, the others after it. A
    crash (or a lost ACK) closes the consumer's connection without ACKing; the restarted consumer
    waits past ``ack_wait`` first, so the un-ACKed message is redelivered before anything newer -
    as the simulator's consumer resumes from its first unacknowledged message under
    ``commit_rule="per-message"`` (JetStream's acks are per message; Kafka's committed offset,
    the simulator's default, would let the next commit cover a lost one).
    """
    faults = _check_run(guarantee, messages, faults)
    _validate.number("ack_wait", ack_wait, minimum=0.1, maximum=30)
    with _server_url(server) as url:
        return run(_guarantee(url, guarantee, messages, faults, ack_wait))


async def _guarantee(
    url: str, guarantee: str, messages: int, fault_list: list[Fault], ack_wait: float
) -> GuaranteeOutcome:
    stream, subject, durable = "DIFF_GUARANTEE", "diff.guarantee.charges", "billing"
    faults = FaultSchedule(fault_list)
    fire_and_forget = guarantee == "at-most-once"
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(_connect(url, "diff-producer"))
        js = admin.jetstream()
        await _fresh_stream(js, StreamConfig(name=stream, subjects=[subject]))

        # The producer.
        publications: list[Publication] = []
        for number in range(1, messages + 1):
            message_id = f"m{number}"
            headers = {"Nats-Msg-Id": message_id} if guarantee == "exactly-once" else None
            attempt = 0
            while True:
                attempt += 1
                if faults.hit("lose_message", number, attempt):
                    publications.append(Publication(message_id, attempt, "lost"))
                else:
                    ack = await js.publish(subject, message_id.encode(), headers=headers)
                    result = "duplicate" if ack.duplicate else "stored"
                    publications.append(Publication(message_id, attempt, result))
                    if fire_and_forget or not faults.hit("lose_ack", number, attempt):
                        break  # the producer saw the PubAck
                if fire_and_forget:
                    break
        stored_count = (await js.stream_info(stream)).state.messages
        stored = [
            (await js.get_msg(stream, seq)).data.decode() for seq in range(1, stored_count + 1)
        ]

        # The consumer.
        await js.add_consumer(
            stream,
            ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait),
        )
        handler = charge_once if guarantee == "exactly-once" else charge
        store = BalanceStore()
        per_id: Counter[str] = Counter()
        effects: Counter[str] = Counter()
        deliveries: list[LogDelivery] = []
        conn: NATS | None = None
        sub: JetStreamContext.PullSubscription | None = None
        done = 0

        async def restart(acked: bool) -> None:
            nonlocal conn, sub
            if conn is not None:
                await conn.close()
            conn = sub = None
            if not acked:  # the broker hands the message out again once ack_wait expires
                await asyncio.sleep(ack_wait + max(MIN_MARGIN, ack_wait / 2))

        while done < stored_count:
            if conn is None:
                conn = await nats.connect(url, name=durable, allow_reconnect=False)
                stack.push_async_callback(conn.close)
                sub = await conn.jetstream().pull_subscribe_bind(durable, stream=stream)
            assert sub is not None
            msg = await _fetch_one(sub, ack_wait + PATIENCE)
            if msg is None:
                raise RuntimeError(f"JetStream delivered nothing; {done} of {stored_count} done")
            message_id = msg.data.decode()
            number = int(message_id[1:])
            per_id[message_id] += 1
            delivery = per_id[message_id]  # the simulator's consumer counts per message id
            deliveries.append(
                LogDelivery(message_id, msg.metadata.sequence.stream, msg.metadata.num_delivered)
            )
            acked = False
            if fire_and_forget:  # commit first, then process
                if faults.hit("lose_commit", number, delivery):
                    await restart(acked=False)
                    continue
                await msg.ack_sync()
                acked = True
                done += 1
            if faults.hit("crash_before_effect", number, delivery):
                await restart(acked)
                continue
            before = store.balance
            handler(ChargeMessage(message_id, 10, number), store)
            if store.balance != before:
                effects[message_id] += 1
            if faults.hit("crash_after_effect", number, delivery):
                await restart(acked)
                continue
            if fire_and_forget:
                continue
            if faults.hit("lose_commit", number, delivery):
                await restart(acked=False)
                continue
            await msg.ack_sync()
            done += 1

    return GuaranteeOutcome(
        guarantee=guarantee,
        publications=publications,
        stored=stored,
        deliveries=deliveries,
        effects={f"m{n}": effects[f"m{n}"] for n in range(1, messages + 1)},
        balance=store.balance,
    )


# --------------------------------------------------------------------------------------------
# Showing the two side by side
# --------------------------------------------------------------------------------------------


def side_by_side(simulated: QueueOutcome, real: QueueOutcome) -> str:
    """A small text table of the two runs' receives, row by row, then what each left in the
    queue (and in its dead letter queue, if either has dead letters)."""
    if not isinstance(simulated, QueueOutcome) or not isinstance(real, QueueOutcome):
        raise TypeError("side_by_side needs two QueueOutcome objects")

    def cell(d: Delivered | None) -> str:
        if d is None:
            return "-"
        if d.message is None:
            return f"{d.who}: (nothing)"
        return f"{d.who}: {d.message} #{d.count} {'ACK' if d.acked else 'no ACK'}"

    rows = max(len(simulated.deliveries), len(real.deliveries))
    lines = [
        "worker: message #delivery count, ACK or not",
        f"{'simulator':28} {'JetStream':28} same?",
    ]
    for i in range(rows):
        s = simulated.deliveries[i] if i < len(simulated.deliveries) else None
        r = real.deliveries[i] if i < len(real.deliveries) else None
        lines.append(f"{cell(s):28} {cell(r):28} {'yes' if s == r else 'NO'}")
    if simulated.acks or real.acks:

        def ack_cell(a: AckResult | None) -> str:
            if a is None:
                return "-"
            return f"{a.who} ACKs {a.message} #{a.count}: {'deleted' if a.accepted else 'no-op'}"

        for i in range(max(len(simulated.acks), len(real.acks))):
            s_ack = simulated.acks[i] if i < len(simulated.acks) else None
            r_ack = real.acks[i] if i < len(real.acks) else None
            same = "yes" if s_ack == r_ack else "NO"
            lines.append(f"{ack_cell(s_ack):28} {ack_cell(r_ack):28} {same}")
    any_dead = bool(simulated.dead_letters or real.dead_letters)
    for label, outcome in (("simulator", simulated), ("JetStream", real)):
        line = f"{label}: {outcome.remaining} left in the queue"
        if any_dead:
            dlq = [f"{d.message} ({d.receive_count} receives)" for d in outcome.dead_letters]
            line += f"; dead letter queue: {', '.join(dlq) or 'empty'}"
        lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The chapters' scenarios
# --------------------------------------------------------------------------------------------

CHAPTER_1 = QueueScript(
    (
        *(Publish(f"m{n}") for n in range(1, 7)),
        Receive("A"),  # m1
        Receive("B"),  # m2
        Receive("C", "crash"),  # m3: C dies before its ACK
        Receive("A"),  # m4
        Receive("B"),  # m5
        WaitPastTimeout(),  # m3's visibility timeout expires
        Receive("A"),  # m3 again, receive count 2
        Receive("B"),  # m6
        ExpectNothing("C"),  # every message was ACKed once: nothing is left
    ),
    visibility_timeout=0.5,
    name="chapter 1: competing consumers, a crash before the ACK",
)
"""Chapter 1: six jobs, three competing consumers; C crashes holding m3, which comes back after
the visibility timeout with receive count 2 and is ACKed by A."""

LATE_ACK = QueueScript(
    (
        Publish("m1"),
        Receive("A", "hold"),  # A starts a job that takes longer than the visibility timeout
        WaitPastTimeout(),  # ... the timeout (ack_wait) runs out while A is still working
        Receive("B", "hold"),  # m1 again, receive 2: now A and B work on it at the same time
        AckHeld("A"),  # A finishes late: its ACK is accepted and deletes m1
        AckHeld("B"),  # B finishes: m1 is already gone, the ACK changes nothing
        ExpectNothing("C"),  # and m1 is not handed out a third time
    ),
    visibility_timeout=0.5,
    name="chapter 1: a visibility timeout shorter than the processing, a late ACK",
)
"""Chapter 1, issue 9 item 1: processing (0.75 s) outlasts the visibility timeout (0.5 s). The
message is handed to a second worker while the first still works on it (duplicate, concurrent
processing); the first worker's late ACK is accepted and deletes it (JetStream's rule, which
the simulator follows); the second ACK finds nothing to delete."""

HEARTBEAT = QueueScript(
    (
        Publish("m1"),
        Receive("A", "hold"),
        Wait(0.7),
        Heartbeat("A"),  # still working: the timeout starts again
        Wait(0.5),  # 1.2 s in all, past the 1 s timeout, but only 0.5 s since the heartbeat
        ExpectNothing("B"),  # so nobody else gets m1 (JetStream: B listens for 0.3 s)
        AckHeld("A"),
    ),
    visibility_timeout=1.0,
    name="chapter 1: the cure, a heartbeat while working",
)
"""The cure for :data:`LATE_ACK`: worker A sends a heartbeat (``in_progress()``) before the
timeout runs out, so no second worker receives the message and A's ACK deletes it."""

CHAPTER_3_FAULTS: tuple[Fault, ...] = (
    Fault("lose_message", message=3),
    Fault("lose_ack", message=5),
    Fault("crash_after_effect", message=7),
    Fault("crash_before_effect", message=8),
    Fault("lose_commit", message=9),
)
"""Chapter 3's fault schedule for ten messages (the chapter's ``DEFAULT_FAULTS``)."""

_POISON_ERROR = "ValueError: cannot parse 'order-3 (malformed)'"

CHAPTER_6 = QueueScript(
    (
        *(Publish(f"m{n}", f"order-{n}") for n in (1, 2)),
        Publish("m3", "order-3 (malformed)"),
        *(Publish(f"m{n}", f"order-{n}") for n in (4, 5, 6)),
        Receive("A"),  # m1
        Receive("B"),  # m2
        Receive("A", "fail", _POISON_ERROR),  # m3, receive 1
        Receive("B"),  # m4
        WaitPastTimeout(),
        Receive("A", "fail", _POISON_ERROR),  # m3, receive 2
        Receive("B"),  # m5
        WaitPastTimeout(),
        Receive("A", "fail", _POISON_ERROR),  # m3, receive 3 = max_receives
        Receive("B"),  # m6
        WaitPastTimeout(),  # m3 goes to the dead letter queue instead of coming back
        ExpectNothing("A"),
    ),
    visibility_timeout=0.5,
    max_receives=3,
    name="chapter 6: a poison message, max_receives=3 and a dead letter queue",
)
"""Chapter 6: six orders, order 3 is malformed and fails every time. After its third receive it
moves to the dead letter queue (with its error and receive count 3) while the others are ACKed."""
