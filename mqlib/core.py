"""The simulation core: simulated clock, seeded randomness and a trace of what happened.

Every model in :mod:`mqlib` runs inside a :class:`Simulation`. It wraps a SimPy environment (the
event loop and the clock), a :class:`random.Random` seeded from the ``seed`` argument (the only
source of randomness a model may use), and a :class:`Trace` that records each meaningful event - who
received which message when, acks, timeouts - as plain data.

Time is simulated seconds, never wall-clock: a run of one simulated hour takes as long as its events
take to compute, and two runs with the same seed produce the same trace, event for event.

>>> sim = Simulation(seed=7)
>>> def ticker(sim):
...     for i in range(3):
...         yield sim.timeout(0.5)
...         sim.record("tick", n=i)
>>> _ = sim.process(ticker(sim))
>>> sim.run(until=10)
>>> [(e.time, e.kind, e.data["n"]) for e in sim.trace]
[(0.5, 'tick', 0), (1.0, 'tick', 1), (1.5, 'tick', 2)]
"""

from __future__ import annotations

import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import simpy

from . import _validate as check


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened at simulated time ``time`` (seconds)."""

    time: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view: ``{"time": ..., "kind": ..., **data}``."""
        return {"time": round(self.time, 9), "kind": self.kind, **self.data}


class Trace:
    """An append-only list of :class:`TraceEvent`, in the order they happened."""

    def __init__(self) -> None:
        self._events: list[TraceEvent] = []

    def append(self, event: TraceEvent) -> None:
        self._events.append(event)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, index: int) -> TraceEvent:
        return self._events[index]

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        """The events whose kind is one of ``kinds``."""
        return [e for e in self._events if e.kind in kinds]

    def as_dicts(self) -> list[dict[str, Any]]:
        """Every event as a plain dict (for golden-trace files and tables)."""
        return [e.as_dict() for e in self._events]


class Simulation:
    """A simulated clock, an event loop and a seeded random source, shared by the models of one run.

    Parameters
    ----------
    seed:
        Seeds :attr:`rng`. The same seed gives the same trace.
    record:
        When ``False`` nothing is appended to :attr:`trace` (large runs where only counts
        matter).
    """

    def __init__(self, seed: int = 0, *, record: bool = True) -> None:
        check.integer("seed", seed)
        check.boolean("record", record)
        self.seed = seed
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.trace = Trace()
        self.recording = record

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self.env.now

    def timeout(self, delay: float, value: Any = None) -> simpy.Timeout:
        """An event that fires ``delay`` simulated seconds from now (``yield`` it in a process)."""
        check.non_negative("delay", delay)
        return self.env.timeout(delay, value)

    def event(self) -> simpy.Event:
        """A fresh event that a model triggers by hand (``event.succeed(value)``)."""
        return self.env.event()

    def process(self, generator: Generator[Any, Any, Any]) -> simpy.Process:
        """Start a generator as a simulated process, like a thread that lives on simulated time."""
        return self.env.process(generator)

    def run(self, until: float | None = None) -> None:
        """Advance the clock, processing events, until simulated time ``until`` (or no events
        are left)."""
        if until is not None:
            check.non_negative("until", until)
            if until < self.now:
                raise ValueError(f"until must be >= the current time {self.now}, got {until!r}")
            if until == self.now:
                return
        self.env.run(until=until)

    def advance(self, seconds: float) -> None:
        """Run for ``seconds`` more simulated seconds."""
        check.non_negative("seconds", seconds)
        self.run(until=self.now + seconds)

    def settle(self) -> None:
        """Process every event already due at the current time, without moving the clock.

        Call it from top-level code (not from inside a process) after an action such as a crash,
        so that its consequences at this instant are visible before anyone reads the state.
        """
        while self.env.peek() == self.env.now:
            self.env.step()

    def record(self, kind: str, **data: Any) -> None:
        """Append an event of ``kind`` at the current time to the trace."""
        if self.recording:
            self.trace.append(TraceEvent(self.env.now, kind, data))
