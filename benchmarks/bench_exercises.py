"""Exercise checker benchmarks: how long ``mqlib.exercises.check`` takes.

Run from the repository root::

    .venv/bin/python benchmarks/bench_exercises.py            # 200 and 1000 schedules, 3 runs each
    .venv/bin/python benchmarks/bench_exercises.py --runs 1   # one run each
    .venv/bin/python benchmarks/bench_exercises.py --only ch07   # the exercises whose id has it

For every exercise it times, on wall-clock:

1. the reference solution under 200 and under 1000 schedules (all pass, so every schedule runs:
   the worst case for a correct solution); the issue's budget is 2 s for 200 on two cores;
2. the starter, which fails: the time to find the first failing schedule and shrink it.

Each figure is the median of ``--runs`` runs. Nothing is asserted: timings depend on the machine,
and the tests never check them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

from mqlib import exercises  # noqa: E402


def timed(name: str, solution, schedules: int, runs: int) -> float:
    """The median wall-clock seconds of ``runs`` checks."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        exercises.check(name, solution, schedules=schedules)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--only", default="", help="time only exercises whose id contains this")
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPU(s); median of {args.runs} run(s)"
    )
    print(f"{'exercise':<28} {'ref 200':>9} {'ref 1000':>9} {'starter':>9}  starter fails on")
    worst = 0.0
    for name in (n for n in exercises.names() if args.only in n):
        reference, starter = exercises.reference(name), exercises.starter(name)
        t200 = timed(name, reference, 200, args.runs)
        t1000 = timed(name, reference, 1000, args.runs)
        tstart = timed(name, starter, 200, args.runs)
        result = exercises.check(name, starter, schedules=200)
        worst = max(worst, t200)
        print(
            f"{name:<28} {t200:>8.3f}s {t1000:>8.3f}s {tstart:>8.3f}s  "
            f"schedule {result.schedules_run}: {result.counterexample.invariant}"
        )
    print(f"slowest check of 200 schedules: {worst:.3f} s (budget 2 s)")


if __name__ == "__main__":
    main()
