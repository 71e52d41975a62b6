"""Chapter 6 exercise: a retry policy with backoff and a dead letter queue.

The world is a queue worked by two workers. Each message's processing calls a downstream
service. A call can fail with a *transient* error (:class:`DownstreamUnavailable`, a
``ConnectionError``; or a ``TimeoutError``), which a later try may not hit, or with a *permanent*
one (:class:`InvalidMessage`, a ``ValueError``: the message itself is bad, a poison pill), which
every try hits. The downstream also has outages, up to :data:`LONGEST_OUTAGE` seconds long, in
which every call fails transiently.

The learner writes the policy the worker consults after each failure: retry after some delay
(the message waits aside, as on a retry topic or with SQS's per-message delay, and the workers go
on with other messages) or dead-letter it now.
"""

from __future__ import annotations

import heapq
from typing import Any

from .. import _validate as check
from ._checker import Budget, Exercise, Fault, SolutionError, call, callable_with, wrong_type

ATTEMPT = 0.5
"""Seconds one try takes."""
LONGEST_OUTAGE = 30.0
"""The downstream's outages last at most this long: a message that only ever failed
transiently must be retried for at least this long before it is dead-lettered."""
MAX_ATTEMPTS = 10
"""The retry budget: no message may be tried more often (more would be a retry storm)."""
HORIZON = 300.0
"""Every message that can succeed must have succeeded by this time."""
WORKERS = 2


class DownstreamUnavailable(ConnectionError):
    """The downstream service did not answer (HTTP 503): a transient error."""


class InvalidMessage(ValueError):
    """The message cannot be processed, ever (a field fails validation): a permanent error."""


class RetryPolicy(Exercise):
    name = "ch06-retry-policy"
    chapter = 6
    title = "Retry what can succeed, dead-letter what cannot"
    signature = "retry_delay(error, attempt) -> float | None"
    task = (
        "Write the policy a worker consults after a message fails: error is the exception "
        "(a ConnectionError or TimeoutError is transient; a ValueError is permanent: the "
        "message is bad), attempt is the number of the try that just failed (1 for the first). "
        "Return the seconds to wait before the next try, or None to dead-letter the message "
        f"now. The downstream's outages last up to {LONGEST_OUTAGE:g} s."
    )
    checks = (
        "Up to 8 messages, two workers, poison messages, flaky messages that fail transiently "
        f"1 to 3 times, and outages of 5 to {LONGEST_OUTAGE:g} s. Checked: a permanent error is "
        "dead-lettered at once, never retried; a message that failed only transiently is "
        f"retried for at least {LONGEST_OUTAGE:g} s before it is dead-lettered; no message is "
        f"tried more than {MAX_ATTEMPTS} times; every message that can succeed does, by "
        f"t={HORIZON:g} s."
    )
    min_size = 2
    max_size = 8
    renumber = True

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "retry_delay", 2, "retry_delay(error, attempt)")

    def draw(self, rng, size):
        faults = []
        for n in range(1, size + 1):
            r = rng.random()
            if r < 0.15:
                faults.append(Fault("poison", n, 0, 0, "m{target} is a poison message"))
            elif r < 0.5:
                k = rng.randint(1, 3)
                faults.append(Fault("flaky", n, 0, k, "m{target} fails transiently {at} time(s)"))
        for _ in range(rng.randint(0, 2)):
            start = rng.randint(0, 20)
            length = rng.choice((5, 10, 20, 30))
            faults.append(
                Fault(
                    "outage",
                    0,
                    start,
                    length,
                    f"the downstream is down from t={start} s for {length} s",
                )
            )
        return faults

    def run(self, solution, schedule, out):
        budget = Budget()
        poison, flaky, outages = set(), {}, []
        for f in schedule.faults:
            if f.kind == "poison":
                poison.add(f.target)
            elif f.kind == "flaky":
                flaky[f.target] = f.at
            else:
                outages.append((float(f.attempt), float(f.attempt + f.at)))
        ready = [(0.0, n) for n in range(1, schedule.size + 1)]
        heapq.heapify(ready)
        attempts = dict.fromkeys(range(1, schedule.size + 1), 0)
        transient_fails = dict.fromkeys(attempts, 0)
        first_failure: dict[int, float] = {}
        done: dict[int, float] = {}
        dead: dict[int, float] = {}
        free = [0.0] * WORKERS
        for n in attempts:
            out.step(0, f"m{n}", "sent")
        while ready:
            due, n = heapq.heappop(ready)
            w = min(range(WORKERS), key=lambda i: (free[i], i))
            start = max(due, free[w])
            finish = start + ATTEMPT
            free[w] = finish
            if start > HORIZON:
                break
            attempts[n] += 1
            mid = f"m{n}"
            if attempts[n] > MAX_ATTEMPTS:
                out.broke(
                    f"no message is tried more than {MAX_ATTEMPTS} times",
                    f"{mid} was about to be tried for the {attempts[n]}th time: retries "
                    "without enough backoff hammer a downstream that is already struggling "
                    "(a retry storm). Back off, and dead-letter after a bounded number of tries",
                    time=start,
                    subject=mid,
                )
                return
            if n in poison:
                error: Exception = InvalidMessage(f"{mid}: amount is not a number")
            elif any(a <= start < b for a, b in outages):
                error = DownstreamUnavailable("payment service unavailable (503)")
            elif transient_fails[n] < flaky.get(n, 0):
                error = TimeoutError("payment service timed out")
            else:
                done[n] = finish
                out.step(finish, mid, "effect applied", f"try {attempts[n]} succeeded")
                continue
            permanent = isinstance(error, ValueError)
            if not permanent:
                transient_fails[n] += 1
            first_failure.setdefault(n, finish)
            out.step(finish, mid, "failed", f"try {attempts[n]}: {type(error).__name__}: {error}")
            delay = call(
                solution, error, attempts[n], what="retry_delay(error, attempt)", budget=budget
            )
            if delay is not None:
                if isinstance(delay, bool) or not isinstance(delay, int | float):
                    raise wrong_type(
                        "retry_delay(error, attempt)",
                        delay,
                        "a number of seconds, or None to dead-letter",
                    )
                try:
                    check.number("retry delay", delay, minimum=0)
                except ValueError as problem:
                    raise SolutionError(f"retry_delay(error, attempt) returned {problem}") from None
            if permanent and delay is not None:
                out.step(finish, mid, "retried", f"in {delay:g} s")
                out.broke(
                    "a permanent error is dead-lettered at once",
                    f"{mid} failed with a permanent error ({type(error).__name__}) and was "
                    "retried: it will fail every time, taking a worker away from the other "
                    "messages on each try. Dead-letter it at the first permanent error",
                )
                return
            if delay is None:
                dead[n] = finish
                out.step(finish, mid, "dead-lettered", f"after {attempts[n]} try(s)")
                waited = finish - first_failure[n]
                if not permanent and waited < LONGEST_OUTAGE:
                    out.broke(
                        "a message that would have succeeded is not dead-lettered",
                        f"{mid} had failed only with transient errors and was dead-lettered "
                        f"{waited:g} s after its first failure; outages last up to "
                        f"{LONGEST_OUTAGE:g} s, so a later try would have succeeded. Retry "
                        f"with backoff for at least {LONGEST_OUTAGE:g} s",
                    )
                    return
                continue
            out.step(finish, mid, "retry scheduled", f"in {delay:g} s")
            heapq.heappush(ready, (finish + float(delay), n))
        for n in attempts:
            if n not in poison and n not in done and n not in dead:
                out.broke(
                    "every message that can succeed does",
                    f"m{n} had not succeeded by t={HORIZON:g} s: its retries wait too long",
                    time=HORIZON,
                    subject=f"m{n}",
                )
                return
            if n in poison and n not in dead:
                out.broke(
                    "a poison message ends in the dead letter queue",
                    f"m{n} is poison but was never dead-lettered",
                    time=HORIZON,
                    subject=f"m{n}",
                )
                return

    def starter(self):
        return starter

    def reference(self):
        return reference


def starter(error, attempt):
    """Retry everything at once, up to five tries."""
    if attempt < 5:
        return 0
    return None


def reference(error, attempt):
    """Permanent errors go to the DLQ at once. Transient ones are retried with exponential
    backoff, 1, 2, 4, 8, 16, 16 s (47 s in all, longer than any outage), then dead-lettered
    after the seventh try. (In production, add random jitter to each delay so that messages
    failed by the same outage do not all retry in the same second.)"""
    if isinstance(error, ValueError):
        return None
    if attempt >= 7:
        return None
    return min(2 ** (attempt - 1), 16)


__all__ = ["DownstreamUnavailable", "InvalidMessage", "RetryPolicy", "SolutionError"]
