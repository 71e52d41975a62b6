"""Delivery guarantees: what a producer, a broker and a consumer promise when the network fails.

A message travels producer -> broker -> consumer, and three things can go wrong on the way:

* the **message** is lost between producer and broker (``"lose_message"``);
* the broker's **acknowledgement** is lost on its way back to the producer (``"lose_ack"``): the
  broker stored the message, but the producer cannot know that;
* the consumer fails while handling a message: it **crashes before the effect**
  (``"crash_before_effect"``), **crashes after the effect** (``"crash_after_effect"``), or its
  **offset commit** never reaches the broker (``"lose_commit"``).

What a lost commit does depends on how the broker tracks the consumer's progress
(``commit_rule``):

``"offset"`` (Kafka, the default)
    The consumer's fetch position lives in the client. A commit whose request is lost changes
    nothing the consumer does: it carries on with the next record, and its next successful commit
    (a higher offset) covers the lost one. The message comes back only if the consumer restarts,
    or its partition moves to another member in a rebalance, *before* a later commit lands: then
    the group resumes from the stale committed offset. (Kafka raises ``CommitFailedException``
    for a different situation: the member was removed from the group, typically because
    ``max.poll.interval.ms`` passed between polls, and its partitions now belong to someone else.)
``"per-message"`` (JetStream, SQS, RabbitMQ)
    Each message is acknowledged on its own. An ack that never reaches the broker leaves that
    message unacknowledged, and the broker hands it out again (after JetStream's ``ack_wait`` or
    SQS's visibility timeout; on RabbitMQ when the channel closes). The model has the consumer
    resume from that message, as ``mqlib.real.differential`` does on JetStream.

How the producer and the consumer react decides the guarantee:

``"at-most-once"``
    The producer sends once and never retries (``acks=0``: it does not even wait for an ack). The
    consumer commits the offset *before* processing. Nothing is ever repeated, so there are no
    duplicates, but a lost message or a crash before the effect loses the message for good.
``"at-least-once"``
    The producer retries until the broker acks, and the broker does **not** deduplicate: a lost
    ack makes the producer send again and the broker stores the message twice. That is a Kafka
    producer with ``enable.idempotence=false`` (librdkafka's default, so confluent-kafka-python's),
    or a queue without deduplication. (Kafka's Java producer has defaulted to
    ``enable.idempotence=true`` and ``acks=all`` since 3.0, KIP-679: there a lost ack does not
    store a second copy.) The consumer processes, *then* commits; after a crash it resumes from
    the last committed offset and processes some messages again. Nothing is lost, but effects may
    be applied twice.
``"exactly-once"``
    The producer is *idempotent* (``enable.idempotence=true``): it tags every batch with its
    producer id and a per-partition sequence number, and the broker, which remembers the last
    few sequence numbers of each producer on each partition, drops a retry it has already
    stored. The consumer applies the effect and records the message id in one atomic
    transaction, and skips ids it has already applied. A message may still be *delivered* to the
    consumer twice (after a crash), but its effect is applied once. Kafka's own exactly-once
    (transactions, offsets committed inside them, ``isolation.level=read_committed``) covers
    reading from Kafka and writing back to Kafka; an effect outside Kafka, such as this charge,
    needs the consumer's id check, which is the application's job.

Every message here is "charge $10" against a bank balance, so the damage is visible: a lost message
leaves the balance too high, a duplicate effect leaves it too low.

Faults are not random at run time: a run follows a :class:`Fault` list (a *fault schedule*), so the
same schedule replays the same story. :func:`random_faults` draws a schedule from a seed.

>>> from mqlib.models.delivery import Fault, simulate
>>> faults = [Fault("lose_ack", message=2)]
>>> simulate("at-least-once", 3, faults).final_balance   # m2 stored twice, charged twice
960
>>> simulate("exactly-once", 3, faults).final_balance    # the broker drops the retry
970
"""

from __future__ import annotations

import inspect
import random
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation

__all__ = [
    "COMMIT_RULES",
    "FAULT_KINDS",
    "GUARANTEES",
    "BalanceStore",
    "Broker",
    "ChargeConsumer",
    "ChargeMessage",
    "DeliveryPipeline",
    "DeliveryResult",
    "Fault",
    "FaultSchedule",
    "Producer",
    "Record",
    "charge",
    "charge_once",
    "check_idempotent",
    "random_faults",
    "replay",
    "simulate",
    "simulate_pipeline",
]

GUARANTEES = ("at-most-once", "at-least-once", "exactly-once")
"""The delivery guarantees, weakest first."""

COMMIT_RULES = ("offset", "per-message")
"""How the broker learns the consumer's progress: Kafka's committed offset, where a later commit
covers a lost one, or an ack per message (JetStream, SQS, RabbitMQ), where a lost ack brings that
message back."""

FAULT_KINDS = (
    "lose_message",
    "lose_ack",
    "lose_commit",
    "crash_before_effect",
    "crash_after_effect",
)
"""What a :class:`Fault` can do. The first two hit the producer's send, the rest the consumer."""

PRODUCER_FAULTS = ("lose_message", "lose_ack")
CONSUMER_FAULTS = ("lose_commit", "crash_before_effect", "crash_after_effect")


# -- messages, the balance and the handlers ---------------------------------------------------


#: The largest balance or charge, in whole currency units (a bound, so no sum overflows a float).
MAX_MONEY = 10**12


@dataclass(frozen=True)
class ChargeMessage:
    """A "charge ``amount`` dollars" message; ``id`` is its transaction id (``"m1"``, ...).

    ``number`` is the message's position in send order (1, 2, 3, ...).
    """

    id: str
    amount: int = 10
    number: int = 0

    def __post_init__(self) -> None:
        check.text("id", self.id)
        check.integer("amount", self.amount, minimum=1, maximum=MAX_MONEY)
        check.integer("number", self.number, minimum=0)


@dataclass
class BalanceStore:
    """The consumer's database: an account ``balance`` in dollars and the ``processed_ids`` set.

    A handler ``handle(message, balance_store)`` reads and changes it. ``processed_ids`` is where an
    idempotent handler remembers which messages it has already applied; ``data`` is free space
    for any other state a handler wants to keep.
    """

    balance: int = 1000
    processed_ids: set[str] = field(default_factory=set)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check.integer("balance", self.balance)
        if not isinstance(self.processed_ids, set):
            raise TypeError(f"processed_ids must be a set, got {type(self.processed_ids).__name__}")
        if not isinstance(self.data, dict):
            raise TypeError(f"data must be a dict, got {type(self.data).__name__}")


Handler = Callable[[ChargeMessage, BalanceStore], Any]


def _check_charge(message: Any, balance_store: Any) -> None:
    check.instance("message", message, ChargeMessage)
    check.instance("balance_store", balance_store, BalanceStore)


def charge(message: ChargeMessage, balance_store: BalanceStore) -> None:
    """The naive handler, ``UPDATE account SET balance = balance - 10``: NOT idempotent.

    Run it twice for the same message and the customer pays twice.
    """
    _check_charge(message, balance_store)
    balance_store.balance -= message.amount


def charge_once(message: ChargeMessage, balance_store: BalanceStore) -> None:
    """The idempotent handler: remember each applied message id and skip ids seen before.

    The check, the charge and the recording of the id happen together (in a real database: in one
    transaction), so no crash can fall between the charge and the record of it.
    """
    _check_charge(message, balance_store)
    if message.id in balance_store.processed_ids:
        return  # already charged for this transaction: a duplicate, do nothing
    balance_store.balance -= message.amount
    balance_store.processed_ids.add(message.id)


def _check_handler(handler: Any) -> Handler:
    if not callable(handler):
        raise TypeError(
            "handler must be a function handle(message, balance_store), "
            f"got {handler!r} ({type(handler).__name__})"
        )
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        return handler
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(
            f"handler must accept two arguments (message, balance_store); "
            f"{getattr(handler, '__name__', handler)!r} has the signature {signature}"
        ) from None
    return handler


# -- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One planned failure: ``kind`` hits message number ``message`` on its ``attempt``-th try.

    For ``"lose_message"`` and ``"lose_ack"`` the attempt counts the producer's sends of that
    message (1 = the first send, 2 = the first retry, ...). For the consumer faults it counts the
    deliveries of that message to the consumer (1 = the first time the consumer fetches it).
    """

    kind: str
    message: int
    attempt: int = 1

    def __post_init__(self) -> None:
        check.choice("kind", self.kind, FAULT_KINDS)
        check.integer("message", self.message, minimum=1)
        check.integer("attempt", self.attempt, minimum=1)


def _check_faults(faults: Any) -> list[Fault]:
    if isinstance(faults, Fault) or not isinstance(faults, Iterable) or isinstance(faults, str):
        raise TypeError(f"faults must be a list of Fault, got {faults!r} ({type(faults).__name__})")
    faults = list(faults)
    for fault in faults:
        if not isinstance(fault, Fault):
            raise TypeError(f"faults must contain only Fault objects, got {fault!r}")
    return faults


class FaultSchedule:
    """The faults still to happen; :meth:`hit` consumes one when its moment comes."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._pending: Counter[Fault] = Counter(_check_faults(faults))

    def add(self, fault: Fault) -> None:
        if not isinstance(fault, Fault):
            raise TypeError(f"fault must be a Fault, got {fault!r} ({type(fault).__name__})")
        self._pending[fault] += 1

    def hit(self, kind: str, message: int, attempt: int) -> bool:
        """Does fault ``kind`` strike message ``message`` at ``attempt`` now? (Uses it up.)"""
        fault = Fault(kind, message, attempt)
        if self._pending[fault]:
            self._pending[fault] -= 1
            return True
        return False

    def pending(self) -> list[Fault]:
        """The faults that have not happened (yet)."""
        return sorted(self._pending.elements(), key=lambda f: (f.message, f.attempt, f.kind))


def random_faults(
    seed: int,
    messages: int,
    *,
    lose_message: float = 0.0,
    lose_ack: float = 0.0,
    lose_commit: float = 0.0,
    crash_before_effect: float = 0.0,
    crash_after_effect: float = 0.0,
    max_attempts: int = 3,
) -> list[Fault]:
    """Draw a fault schedule for ``messages`` messages from ``seed``.

    Each keyword is the probability that this fault strikes a given try of a message. A fault
    that struck try ``k`` may strike try ``k + 1`` again with the same probability (a flaky link
    fails in runs), up to ``max_attempts`` tries, so every message eventually gets through.

    The first two acks of m2 are lost, and the first ack of m3:

    >>> random_faults(5, 4, lose_ack=0.5)  # doctest: +NORMALIZE_WHITESPACE
    [Fault(kind='lose_ack', message=2, attempt=1), Fault(kind='lose_ack', message=2, attempt=2),
     Fault(kind='lose_ack', message=3, attempt=1)]
    """
    check.integer("seed", seed)
    check.integer("messages", messages, minimum=0, maximum=100_000)
    check.integer("max_attempts", max_attempts, minimum=1, maximum=100)
    rates = {
        "lose_message": lose_message,
        "lose_ack": lose_ack,
        "lose_commit": lose_commit,
        "crash_before_effect": crash_before_effect,
        "crash_after_effect": crash_after_effect,
    }
    for name, rate in rates.items():
        check.number(name, rate, minimum=0, maximum=1)
    rng = random.Random(seed)
    faults = []
    for number in range(1, messages + 1):
        for kind in FAULT_KINDS:
            for attempt in range(1, max_attempts + 1):
                if rng.random() >= rates[kind]:
                    break
                faults.append(Fault(kind, number, attempt))
    return faults


# -- the broker -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A message as stored in the broker's log at ``offset``."""

    offset: int
    message: ChargeMessage
    producer_id: int | None = None
    sequence: int | None = None


class Broker:
    """One partition of a topic: an append-only log plus the consumer group's committed offset.

    With ``idempotence=True`` the broker remembers, for each producer id, the last sequence number
    it stored, and answers a resend of that number with a success *without* storing it again
    (Kafka's ``DUPLICATE_SEQUENCE`` handling). That state is small and per producer per
    partition, not per record: Kafka keeps the metadata of the last five batches of each
    producer on each partition; the model's producer has one message in flight, so the last
    sequence number is enough (:meth:`producer_state`).
    """

    def __init__(self, sim: Simulation, *, idempotence: bool = False) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.idempotence = check.boolean("idempotence", idempotence)
        self.log: list[Record] = []
        self.committed_offset = 0  # the next offset the consumer group will read after a restart
        self.duplicates_rejected = 0
        self._last_sequence: dict[int, int] = {}
        self._waiting: list[tuple[int, simpy.Event]] = []

    def append(
        self, message: ChargeMessage, producer_id: int | None = None, sequence: int | None = None
    ) -> Record:
        """Store a message (or recognise a resend) and return its record."""
        check.instance("message", message, ChargeMessage)
        if producer_id is not None:
            check.integer("producer_id", producer_id, minimum=0)
        if sequence is not None:
            check.integer("sequence", sequence, minimum=0)
        if self.idempotence and producer_id is not None and sequence is not None:
            last = self._last_sequence.get(producer_id, -1)
            if sequence <= last:
                self.duplicates_rejected += 1
                stored = next(
                    r for r in self.log if r.producer_id == producer_id and r.sequence == sequence
                )
                self.sim.record(
                    "duplicate_rejected",
                    message=message.id,
                    producer_id=producer_id,
                    sequence=sequence,
                    offset=stored.offset,
                )
                return stored
            self._last_sequence[producer_id] = sequence
        record = Record(len(self.log), message, producer_id, sequence)
        self.log.append(record)
        self.sim.record("stored", message=message.id, offset=record.offset)
        for position, event in self._waiting:
            if position < len(self.log):
                event.succeed()
        self._waiting = [(p, e) for p, e in self._waiting if not e.triggered]
        return record

    def producer_state(self) -> dict[int, int]:
        """What idempotence costs the broker: the last sequence number of each producer id."""
        return dict(self._last_sequence)

    def wait_for(self, offset: int) -> simpy.Event:
        """An event that fires once the log holds a record at ``offset``."""
        check.integer("offset", offset, minimum=0)
        event = self.sim.event()
        if offset < len(self.log):
            event.succeed()
        else:
            self._waiting.append((offset, event))
        return event

    def commit(self, offset: int) -> None:
        """The consumer group has processed everything before ``offset``."""
        check.integer("offset", offset, minimum=0, maximum=len(self.log))
        self.committed_offset = offset
        self.sim.record("committed", offset=offset)


# -- the producer -----------------------------------------------------------------------------


class Producer:
    """A producer that sends :class:`ChargeMessage` to a :class:`Broker` over a lossy network.

    Messages wait in an outbox and a single sender loop sends them one at a time (one request in
    flight, like ``max.in.flight.requests.per.connection=1``). Under at-most-once it fires and
    forgets; otherwise it waits up to ``request_timeout`` for the ack and retries after
    ``retry_backoff`` until one arrives.
    """

    producer_id = 1

    def __init__(
        self,
        sim: Simulation,
        broker: Broker,
        faults: FaultSchedule,
        *,
        guarantee: str,
        latency: float,
        request_timeout: float,
        retry_backoff: float,
    ) -> None:
        self.sim = sim
        self.broker = broker
        self.faults = faults
        self.guarantee = check.choice("guarantee", guarantee, GUARANTEES)
        self.latency = check.non_negative("latency", latency)
        self.request_timeout = check.positive("request_timeout", request_timeout)
        if self.request_timeout <= 2 * self.latency:
            raise ValueError(
                f"request_timeout must be > 2 * latency = {2 * self.latency!r} "
                f"(the round trip), got {request_timeout!r}"
            )
        self.retry_backoff = check.non_negative("retry_backoff", retry_backoff)
        self.attempts = 0
        self.outbox: simpy.Store = simpy.Store(sim.env)
        self.busy = False
        sim.process(self.run())

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The sender loop: take the next message from the outbox and send it."""
        while True:
            message = yield self.outbox.get()
            self.busy = True
            yield from self.send(message)
            self.busy = False

    def send(self, message: ChargeMessage) -> Generator[simpy.Event, Any, None]:
        """Send one message, retrying until acked (except under at-most-once)."""
        idempotent = self.guarantee == "exactly-once"
        # The idempotent producer numbers its messages per partition, from 0, and keeps the same
        # number on every retry: that is what lets the broker recognise a retry.
        sequence = message.number - 1 if idempotent else None
        producer_id = self.producer_id if idempotent else None
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            self.sim.record("send", message=message.id, attempt=attempt)
            if self.guarantee == "at-most-once":  # acks=0: fire and forget
                self.sim.process(self._travel(message, attempt, producer_id, sequence, None))
                return
            ack = self.sim.event()
            self.sim.process(self._travel(message, attempt, producer_id, sequence, ack))
            result = yield ack | self.sim.timeout(self.request_timeout)
            if ack in result:
                self.sim.record("acked", message=message.id, attempt=attempt)
                return
            self.sim.record("ack_timeout", message=message.id, attempt=attempt)
            yield self.sim.timeout(self.retry_backoff)

    def _travel(
        self,
        message: ChargeMessage,
        attempt: int,
        producer_id: int | None,
        sequence: int | None,
        ack: simpy.Event | None,
    ) -> Generator[Any, Any, None]:
        # The request crosses the network, the broker stores it, the ack crosses back.
        yield self.sim.timeout(self.latency)
        if self.faults.hit("lose_message", message.number, attempt):
            self.sim.record("message_lost", message=message.id, attempt=attempt)
            return
        self.broker.append(message, producer_id, sequence)
        if ack is None:
            return  # acks=0: the broker sends no answer
        yield self.sim.timeout(self.latency)
        if self.faults.hit("lose_ack", message.number, attempt):
            self.sim.record("ack_lost", message=message.id, attempt=attempt)
            return
        ack.succeed()


# -- the consumer -----------------------------------------------------------------------------


class ChargeConsumer:
    """A consumer that reads the broker's log and applies each charge with ``handler``.

    Its loop is a Kafka consumer's: fetch the record at the current position, process it, commit
    the next offset. The guarantee decides whether the commit comes before the effect
    (at-most-once) or after it (at-least-once, exactly-once). The position lives in the consumer
    (``position``); the broker only knows the last committed offset. After a crash it restarts
    after ``restart_delay`` seconds from the broker's committed offset, like a consumer that
    rejoins its group. A lost commit follows ``commit_rule`` (see the module docstring): under
    ``"offset"`` the consumer carries on and its next commit covers the lost one; under
    ``"per-message"`` the unacknowledged message comes back, so the consumer resumes from it.
    """

    def __init__(
        self,
        sim: Simulation,
        broker: Broker,
        store: BalanceStore,
        faults: FaultSchedule,
        *,
        guarantee: str,
        handler: Handler,
        latency: float,
        processing_time: float,
        request_timeout: float,
        restart_delay: float,
        commit_rule: str = "offset",
    ) -> None:
        self.sim = sim
        self.broker = broker
        self.store = store
        self.faults = faults
        self.guarantee = check.choice("guarantee", guarantee, GUARANTEES)
        self.handler = _check_handler(handler)
        self.latency = check.non_negative("latency", latency)
        self.processing_time = check.non_negative("processing_time", processing_time)
        self.request_timeout = check.positive("request_timeout", request_timeout)
        self.restart_delay = check.non_negative("restart_delay", restart_delay)
        self.commit_rule = check.choice("commit_rule", commit_rule, COMMIT_RULES)
        self.deliveries: Counter[str] = Counter()  # message id -> times fetched
        self.effects: Counter[str] = Counter()  # message id -> times its effect changed the balance
        self.position = 0
        self.busy = False
        self.crashes = 0
        sim.process(self.run())

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Fetch, process, commit; after a failure, rejoin from the committed offset."""
        while True:
            self.position = self.broker.committed_offset
            self.sim.record("consumer_position", offset=self.position)
            while (yield from self._handle_next()):
                self.position += 1
            self.crashes += 1
            yield self.sim.timeout(self.restart_delay)
            self.busy = False

    def _handle_next(self) -> Generator[simpy.Event, Any, bool]:
        # Returns True when the record at self.position is done, False when the consumer failed.
        self.busy = False
        yield self.broker.wait_for(self.position)
        self.busy = True
        record = self.broker.log[self.position]
        message = record.message
        yield self.sim.timeout(self.latency)  # the fetch
        self.deliveries[message.id] += 1
        delivery = self.deliveries[message.id]
        self.sim.record("delivered", message=message.id, offset=record.offset, delivery=delivery)
        if self.guarantee == "at-most-once" and not (yield from self._commit(message, delivery)):
            return False
        if self.faults.hit("crash_before_effect", message.number, delivery):
            self.sim.record("consumer_crash", message=message.id, point="before_effect")
            return False
        yield self.sim.timeout(self.processing_time)
        before = self.store.balance
        self.handler(message, self.store)
        changed = self.store.balance != before
        if changed:
            self.effects[message.id] += 1
        self.sim.record(
            "effect" if changed else "skipped", message=message.id, balance=self.store.balance
        )
        if self.faults.hit("crash_after_effect", message.number, delivery):
            self.sim.record("consumer_crash", message=message.id, point="after_effect")
            return False
        if self.guarantee == "at-most-once":
            return True  # its offset was committed before the effect
        return (yield from self._commit(message, delivery))

    def _commit(self, message: ChargeMessage, delivery: int) -> Generator[Any, Any, bool]:
        yield self.sim.timeout(self.latency)
        if self.faults.hit("lose_commit", message.number, delivery):
            self.sim.record("commit_lost", message=message.id, offset=self.position + 1)
            if self.commit_rule == "offset":
                if self.guarantee == "at-most-once":
                    # Committing first only protects against duplicates if the commit has
                    # landed before the effect: a synchronous commit (commitSync) retries
                    # until the broker answers, and only then does the consumer go on.
                    yield self.sim.timeout(self.request_timeout - self.latency)
                    self.broker.commit(self.position + 1)
                    return True
                # Kafka: the position is the client's, so the consumer simply goes on; the
                # committed offset stays behind until the next commit, which covers this one.
                return True
            # An ack per message: this one stays unacknowledged and comes back after the ack
            # wait, so the consumer resumes from it.
            yield self.sim.timeout(self.request_timeout - self.latency)
            return False
        self.broker.commit(self.position + 1)
        yield self.sim.timeout(self.latency)
        return True


# -- the whole pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to the messages of one run.

    ``sent`` distinct messages left the producer (``send_attempts`` sends, counting retries);
    ``stored`` records reached the broker's log; ``delivered`` fetches reached the consumer
    (counting redeliveries); ``processed`` effects were applied to the balance. ``lost`` messages
    never took effect, and ``duplicates`` effects were applied more than once.
    """

    guarantee: str
    sent: int
    send_attempts: int
    stored: int
    delivered: int
    processed: int
    lost: int
    duplicates: int
    final_balance: int
    expected_balance: int
    lost_ids: tuple[str, ...]
    duplicate_ids: tuple[str, ...]

    def as_row(self) -> dict[str, Any]:
        """The comparison-table row: guarantee, counts and balances."""
        return {
            "guarantee": self.guarantee,
            "sent": self.sent,
            "stored": self.stored,
            "delivered": self.delivered,
            "processed": self.processed,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "final_balance": self.final_balance,
            "expected_balance": self.expected_balance,
        }


class DeliveryPipeline:
    """A producer, a broker and a consumer wired for one ``guarantee``, with a fault schedule.

    Parameters
    ----------
    sim:
        The simulation it runs in.
    guarantee:
        One of :data:`GUARANTEES`.
    faults:
        The :class:`Fault` list to follow; :meth:`add_fault` adds more later.
    handler:
        The consumer's ``handle(message, balance_store)``. By default :func:`charge` (naive) for
        at-most-once and at-least-once, :func:`charge_once` (idempotent) for exactly-once.
    start_balance, amount:
        The account's opening balance and each charge, in dollars.
    latency:
        Seconds for one network hop.
    request_timeout:
        Seconds the producer waits for an ack (and the consumer for a commit answer).
    retry_backoff:
        Seconds the producer waits before a retry (Kafka's ``retry.backoff.ms``, 100 ms).
    processing_time:
        Seconds the consumer needs per message.
    restart_delay:
        Seconds a crashed consumer takes to come back.
    commit_rule:
        ``"offset"`` (Kafka, the default: a later commit covers a lost one) or ``"per-message"``
        (JetStream, SQS, RabbitMQ: a lost ack brings that message back); see the module
        docstring.
    """

    def __init__(
        self,
        sim: Simulation,
        guarantee: str,
        faults: Iterable[Fault] = (),
        *,
        handler: Handler | None = None,
        start_balance: int = 1000,
        amount: int = 10,
        latency: float = 0.005,
        request_timeout: float = 0.1,
        retry_backoff: float = 0.1,
        processing_time: float = 0.02,
        restart_delay: float = 0.5,
        commit_rule: str = "offset",
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.guarantee = check.choice("guarantee", guarantee, GUARANTEES)
        self.faults = FaultSchedule(faults)
        if handler is None:
            handler = charge_once if guarantee == "exactly-once" else charge
        self.start_balance = check.integer(
            "start_balance", start_balance, minimum=-MAX_MONEY, maximum=MAX_MONEY
        )
        self.amount = check.integer("amount", amount, minimum=1, maximum=MAX_MONEY)
        self.store = BalanceStore(start_balance)
        self.broker = Broker(sim, idempotence=guarantee == "exactly-once")
        self.producer = Producer(
            sim,
            self.broker,
            self.faults,
            guarantee=guarantee,
            latency=latency,
            request_timeout=request_timeout,
            retry_backoff=retry_backoff,
        )
        self.consumer = ChargeConsumer(
            sim,
            self.broker,
            self.store,
            self.faults,
            guarantee=guarantee,
            handler=handler,
            latency=latency,
            processing_time=processing_time,
            request_timeout=request_timeout,
            restart_delay=restart_delay,
            commit_rule=commit_rule,
        )
        self.messages: list[ChargeMessage] = []

    def send(self) -> ChargeMessage:
        """Hand the next "charge" message (``m1``, ``m2``, ...) to the producer."""
        number = len(self.messages) + 1
        message = ChargeMessage(f"m{number}", self.amount, number)
        self.messages.append(message)
        self.producer.outbox.put(message)
        return message

    def add_fault(self, fault: Fault) -> None:
        """Plan one more fault."""
        self.faults.add(fault)

    @property
    def idle(self) -> bool:
        """True when the producer has nothing left to send and the consumer has caught up."""
        return (
            not self.producer.outbox.items
            and not self.producer.busy
            and not self.consumer.busy
            and self.consumer.position >= len(self.broker.log)
        )

    def per_message(self) -> list[dict[str, Any]]:
        """One row per message sent: how often it was stored, delivered and applied."""
        stored = Counter(r.message.id for r in self.broker.log)
        return [
            {
                "message": m.id,
                "stored": stored[m.id],
                "delivered": self.consumer.deliveries[m.id],
                "effects": self.consumer.effects[m.id],
            }
            for m in self.messages
        ]

    def result(self) -> DeliveryResult:
        """Counts and balances so far."""
        effects = self.consumer.effects
        lost = tuple(m.id for m in self.messages if effects[m.id] == 0)
        dupes = tuple(m.id for m in self.messages if effects[m.id] > 1)
        processed = sum(effects.values())
        return DeliveryResult(
            guarantee=self.guarantee,
            sent=len(self.messages),
            send_attempts=self.producer.attempts,
            stored=len(self.broker.log),
            delivered=sum(self.consumer.deliveries.values()),
            processed=processed,
            lost=len(lost),
            duplicates=sum(effects[i] - 1 for i in dupes),
            final_balance=self.store.balance,
            expected_balance=self.start_balance - self.amount * len(self.messages),
            lost_ids=lost,
            duplicate_ids=dupes,
        )


def simulate(
    guarantee: str,
    messages: int = 10,
    faults: Iterable[Fault] = (),
    *,
    seed: int = 0,
    interval: float = 0.1,
    **settings: Any,
) -> DeliveryResult:
    """Send ``messages`` charges under ``guarantee``, one every ``interval`` seconds, following
    the ``faults`` schedule, and run until everything has settled.

    ``settings`` are :class:`DeliveryPipeline`'s keyword arguments (handler, balances, timings).
    """
    return simulate_pipeline(
        guarantee, messages, faults, seed=seed, interval=interval, **settings
    ).result()


def simulate_pipeline(
    guarantee: str,
    messages: int = 10,
    faults: Iterable[Fault] = (),
    *,
    seed: int = 0,
    interval: float = 0.1,
    **settings: Any,
) -> DeliveryPipeline:
    """Like :func:`simulate`, but return the pipeline itself (its simulation holds the trace)."""
    check.integer("messages", messages, minimum=0, maximum=100_000)
    # at most an hour between two sends: beyond that the clock reaches times where a float can
    # no longer tell the 5 ms network latency apart (1e16 + 0.005 == 1e16) and a run never ends
    check.number("interval", interval, minimum=0, maximum=3600.0)
    sim = Simulation(seed=seed)
    pipeline = DeliveryPipeline(sim, guarantee, faults, **settings)

    def producer_app() -> Generator[simpy.Event, Any, None]:
        for _ in range(messages):
            pipeline.send()
            yield sim.timeout(interval)

    sim.process(producer_app())
    sim.run()  # until no event is left: every message is sent, stored and handled
    return pipeline


# -- checking a handler for idempotence -------------------------------------------------------


def replay(
    handler: Handler, deliveries: Sequence[ChargeMessage], *, start_balance: int = 1000
) -> BalanceStore:
    """Call ``handler`` on each delivery in turn, on a fresh store; return the store."""
    _check_handler(handler)
    check.integer("start_balance", start_balance, minimum=-MAX_MONEY, maximum=MAX_MONEY)
    store = BalanceStore(start_balance)
    for message in deliveries:
        if not isinstance(message, ChargeMessage):
            raise TypeError(f"deliveries must contain ChargeMessage objects, got {message!r}")
        handler(message, store)
    return store


def check_idempotent(
    handler: Handler,
    messages: int | Sequence[ChargeMessage] = 5,
    *,
    duplicates: int | Sequence[str] = 1,
    start_balance: int = 1000,
) -> bool:
    """Does ``handler`` give the same balance when messages arrive more than once?

    Runs ``handler(message, balance_store)`` twice on fresh stores: once with every message
    delivered exactly once, once with duplicates, and compares the final balances.

    ``messages``
        How many distinct "charge $10" messages (``m1``, ``m2``, ...), or the messages themselves.
    ``duplicates``
        An int ``k``: every message is delivered ``1 + k`` times in a row (a producer retry after
        a lost ack). Or a list of message ids: those are delivered once more after all the others
        (a consumer that crashed before committing and reprocesses them).

    >>> check_idempotent(charge), check_idempotent(charge_once)
    (False, True)
    """
    _check_handler(handler)
    check.integer("start_balance", start_balance, minimum=-MAX_MONEY, maximum=MAX_MONEY)
    if isinstance(messages, int) and not isinstance(messages, bool):
        check.integer("messages", messages, minimum=1, maximum=10_000)
        batch = [ChargeMessage(f"m{i}", 10, i) for i in range(1, messages + 1)]
    elif isinstance(messages, Sequence) and not isinstance(messages, str):
        batch = list(messages)
        if not batch:
            raise ValueError("messages must not be empty")
        for message in batch:
            if not isinstance(message, ChargeMessage):
                raise TypeError(
                    f"messages must be an int or a list of ChargeMessage, got an item {message!r}"
                )
        ids = [m.id for m in batch]
        if len(set(ids)) != len(ids):
            raise ValueError(f"messages must have distinct ids, got {ids!r}")
    else:
        raise TypeError(
            f"messages must be an int or a list of ChargeMessage, "
            f"got {messages!r} ({type(messages).__name__})"
        )
    if isinstance(duplicates, int) and not isinstance(duplicates, bool):
        check.integer("duplicates", duplicates, minimum=1, maximum=100)
        with_duplicates = [m for m in batch for _ in range(1 + duplicates)]
    elif isinstance(duplicates, Sequence) and not isinstance(duplicates, str):
        by_id = {m.id: m for m in batch}
        again = []
        for message_id in duplicates:
            if message_id not in by_id:
                raise ValueError(
                    f"duplicates must name ids among {sorted(by_id)!r}, got {message_id!r}"
                )
            again.append(by_id[message_id])
        if not again:
            raise ValueError("duplicates must name at least one message id")
        with_duplicates = batch + again
    else:
        raise TypeError(
            f"duplicates must be an int or a list of message ids, "
            f"got {duplicates!r} ({type(duplicates).__name__})"
        )
    once = replay(handler, batch, start_balance=start_balance)
    twice = replay(handler, with_duplicates, start_balance=start_balance)
    return once.balance == twice.balance
