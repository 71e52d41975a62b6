"""The simulation core: clock, determinism, trace, argument checks."""

import pytest

from mqlib import Simulation


def ticker(sim, period, count):
    for i in range(count):
        yield sim.timeout(period)
        sim.record("tick", n=i, draw=sim.rng.random())


def run_ticks(seed):
    sim = Simulation(seed=seed)
    sim.process(ticker(sim, 0.5, 4))
    sim.run(until=10)
    return sim.trace.as_dicts()


def test_clock_advances_in_simulated_time():
    sim = Simulation()
    sim.process(ticker(sim, 0.5, 4))
    sim.advance(1.2)
    assert sim.now == pytest.approx(1.2)
    assert [e.data["n"] for e in sim.trace] == [0, 1]


def test_same_seed_same_trace_other_seed_other_trace():
    assert run_ticks(3) == run_ticks(3)
    assert run_ticks(3) != run_ticks(4)


def test_recording_can_be_switched_off():
    sim = Simulation(record=False)
    sim.process(ticker(sim, 1, 3))
    sim.run()
    assert len(sim.trace) == 0


def test_trace_filters_by_kind():
    sim = Simulation()
    sim.record("a", x=1)
    sim.record("b")
    sim.record("a", x=2)
    assert [e.data["x"] for e in sim.trace.of_kind("a")] == [1, 2]
    assert [(k, d["x"]) for k, d in sim.trace.data_of_kind("a")] == [("a", 1), ("a", 2)]


def test_watchers_see_their_kinds_as_they_are_recorded_even_unrecorded():
    for record in (True, False):
        sim = Simulation(record=record)
        seen: list[tuple[str, int]] = []
        sim.watch(("a", "c", "a"), lambda kind, data, seen=seen: seen.append((kind, data["x"])))
        for kind, x in (("a", 1), ("b", 2), ("c", 3), ("a", 4)):
            sim.record(kind, x=x)
        assert seen == [("a", 1), ("c", 3), ("a", 4)]  # each once, though "a" was named twice
        assert len(sim.trace) == (4 if record else 0)
        assert sim.listening  # kept or watched: a model's hot path records it


def test_a_model_records_for_a_watcher_when_the_trace_is_off():
    from mqlib.models.retries import Dependency

    sim = Simulation(record=False)
    assert not sim.listening
    dependency = Dependency(sim, recovers_at=0.0, capacity=5, window=1.0)
    seen = []
    sim.watch(["dependency_call"], lambda kind, data: seen.append(data["served"]))
    assert sim.listening
    dependency.call("c1")
    assert seen == [True] and len(sim.trace) == 0


@pytest.mark.parametrize(
    ("kinds", "callback", "error", "message"),
    [
        ("send", print, TypeError, "kinds must be a list, tuple or set of event kinds, got str"),
        (None, print, TypeError, "kinds must be a list, tuple or set"),
        ((), print, ValueError, "kinds must name at least one event kind"),
        (("send", 3), print, TypeError, "kinds must be a string, got 3"),
        (("",), print, ValueError, "kinds must be a non-empty string"),
        (("send",), "print", TypeError, "callback must be callable, got str"),
    ],
)
def test_watch_refuses_what_it_cannot_call(kinds, callback, error, message):
    sim = Simulation()
    with pytest.raises(error, match=message):
        sim.watch(kinds, callback)
    sim.record("send", x=1)  # nothing was registered
    assert sim._watchers == {}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Simulation(seed=1.5), "seed must be an integer"),
        (lambda: Simulation(seed=True), "seed must be an integer"),
        (lambda: Simulation().timeout(-1), "delay must be >= 0"),
        (lambda: Simulation().advance(float("nan")), "seconds must be a finite number"),
        (lambda: Simulation().run(until=-2), "until must be >= 0"),
    ],
)
def test_bad_arguments_name_the_parameter(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_cannot_run_backwards():
    sim = Simulation()
    sim.advance(5)
    with pytest.raises(ValueError, match="until must be >= the current time"):
        sim.run(until=1)


# -- issue 13: bounded trace, the instant rule -----------------------------------------------------
def test_the_trace_keeps_the_newest_events_up_to_its_limit():
    sim = Simulation(trace_limit=10)
    for i in range(25):
        sim.record("tick", n=i)
    assert len(sim.trace) == 10 and sim.trace.dropped == 15
    assert [e.data["n"] for e in sim.trace] == list(range(15, 25))
    assert sim.trace[0].data["n"] == 15 and sim.trace[-1].data["n"] == 24
    assert sim.trace.as_dicts()[0] == {"time": 0, "kind": "tick", "n": 15}
    unbounded = Simulation(trace_limit=None)
    for i in range(25):
        unbounded.record("tick", n=i)
    assert len(unbounded.trace) == 25 and unbounded.trace.dropped == 0


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "10"])
def test_a_bad_trace_limit_is_refused(limit):
    with pytest.raises((TypeError, ValueError), match="limit"):
        Simulation(trace_limit=limit)


def test_run_and_advance_process_what_is_due_at_the_end_time():
    sim = Simulation()
    sim.process(ticker(sim, 0.5, 4))
    sim.run(until=1.0)
    assert [e.data["n"] for e in sim.trace] == [0, 1]  # the tick due at 1.0 has happened
    sim.advance(0.5)
    assert [e.data["n"] for e in sim.trace] == [0, 1, 2]
    assert sim.env.peek() > sim.now


def test_the_fast_timer_fires_like_a_timeout():
    sim = Simulation()
    fired = []
    sim.timeout(1.0).callbacks.append(lambda e: fired.append(("timeout", sim.now)))
    sim._timer(1.0, "x", lambda e: fired.append((e.value, sim.now)))
    sim.run(until=2)
    assert fired == [("timeout", 1.0), ("x", 1.0)]  # same time, in creation order
