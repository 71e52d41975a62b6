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
  lesson's 10,000 msg/s for an hour, or a year, is a handful of exact closed-form steps, not
  36 million (or 315 billion) events.

Lag is measured the way Kafka measures it: for each partition, the last produced offset minus the
last consumed offset, summed over partitions (:func:`consumer_lag`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
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

# -- bounds ---------------------------------------------------------------------------------------
# Chosen so that any single call returns within about a second at the extremes (see
# ``benchmarks/bench_backpressure.py``); a value outside them is refused with a ValueError.
MAX_MESSAGE_RATE = 1_000.0
"""Per-message model: the most messages per second a producer or a consumer may be set to."""
MAX_COUNT = 10**12
"""Largest capacity, threshold or lag threshold (either model)."""
MAX_OFFSET = 2**63 - 1
"""Largest offset :func:`consumer_lag` takes (Kafka's offsets are signed 64-bit integers)."""
MAX_PARTITIONS = 1_000
"""Per-message model: most partitions of a topic."""
MAX_FLOW_RATE = 10**7
"""Count model (:class:`Backlog`): the most messages per second a producer or consumer may do."""
MAX_GROUP = 100_000
"""Count model: most consumers in the group and most partitions of the topic."""
MIN_STEP, MAX_STEP = 0.001, 86_400.0
"""Count model: the shortest and longest time step, in seconds."""
MAX_SECONDS = 100 * 365 * 86_400
"""Count model: the longest single :meth:`Backlog.advance` (a century of simulated time)."""
MAX_WORK = 50_000
"""Count model: the most single steps one :meth:`Backlog.advance` may need (about 0.3 s). Runs whose
rates have no short common period can need more near a bound; such a call is refused and leaves
the run as it was."""


def consumer_lag(last_produced_offset: int, last_consumed_offset: int) -> int:
    """How far a consumer is behind: the last produced offset minus the last consumed offset.

    >>> consumer_lag(500_000, 450_000)
    50000
    """
    check.integer("last_produced_offset", last_produced_offset, minimum=0, maximum=MAX_OFFSET)
    check.integer("last_consumed_offset", last_consumed_offset, minimum=0, maximum=MAX_OFFSET)
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
    check.integer("capacity", capacity, minimum=1, maximum=MAX_COUNT)
    check.integer("lag_threshold", lag_threshold, minimum=0, maximum=MAX_COUNT)
    check.positive("throttled_rate", throttled_rate)
    check.number("throttled_rate", throttled_rate, maximum=MAX_FLOW_RATE)
    check.number("low_priority_share", low_priority_share, minimum=0, maximum=1)
    check.integer("shed_threshold", shed_threshold, minimum=0, maximum=MAX_COUNT)


# ------------------------------------------------------------------------------------------------
# Per-message model
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
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
        self.partition_count = check.integer(
            "partitions", partitions, minimum=1, maximum=MAX_PARTITIONS
        )
        self.mode = check.choice("mode", mode, MODES)
        self.capacity = check.integer("capacity", capacity, minimum=1, maximum=MAX_COUNT)
        self.shed_threshold = check.integer(
            "shed_threshold", shed_threshold, minimum=0, maximum=MAX_COUNT
        )
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
        # One wake-up per member, fired only for a change on a partition it owns (or a
        # rebalance): a publish wakes one consumer, not the whole group.
        self._member_data: dict[str, simpy.Event] = {}
        self._owner: dict[int, str] = {}

    # -- producer side -------------------------------------------------------------------------
    def publish(self, priority: str = "high") -> str:
        """Try to append one message; returns what happened.

        ``"appended"``; ``"full"`` (block mode: nothing appended, wait for :meth:`space_available`
        and try again); ``"rejected"`` (reject mode: refused, counted); ``"dropped"`` (shed mode: a
        low-priority message dropped, counted).
        """
        if priority not in PRIORITIES:
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
        self._wake_partition(partition)
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
        self.capacity = check.integer("capacity", capacity, minimum=1, maximum=MAX_COUNT)

    def set_shed_threshold(self, threshold: int) -> None:
        """The depth from which ``"shed"`` drops low-priority arrivals."""
        self.shed_threshold = check.integer(
            "shed_threshold", threshold, minimum=0, maximum=MAX_COUNT
        )

    # -- consumer side -------------------------------------------------------------------------
    def rebalance(self, members: list[str]) -> dict[str, list[int]]:
        """Share the partitions among ``members`` with Kafka's range assignor; returns who owns
        what. Members beyond the partition count get nothing."""
        members = check.names("members", members, allow_empty=True)
        if members:
            result = assign("range", {m: [TOPIC] for m in members}, {TOPIC: self.partition_count})
            self.assignment = {m: [p for _, p in tps] for m, tps in result.items()}
        else:
            self.assignment = {}
        self._owner = {p: m for m, ps in self.assignment.items() for p in ps}
        self.sim.record("rebalance", assignment={m: list(p) for m, p in self.assignment.items()})
        self._wake("_data")
        for member in list(self._member_data):
            self._wake_member(member)
        return self.assignment

    def poll(self, member: str) -> Record | None:
        """The next record for ``member`` from one of its partitions (oldest head first), or
        ``None`` if none of them has a record waiting."""
        check.text("member", member)
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
        check.text("member", member)
        check.instance("record", record, Record)
        if not 0 <= record.partition < len(self.end_offsets) or not (
            1 <= record.offset <= self.end_offsets[record.partition]
        ):
            raise ValueError(
                f"record {record.id!r} (partition {record.partition}, offset {record.offset}) was "
                "never produced to this broker: commit only records that poll() returned"
            )
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
        self._wake_partition(record.partition)  # free again for whoever owns it now

    def data_available(self, member: str | None = None) -> simpy.Event:
        """An event that fires at the next publish, commit or rebalance; with ``member``, only
        at one that concerns a partition ``member`` owns (or a rebalance)."""
        if member is None:
            return self._data
        check.text("member", member)
        event = self._member_data.get(member)
        if event is None:
            event = self._member_data[member] = self.sim.event()
        return event

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
        if event.callbacks:  # nobody waiting: keep the event, schedule nothing
            setattr(self, name, self.sim.event())
            event.succeed()

    def _wake_member(self, member: str) -> None:
        event = self._member_data.get(member)
        if event is not None and event.callbacks:
            self._member_data[member] = self.sim.event()
            event.succeed()

    def _wake_partition(self, partition: int) -> None:
        self._wake("_data")
        owner = self._owner.get(partition)
        if owner is not None:
            self._wake_member(owner)


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
        check.simulation("sim", sim)
        if not isinstance(broker, BackpressureBroker):
            raise TypeError(f"broker must be a BackpressureBroker, got {type(broker).__name__}")
        self.sim = sim
        self.broker = broker
        self.rate = check.number("rate", rate, minimum=0, maximum=MAX_MESSAGE_RATE)
        self.low_priority_share = check.number(
            "low_priority_share", low_priority_share, minimum=0, maximum=1
        )
        self.lag_threshold = check.integer(
            "lag_threshold", lag_threshold, minimum=0, maximum=MAX_COUNT
        )
        check.positive("throttled_rate", throttled_rate)
        self.throttled_rate = check.number(
            "throttled_rate", throttled_rate, maximum=MAX_MESSAGE_RATE
        )
        check.same_simulation("broker", broker, sim)
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
        # the core's unchecked timer for the hot path (the delays here are known to be valid)
        self._timeout = getattr(sim, "_timer", sim.timeout)
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
        rate = check.number("rate", rate, minimum=0, maximum=MAX_MESSAGE_RATE)
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
                    wait = self._timeout(due - self.sim.now)
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
        check.simulation("sim", sim)
        if not isinstance(broker, BackpressureBroker):
            raise TypeError(f"broker must be a BackpressureBroker, got {type(broker).__name__}")
        self.sim = sim
        self.broker = broker
        self.name = check.text("name", name)
        check.positive("rate", rate)
        self.rate = check.number("rate", rate, maximum=MAX_MESSAGE_RATE)
        check.same_simulation("broker", broker, sim)
        self.consumed = 0
        self.busy_seconds = 0.0
        self.stopping = False
        self.current: Record | None = None
        self._timeout = getattr(sim, "_timer", sim.timeout)
        self._process = sim.process(self.run())

    def set_rate(self, rate: float) -> None:
        """Messages per second, from the next message on."""
        check.positive("rate", rate)
        self.rate = check.number("rate", rate, maximum=MAX_MESSAGE_RATE)

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
                    yield self.broker.data_available(self.name)
                    continue
                self.current = record
                yield self._timeout(1.0 / self.rate)
                self.broker.commit(self.name, record)
                self.consumed += 1
                self.busy_seconds += 1.0 / self.rate
                self.current = None
        except simpy.Interrupt:
            pass


# ------------------------------------------------------------------------------------------------
# Aggregated model
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
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

    def take_many(self, steps: int) -> int:
        """What ``steps`` calls of :meth:`take` return together, in one division."""
        items, self.carry = divmod(self.carry + steps * self.num, self.den)
        return items

    def key(self) -> tuple[int, int, int]:
        return (self.carry, self.num, self.den)


def thin_series(
    series: dict[str, list[float]],
    limit: int,
    *,
    peaks: tuple[str, ...] = (),
    rates: tuple[str, ...] = (),
) -> None:
    """Merge the points of ``series`` (``"time"`` plus any keys, one value per time, times
    increasing) into at most ``limit`` points, in place, keeping the picture a chart draws of it.

    The first and the last point are kept as they are. The span between them is cut into equal
    intervals, as many as ``limit`` allows, and the points inside each interval become one point
    (so the whole history keeps the same resolution, however often it is thinned): the merged
    point has the latest time; a key in ``peaks`` keeps the largest value (a spike stays
    visible), a key in ``rates`` (a per-second rate over the interval since the previous point)
    becomes the time-weighted mean (so the area under it, the total, is unchanged), any other key
    (a level or a running total) takes the latest value.
    """
    check.integer("limit", limit, minimum=3)
    if not isinstance(series, dict) or not isinstance(series.get("time"), list):
        raise TypeError(
            'series must be a dict with a "time" list and one list of values per key, got '
            f"{check._show(series)}"
        )
    time = series["time"]
    for key, values in series.items():
        if not isinstance(values, list) or len(values) != len(time):
            raise ValueError(
                f"series[{key!r}] must be a list with one value per time ({len(time)}), "
                f"got {check._show(values)}"
            )
    check.collection("peaks", peaks)
    check.collection("rates", rates)
    n = len(time)
    if n <= limit:
        return
    t = list(time)
    intervals = limit - 2  # the first and the last point stay
    width = (t[-1] - t[0]) / intervals
    # Runs of neighbouring interior points that fall in the same interval: [first, last] indices.
    groups: list[list[int]] = []
    for i in range(1, n - 1):
        bucket = min(int((t[i] - t[0]) / width), intervals - 1) if width > 0 else 0
        if groups and groups[-1][2] == bucket:
            groups[-1][1] = i
        else:
            groups.append([i, i, bucket])
    for key, values in series.items():
        source = list(values)
        merged = [source[0]]
        for first, last, _ in groups:
            if key in peaks:
                merged.append(max(source[first : last + 1]))
            elif key in rates:
                span = t[last] - t[first - 1]
                area = sum(source[k] * (t[k] - t[k - 1]) for k in range(first, last + 1))
                merged.append(area / span if span > 0 else source[last])
            else:  # "time", a level or a running total: the latest
                merged.append(source[last])
        merged.append(source[n - 1])
        values[:] = merged


class _TooMuchWork(Exception):
    pass


class Backlog:
    """The same policies as :class:`BackpressureBroker`, in whole-message counts per time step.

    Each ``step`` seconds: the producer offers ``rate * step`` messages (whole messages, the
    fractions carried to the next step, so the totals are exact); the policy decides how many enter
    the queue; then the consumers take up to ``min(consumers, partitions) * consumer_rate * step``
    of them. No message objects exist.

    :meth:`advance` does not take those steps one by one where nothing changes: while the rates
    are constant and the depth is clear of every bound (capacity, thresholds, an empty queue),
    each count after ``k`` steps has a closed form (``floor((carry + k * rate) / den)``), so a
    stretch of any length costs one division; and a run that has settled into a repeating
    pattern at a bound (a full queue, a producer throttled on and off) is recognised when its
    whole state repeats, and whole repetitions are added at once. The counts are exactly those of
    stepping one step at a time (tests pin that), and a simulated year takes milliseconds.

    Attributes (all whole numbers): ``offered`` (what the producer sent towards the queue),
    ``produced`` (what entered the queue: the last produced offset), ``consumed`` (the last
    consumed offset), ``depth`` (waiting), ``rejected``, ``dropped`` (per priority),
    ``held_back`` (demand the producer did not get in: in block mode the sends a blocked
    producer could not make, in rate_limit mode the sends throttling skipped - slowed down, not
    lost, but its callers had to wait or buffer them). :attr:`series` is the chart's history, at
    most :attr:`SERIES_LIMIT` points (older points merged, see :func:`thin_series`).

    Bounds: ``rate``, ``consumer_rate`` and ``throttled_rate`` at most :data:`MAX_FLOW_RATE`;
    ``consumers`` 0 and ``partitions`` 1 to :data:`MAX_GROUP`; ``capacity`` 1 and the thresholds
    0 to :data:`MAX_COUNT`; ``step`` :data:`MIN_STEP` to :data:`MAX_STEP`; one ``advance`` at
    most :data:`MAX_SECONDS`.
    """

    #: The most points :attr:`series` keeps.
    SERIES_LIMIT = 2_000

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
        check.positive("step", step)
        self.step = check.number("step", step, minimum=MIN_STEP, maximum=MAX_STEP)
        self._step = _exact(step)
        self.consumers = check.integer("consumers", consumers, minimum=0, maximum=MAX_GROUP)
        self.partitions = check.integer("partitions", partitions, minimum=1, maximum=MAX_GROUP)
        self._produce = _Flow()
        self._flow_rate: float | None = None  # the rate self._produce is set to
        self._consume = _Flow()
        self._demand = _Flow()  # the full-rate demand, to count what throttling holds back
        self._demand_rate: float | None = None
        self.rate = check.number("rate", rate, minimum=0, maximum=MAX_FLOW_RATE)
        self.throttled_rate = throttled_rate
        check.positive("consumer_rate", consumer_rate)
        self.consumer_rate = check.number("consumer_rate", consumer_rate, maximum=MAX_FLOW_RATE)
        self.low_priority_share = low_priority_share
        self._low_share = _exact(low_priority_share)
        self._low_num, self._low_den = self._low_share.numerator, self._low_share.denominator
        self._low_offered = 0
        self._per_step_cache: dict[float, tuple[Fraction, int]] = {}
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
        self.rate = check.number("rate", rate, minimum=0, maximum=MAX_FLOW_RATE)

    def set_consumer_rate(self, rate: float) -> None:
        """Messages per second each consumer processes."""
        check.positive("consumer_rate", rate)
        self.consumer_rate = check.number("consumer_rate", rate, maximum=MAX_FLOW_RATE)
        self._set_consumption()

    def set_consumers(self, count: int) -> None:
        """Consumers in the group (only ``partitions`` of them can be busy)."""
        self.consumers = check.integer("consumers", count, minimum=0, maximum=MAX_GROUP)
        self._set_consumption()

    def set_partitions(self, count: int) -> None:
        """Partitions of the topic."""
        self.partitions = check.integer("partitions", count, minimum=1, maximum=MAX_GROUP)
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
        """Run ``seconds`` of simulated time; it must be a whole number of steps, and at most
        :data:`MAX_SECONDS`. A call that would need more than :data:`MAX_WORK` single steps is
        refused with a ValueError and leaves the run as it was."""
        check.positive("seconds", seconds)
        check.number("seconds", seconds, maximum=MAX_SECONDS)
        steps = round(_exact(seconds) / self._step)
        if steps * self._step != _exact(seconds):
            raise ValueError(
                f"seconds must be a whole number of steps of {self.step:g} s, got {seconds!r}"
            )
        if steps <= MAX_WORK:  # at most one single step per step: it cannot run out of work
            self._run(steps)
            return
        saved = copy.deepcopy(self.__dict__)
        try:
            self._run(steps)
        except _TooMuchWork:
            self.__dict__.update(saved)
            raise ValueError(
                f"seconds={seconds!r} is more than one call can compute quickly at these "
                f"settings (over {MAX_WORK:,} single steps near a bound, for rates without a "
                f"short common period); advance less at a time, or use rates with fewer "
                f"decimals"
            ) from None

    def _state_key(self) -> tuple[Any, ...]:
        return (
            self.depth,
            self._produce.key(),
            self._flow_rate,
            self._consume.key(),
            self._demand.key(),
            self._demand_rate,
            self.offered % self._low_den,
        )

    _COUNTERS = ("offered", "produced", "consumed", "rejected", "held_back", "_low_offered")

    def _counters(self) -> tuple[int, ...]:
        return (
            *(getattr(self, name) for name in self._COUNTERS),
            self.dropped["low"],
            self.dropped["high"],
        )

    def _run(self, steps: int) -> None:
        self._work = 0
        seen: dict[tuple[Any, ...], tuple[int, tuple[int, ...]]] = {}
        remaining = steps
        while remaining > 0:
            key = self._state_key()
            if key in seen:
                then, counters = seen.pop(key)
                length = self.steps - then
                cycles = remaining // length
                if cycles:  # the whole state repeats: add whole repetitions at once
                    now = self._counters()
                    delta = [b - a for a, b in zip(counters, now, strict=True)]
                    for name, d in zip(self._COUNTERS, delta, strict=False):
                        setattr(self, name, getattr(self, name) + cycles * d)
                    self.dropped["low"] += cycles * delta[-2]
                    self.dropped["high"] += cycles * delta[-1]
                    self.steps += cycles * length
                    remaining -= cycles * length
                    admitted = cycles * (now[1] - counters[1])
                    taken = cycles * (now[2] - counters[2])
                    self._sample(admitted, taken, cycles * length)
                seen.clear()
                continue
            seen[key] = (self.steps, self._counters())
            remaining -= self._leap(remaining)

    def _single(self) -> None:
        self._work += 1
        if self._work > MAX_WORK:
            raise _TooMuchWork
        self._advance_one()

    def _regime(self, depth: int) -> tuple[Any, ...] | None:
        """How every decision of a step goes at ``depth`` and the range of depths in which it
        goes the same way, or ``None`` when ``depth`` is at a bound (step one at a time)."""
        throttled = self.mode == "rate_limit" and depth > self.lag_threshold
        rate = min(self.rate, self.throttled_rate) if throttled else self.rate
        offered, most = self._per_step(rate)
        low, high = 0, math.inf
        if self.mode == "rate_limit":
            if throttled:
                low = self.lag_threshold + 1
                if self._per_step(self.rate)[0] - offered < 1:
                    return None  # a held-back count per step that may round either way
            else:
                high = self.lag_threshold
        admit = "all"
        if self.mode in ("block", "reject"):
            if depth + most <= self.capacity:
                high = min(high, self.capacity - most)
            elif depth >= self.capacity:
                admit, low = "none", max(low, self.capacity)
            else:
                return None
        elif self.mode == "shed":
            if depth + most <= self.shed_threshold:
                high = min(high, self.shed_threshold - most)
            elif depth >= self.shed_threshold:
                admit, low = "high", max(low, self.shed_threshold)
            else:
                return None
        capacity, capacity_ceil, capacity_floor = self._consumption
        if depth >= capacity_ceil:
            take, low = "full", max(low, capacity_ceil)
        elif depth == 0 and admit != "none" and capacity_floor >= most:
            take = "drained"  # the consumers take everything each step: the queue stays empty
        else:
            return None
        if admit == "all":
            per_step = offered
        elif admit == "none":
            per_step = Fraction(0)
        else:
            per_step = offered * (1 - self._low_share)
        return rate, throttled, admit, take, per_step - capacity, low, high

    def _per_step(self, rate: float) -> tuple[Fraction, int]:
        """Messages per step at ``rate``, exactly, and that rounded up (cached)."""
        cached = self._per_step_cache.get(rate)
        if cached is None:
            per_step = _exact(rate) * self._step
            cached = self._per_step_cache[rate] = (per_step, math.ceil(per_step))
        return cached

    def _leap(self, limit: int) -> int:
        """Take up to ``limit`` steps, in closed form where possible; returns how many."""
        regime = self._regime(self.depth)
        if regime is None:
            self._single()
            return 1
        rate, throttled, admit, take, drift, low, high = regime
        self._set_flows(rate)  # as the next step would: the periods below are the new ones
        margin = 3  # how far floor-rounded counts stray from the straight line (< 3 messages)
        if take == "drained":
            steps = limit
        elif self.depth - margin < low or self.depth + margin > high:
            self._single()
            return 1
        elif drift > 0 and high != math.inf:
            steps = min(limit, math.floor((high - margin - self.depth) / drift) + 1)
        elif drift < 0:
            steps = min(limit, math.floor((self.depth - margin - low) / -drift) + 1)
        else:
            steps = limit
        # max_depth is the largest depth after admission: on a line rising it is among the last
        # steps, falling among the first, flat somewhere in one period of the rounding pattern.
        if take == "drained":
            head, tail = min(steps, self._produce.den), 0
        elif drift > 0:
            head, tail = 0, min(steps, math.floor((2 * margin + 2) / drift) + 1)
        elif drift < 0:
            head, tail = min(steps, math.floor((2 * margin + 2) / -drift) + 1), 0
        else:
            period = math.lcm(self._produce.den, self._consume.den)
            if admit == "high":
                period *= self._low_share.denominator
            head, tail = min(steps, period), 0
        if head + tail > MAX_WORK:
            raise _TooMuchWork
        for _ in range(head):
            self._single()
        body = steps - head - tail
        if body > 0:
            self._closed_form(body, rate, throttled, admit, take)
        for _ in range(tail):
            self._single()
        return steps

    def _closed_form(self, steps: int, rate: float, throttled: bool, admit: str, take: str) -> None:
        """``steps`` steps at once, all in the same regime (see :meth:`_regime`)."""
        self._set_flows(rate)
        offered = self._produce.take_many(steps)
        wanted = self._demand.take_many(steps)
        capacity = self._consume.take_many(steps)
        if throttled:
            self.held_back += wanted - offered  # >= 0 in every step, checked by _regime
        self.offered += offered
        low_total = self.offered * self._low_num // self._low_den
        low = low_total - self._low_offered
        self._low_offered = low_total
        if admit == "all":
            admitted = offered
        elif admit == "high":
            admitted = offered - low
            self.dropped["low"] += low
        else:
            admitted = 0
            if self.mode == "block":
                self.held_back += offered
            else:
                self.rejected += offered
        taken = capacity if take == "full" else admitted
        self.depth += admitted - taken
        self.produced += admitted
        self.consumed += taken
        self.steps += steps
        self._sample(admitted, taken, steps)

    def _set_flows(self, rate: float) -> None:
        if rate != self._flow_rate:
            self._produce.set(_exact(rate) * self._step)
            self._flow_rate = rate
        if self.rate != self._demand_rate:
            self._demand.set(_exact(self.rate) * self._step)
            self._demand_rate = self.rate

    def _advance_one(self) -> None:
        """One step, decision by decision: the reference the closed forms must agree with."""
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
        low_total = self.offered * self._low_num // self._low_den  # exact share of all offered
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
        self._consumption = (per_step, math.ceil(per_step), math.floor(per_step))
        self._consume.set(per_step)

    def _sample(self, admitted: int, taken: int, steps: int = 1) -> None:
        s = self.series
        s["time"].append(self.now)
        s["depth"].append(self.depth)
        s["lag"].append(self.produced - self.consumed)
        s["producer_rate"].append(admitted / (steps * self.step))
        s["consumer_rate"].append(taken / (steps * self.step))
        s["dropped"].append(self.dropped["low"] + self.dropped["high"])
        s["rejected"].append(self.rejected)
        if len(s["time"]) > self.SERIES_LIMIT:
            thin_series(
                s,
                self.SERIES_LIMIT // 2,
                peaks=("depth", "lag"),
                rates=("producer_rate", "consumer_rate"),
            )

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
