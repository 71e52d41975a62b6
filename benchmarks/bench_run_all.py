"""How long "Run All" takes for each chapter notebook, cell by cell, brokers included.

Run from the repository root::

    .venv/bin/python benchmarks/bench_run_all.py                       # every chapter
    .venv/bin/python benchmarks/bench_run_all.py chapters/07-*.ipynb   # some chapters
    .venv/bin/python benchmarks/bench_run_all.py --top 5 --repeat 3 chapters/01-*.ipynb

Each notebook runs from a fresh kernel with nbclient, exactly as ``tools/execute_notebooks.py``
runs it (same options, the notebook's folder as the working directory), but nothing is saved.
For each chapter it prints:

* the Run All time, from starting the kernel to the last cell's reply (what a learner waits
  for), the same with the kernel's shutdown (nbclient's whole run, which also stops the brokers
  still running), and the sum of the cells' own times;
* the slowest cells (``--top``), each with its index, cell id and first line, lab cells
  (those that talk to a real broker, :data:`_LAB_WORDS`) marked ``lab``;
* every broker start-up the kernel saw, from launching the process to the first successful
  readiness check (:func:`mqlib.real._process.startup_records`); ``<=`` marks a server that was
  started without waiting and was already up when first needed (it was ready by then);
* the ch07 failover time and R1 recovery time when the notebook defines them (``r3_failover``,
  ``r1_back``), and the CPU seconds the kernel and its broker processes used;
* the 1-minute load average before and after, because figures on a busy machine are inflated.

Nothing is asserted: timings depend on the machine. The budget the course sets is 10 s per
chapter on a quiet machine (issue 10).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 10.0

# Run at the end of the notebook, in its kernel: what the kernel knows about brokers and CPU.
_PROBE = """
import json as _j, os as _o
try:
    from mqlib.real._process import startup_records as _sr
    _starts = _sr()
except ImportError:
    _starts = []
try:
    import psutil as _ps
    _kids = [p for p in _ps.Process().children(recursive=True)]
    _kid_cpu = sum(sum(p.cpu_times()[:2]) for p in _kids if p.is_running())
except Exception:
    _kid_cpu = 0.0
_t = _o.times()
print("BENCH-PROBE " + _j.dumps({
    "startups": _starts,
    "r3_failover": globals().get("r3_failover"),
    "r1_back": globals().get("r1_back"),
    "cpu_kernel": _t.user + _t.system,
    "cpu_children": _t.children_user + _t.children_system + _kid_cpu,
}))
"""


#: A cell that contains one of these talks to a real broker (a lab cell).
_LAB_WORDS = ("mqlib.real", "await js", "nats.connect", "rabbit", "sqs", "valkey", "kafka.",
              "crash.result", "compare_brokers")  # fmt: skip


def _seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_notebook(path: Path, cwd: Path | None = None) -> dict:
    """Execute ``path`` in a fresh kernel without saving; return the timings.

    The kernel runs in ``cwd`` (default: the notebook's folder, as when it is saved)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    load_before = os.getloadavg()[0]
    started_wall = time.time()
    started = time.perf_counter()
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        record_timing=True,
        resources={"metadata": {"path": str(cwd or path.parent)}},
    ).execute()
    total = time.perf_counter() - started
    probe_cell = nb.cells.pop()
    probe: dict = {}
    for output in probe_cell.get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith("BENCH-PROBE "):
                probe = json.loads(line[len("BENCH-PROBE ") :])
    cells = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in timing:
            continue
        begin = timing.get("iopub.execute_input") or timing.get("shell.execute_request")
        seconds = _seconds(timing["shell.execute_reply"]) - _seconds(begin)
        first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
        cells.append(
            {
                "index": index,
                "id": cell.get("id", ""),
                "seconds": seconds,
                "lab": any(word in cell.source for word in _LAB_WORDS),
                "first_line": first[:70],
            }
        )
    # What a learner waits for: from starting the kernel to the reply of the last cell. (The probe
    # cell itself is not part of the notebook.) The rest of nbclient's time is the kernel's
    # shutdown, which stops the brokers still running (RabbitMQ takes a few seconds).
    replies = [
        _seconds(c["metadata"]["execution"]["shell.execute_reply"])
        for c in nb.cells
        if "shell.execute_reply" in c.get("metadata", {}).get("execution", {})
    ]
    run_all = (max(replies) - started_wall) if replies else total
    return {
        "total": run_all,
        "with_shutdown": total,
        "cells": cells,
        "probe": probe,
        "load": (load_before, os.getloadavg()[0]),
    }


def report(path: Path, runs: list[dict], top: int) -> None:
    totals = [r["total"] for r in runs]
    last = runs[-1]
    cell_sum = sum(c["seconds"] for c in last["cells"])
    lab_sum = sum(c["seconds"] for c in last["cells"] if c["lab"])
    verdict = "under" if max(totals) < BUDGET_SECONDS else "OVER"
    print(
        f"\n== {path.name}: Run All {', '.join(f'{t:.1f}' for t in totals)} s "
        f"({verdict} the {BUDGET_SECONDS:g} s budget); load {last['load'][0]:.2f} -> "
        f"{last['load'][1]:.2f}"
    )
    print(
        f"   kernel start to last cell {last['total']:.1f} s; with the kernel's shutdown (which"
        f" stops the brokers left running) {last['with_shutdown']:.1f} s"
    )
    print(
        f"   cells {cell_sum:.1f} s (lab cells {lab_sum:.1f} s), kernel start and overhead "
        f"{last['total'] - cell_sum:.1f} s; CPU: kernel {last['probe'].get('cpu_kernel', 0):.1f} s,"
        f" brokers and other children {last['probe'].get('cpu_children', 0):.1f} s"
    )
    for cell in sorted(last["cells"], key=lambda c: -c["seconds"])[:top]:
        mark = "lab" if cell["lab"] else "   "
        print(
            f"   {cell['seconds']:6.2f} s  {mark} [{cell['index']:3}] {cell['id']:10} "
            f"{cell['first_line']}"
        )
    for run_number, run in enumerate(runs, 1):
        probe = run["probe"]
        starts = ", ".join(
            f"{name} {'<= ' if upper else ''}{sec:.2f} s"
            for name, sec, *rest in probe.get("startups", [])
            for upper in [bool(rest and rest[0])]
        )
        extra = ""
        if probe.get("r3_failover") is not None:
            extra = f"; R3 failover {probe['r3_failover']:.1f} s"
        if probe.get("r1_back") is not None:
            extra += f", R1 writable {probe['r1_back']:.1f} s after restart"
        if starts or extra:
            print(f"   run {run_number}: broker start-up: {starts or 'none'}{extra}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--top", type=int, default=6, help="slowest cells to list (default 6)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook (default 1)")
    parser.add_argument(
        "--cwd",
        type=Path,
        help="kernel working directory (default: each "
        "notebook's folder); for timing copies kept outside chapters/",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = parser.parse_args(argv)
    if args.top < 0:
        parser.error(f"--top must be >= 0, got {args.top}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    paths = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    for path in paths:
        if not path.is_file():
            parser.error(f"notebook {str(path)!r} does not exist")
    print(
        f"{len(paths)} notebook(s), {args.repeat} run(s) each; {os.cpu_count()} CPUs; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results = {}
    for path in paths:
        try:
            runs = [run_notebook(path.resolve(), args.cwd) for _ in range(args.repeat)]
        except CellExecutionError as error:  # a broken cell: say which, and go on with the next
            print(f"\n== {path.name}: FAILED, not timed: {str(error).strip().splitlines()[-1]}")
            continue
        results[path.name] = runs
        report(path, runs, args.top)
    print("\nSummary (median of runs, s):")
    for name, runs in results.items():
        median = statistics.median(r["total"] for r in runs)
        print(f"   {name:36} {median:5.1f}  {'ok' if median < BUDGET_SECONDS else 'OVER'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
