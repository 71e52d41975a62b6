"""Chapter 6's retry scenarios: a retry storm against a recovering dependency, and what a retry
topic does to per-key order.

:func:`retry_storm` plays one storm: ``consumers`` consumers each hold one message when the
dependency they call goes down; all of them fail at once and retry under the same
:class:`~mqlib.models.retries.RetryPolicy`, with or without jitter. :class:`RetryStormRun` plays the
same storm both ways for the chapter's chart. :func:`retry_topic_order` replays a Kafka partition
whose consumer meets one transient failure, with a retry topic or with a blocking retry.
"""

from __future__ import annotations

import math
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.retries import (
    JITTER_MODES,
    Backoff,
    Dependency,
    RetryingConsumer,
    RetryPolicy,
    RetryTopicConsumer,
)

__all__ = ["RetryStormRun", "retry_storm", "retry_topic_order"]


def retry_storm(
    jitter: str = "full",
    *,
    consumers: int = 200,
    recovers_at: float = 10.0,
    capacity: int = 50,
    base: float = 1.0,
    cap: float = 60.0,
    max_attempts: int = 10,
    permanent: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Play one retry storm and return what the dependency saw and when the work was done.

    ``consumers`` consumers call the dependency at t=0, while it is down (it recovers at
    ``recovers_at`` and then serves ``capacity`` calls per second); the first ``permanent`` of
    them hold a message with an invalid payload, a permanent error. Each retries as
    ``RetryPolicy(Backoff(base=base, cap=cap, jitter=jitter), max_attempts=max_attempts)`` says.

    Returns ``time`` (the start of each second), ``load`` (calls in that second) and ``served``
    per second, ``peak_after_recovery`` (the most calls in one second once the dependency is back),
    ``recovered_at`` (when the last message was processed or dead-lettered), ``processed``,
    ``dead_lettered``, ``calls`` (all calls made) and ``refused_after_recovery`` (calls refused
    for overload while the dependency was up), and ``dead_letter_reasons``.

    The consumers' loop is played in one heap rather than as two hundred processes on the
    event engine (:func:`_play_storm`; without jitter, wave by wave, :func:`_play_in_step`):
    the same calls, draws and counts, which the tests check against :class:`RetryingConsumer`
    on the engine, in a fifth of the time (without jitter, a twentieth).
    """
    check.choice("jitter", jitter, JITTER_MODES)
    check.integer("consumers", consumers, minimum=1, maximum=10_000)
    check.integer("permanent", permanent, minimum=0, maximum=consumers)
    sim = Simulation(seed=seed, record=False)
    dependency = Dependency(sim, recovers_at=recovers_at, capacity=capacity, window=1.0)
    policy = RetryPolicy(Backoff(base=base, cap=cap, jitter=jitter), max_attempts=max_attempts)
    play = _play_storm if jitter != "none" else _play_in_step
    workers = play(sim, dependency, policy, consumers, permanent)
    return _storm_result(jitter, dependency, workers)


def _retry_storm_on_the_engine(jitter: str = "full", **settings: Any) -> dict[str, Any]:
    """:func:`retry_storm` played by :class:`RetryingConsumer` processes on the event engine:
    the reference that the tests hold :func:`_play_storm` to, result for result."""
    merged = {**RetryStormRun.DEFAULTS, **settings}
    sim = Simulation(seed=merged["seed"], record=False)
    dependency = Dependency(
        sim, recovers_at=merged["recovers_at"], capacity=merged["capacity"], window=1.0
    )
    policy = RetryPolicy(
        Backoff(base=merged["base"], cap=merged["cap"], jitter=jitter),
        max_attempts=merged["max_attempts"],
    )
    workers = [
        RetryingConsumer(sim, f"c{i}", dependency, policy, permanent=i < merged["permanent"])
        for i in range(merged["consumers"])
    ]
    sim.run()
    return _storm_result(jitter, dependency, workers)


class _Worker:
    """What :func:`_play_storm` keeps of each consumer: a :class:`RetryingConsumer`'s results."""

    __slots__ = ("permanent", "attempts", "outcome", "finished_at")

    def __init__(self, permanent: bool) -> None:
        self.permanent = permanent
        self.attempts = 0
        self.outcome: str | None = None
        self.finished_at: float | None = None


def _play_storm(
    sim: Simulation, dependency: Dependency, policy: RetryPolicy, consumers: int, permanent: int
) -> list[_Worker]:
    """Play :class:`RetryingConsumer`'s loop for every consumer at once, without the event
    engine: one heap of (time, order scheduled) entries, popped in the order SimPy processes
    its timeouts, and the same draws from ``sim.rng`` in the same order, so the storm is the
    same, call for call. (Two hundred generator processes on the engine took 9-10 ms a storm,
    this loop 2 ms; a chapter slider plays two storms per move.)"""
    from heapq import heappop, heappush

    rng, backoff, max_attempts = sim.rng, policy.backoff, policy.max_attempts
    jittered = backoff.jitter != "none"
    ceilings = [0.0] + [backoff._ceiling(n) for n in range(1, max_attempts)]  # by retry number
    window, recovers_at, capacity = dependency.window, dependency.recovers_at, dependency.capacity
    calls, served_in = dependency.calls, dependency.served
    workers = [_Worker(i < permanent) for i in range(consumers)]
    # every consumer's first call at t=0, in the order the processes were started
    queue = [(0.0, i, i) for i in range(consumers)]
    scheduled = consumers
    while queue:
        now, _order, i = heappop(queue)
        worker = workers[i]
        worker.attempts += 1
        if worker.permanent:  # RetryPolicy: a permanent error is dead-lettered at once
            worker.outcome, worker.finished_at = "dead_lettered", now
            continue
        index = math.floor(round(now / window, 9))  # Dependency._call
        calls[index] = calls.get(index, 0) + 1
        if now >= recovers_at and served_in.get(index, 0) < capacity:
            served_in[index] = served_in.get(index, 0) + 1
            worker.outcome, worker.finished_at = "processed", now
            continue
        if worker.attempts >= max_attempts:
            worker.outcome, worker.finished_at = "dead_lettered", now
            continue
        delay = ceilings[worker.attempts]
        if jittered:
            delay *= rng.random()
        heappush(queue, (now + delay, scheduled, i))
        scheduled += 1
    return workers


def _play_in_step(
    sim: Simulation, dependency: Dependency, policy: RetryPolicy, consumers: int, permanent: int
) -> list[_Worker]:
    """:func:`_play_storm` without jitter, wave by wave. Every consumer calls at t=0, and the
    ones the dependency turns away all wait the same un-jittered backoff, so they call again
    together, in the same order: the storm is one wave after another, each the previous wave's
    turned-away consumers, played in a few dozen steps instead of a few thousand heap entries
    (the same calls in the same order, which the tests check against the engine)."""
    del sim  # no draws: nothing is random without jitter
    backoff, max_attempts = policy.backoff, policy.max_attempts
    window, recovers_at, capacity = dependency.window, dependency.recovers_at, dependency.capacity
    calls, served_in = dependency.calls, dependency.served
    workers = [_Worker(i < permanent) for i in range(consumers)]
    now, wave, tried = 0.0, list(range(consumers)), 0
    while wave:
        tried += 1  # every consumer of a wave has made the same number of calls
        index = math.floor(round(now / window, 9))  # Dependency._call
        turned_away = []
        for i in wave:
            worker = workers[i]
            worker.attempts = tried
            if worker.permanent:  # RetryPolicy: a permanent error is dead-lettered at once
                worker.outcome, worker.finished_at = "dead_lettered", now
                continue
            calls[index] = calls.get(index, 0) + 1
            if now >= recovers_at and served_in.get(index, 0) < capacity:
                served_in[index] = served_in.get(index, 0) + 1
                worker.outcome, worker.finished_at = "processed", now
            elif tried >= max_attempts:
                worker.outcome, worker.finished_at = "dead_lettered", now
            else:
                turned_away.append(i)
        now, wave = now + backoff._ceiling(tried), turned_away
    return workers


def _storm_result(jitter: str, dependency: Dependency, workers: list[Any]) -> dict[str, Any]:
    """What :func:`retry_storm` returns, from the dependency's counts and the consumers."""
    recovers_at, capacity = dependency.recovers_at, dependency.capacity
    last = max(dependency.calls, default=0)  # no call at all when every message is permanent
    seconds = list(range(last + 1))
    recovered = dependency.window_of(recovers_at)
    after = [dependency.calls.get(s, 0) for s in seconds if s >= recovered]
    refused = sum(
        dependency.calls.get(s, 0) - dependency.served.get(s, 0)
        for s in seconds
        if s > recovered or (s == recovered and recovers_at == s)
    )
    reasons: dict[str, int] = {}
    for worker in workers:
        if worker.outcome == "dead_lettered":
            why = "permanent" if worker.permanent else "retries exhausted"
            reasons[why] = reasons.get(why, 0) + 1
    return {
        "jitter": jitter,
        "time": [float(s) for s in seconds],
        "load": [dependency.calls.get(s, 0) for s in seconds],
        "served": [dependency.served.get(s, 0) for s in seconds],
        "capacity": capacity,
        "recovers_at": recovers_at,
        "peak_after_recovery": max(after, default=0),
        "recovered_at": max(w.finished_at or 0.0 for w in workers),
        "processed": sum(w.outcome == "processed" for w in workers),
        "dead_lettered": sum(w.outcome == "dead_lettered" for w in workers),
        "calls": sum(dependency.calls.values()),
        "attempts_of_permanent": sum(w.attempts for w in workers if w.permanent),
        "refused_after_recovery": refused,
        "dead_letter_reasons": reasons,
    }


class RetryStormRun:
    """The same retry storm played twice, in step (no jitter) and with full jitter, for the
    chapter's chart. Settings as :func:`retry_storm`; :meth:`configure` changes them and plays
    both again. :attr:`results` maps ``"none"`` and ``"full"`` to the two results."""

    DEFAULTS: dict[str, Any] = {
        "consumers": 200,
        "recovers_at": 10.0,
        "capacity": 50,
        "base": 1.0,
        "cap": 60.0,
        "max_attempts": 10,
        "permanent": 0,
        "seed": 0,
    }

    def __init__(self, **settings: Any) -> None:
        self.settings: dict[str, Any] = dict(self.DEFAULTS)
        self.results: dict[str, dict[str, Any]] = {}
        self.configure(**settings)

    def configure(self, **settings: Any) -> None:
        """Change some settings (the names of :attr:`DEFAULTS`) and play both storms again."""
        unknown = sorted(set(settings) - set(self.DEFAULTS))
        if unknown:
            raise TypeError(
                f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(self.DEFAULTS)}"
            )
        merged = {**self.settings, **settings}
        results = {jitter: retry_storm(jitter, **merged) for jitter in JITTER_MODES}
        self.settings, self.results = merged, results  # only once both ran without error

    @property
    def peak_ratio(self) -> float:
        """How many times higher the peak load after recovery is in step than with jitter."""
        return self.results["none"]["peak_after_recovery"] / max(
            1, self.results["full"]["peak_after_recovery"]
        )

    def table(self) -> list[dict[str, Any]]:
        """One row per jitter mode: the figures the chapter compares."""
        return [
            {
                "retries": "in step (no jitter)" if jitter == "none" else "full jitter",
                "peak calls/s after recovery": r["peak_after_recovery"],
                "refused after recovery": r["refused_after_recovery"],
                "all done at (s)": round(r["recovered_at"], 1),
                "calls in all": r["calls"],
                "dead-lettered": r["dead_lettered"],
            }
            for jitter, r in self.results.items()
        ]

    def summary(self) -> str:
        """One line: both storms' peak load after recovery and time to finish."""
        none, full = self.results["none"], self.results["full"]
        s = self.settings
        in_step = (
            f"peak {none['peak_after_recovery']} calls/s, all done at t={none['recovered_at']:.1f}s"
        )
        jittered = (
            f"peak {full['peak_after_recovery']} calls/s, all done at t={full['recovered_at']:.1f}s"
        )
        return (
            f"{s['consumers']} consumers, dependency down until t={s['recovers_at']:g}s then "
            f"{s['capacity']} calls/s: in step {in_step}; full jitter {jittered}"
        )


#: The partition of the chapter's ordering example: three orders' events, interleaved.
ORDER_EVENTS: list[tuple[str, str]] = [
    ("order-42", "created"),
    ("order-43", "created"),
    ("order-42", "paid"),
    ("order-43", "paid"),
    ("order-42", "shipped"),
    ("order-44", "created"),
    ("order-43", "shipped"),
    ("order-44", "paid"),
]


def retry_topic_order(
    mode: str = "retry_topic",
    *,
    fails_once: tuple[int, ...] = (2,),
    retry_delay: float = 5.0,
    processing_time: float = 1.0,
) -> dict[str, Any]:
    """Replay :data:`ORDER_EVENTS` through one partition consumer whose first attempt at the
    offsets ``fails_once`` fails transiently (default: order-42's ``paid``).

    Returns ``order`` (each key's values in the order they were processed), ``violations`` (keys
    whose events were processed out of order), ``finished_at`` and ``log`` (``(time, key,
    value)`` in processing order).
    """
    sim = Simulation(seed=0)
    consumer = RetryTopicConsumer(
        sim,
        list(ORDER_EVENTS),
        fails_once=fails_once,
        mode=mode,
        retry_delay=retry_delay,
        processing_time=processing_time,
    )
    sim.run()
    expected: dict[str, list[str]] = {}
    for key, value in ORDER_EVENTS:
        expected.setdefault(key, []).append(value)
    order: dict[str, list[str]] = {key: [] for key in expected}
    for _time, key, value in consumer.processed:
        order[key].append(value)
    return {
        "mode": mode,
        "order": order,
        "violations": [key for key in expected if order[key] != expected[key]],
        "finished_at": max(t for t, _k, _v in consumer.processed),
        "log": list(consumer.processed),
    }
