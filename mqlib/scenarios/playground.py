"""Chapter 8's playground: a producer, a broker queue and three consumers, with everything at once.

Turn the producer's rate up and down, kill and revive consumers, inject poison pills, switch the
DLQ and backpressure (a bounded queue that blocks the producer) on and off - and watch depth,
throughput and the DLQ. :class:`Playground` is the live run a widget drives; the lesson's four
experiments are scripted as functions that return their outcome as plain data:

1. :func:`experiment_normal_flow` - 5 msg/s into three consumers: everything is processed and the
   queue stays nearly empty.
2. :func:`experiment_kill_consumer` - one consumer dies mid-message: the other two take over its
   work (including the message it dropped), throughput drops, nothing is lost.
3. :func:`experiment_poison_pill` - a poison pill fails ``max_receives`` times and goes to the
   DLQ while the other messages keep flowing.
4. :func:`experiment_overload` - 15 msg/s into one live consumer: the queue grows without limit,
   unless backpressure is on, when it never holds more than its capacity.

**Backpressure switched on above the bound.** A queue that already holds more than ``capacity``
when backpressure is ticked (or the capacity lowered) is drained to the bound, and the producer is
held to the consumers' pace meanwhile: it may send one message for every two that leave the queue,
so it runs at half of what the consumers take and the depth falls by one for every two messages
processed, until it reaches the bound; from then on, one message in for every one out. The
producer is never stopped outright while the consumers work. (The plainer rule, blocking every
send until the queue is below its bound, would stop the producer at 0 msg/s for as long as the
backlog takes to drain; this one keeps the lesson's picture, a producer slowed to the consumers'
throughput, and still honours the bound in the end.)

**Bounds.** Every setting has a range (see :data:`LIMITS`), and :meth:`Playground.advance`
refuses a step whose estimated work (messages sent, processed and retried, and samples) exceeds
:data:`MAX_WORK`, about a second of computing: at the controls' maximum settings that is still
more than half an hour of simulated time per call. The chart series keep at most
:data:`MAX_POINTS` points: when they would grow past it, neighbouring samples are merged (the
first of each pair of sample intervals is kept, counters stay exact and rates are recomputed from
them), so an hour and a day cost the same memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import _validate as check
from ..models.dlq import HandlerConsumer
from .dead_letter import PoisonPillRun, SteadyProducer

__all__ = [
    "LIMITS",
    "MAX_POINTS",
    "MAX_WORK",
    "Playground",
    "default_run",
    "experiment_kill_consumer",
    "experiment_normal_flow",
    "experiment_overload",
    "experiment_poison_pill",
    "run_experiments",
]

CONSUMER_NAMES = ("A", "B", "C")

#: The allowed range of every setting, ``name -> (lowest, highest)``, inclusive. The widget's
#: sliders cover part of it (rate 0-20 msg/s, capacity 1-100, max receives 1-10).
LIMITS: dict[str, tuple[float, float]] = {
    "rate": (0.0, 50.0),
    "processing_time": (0.01, 60.0),
    "visibility_timeout": (0.1, 3600.0),
    "max_receives": (1, 100),
    "capacity": (1, 10_000),
    "sample_every": (0.1, 60.0),
    "drain_limit": (0.0, 3600.0),  # exclusive lower bound
}

#: The most work one :meth:`Playground.advance` may take on, in "steps": messages sent, deliveries
#: processed or retried, and samples taken (about 60,000 steps a second on a quiet machine).
MAX_WORK = 60_000

#: The most points each chart series keeps (see :meth:`Playground._sample`).
MAX_POINTS = 800

#: The most messages :meth:`Playground.drain` takes on in one call.
MAX_DRAIN = 20_000


def _limited(name: str, value: Any, *, integer: bool = False) -> Any:
    low, high = LIMITS[name]
    if integer:
        return check.integer(name, value, minimum=int(low), maximum=int(high))
    return check.number(name, value, minimum=low, maximum=high)


class DrainingProducer(SteadyProducer):
    """A :class:`~mqlib.scenarios.dead_letter.SteadyProducer` whose bound, set while the queue
    already holds more than it, is approached by draining: the limit the producer obeys starts at
    the current depth and comes down by one for every two messages that leave the queue, until it
    is the bound. So while the queue is over its bound the producer sends one message for every
    two the consumers take (half their throughput), never none; at the bound, one for one.

    :attr:`capacity` is the limit in force now; :attr:`bound` the one that was set.
    """

    @classmethod
    def adopt(cls, producer: SteadyProducer) -> DrainingProducer:
        """Turn the freshly built ``producer`` into one of these (before the simulation runs)."""
        bound = producer.__dict__.pop("capacity")
        producer.__class__ = cls
        assert isinstance(producer, cls)
        producer.capacity = bound
        return producer

    def _left(self) -> int:
        queue = self.queue
        return queue.acked_count + queue.dead_lettered_count

    @property
    def capacity(self) -> int | None:  # type: ignore[override]
        limit, bound = self._limit, self._bound
        if limit is None or bound is None or limit <= bound:
            return bound
        pairs = (self._left() - self._left_mark) // 2
        if pairs:
            limit -= pairs
            self._left_mark += 2 * pairs
        # never more room than one message above what the queue holds now (it may have drained
        # faster than the rule, with the producer paused or slower than the consumers)
        limit = max(bound, min(limit, self.queue.depth + 1))
        self._limit = limit
        return limit

    @capacity.setter
    def capacity(self, bound: int | None) -> None:
        self._bound = bound
        queue_depth = self.queue.depth if hasattr(self, "queue") else 0
        self._limit = None if bound is None else max(bound, queue_depth)
        self._left_mark = self._left() if hasattr(self, "queue") else 0

    @property
    def bound(self) -> int | None:
        """The bound that was set (``None``: unbounded)."""
        return self._bound

    @property
    def draining(self) -> bool:
        """True while the queue is over the bound and the producer is held to half the
        consumers' pace."""
        limit = self.capacity
        return limit is not None and self._bound is not None and limit > self._bound


class Playground(PoisonPillRun):
    """Producer -> broker queue (with DLQ and optional bound) -> three competing consumers.

    Its :attr:`series` over ``time``: the queue's ``depth`` and ``in_flight`` messages, the DLQ's
    ``dlq_depth``, the totals ``sent`` (by the producer), ``sent_total`` (poison pills included)
    and ``processed``, and per second since the previous sample, ``throughput`` (processed) and
    ``producer_rate`` (sent by the producer). At most :data:`MAX_POINTS` points are kept.

    Every setting must lie in its range in :data:`LIMITS` (rate 0-50 msg/s, processing time
    0.01-60 s, visibility timeout 0.1-3,600 s, max receives 1-100, capacity 1-10,000, sample
    interval 0.1-60 s); anything else is a ``ValueError`` or ``TypeError`` naming the parameter.

    Parameters
    ----------
    rate:
        Messages per second from the producer (0 pauses it).
    processing_time:
        Seconds each consumer needs per message (0.5 s: 2 msg/s each, 6 msg/s for three).
    visibility_timeout:
        Seconds before an un-acked message (its consumer died or failed) is handed out again.
    max_receives:
        Receives before a message goes to the DLQ.
    dlq:
        Whether the queue has a DLQ.
    backpressure:
        Whether the queue is bounded at ``capacity`` messages, blocking the producer when full.
    capacity:
        The bound used while backpressure is on.
    sample_every:
        Seconds between the points of :attr:`series`.
    """

    SERIES = (
        "depth",
        "in_flight",
        "dlq_depth",
        "sent",
        "sent_total",
        "processed",
        "throughput",
        "producer_rate",
    )

    def __init__(
        self,
        *,
        rate: float = 5.0,
        processing_time: float = 0.5,
        visibility_timeout: float = 2.0,
        max_receives: int = 3,
        dlq: bool = True,
        backpressure: bool = False,
        capacity: int = 20,
        sample_every: float = 0.5,
        seed: int = 0,
    ) -> None:
        _limited("rate", rate)
        _limited("processing_time", processing_time)
        _limited("visibility_timeout", visibility_timeout)
        _limited("max_receives", max_receives, integer=True)
        check.boolean("dlq", dlq)
        check.boolean("backpressure", backpressure)
        self.capacity = _limited("capacity", capacity, integer=True)
        self.sample_every = check.number(
            "sample_every",
            sample_every,
            minimum=LIMITS["sample_every"][0],
            maximum=LIMITS["sample_every"][1],
        )
        check.integer("seed", seed)
        self._build(
            seed=seed,
            name="broker",
            consumers=CONSUMER_NAMES,
            processing_time=processing_time,
            visibility_timeout=visibility_timeout,
            max_receives=max_receives,
            dlq=dlq,
            rate=rate,
            capacity=capacity if backpressure else None,
        )
        DrainingProducer.adopt(self.producer)
        self.max_depth = 0
        self._width: float | None = None  # seconds per kept sample once merged (None: all kept)
        self._start_sampling()

    # -- actions (the widget's buttons; more in PoisonPillRun) -----------------------------------
    def set_rate(self, rate: float) -> None:
        """Messages per second from the producer (0 pauses it), from now on."""
        _limited("rate", rate)
        super().set_rate(rate)

    def set_max_receives(self, max_receives: int) -> None:
        """Receives before a failing message goes to the DLQ (for each message's next receive)."""
        _limited("max_receives", max_receives, integer=True)
        super().set_max_receives(max_receives)
        self._settle()

    def set_dlq(self, enabled: bool) -> None:
        """Attach or detach the DLQ. Detached, new failures are retried forever; the dead
        letters it already holds stay in it (and on the chart) until they are replayed."""
        super().set_dlq(enabled)
        self._settle()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass. Refused (``ValueError``) when the estimated
        work of the step exceeds :data:`MAX_WORK`; take smaller steps then."""
        check.positive("seconds", seconds)
        longest = self.longest_advance()
        if seconds > longest:
            raise ValueError(
                f"seconds must be <= {longest:.6g} at these settings (at most {MAX_WORK:,} "
                f"messages, retries and samples per call), got {seconds!r}; advance in "
                "smaller steps"
            )
        super().advance(seconds)

    def longest_advance(self) -> float:
        """The longest step :meth:`advance` accepts now: :data:`MAX_WORK` divided by the work per
        simulated second (the producer's rate, what the live consumers can process, poison pill
        retries and samples), and at most a day."""
        consumers = self.consumers.values()
        processing = sum(1 / c.processing_time for c in consumers if c.alive)
        pills = len(self.poison_ids) / self.queue.visibility_timeout
        per_second = self.producer.rate + processing + pills + 1 / self.sample_every
        return min(86_400.0, MAX_WORK / per_second)

    def kill_consumer(self, name: str) -> str | None:
        """Kill consumer ``name`` now; returns the id of the message it dropped, if any. That
        message comes back after the visibility timeout and another consumer takes it."""
        dropped = self._consumer(name).crash()
        self._settle()
        return dropped.message.id if dropped else None

    def revive_consumer(self, name: str) -> None:
        """Bring a killed consumer back."""
        self._consumer(name).start()
        self._settle()

    def set_backpressure(self, enabled: bool, capacity: int | None = None) -> None:
        """Bound the queue at ``capacity`` (default: the current one) so that a full queue blocks
        the producer, or remove the bound."""
        check.boolean("enabled", enabled)
        if capacity is not None:
            self.capacity = _limited("capacity", capacity, integer=True)
        self.producer.set_capacity(self.capacity if enabled else None)
        self.sim.record("backpressure", enabled=enabled, capacity=self.capacity)
        self._settle()

    def replay_dlq(self) -> list[str]:
        """Send every dead letter back to the queue (the same as :meth:`replay`)."""
        return self.replay()

    def drain(self, limit: float = 3600.0) -> float:
        """Stop the producer and advance until the queue is empty; returns the time it took.

        Raises ``RuntimeError`` if it is not empty after ``limit`` seconds (a poison pill retried
        forever with no DLQ), or at once if every consumer is dead; ``ValueError`` if the queue
        holds more than :data:`MAX_DRAIN` messages (advance in steps instead).
        """
        check.number("limit", limit, minimum=0, allow_min=False, maximum=LIMITS["drain_limit"][1])
        if self.queue.depth > MAX_DRAIN:
            raise ValueError(
                f"drain takes on at most {MAX_DRAIN:,} messages at once; the queue holds "
                f"{self.queue.depth:,}: advance in steps instead"
            )
        self.set_rate(0)
        start = self.now
        if self.queue.depth and not self.alive:
            raise RuntimeError(
                f"queue still holds {self.queue.depth} messages and every consumer is dead; "
                "revive one first"
            )
        while self.queue.depth:
            if self.now - start >= limit:
                raise RuntimeError(
                    f"queue still holds {self.queue.depth} messages after "
                    f"{limit:g} s: the live consumers are too slow for it, or a poison "
                    "pill is stuck with no DLQ"
                )
            self.advance(self.sample_every)
        return self.now - start

    # -- state ---------------------------------------------------------------------------------
    @property
    def alive(self) -> list[str]:
        """Names of the consumers that are running."""
        return [n for n, c in self.consumers.items() if c.alive]

    def state(self) -> dict[str, Any]:
        """Counters and settings as plain data."""
        return {
            "time": self.now,
            "rate": self.producer.rate,
            "sent": self.producer.sent,
            "injected": len(self.poison_ids),
            "total_sent": self.producer.sent + len(self.poison_ids),
            "processed": self.queue.acked_count,
            "depth": self.queue.depth,
            "in_flight": self.queue.in_flight_count,
            "max_depth": self.max_depth,
            "dlq_depth": self.dlq.depth,
            "dlq": self.queue.dead_letter_queue is not None,
            "backpressure": self.producer.bound is not None,
            "capacity": self.capacity,
            "draining": self.producer.draining,
            "limit": self.producer.capacity,
            "bug_fixed": self.handler.bug_fixed,
            "producer_blocked": self.producer.blocked,
            "held_back": self.producer.held_back,
            "alive": self.alive,
            "processed_by": {n: c.processed for n, c in self.consumers.items()},
            "failed": self.queue.failed_count,
        }

    def summary(self) -> str:
        """One line describing the state of the run."""
        s = self.state()
        consumers = ", ".join(
            f"{n} {c}" + ("" if n in s["alive"] else " (dead)")
            for n, c in s["processed_by"].items()
        )
        bp = f"backpressure on (cap {s['capacity']})" if s["backpressure"] else "backpressure off"
        if s["draining"]:
            bp += f", over it: 1 sent per 2 processed until the depth is down to {s['capacity']}"
        if s["held_back"]:
            bp += f", {s['held_back']} held back"
        pills = s["injected"]
        sent = f"sent {s['sent']}" + (
            f" + {pills} poison pill{'s' if pills != 1 else ''}" if pills else ""
        )
        if s["dlq"]:
            dlq = f"DLQ {s['dlq_depth']}"
        else:
            kept = s["dlq_depth"]
            dlq = "DLQ off" + (
                f" ({kept} dead letter{'s' if kept != 1 else ''} kept)" if kept else ""
            )
        return (
            f"t={s['time']:g}s: rate {s['rate']:g}/s"
            f"{' BLOCKED' if s['producer_blocked'] and s['rate'] else ''}, {sent}, processed "
            f"{s['processed']}, depth {s['depth']} (max {s['max_depth']}), {dlq}"
            f"{', bug fixed' if s['bug_fixed'] else ''}; {bp}; processed by {consumers}"
        )

    # -- internals -----------------------------------------------------------------------------
    def _consumer(self, name: str) -> HandlerConsumer:
        check.choice("consumer", name, self.consumers)
        return self.consumers[name]

    @property
    def resolution(self) -> float:
        """Seconds between the kept points of :attr:`series` (``sample_every`` until the series
        were merged to stay within :data:`MAX_POINTS`)."""
        return self._width or self.sample_every

    def _sample(self) -> None:
        """Take a sample (see :class:`SampledRun`), keeping at most :data:`MAX_POINTS` points:
        once merged, a series keeps the first sample of each ``resolution``-long interval and
        the newest one; counters are exact at every kept point and the two rates are recomputed
        between kept points."""
        super()._sample()
        times = self.series["time"]
        width = self._width
        if width is not None and len(times) >= 3:
            if _bucket(times[-2], width) == _bucket(times[-3], width):
                for values in self.series.values():
                    del values[-2]
            self._recompute_rates(len(times) - 1)
        if len(times) > MAX_POINTS:
            self._merge()

    def _merge(self) -> None:
        width = 2 * self.resolution
        while True:
            times = self.series["time"]
            keep = [0]
            for i in range(1, len(times) - 1):
                if _bucket(times[i], width) != _bucket(times[keep[-1]], width):
                    keep.append(i)
            keep.append(len(times) - 1)
            if len(keep) <= MAX_POINTS // 2 + 1:
                break
            width *= 2
        self._width = width
        for key, values in self.series.items():
            self.series[key] = [values[i] for i in keep]
        for i in range(1, len(keep)):
            self._recompute_rates(i)

    def _recompute_rates(self, i: int) -> None:
        s = self.series
        dt = s["time"][i] - s["time"][i - 1]
        for rate, total in (("throughput", "processed"), ("producer_rate", "sent")):
            s[rate][i] = (s[total][i] - s[total][i - 1]) / dt if dt > 0 else 0.0

    def _measure(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        depth = self.queue.depth
        # every sample, including one replaced later at the same instant, counts for the maximum
        self.max_depth = max(self.max_depth, depth)
        processed, sent = self.queue.acked_count, self.producer.sent
        return {
            "depth": depth,
            "in_flight": self.queue.in_flight_count,
            "dlq_depth": self.dlq.depth,
            "sent": sent,
            "sent_total": sent + len(self.poison_ids),
            "processed": processed,
            "throughput": self._rate(processed, previous, "processed"),
            "producer_rate": self._rate(sent, previous, "sent"),
        }


#: The longest experiment, in simulated seconds.
MAX_EXPERIMENT = 3600.0


def _duration(name: str, value: Any, *, after: float = 0.0, after_name: str = "") -> float:
    """A duration in (after, MAX_EXPERIMENT], named ``name``."""
    check.number(name, value, minimum=0, allow_min=False, maximum=MAX_EXPERIMENT)
    if after and value <= after:
        raise ValueError(f"{name} must be > {after_name} ({after:g}), got {value!r}")
    return value


def _bucket(time: float, width: float) -> int:
    # which width-long interval a sample time falls in (times on the grid land exactly)
    return math.floor(time / width + 1e-9)


# ------------------------------------------------------------------------------------------------
# The lesson's four experiments
# ------------------------------------------------------------------------------------------------
def _advance(run: Playground, seconds: float) -> None:
    """Advance ``run`` by ``seconds`` in steps that :meth:`Playground.advance` accepts."""
    end = run.now + seconds
    while run.now < end:
        run.advance(min(end - run.now, run.longest_advance()))


def experiment_normal_flow(seconds: float = 30.0, seed: int = 0) -> dict[str, Any]:
    """Experiment 1: 5 msg/s into three healthy consumers for ``seconds``, then drain."""
    _duration("seconds", seconds)
    run = Playground(rate=5.0, seed=seed)
    _advance(run, seconds)
    depth_while_running = run.max_depth
    processed_while_running = run.queue.acked_count
    run.drain()
    s = run.state()
    return {
        "sent": s["sent"],
        "processed": s["processed"],
        "lost": s["sent"] - s["processed"],
        "max_depth": depth_while_running,
        "throughput": processed_while_running / seconds,
        "processed_by": s["processed_by"],
        "summary": run.summary(),
    }


def experiment_kill_consumer(
    kill_at: float = 10.0, seconds: float = 30.0, consumer: str = "B", seed: int = 0
) -> dict[str, Any]:
    """Experiment 2: 5 msg/s into three consumers; ``consumer`` dies at ``kill_at`` (mid-message);
    the run goes on to ``seconds`` and then drains."""
    _duration("kill_at", kill_at)
    _duration("seconds", seconds, after=kill_at, after_name="kill_at")
    run = Playground(rate=5.0, seed=seed)
    _advance(run, kill_at)
    before = dict(run.state()["processed_by"])
    acked_at_kill = run.queue.acked_count
    dropped = run.kill_consumer(consumer)

    def acks_of_dropped() -> list[str]:
        return [
            e.data["consumer"] for e in run.sim.trace.of_kind("ack") if e.data["message"] == dropped
        ]

    # Look for its ack early as well as at the end: the trace keeps only the newest events.
    first = min(seconds - kill_at, 60.0)
    _advance(run, first)
    redelivered_to = acks_of_dropped()
    if seconds - kill_at > first:
        _advance(run, seconds - kill_at - first)
        redelivered_to = redelivered_to or acks_of_dropped()
    throughput_before = acked_at_kill / kill_at
    throughput_after = (run.queue.acked_count - acked_at_kill) / (seconds - kill_at)
    run.drain()
    s = run.state()
    return {
        "killed": consumer,
        "dropped_message": dropped,
        "redelivered_to": redelivered_to,
        "processed_by_before": before,
        "processed_by": s["processed_by"],
        "throughput_before": throughput_before,
        "throughput_after": throughput_after,
        "sent": s["sent"],
        "processed": s["processed"],
        "lost": s["sent"] - s["processed"],
        "summary": run.summary(),
    }


def experiment_poison_pill(
    inject_at: float = 5.0, seconds: float = 20.0, max_receives: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Experiment 3: 5 msg/s into three consumers; a poison pill at ``inject_at``; run to
    ``seconds``."""
    _duration("inject_at", inject_at)
    _duration("seconds", seconds, after=inject_at, after_name="inject_at")
    run = Playground(rate=5.0, max_receives=max_receives, seed=seed)
    _advance(run, inject_at)
    poison = run.inject_poison()
    _advance(run, seconds - inject_at)
    trace = run.sim.trace
    receives = [e for e in trace.of_kind("receive") if e.data["message"] == poison]
    moved = [e.time for e in trace.of_kind("dead_letter") if e.data["message"] == poison]
    processed_meanwhile = sum(
        1 for e in trace.of_kind("ack") if inject_at <= e.time <= (moved[0] if moved else seconds)
    )
    return {
        "poison": poison,
        "receives": len(receives),
        "dead_lettered_at": moved[0] if moved else None,
        "dlq": run.dlq.inspect(),
        "processed_while_poison_retried": processed_meanwhile,
        "processed": run.state()["processed"],
        "summary": run.summary(),
    }


def experiment_overload(
    seconds: float = 30.0, rate: float = 15.0, capacity: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Experiment 4: ``rate`` msg/s with only consumer A alive, for ``seconds``, once without and
    once with backpressure (a queue bounded at ``capacity``). The bounded run also reports
    ``demand`` (what the producer was asked to send) and ``held_back`` (demand it did not send)."""
    _duration("seconds", seconds)
    _limited("rate", rate)
    _limited("capacity", capacity, integer=True)
    results: dict[str, Any] = {}
    for backpressure in (False, True):
        run = Playground(rate=rate, backpressure=backpressure, capacity=capacity, seed=seed)
        run.kill_consumer("B")
        run.kill_consumer("C")
        _advance(run, seconds)
        s = run.state()
        results["with_backpressure" if backpressure else "without_backpressure"] = {
            "sent": s["sent"],
            "processed": s["processed"],
            "final_depth": s["depth"],
            "max_depth": s["max_depth"],
            "depth_series": list(run.series["depth"]),
            "producer_rate": s["sent"] / seconds,
            "held_back": s["held_back"],
            "summary": run.summary(),
        }
    # What the bounded run did not send was held back upstream, not done: backpressure is not
    # free. The unbounded run never waited, so what it sent is the demand.
    bounded = results["with_backpressure"]
    bounded["demand"] = results["without_backpressure"]["sent"]
    results["capacity"] = capacity
    return results


def run_experiments() -> dict[str, dict[str, Any]]:
    """All four experiments at the lesson's settings."""
    return {
        "normal_flow": experiment_normal_flow(),
        "kill_consumer": experiment_kill_consumer(),
        "poison_pill": experiment_poison_pill(),
        "overload": experiment_overload(),
    }


def default_run() -> Playground:
    """The playground's opening picture: 5 msg/s into three consumers; a poison pill at t=5 s goes
    to the DLQ; consumer B is killed at t=10 s and revived at t=20 s; 30 s in all."""
    run = Playground()
    run.advance(5)
    run.inject_poison()
    run.advance(5)
    run.kill_consumer("B")
    run.advance(10)
    run.revive_consumer("B")
    run.advance(10)
    return run
