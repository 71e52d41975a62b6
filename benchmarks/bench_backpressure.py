"""Chapter 5's scenarios at scale (issue 13): wall-clock time and memory, printed, not asserted.

    .venv/bin/python benchmarks/bench_backpressure.py          # about a minute on 2 idle cores
    .venv/bin/python benchmarks/bench_backpressure.py --quick  # shorter per-message runs

What it measures, with the machine's load average printed beside every figure (the timings on a
shared machine are inflated by whatever else runs):

1. ``BackpressureRun`` at the widget's maximum settings (producer 30 msg/s, 26 consumers at
   10 msg/s on 8 partitions, capacity 100) in every mode: one simulated hour in one call, then
   the memory three more hours add (resident set size after the first hour, so only growth
   counts; tracemalloc would slow the run several times over).
   Also the per-message model's worst backlog case: unbounded, 30 msg/s into one consumer at
   0.5 msg/s - there the waiting messages themselves are the live state that grows.
2. ``LargeScaleRun`` for a simulated year at the lesson's numbers in every mode, and the number
   of single steps the closed forms left to do.
3. ``BackpressureRun(rate=1000, mode="reject").advance(10)`` (issue 13's example, at the new
   top rate) and the refusals ``BackpressureRun(rate=1e5)`` and ``LargeScaleRun().advance(1e12)``.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqlib.scenarios.backpressure import BackpressureRun, LargeScaleRun  # noqa: E402

WIDGET_MAX = {
    "rate": 30.0,
    "consumer_rate": 10.0,
    "consumers": 26,
    "partitions": 8,
    "capacity": 100,
    "lag_threshold": 100,
    "shed_threshold": 100,
}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def rss_mib() -> float:
    """This process's resident memory now (Linux), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def per_message(label: str, hours: int, **settings) -> None:
    gc.collect()
    run = BackpressureRun(**settings)
    started, cpu = time.perf_counter(), time.process_time()
    run.advance(3600)
    first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.collect()
    base = rss_mib()
    started = time.perf_counter()
    for _ in range(hours):
        run.advance(3600)
    more = time.perf_counter() - started
    gc.collect()
    grown = rss_mib() - base
    print(
        f"  {label:<34} 1st hour {first:6.2f} s ({first_cpu:.2f} s CPU); "
        f"{hours} more h {more:6.2f} s, "
        f"RSS +{grown:5.1f} MiB (depth {run.broker.depth:,}, series {len(run.series['time'])}, "
        f"trace {len(run.sim.trace):,})  [{load()}]"
    )


def main() -> None:
    quick = "--quick" in sys.argv
    hours = 1 if quick else 3
    print(f"BackpressureRun, widget maximum settings, one simulated hour per call  [{load()}]")
    for mode in ("unbounded", "block", "reject", "rate_limit", "shed"):
        per_message(mode, hours, mode=mode, **WIDGET_MAX)
    per_message(
        "unbounded, 30/s into one at 0.5/s", hours, mode="unbounded", rate=30.0,
        consumer_rate=0.5, consumers=1,
    )  # fmt: skip

    print(f"LargeScaleRun, one simulated year at 10,000 in / 1,000 out  [{load()}]")
    for mode in ("unbounded", "block", "reject", "rate_limit", "shed"):
        run = LargeScaleRun(mode=mode)
        started = time.perf_counter()
        run.advance(365 * 86_400)
        took = time.perf_counter() - started
        print(
            f"  {mode:<10} {took * 1000:8.1f} ms, {run._work} single steps, "
            f"{len(run.series['time'])} series points: {run.summary()}  [{load()}]"
        )

    print(f"Bounds  [{load()}]")
    run = BackpressureRun(rate=1000, mode="reject")
    started = time.perf_counter()
    run.advance(10)
    print(f"  rate=1000 reject advance(10): {time.perf_counter() - started:.2f} s  [{load()}]")
    for label, call in (
        ("BackpressureRun(rate=1e5, mode='reject')", lambda: BackpressureRun(rate=1e5)),
        ("LargeScaleRun().advance(10**12)", lambda: LargeScaleRun().advance(10**12)),
        (
            "LargeScaleRun(rate=1/3, consumer_rate=0.5).advance(1 year)",
            lambda: LargeScaleRun(rate=1 / 3, consumer_rate=0.5).advance(365 * 86_400),
        ),
    ):
        started = time.perf_counter()
        try:
            call()
            outcome = "ran"
        except ValueError as error:
            outcome = f"ValueError: {str(error)[:90]}"
        print(f"  {label}: {time.perf_counter() - started:.2f} s, {outcome}  [{load()}]")


if __name__ == "__main__":
    main()
