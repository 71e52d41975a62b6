"""Message ordering: why parallel consumers break order, and how partitioning by key restores it.

Every order goes through ``created -> paid -> shipped``. Processing ``shipped`` before ``paid``
means shipping goods nobody has paid for, so the events *of one order* must be processed in the
order they were sent. Events of different orders are independent.

Two ways to share the events among several consumers:

**Competing consumers on one queue** (:class:`CompetingOrdering`)
    Every consumer takes the next message from a single :class:`~mqlib.models.work_queue.WorkQueue`.
    The queue hands messages out in order, but a slow consumer still works on ``42 created`` while
    a fast one has already taken and finished ``42 paid``: the *processing* order is broken.
**A partitioned topic keyed by order id** (:class:`PartitionedOrdering`)
    The producer sends each event with ``key=str(order_id)``; Kafka's partitioner
    (:func:`~mqlib.models.partitioner.kafka_partition`) puts every event of one order into the
    same partition; each partition is read by exactly one consumer of the group (the assignor
    decides which), one record after the other. So the events of order 42 are processed in order,
    however slow or fast the consumers are, while different orders proceed in parallel. Without a
    key, the partitioner spreads the events over the partitions, the events of one order land on
    different consumers, and order is lost again.

A *violation* is an event processed while an earlier event of the same order (sent before it) has
not been processed yet: :func:`find_violations` lists them.
"""

from __future__ import annotations

import string
from collections import deque
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from .assignors import assign
from .partitioner import KEYLESS_STRATEGIES, Partitioner, kafka_partition
from .work_queue import WorkQueue

__all__ = [
    "DEFAULT_ORDERS",
    "DEFAULT_PROCESSING_TIMES",
    "MODES",
    "ORDER_STEPS",
    "TOPIC",
    "CompetingOrdering",
    "OrderEvent",
    "OrderingResult",
    "PartitionedOrdering",
    "Processed",
    "consumer_names",
    "find_violations",
    "flag_violations",
    "order_events",
    "partition_mapping",
    "processing_sequences",
    "producer_retry_log",
    "retry_topic_processing",
    "simulate_ordering",
]

ORDER_STEPS = ("created", "paid", "shipped")
"""The life of an order, in the order its events are sent."""

DEFAULT_ORDERS = (42, 43, 44)
"""The lesson's three orders."""

TOPIC = "order-events"

MODES = ("partitions", "queue")
"""``"partitions"``: a partitioned topic, one owner per partition; ``"queue"``: competing consumers
on one queue."""

DEFAULT_PROCESSING_TIMES = (0.5, 0.05, 0.2, 0.1, 0.3, 0.15, 0.4, 0.25)
"""Seconds per event for consumers A, B, C, ... (repeating after H). A is the lesson's slow
consumer (500 ms), B its fast one (50 ms)."""

MAX_CONSUMERS = len(string.ascii_uppercase)

RECENT = 5_000
"""How many of the latest sent events, processed events and violations a running system keeps
(:attr:`_OrderingSystem.sent`, ``processed``, :meth:`~_OrderingSystem.violations`): its memory
follows the recent history, however long it runs. The totals are counters."""
MAX_PARTITIONS = 64
_new = object.__new__


@dataclass(frozen=True)
class OrderEvent:
    """Event ``step`` of order ``order_id``; ``seq`` is its position in send order (1, 2, ...)."""

    order_id: int
    step: str
    seq: int

    @property
    def id(self) -> str:
        """A unique message id, ``"e<seq>"``."""
        return f"e{self.seq}"

    @property
    def key(self) -> str:
        """The record key a producer uses: the order id as text."""
        return str(self.order_id)

    @property
    def label(self) -> str:
        """``"42 created"``."""
        return f"{self.order_id} {self.step}"


@dataclass(frozen=True)
class Processed:
    """``consumer`` finished processing ``event`` at ``time`` (it came from ``partition``, or
    from the queue when ``partition`` is ``None``)."""

    time: float
    consumer: str
    event: OrderEvent
    partition: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": round(self.time, 9),
            "consumer": self.consumer,
            "order": self.event.order_id,
            "step": self.event.step,
            "seq": self.event.seq,
            "partition": self.partition,
        }


def _check_orders(orders: Any) -> tuple[int, ...]:
    if isinstance(orders, str | bytes) or not isinstance(orders, Iterable):
        raise TypeError(
            f"orders must be a list of integer order ids, got {orders!r} ({type(orders).__name__})"
        )
    orders = tuple(orders)
    if not orders:
        raise ValueError("orders must name at least one order id, got an empty list")
    for order in orders:
        check.integer("order id in orders", order, minimum=0)
    if len(set(orders)) != len(orders):
        raise ValueError(f"orders must not repeat an order id, got {orders!r}")
    return orders


def order_events(orders: Iterable[int] = DEFAULT_ORDERS, *, first_seq: int = 1) -> list[OrderEvent]:
    """The events of ``orders`` in send order: all orders are created, then paid, then shipped.

    >>> [e.label for e in order_events((42, 43))]
    ['42 created', '43 created', '42 paid', '43 paid', '42 shipped', '43 shipped']
    """
    orders = _check_orders(orders)
    check.integer("first_seq", first_seq, minimum=1)
    events = []
    for step in ORDER_STEPS:
        for order in orders:
            events.append(OrderEvent(order, step, first_seq + len(events)))
    return events


def partition_mapping(
    orders: Iterable[int] = DEFAULT_ORDERS, partition_counts: Iterable[int] = range(1, 9)
) -> dict[int, dict[int, int]]:
    """Where each order's events go, for each partition count: ``{order: {count: partition}}``.

    The partition is ``murmur2(key) mod count``, so changing the count moves keys: an order that
    was on partition 0 of 4 is not on partition 0 of 5. Events already written stay where they
    were, so right after adding partitions the old and new events of one order sit in different
    partitions, and their relative order is no longer guaranteed.

    >>> partition_mapping((42, 43, 44), (4, 5))
    {42: {4: 0, 5: 2}, 43: {4: 2, 5: 4}, 44: {4: 3, 5: 4}}
    """
    orders = _check_orders(orders)
    if isinstance(partition_counts, str | bytes) or not isinstance(partition_counts, Iterable):
        raise TypeError(f"partition_counts must be a list of integers, got {partition_counts!r}")
    counts = list(partition_counts)
    if not counts:
        raise ValueError("partition_counts must not be empty")
    for count in counts:
        check.integer(
            "partition count in partition_counts", count, minimum=1, maximum=MAX_PARTITIONS
        )
    return {order: {n: kafka_partition(str(order), n) for n in counts} for order in orders}


def processing_sequences(processed: Iterable[Processed]) -> dict[int, list[str]]:
    """Each order's steps in the order they were processed (orders sorted by id)."""
    _check_processed(processed)
    sequences: dict[int, list[str]] = {}
    for p in processed:
        sequences.setdefault(p.event.order_id, []).append(p.event.step)
    return dict(sorted(sequences.items()))


def find_violations(
    processed: Sequence[Processed], sent: Iterable[OrderEvent] | None = None
) -> list[dict[str, Any]]:
    """Every event processed while an earlier event of the same order was still unprocessed.

    ``processed`` must be in processing order. ``sent`` is every event sent so far (by default
    only the processed ones are known); an earlier event that was sent but is still waiting or
    in progress counts too.

    Each violation is ``{"time", "consumer", "order", "event", "before"}``: at ``time``
    ``consumer`` finished ``event`` of ``order`` although ``before`` (sent earlier) was not done.
    One processed event may give several violations (one per earlier event not done yet).
    """
    _check_processed(processed, sent)
    return [v for _, v in _violations(processed, sent)]


def flag_violations(
    processed: Sequence[Processed], sent: Iterable[OrderEvent] | None = None
) -> list[bool]:
    """For each entry of ``processed``: was it processed out of order (see
    :func:`find_violations`, which it agrees with)?

    >>> a, b = order_events((42,))[:2]
    >>> flag_violations([Processed(0.1, "B", b), Processed(0.5, "A", a)])
    [True, False]
    """
    _check_processed(processed, sent)
    flags = [False] * len(processed)
    for index, _ in _violations(processed, sent):
        flags[index] = True
    return flags


def _check_processed(processed: Any, sent: Any = None) -> None:
    check.collection("processed", processed)
    for p in processed:
        check.instance("processed", p, Processed, "list of Processed entries")
    check.collection("sent", sent, allow_none=True)
    for e in sent or ():
        check.instance("sent", e, OrderEvent, "list of OrderEvents")


def _violations(
    processed: Sequence[Processed], sent: Iterable[OrderEvent] | None
) -> list[tuple[int, dict[str, Any]]]:
    """:func:`find_violations`'s list, each violation with the index in ``processed`` of the
    event that broke the order.

    Linear in the number of events (plus the violations found): the known events are grouped
    by order, and each processed event looks only at its own order's events that are not done
    yet, from the oldest such event up to itself.
    """
    known = {p.event for p in processed}
    if sent is not None:
        known.update(sent)
    tracker = _Tracker()
    for event in sorted(known, key=lambda e: e.seq):
        tracker.sent(event)
    violations = []
    for index, p in enumerate(processed):
        for found in tracker.done(p):
            violations.append((index, found))
    return violations


class _Tracker:
    """Per order, its events in send order and which are done: what :func:`_violations` and
    :class:`_OrderingSystem` need to find the violations of one more processed event at a cost
    that does not grow with the history."""

    def __init__(self) -> None:
        self._events: dict[int, list[OrderEvent]] = {}  # order id -> its events, by seq
        self._head: dict[int, int] = {}  # order id -> index of its oldest event not done
        self._done: set[OrderEvent] = set()

    def sent(self, event: OrderEvent) -> None:
        """``event`` is known (events arrive in seq order)."""
        self._events.setdefault(event.order_id, []).append(event)
        self._head.setdefault(event.order_id, 0)

    def done(self, p: Processed) -> list[dict[str, Any]]:
        """``p`` finished: the violations it makes, one per earlier event of its order not done."""
        event = p.event
        order = event.order_id
        events = self._events.get(order, [])
        done = self._done
        i = self._head.get(order, 0)
        while i < len(events) and events[i] in done:
            i += 1
        if i > 64:  # forget the done prefix: memory for the undone window, not the history
            for e in events[:i]:
                done.discard(e)
            del events[:i]
            i = 0
        self._head[order] = i
        found = []
        for j in range(i, len(events)):
            e = events[j]
            if e.seq >= event.seq:
                break
            if e not in done:
                found.append(
                    {
                        "time": round(p.time, 9),
                        "consumer": p.consumer,
                        "order": order,
                        "event": event.step,
                        "before": e.step,
                    }
                )
        done.add(event)
        return found


def consumer_names(count: int) -> list[str]:
    """``["A", "B", ...]``: ``count`` consumer names."""
    check.integer("consumers", count, minimum=1, maximum=MAX_CONSUMERS)
    return list(string.ascii_uppercase[:count])


def _processing_times(count: int, processing_times: Sequence[float] | None) -> dict[str, float]:
    names = consumer_names(count)
    if processing_times is None:
        return {
            n: DEFAULT_PROCESSING_TIMES[i % len(DEFAULT_PROCESSING_TIMES)]
            for i, n in enumerate(names)
        }
    if isinstance(processing_times, str) or not isinstance(processing_times, Sequence):
        raise TypeError(
            f"processing_times must be a list of seconds, one per consumer, "
            f"got {processing_times!r} ({type(processing_times).__name__})"
        )
    if len(processing_times) != count:
        raise ValueError(
            f"processing_times must have one entry per consumer ({count}), "
            f"got {len(processing_times)}: {list(processing_times)!r}"
        )
    return {
        n: check.positive(f"processing_times[{i}]", t)
        for i, (n, t) in enumerate(zip(names, processing_times, strict=True))
    }


class _OrderingSystem:
    """What both set-ups share: consumers with speeds and jitter, and the processed log."""

    def __init__(
        self,
        sim: Simulation,
        consumers: int,
        processing_times: Sequence[float] | None,
        jitter: float,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.processing_times = _processing_times(consumers, processing_times)
        self.jitter = check.non_negative("jitter", jitter)
        #: The latest events sent and processed, oldest first: at least :data:`RECENT` of
        #: each (all of them until then), at most twice as many.
        self.sent: list[OrderEvent] = []
        self.processed: list[Processed] = []
        self.sent_count = 0
        self.processed_count = 0
        self.violation_count = 0
        # Kept up to date as events are sent and processed, so that reading the violations does
        # not rescan the history: the latest violations, and each processed row with its flag.
        self._tracker = _Tracker()
        self._found: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._rows: deque[tuple[Processed, bool]] = deque(maxlen=RECENT)  # made dicts when read

    def _work_time(self, consumer: str) -> float:
        # A consumer's base time plus up to `jitter` seconds more, drawn from the seeded rng:
        # a GC pause, a slow database call, a noisy neighbour.
        extra = self.sim.rng.uniform(0, self.jitter) if self.jitter else 0.0
        return self.processing_times[consumer] + extra

    def _sent(self, event: OrderEvent) -> None:
        self.sent.append(event)
        self.sent_count += 1
        if len(self.sent) > 2 * RECENT:
            del self.sent[:-RECENT]
        self._tracker.sent(event)

    def _done(self, consumer: str, event: OrderEvent, partition: int | None) -> None:
        # Runs once per processed event: no validation (the consumers' own loop calls it), no
        # dataclass __init__ (a frozen one sets each field through object.__setattr__), and the
        # row a table shows is built when it is read, not here.
        sim = self.sim
        processed = _new(Processed)
        processed.__dict__.update(
            time=sim.env._now, consumer=consumer, event=event, partition=partition
        )
        recent = self.processed
        recent.append(processed)
        self.processed_count += 1
        if len(recent) > 2 * RECENT:
            del recent[:-RECENT]
        found = self._tracker.done(processed)
        if found:
            self._found.extend(found)
            self.violation_count += len(found)
        self._rows.append((processed, bool(found)))
        sim.record(
            "processed",
            consumer=consumer,
            order=event.order_id,
            step=event.step,
            seq=event.seq,
            partition=partition,
        )

    @property
    def pending(self) -> int:
        """Events sent but not processed yet."""
        return self.sent_count - self.processed_count

    def sequences(self) -> dict[int, list[str]]:
        """Each order's steps in processing order."""
        return processing_sequences(self.processed)

    def violations(self) -> list[dict[str, Any]]:
        """See :func:`find_violations` (the latest :data:`RECENT`; the total is
        :attr:`violation_count`)."""
        return [dict(v) for v in self._found]

    def processed_rows(self) -> list[dict[str, Any]]:
        """Every finished processing as plain data (:meth:`Processed.as_dict`) plus
        ``violation``: ``True`` where the event was processed out of order (the latest
        :data:`RECENT`; the total is :attr:`processed_count`)."""
        return [{**p.as_dict(), "violation": flag} for p, flag in self._rows]


VISIBILITY_TIMEOUT = 3600.0
"""The visibility timeout of :class:`CompetingOrdering`'s queue, in seconds."""


class _NoRedeliveryQueue(WorkQueue):
    """A :class:`~mqlib.models.work_queue.WorkQueue` whose visibility timeout never runs out:
    every consumer acks within half of it, so a message is never handed out again and the queue
    needs no timer per receive (the traces are the same as with the timers, which did nothing)."""

    def _start_timer(self, delivery: Any, seconds: float) -> None:
        pass


class CompetingOrdering(_OrderingSystem):
    """Competing consumers on ONE work queue: each takes the next message when it is free.

    Parameters
    ----------
    sim:
        The simulation.
    consumers:
        How many consumers (named A, B, ...).
    processing_times:
        Seconds per event for each consumer; default :data:`DEFAULT_PROCESSING_TIMES`.
    jitter:
        Up to this many extra seconds per event, drawn at random from the seed.
    """

    def __init__(
        self,
        sim: Simulation,
        consumers: int = 2,
        *,
        processing_times: Sequence[float] | None = None,
        jitter: float = 0.0,
    ) -> None:
        super().__init__(sim, consumers, processing_times, jitter)
        # A visibility timeout far longer than any processing: no redelivery muddles the picture.
        # Then a timer per receive would never do anything but sit in the event heap for an hour
        # (32,400 of them at 9 events a second, which slowed every event of the run): the queue
        # starts none. Work that may take half the timeout or more gets a queue with timers.
        longest = max(self.processing_times.values()) + self.jitter
        queue = _NoRedeliveryQueue if longest < VISIBILITY_TIMEOUT / 2 else WorkQueue
        self.queue = queue(sim, visibility_timeout=VISIBILITY_TIMEOUT, name=TOPIC)
        for name in self.processing_times:
            sim.process(self.run(name))

    def publish(self, event: OrderEvent) -> None:
        """Put ``event`` at the back of the queue."""
        if not isinstance(event, OrderEvent):
            raise TypeError(f"event must be an OrderEvent, got {event!r}")
        self._sent(event)
        self.queue.send(event, message_id=event.id)

    def run(self, name: str) -> Generator[simpy.Event, Any, None]:
        """One consumer's loop: receive the next message, process it, ack it."""
        check.text("name", name)
        queue, sim, done = self.queue, self.sim, self._done
        receive, ack, random = queue._request, queue.ack, sim.rng.random
        times = self.processing_times
        while True:
            delivery = yield receive(name)
            event = delivery.message.body
            # _work_time(name), inlined: rng.uniform(0, j) is 0 + (j - 0) * rng.random(), the
            # same draw and the same float
            jitter = self.jitter
            yield sim._timer(times[name] + (jitter * random() if jitter else 0.0))
            done(name, event, None)
            ack(delivery)


class PartitionedOrdering(_OrderingSystem):
    """A topic with ``partitions`` partitions read by a consumer group of ``consumers`` members.

    Parameters
    ----------
    sim:
        The simulation.
    partitions:
        The topic's partition count.
    consumers:
        Members of the consumer group (named A, B, ...); by default one per partition. Members
        beyond the partition count get no partition and sit idle.
    keyed:
        Send each event with its order id as key (Kafka's partitioner hashes it) or without a key
        (the partitioner spreads them by ``keyless``).
    keyless:
        How keyless events are spread, ``"roundrobin"`` or ``"sticky"`` (see
        :class:`~mqlib.models.partitioner.Partitioner`).
    strategy:
        The group's assignor, ``"range"`` or ``"roundrobin"``.
    processing_times, jitter:
        As for :class:`CompetingOrdering`.
    """

    def __init__(
        self,
        sim: Simulation,
        partitions: int = 4,
        consumers: int | None = None,
        *,
        keyed: bool = True,
        keyless: str = "roundrobin",
        strategy: str = "range",
        processing_times: Sequence[float] | None = None,
        jitter: float = 0.0,
    ) -> None:
        check.integer("partitions", partitions, minimum=1, maximum=MAX_PARTITIONS)
        if consumers is None:
            consumers = min(partitions, MAX_CONSUMERS)
        super().__init__(sim, consumers, processing_times, jitter)
        self.keyed = check.boolean("keyed", keyed)
        check.choice("keyless", keyless, KEYLESS_STRATEGIES)
        self.partitioner = Partitioner(partitions, keyless=keyless)  # type: ignore[arg-type]
        # Each partition's log from offset base[p] on. To bound memory, the oldest records already
        # read are dropped (more than 2 * RECENT read ones in a partition: all but the latest
        # RECENT). Kafka's retention differs: it deletes by age or size (retention.ms,
        # retention.bytes) whether or not any group has read the records.
        self.logs: list[list[OrderEvent]] = [[] for _ in range(partitions)]
        self.base = [0] * partitions
        self.placement: dict[str, int] = {}  # event id -> partition, for the records in the logs
        members = {name: [TOPIC] for name in self.processing_times}
        owned = assign(strategy, members, {TOPIC: partitions})  # type: ignore[arg-type]
        self.assignment: dict[str, list[int]] = {m: [p for _, p in tps] for m, tps in owned.items()}
        self.positions = [0] * partitions  # next offset to read, per partition
        self._arrivals: list[simpy.Event] = []
        for name, owned_partitions in self.assignment.items():
            sim.process(self.run(name, owned_partitions))

    @property
    def partitions(self) -> int:
        return len(self.logs)

    def publish(self, event: OrderEvent) -> int:
        """Append ``event`` to the partition the partitioner picks; return that partition."""
        if not isinstance(event, OrderEvent):
            raise TypeError(f"event must be an OrderEvent, got {event!r}")
        partition = self.partitioner.partition(event.key if self.keyed else None)
        self._sent(event)
        self.logs[partition].append(event)
        self.placement[event.id] = partition
        self.sim.record(
            "append",
            order=event.order_id,
            step=event.step,
            seq=event.seq,
            partition=partition,
            offset=self.base[partition] + len(self.logs[partition]) - 1,
        )
        arrivals, self._arrivals = self._arrivals, []
        for arrival in arrivals:
            arrival.succeed()
        return partition

    def run(self, name: str, owned: list[int]) -> Generator[simpy.Event, Any, None]:
        """One member's poll loop: take the oldest unread record of its partitions, process it.

        Within a partition it never skips ahead: offset ``n + 1`` only after offset ``n``.
        """
        logs, base, positions = self.logs, self.base, self.positions
        while True:
            ready = [p for p in owned if positions[p] - base[p] < len(logs[p])]
            if not ready:
                arrival = self.sim.event()
                self._arrivals.append(arrival)
                yield arrival
                continue
            partition = min(ready, key=lambda p: logs[p][positions[p] - base[p]].seq)
            event = logs[partition][positions[partition] - base[partition]]
            yield self.sim.timeout(self._work_time(name))
            self._done(name, event, partition)
            positions[partition] += 1
            read = positions[partition] - base[partition]
            if read > 2 * RECENT:  # retention: drop the oldest read records
                log = logs[partition]
                for old in log[: read - RECENT]:
                    self.placement.pop(old.id, None)
                del log[: read - RECENT]
                base[partition] += read - RECENT


@dataclass(frozen=True)
class OrderingResult:
    """The outcome of one ordering run, as plain data."""

    mode: str
    keyed: bool
    partitions: int | None
    processing_times: dict[str, float]
    assignment: dict[str, list[int]]
    placement: dict[str, int]
    processed: list[dict[str, Any]]
    """Every finished processing: time, consumer, order, step, seq, partition, violation."""
    sequences: dict[int, list[str]]
    violations: list[dict[str, Any]]


def simulate_ordering(
    *,
    mode: str = "partitions",
    partitions: int = 4,
    keyed: bool = True,
    consumers: int | None = None,
    processing_times: Sequence[float] | None = None,
    jitter: float = 0.0,
    orders: Iterable[int] = DEFAULT_ORDERS,
    send_interval: float = 0.01,
    keyless: str = "roundrobin",
    seed: int = 0,
) -> OrderingResult:
    """Send the events of ``orders`` one every ``send_interval`` seconds and process them all.

    ``mode="partitions"`` uses :class:`PartitionedOrdering` (``consumers`` defaults to
    ``partitions``), ``mode="queue"`` uses :class:`CompetingOrdering` (``consumers`` defaults to
    2, the lesson's A at 500 ms and B at 50 ms; ``partitions`` and ``keyed`` are ignored).
    """
    check.choice("mode", mode, MODES)
    check.non_negative("send_interval", send_interval)
    events = order_events(orders)
    sim = Simulation(seed=seed)
    system: PartitionedOrdering | CompetingOrdering
    if mode == "queue":
        system = CompetingOrdering(
            sim,
            2 if consumers is None else consumers,
            processing_times=processing_times,
            jitter=jitter,
        )
    else:
        system = PartitionedOrdering(
            sim,
            partitions,
            consumers,
            keyed=keyed,
            keyless=keyless,
            processing_times=processing_times,
            jitter=jitter,
        )

    def producer() -> Generator[simpy.Event, Any, None]:
        for event in events:
            system.publish(event)
            yield sim.timeout(send_interval)

    sim.process(producer())
    sim.run()
    return ordering_result(system)


def ordering_result(system: PartitionedOrdering | CompetingOrdering) -> OrderingResult:
    """Read a running system's state as an :class:`OrderingResult`."""
    partitioned = isinstance(system, PartitionedOrdering)
    return OrderingResult(
        mode="partitions" if partitioned else "queue",
        keyed=system.keyed if partitioned else False,
        partitions=system.partitions if partitioned else None,
        processing_times=dict(system.processing_times),
        assignment={k: list(v) for k, v in system.assignment.items()} if partitioned else {},
        placement=dict(system.placement) if partitioned else {},
        processed=system.processed_rows(),
        sequences=system.sequences(),
        violations=system.violations(),
    )


# -- three ways order breaks inside one partition --------------------------------------------------
# Keying by order id keeps order only if nothing downstream of the partitioner reorders. These two
# small, deterministic models show two ways it is reordered anyway; a third (a consumer that hands
# one partition's records to a thread pool) is the competing-consumers picture above, inside one
# process.


def producer_retry_log(
    events: Sequence[OrderEvent] | None = None,
    *,
    failed: int = 1,
    idempotent: bool = True,
    max_in_flight: int = 5,
) -> list[OrderEvent]:
    """The order in which one partition's log stores ``events`` when the send of
    ``events[failed]`` fails once and the producer retries it.

    Each event is its own batch, sent in order, with up to ``max_in_flight`` batches awaiting an
    answer (Kafka's ``max.in.flight.requests.per.connection``, default 5). When the failed batch
    is retried, the batches sent after it while it was in flight (``max_in_flight - 1`` of them)
    have already been written, so without idempotence the retry lands *behind* them. With
    ``idempotent=True`` (Kafka's ``enable.idempotence``, the Java producer's default since 3.0;
    librdkafka's default is ``false``) the broker checks each batch's sequence number, refuses the
    ones after the gap, and the producer resends them in order: the log keeps the send order with
    up to 5 batches in flight. ``max_in_flight=1`` keeps order too, at the price of one batch at a
    time. (A simplification: a real producer batches many records and may split or merge them.)

    >>> [e.label for e in producer_retry_log(order_events((42,)), idempotent=False)]
    ['42 created', '42 shipped', '42 paid']
    """
    check.collection("events", events, allow_none=True)
    events = order_events((DEFAULT_ORDERS[0],)) if events is None else list(events)
    if not events:
        raise ValueError("events must hold at least one OrderEvent, got none")
    for event in events:
        if not isinstance(event, OrderEvent):
            raise TypeError(f"events must be OrderEvents, got {event!r}")
    check.integer("failed", failed, minimum=0, maximum=max(0, len(events) - 1))
    check.boolean("idempotent", idempotent)
    check.integer("max_in_flight", max_in_flight, minimum=1, maximum=5 if idempotent else 100)
    if idempotent or max_in_flight == 1:
        return list(events)
    overtakers = events[failed + 1 : failed + max_in_flight]
    return events[:failed] + overtakers + [events[failed]] + events[failed + max_in_flight :]


def retry_topic_processing(
    events: Sequence[OrderEvent] | None = None,
    *,
    failing: str = "42 paid",
    park_key: bool = False,
    processing_time: float = 0.1,
) -> list[Processed]:
    """One consumer reads a partition in order; ``failing`` fails once and is moved to a retry
    topic, where it succeeds on its second try after the main partition is drained.

    With ``park_key=False`` the consumer carries on with the next record, so later events of the
    same key overtake the parked one (:func:`find_violations` finds them). With ``park_key=True``
    the consumer remembers that a key has a parked event and parks that key's later events behind
    it, in order, so the key's order holds while other keys keep flowing. Returns what was
    processed, in processing order (consumer ``"main"`` or ``"retry"``).
    """
    check.collection("events", events, allow_none=True)
    events = order_events() if events is None else list(events)
    for event in events:
        check.instance("events", event, OrderEvent, "list of OrderEvents")
    check.text("failing", failing)
    if not events:
        raise ValueError("events must hold at least one OrderEvent, got an empty list")
    labels = [e.label for e in events]
    check.choice("failing", failing, labels)
    check.boolean("park_key", park_key)
    check.positive("processing_time", processing_time)
    done: list[Processed] = []
    parked: list[OrderEvent] = []
    parked_keys: set[int] = set()
    now = 0.0
    for event in events:
        now += processing_time
        if event.label == failing or (park_key and event.order_id in parked_keys):
            parked.append(event)  # the failure (or its successors) goes to the retry topic
            parked_keys.add(event.order_id)
            continue
        done.append(Processed(now, "main", event))
    for event in parked:
        now += processing_time
        done.append(Processed(now, "retry", event))
    return done
