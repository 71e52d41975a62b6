"""Backpressure: what a queue does when the producer is faster than the consumers.

A producer that sends 10,000 messages per second into consumers that finish 1,000 per second leaves
9,000 more behind every second. Nothing in the queue itself stops that: the backlog grows until
something - the broker's disk, the account's message limit - gives out. *Backpressure* is any
mechanism that pushes the "slow down" signal back upstream. This module models the usual answers,
selected by ``mode``:

``"unbounded"``
    No limit. Depth and lag grow for as long as production outruns consumption.
``"block"``
    A bounded queue (``capacity`` waiting messages) whose publish call *blocks* while it is full,
    like a full ``queue.Queue.put`` or a RabbitMQ connection under flow control. Nothing is lost;
    the producer simply sends more slowly - its effective rate falls to what the consumers take.
``"reject"``
    A bounded queue whose publish call *fails* while it is full (RabbitMQ's
    ``x-overflow: reject-publish``, which must be chosen: a queue with ``x-max-length`` defaults to
    ``drop-head`` and drops its oldest message instead). The producer learns at once that it is
    too fast; every refused message is counted in ``rejected`` and is lost unless the producer
    buffers it itself.
``"rate_limit"``
    Cooperative backpressure: the queue is unbounded, but the producer watches consumer lag and,
    while the lag is above ``lag_threshold``, sends at ``throttled_rate`` instead of its full rate.
    That is not free: the sends it does not make are demand *held back* upstream, counted in
    ``held_back`` exactly as the sends a blocked producer could not make.
``"shed"``
    Load shedding: messages carry a priority (``"high"`` or ``"low"``). While ``shed_threshold`` or
    more messages wait, the queue drops incoming *low*-priority messages and keeps every high one.

Scaling out is the other answer, and it works in every mode: a topic has ``partitions``, each
partition is read by exactly one consumer of the group (Kafka's range assignor decides who), so
adding consumers raises throughput only up to the partition count. Consumers beyond it own no
partition and sit idle.

Two models with the same vocabulary:

- :class:`BackpressureBroker`, :class:`RateProducer` and :class:`PartitionConsumer` follow every
  message through SimPy processes, for the small, visual runs;
- :class:`Backlog` works in *counts* per time step, exactly (whole messages, no sampling), so the
  lesson's 10,000 msg/s for an hour is a few thousand integer additions, not 36 million events.

Lag is measured the way Kafka measures it: for each partition, the last produced offset minus the
last consumed offset, summed over partitions (:func:`consumer_lag`).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from .assignors import assign

__all__ = [
    "MODES",
    "PRIORITIES",
    "Backlog",
    "BackpressureBroker",
    "PartitionConsumer",
    "RateProducer",
    "Record",
    "consumer_lag",
]

MODES = ("unbounded", "block", "reject", "rate_limit", "shed")
"""The backpressure policies, see the module documentation."""

PRIORITIES = ("high", "low")
"""Message priorities; load shedding drops only ``"low"``."""

TOPIC = "events"


def consumer_lag(last_produced_offset: int, last_consumed_offset: int) -> int:
    """How far a consumer is behind: the last produced offset minus the last consumed offset.

    >>> consumer_lag(500_000, 450_000)
    50000
    """
    check.integer("last_produced_offset", last_produced_offset, minimum=0)
    check.integer("last_consumed_offset", last_consumed_offset, minimum=0)
    if last_consumed_offset > last_produced_offset:
        raise ValueError(
            f"last_consumed_offset must be <= last_produced_offset ({last_produced_offset}), "
            f"got {last_consumed_offset!r}: nobody can consume a message before it is produced"
        )
    return last_produced_offset - last_consumed_offset


def _check_mode_settings(
    mode: str,
    capacity: int,
    lag_threshold: int,
    throttled_rate: float,
    low_priority_share: float,
    shed_threshold: int,
) -> None:
    check.choice("mode", mode, MODES)
    check.integer("capacity", capacity, minimum=1)
    check.integer("lag_threshold", lag_threshold, minimum=0)
    check.positive("throttled_rate", throttled_rate)
    check.number("low_priority_share", low_priority_share, minimum=0, maximum=1)
    check.integer("shed_threshold", shed_threshold, minimum=0)


# ------------------------------------------------------------------------------------------------
# Per-message model
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One message in a partition. ``offset`` is its position in that partition (1, 2, 3, ...)."""

    id: str
    partition: int
    offset: int
    priority: str
    produced_at: float


class BackpressureBroker:
    """A partitioned queue with a publish policy (``mode``) and a consumer group reading it.

    Parameters
    ----------
    sim:
        The simulation it lives in.
    partitions:
        Number of partitions; each is read by one consumer of the group at a time.
    mode:
        One of :data:`MODES`.
    capacity:
        For ``"block"`` and ``"reject"``: the most messages that may wait in the queue.
    shed_threshold:
        For ``"shed"``: from this many waiting messages on, low-priority arrivals are dropped.

    ``depth`` counts messages waiting for a consumer; a message a consumer is working on is no
    longer waiting but still counts in ``lag`` until it is consumed (its offset committed).
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        partitions: int = 1,
        mode: str = "unbounded",
        capacity: int = 20,
        shed_threshold: int = 10,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.partition_count = check.integer("partitions", partitions, minimum=1, maximum=1000)
        self.mode = check.choice("mode", mode, MODES)
        self.capacity = check.integer("capacity", capacity, minimum=1)
        self.shed_threshold = check.integer("shed_threshold", shed_threshold, minimum=0)
        self.waiting: list[deque[Record]] = [deque() for _ in range(partitions)]
        self.end_offsets = [0] * partitions  # last produced offset per partition
        self.consumed_offsets = [0] * partitions  # last consumed offset per partition
        self.assignment: dict[str, list[int]] = {}
        self._busy: set[int] = set()  # partitions whose head record a consumer is processing
        self._depth = 0
        self.produced = 0
        self.consumed = 0
        self.rejected = 0
        self.dropped = {p: 0 for p in PRIORITIES}
        self.max_depth = 0
        self._data = sim.event()
        self._space = sim.event()

    # -- producer side -------------------------------------------------------------------------
    def publish(self, priority: str = "high") -> str:
        """Try to append one message; returns what happened.

        ``"appended"``; ``"full"`` (block mode: nothing appended, wait for :meth:`space_available`
        and try again); ``"rejected"`` (reject mode: refused, counted); ``"dropped"`` (shed mode: a
        low-priority message dropped, counted).
        """
        check.choice("priority", priority, PRIORITIES)
        full = self._depth >= self.capacity
        if self.mode == "block" and full:
            return "full"
        if self.mode == "reject" and full:
            self.rejected += 1
            self.sim.record("reject", priority=priority, depth=self._depth)
            return "rejected"
        if self.mode == "shed" and priority == "low" and self._depth >= self.shed_threshold:
            self.dropped["low"] += 1
            self.sim.record("shed", priority=priority, depth=self._depth)
            return "dropped"
        partition = self.produced % self.partition_count  # round-robin over partitions
        self.produced += 1
        self.end_offsets[partition] += 1
        record = Record(
            f"m{self.produced}", partition, self.end_offsets[partition], priority, self.sim.now
        )
        self.waiting[partition].append(record)
        self._depth += 1
        self.max_depth = max(self.max_depth, self._depth)
        self.sim.record(
            "publish",
            message=record.id,
            partition=partition,
            offset=record.offset,
            priority=priority,
        )
        self._wake("_data")
        return "appended"

    def space_available(self) -> simpy.Event:
        """An event that fires the next time a waiting message leaves the queue."""
        return self._space

    def set_mode(self, mode: str) -> None:
        """Switch the policy from the next publish on. Messages already queued stay queued, so a
        queue switched to a bound it already exceeds only drains until it is back under it."""
        self.mode = check.choice("mode", mode, MODES)

    def set_capacity(self, capacity: int) -> None:
        """The bound for ``"block"``/``"reject"``, from the next publish on."""
        self.capacity = check.integer("capacity", capacity, minimum=1)

    def set_shed_threshold(self, threshold: int) -> None:
        """The depth from which ``"shed"`` drops low-priority arrivals."""
        self.shed_threshold = check.integer("shed_threshold", threshold, minimum=0)

    # -- consumer side -------------------------------------------------------------------------
    def rebalance(self, members: list[str]) -> dict[str, list[int]]:
        """Share the partitions among ``members`` with Kafka's range assignor; returns who owns
        what. Members beyond the partition count get nothing."""
        if members:
            result = assign("range", {m: [TOPIC] for m in members}, {TOPIC: self.partition_count})
            self.assignment = {m: [p for _, p in tps] for m, tps in result.items()}
        else:
            self.assignment = {}
        self.sim.record("rebalance", assignment={m: list(p) for m, p in self.assignment.items()})
        self._wake("_data")
        return self.assignment

    def poll(self, member: str) -> Record | None:
        """The next record for ``member`` from one of its partitions (oldest head first), or
        ``None`` if none of them has a record waiting."""
        best: Record | None = None
        for p in self.assignment.get(member, ()):
            if p in self._busy or not self.waiting[p]:
                continue
            head = self.waiting[p][0]
            if best is None or head.produced_at < best.produced_at:
                best = head
        if best is None:
            return None
        self.waiting[best.partition].popleft()
        self._busy.add(best.partition)
        self._depth -= 1
        self._wake("_space")
        return best

    def commit(self, member: str, record: Record) -> None:
        """``member`` finished ``record``: its offset becomes the partition's consumed offset."""
        self._busy.discard(record.partition)
        self.consumed_offsets[record.partition] = record.offset
        self.consumed += 1
        self.sim.record(
            "consume",
            consumer=member,
            message=record.id,
            partition=record.partition,
            offset=record.offset,
        )
        self._wake("_data")  # the partition is free again for whoever owns it now

    def data_available(self) -> simpy.Event:
        """An event that fires at the next publish, commit or rebalance."""
        return self._data

    # -- state ---------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Messages waiting for a consumer."""
        return self._depth

    @property
    def in_process(self) -> int:
        """Messages a consumer is working on right now."""
        return len(self._busy)

    @property
    def lag(self) -> int:
        """Sum over partitions of last produced offset minus last consumed offset."""
        return sum(
            consumer_lag(e, c) for e, c in zip(self.end_offsets, self.consumed_offsets, strict=True)
        )

    def _wake(self, name: str) -> None:
        event = getattr(self, name)
        setattr(self, name, self.sim.event())
        event.succeed()


class RateProducer:
    """A producer that tries to send ``rate`` messages per second.

    Each message's priority is drawn from the simulation's seeded random source: ``"low"`` with
    probability ``low_priority_share``. In ``"block"`` mode a full queue makes the producer wait
    (its effective rate drops); in ``"rate_limit"`` mode it sends at ``throttled_rate`` while the
    consumer lag is above ``lag_threshold``. ``rate=0`` pauses it.

    :meth:`held_back` counts what either costs: the sends the producer wanted to make at its full
    ``rate`` and did not (its callers waited, or had to buffer), whether it was blocked on a full
    queue or throttled by lag.
    """

    def __init__(
        self,
        sim: Simulation,
        broker: BackpressureBroker,
        *,
        rate: float = 10.0,
        low_priority_share: float = 0.5,
        lag_threshold: int = 10,
        throttled_rate: float = 1.0,
    ) -> None:
        if not isinstance(broker, BackpressureBroker):
            raise TypeError(f"broker must be a BackpressureBroker, got {type(broker).__name__}")
        self.sim = sim
        self.broker = broker
        self.rate = check.non_negative("rate", rate)
        self.low_priority_share = check.number(
            "low_priority_share", low_priority_share, minimum=0, maximum=1
        )
        self.lag_threshold = check.integer("lag_threshold", lag_threshold, minimum=0)
        self.throttled_rate = check.positive("throttled_rate", throttled_rate)
        self.attempted = 0
        self.attempted_by_priority = {p: 0 for p in PRIORITIES}
        self._wanted = 0.0  # sends wanted at the full rate up to _wanted_since
        self._wanted_since = sim.now
        self.blocked = False
        self.blocked_seconds = 0.0
        self._last_send: float | None = None
        self._anchor = 0.0
        self._since_anchor = 0
        self._anchor_rate = -1.0
        self._process = sim.process(self.run())

    def current_rate(self) -> float:
        """The rate the producer aims for right now (lowered while throttled by lag)."""
        if self.broker.mode == "rate_limit" and self.broker.lag > self.lag_threshold:
            return min(self.rate, self.throttled_rate)
        return self.rate

    @property
    def throttled(self) -> bool:
        return self.current_rate() < self.rate

    def set_rate(self, rate: float) -> None:
        """Messages per second to aim for, taking effect at once (0 pauses the producer)."""
        rate = check.non_negative("rate", rate)
        self._wanted += self.rate * (self.sim.now - self._wanted_since)
        self._wanted_since = self.sim.now
        self.rate = rate
        self._process.interrupt("rate changed")

    def wanted(self) -> int:
        """Sends the producer wanted to make so far: its full ``rate`` over the time elapsed."""
        return math.floor(self._wanted + self.rate * (self.sim.now - self._wanted_since) + 1e-9)

    def held_back(self) -> int:
        """Wanted sends not made: demand held back upstream by blocking or throttling."""
        return max(0, self.wanted() - self.attempted)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The producer loop: wait for the next send time, draw a priority, publish."""
        while True:
            # Wait until the next send is due at the current rate. Due times are counted from an
            # anchor (anchor + n / rate), so that ten sends at 10/s take exactly one second.
            while True:
                rate = self.current_rate()
                if rate == 0:
                    wait: simpy.Event = self.sim.event()  # paused: only set_rate wakes us
                else:
                    if rate != self._anchor_rate and self._last_send is not None:
                        self._anchor, self._since_anchor = self._last_send, 0
                    self._anchor_rate = rate
                    due = (
                        self.sim.now
                        if self._last_send is None
                        else self._anchor + (self._since_anchor + 1) / rate
                    )
                    if due <= self.sim.now:
                        break
                    wait = self.sim.timeout(due - self.sim.now)
                try:
                    yield wait
                except simpy.Interrupt:
                    continue
            priority = "low" if self.sim.rng.random() < self.low_priority_share else "high"
            self.attempted += 1
            self.attempted_by_priority[priority] += 1
            while self.broker.publish(priority) == "full":
                self.blocked = True
                started = self.sim.now
                self.sim.record("producer_blocked", depth=self.broker.depth)
                with contextlib.suppress(simpy.Interrupt):  # set_rate woke us: try again
                    yield self.broker.space_available()
                self.blocked_seconds += self.sim.now - started
            self.blocked = False
            if self.sim.now > due or self._last_send is None:  # late (blocked, sped up): re-anchor
                self._anchor, self._since_anchor = self.sim.now, 0
            else:
                self._since_anchor += 1
            self._last_send = self.sim.now


class PartitionConsumer:
    """A consumer-group member that processes ``rate`` messages per second from the partitions the
    group assigns it, one message at a time, committing each offset when done."""

    def __init__(
        self, sim: Simulation, broker: BackpressureBroker, name: str, *, rate: float = 2.0
    ) -> None:
        if not isinstance(broker, BackpressureBroker):
            raise TypeError(f"broker must be a BackpressureBroker, got {type(broker).__name__}")
        self.sim = sim
        self.broker = broker
        self.name = check.text("name", name)
        self.rate = check.positive("rate", rate)
        self.consumed = 0
        self.busy_seconds = 0.0
        self.stopping = False
        self.current: Record | None = None
        self._process = sim.process(self.run())

    def set_rate(self, rate: float) -> None:
        """Messages per second, from the next message on."""
        self.rate = check.positive("rate", rate)

    def stop(self) -> None:
        """Leave the group after the message in hand (a graceful shutdown)."""
        self.stopping = True
        if self.current is None and self._process.is_alive:
            self._process.interrupt("stop")

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The consumer loop: poll own partitions, process, commit."""
        try:
            while not self.stopping:
                record = self.broker.poll(self.name)
                if record is None:
                    yield self.broker.data_available()
                    continue
                self.current = record
                yield self.sim.timeout(1.0 / self.rate)
                self.broker.commit(self.name, record)
                self.consumed += 1
                self.busy_seconds += 1.0 / self.rate
                self.current = None
        except simpy.Interrupt:
            pass


# ------------------------------------------------------------------------------------------------
# Aggregated model
# ------------------------------------------------------------------------------------------------
def _exact(value: float) -> Fraction:
    # 0.1 means one tenth here, not the nearest binary double: take the decimal the user typed.
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


class _Flow:
    """Turns a steady flow of ``per_step`` items (any rational number) into whole items per step,
    carrying the fraction over, so that after n steps exactly floor(n * per_step) have passed."""

    def __init__(self) -> None:
        self.den = 1
        self.carry = 0
        self.num = 0

    def set(self, per_step: Fraction) -> None:
        den = math.lcm(self.den, per_step.denominator)
        self.carry *= den // self.den
        self.den = den
        self.num = per_step.numerator * (den // per_step.denominator)

    def take(self) -> int:
        items, self.carry = divmod(self.carry + self.num, self.den)
        return items


class Backlog:
    """The same policies as :class:`BackpressureBroker`, in whole-message counts per time step.

    Each ``step`` seconds: the producer offers ``rate * step`` messages (whole messages, the
    fractions carried to the next step, so the totals are exact); the policy decides how many enter
    the queue; then the consumers take up to ``min(consumers, partitions) * consumer_rate * step``
    of them. No message objects exist, so an hour at 10,000 messages per second is 3,600 steps.

    Attributes (all whole numbers): ``offered`` (what the producer sent towards the queue),
    ``produced`` (what entered the queue: the last produced offset), ``consumed`` (the last
    consumed offset), ``depth`` (waiting), ``rejected``, ``dropped`` (per priority),
    ``held_back`` (demand the producer did not get in: in block mode the sends a blocked
    producer could not make, in rate_limit mode the sends throttling skipped - slowed down, not
    lost, but its callers had to wait or buffer them).
    """

    def __init__(
        self,
        *,
        rate: float = 10_000,
        consumer_rate: float = 1_000,
        consumers: int = 1,
        partitions: int = 1,
        mode: str = "unbounded",
        capacity: int = 1_000_000,
        lag_threshold: int = 100_000,
        throttled_rate: float = 500,
        low_priority_share: float = 0.5,
        shed_threshold: int = 100_000,
        step: float = 1.0,
    ) -> None:
        _check_mode_settings(
            mode, capacity, lag_threshold, throttled_rate, low_priority_share, shed_threshold
        )
        self.mode = mode
        self.capacity = capacity
        self.lag_threshold = lag_threshold
        self.shed_threshold = shed_threshold
        self.step = check.positive("step", step)
        self._step = _exact(step)
        self.consumers = check.integer("consumers", consumers, minimum=0, maximum=100_000)
        self.partitions = check.integer("partitions", partitions, minimum=1, maximum=100_000)
        self._produce = _Flow()
        self._flow_rate: float | None = None  # the rate self._produce is set to
        self._consume = _Flow()
        self._demand = _Flow()  # the full-rate demand, to count what throttling holds back
        self._demand_rate: float | None = None
        self.rate = check.non_negative("rate", rate)
        self.throttled_rate = throttled_rate
        self.consumer_rate = check.positive("consumer_rate", consumer_rate)
        self.low_priority_share = low_priority_share
        self._low_share = _exact(low_priority_share)
        self._low_offered = 0
        self._set_consumption()
        self.steps = 0
        self.offered = self.produced = self.consumed = self.depth = 0
        self.rejected = self.held_back = 0
        self.dropped = {p: 0 for p in PRIORITIES}
        self.max_depth = 0
        self.series: dict[str, list[float]] = {
            k: []
            for k in (
                "time",
                "depth",
                "lag",
                "producer_rate",
                "consumer_rate",
                "dropped",
                "rejected",
            )
        }
        self._sample(0, 0)

    # -- settings ------------------------------------------------------------------------------
    def set_rate(self, rate: float) -> None:
        """Messages per second the producer offers."""
        self.rate = check.non_negative("rate", rate)

    def set_consumer_rate(self, rate: float) -> None:
        """Messages per second each consumer processes."""
        self.consumer_rate = check.positive("consumer_rate", rate)
        self._set_consumption()

    def set_consumers(self, count: int) -> None:
        """Consumers in the group (only ``partitions`` of them can be busy)."""
        self.consumers = check.integer("consumers", count, minimum=0, maximum=100_000)
        self._set_consumption()

    def set_partitions(self, count: int) -> None:
        """Partitions of the topic."""
        self.partitions = check.integer("partitions", count, minimum=1, maximum=100_000)
        self._set_consumption()

    def set_mode(self, mode: str) -> None:
        """Switch policy from the next step on (see :data:`MODES`)."""
        self.mode = check.choice("mode", mode, MODES)

    @property
    def active_consumers(self) -> int:
        """Consumers that own a partition; the rest are idle."""
        return min(self.consumers, self.partitions)

    @property
    def now(self) -> float:
        """Simulated seconds so far."""
        return self.steps * self.step

    @property
    def lag(self) -> int:
        """Last produced offset minus last consumed offset."""
        return consumer_lag(self.produced, self.consumed)

    # -- running -------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Run ``seconds`` of simulated time; it must be a whole number of steps."""
        check.positive("seconds", seconds)
        steps = round(_exact(seconds) / self._step)
        if steps * self._step != _exact(seconds):
            raise ValueError(
                f"seconds must be a whole number of steps of {self.step:g} s, got {seconds!r}"
            )
        for _ in range(steps):
            self._advance_one()

    def _advance_one(self) -> None:
        throttled = self.mode == "rate_limit" and self.produced - self.consumed > self.lag_threshold
        rate = min(self.rate, self.throttled_rate) if throttled else self.rate
        if rate != self._flow_rate:
            self._produce.set(_exact(rate) * self._step)
            self._flow_rate = rate
        offered = self._produce.take()
        if self.rate != self._demand_rate:
            self._demand.set(_exact(self.rate) * self._step)
            self._demand_rate = self.rate
        wanted = self._demand.take()
        if throttled:
            self.held_back += max(0, wanted - offered)
        self.offered += offered
        low_total = math.floor(self.offered * self._low_share)  # the exact share of all offered
        low = low_total - self._low_offered
        self._low_offered = low_total
        high = offered - low
        depth = self.depth
        if self.mode in ("block", "reject"):
            admitted = min(offered, max(0, self.capacity - depth))
            if self.mode == "block":
                self.held_back += offered - admitted
            else:
                self.rejected += offered - admitted
        elif self.mode == "shed":
            admitted_low = min(low, max(0, self.shed_threshold - depth - high))
            self.dropped["low"] += low - admitted_low
            admitted = high + admitted_low
        else:
            admitted = offered
        depth += admitted
        self.max_depth = max(self.max_depth, depth)
        taken = min(depth, self._consume.take())
        depth -= taken
        self.produced += admitted
        self.consumed += taken
        self.depth = depth
        self.steps += 1
        self._sample(admitted, taken)

    def _set_consumption(self) -> None:
        per_step = self.active_consumers * _exact(self.consumer_rate) * self._step
        self._consume.set(per_step)

    def _sample(self, admitted: int, taken: int) -> None:
        s = self.series
        s["time"].append(self.now)
        s["depth"].append(self.depth)
        s["lag"].append(self.produced - self.consumed)
        s["producer_rate"].append(admitted / self.step)
        s["consumer_rate"].append(taken / self.step)
        s["dropped"].append(self.dropped["low"] + self.dropped["high"])
        s["rejected"].append(self.rejected)

    def state(self) -> dict[str, Any]:
        """The counters as plain data."""
        return {
            "time": self.now,
            "mode": self.mode,
            "offered": self.offered,
            "produced": self.produced,
            "consumed": self.consumed,
            "depth": self.depth,
            "lag": self.lag,
            "rejected": self.rejected,
            "dropped": dict(self.dropped),
            "held_back": self.held_back,
            "max_depth": self.max_depth,
            "active_consumers": self.active_consumers,
            "idle_consumers": self.consumers - self.active_consumers,
        }
