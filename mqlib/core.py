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

import math
import random
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, Timeout

from . import _validate as check

#: How many events a :class:`Trace` keeps by default: the newest ones, so that a run of hours
#: uses memory for its recent history only (about 6 MB at most). Every default scenario and
#: test run stays far below it.
TRACE_LIMIT = 20_000

_INF = math.inf
_new = object.__new__


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
    """The events of a run in the order they happened: the newest ``limit`` of them.

    Events are stored as compact ``(time, kind, data)`` tuples and handed out as
    :class:`TraceEvent` objects. When more than ``limit`` events have been recorded the oldest
    are forgotten (:attr:`dropped` counts them), so memory stays bounded however long a run
    lasts; ``limit=None`` keeps everything.
    """

    def __init__(self, limit: int | None = TRACE_LIMIT) -> None:
        if limit is not None:
            check.integer("limit", limit, minimum=1, maximum=10_000_000)
        self.limit = limit
        self._events: deque[tuple[float, str, dict[str, Any]]] = deque(maxlen=limit)
        self._total = 0

    def append(self, event: TraceEvent) -> None:
        if not isinstance(event, TraceEvent):
            raise TypeError(f"event must be a TraceEvent, got {type(event).__name__}")
        self._events.append((event.time, event.kind, event.data))
        self._total += 1

    @property
    def dropped(self) -> int:
        """Events recorded but no longer kept (the ring was full)."""
        return self._total - len(self._events)

    def __iter__(self) -> Iterator[TraceEvent]:
        return (TraceEvent(t, k, d) for t, k, d in self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, index: int) -> TraceEvent:
        if isinstance(index, slice):
            return [TraceEvent(*e) for e in list(self._events)[index]]  # type: ignore[return-value]
        return TraceEvent(*self._events[index])

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        """The events whose kind is one of ``kinds``."""
        return [TraceEvent(t, k, d) for t, k, d in self._events if k in kinds]

    def data_of_kind(self, *kinds: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The ``(kind, data)`` of the events whose kind is one of ``kinds``, oldest first: what
        :meth:`of_kind` gives without building an event object for each (for reading a long
        trace)."""
        wanted = frozenset(kinds)
        return ((k, d) for _t, k, d in self._events if k in wanted)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Every event as a plain dict (for golden-trace files and tables)."""
        return [{"time": round(t, 9), "kind": k, **d} for t, k, d in self._events]


class Simulation:
    """A simulated clock, an event loop and a seeded random source, shared by the models of one run.

    Parameters
    ----------
    seed:
        Seeds :attr:`rng`. The same seed gives the same trace.
    record:
        When ``False`` nothing is appended to :attr:`trace` (large runs where only counts
        matter).
    trace_limit:
        The trace keeps the newest this many events (``None``: all of them).

    **The instant rule.** :meth:`run` and :meth:`advance` process everything that is due at
    the end time, not only what is due before it: after ``advance(1.0)`` an ack due at t=1 has
    happened. (SimPy's own ``run(until=t)`` stops *before* the events at ``t``.)
    """

    def __init__(
        self, seed: int = 0, *, record: bool = True, trace_limit: int | None = TRACE_LIMIT
    ) -> None:
        check.integer("seed", seed)
        check.boolean("record", record)
        if trace_limit is not None:
            check.integer("trace_limit", trace_limit, minimum=1, maximum=10_000_000)
        self.seed = seed
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.trace = Trace(trace_limit)
        self.recording = record
        self._watchers: dict[str, list[Callable[[str, dict[str, Any]], None]]] = {}

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self.env._now

    @property
    def listening(self) -> bool:
        """Whether an event recorded now is kept (:attr:`recording`) or handed to a
        :meth:`watch` callback: a model's hot path that builds an event only to record it asks
        this first."""
        return self.recording or bool(self._watchers)

    def timeout(self, delay: float, value: Any = None) -> simpy.Timeout:
        """An event that fires ``delay`` simulated seconds from now (``yield`` it in a process)."""
        if delay.__class__ is not float or not 0.0 <= delay < _INF:
            check.non_negative("delay", delay)
        return Timeout(self.env, delay, value)

    def _timer(self, delay: float, value: Any = None, callback: Any = None) -> simpy.Timeout:
        # timeout() for the models' hot paths, whose delay is already known to be a finite
        # number >= 0: the same Timeout, scheduled exactly as SimPy's own constructor does it
        # (same priority, same tie-breaking counter), in one call instead of three.
        env = self.env
        event = _new(Timeout)
        event.env = env
        event.callbacks = [] if callback is None else [callback]
        event._value = value
        event._delay = delay
        event._ok = True
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), event))
        return event

    def event(self) -> simpy.Event:
        """A fresh event that a model triggers by hand (``event.succeed(value)``)."""
        return simpy.Event(self.env)

    def process(self, generator: Generator[Any, Any, Any]) -> simpy.Process:
        """Start a generator as a simulated process, like a thread that lives on simulated time."""
        return self.env.process(generator)

    def run(self, until: float | None = None) -> None:
        """Advance the clock, processing events, until simulated time ``until`` (or no events
        are left). Everything due at ``until`` itself is processed too (the instant rule)."""
        if until is not None:
            check.non_negative("until", until)
            if until < self.now:
                raise ValueError(f"until must be >= the current time {self.now}, got {until!r}")
            if until > self.now:
                self.env.run(until=until)
        else:
            self.env.run()
        self.settle()

    def advance(self, seconds: float) -> None:
        """Run for ``seconds`` more simulated seconds (events due at the end included)."""
        check.non_negative("seconds", seconds)
        self.run(until=self.now + seconds)

    def settle(self) -> None:
        """Process every event already due at the current time, without moving the clock.

        Call it from top-level code (not from inside a process) after an action such as a crash,
        so that its consequences at this instant are visible before anyone reads the state.
        """
        env = self.env
        while env.peek() == env._now:
            env.step()

    def record(self, kind: str, **data: Any) -> None:
        """Append an event of ``kind`` at the current time to the trace, and hand it to the
        callbacks that :meth:`watch` that kind."""
        if kind.__class__ is not str:  # cheap: this runs for every event
            check.text("kind", kind)
        if self.recording:
            trace = self.trace
            trace._events.append((self.env._now, kind, data))
            trace._total += 1
        if self._watchers:
            for callback in self._watchers.get(kind, ()):
                callback(kind, data)

    def watch(
        self,
        kinds: list[str] | tuple[str, ...] | set[str] | frozenset[str],
        callback: Callable[[str, dict[str, Any]], None],
    ) -> None:
        """Call ``callback(kind, data)`` for every event of one of ``kinds`` from now on, as
        :meth:`record` takes it (also with ``record=False``): for a scenario that keeps a running
        count of some events instead of reading the whole trace again each time it is asked,
        and whose count must not depend on how much of the trace is still kept."""
        if isinstance(kinds, str) or not isinstance(kinds, (list, tuple, set, frozenset)):
            raise TypeError(
                f"kinds must be a list, tuple or set of event kinds, got {type(kinds).__name__}"
            )
        if not kinds:
            raise ValueError("kinds must name at least one event kind, got none")
        for kind in kinds:
            check.text("kinds", kind)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        for kind in dict.fromkeys(kinds):
            self._watchers.setdefault(kind, []).append(callback)
