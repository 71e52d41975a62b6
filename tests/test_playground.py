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
    # 5/s for 30 s: sends at 0, 0.2, ..., 30.0 (the one due at the end instant is made too)
    assert result["sent"] == 5 * 30 + 1
    assert result["processed"] == result["sent"] and result["lost"] == 0
    assert result["max_depth"] <= 3
    assert result["throughput"] == pytest.approx(5.0, abs=0.1)
    shares = result["processed_by"]
    assert (
        sum(shares.values()) == result["sent"] and max(shares.values()) - min(shares.values()) <= 1
    )


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
    assert result["lost"] == 0 and result["processed"] == result["sent"] == 5 * 30 + 1


def test_experiment_3_a_poison_pill_goes_to_the_dlq_while_others_keep_flowing():
    result = experiment_poison_pill()
    assert result["receives"] == 3
    [entry] = result["dlq"]
    assert entry["message_id"] == result["poison"]
    assert entry["receive_count"] == 3 and entry["last_error"]
    # received three times, one visibility timeout (2 s) apart, each time within a processing
    # time (0.5 s) of becoming visible; moved by the receive after the third timeout
    assert 5 + 3 * 2 <= result["dead_lettered_at"] <= 5 + 3 * 2 + 0.5
    assert result["processed_while_poison_retried"] >= 5 * 6 - 1  # the rest still ran at ~5/s


@pytest.mark.parametrize("max_receives", [1, 2, 5])
def test_experiment_3_with_other_limits(max_receives):
    result = experiment_poison_pill(max_receives=max_receives, seconds=30)
    assert result["receives"] == max_receives
    assert result["dlq"][0]["receive_count"] == max_receives


def test_experiment_4_overload_grows_without_backpressure_and_is_bounded_with_it():
    result = experiment_overload()
    without, with_bp = result["without_backpressure"], result["with_backpressure"]
    assert without["sent"] == 15 * 30 + 1  # 15/s for 30 s, both ends included, none held back
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
    assert run.producer.sent == sent + 11  # at 5.0, 5.1, ..., 6.0: both ends
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
    with pytest.raises(RuntimeError, match="every consumer is dead"):
        run.drain(limit=5)
    assert run.now == 2  # refused at once, without running to the limit


# -- scenario plumbing ----------------------------------------------------------------------------
def test_default_run_summary_state_and_series():
    run = default_run()
    assert run.summary().startswith("t=30s: rate 5/s, sent 151 + 1 poison pill, processed ")
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
    assert bounded["sent"] + bounded["held_back"] == bounded["demand"] == 15 * 30 + 1
    # the consumer takes 2/s, so the producer sends about 20 (to fill the queue) + 2/s * 30 s
    assert bounded["sent"] == pytest.approx(20 + 2 * 30, abs=2)
    assert bounded["held_back"] == bounded["demand"] - bounded["sent"]
    assert over["without_backpressure"]["held_back"] == 0
    assert f"{bounded['held_back']} held back" in bounded["summary"]


# -- backpressure ticked above the bound (issue 14) -----------------------------------------------
def overloaded(seconds=10.0):
    run = Playground(rate=15.0)
    run.kill_consumer("B")
    run.kill_consumer("C")
    run.advance(seconds)
    return run


def test_backpressure_ticked_above_capacity_drains_to_it_at_half_the_consumers_pace():
    run = overloaded()
    depth = run.queue.depth
    assert depth > run.capacity + 40  # far above the bound of 20
    run.set_backpressure(True)
    assert run.state()["draining"]
    assert "1 sent per 2 processed until the depth is down to 20" in run.summary()
    before = run.state()
    run.advance(10)
    after = run.state()
    sent = after["sent"] - before["sent"]
    processed = after["processed"] - before["processed"]
    assert processed == pytest.approx(2 * 10, abs=1)  # the one consumer, 2/s
    assert sent == processed // 2 > 0  # never blocked at 0 msg/s: one for every two processed
    assert after["depth"] == before["depth"] - (processed - sent)
    # ... until the depth is back at the bound; then one in for one out
    run.advance(((depth - run.capacity) * 2 + 4) / 2)
    assert run.queue.depth == run.capacity and not run.state()["draining"]
    before = run.state()
    run.advance(10)
    after = run.state()
    assert after["sent"] - before["sent"] == after["processed"] - before["processed"]
    assert max(run.series["depth"][-20:]) == run.capacity
    assert "over it" not in run.summary()


def test_a_capacity_lowered_below_the_depth_drains_the_same_way():
    run = Playground(rate=15.0, backpressure=True, capacity=60)
    run.kill_consumer("B")
    run.kill_consumer("C")
    run.advance(40)
    assert run.queue.depth == 60
    run.set_backpressure(True, capacity=30)
    before = run.state()
    run.advance(6)
    after = run.state()
    processed = after["processed"] - before["processed"]
    assert after["sent"] - before["sent"] == processed // 2
    assert after["depth"] < 60


def test_a_paused_producer_gets_no_more_room_than_the_drained_queue_allows():
    run = overloaded()
    run.set_backpressure(True)
    run.set_rate(0)
    run.advance(20)  # the consumer drains 40 while the producer is paused
    low = run.queue.depth
    run.set_rate(15)
    run.advance(2)
    assert run.queue.depth <= low + 1  # it does not refill the queue to where it was


# -- counts add up (issue 14) ---------------------------------------------------------------------
@pytest.mark.parametrize("pills", [0, 1, 2, 5])
def test_after_drain_sent_and_pills_equal_processed_and_dead_letters(pills):
    run = Playground()
    run.advance(20)
    for _ in range(pills):
        run.inject_poison()
        run.advance(3)
    run.fix_bug() if pills % 2 else None
    run.advance(5)
    run.drain()
    s = run.state()
    assert s["sent"] + s["injected"] == s["total_sent"] == s["processed"] + s["dlq_depth"]
    expected = f"sent {s['sent']}" + (f" + {pills} poison pill" if pills else "")
    assert expected in run.summary()


def test_a_detached_dlq_keeps_its_dead_letters_and_says_so():
    run = default_run()
    assert run.dlq.depth == 1
    run.set_dlq(False)
    assert run.state()["dlq"] is False and run.state()["dlq_depth"] == 1
    assert "DLQ off (1 dead letter kept)" in run.summary()
    assert run.series["dlq_depth"][-1] == 1


def test_fix_bug_shows_in_the_state():
    run = default_run()
    assert "bug fixed" not in run.summary()
    run.fix_bug()
    assert run.state()["bug_fixed"] and ", bug fixed;" in run.summary()


# -- bounds and scale (issue 13) ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "call", "value"),
    [
        ("rate", lambda v: Playground(rate=v), 50.5),
        ("rate", lambda v: Playground().set_rate(v), 10**6),
        ("processing_time", lambda v: Playground(processing_time=v), 0.001),
        ("processing_time", lambda v: Playground(processing_time=v), 61),
        ("visibility_timeout", lambda v: Playground(visibility_timeout=v), 0.01),
        ("visibility_timeout", lambda v: Playground(visibility_timeout=v), 10**400),
        ("max_receives", lambda v: Playground(max_receives=v), 101),
        ("max_receives", lambda v: Playground().set_max_receives(v), 0),
        ("capacity", lambda v: Playground(capacity=v), 10_001),
        ("capacity", lambda v: Playground().set_backpressure(True, v), 0),
        ("sample_every", lambda v: Playground(sample_every=v), 0.01),
        ("seconds", lambda v: Playground().advance(v), 1e8),
        ("limit", lambda v: Playground().drain(v), 3601),
        ("seconds", lambda v: experiment_normal_flow(seconds=v), 3601),
        ("kill_at", lambda v: experiment_kill_consumer(kill_at=v), 30),
        ("inject_at", lambda v: experiment_poison_pill(inject_at=v), 25),
        ("rate", lambda v: experiment_overload(rate=v), 1e5),
    ],
)
def test_every_setting_has_bounds_named_in_the_error(name, call, value):
    with pytest.raises(ValueError, match=name) as error:
        call(value)
    assert "must be" in str(error.value)


def test_advance_refuses_a_step_whose_work_is_too_large_and_names_the_limit():
    run = Playground(rate=50.0, processing_time=0.01)
    longest = run.longest_advance()
    assert 60 < longest < 3600
    with pytest.raises(ValueError, match=r"seconds must be <= .* smaller steps"):
        run.advance(longest * 1.5)
    run.advance(min(longest, 60))  # a step within it is fine


def test_series_stay_bounded_and_counters_exact_over_hours():
    from mqlib.scenarios.playground import MAX_POINTS

    run = Playground(rate=20.0, max_receives=10, backpressure=True, capacity=100)
    for _ in range(60 * 3):
        run.advance(60)
    s = run.series
    assert len(s["time"]) <= MAX_POINTS
    assert len({len(v) for v in s.values()}) == 1
    assert s["time"][-1] == run.now == 3 * 3600
    assert s["processed"][-1] == run.queue.acked_count and s["sent"][-1] == run.producer.sent
    assert s["time"] == sorted(s["time"])
    # evenly spaced, one point per resolution-long interval (the newest point aside)
    gaps = {round(b - a, 6) for a, b in zip(s["time"][:-2], s["time"][1:-1], strict=True)}
    assert gaps == {run.resolution}
    # rates are recomputed between kept points: they match the counters
    i = len(s["time"]) // 2
    dt = s["time"][i] - s["time"][i - 1]
    assert s["throughput"][i] == pytest.approx((s["processed"][i] - s["processed"][i - 1]) / dt)
    assert max(s["depth"]) <= 100
