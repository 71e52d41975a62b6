"""What the live scenarios share: simulated time that advances on demand, sampled into a chart.

A widget's chart is a set of time series - queue depth, throughput, ... - read from a run while the
learner presses buttons. :class:`SampledRun` keeps those series for a scenario: it samples them
every ``sample_every`` simulated seconds (a SimPy process does this, so the samples land on a
regular grid whatever the buttons do) and again after every action. A subclass only names the
quantities it records and says how to measure them once.

>>> from mqlib.core import Simulation
>>> class Clock(SampledRun):
...     SERIES = ("ticks", "tick_rate")
...
...     def __init__(self) -> None:
...         self.sim, self.sample_every, self.ticks = Simulation(), 1.0, 0
...         self._start_sampling()
...
...     def tick(self) -> None:
...         self.ticks += 1
...         self._settle()
...
...     def _measure(self, previous):
...         return {"ticks": self.ticks, "tick_rate": self._rate(self.ticks, previous, "ticks")}
>>> clock = Clock()
>>> clock.advance(1)
>>> clock.tick(); clock.tick()  # two samples at t=1: the second replaces the first
>>> clock.advance(1)
>>> clock.series
{'time': [0, 1.0, 2.0], 'ticks': [0, 2, 2], 'tick_rate': [0.0, 2.0, 0.0]}
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.backpressure import thin_series

__all__ = ["SampledRun"]


#: The longest single :meth:`SampledRun.advance`, in simulated seconds (one day).
MAX_ADVANCE = 86_400.0
#: The most chart samples one :meth:`SampledRun.advance` may take (about a second of computing).
MAX_SAMPLES_PER_ADVANCE = 50_000


class SampledRun:
    """Base for a live run whose :attr:`series` a chart plots against simulated time.

    A subclass

    * lists the quantities it records in :attr:`SERIES` (``"time"`` comes first by itself),
    * implements :meth:`_measure`, which returns one sample: a value for every key of
      :attr:`SERIES`, and any extra values it needs next time to compute a rate,
    * sets ``self.sim`` and ``self.sample_every`` in ``__init__`` and calls
      :meth:`_start_sampling` last, once everything :meth:`_measure` reads exists.

    Its actions call :meth:`_settle` so that the chart shows their effect at the instant they
    happened; :meth:`advance` is the "let time pass" button.

    Attributes
    ----------
    series:
        ``"time"`` and each key of :attr:`SERIES` -> one value per sample, oldest first. There is
        at most one sample per instant: a later look at the same time replaces the earlier one,
        so a burst of button presses shows as one step, not a vertical line of points. It keeps
        at most :attr:`SERIES_LIMIT` points, however long the run: past that, the points in each
        of a run of equal time intervals are merged into one
        (:func:`~mqlib.models.backpressure.thin_series`), the keys in :attr:`SERIES_PEAKS`
        keeping the largest value so that a spike stays visible, those in :attr:`SERIES_RATES`
        their time-weighted mean, any other the latest value.
    """

    #: The recorded quantities, in the order they appear in :attr:`series` after ``"time"``.
    SERIES: tuple[str, ...] = ()
    #: The most points :attr:`series` keeps (a chart draws a few hundred pixels across).
    SERIES_LIMIT = 2_000
    #: Levels whose merged point keeps the largest of its values.
    SERIES_PEAKS: tuple[str, ...] = ()
    #: Per-second rates, merged as the time-weighted mean over the merged interval.
    SERIES_RATES: tuple[str, ...] = ()

    sim: Simulation
    sample_every: float
    series: dict[str, list[float]]

    def _start_sampling(self) -> None:
        """Create :attr:`series`, take the first sample and start the periodic sampler."""
        self.series = {key: [] for key in ("time", *self.SERIES)}
        # The last sample as _measure returned it (extras included), and the one before it: when
        # the last is replaced, rates must again be measured from the one before.
        self._last: dict[str, Any] | None = None
        self._before_last: dict[str, Any] | None = None
        self._sample()
        self.sim.process(self._sampler())

    # -- what every run offers ----------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass."""
        check.positive("seconds", seconds)
        # A bound on one step keeps the series drawable: a day is 345,600 samples at 0.25 s.
        check.number("seconds", seconds, maximum=MAX_ADVANCE)
        if seconds / self.sample_every > MAX_SAMPLES_PER_ADVANCE:
            raise ValueError(
                f"seconds must be <= {MAX_SAMPLES_PER_ADVANCE * self.sample_every:g} for this run "
                f"(at most {MAX_SAMPLES_PER_ADVANCE} samples, one every {self.sample_every:g} s), "
                f"got {seconds!r}: advance in several steps"
            )
        self.sim.advance(seconds)
        self._sample()

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self.sim.now

    # -- for subclasses ----------------------------------------------------------------------
    def _measure(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """One sample at the current time: a value for every key of :attr:`SERIES`, plus any
        extras. ``previous`` is the sample before it (``None`` for the first), for rates."""
        raise NotImplementedError

    def _rate(self, value: float, previous: Mapping[str, Any] | None, key: str) -> float:
        """Per-second change of a counter whose value is now ``value`` and was ``previous[key]``
        at the previous sample (0 for the first sample, which has no interval to divide by)."""
        if previous is None:
            return 0.0
        dt = self.sim.now - previous["time"]
        return (value - previous[key]) / dt if dt > 0 else 0.0

    def _settle(self) -> None:
        """Let everything due at this instant happen (an action's consequences), then sample."""
        self.sim.settle()
        self._sample()

    # -- internals -----------------------------------------------------------------------------
    def _sample(self) -> None:
        t = self.sim.now
        if self._last is not None and self._last["time"] == t:
            for values in self.series.values():
                values.pop()
            self._last = self._before_last
        sample = {**self._measure(self._last), "time": t}
        self._before_last, self._last = self._last, sample
        for key, values in self.series.items():
            values.append(sample[key])
        if len(self.series["time"]) > self.SERIES_LIMIT:
            thin_series(
                self.series,
                self.SERIES_LIMIT // 2,
                peaks=self.SERIES_PEAKS,
                rates=self.SERIES_RATES,
            )

    def _sampler(self) -> Generator[Any, Any, None]:
        while True:
            yield self.sim.timeout(self.sample_every)
            self._sample()
