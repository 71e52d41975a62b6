"""Chapter 5's scenarios: a fast producer, slow consumers and the ways to push back.

:class:`BackpressureRun` follows each message (the live picture: depth, lag, effective producer
rate, dropped and rejected over time). :class:`LargeScaleRun` works in counts per second and
reproduces the lesson's numbers - 10,000 msg/s in, 1,000 msg/s out - for an hour at once
(:func:`lesson_backlog`). Every button of the chapter's widget is a method of one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.backpressure import (
    MAX_COUNT,
    MAX_MESSAGE_RATE,
    MODES,
    Backlog,
    BackpressureBroker,
    PartitionConsumer,
    RateProducer,
)
from ._sampled import SampledRun

__all__ = [
    "BackpressureRun",
    "LargeScaleRun",
    "compare_modes",
    "default_large_scale_run",
    "default_run",
    "lesson_backlog",
]

CONSUMER_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: The most simulated events (sends the producer tries, messages the busy consumers can finish,
#: samples) one :meth:`BackpressureRun.advance` may take: an hour at the widget's maximum
#: settings (30 msg/s in, 8 busy consumers at 10 msg/s, a sample a second) is 399,600.
MAX_EVENTS = 400_000
#: The shortest and longest ``sample_every`` (seconds).
MIN_SAMPLE_EVERY, MAX_SAMPLE_EVERY = 0.1, 3_600.0


class BackpressureRun(SampledRun):
    """A producer, a partitioned queue with a backpressure ``mode`` and a consumer group.

    Its :attr:`series` over ``time``: ``depth`` and ``lag``, the producer's and the consumers'
    effective rates since the previous sample (messages per second actually produced and
    consumed), and the running totals of ``dropped`` and ``rejected`` messages.

    Parameters
    ----------
    rate:
        Messages per second the producer tries to send.
    consumer_rate:
        Messages per second each consumer processes.
    consumers, partitions:
        Size of the consumer group and of the topic (consumers beyond ``partitions`` sit idle).
    mode, capacity, lag_threshold, throttled_rate, low_priority_share, shed_threshold:
        The policy; see :mod:`mqlib.models.backpressure`.
    sample_every:
        Seconds between the points of :attr:`series`.
    seed:
        Seeds the priorities of the messages.

    Bounds: ``rate`` 0 to 1,000 and ``consumer_rate`` and ``throttled_rate`` above 0 to 1,000
    messages per second (:data:`~mqlib.models.backpressure.MAX_MESSAGE_RATE`); ``consumers`` 0
    to 26; ``partitions`` 1 to 1,000; ``capacity`` and the thresholds up to 10**12;
    ``sample_every`` 0.1 to 3,600 s. One :meth:`advance` may take at most :data:`MAX_EVENTS`
    simulated events (``seconds * (rate + busy consumers * consumer_rate + 1 / sample_every)``),
    about a second of work; a longer one is refused. :attr:`series` keeps at most
    :attr:`SERIES_LIMIT` points: past that, the points of each of a run of equal time intervals
    are merged (peaks of depth and lag kept, rates averaged over the merged interval, see
    :func:`~mqlib.models.backpressure.thin_series`).
    """

    SERIES = ("depth", "lag", "producer_rate", "consumer_rate", "dropped", "rejected")
    SERIES_PEAKS = ("depth", "lag")
    SERIES_RATES = ("producer_rate", "consumer_rate")

    def __init__(
        self,
        *,
        rate: float = 10.0,
        consumer_rate: float = 2.0,
        consumers: int = 1,
        partitions: int = 1,
        mode: str = "block",
        capacity: int = 20,
        lag_threshold: int = 10,
        throttled_rate: float = 1.0,
        low_priority_share: float = 0.5,
        shed_threshold: int = 10,
        sample_every: float = 1.0,
        seed: int = 0,
    ) -> None:
        check.integer("consumers", consumers, minimum=0, maximum=len(CONSUMER_NAMES))
        check.positive("consumer_rate", consumer_rate)
        check.number("consumer_rate", consumer_rate, maximum=MAX_MESSAGE_RATE)
        check.positive("sample_every", sample_every)
        self.sample_every = check.number(
            "sample_every", sample_every, minimum=MIN_SAMPLE_EVERY, maximum=MAX_SAMPLE_EVERY
        )
        self.sim = Simulation(seed=seed)
        self.broker = BackpressureBroker(
            self.sim,
            partitions=partitions,
            mode=mode,
            capacity=capacity,
            shed_threshold=shed_threshold,
        )
        self.producer = RateProducer(
            self.sim,
            self.broker,
            rate=rate,
            low_priority_share=low_priority_share,
            lag_threshold=lag_threshold,
            throttled_rate=throttled_rate,
        )
        self.consumer_rate = consumer_rate
        self.consumers: dict[str, PartitionConsumer] = {}
        for _ in range(consumers):
            self._add()
        self.broker.rebalance(list(self.consumers))
        self._start_sampling()

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (refused if it would take more than
        :data:`MAX_EVENTS` events at the current rates)."""
        check.positive("seconds", seconds)
        longest = self.max_advance()
        if seconds > longest:
            raise ValueError(
                f"seconds must be <= {longest:g} at these settings, got {seconds!r}: one advance "
                f"may take at most {MAX_EVENTS:,} simulated events (sends tried, messages "
                f"finished, samples); advance in shorter steps"
            )
        super().advance(seconds)

    def max_advance(self) -> float:
        """The longest :meth:`advance` at the current settings, in simulated seconds."""
        busy = min(len(self.consumers), self.broker.partition_count)
        per_second = self.producer.rate + busy * self.consumer_rate + 1.0 / self.sample_every
        return float(MAX_EVENTS // per_second)

    def set_rate(self, rate: float) -> None:
        """Messages per second the producer tries to send (0 pauses it)."""
        self.producer.set_rate(rate)
        self.sim.settle()

    def set_consumer_rate(self, rate: float) -> None:
        """Messages per second each consumer processes, from its next message on."""
        check.positive("rate", rate)
        self.consumer_rate = rate
        for consumer in self.consumers.values():
            consumer.set_rate(rate)

    def set_mode(self, mode: str) -> None:
        """Switch the backpressure policy (one of ``MODES``)."""
        self.broker.set_mode(mode)
        self.sim.record("mode", mode=mode)
        self.sim.settle()

    def set_capacity(self, capacity: int) -> None:
        """The bound of the ``"block"``/``"reject"`` queue."""
        self.broker.set_capacity(capacity)
        self.sim.settle()

    def set_shed_threshold(self, threshold: int) -> None:
        """Depth from which ``"shed"`` drops low-priority messages."""
        self.broker.set_shed_threshold(threshold)

    def set_lag_threshold(self, threshold: int) -> None:
        """Lag above which a ``"rate_limit"`` producer slows down."""
        self.producer.lag_threshold = check.integer(
            "lag_threshold", threshold, minimum=0, maximum=MAX_COUNT
        )

    def add_consumer(self) -> str:
        """A new member joins the group; the partitions are reassigned. Returns its name."""
        if len(self.consumers) >= len(CONSUMER_NAMES):
            raise ValueError(f"consumers must be <= {len(CONSUMER_NAMES)}; the group is full")
        name = self._add()
        self.broker.rebalance(list(self.consumers))
        self.sim.settle()
        return name

    def remove_consumer(self) -> str:
        """The newest member leaves (after finishing the message in hand). Returns its name."""
        if not self.consumers:
            raise ValueError("consumers must be >= 0; there is no consumer left to remove")
        name = list(self.consumers)[-1]
        self.consumers.pop(name).stop()
        self.broker.rebalance(list(self.consumers))
        self.sim.settle()
        return name

    # -- state ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The constructor arguments that reproduce this run's current settings."""
        return {
            "rate": self.producer.rate,
            "consumer_rate": self.consumer_rate,
            "consumers": len(self.consumers),
            "partitions": self.broker.partition_count,
            "mode": self.broker.mode,
            "capacity": self.broker.capacity,
            "lag_threshold": self.producer.lag_threshold,
            "throttled_rate": self.producer.throttled_rate,
            "low_priority_share": self.producer.low_priority_share,
            "shed_threshold": self.broker.shed_threshold,
            "sample_every": self.sample_every,
            "seed": self.sim.seed,
        }

    def restarted(self, **changes: Any) -> BackpressureRun:
        """A fresh run at t=0 with this run's settings, except ``changes`` (for example
        ``partitions=4``: a topic's partition count is chosen when it is created)."""
        unknown = set(changes) - set(self.settings())
        if unknown:
            raise ValueError(
                f"restarted() takes only {', '.join(sorted(self.settings()))}; "
                f"got {', '.join(sorted(unknown))}"
            )
        return BackpressureRun(**{**self.settings(), **changes})

    def limit(self) -> tuple[str, int] | None:
        """What bounds the queue in the current mode and its value (``None`` when unbounded)."""
        mode = self.broker.mode
        if mode in ("block", "reject"):
            return ("capacity", self.broker.capacity)
        if mode == "shed":
            return ("shed threshold", self.broker.shed_threshold)
        if mode == "rate_limit":
            return ("lag threshold", self.producer.lag_threshold)
        return None

    def state(self) -> dict[str, Any]:
        """Counters and settings as plain data."""
        b, p = self.broker, self.producer
        return {
            "time": self.now,
            "mode": b.mode,
            "rate": p.rate,
            "current_rate": p.current_rate(),
            "attempted": p.attempted,
            "produced": b.produced,
            "consumed": b.consumed,
            "depth": b.depth,
            "in_process": b.in_process,
            "lag": b.lag,
            "max_depth": b.max_depth,
            "capacity": b.capacity,
            "rejected": b.rejected,
            "dropped": dict(b.dropped),
            "producer_blocked": p.blocked,
            "blocked_seconds": p.blocked_seconds,
            "held_back": p.held_back(),
            "assignment": {m: list(ps) for m, ps in b.assignment.items()},
            "consumed_by": {n: c.consumed for n, c in self.consumers.items()},
        }

    def summary(self) -> str:
        """One line describing the state of the run."""
        s = self.state()
        idle = sum(1 for ps in s["assignment"].values() if not ps)
        rate = (
            f"{s['current_rate']:g}/s (throttled)"
            if self.producer.throttled
            else f"{s['rate']:g}/s"
        )
        return (
            f"t={s['time']:g}s [{s['mode']}]: producer {rate}"
            f"{' BLOCKED' if s['producer_blocked'] else ''}, produced {s['produced']}, "
            f"consumed {s['consumed']}, depth {s['depth']}, lag {s['lag']}, "
            f"rejected {s['rejected']}, dropped {s['dropped']['low']} low / "
            f"{s['dropped']['high']} high, held back {s['held_back']}; "
            f"{len(self.consumers)} consumers "
            f"({idle} idle) on {self.broker.partition_count} partitions"
        )

    # -- internals -----------------------------------------------------------------------------
    def _add(self) -> str:
        name = next(n for n in CONSUMER_NAMES if n not in self.consumers)
        self.consumers[name] = PartitionConsumer(
            self.sim, self.broker, name, rate=self.consumer_rate
        )
        return name

    def _measure(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        b = self.broker
        return {
            "depth": b.depth,
            "lag": b.lag,
            "producer_rate": self._rate(b.produced, previous, "produced"),
            "consumer_rate": self._rate(b.consumed, previous, "consumed"),
            "dropped": b.dropped["low"] + b.dropped["high"],
            "rejected": b.rejected,
            # not plotted: the totals the next sample's rates are measured from
            "produced": b.produced,
            "consumed": b.consumed,
        }


class LargeScaleRun(Backlog):
    """:class:`~mqlib.models.backpressure.Backlog` with a one-line :meth:`summary`: the large-scale
    mode of the chapter's widget. Defaults are the lesson's: 10,000 msg/s in, 1,000 msg/s out."""

    def summary(self) -> str:
        s = self.state()
        lost = s["rejected"] + s["dropped"]["low"] + s["dropped"]["high"]
        return (
            f"t={s['time']:g}s [{s['mode']}]: produced {s['produced']:,}, consumed "
            f"{s['consumed']:,}, lag {s['lag']:,} messages behind, lost {lost:,}, "
            f"held back {s['held_back']:,}; "
            f"{s['active_consumers']} busy / {s['idle_consumers']} idle consumers"
        )


def lesson_backlog(rate: float = 10_000, consumer_rate: float = 1_000) -> dict[str, int]:
    """The lesson's backlog arithmetic, computed by the engine: messages behind after 10 minutes
    and after an hour with no backpressure at all.

    >>> lesson_backlog()
    {'growth_per_second': 9000, 'after_10_minutes': 5400000, 'after_1_hour': 32400000}
    """
    run = LargeScaleRun(rate=rate, consumer_rate=consumer_rate, mode="unbounded")
    run.advance(1)
    growth = run.lag
    run.advance(599)
    ten_minutes = run.lag
    run.advance(3000)
    return {"growth_per_second": growth, "after_10_minutes": ten_minutes, "after_1_hour": run.lag}


def compare_modes(
    modes: tuple[str, ...] | list[str] = MODES, *, seconds: float = 60.0, **settings: Any
) -> dict[str, dict[str, Any]]:
    """The same producer and consumers under each backpressure mode, side by side.

    ``settings`` are passed to :class:`BackpressureRun` (``rate``, ``consumer_rate``,
    ``capacity``, ...; not ``mode``). Returns mode -> ``{"series": ..., "state": ...,
    "summary": ...}``, all plain data; with the same seed every mode sees the same messages.
    """
    check.positive("seconds", seconds)
    if not isinstance(modes, list | tuple):
        raise TypeError(f"modes must be a list or tuple of modes, got {type(modes).__name__}")
    if not modes:
        raise ValueError(f"modes must be a non-empty list of modes, got {modes!r}")
    if "mode" in settings:
        raise ValueError("mode must not be given to compare_modes; list the modes in modes")
    results: dict[str, dict[str, Any]] = {}
    for mode in modes:
        check.choice("modes", mode, MODES)
        run = BackpressureRun(mode=mode, **settings)
        run.advance(seconds)
        results[mode] = {"series": run.series, "state": run.state(), "summary": run.summary()}
    return results


def default_run() -> BackpressureRun:
    """The chapter's opening picture: 10 msg/s into one consumer doing 2 msg/s, on a queue bounded
    at 20 that blocks the producer. Depth climbs to 20 and stays there; the producer's effective
    rate falls to the consumer's 2 msg/s; nothing is lost."""
    run = BackpressureRun()
    run.advance(30)
    return run


def default_large_scale_run() -> LargeScaleRun:
    """One hour at the lesson's numbers with no backpressure: 32,400,000 messages behind."""
    run = LargeScaleRun()
    run.advance(3600)
    return run
