"""The shared sampling of the live scenarios (mqlib.scenarios._sampled)."""

import doctest

from mqlib.scenarios import _sampled


def test_docstring_examples():
    result = doctest.testmod(_sampled)
    assert result.failed == 0 and result.attempted > 0


# -- one rule for the instant ----------------------------------------------------------------------
import importlib  # noqa: E402
import inspect  # noqa: E402
import pkgutil  # noqa: E402

import pytest  # noqa: E402

import mqlib.scenarios  # noqa: E402
from mqlib.core import Simulation  # noqa: E402
from mqlib.scenarios.point_to_point import PointToPointRun  # noqa: E402


def scenario_classes():
    """Every public class defined in a module of mqlib.scenarios that has an ``advance``
    method: discovered, so that a new scenario is covered without editing this list."""
    found = {}
    for info in pkgutil.iter_modules(mqlib.scenarios.__path__):
        module = importlib.import_module(f"mqlib.scenarios.{info.name}")
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and cls.__module__ == module.__name__
                and not name.startswith("_")
                and name != "SampledRun"  # the abstract base, imported by every sampled run
                and callable(getattr(cls, "advance", None))
            ):
                found[f"{info.name}.{name}"] = cls
    return found


SCENARIO_CLASSES = scenario_classes()


def simulations(run):
    """The Simulation objects a run holds (directly or one level down), to look into their
    event queues."""
    sims = []
    for value in [run, *vars(run).values()]:
        candidate = value if isinstance(value, Simulation) else getattr(value, "sim", None)
        if isinstance(candidate, Simulation) and all(candidate is not s for s in sims):
            sims.append(candidate)
    return sims


def test_the_discovery_finds_the_widget_scenarios():
    assert {
        "point_to_point.PointToPointRun",
        "pubsub.PubSubRun",
        "kafka_log.KafkaLogRun",
        "cluster.ClusterRun",
        "ordering.OrderingRun",
        "dead_letter.DeadLetterRun",
        "playground.Playground",
        "backpressure.BackpressureRun",
    } <= set(SCENARIO_CLASSES)


def test_an_ack_due_at_the_end_of_advance_has_happened():
    run = PointToPointRun({"A": 1.0})
    run.send(1)
    run.advance(1.0)
    assert run.queue.acked_count == 1 and run.queue.depth == 0
    assert run.series["in_flight"][-1] == 0  # the chart's last sample shows it too


#: Scenario classes with no event queue: each step is computed at once, so nothing can be left due.
WITHOUT_EVENT_QUEUE = {
    "backpressure.LargeScaleRun",  # whole-message counts per step, in closed form
    "dead_letter.PoisonPillRun",  # a base: its subclasses build the simulation
}


@pytest.mark.parametrize("name", sorted(SCENARIO_CLASSES))
def test_advance_processes_everything_due_at_its_end_time(name):
    cls = SCENARIO_CLASSES[name]
    try:
        run = cls()
    except TypeError:
        pytest.fail(f"{name}() needs arguments; give it defaults or extend this test")
    sims = simulations(run)
    if not sims:  # nothing is ever due later: the rule holds trivially, but only for these
        assert name in WITHOUT_EVENT_QUEUE, f"{name} holds no Simulation to look into"
        return
    for action in ("send", "publish", "produce"):
        if callable(getattr(run, action, None)):
            try:
                getattr(run, action)()
            except TypeError:  # it needs a key
                getattr(run, action)("order-42")
            break
    checked = 0
    # Ends of advance() that land on the grid of events (whole and half seconds) and between.
    for seconds in (1, 1, 0.5, 0.25, 1, 2):
        try:
            run.advance(seconds)
        except (TypeError, ValueError):
            continue  # this run takes whole seconds only, say
        checked += 1
        for sim in sims:
            assert sim.env.peek() > sim.now, (
                f"{name}: after advance({seconds}) an event due at t={sim.now} is still waiting"
            )
    assert checked


# -- bounded series ------------------------------------------------------------------------------
from mqlib.scenarios.dead_letter import DeadLetterRun  # noqa: E402


def _hour(make, limit=None):
    """An hour of ``make()``'s run with a burst now and then; ``limit`` overrides SERIES_LIMIT
    (a large one keeps every sample: the reference)."""
    run = make()
    if limit is not None:
        run.SERIES_LIMIT = limit
    for minute in range(60):
        if minute % 7 == 0 and hasattr(run, "send"):
            run.send(12)
        run.advance(60)
    return run


@pytest.mark.parametrize(
    "make",
    [lambda: PointToPointRun(), lambda: DeadLetterRun()],
    ids=["point_to_point", "dead_letter"],  # (the playground merges its series its own way)
)
def test_an_hours_series_is_bounded_uniform_and_draws_the_same_peaks(make):
    run, full = _hour(make), _hour(make, limit=10**9)
    series, reference = run.series, full.series
    assert run.summary() == full.summary()  # thinning touches only the chart's copy
    assert len(reference["time"]) > 3 * run.SERIES_LIMIT  # the reference kept every sample
    assert len(series["time"]) <= run.SERIES_LIMIT
    assert series["time"][0] == 0 and series["time"][-1] == reference["time"][-1] == 3600
    # The whole hour keeps one resolution (not fine at the end and coarse at the start).
    gaps = [b - a for a, b in zip(series["time"], series["time"][1:], strict=False)]
    assert max(gaps) <= 8 * 3600 / run.SERIES_LIMIT, max(gaps)  # a few intervals of 3.6 s
    # Each merged point of a level in SERIES_PEAKS is the highest sample it stands for, and
    # every other key's is the latest: the chart's spikes and running totals are the engine's.
    times = reference["time"]
    start = 0
    for i, t in enumerate(series["time"]):
        end = times.index(t, start)
        for key in run.SERIES:
            window = reference[key][start : end + 1]
            if key in run.SERIES_PEAKS:
                assert series[key][i] == max(window), (key, t)
            elif key not in run.SERIES_RATES:
                assert series[key][i] == window[-1], (key, t)
        start = end + 1
    for key in run.SERIES_RATES:  # a rate's area (its total) is unchanged
        assert _area(series, key) == pytest.approx(_area(reference, key))


def _area(series, key):
    """The area under a rate series (each value holds since the previous point)."""
    times = series["time"]
    return sum(r * (b - a) for r, a, b in zip(series[key][1:], times, times[1:], strict=False))
