"""Chapter 8's playground at its controls' maximum settings: time and memory of simulated hours.

A plain script (it asserts nothing; timings depend on the machine). For each case it builds a
:class:`~mqlib.scenarios.playground.Playground` with every slider of the widget at its right end
(rate 20 msg/s, max receives 10, capacity 100), all three consumers alive and a poison pill in the
queue, and then

1. runs one simulated hour in 60-second steps (what pressing "Advance 30 s" a hundred and twenty
   times does), printing the wall-clock and CPU time (CPU time is less inflated by other load);
2. runs three simulated hours more, printing the growth of the process's resident memory (read
   from ``/proc/self/statm`` after a ``gc.collect()``; ``tracemalloc`` would slow the run
   tenfold) and the sizes of what could grow: the chart series, the trace and the queue's
   message table;
3. times one widget redraw (``MessageQueueSimulator.refresh``) after the four hours.

Cases: backpressure on (the bound holds the backlog at 100), and backpressure off, where 20 msg/s
into 6 msg/s of consumers grows the queue by 14 messages a second: live state the run must keep,
printed per waiting message.

Run from the repository root::

    .venv/bin/python benchmarks/bench_playground.py
    .venv/bin/python benchmarks/bench_playground.py --quick   # 10 simulated minutes + 30 more
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from mqlib.scenarios.playground import MAX_POINTS, Playground


def build(backpressure: bool) -> Playground:
    run = Playground(rate=20.0, max_receives=10, backpressure=backpressure, capacity=100)
    run.set_dlq(False)  # the worst case for retries: a pill that never leaves
    run.inject_poison()
    return run


def advance(run: Playground, seconds: float, step: float = 60.0) -> None:
    end = run.now + seconds
    while run.now < end:
        run.advance(min(step, end - run.now))


def resident() -> int:
    """Resident memory of this process in bytes, after a garbage collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(action) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``action()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def case(backpressure: bool, first: float, more: float) -> None:
    from mqlib.widgets import MessageQueueSimulator

    run = build(backpressure)
    first_wall, first_cpu = timed(lambda: advance(run, first))
    before = resident()
    depth_before = run.queue.depth
    more_wall, more_cpu = timed(lambda: advance(run, more))
    grown = resident() - before
    depth_grown = run.queue.depth - depth_before

    view = MessageQueueSimulator(run)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        view.refresh()
        times.append(time.perf_counter() - t0)
    times.sort()

    label = "backpressure on (cap 100)" if backpressure else "backpressure off"
    print(f"\n{label}: rate 20 msg/s, 3 consumers (6 msg/s), max receives 10, a stuck pill")
    print(f"  first {first / 3600:g} h: {first_wall:.2f} s wall clock, {first_cpu:.2f} s CPU")
    print(
        f"  {more / 3600:g} h more: {more_wall:.2f} s wall, {more_cpu:.2f} s CPU, resident "
        f"memory {grown / 2**20:+.1f} MiB "
        f"(queue depth {depth_before} -> {run.queue.depth})"
    )
    if depth_grown > 0:
        print(
            f"  of which the growing backlog: {grown / depth_grown:.0f} bytes per waiting message"
        )
    print(
        f"  sizes: series {len(run.series['time'])} points (max {MAX_POINTS}, one per "
        f"{run.resolution:g} s), trace {len(run.sim.trace)} events, queue table "
        f"{len(run.queue.messages)} messages"
    )
    print(
        f"  widget refresh after {run.now / 3600:g} h: median {times[len(times) // 2] * 1e3:.1f} "
        f"ms, worst {times[-1] * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 minutes, then 30 more")
    args = parser.parse_args()
    first, more = (600.0, 1800.0) if args.quick else (3600.0, 3 * 3600.0)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} on {os.cpu_count()} cores")
    for backpressure in (True, False):
        case(backpressure, first, more)
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")


if __name__ == "__main__":
    main()
