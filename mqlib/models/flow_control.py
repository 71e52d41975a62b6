"""Flow control at the consumer: how many messages a broker hands out ahead of the acks, and how
to tell from lag whether the consumers are keeping up.

**Push and pull.** A *push* broker (RabbitMQ's ``basic.consume``, a JetStream push consumer)
sends messages to the consumer as they arrive; a *pull* consumer (Kafka's ``poll()``, a JetStream
pull consumer's ``fetch``) asks for the next batch when it is ready. Either way something caps the
messages a consumer holds without having acknowledged them:

* RabbitMQ: the **prefetch count**, ``basic.qos(prefetch_count=N)``, per consumer (0 = no limit);
* JetStream: the consumer's ``max_ack_pending`` (1,000 unless set), and the batch size of a fetch;
* Kafka: ``max.poll.records`` (500), the most records one ``poll()`` returns; the consumer's real
  share is set by the partitions it owns.

This module's :class:`PrefetchQueue` is the push case: one queue, several consumers of different
speeds, each with a *prefetch window*. The broker pushes the next waiting message to a consumer
with room in its window (round robin among them, as RabbitMQ does); the message travels for
``latency`` seconds, waits in the consumer's buffer, is processed, and its ack travels back for
``latency`` seconds before the window has room again. Two things follow, and the tests pin both:

* **Too small a window** (1) makes each consumer wait a round trip between messages.
* **Too large a window** lets a slow consumer take a big share of the queue up front. It works
  through its buffer at its own pace while the fast consumers run dry and idle, so the queue takes
  as long as the slow consumer needs. And when a consumer dies, everything in its window comes
  back (RabbitMQ requeues a closed channel's unacknowledged messages): the larger the window, the
  more is redelivered, and processed twice if it had been half done.

Lag is the other half of flow control. :func:`lag_seconds` turns a lag in messages into the time
the consumers need to work it off, and :func:`first_fixed_alert` / :func:`first_trend_alert`
compare a fixed-count alert with one on the lag's trend over a :func:`lag_timeline`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from .backpressure import Backlog

__all__ = [
    "PrefetchConsumer",
    "PrefetchQueue",
    "PrefetchResult",
    "first_fixed_alert",
    "first_trend_alert",
    "lag_seconds",
    "lag_timeline",
    "run_prefetch",
]


class PrefetchConsumer:
    """One consumer of a :class:`PrefetchQueue`: it processes its buffer one message at a time,
    ``processing_time`` seconds each, and acks each one when done."""

    def __init__(self, queue: PrefetchQueue, name: str, processing_time: float) -> None:
        self.queue = queue
        self.name = check.text("name", name)
        self.processing_time = check.positive("processing_time", processing_time)
        self.buffer: deque[int] = deque()  # pushed to it, arrived, not started
        self.unacked: list[int] = []  # pushed to it and not yet acknowledged (its window)
        self.processed = 0
        self.alive = True
        self.busy_seconds = 0.0
        self.max_unacked = 0
        self._wake = queue.sim.event()
        self._process = queue.sim.process(self.run())

    def deliver(self, message: int) -> None:
        """A pushed message has arrived in this consumer's buffer."""
        if not self.alive:
            return  # it died while the message was on its way: the broker requeued it already
        self.buffer.append(message)
        if not self._wake.triggered:
            self._wake.succeed()

    def run(self) -> Generator[simpy.Event, Any, None]:
        sim = self.queue.sim
        try:
            while True:
                while not self.buffer:
                    self._wake = sim.event()
                    yield self._wake
                message = self.buffer.popleft()
                started = sim.now
                yield sim.timeout(self.processing_time)
                self.busy_seconds += sim.now - started
                self.processed += 1
                sim.record("processed", consumer=self.name, message=message)
                sim.process(self.queue.ack_later(self, message))
        except simpy.Interrupt:
            return


class PrefetchQueue:
    """A push queue with a per-consumer prefetch window.

    Parameters
    ----------
    sim:
        The simulation it runs in.
    consumers:
        Consumer name -> seconds it needs per message, e.g. ``{"A": 0.1, "B": 0.1, "C": 1.0}``.
    prefetch:
        Unacknowledged messages each consumer may hold (RabbitMQ's prefetch count); ``0`` means
        no limit, as in RabbitMQ.
    latency:
        Seconds a push takes to reach the consumer, and an ack to reach the broker.
    """

    def __init__(
        self,
        sim: Simulation,
        consumers: Mapping[str, float],
        *,
        prefetch: int = 1,
        latency: float = 0.05,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        if not isinstance(consumers, Mapping) or not consumers:
            raise ValueError(
                f"consumers must be a non-empty mapping of name -> seconds per message, "
                f"got {consumers!r}"
            )
        self.sim = sim
        self.prefetch = check.integer("prefetch", prefetch, minimum=0, maximum=1_000_000)
        self.latency = check.non_negative("latency", latency)
        self.waiting: deque[int] = deque()
        self.published = 0
        self.redelivered = 0
        self.consumers = {
            name: PrefetchConsumer(self, name, seconds) for name, seconds in consumers.items()
        }
        self._turn = 0

    def publish(self, count: int = 1) -> None:
        """Put ``count`` new messages (numbered 1, 2, ...) on the queue."""
        check.integer("count", count, minimum=1, maximum=10_000_000)
        for _ in range(count):
            self.published += 1
            self.waiting.append(self.published)
        self.dispatch()

    def _has_room(self, consumer: PrefetchConsumer) -> bool:
        return consumer.alive and (self.prefetch == 0 or len(consumer.unacked) < self.prefetch)

    def dispatch(self) -> None:
        """Push waiting messages, round robin, to every consumer with room in its window."""
        names = list(self.consumers)
        while self.waiting:
            for step in range(len(names)):
                consumer = self.consumers[names[(self._turn + step) % len(names)]]
                if self._has_room(consumer):
                    break
            else:
                return  # every window is full (or every consumer is dead)
            self._turn = (names.index(consumer.name) + 1) % len(names)
            message = self.waiting.popleft()
            consumer.unacked.append(message)
            consumer.max_unacked = max(consumer.max_unacked, len(consumer.unacked))
            self.sim.process(self._push(consumer, message))

    def _push(self, consumer: PrefetchConsumer, message: int) -> Generator[Any, Any, None]:
        yield self.sim.timeout(self.latency)
        consumer.deliver(message)

    def ack_later(self, consumer: PrefetchConsumer, message: int) -> Generator[Any, Any, None]:
        """The ack crosses the network; then the window has room again."""
        yield self.sim.timeout(self.latency)
        if consumer.alive and message in consumer.unacked:
            consumer.unacked.remove(message)
            self.dispatch()

    def crash(self, name: str) -> int:
        """Consumer ``name`` dies: its unacknowledged messages go back to the head of the queue
        (as RabbitMQ requeues them when the channel closes) and are pushed to the others.
        Returns how many came back."""
        check.choice("name", name, list(self.consumers))
        consumer = self.consumers[name]
        if not consumer.alive:
            raise ValueError(f"consumer {name!r} has already crashed")
        consumer.alive = False
        consumer._process.interrupt("crash")
        back = list(consumer.unacked)
        consumer.unacked.clear()
        consumer.buffer.clear()
        self.waiting.extendleft(reversed(back))
        self.redelivered += len(back)
        self.sim.record("consumer_crash", consumer=name, requeued=len(back))
        self.dispatch()
        return len(back)


@dataclass(frozen=True)
class PrefetchResult:
    """One run: ``processed`` per consumer, ``finished_at`` (seconds until the last message was
    processed), ``max_unacked`` per consumer (the most it held at once), ``requeued`` (messages
    that came back after a crash) and ``processed_twice`` (messages processed by the crashed
    consumer whose ack never reached the broker, then processed again)."""

    prefetch: int
    messages: int
    processed: dict[str, int]
    finished_at: float
    max_unacked: dict[str, int]
    busy_share: dict[str, float]
    requeued: int
    processed_twice: int

    def shares(self) -> dict[str, float]:
        """Each consumer's fraction of the messages processed."""
        total = sum(self.processed.values())
        return {name: count / total for name, count in self.processed.items()}


def run_prefetch(
    consumers: Mapping[str, float] | None = None,
    messages: int = 300,
    *,
    prefetch: int = 1,
    latency: float = 0.05,
    crash: tuple[str, float] | None = None,
    seed: int = 0,
) -> PrefetchResult:
    """Queue ``messages`` at t=0 for ``consumers`` (default: ``A`` and ``B`` at 0.1 s per
    message, ``C`` at 1.0 s) with a ``prefetch`` window, run until all are processed.

    ``crash=("C", 5.0)`` kills consumer C five seconds in; its window is requeued.

    >>> run_prefetch(prefetch=1).processed
    {'A': 138, 'B': 137, 'C': 25}
    >>> run_prefetch(prefetch=100).processed
    {'A': 100, 'B': 100, 'C': 100}
    """
    consumers = {"A": 0.1, "B": 0.1, "C": 1.0} if consumers is None else consumers
    check.integer("messages", messages, minimum=1, maximum=1_000_000)
    sim = Simulation(seed=seed)
    queue = PrefetchQueue(sim, consumers, prefetch=prefetch, latency=latency)
    if crash is not None:
        if not isinstance(crash, tuple) or len(crash) != 2:
            raise TypeError(f"crash must be a (consumer name, seconds) pair, got {crash!r}")
        name, at = crash
        check.choice("crash consumer", name, list(consumers))
        check.positive("crash time", at)

        def crasher() -> Generator[Any, Any, None]:
            yield sim.timeout(at)
            queue.crash(name)

        sim.process(crasher())
    queue.publish(messages)
    sim.run()
    processed = {n: c.processed for n, c in queue.consumers.items()}
    finished = max((e.time for e in sim.trace.of_kind("processed")), default=0.0)
    return PrefetchResult(
        prefetch=prefetch,
        messages=messages,
        processed=processed,
        finished_at=round(float(finished), 9),  # sums of 0.05 s steps: no float dust
        max_unacked={n: c.max_unacked for n, c in queue.consumers.items()},
        busy_share={
            n: (c.busy_seconds / finished if finished else 0.0) for n, c in queue.consumers.items()
        },
        requeued=queue.redelivered,
        # every message is processed at least once; a second time only if a crashed consumer
        # had processed it and its ack had not reached the broker yet
        processed_twice=sum(processed.values()) - messages,
    )


# -- lag, in messages and in seconds ----------------------------------------------------------


def lag_seconds(lag: int, consume_rate: float) -> float:
    """How long the consumers need to work off ``lag`` messages at ``consume_rate`` per second
    (ignoring new arrivals): lag ÷ consume rate.

    >>> lag_seconds(50_000, 1_000), lag_seconds(50_000, 50)
    (50.0, 1000.0)
    """
    check.integer("lag", lag, minimum=0)
    check.positive("consume_rate", consume_rate)
    return lag / consume_rate


def lag_timeline(
    phases: Sequence[tuple[float, float]], *, consumer_rate: float = 1_000, sample_every: int = 60
) -> dict[str, list[float]]:
    """Run a :class:`~mqlib.models.backpressure.Backlog` (no backpressure) through ``phases``,
    a list of ``(seconds, producer rate)`` pairs, and sample the lag every ``sample_every``
    seconds.

    Returns ``time`` (seconds), ``lag`` (messages) and ``lag_seconds`` (lag ÷ consumer rate).
    """
    check.positive("consumer_rate", consumer_rate)
    check.integer("sample_every", sample_every, minimum=1, maximum=86_400)
    if isinstance(phases, str) or not isinstance(phases, Iterable):
        raise TypeError(f"phases must be a list of (seconds, rate) pairs, got {phases!r}")
    phases = list(phases)
    if not phases:
        raise ValueError("phases must not be empty")
    for phase in phases:
        if not isinstance(phase, tuple | list) or len(phase) != 2:
            raise TypeError(f"phases must contain (seconds, rate) pairs, got {phase!r}")
        check.integer("phase seconds", phase[0], minimum=1)
        check.non_negative("phase rate", phase[1])
    backlog = Backlog(rate=phases[0][1], consumer_rate=consumer_rate, mode="unbounded")
    out: dict[str, list[float]] = {"time": [0.0], "lag": [0.0], "lag_seconds": [0.0]}
    for seconds, rate in phases:
        backlog.set_rate(rate)
        for _ in range(int(seconds)):
            backlog.advance(1)
            if backlog.steps % sample_every == 0:
                out["time"].append(backlog.now)
                out["lag"].append(float(backlog.lag))
                out["lag_seconds"].append(lag_seconds(backlog.lag, consumer_rate))
    return out


def _check_timeline(timeline: Any) -> None:
    if not isinstance(timeline, Mapping) or "time" not in timeline or "lag" not in timeline:
        raise TypeError(
            f"timeline must be a mapping with 'time' and 'lag' lists (as lag_timeline returns), "
            f"got {check._show(timeline)} ({type(timeline).__name__})"
        )
    for key in ("time", "lag"):
        check.collection(f"timeline[{key!r}]", timeline[key])
        for value in timeline[key]:
            check.number(f"timeline[{key!r}]", value)
    if len(timeline["time"]) != len(timeline["lag"]):
        raise ValueError("timeline must have as many 'time' values as 'lag' values")


def first_fixed_alert(timeline: Mapping[str, Sequence[float]], threshold: float) -> float | None:
    """The first sample time at which the lag (messages) exceeds ``threshold``, or ``None``."""
    check.non_negative("threshold", threshold)
    _check_timeline(timeline)
    for t, lag in zip(timeline["time"], timeline["lag"], strict=True):
        if lag > threshold:
            return t
    return None


def first_trend_alert(timeline: Mapping[str, Sequence[float]], samples: int = 10) -> float | None:
    """The first sample time at which the lag has grown at every one of the last ``samples``
    samples (a lag that only ever goes up, not a burst that is already draining), or ``None``."""
    check.integer("samples", samples, minimum=1)
    _check_timeline(timeline)
    lags = list(timeline["lag"])
    rising = 0
    for i in range(1, len(lags)):
        rising = rising + 1 if lags[i] > lags[i - 1] else 0
        if rising >= samples:
            return timeline["time"][i]
    return None
