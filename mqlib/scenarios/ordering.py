"""Chapter 4's scenario: the events of orders 42, 43 and 44 through partitions or one shared queue.

:class:`OrderingRun` is what the chapter's widget drives. Settings (:meth:`~OrderingRun.set_mode`,
:meth:`~OrderingRun.set_partitions`, :meth:`~OrderingRun.set_keyed`,
:meth:`~OrderingRun.set_consumers`, :meth:`~OrderingRun.set_jitter`) start a fresh run;
:meth:`~OrderingRun.send` publishes one batch of events (created, paid, shipped for every order)
and :meth:`~OrderingRun.run` processes everything sent. The state is plain data: each order's
processing sequence, the violations, where every event went.

:func:`repartition` answers the chapter's other question: where each order's key goes when the
topic's partition count changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from ..models.ordering import (
    DEFAULT_ORDERS,
    DEFAULT_PROCESSING_TIMES,
    MAX_CONSUMERS,
    MAX_PARTITIONS,
    MODES,
    CompetingOrdering,
    OrderEvent,
    OrderingResult,
    PartitionedOrdering,
    _check_orders,
    consumer_names,
    order_events,
    ordering_result,
    partition_mapping,
)

#: The largest ``jitter`` (seconds of extra processing per event): with it and
#: :data:`MAX_PROCESSING_TIME` a batch of the lesson's orders is processed well within
#: :meth:`OrderingRun.run`'s default limit of an hour.
MAX_JITTER = 60.0
#: The longest processing time per event a consumer may be given (``set_processing_time``).
MAX_PROCESSING_TIME = 60.0


class OrderingRun:
    """A live ordering run that advances in simulated seconds.

    Parameters
    ----------
    mode:
        ``"partitions"`` (a topic with one owner per partition) or ``"queue"`` (competing consumers
        on one queue).
    partitions:
        The topic's partition count (partitions mode).
    keyed:
        Send events with the order id as key (partitions mode).
    consumers:
        How many consumers, named A, B, ...; ``None`` means one per partition in partitions mode
        and two (the lesson's slow A and fast B) in queue mode. Consumer A needs 500 ms per event,
        B 50 ms, C 200 ms, D 100 ms, ... (:data:`~mqlib.models.ordering.DEFAULT_PROCESSING_TIMES`).
    jitter:
        Up to this many extra seconds per event, drawn from the seed (at most
        :data:`MAX_JITTER`).
    orders:
        The order ids whose events each :meth:`send` publishes.
    send_interval:
        Seconds between two events of a batch.
    seed:
        Seeds the jitter.
    """

    def __init__(
        self,
        *,
        mode: str = "partitions",
        partitions: int = 4,
        keyed: bool = True,
        consumers: int | None = None,
        jitter: float = 0.0,
        orders: Iterable[int] = DEFAULT_ORDERS,
        send_interval: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.mode = check.choice("mode", mode, MODES)
        self.partitions = check.integer("partitions", partitions, minimum=1, maximum=MAX_PARTITIONS)
        self.keyed = check.boolean("keyed", keyed)
        if consumers is not None:
            check.integer("consumers", consumers, minimum=1, maximum=MAX_CONSUMERS)
        self._consumers = consumers
        self.jitter = check.number("jitter", jitter, minimum=0, maximum=MAX_JITTER)
        self.orders = _check_orders(orders)
        self.send_interval = check.non_negative("send_interval", send_interval)
        self.seed = check.integer("seed", seed)
        self._processing_overrides: dict[str, float] = {}
        self.reset()

    # -- settings (each starts a fresh run) ------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """``"partitions"`` or ``"queue"``."""
        self.mode = check.choice("mode", mode, MODES)
        self.reset()

    def set_partitions(self, n: int) -> None:
        """The topic's partition count."""
        self.partitions = check.integer("partitions", n, minimum=1, maximum=MAX_PARTITIONS)
        self.reset()

    def set_keyed(self, keyed: bool) -> None:
        """Key events by order id (``True``) or send them without a key (``False``)."""
        self.keyed = check.boolean("keyed", keyed)
        self.reset()

    def set_consumers(self, n: int | None) -> None:
        """How many consumers; ``None`` for the default (see the class documentation)."""
        if n is not None:
            check.integer("consumers", n, minimum=1, maximum=MAX_CONSUMERS)
        self._consumers = n
        self.reset()

    def set_jitter(self, seconds: float) -> None:
        """Up to this many extra seconds of processing per event (0 to :data:`MAX_JITTER`)."""
        self.jitter = check.number("jitter", seconds, minimum=0, maximum=MAX_JITTER)
        self.reset()

    def set_processing_time(self, consumer: str, seconds: float) -> None:
        """Seconds consumer ``consumer`` (``"A"``, ``"B"``, ...) needs per event (> 0, at most
        :data:`MAX_PROCESSING_TIME`)."""
        check.choice("consumer", consumer, consumer_names(MAX_CONSUMERS))
        self._processing_overrides[consumer] = check.number(
            "seconds", seconds, minimum=0, allow_min=False, maximum=MAX_PROCESSING_TIME
        )
        self.reset()

    def reset(self) -> None:
        """Start again with the current settings: nothing sent, nothing processed."""
        self.sim = Simulation(seed=self.seed)
        names = consumer_names(self.consumers)
        times = [
            self._processing_overrides.get(
                n, DEFAULT_PROCESSING_TIMES[i % len(DEFAULT_PROCESSING_TIMES)]
            )
            for i, n in enumerate(names)
        ]
        self.system: PartitionedOrdering | CompetingOrdering
        if self.mode == "queue":
            self.system = CompetingOrdering(
                self.sim, self.consumers, processing_times=times, jitter=self.jitter
            )
        else:
            self.system = PartitionedOrdering(
                self.sim,
                self.partitions,
                self.consumers,
                keyed=self.keyed,
                processing_times=times,
                jitter=self.jitter,
            )
        self._scheduled = 0  # events handed to the producer, sent or still to be sent
        self._outbox: deque[OrderEvent] = deque()  # events waiting for the producer
        self._idle: simpy.Event | None = None  # the producer waits on it while the outbox is empty
        self._stepwise = False  # run() is processing one event at a time
        self.sim.process(self._producer())

    # -- actions ---------------------------------------------------------------------------------
    def send(self) -> list[str]:
        """Publish one batch: every order's created, paid and shipped events, one every
        ``send_interval`` seconds from now. Returns their labels (``"42 created"``, ...)."""
        events = order_events(self.orders, first_seq=self._scheduled + 1)
        self._scheduled += len(events)
        self._outbox.extend(events)
        idle, self._idle = self._idle, None
        if idle is not None:  # the producer waits for work: wake it (see _producer)
            self.sim._timer(0, None, lambda _: idle.succeed())
        self.sim.settle()
        return [e.label for e in events]

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass."""
        check.positive("seconds", seconds)
        self.sim.advance(seconds)

    def run(self, limit: float = 3600.0) -> None:
        """Process everything sent (sending one batch first if nothing was sent yet)."""
        check.positive("limit", limit)
        if not self._scheduled:
            self.send()
        deadline = self.now + limit
        self._stepwise = True
        try:
            while self.system.pending or self.system.sent_count < self._scheduled:
                if self.now >= deadline:
                    raise RuntimeError(
                        f"{self.system.pending} events still unprocessed after {limit:g} s"
                    )
                if self.sim.env.peek() == simpy.core.Infinity:
                    raise RuntimeError(f"{self.system.pending} events can never be processed")
                self.sim.env.step()  # one event at a time: stop right after the last processing
        finally:
            self._stepwise = False

    # -- state -----------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    @property
    def scheduled(self) -> int:
        """Events sent so far (or handed to the producer to send, one every send interval)."""
        return self._scheduled

    @property
    def consumers(self) -> int:
        """The number of consumers in use."""
        if self._consumers is not None:
            return self._consumers
        return 2 if self.mode == "queue" else min(self.partitions, MAX_CONSUMERS)

    def processing_times(self) -> dict[str, float]:
        """Seconds per event for each consumer (before jitter)."""
        return dict(self.system.processing_times)

    def processed(self) -> list[dict[str, Any]]:
        """Every finished processing in time order: time, consumer, order, step, seq, partition,
        and ``violation`` (``True`` where it was processed before an earlier event of its order,
        see :meth:`violations`)."""
        return self.system.processed_rows()

    def sequences(self) -> dict[int, list[str]]:
        """Each order's steps in the order they were processed."""
        return self.system.sequences()

    def violations(self) -> list[dict[str, Any]]:
        """Events processed before an earlier event of the same order (see
        :func:`~mqlib.models.ordering.find_violations`)."""
        return self.system.violations()

    def assignment(self) -> dict[str, list[int]]:
        """Consumer -> the partitions it owns (empty in queue mode)."""
        if isinstance(self.system, PartitionedOrdering):
            return {k: list(v) for k, v in self.system.assignment.items()}
        return {}

    def placement(self) -> dict[str, int]:
        """Event label with its seq (``"42 created #1"``) -> partition (empty in queue mode), for
        every event its partition's log still holds: past 10,000 read records in a partition,
        the model drops the oldest read ones to bound its memory (Kafka's retention deletes by age
        or size instead, read or not)."""
        if not isinstance(self.system, PartitionedOrdering):
            return {}
        by_id = {e.id: e for log in self.system.logs for e in log}
        return {f"{by_id[i].label} #{by_id[i].seq}": p for i, p in self.system.placement.items()}

    def partition_logs(self) -> list[list[str]]:
        """Each partition's events in offset order, as labels (empty in queue mode), from the
        oldest its log still holds (see :meth:`placement`)."""
        if not isinstance(self.system, PartitionedOrdering):
            return []
        return [[e.label for e in log] for log in self.system.logs]

    def mapping(self, partition_counts: Iterable[int] = range(1, 9)) -> dict[int, dict[int, int]]:
        """Which partition each order's key maps to, for each partition count."""
        return partition_mapping(self.orders, partition_counts)

    def result(self) -> OrderingResult:
        """The whole state as one plain-data object."""
        return ordering_result(self.system)

    def summary(self) -> str:
        """One line describing the run."""
        if self.mode == "queue":
            setup = f"one queue, {self.consumers} competing consumers"
        else:
            setup = (
                f"{self.partitions} partitions, {'keyed' if self.keyed else 'unkeyed'}, "
                f"{self.consumers} consumers"
            )
        done = self.system.processed_count
        sequences = "; ".join(
            f"{order}: {' > '.join(steps)}" for order, steps in self.sequences().items()
        )
        violations = self.system.violation_count
        return (
            f"t={self.now:.2f} s, {setup}: processed {done} of {self._scheduled}"
            + (f" ({sequences})" if sequences else "")
            + f"; {violations} ordering violation{'' if violations == 1 else 's'}"
        )

    # -- internals -------------------------------------------------------------------------------
    def _producer(self) -> Generator[simpy.Event, Any, None]:
        # One producer: a second batch queues behind the first, never interleaves with it.
        #
        # The outbox is a deque, not a simpy.Store, but the producer takes its next event at the
        # same instants and in the same order among simultaneous events as it did with a Store
        # (the committed traces pin this): a Store's get() with an item ready fires one event
        # scheduled now (the zero timer below); a get() on an empty Store fires when the first
        # put of the next send() is processed, which schedules the get's own event then (the
        # relay timer in send() and the idle event). The Store's other puts did nothing.
        # That zero timer only lets the events already due now go first: when there are none,
        # the producer goes on at once, as it would after the timer. Only run(), which looks at
        # the state after every single event, could tell the difference: it gets the timer.
        outbox, sim, publish = self._outbox, self.sim, self.system.publish
        heap = sim.env._queue
        while True:
            if outbox:
                if self._stepwise or (heap and heap[0][0] <= sim.env._now):
                    yield sim._timer(0)  # (0, not 0.0: the clock keeps its type, as a Store's)
            else:
                self._idle = sim.event()
                yield self._idle
            publish(outbox.popleft())
            yield sim.timeout(self.send_interval)


def default_run() -> OrderingRun:
    """The chapter's opening picture: one batch keyed by order id into 4 partitions, one consumer
    per partition, up to 50 ms of jitter. Every order is processed created > paid > shipped."""
    run = OrderingRun(partitions=4, keyed=True, jitter=0.05)
    run.run()
    return run


def competing_run() -> OrderingRun:
    """The lesson's counter-example: one queue, consumer A (500 ms per event) and B (50 ms).
    B finishes "42 paid" and "42 shipped" while A is still on "42 created"."""
    run = OrderingRun(mode="queue")
    run.run()
    return run


@dataclass(frozen=True)
class Repartition:
    """Where each order's events go before and after a topic's partition count changes."""

    before: int
    """The partition count the events already in the topic were written with."""
    after: int
    """The partition count new events are written with."""
    mapping: dict[int, tuple[int, int]]
    """``{order: (partition before, partition after)}``."""
    moved: list[int]
    """The orders whose new events go to a different partition than their old ones."""
    summary: str
    """One line describing the change."""


def repartition(before: int, after: int, orders: Iterable[int] = DEFAULT_ORDERS) -> Repartition:
    """Where the Java client's partitioner puts each order's key with ``before`` partitions and
    with ``after`` partitions.

    >>> change = repartition(4, 5)
    >>> change.mapping
    {42: (0, 2), 43: (2, 4), 44: (3, 4)}
    >>> change.moved
    [42, 43, 44]
    >>> repartition(4, 8).moved  # doubling keeps about half the keys where they were
    [42]
    """
    check.integer("before", before, minimum=1, maximum=MAX_PARTITIONS)
    check.integer("after", after, minimum=1, maximum=MAX_PARTITIONS)
    orders = _check_orders(orders)
    where = partition_mapping(orders, [before, after])
    mapping = {o: (where[o][before], where[o][after]) for o in orders}
    moved = [o for o, (old, new) in mapping.items() if old != new]
    parts = "; ".join(
        f"order {o}: partition {old} → {new}" if old != new else f"order {o}: stays on {old}"
        for o, (old, new) in mapping.items()
    )
    summary = (
        f"{before} → {after} partitions: {parts}; "
        f"{len(moved)} of {len(orders)} orders change partition"
    )
    return Repartition(before, after, mapping, moved, summary)
