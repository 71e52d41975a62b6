"""Chapter 8: the playground and the lesson's four experiments.

Regenerate the golden trace with ``python tests/test_playground.py``.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib.scenarios.playground import (
    Playground,
    default_run,
    experiment_kill_consumer,
    experiment_normal_flow,
    experiment_overload,
    experiment_poison_pill,
    run_experiments,
)


def depths_from_trace(run):
    """Queue depth after every event, rebuilt from the trace: sends minus acks minus moves."""
    depth, depths = 0, []
    for event in run.sim.trace:
        if event.kind == "send":
            depth += 1
        elif event.kind in ("ack", "dead_letter"):
            depth -= 1
        depths.append(depth)
    return depths


# -- the four experiments -------------------------------------------------------------------------
def test_experiment_1_normal_flow_processes_everything_with_a_small_queue():
    result = experiment_normal_flow()
    assert result["sent"] == 150  # 5/s for 30 s
    assert result["processed"] == 150 and result["lost"] == 0
    assert result["max_depth"] <= 3
    assert result["throughput"] == pytest.approx(5.0, abs=0.1)
    assert result["processed_by"] == {"A": 50, "B": 50, "C": 50}


def test_experiment_2_a_killed_consumers_work_is_redistributed_and_nothing_is_lost():
    result = experiment_kill_consumer()
    assert result["killed"] == "B"
    assert result["dropped_message"] is not None
    assert result["redelivered_to"] in (["A"], ["C"])  # its in-flight message went to another
    assert result["processed_by"]["B"] == result["processed_by_before"]["B"]
    for other in ("A", "C"):
        assert result["processed_by"][other] > result["processed_by_before"][other] + 40
    assert result["throughput_after"] < result["throughput_before"]
    assert result["throughput_after"] == pytest.approx(4.0, abs=0.1)  # two consumers at 2/s
    assert result["lost"] == 0 and result["processed"] == result["sent"] == 150


def test_experiment_3_a_poison_pill_goes_to_the_dlq_while_others_keep_flowing():
    result = experiment_poison_pill()
    assert result["receives"] == 3
    [entry] = result["dlq"]
    assert entry["message_id"] == result["poison"]
    assert entry["receive_count"] == 3 and entry["last_error"]
    assert result["dead_lettered_at"] == 11.0  # received at 5, 7, 9; back (and moved) at 11
    assert result["processed_while_poison_retried"] >= 5 * 6 - 1  # the rest still ran at ~5/s


@pytest.mark.parametrize("max_receives", [1, 2, 5])
def test_experiment_3_with_other_limits(max_receives):
    result = experiment_poison_pill(max_receives=max_receives, seconds=30)
    assert result["receives"] == max_receives
    assert result["dlq"][0]["receive_count"] == max_receives


def test_experiment_4_overload_grows_without_backpressure_and_is_bounded_with_it():
    result = experiment_overload()
    without, with_bp = result["without_backpressure"], result["with_backpressure"]
    assert without["sent"] == 450  # 15/s for 30 s, none held back
    assert without["final_depth"] > 350
    assert without["depth_series"][-1] > without["depth_series"][len(without["depth_series"]) // 2]
    assert with_bp["max_depth"] <= result["capacity"] == 20
    assert with_bp["final_depth"] == 20
    assert with_bp["producer_rate"] < 3  # slowed to roughly the one consumer's 2/s
    assert with_bp["processed"] == without["processed"]  # the consumer is just as busy


def test_run_experiments_returns_all_four_as_plain_data():
    results = run_experiments()
    assert list(results) == ["normal_flow", "kill_consumer", "poison_pill", "overload"]
    assert json.loads(json.dumps(results)) == results


# -- properties -----------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([1.0, 4.0, 8.0, 15.0, 30.0]),
    capacity=st.integers(1, 25),
    kills=st.lists(st.sampled_from(["A", "B", "C"]), unique=True, max_size=3),
    seconds=st.integers(2, 25),
    poison_every=st.sampled_from([0, 3, 7]),
)
def test_with_backpressure_the_producer_never_pushes_depth_past_capacity(
    rate, capacity, kills, seconds, poison_every
):
    run = Playground(rate=rate, backpressure=True, capacity=capacity)
    for name in kills:
        run.kill_consumer(name)
    for second in range(seconds):
        if poison_every and second % poison_every == 0 and not run.poison_ids:
            run.inject_poison()  # a pill bypasses the producer; inject it only into an empty run
        run.advance(1)
    injected = len(run.poison_ids)
    assert max(depths_from_trace(run)) <= capacity + injected
    assert run.queue.depth <= capacity + injected
    # nothing the producer sent is lost: it is waiting, processed or (a pill) in the DLQ
    assert run.producer.sent + injected == run.queue.depth + run.queue.acked_count + run.dlq.depth


@settings(max_examples=40, deadline=None)
@given(
    kill_at=st.sampled_from([1.0, 2.3, 5.0, 7.7]),
    name=st.sampled_from(["A", "B", "C"]),
    revive_after=st.sampled_from([None, 1.0, 4.0]),
)
def test_killing_a_consumer_never_loses_a_message(kill_at, name, revive_after):
    run = Playground(rate=5.0)
    run.advance(kill_at)
    run.kill_consumer(name)
    if revive_after is not None:
        run.advance(revive_after)
        run.revive_consumer(name)
    run.advance(5)
    run.drain()
    assert run.queue.acked_count == run.producer.sent
    assert run.dlq.depth == 0


# -- buttons --------------------------------------------------------------------------------------
def test_buttons_change_the_run():
    run = Playground(rate=5.0)
    run.advance(2)
    run.set_rate(0)
    sent = run.producer.sent
    run.advance(3)
    assert run.producer.sent == sent
    run.set_rate(10)
    run.advance(1)
    assert run.producer.sent == sent + 10
    run.set_backpressure(True, capacity=5)
    assert run.state()["backpressure"] and run.state()["capacity"] == 5
    run.set_backpressure(False)
    assert not run.state()["backpressure"]
    run.set_dlq(False)
    run.set_max_receives(2)
    assert run.queue.max_receives == 2 and run.queue.dead_letter_queue is None
    poison = run.inject_poison()
    run.advance(10)
    assert run.dlq.depth == 0 and run.queue.messages[poison].receive_count > 2
    run.set_dlq(True)
    run.advance(3)
    assert run.dlq.depth == 1
    run.fix_bug()
    assert run.replay_dlq() == [poison]
    run.advance(2)
    assert run.dlq.depth == 0


def test_kill_and_revive_are_checked():
    run = Playground()
    run.kill_consumer("A")
    assert run.alive == ["B", "C"]
    with pytest.raises(ValueError, match="consumer 'A' is not running"):
        run.kill_consumer("A")
    with pytest.raises(ValueError, match="consumer 'B' is already running"):
        run.revive_consumer("B")
    with pytest.raises(ValueError, match="consumer must be one of 'A', 'B', 'C'"):
        run.kill_consumer("D")
    run.revive_consumer("A")
    assert run.alive == ["A", "B", "C"]


def test_drain_reports_a_queue_nobody_reads():
    run = Playground()
    for name in "ABC":
        run.kill_consumer(name)
    run.advance(2)
    with pytest.raises(RuntimeError, match="are all consumers dead"):
        run.drain(limit=5)


# -- scenario plumbing ----------------------------------------------------------------------------
def test_default_run_summary_state_and_series():
    run = default_run()
    assert run.summary().startswith("t=30s: rate 5/s, sent 150, processed ")
    assert "DLQ 1" in run.summary()
    state = run.state()
    assert json.loads(json.dumps(state)) == state
    assert state["alive"] == ["A", "B", "C"]
    assert len({len(v) for v in run.series.values()}) == 1
    assert run.series["time"][-1] == 30


# -- bad input ------------------------------------------------------------------------------------
BAD_VALUES = st.one_of(
    st.just(-1),
    st.just(-0.5),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just("lots"),
    st.just(None),
    st.just([2]),
)

CALLS = {
    "rate": lambda v: Playground(rate=v),
    "processing_time": lambda v: Playground(processing_time=v),
    "visibility_timeout": lambda v: Playground(visibility_timeout=v),
    "max_receives": lambda v: Playground(max_receives=v),
    "dlq": lambda v: Playground(dlq=v),
    "backpressure": lambda v: Playground(backpressure=v),
    "capacity": lambda v: Playground(capacity=v),
    "sample_every": lambda v: Playground(sample_every=v),
    "seed": lambda v: Playground(seed=v),
    "seconds": lambda v: Playground().advance(v),
    "enabled": lambda v: Playground().set_backpressure(v),
    "consumer": lambda v: Playground().kill_consumer(v),
    "limit": lambda v: Playground().drain(v),
    "kill_at": lambda v: experiment_kill_consumer(kill_at=v),
    "inject_at": lambda v: experiment_poison_pill(inject_at=v),
}


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(CALLS)), value=BAD_VALUES)
def test_bad_arguments_raise_errors_that_name_the_parameter(name, value):
    if name == "seed" and value == -1:
        return  # any int is a valid seed
    with pytest.raises((ValueError, TypeError), match=name):
        CALLS[name](value)


def test_backpressure_shows_the_demand_it_holds_back():
    """Throttled demand is counted as held back, not hidden (issue 9, item 8)."""
    over = experiment_overload()
    bounded = over["with_backpressure"]
    assert bounded["sent"] + bounded["held_back"] == bounded["demand"] == 450
    assert bounded["held_back"] == 371
    assert over["without_backpressure"]["held_back"] == 0
    assert "371 held back" in bounded["summary"]
