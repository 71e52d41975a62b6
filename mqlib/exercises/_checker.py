"""The checker shared by every exercise: seeded fault schedules, a budget, shrinking, the report.

An exercise is a small world built on the course's models (a queue, a log, a broker) in which the
learner's code plays one part: a consumer's handler, a producer's loop, a retry policy, a
configuration. :func:`run_check` runs that world once per *fault schedule*. A schedule is drawn
from a seed, so it can be replayed: it says how many messages the run has and which faults strike
when (a crash before the effect, a slow step, a rebalance, a burst, ...). After each run the
exercise checks its invariants; the first run that breaks one is *shrunk*: faults are removed,
and messages dropped, one at a time, for as long as the run still fails, so the report shows the
smallest story that goes wrong.

Learner code is called through :func:`call`, which turns whatever it raises into a
:class:`SolutionError` that names the function, the exception and the line of the learner's own
code, never a traceback from inside :mod:`mqlib`. A whole run has a wall-clock budget
(:data:`TIME_BUDGET` seconds, enforced with ``SIGALRM`` in the main thread) and a step budget (the
number of calls into the solution), so code that loops forever fails with a message that says so.
"""

from __future__ import annotations

import html
import inspect
import random
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import _validate as check

TIME_BUDGET = 1.0
"""Wall-clock seconds one schedule may take before the solution is said to hang."""

STEP_BUDGET = 20_000
"""Calls into the solution one schedule may make (a loop that never ends runs out of them)."""

SHOWN_STEPS = 40
"""A report shows at most this many timeline steps (all are in ``counterexample.timeline``)."""

MAX_SHRINK_RUNS = 300
"""Runs the shrinker may spend looking for a smaller failing schedule."""

_MQLIB = str(Path(__file__).resolve().parent.parent)


# -- schedules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One planned fault: ``kind`` strikes ``target`` (a message number, a tick, a member) at
    ``attempt``/``at``. ``text`` says it in words ("crash m2 during part 1 of delivery 1")."""

    kind: str
    target: int
    attempt: int = 1
    at: int = 0
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        if not self.text:
            return f"{self.kind} {self.target}"
        return self.text.format(target=self.target, attempt=self.attempt, at=self.at)


@dataclass(frozen=True)
class Schedule:
    """What one run looks like: ``size`` messages (or events, ticks) and the ``faults``."""

    seed: int
    size: int
    faults: tuple[Fault, ...] = ()


@dataclass(frozen=True)
class Step:
    """One line of a timeline: at ``time`` something (``what``) happened to ``subject``."""

    time: float
    subject: str
    what: str
    detail: str = ""

    def as_text(self) -> str:
        line = f"t={self.time:>7.2f}s  {self.subject:<10} {self.what}"
        return f"{line}: {self.detail}" if self.detail else line


class Outcome:
    """What a run produced: its timeline and, if an invariant broke, which one and where.

    An exercise's world appends steps with :meth:`step`, and calls :meth:`broke` once when it
    sees an invariant fail (later calls are ignored: the first failure is the story)."""

    def __init__(self) -> None:
        self.timeline: list[Step] = []
        self.invariant: str | None = None
        self.explanation: str | None = None
        self.broken_step: int | None = None

    def step(self, time: float, subject: str, what: str, detail: str = "") -> int:
        self.timeline.append(Step(round(float(time), 6), str(subject), what, detail))
        return len(self.timeline) - 1

    def broke(
        self, invariant: str, explanation: str, *, time: float | None = None, subject: str = ""
    ) -> None:
        """Record the broken ``invariant``; with ``time``, add a step for it and highlight it."""
        if self.invariant is not None:
            return
        self.invariant = invariant
        self.explanation = explanation
        if time is None:
            # the last step is where it broke: say there which rule it broke
            self.broken_step = len(self.timeline) - 1 if self.timeline else None
            if self.broken_step is not None:
                last = self.timeline[-1]
                note = f"BROKEN: {invariant}"
                detail = f"{last.detail} ({note})" if last.detail else note
                self.timeline[-1] = replace(last, detail=detail)
        else:
            self.broken_step = self.step(time, subject, "BROKEN: " + invariant)

    @property
    def failed(self) -> bool:
        return self.invariant is not None

    def last_time(self) -> float:
        """The time of the latest step so far (0 before any)."""
        return max((s.time for s in self.timeline), default=0.0)


# -- calling the learner's code ---------------------------------------------------------------


class SolutionError(Exception):
    """The solution raised, hung or returned something of the wrong kind; ``str()`` says which."""


class _OutOfTime(BaseException):
    """Raised by the alarm inside whatever runs when the time budget is spent (not an
    ``Exception``, so a learner's ``except Exception`` cannot swallow it)."""


class Crash(BaseException):
    """Raised inside the solution to simulate its process dying at this point. It is a
    ``BaseException`` so that a learner's ``except Exception`` does not survive a crash, just as
    no ``except`` survives ``kill -9``."""


class Budget:
    """Counts calls into the solution during one run."""

    def __init__(self, steps: int = STEP_BUDGET) -> None:
        self.left = steps

    def spend(self, what: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise SolutionError(
                f"{what} was called more than {STEP_BUDGET} times in one schedule without the "
                "run finishing: does it loop, or never make progress?"
            )


def _learner_line(tb: Any) -> str:
    """The innermost traceback frame outside mqlib (the learner's own code), as text."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith(_MQLIB)]
    if not frames:
        return ""
    frame = frames[-1]
    where = "your code" if frame.filename.startswith("<") else Path(frame.filename).name
    return f" (line {frame.lineno} of {where}: {frame.line!r})" if frame.line else ""


def call(function: Callable[..., Any], *args: Any, what: str, budget: Budget | None = None) -> Any:
    """Call learner code; turn any exception it raises into a plain :class:`SolutionError`."""
    if _Alarm.expired:
        # the time budget ran out in an earlier call whose _OutOfTime the event loop holds
        # back for a moment: do not let the solution start again
        raise _OutOfTime
    if budget is not None:
        budget.spend(what)
    try:
        result = function(*args)
    except (Crash, _OutOfTime, SolutionError):
        raise
    except Exception as error:  # the learner's bug, reported in words
        line = _learner_line(error.__traceback__)
        _Alarm.expired = True  # this run is over: the solution is not called again in it
        raise SolutionError(
            f"{what} raised {type(error).__name__}: {error}{line}".rstrip(": ")
        ) from None
    if inspect.iscoroutine(result):
        result.close()  # never awaited: close it, so Python does not warn on stderr
        raise SolutionError(f"{what} is an async def function; write a plain def (no await)")
    if inspect.isgenerator(result):
        raise SolutionError(
            f"{what} returned a generator (its body contains yield): nothing in it ran; "
            "write a plain function without yield"
        )
    return result


def wrong_type(what: str, value: Any, expected: str) -> SolutionError:
    """The error for a solution that returned ``value`` where ``expected`` was due."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return SolutionError(
        f"{what} returned {shown} ({type(value).__name__}); it must return {expected}"
    )


class _Alarm:
    """Wall-clock budget for one run: ``SIGALRM`` in the main thread, nothing elsewhere (the
    step budget still applies)."""

    expired = False  # set when the alarm fires; cleared when the next run starts

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = (
            hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )

    def __enter__(self) -> _Alarm:
        _Alarm.expired = False
        if self.active:
            self._old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    @staticmethod
    def _fire(signum: int, frame: Any) -> None:
        _Alarm.expired = True
        raise _OutOfTime

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)


# -- the exercise interface -------------------------------------------------------------------


class Exercise:
    """One graded exercise. Subclasses set the class attributes and implement the three methods.

    ``name`` is the id (``"ch03-idempotent-charge"``), ``chapter`` its chapter number, ``title``
    a short line, ``signature`` what the learner writes, ``task`` and ``checks`` the prose of
    :func:`mqlib.exercises.describe`. ``max_size``/``min_size`` bound a schedule's size.
    """

    name = ""
    chapter = 0
    title = ""
    signature = ""
    task = ""
    checks = ""
    min_size = 1
    max_size = 6
    size_unit = "message(s)"

    def validate(self, solution: Any) -> Any:
        """Raise ``TypeError`` if ``solution`` is not of the kind the exercise needs; return the
        form the world uses (for example an instance made from a class)."""
        raise NotImplementedError

    def draw(self, rng: random.Random, size: int) -> list[Fault]:
        """The faults of one schedule with ``size`` messages."""
        raise NotImplementedError

    def run(self, solution: Any, schedule: Schedule, outcome: Outcome) -> None:
        """Run the world once; append steps to ``outcome`` and call ``outcome.broke`` on a
        broken invariant. Learner code is called through :func:`call`."""
        raise NotImplementedError

    def reference(self) -> Any:
        raise NotImplementedError

    def starter(self) -> Any:
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------------------
    def schedule(self, seed: int) -> Schedule:
        rng = random.Random(f"{self.name}/{seed}")
        size = rng.randint(self.min_size, self.max_size)
        return Schedule(seed, size, tuple(self.draw(rng, size)))

    def trial(self, solution: Any, schedule: Schedule) -> Outcome:
        outcome = Outcome()
        try:
            with _Alarm(TIME_BUDGET):
                self.run(solution, schedule, outcome)
        except _OutOfTime:
            outcome.invariant = None
            outcome.broke(
                "the solution finishes each step",
                f"the run did not finish within {TIME_BUDGET:g} s of real time: your code seems "
                "to loop forever or to wait for something that never comes",
                time=outcome.last_time(),
                subject="your code",
            )
            outcome.hung = True  # type: ignore[attr-defined]
        except SolutionError as error:
            outcome.invariant = None
            outcome.broke(
                "the solution runs without errors",
                str(error),
                time=outcome.last_time(),
                subject="your code",
            )
        # worlds may record a step out of time order (a producer's sends, then the group's
        # start at t=0): show the timeline in time order, keeping the highlight on its step
        order = sorted(range(len(outcome.timeline)), key=lambda i: outcome.timeline[i].time)
        if order != list(range(len(order))):
            outcome.timeline = [outcome.timeline[i] for i in order]
            if outcome.broken_step is not None:
                outcome.broken_step = order.index(outcome.broken_step)
        return outcome

    def smaller(self, schedule: Schedule) -> Iterator[Schedule]:
        """Candidate schedules one step smaller: one fault fewer, or one message fewer."""
        for i in range(len(schedule.faults)):
            yield replace(schedule, faults=schedule.faults[:i] + schedule.faults[i + 1 :])
        if schedule.size <= self.min_size:
            return
        size = schedule.size - 1
        kept = tuple(f for f in schedule.faults if f.target <= size or not self.per_message)
        yield replace(schedule, size=size, faults=kept)
        if self.renumber:  # drop message i, and renumber the ones after it
            for i in range(1, schedule.size):
                kept = tuple(
                    replace(f, target=f.target - 1) if f.target > i else f
                    for f in schedule.faults
                    if f.target != i
                )
                yield replace(schedule, size=size, faults=kept)

    per_message = True  # do faults name a message number (so dropping messages drops them)?
    renumber = False  # ... and may any message be dropped, the later ones renumbered?


# -- the result -------------------------------------------------------------------------------


@dataclass
class Counterexample:
    """The smallest failing schedule found: replay it with ``check(name, solution,
    schedules=1, seed=seed)``."""

    exercise: str
    seed: int
    size: int
    faults: list[Fault]
    timeline: list[Step]
    invariant: str
    explanation: str
    broken_step: int | None
    unshrunk_faults: int
    size_unit: str = "message(s)"

    def shown_steps(self) -> list[int | None]:
        """Indices of the timeline steps a report shows (``None`` for "some steps left out"): all
        of them when there are at most :data:`SHOWN_STEPS`, else the first five and the steps up
        to just after the broken one."""
        n = len(self.timeline)
        if n <= SHOWN_STEPS:
            return list(range(n))
        end = n - 1 if self.broken_step is None else self.broken_step
        last = min(n, end + 4)
        first = max(5, last - (SHOWN_STEPS - 6))
        shown: list[int | None] = list(range(5))
        if first > 5:
            shown.append(None)
        shown.extend(range(first, last))
        if last < n:
            shown.append(None)
        return shown

    def timeline_text(self) -> list[str]:
        lines = []
        for i in self.shown_steps():
            if i is None:
                lines.append("   ...")
                continue
            mark = ">>" if i == self.broken_step else "  "
            lines.append(f"{mark} {self.timeline[i].as_text()}")
        return lines


@dataclass
class CheckResult:
    """What :func:`mqlib.exercises.check` found. ``passed`` is ``True`` when every schedule held;
    otherwise ``counterexample`` is the smallest failing schedule after shrinking."""

    exercise: str
    passed: bool
    schedules_run: int
    schedules: int
    seed: int
    counterexample: Counterexample | None = None
    solution_name: str = "solution"

    def __bool__(self) -> bool:
        return self.passed

    def _headline(self) -> str:
        if self.passed:
            return (
                f"{self.exercise}: PASSED all {self.schedules_run} fault schedules "
                f"(seeds {self.seed}..{self.seed + self.schedules_run - 1})."
            )
        return (
            f"{self.exercise}: FAILED on schedule {self.schedules_run} of {self.schedules} "
            f"(seed {self.counterexample.seed})."
        )

    def __str__(self) -> str:
        if self.passed:
            return self._headline()
        cx = self.counterexample
        faults = "; ".join(str(f) for f in cx.faults) or "none: it fails with no fault at all"
        shrunk = (
            f" (shrunk from {cx.unshrunk_faults})" if cx.unshrunk_faults != len(cx.faults) else ""
        )
        lines = [
            self._headline(),
            f"Broken: {cx.invariant}.",
            f"Why: {cx.explanation}.",
            f"Smallest failing schedule: {cx.size} {cx.size_unit}; faults{shrunk}: {faults}.",
            "Timeline (>> marks where it broke):",
            *cx.timeline_text(),
            f'Replay: check("{self.exercise}", {self.solution_name}, schedules=1, seed={cx.seed})',
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        if self.passed:
            return (
                '<div class="mq-check mq-pass" style="border-left:4px solid #009E73;'
                f'padding:4px 8px"><b>&#10004; {esc(self._headline())}</b></div>'
            )
        cx = self.counterexample
        rows = []
        for i in cx.shown_steps():
            if i is None:
                rows.append('<tr><td colspan="4">&#8230;</td></tr>')
                continue
            step = cx.timeline[i]
            style = ' style="background:#F0E442;font-weight:bold"' if i == cx.broken_step else ""
            rows.append(
                f'<tr{style}><td style="white-space:nowrap">{step.time:.2f} s</td>'
                f'<td style="white-space:nowrap">{esc(step.subject)}</td>'
                f"<td>{esc(step.what)}</td><td>{esc(step.detail)}</td></tr>"
            )
        faults = "; ".join(esc(str(f)) for f in cx.faults) or "none"
        return (
            '<div class="mq-check mq-fail" style="border-left:4px solid #D55E00;padding:4px 8px">'
            f"<p><b>&#10008; {esc(self._headline())}</b></p>"
            f"<p><b>Broken:</b> {esc(cx.invariant)}.<br><b>Why:</b> {esc(cx.explanation)}."
            f"<br><b>Smallest failing schedule:</b> {cx.size} {esc(cx.size_unit)}; "
            f"faults: {faults}.</p>"
            "<table><thead><tr><th>time</th><th>who</th><th>what</th><th>detail</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f'<p>Replay: <code>check("{esc(self.exercise)}", {esc(self.solution_name)}, '
            f"schedules=1, seed={cx.seed})</code></p></div>"
        )


# -- running a check --------------------------------------------------------------------------


def _shrink(exercise: Exercise, solution: Any, schedule: Schedule, outcome: Outcome):
    runs = 0
    improved = True
    while improved and runs < MAX_SHRINK_RUNS:
        improved = False
        for candidate in exercise.smaller(schedule):
            runs += 1
            trial = exercise.trial(solution, candidate)
            # keep the same failure while shrinking, so the story does not change its subject
            if trial.invariant == outcome.invariant and not getattr(trial, "hung", False):
                schedule, outcome, improved = candidate, trial, True
                break
            if runs >= MAX_SHRINK_RUNS:
                break
    return schedule, outcome


def run_check(
    exercise: Exercise, solution: Any, *, schedules: int = 200, seed: int = 0
) -> CheckResult:
    """Run ``solution`` under ``schedules`` schedules (seeds ``seed``, ``seed + 1``, ...)."""
    check.integer("schedules", schedules, minimum=1, maximum=100_000)
    check.integer("seed", seed, minimum=0)
    name = (
        "config"
        if isinstance(solution, dict)
        else (getattr(solution, "__name__", None) or type(solution).__name__)
    )
    if not name.isidentifier():  # a lambda: name the argument instead
        name = "solution"
    prepared = exercise.validate(solution)
    for i in range(schedules):
        schedule = exercise.schedule(seed + i)
        outcome = exercise.trial(prepared, schedule)
        if not outcome.failed:
            continue
        unshrunk = len(schedule.faults)
        if not getattr(outcome, "hung", False):
            schedule, outcome = _shrink(exercise, prepared, schedule, outcome)
        return CheckResult(
            exercise.name,
            False,
            i + 1,
            schedules,
            seed,
            Counterexample(
                exercise.name,
                schedule.seed,
                schedule.size,
                list(schedule.faults),
                outcome.timeline,
                outcome.invariant,
                outcome.explanation,
                outcome.broken_step,
                unshrunk,
                exercise.size_unit,
            ),
            solution_name=name,
        )
    return CheckResult(exercise.name, True, schedules, schedules, seed, solution_name=name)


def callable_with(solution: Any, what: str, arity: int, signature: str) -> Callable[..., Any]:
    """Check that ``solution`` is a function taking ``arity`` positional arguments."""
    if not callable(solution) or isinstance(solution, type):
        raise TypeError(
            f"solution must be a function {signature}, got {solution!r} ({type(solution).__name__})"
        )
    try:
        sig = inspect.signature(solution)
    except (TypeError, ValueError):
        return solution
    try:
        sig.bind(*([None] * arity))
    except TypeError:
        raise TypeError(
            f"solution must be a function {signature}; "
            f"{getattr(solution, '__name__', what)!r} has the signature {sig}"
        ) from None
    return solution


def instance_of(solution: Any) -> Any:
    """``solution`` itself, or, when it is a class, an instance made with no arguments (a
    ``TypeError`` saying so when that fails)."""
    if not isinstance(solution, type):
        return solution
    try:
        return solution()
    except Exception as error:
        raise TypeError(
            f"solution must be a class that can be made with no arguments; "
            f"{solution.__name__}() raised {type(error).__name__}: {error}"
        ) from None
