"""Chapter 3's dual-write scenario: an order service, an inventory service and the crashes
between their writes.

* :func:`compare_strategies` runs the two dual writes and the outbox (with and without the
  consumer's inbox) over one crash schedule and returns one table row each.
* :func:`crash_sweep` runs them over many seeded crash schedules and adds up the damage: lost
  events, phantom events, doubled effects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _validate as check
from ..models.outbox import STRATEGIES, Crash, OutboxResult, random_crashes, run_orders

DEFAULT_CRASHES: tuple[Crash, ...] = (
    Crash("service_between_writes", order=3),
    Crash("relay_after_publish", order=5),
    Crash("consumer_after_commit", order=6),
    Crash("consumer_before_commit", order=8),
)
"""The chapter's schedule for ten orders: the order service dies between its writes on ``o3``,
the relay dies after publishing ``o5``, the inventory service dies after committing ``o6`` and
inside its transaction for ``o8``."""

SETUPS: tuple[tuple[str, bool], ...] = (
    ("commit_then_publish", True),
    ("publish_then_commit", True),
    ("outbox", False),
    ("outbox", True),
)
"""The rows of the comparison: ``(strategy, inbox)``. The dual writes keep the inbox, so what
goes wrong there is the producer's doing."""


def _label(strategy: str, inbox: bool) -> str:
    if strategy == "outbox":
        return "outbox + inbox" if inbox else "outbox, no inbox"
    return strategy.replace("_", " ")


def compare_results(
    orders: int = 10, crashes: Iterable[Crash] = DEFAULT_CRASHES
) -> dict[str, OutboxResult]:
    """Each setup of :data:`SETUPS` over the same ``crashes``, keyed by its label."""
    crashes = list(check.collection("crashes", crashes))
    return {
        _label(strategy, inbox): run_orders(strategy, orders, crashes, inbox=inbox)
        for strategy, inbox in SETUPS
    }


def compare_strategies(
    orders: int = 10, crashes: Iterable[Crash] = DEFAULT_CRASHES
) -> list[dict[str, Any]]:
    """One row per setup: ``setup, orders, published, delivered, applied, lost, phantom,
    doubled, reserved, expected_reserved``."""
    rows = []
    for label, result in compare_results(orders, crashes).items():
        row = result.as_row()
        del row["strategy"]
        rows.append({"setup": label, **row})
    return rows


#: The most orders one :func:`crash_sweep` may run in all (``schedules`` x ``orders``, each run
#: through every setup with real SQL): the chapter's 200 x 10 takes about 1.5 s.
MAX_SWEEP_ORDERS = 2_000


def crash_sweep(
    schedules: int = 100, orders: int = 10, *, rate: float = 0.2, first_seed: int = 0
) -> list[dict[str, Any]]:
    """Run every setup over ``schedules`` crash schedules (seeds ``first_seed``, ``first_seed +
    1``, ...; each from :func:`~mqlib.models.outbox.random_crashes` with ``rate``) and add up
    the damage.

    One row per setup: ``setup, schedules, crashes`` (crashes in all the schedules together),
    ``lost, phantom, doubled`` (orders, summed over the schedules) and ``clean`` (schedules that
    ended with every committed order applied exactly once and nothing else).

    ``schedules x orders`` may be at most :data:`MAX_SWEEP_ORDERS` (the default 100 x 10 takes
    under a second).
    """
    check.integer("schedules", schedules, minimum=1, maximum=MAX_SWEEP_ORDERS)
    check.integer("orders", orders, minimum=1, maximum=MAX_SWEEP_ORDERS)
    if schedules * orders > MAX_SWEEP_ORDERS:
        raise ValueError(
            f"schedules x orders must be at most {MAX_SWEEP_ORDERS} (about 1.5 s of work), got "
            f"schedules={schedules} x orders={orders} = {schedules * orders}"
        )
    check.integer("first_seed", first_seed)
    totals = {
        _label(s, i): {
            "setup": _label(s, i),
            "schedules": schedules,
            "crashes": 0,
            "lost": 0,
            "phantom": 0,
            "doubled": 0,
            "clean": 0,
        }
        for s, i in SETUPS
    }
    for seed in range(first_seed, first_seed + schedules):
        crashes = random_crashes(seed, orders, rate=rate)
        for strategy, inbox in SETUPS:
            result = run_orders(strategy, orders, crashes, inbox=inbox)
            row = totals[_label(strategy, inbox)]
            row["crashes"] += len(crashes)
            row["lost"] += len(result.lost_events)
            row["phantom"] += len(result.phantom_events)
            row["doubled"] += len(result.double_effects)
            row["clean"] += result.consistent
    return list(totals.values())


__all__ = [
    "DEFAULT_CRASHES",
    "MAX_SWEEP_ORDERS",
    "SETUPS",
    "STRATEGIES",
    "compare_results",
    "compare_strategies",
    "crash_sweep",
]
