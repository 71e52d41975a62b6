"""Golden traces: the event trace of every default scenario is committed in ``tests/golden`` and a
fresh run must reproduce it exactly, so that any change in the engine's behaviour shows up as a
diff that someone reviews.

After an intended change, rewrite the files and review the diff before committing::

    .venv/bin/python tests/test_golden.py            # every scenario
    .venv/bin/python tests/test_golden.py ordering   # one
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mqlib.scenarios import (
    backpressure,
    cluster,
    dead_letter,
    guarantees,
    kafka_log,
    order_flow,
    ordering,
    playground,
    point_to_point,
    pubsub,
)

GOLDEN = Path(__file__).parent / "golden"


def trace(run: Any) -> list[dict[str, Any]]:
    return run.sim.trace.as_dicts()


#: Scenario name (the file name in tests/golden) -> what is recorded for it.
SCENARIOS: dict[str, Callable[[], Any]] = {
    "order_flow": lambda: {mode: r.trace for mode, r in order_flow.compare_modes().items()},
    "point_to_point": lambda: trace(point_to_point.default_run()),
    "pubsub": lambda: trace(pubsub.default_run()),
    "guarantees": lambda: {
        "default_run": guarantees.default_run().events(),
        "compare": guarantees.compare_traces(),
    },
    "ordering": lambda: {
        "default_run": trace(ordering.default_run()),
        "competing_run": trace(ordering.competing_run()),
    },
    "backpressure": lambda: trace(backpressure.default_run()),
    "dead_letter": lambda: trace(dead_letter.default_run()),
    "kafka_log": lambda: trace(kafka_log.default_run()),
    "cluster": lambda: trace(cluster.default_run()),
    "playground": lambda: trace(playground.default_run()),
}


def fresh(name: str) -> Any:
    """A new run of ``name``, as it would be written to its JSON file."""
    return json.loads(json.dumps(SCENARIOS[name]()))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_default_run_matches_its_golden_trace(name):
    path = GOLDEN / f"{name}.json"
    assert path.exists(), f"no golden trace for {name}: run python tests/test_golden.py {name}"
    assert fresh(name) == json.loads(path.read_text()), (
        f"{name} behaves differently from tests/golden/{name}.json; if that is intended, "
        f"rewrite it with python tests/test_golden.py {name} and review the diff"
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_same_trace(name):
    assert fresh(name) == fresh(name)


def test_every_golden_file_belongs_to_a_scenario():
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(SCENARIOS)


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for name in sys.argv[1:] or sorted(SCENARIOS):
        path = GOLDEN / f"{name}.json"
        path.write_text(json.dumps(fresh(name), indent=1) + "\n")
        print(f"wrote {path}")
