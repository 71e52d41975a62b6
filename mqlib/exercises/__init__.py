"""Graded exercises: the learner writes the code, the engine runs it under seeded faults.

Each exercise is a small world built on the course's models in which the learner's code plays one
part (a handler, a producer loop, a retry policy, a key choice, a configuration). :func:`check`
runs it under many *fault schedules*, each drawn from a seed: crashes before and after the effect,
slow steps, lost acks, rebalances, bursts, whatever the chapter's guarantee must survive. The
first schedule that breaks an invariant is shrunk to the smallest one that still fails, and the
result says in words what broke, when, and how to replay it.

>>> from mqlib import exercises
>>> "ch03-idempotent-charge" in exercises.names()
True
>>> exercises.check("ch03-idempotent-charge", exercises.reference("ch03-idempotent-charge")).passed
True
"""

from __future__ import annotations

from typing import Any

from .. import _validate as check_arg
from ._checker import CheckResult, Counterexample, Exercise, Fault, Step, run_check
from .ch01 import HeartbeatWorker
from .ch02 import RouteEvents
from .ch03 import IdempotentCharge, OutboxRelay
from .ch04 import KeyAndPartitions
from .ch05 import BackpressureProducer
from .ch06 import RetryPolicy
from .ch07 import CommitOffsets, IdempotentConsumer, RetriableCommitFailedError
from .ch08 import ConfigureSystem

_EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in (
        HeartbeatWorker(),
        RouteEvents(),
        IdempotentCharge(),
        OutboxRelay(),
        KeyAndPartitions(),
        BackpressureProducer(),
        RetryPolicy(),
        CommitOffsets(),
        IdempotentConsumer(),
        ConfigureSystem(),
    )
}

__all__ = [
    "CheckResult",
    "Counterexample",
    "Fault",
    "RetriableCommitFailedError",
    "Step",
    "check",
    "describe",
    "names",
    "reference",
    "starter",
]


def names() -> list[str]:
    """Every exercise id, in chapter order (``"ch01-heartbeat-worker"``, ...)."""
    return list(_EXERCISES)


def _get(name: Any) -> Exercise:
    check_arg.text("name", name)
    check_arg.choice("name", name, _EXERCISES)
    return _EXERCISES[name]


def describe(name: str) -> str:
    """The task, the signature the learner writes, and what the checker checks."""
    exercise = _get(name)
    return (
        f"{exercise.name} (chapter {exercise.chapter}): {exercise.title}\n\n"
        f"Write: {exercise.signature}\n\n{exercise.task}\n\nThe checker: {exercise.checks}"
    )


def reference(name: str) -> Any:
    """The reference solution of exercise ``name`` (of the same kind the learner writes)."""
    return _get(name).reference()


def starter(name: str) -> Any:
    """The starter the notebook shows: of the right shape, and wrong."""
    return _get(name).starter()


def check(name: str, solution: Any, *, schedules: int = 200, seed: int = 0) -> CheckResult:
    """Run ``solution`` under ``schedules`` seeded fault schedules and report what broke.

    Schedule ``i`` is drawn from seed ``seed + i``, so ``check(name, solution, schedules=1,
    seed=result.counterexample.seed)`` replays a failure. The same solution and seed always give
    the same result.
    """
    exercise = _get(name)
    return run_check(exercise, solution, schedules=schedules, seed=seed)
