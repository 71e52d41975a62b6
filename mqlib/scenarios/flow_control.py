"""Chapter 5's flow-control scenario: a prefetch window on a push queue, and lag alerts.

* :func:`compare_prefetch`: 300 messages, two fast consumers (0.1 s each) and a slow one
  (1.0 s), under several prefetch windows: who processes what, and how long the queue takes.
* :func:`crash_requeue`: the slow consumer dies 5 s in; how many messages its window sends back.
* :func:`compare_alerts`: a harmless burst and a slow leak, watched by a fixed-count lag alert
  and by a trend alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _validate as check
from ..models.flow_control import (
    first_fixed_alert,
    first_trend_alert,
    lag_timeline,
    run_prefetch,
)

CONSUMERS = {"A": 0.1, "B": 0.1, "C": 1.0}
"""Seconds per message: A and B are fast, C is ten times slower."""

PREFETCHES = (1, 2, 10, 100)
"""The prefetch windows the chapter compares (RabbitMQ's prefetch count per consumer)."""

BURST = ((600, 800), (60, 3000), (2340, 800))
"""Normal traffic of 800/s, one minute at 3,000/s, then normal again (``(seconds, rate)``)."""

LEAK = ((7200, 1020),)
"""Two hours at 1,020/s: two per cent more than the consumers' 1,000/s."""


def compare_prefetch(prefetches: Iterable[int] = PREFETCHES, messages: int = 300) -> list[dict]:
    """One row per prefetch window: ``prefetch``, messages processed by ``A``, ``B``, ``C``,
    ``slow_share`` (C's fraction), ``finished_at`` (seconds until the queue is done) and
    ``fast_busy`` (the fraction of that time A was busy)."""
    _check_prefetches(prefetches)
    if not prefetches:
        raise ValueError("prefetches must name at least one prefetch window, got none")
    rows = []
    for prefetch in prefetches:
        r = run_prefetch(CONSUMERS, messages, prefetch=prefetch)
        rows.append(
            {
                "prefetch": prefetch,
                **r.processed,
                "slow_share": r.shares()["C"],
                "finished_at": r.finished_at,
                "fast_busy": r.busy_share["A"],
            }
        )
    return rows


#: The largest prefetch window a row may use (the limit of ``PrefetchConsumer``).
MAX_PREFETCH = 1_000_000


def _check_prefetches(prefetches: Any) -> None:
    """A list of prefetch windows, each an int in ``[0, MAX_PREFETCH]``."""
    check.collection("prefetches", prefetches)
    for prefetch in prefetches:
        check.integer("prefetches", prefetch, minimum=0, maximum=MAX_PREFETCH)


def crash_requeue(
    prefetches: Iterable[int] = PREFETCHES, *, at: float = 5.0, messages: int = 300
) -> list[dict[str, Any]]:
    """One row per prefetch window: the slow consumer C crashes ``at`` seconds in.

    ``requeued``: messages in its window that went back to the queue; ``processed_twice``:
    messages it had processed whose ack had not arrived, so they were processed again."""
    check.positive("at", at)
    _check_prefetches(prefetches)
    rows = []
    for prefetch in prefetches:
        r = run_prefetch(CONSUMERS, messages, prefetch=prefetch, crash=("C", at))
        rows.append(
            {
                "prefetch": prefetch,
                "requeued": r.requeued,
                "processed_twice": r.processed_twice,
                "finished_at": r.finished_at,
            }
        )
    return rows


def compare_alerts(
    *, threshold: int = 100_000, samples: int = 10, consumer_rate: float = 1_000
) -> list[dict[str, Any]]:
    """The burst (:data:`BURST`) and the slow leak (:data:`LEAK`), sampled every minute.

    One row each: ``case``, ``peak_lag`` (messages), ``peak_lag_seconds``, ``end_lag``,
    ``fixed_alert_at`` (first minute with lag above ``threshold``; ``None`` if never) and
    ``trend_alert_at`` (first minute at which the lag has risen at each of the last
    ``samples`` one-minute samples)."""
    check.integer("threshold", threshold, minimum=0)
    rows = []
    for case, phases in (("burst", BURST), ("slow leak", LEAK)):
        timeline = lag_timeline(phases, consumer_rate=consumer_rate, sample_every=60)
        rows.append(
            {
                "case": case,
                "peak_lag": int(max(timeline["lag"])),
                "peak_lag_seconds": max(timeline["lag_seconds"]),
                "end_lag": int(timeline["lag"][-1]),
                "fixed_alert_at": first_fixed_alert(timeline, threshold),
                "trend_alert_at": first_trend_alert(timeline, samples),
                "timeline": timeline,
            }
        )
    return rows
