"""Retries done right: which errors to retry, how long to wait, and what retrying costs.

A consumer's call to a dependency (a database, a payment API) can fail in two ways:

- **transiently**: the dependency is restarting, overloaded, or a lock was held a moment too long.
  The same call may work a little later, so the message is *retried*.
- **permanently**: the payload is invalid, the record it names does not exist, the code has a bug.
  Every retry meets the same failure, so the message goes to the dead letter queue at once and
  costs one attempt instead of ``max_attempts``.

:class:`RetryPolicy` makes that decision. How long to wait before each retry is
:class:`Backoff`'s job: *exponential* backoff doubles the wait after every failure, up to a cap,
so a dependency that is down is asked less and less often; *full jitter* draws the actual wait
uniformly between 0 and that exponential value (the scheme of Marc Brooker's AWS Architecture Blog
post "Exponential Backoff And Jitter", 2015). Jitter matters when many consumers failed at the
same moment, because the dependency they all call went down: without it they retry in step, at
the same instants, and every retry is a burst that a recovering dependency cannot serve, so it
fails again - a *retry storm*. :class:`Dependency` is such a dependency: down until
``recovers_at``, then able to serve ``capacity`` calls per ``window`` seconds; calls beyond that
are refused (an HTTP 503, a transient error). :class:`RetryingConsumer` is a consumer that holds
one message and calls the dependency until the policy says stop.

>>> backoff = Backoff(base=1.0, cap=60.0, jitter="none")
>>> [backoff.ceiling(n) for n in range(1, 8)]
[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]

The same decision on real brokers (none of them computes the backoff for you by default):

- **SQS**: no ack, and ``ChangeMessageVisibility`` on the receipt sets how long the message stays
  invisible, so the next receive comes after the backoff.
- **JetStream**: ``msg.nak(delay=...)`` redelivers after that delay, or the consumer's ``backoff``
  list of delays applies per delivery; ``msg.term()`` stops redelivery of a permanent failure.
- **RabbitMQ**: publish the message to a delay queue whose messages have a TTL (per-message
  ``expiration`` or a queue ``x-message-ttl``) and whose dead-letter exchange routes them back to
  the work queue when the TTL runs out.
- **Kafka**: a partition cannot skip a record and return to it, so a consumer either retries in
  place (and the partition waits) or publishes the record to a *retry topic* read after a delay
  and moves on; :class:`RetryTopicConsumer` shows what that does to per-key order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation

__all__ = [
    "JITTER_MODES",
    "Backoff",
    "Decision",
    "Dependency",
    "RetryPolicy",
    "RetryTopicConsumer",
    "RetryingConsumer",
]

#: ``"none"``: wait exactly the exponential value; ``"full"``: uniform between 0 and it.
JITTER_MODES = ("none", "full")


#: The most attempts (and so retries) a policy counts.
MAX_ATTEMPTS = 10_000


class Backoff:
    """Exponential backoff with an optional full jitter.

    The ``n``-th retry (``n`` = 1, 2, ...) waits up to ``min(cap, base * multiplier ** (n - 1))``
    seconds, its :meth:`ceiling`. With ``jitter="none"`` it waits exactly that; with
    ``jitter="full"`` a uniformly random time between 0 and it, drawn from the simulation's seeded
    random source.
    """

    def __init__(
        self,
        *,
        base: float = 1.0,
        cap: float = 60.0,
        multiplier: float = 2.0,
        jitter: str = "full",
    ) -> None:
        self.base = check.positive("base", base)
        self.cap = check.positive("cap", cap)
        if self.cap < self.base:
            raise ValueError(f"cap must be >= base ({self.base:g}), got {cap!r}")
        self.multiplier = check.number("multiplier", multiplier, minimum=1.0, maximum=10.0)
        self.jitter = check.choice("jitter", jitter, JITTER_MODES)

    def ceiling(self, retry: int) -> float:
        """The exponential wait before the ``retry``-th retry, capped."""
        check.integer("retry", retry, minimum=1, maximum=MAX_ATTEMPTS)
        return self._ceiling(retry)

    def _ceiling(self, retry: int) -> float:
        # ceiling() without the check, for RetryingConsumer's loop (its count is in range)
        if self.multiplier == 1:
            return self.base
        # the exponent is capped too, so a huge retry number cannot overflow a float
        exponent = min(retry - 1, 1 + math.ceil(math.log(self.cap / self.base, self.multiplier)))
        return min(self.cap, self.base * self.multiplier**exponent)

    def delay(self, retry: int, rng: random.Random) -> float:
        """The actual wait before the ``retry``-th retry."""
        check.instance("rng", rng, random.Random, "random.Random (e.g. sim.rng)")
        check.integer("retry", retry, minimum=1, maximum=MAX_ATTEMPTS)
        return self._delay(retry, rng)

    def _delay(self, retry: int, rng: random.Random) -> float:
        # delay() without the checks. rng.uniform(0.0, c) is 0.0 + (c - 0.0) * rng.random():
        # the same draw and the same float as c * rng.random()
        ceiling = self._ceiling(retry)
        return ceiling if self.jitter == "none" else ceiling * rng.random()


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: ``"retry"`` after ``delay`` seconds, or
    ``"dead_letter"`` now, for ``reason``."""

    action: str
    delay: float = 0.0
    reason: str = ""


class RetryPolicy:
    """Retry transient errors with :class:`Backoff`, at most ``max_attempts`` attempts in all;
    dead-letter permanent errors at the first failure."""

    def __init__(self, backoff: Backoff | None = None, *, max_attempts: int = 10) -> None:
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff or None, got {type(backoff).__name__}")
        self.backoff = Backoff() if backoff is None else backoff
        self.max_attempts = check.integer("max_attempts", max_attempts, minimum=1, maximum=1000)

    def decide(self, error: str, attempt: int, rng: random.Random) -> Decision:
        """After attempt number ``attempt`` failed with an ``error`` of kind ``"transient"`` or
        ``"permanent"``: retry (and after how long) or dead-letter."""
        check.choice("error", error, ("transient", "permanent"))
        check.instance("rng", rng, random.Random, "random.Random (e.g. sim.rng)")
        check.integer("attempt", attempt, minimum=1, maximum=MAX_ATTEMPTS)
        return self._decide(error, attempt, rng)

    def _decide(self, error: str, attempt: int, rng: random.Random) -> Decision:
        # decide() without the checks, for RetryingConsumer's loop (its arguments are its own)
        if error == "permanent":
            return Decision(
                "dead_letter", reason="permanent error: a retry would fail the same way"
            )
        if attempt >= self.max_attempts:
            return Decision("dead_letter", reason=f"transient error, {attempt} attempts used")
        return Decision("retry", delay=self.backoff._delay(attempt, rng))


class Dependency:
    """A downstream service that is down until ``recovers_at`` and then serves at most
    ``capacity`` calls in each ``window`` of simulated seconds (windows start at 0). A call while
    it is down, or beyond the window's capacity, is refused: a transient error.

    :attr:`calls` and :attr:`served` count, per window index, the calls that arrived (the load)
    and those that succeeded.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        recovers_at: float = 10.0,
        capacity: int = 50,
        window: float = 1.0,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.recovers_at = check.non_negative("recovers_at", recovers_at)
        self.capacity = check.integer("capacity", capacity, minimum=1, maximum=1_000_000)
        self.window = check.positive("window", window)
        self.calls: dict[int, int] = {}
        self.served: dict[int, int] = {}

    def window_of(self, time: float) -> int:
        """The index of the window ``time`` falls in (rounded first, so that a sum of float delays
        that lands on a boundary counts in the window it names)."""
        check.number("time", time, minimum=0)
        return math.floor(round(time / self.window, 9))

    def call(self, caller: str) -> bool:
        """One call now: ``True`` if served, ``False`` if refused."""
        check.text("caller", caller)
        return self._call(caller)

    def _call(self, caller: str) -> bool:
        # call() without the check, for RetryingConsumer's loop: once per call of a storm
        sim = self.sim
        now = sim.env._now
        index = math.floor(round(now / self.window, 9))  # window_of(now); now is >= 0
        calls, served_in = self.calls, self.served
        calls[index] = calls.get(index, 0) + 1
        served = now >= self.recovers_at and served_in.get(index, 0) < self.capacity
        if served:
            served_in[index] = served_in.get(index, 0) + 1
        if sim.listening:
            sim.record("dependency_call", caller=caller, served=served)
        return served


class RetryingConsumer:
    """A consumer holding one message: it calls ``dependency`` at ``start`` and after each
    transient failure waits as ``policy`` says, until a call succeeds or the policy dead-letters
    the message. A message with a ``permanent`` fault fails every call with a permanent error
    (its payload is invalid: the dependency is never even asked).

    Afterwards :attr:`outcome` is ``"processed"`` or ``"dead_lettered"``, :attr:`finished_at` the
    time, :attr:`attempts` the calls made.
    """

    def __init__(
        self,
        sim: Simulation,
        name: str,
        dependency: Dependency,
        policy: RetryPolicy,
        *,
        start: float = 0.0,
        permanent: bool = False,
    ) -> None:
        check.simulation("sim", sim)
        if not isinstance(dependency, Dependency):
            raise TypeError(f"dependency must be a Dependency, got {type(dependency).__name__}")
        if not isinstance(policy, RetryPolicy):
            raise TypeError(f"policy must be a RetryPolicy, got {type(policy).__name__}")
        self.sim = sim
        self.name = check.text("name", name)
        self.dependency = dependency
        self.policy = policy
        self.start = check.non_negative("start", start)
        self.permanent = check.boolean("permanent", permanent)
        check.same_simulation("dependency", dependency, sim)
        self.attempts = 0
        self.outcome: str | None = None
        self.finished_at: float | None = None
        sim.process(self.run())

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Call; on a failure ask the policy; wait its delay or give up."""
        sim, name = self.sim, self.name
        call, decide, rng = self.dependency._call, self.policy._decide, sim.rng
        yield sim.timeout(self.start)
        while True:
            self.attempts += 1
            if self.permanent:
                error = "permanent"
            elif call(name):
                self._finish("processed")
                return
            else:
                error = "transient"
            decision = decide(error, self.attempts, rng)
            if decision.action == "dead_letter":
                sim.record("dead_letter", consumer=name, reason=decision.reason)
                self._finish("dead_lettered")
                return
            if sim.listening:
                sim.record("retry_scheduled", consumer=name, delay=decision.delay)
            yield sim._timer(decision.delay)  # a backoff: finite and >= 0

    def _finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.finished_at = self.sim.now
        self.sim.record(outcome, consumer=self.name, attempts=self.attempts)


class RetryTopicConsumer:
    """One consumer of one Kafka partition whose handler fails once, transiently, on some records.

    ``records`` are ``(key, value)`` pairs in offset order, processed one every
    ``processing_time`` seconds; ``fails_once`` names the offsets whose first attempt fails. On a
    failure the consumer either

    - ``mode="retry_topic"``: publishes the record to a retry topic and moves on to the next
      offset; the retry topic's consumer processes it ``retry_delay`` seconds later, so later
      records of the same key can overtake it; or
    - ``mode="blocking"``: waits ``retry_delay`` seconds and retries in place, so the partition
      (every key on it) waits, and order is kept.

    Afterwards :attr:`processed` lists ``(time, key, value)`` in processing order.
    """

    MODES = ("retry_topic", "blocking")

    def __init__(
        self,
        sim: Simulation,
        records: list[tuple[str, str]],
        *,
        fails_once: tuple[int, ...] = (),
        mode: str = "retry_topic",
        retry_delay: float = 5.0,
        processing_time: float = 1.0,
    ) -> None:
        check.simulation("sim", sim)
        if not isinstance(records, list) or not all(
            isinstance(r, tuple) and len(r) == 2 for r in records
        ):
            raise TypeError("records must be a list of (key, value) pairs")
        self.sim = sim
        self.records = records
        check.collection("fails_once", fails_once)
        for offset in fails_once:
            check.integer("fails_once", offset, minimum=0, maximum=len(records) - 1)
        self.fails_once = set(fails_once)
        self.mode = check.choice("mode", mode, self.MODES)
        self.retry_delay = check.positive("retry_delay", retry_delay)
        self.processing_time = check.positive("processing_time", processing_time)
        self.processed: list[tuple[float, str, str]] = []
        self.retried: list[int] = []
        sim.process(self.run())

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Read the partition in offset order."""
        for offset, (key, value) in enumerate(self.records):
            yield self.sim.timeout(self.processing_time)
            if offset not in self.fails_once:
                self._done(key, value, offset)
                continue
            self.retried.append(offset)
            self.sim.record("attempt_failed", offset=offset, key=key, value=value)
            if self.mode == "blocking":
                yield self.sim.timeout(self.retry_delay)  # the whole partition waits
                yield self.sim.timeout(self.processing_time)
                self._done(key, value, offset)
            else:
                self.sim.record("to_retry_topic", offset=offset, key=key, value=value)
                self.sim.process(self._retry_topic(key, value, offset))

    def _retry_topic(self, key: str, value: str, offset: int) -> Generator[simpy.Event, Any, None]:
        yield self.sim.timeout(self.retry_delay + self.processing_time)
        self._done(key, value, offset)

    def _done(self, key: str, value: str, offset: int) -> None:
        self.processed.append((self.sim.now, key, value))
        self.sim.record("processed", offset=offset, key=key, value=value)
