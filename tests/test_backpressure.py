"""Chapter 5: backpressure - lag, the lesson's backlog numbers, bounded queues, shedding, scaling.

Regenerate the golden trace with ``python tests/test_backpressure.py``.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib import Simulation
from mqlib.models.backpressure import (
    Backlog,
    BackpressureBroker,
    PartitionConsumer,
    RateProducer,
    consumer_lag,
)
from mqlib.scenarios.backpressure import (
    BackpressureRun,
    LargeScaleRun,
    compare_modes,
    default_large_scale_run,
    default_run,
    lesson_backlog,
)

rates = st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0])


def as_json(run):
    return json.loads(json.dumps(run.sim.trace.as_dicts()))


# -- lag ------------------------------------------------------------------------------------------
def test_lag_is_last_produced_offset_minus_last_consumed_offset():
    assert consumer_lag(500_000, 450_000) == 50_000
    assert consumer_lag(7, 7) == 0
    with pytest.raises(ValueError, match="last_consumed_offset must be <= last_produced_offset"):
        consumer_lag(3, 4)


@settings(max_examples=60, deadline=None)
@given(rate=rates, consumer_rate=rates, seconds=st.integers(1, 40))
def test_lag_in_the_model_is_produced_offset_minus_consumed_offset(rate, consumer_rate, seconds):
    run = BackpressureRun(rate=rate, consumer_rate=consumer_rate, mode="unbounded")
    run.advance(seconds)
    broker = run.broker
    assert broker.lag == consumer_lag(broker.end_offsets[0], broker.consumed_offsets[0])
    assert broker.lag == broker.produced - broker.consumed == broker.depth + broker.in_process
    # every consumed offset is the offset of the last "consume" event in the trace
    consumes = run.sim.trace.of_kind("consume")
    assert broker.consumed_offsets[0] == (consumes[-1].data["offset"] if consumes else 0)


# -- the lesson's numbers, by aggregation ---------------------------------------------------------
def test_lesson_backlog_10000_in_1000_out():
    assert lesson_backlog() == {
        "growth_per_second": 9_000,
        "after_10_minutes": 5_400_000,
        "after_1_hour": 32_400_000,
    }


def test_large_scale_run_is_exact_at_10_minutes_and_an_hour():
    run = LargeScaleRun(rate=10_000, consumer_rate=1_000)
    run.advance(600)
    assert run.lag == run.depth == 5_400_000
    assert (run.produced, run.consumed) == (6_000_000, 600_000)
    run.advance(3000)
    assert run.lag == 32_400_000
    at = dict(zip(run.series["time"], run.series["lag"], strict=True))
    assert at[600] == 5_400_000 and at[3600] == 32_400_000
    assert run.series["time"][-1] == 3600
    assert set(run.series["producer_rate"][1:]) == {10_000}
    assert set(run.series["consumer_rate"][1:]) == {1_000}
    assert default_large_scale_run().lag == 32_400_000
    assert "32,400,000 messages behind" in default_large_scale_run().summary()


def test_aggregation_carries_fractions_exactly():
    run = Backlog(rate=0.1, consumer_rate=0.03, mode="unbounded")
    run.advance(1000)
    assert (run.produced, run.consumed) == (100, 30)  # floor(n * rate), no rounding drift
    run = Backlog(rate=0.3, consumer_rate=0.25, step=0.5)
    run.advance(3000)
    assert run.offered == 900
    assert run.consumed == 750


@settings(max_examples=60, deadline=None)
@given(
    rate=st.integers(1, 20),
    consumer_rate=st.integers(1, 10),
    consumers=st.integers(0, 4),
    partitions=st.integers(1, 4),
    seconds=st.integers(1, 40),
)
def test_counting_agrees_with_following_every_message(
    rate, consumer_rate, consumers, partitions, seconds
):
    # Same unbounded run twice: message by message, and in counts per second. The per-message run
    # is looked at just after second ``seconds``, when the send due at that instant has happened
    # too: the count model counts the sends of [t, t + 1) in step t + 1.
    run = BackpressureRun(
        mode="unbounded",
        rate=rate,
        consumer_rate=consumer_rate,
        consumers=consumers,
        partitions=partitions,
    )
    run.advance(seconds + 1e-9)
    backlog = Backlog(
        mode="unbounded",
        rate=rate,
        consumer_rate=consumer_rate,
        consumers=consumers,
        partitions=partitions,
    )
    backlog.advance(seconds)
    assert run.broker.produced == backlog.produced + 1
    busy = min(consumers, partitions)
    assert run.broker.consumed <= backlog.consumed
    # When no busy consumer is starved (each gets at least its own rate from its partitions), both
    # models consume at full capacity; message by message, each consumer may still be one message
    # behind, because its first message arrives a little after t=0.
    if busy and (partitions // busy) * rate / partitions >= consumer_rate:
        assert run.broker.consumed >= backlog.consumed - busy


def test_large_scale_step_must_divide_the_time():
    run = Backlog(step=2.0)
    with pytest.raises(ValueError, match="seconds must be a whole number of steps of 2 s"):
        run.advance(3)


# -- bounded queues -------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from(["block", "reject"]),
    rate=rates,
    consumer_rate=rates,
    capacity=st.integers(1, 15),
    consumers=st.integers(0, 3),
    partitions=st.integers(1, 3),
    seconds=st.integers(1, 30),
    seed=st.integers(0, 10),
)
def test_a_bounded_queue_never_exceeds_its_capacity(
    mode, rate, consumer_rate, capacity, consumers, partitions, seconds, seed
):
    run = BackpressureRun(
        mode=mode,
        rate=rate,
        consumer_rate=consumer_rate,
        capacity=capacity,
        consumers=consumers,
        partitions=partitions,
        seed=seed,
    )
    run.advance(seconds)
    assert run.broker.max_depth <= capacity  # updated at every publish, the only way depth grows
    assert max(run.series["depth"]) <= capacity
    assert run.broker.depth <= capacity
    backlog = Backlog(
        mode=mode,
        rate=rate * 100,
        consumer_rate=consumer_rate * 10,
        capacity=capacity * 10,
        consumers=consumers,
        partitions=partitions,
    )
    backlog.advance(seconds)
    assert backlog.max_depth <= capacity * 10
    assert max(backlog.series["depth"]) <= capacity * 10


@settings(max_examples=300, deadline=None)
@given(
    rate=rates,
    consumer_rate=rates,
    capacity=st.integers(1, 15),
    consumers=st.integers(0, 3),
    seconds=st.integers(1, 30),
    seed=st.integers(0, 10),
)
def test_blocking_loses_nothing(rate, consumer_rate, capacity, consumers, seconds, seed):
    run = BackpressureRun(
        mode="block",
        rate=rate,
        consumer_rate=consumer_rate,
        capacity=capacity,
        consumers=consumers,
        seed=seed,
    )
    run.advance(seconds)
    s = run.state()
    assert s["rejected"] == 0
    assert s["dropped"] == {"high": 0, "low": 0}
    in_hand = 1 if s["producer_blocked"] else 0  # the message a blocked producer still holds
    assert s["attempted"] == s["produced"] + in_hand
    assert s["produced"] == s["consumed"] + s["depth"] + s["in_process"]
    assert not run.sim.trace.of_kind("reject", "shed")
    backlog = Backlog(
        mode="block",
        rate=rate * 1000,
        consumer_rate=consumer_rate * 1000,
        capacity=capacity * 1000,
        consumers=consumers,
    )
    backlog.advance(seconds)
    assert backlog.rejected == 0 and backlog.dropped == {"high": 0, "low": 0}
    assert backlog.produced == backlog.consumed + backlog.depth
    assert backlog.offered == backlog.produced + backlog.held_back


def test_blocking_slows_the_producer_to_the_consumers_rate():
    run = default_run()  # 10/s into one consumer doing 2/s, bounded at 20
    assert run.series["depth"][-10:] == [20] * 10
    # (the last sample also counts the send and the consume due at t=30 itself)
    assert run.series["producer_rate"][-10:-1] == [2.0] * 9
    assert run.state()["held_back"] > 200
    assert run.producer.blocked_seconds > 20


def test_reject_counts_every_refused_publish():
    run = BackpressureRun(mode="reject", rate=10, consumer_rate=2, capacity=20)
    run.advance(30)
    s = run.state()
    assert s["attempted"] == s["produced"] + s["rejected"]
    assert s["rejected"] == len(run.sim.trace.of_kind("reject")) > 200
    assert run.series["rejected"] == sorted(run.series["rejected"])  # a running total


def test_unbounded_grows_while_block_and_reject_hold_the_line():
    depths = {}
    for mode in ("unbounded", "block", "reject"):
        run = BackpressureRun(mode=mode, rate=10, consumer_rate=2, capacity=20)
        run.advance(60)
        depths[mode] = run.broker.depth
    assert depths["unbounded"] > 400
    assert depths["block"] == depths["reject"] == 20


# -- cooperative rate limiting --------------------------------------------------------------------
def test_rate_limit_throttles_the_producer_while_lag_is_above_the_threshold():
    run = BackpressureRun(
        mode="rate_limit", rate=10, consumer_rate=2, lag_threshold=10, throttled_rate=1.0
    )
    run.advance(60)
    assert max(run.series["lag"]) <= 10 + 10  # at most one second of full-rate sending above it
    late = run.series["producer_rate"][20:]
    assert sum(late) / len(late) < 2.5  # about the consumer's rate, far below 10
    assert run.state()["rejected"] == 0 and run.state()["dropped"]["low"] == 0
    unlimited = BackpressureRun(mode="unbounded", rate=10, consumer_rate=2)
    unlimited.advance(60)
    assert unlimited.broker.lag > 20 * run.broker.lag
    big = Backlog(
        mode="rate_limit",
        rate=10_000,
        consumer_rate=1_000,
        lag_threshold=50_000,
        throttled_rate=500,
    )
    big.advance(3600)
    assert big.lag <= 50_000 + 10_000
    assert max(big.series["lag"]) <= 60_000


# -- load shedding --------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    rate=rates,
    consumer_rate=rates,
    threshold=st.integers(0, 10),
    share=st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]),
    seconds=st.integers(1, 30),
    seed=st.integers(0, 20),
)
def test_shedding_drops_only_low_priority(rate, consumer_rate, threshold, share, seconds, seed):
    run = BackpressureRun(
        mode="shed",
        rate=rate,
        consumer_rate=consumer_rate,
        shed_threshold=threshold,
        low_priority_share=share,
        seed=seed,
    )
    run.advance(seconds)
    producer, broker = run.producer, run.broker
    assert broker.dropped["high"] == 0
    assert {e.data["priority"] for e in run.sim.trace.of_kind("shed")} <= {"low"}
    published = [e.data["priority"] for e in run.sim.trace.of_kind("publish")]
    assert published.count("high") == producer.attempted_by_priority["high"]
    assert published.count("low") + broker.dropped["low"] == producer.attempted_by_priority["low"]
    backlog = Backlog(
        mode="shed",
        rate=rate * 100,
        consumer_rate=consumer_rate * 100,
        shed_threshold=threshold * 100,
        low_priority_share=share,
    )
    backlog.advance(seconds)
    assert backlog.dropped["high"] == 0
    assert backlog.produced + backlog.dropped["low"] == backlog.offered


def test_shedding_keeps_the_queue_near_the_threshold_when_high_priority_fits():
    run = BackpressureRun(
        mode="shed", rate=4, consumer_rate=3, shed_threshold=10, low_priority_share=0.5, seed=1
    )
    run.advance(60)
    assert run.broker.dropped["low"] > 0
    assert max(run.series["depth"]) <= 11  # high priority alone (about 2/s) fits in 3/s


def test_same_seed_gives_every_mode_the_same_priority_mix():
    mixes = []
    for mode in ("unbounded", "shed", "reject"):
        run = BackpressureRun(mode=mode, rate=5, seed=3)
        run.advance(10)
        mixes.append(dict(run.producer.attempted_by_priority))
    assert mixes[0] == mixes[1] == mixes[2]


# -- scaling consumers ----------------------------------------------------------------------------
@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_consumers_beyond_the_partition_count_add_no_throughput(partitions):
    consumed = {}
    for consumers in range(1, 7):
        run = BackpressureRun(
            mode="unbounded", rate=20, consumer_rate=2, consumers=consumers, partitions=partitions
        )
        run.advance(30)
        consumed[consumers] = run.broker.consumed
        idle = [m for m, ps in run.broker.assignment.items() if not ps]
        assert len(idle) == max(0, consumers - partitions)
        assert all(run.consumers[m].consumed == 0 for m in idle)
    for consumers in range(1, 7):
        expected = consumed[1] * min(consumers, partitions)
        assert consumed[consumers] == pytest.approx(expected, abs=min(consumers, partitions))
    for consumers in range(1, 7):
        backlog = Backlog(
            rate=20_000, consumer_rate=2_000, consumers=consumers, partitions=partitions
        )
        backlog.advance(30)
        assert backlog.consumed == 60_000 * min(consumers, partitions)
        assert backlog.state()["idle_consumers"] == max(0, consumers - partitions)


def test_adding_and_removing_consumers_rebalances():
    run = BackpressureRun(mode="unbounded", rate=10, consumer_rate=2, partitions=2)
    run.advance(10)
    first = run.broker.consumed
    assert run.add_consumer() == "B"
    assert run.broker.assignment == {"A": [0], "B": [1]}
    run.advance(10)
    assert run.broker.consumed - first >= 2 * first - 2
    assert run.add_consumer() == "C"
    assert run.broker.assignment["C"] == []
    assert run.remove_consumer() == "C"
    assert run.remove_consumer() == "B"
    assert run.broker.assignment == {"A": [0, 1]}
    before = run.broker.consumed
    run.advance(10)
    assert run.broker.consumed - before in (19, 20, 21)
    assert "1 consumers (0 idle) on 2 partitions" in run.summary()


def test_no_consumers_means_nothing_is_consumed_and_remove_refuses():
    run = BackpressureRun(consumers=0, mode="unbounded")
    run.advance(5)
    assert run.broker.consumed == 0
    with pytest.raises(ValueError, match="no consumer left to remove"):
        run.remove_consumer()


def test_set_rate_pauses_and_resumes_at_once():
    run = BackpressureRun(rate=2, mode="unbounded")
    run.advance(5)
    run.set_rate(0)
    produced = run.broker.produced
    run.advance(10)
    assert run.broker.produced == produced
    run.set_rate(10)
    assert run.broker.produced == produced + 1  # the first send is due at once
    run.advance(1)
    assert run.broker.produced == produced + 11  # ... and ten more in the next second


def test_switching_mode_mid_run():
    run = BackpressureRun(mode="unbounded", rate=10, consumer_rate=2, capacity=20)
    run.advance(10)
    assert run.broker.depth > 20
    run.set_mode("block")
    run.advance(60)
    assert run.broker.depth == 20  # drained back to the bound and held there
    assert run.sim.trace.of_kind("mode")[0].data == {"mode": "block"}


# -- scenario plumbing ----------------------------------------------------------------------------
def test_summary_and_state_are_plain_data():
    run = default_run()
    state = run.state()
    assert json.loads(json.dumps(state)) == state
    assert run.summary().startswith("t=30s [block]: producer 10/s, produced 81")
    assert set(run.series) == {
        "time",
        "depth",
        "lag",
        "producer_rate",
        "consumer_rate",
        "dropped",
        "rejected",
    }
    assert len({len(v) for v in run.series.values()}) == 1


def test_compare_modes_side_by_side():
    results = compare_modes(seconds=30)
    assert list(results) == ["unbounded", "block", "reject", "rate_limit", "shed"]
    assert json.loads(json.dumps(results)) == results
    states = {mode: r["state"] for mode, r in results.items()}
    assert states["unbounded"]["depth"] > 200
    assert states["block"]["depth"] == states["reject"]["depth"] == 20
    assert states["reject"]["rejected"] > 0 and states["block"]["rejected"] == 0
    assert states["shed"]["dropped"]["low"] > 0 and states["shed"]["dropped"]["high"] == 0
    assert states["rate_limit"]["lag"] <= 20
    with pytest.raises(ValueError, match="modes must be one of"):
        compare_modes(["unbounded", "drop"])
    with pytest.raises(ValueError, match="mode must not be given"):
        compare_modes(mode="block")


def test_same_seed_same_trace():
    a, b = BackpressureRun(mode="shed", seed=5), BackpressureRun(mode="shed", seed=5)
    a.advance(20)
    b.advance(20)
    assert as_json(a) == as_json(b)
    c = BackpressureRun(mode="shed", seed=6)
    c.advance(20)
    assert as_json(c) != as_json(a)


# -- bad input ------------------------------------------------------------------------------------
BAD_VALUES = st.one_of(
    st.just(-1),
    st.just(-0.5),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just("fast"),
    st.just(None),
    st.just(True),
    st.just([1]),
)

CALLS = {
    "rate": lambda v: BackpressureRun(rate=v),
    "consumer_rate": lambda v: BackpressureRun(consumer_rate=v),
    "consumers": lambda v: BackpressureRun(consumers=v),
    "partitions": lambda v: BackpressureRun(partitions=v),
    "mode": lambda v: BackpressureRun(mode=v),
    "capacity": lambda v: BackpressureRun(capacity=v),
    "lag_threshold": lambda v: BackpressureRun(lag_threshold=v),
    "throttled_rate": lambda v: BackpressureRun(throttled_rate=v),
    "low_priority_share": lambda v: BackpressureRun(low_priority_share=v),
    "shed_threshold": lambda v: BackpressureRun(shed_threshold=v),
    "sample_every": lambda v: BackpressureRun(sample_every=v),
    "seed": lambda v: BackpressureRun(seed=v),
    "seconds": lambda v: BackpressureRun().advance(v),
    "step": lambda v: Backlog(step=v),
    "last_produced_offset": lambda v: consumer_lag(v, 0),
}


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(CALLS)), value=BAD_VALUES)
def test_bad_arguments_raise_errors_that_name_the_parameter(name, value):
    if name == "seed" and isinstance(value, int) and not isinstance(value, bool):
        return  # any int is a valid seed
    with pytest.raises((ValueError, TypeError), match=name):
        CALLS[name](value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.set_rate(-1), "rate must be >= 0"),
        (lambda r: r.set_consumer_rate(0), "rate must be > 0"),
        (lambda r: r.set_mode("drop-head"), "mode must be one of 'unbounded', 'block'"),
        (lambda r: r.set_capacity(0), "capacity must be >= 1"),
        (lambda r: r.set_shed_threshold(-2), "shed_threshold must be >= 0"),
        (lambda r: r.set_lag_threshold(1.5), "lag_threshold must be an integer"),
        (lambda r: r.broker.publish("urgent"), "priority must be one of 'high', 'low'"),
        (lambda r: BackpressureBroker("sim"), "sim must be an mqlib Simulation"),
        (lambda r: RateProducer(Simulation(), "broker"), "broker must be a BackpressureBroker"),
        (lambda r: PartitionConsumer(Simulation(), r.broker, ""), "name must be a non-empty"),
        (lambda r: Backlog(consumers=-1), "consumers must be >= 0"),
        (lambda r: Backlog().set_partitions(0), "partitions must be >= 1"),
        (lambda r: Backlog().set_consumer_rate(0), "consumer_rate must be > 0"),
        (lambda r: Backlog().set_mode("x"), "mode must be one of"),
        (lambda r: Backlog(low_priority_share=1.5), "low_priority_share must be <= 1"),
    ],
)
def test_bad_method_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(BackpressureRun())


def test_a_full_group_refuses_another_consumer():
    run = BackpressureRun(consumers=26)
    with pytest.raises(ValueError, match="consumers must be <= 26"):
        run.add_consumer()


def test_restarted_keeps_every_setting_but_the_changed_ones():
    run = BackpressureRun(rate=7.0, mode="shed", capacity=30, consumers=2, seed=4)
    run.advance(5)
    fresh = run.restarted(partitions=3)
    assert fresh.now == 0
    assert fresh.settings() == {**run.settings(), "partitions": 3}
    assert fresh.limit() == ("shed threshold", 10)
    with pytest.raises(ValueError, match="restarted\\(\\) takes only"):
        run.restarted(colour="red")


# -- rate limiting is not free: throttled demand is held back ----------------------------------


def test_rate_limiting_counts_the_demand_it_holds_back():
    """Throttling on lag keeps the queue short by not sending: the sends the producer wanted at
    its full rate and skipped are counted as held back, as a blocked producer's are."""
    hour = {}
    for mode in ("block", "rate_limit"):
        run = LargeScaleRun(mode=mode)
        run.advance(3600)
        hour[mode] = run.state()
    limited = hour["rate_limit"]
    assert limited["lag"] == 100_000
    assert limited["offered"] == limited["produced"] == 3_700_000
    assert limited["held_back"] == 36_000_000 - 3_700_000 == 32_300_000
    assert hour["block"]["held_back"] == 31_401_000
    run = LargeScaleRun(mode="rate_limit")
    run.advance(3600)
    assert "held back 32,300,000" in run.summary()


def test_rate_limiting_holds_back_demand_in_the_per_message_run_too():
    results = compare_modes(seconds=60, rate=10, consumer_rate=2, capacity=20)
    state = {mode: r["state"] for mode, r in results.items()}
    assert (state["rate_limit"]["attempted"], state["rate_limit"]["held_back"]) == (130, 470)
    assert (state["block"]["attempted"], state["block"]["held_back"]) == (141, 459)
    for mode in ("unbounded", "reject", "shed"):  # they send everything they want to
        assert state[mode]["attempted"] == 601 and state[mode]["held_back"] == 0
    assert "held back 470" in results["rate_limit"]["summary"]


def test_the_quiz_rate_limit_answer_is_what_the_engine_computes():
    from mqlib import quiz

    question = next(q for q in quiz.load("ch05") if "rate limiting on lag kept" in q["question"])
    right = next(a for a in question["answers"] if a["correct"])["answer"]
    state = compare_modes(seconds=60, rate=10, consumer_rate=2, capacity=20)
    limited, blocked = state["rate_limit"]["state"], state["block"]["state"]
    assert f"sent {limited['attempted']} messages" in right
    assert f"held back the other {limited['held_back']} of the 600" in right
    assert (
        str(blocked["held_back"])
        in next(a for a in question["answers"] if a["correct"])["feedback"]
    )


# -- scale (issue 13): closed forms, bounded series, bounds ---------------------------------------
def _reference(settings: dict, plan: list) -> Backlog:
    """The same run stepped one step at a time (the definition the closed forms must match)."""
    ref = Backlog(**settings)
    for action, value in plan:
        if action == "advance":
            for _ in range(value):
                ref._advance_one()
        else:
            getattr(ref, action)(value)
    return ref


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_advance_gives_exactly_the_step_by_step_counts(seed):
    import random

    from mqlib.models.backpressure import MODES

    rng = random.Random(seed)
    for _ in range(40):
        settings = {
            "rate": rng.choice([0, 1, 2.5, 3, 7, 10, 0.3, 12.25, 100, 1000.5]),
            "consumer_rate": rng.choice([0.25, 0.5, 1, 2, 2.5, 3, 7, 10]),
            "consumers": rng.randint(0, 3),
            "partitions": rng.randint(1, 3),
            "mode": rng.choice(MODES),
            "capacity": rng.randint(1, 200),
            "lag_threshold": rng.randint(0, 200),
            "throttled_rate": rng.choice([0.5, 1, 2, 5, 50]),
            "low_priority_share": rng.choice([0, 0.25, 0.3, 0.5, 1]),
            "shed_threshold": rng.randint(0, 200),
            "step": rng.choice([0.5, 1.0, 2.0]),
        }
        plan = []
        for _ in range(3):
            plan.append(("advance", rng.randint(1, 500)))
            plan.append(
                rng.choice(
                    [
                        ("set_rate", rng.choice([0, 1, 5, 20.5])),
                        ("set_mode", rng.choice(MODES)),
                        ("set_consumers", rng.randint(0, 4)),
                    ]
                )
            )
        fast = Backlog(**settings)
        for action, value in plan:
            if action == "advance":
                fast.advance(value * fast.step)
            else:
                getattr(fast, action)(value)
        assert fast.state() == _reference(settings, plan).state(), (settings, plan)


@pytest.mark.parametrize("mode", ["unbounded", "block", "reject", "rate_limit", "shed"])
def test_a_simulated_year_at_the_lessons_numbers_is_fast_and_exact(mode):
    import time

    year = 365 * 86_400
    run = LargeScaleRun(mode=mode)
    started = time.perf_counter()
    run.advance(year)
    assert time.perf_counter() - started < 1.0  # measured ~1-110 ms on 2 loaded cores
    s = run.state()
    wanted = s["offered"] + (s["held_back"] if mode == "rate_limit" else 0)
    assert wanted == 10_000 * year  # every send counted, none estimated
    assert s["consumed"] == 1_000 * year  # the consumer is never idle in these runs
    assert s["produced"] == s["consumed"] + s["depth"]
    lost = s["rejected"] + s["dropped"]["low"] + s["dropped"]["high"]
    assert s["offered"] == s["produced"] + lost + (s["held_back"] if mode == "block" else 0)
    if mode in ("block", "reject"):
        assert s["max_depth"] == 1_000_000 and s["depth"] == 999_000
    if mode == "rate_limit":
        assert s["lag"] == 100_000
    assert len(run.series["time"]) <= LargeScaleRun.SERIES_LIMIT


def test_an_hour_in_one_call_equals_an_hour_in_seconds():
    whole, stepped = LargeScaleRun(mode="rate_limit"), LargeScaleRun(mode="rate_limit")
    whole.advance(3600)
    for _ in range(3600):
        stepped.advance(1)
    assert whole.state() == stepped.state()


def test_count_model_series_stay_bounded_and_keep_the_totals():
    run = Backlog(rate=3, consumer_rate=2.5, mode="block", capacity=50)
    for _ in range(5):
        run.advance(3000)
    s = run.series
    assert len(s["time"]) <= Backlog.SERIES_LIMIT
    assert s["time"] == sorted(s["time"]) and s["time"][0] == 0 and s["time"][-1] == 15_000
    # merged rates are time-weighted means: the area under each is still the exact total
    area = sum(
        r * (t1 - t0)
        for r, t0, t1 in zip(s["producer_rate"][1:], s["time"], s["time"][1:], strict=False)
    )
    assert area == pytest.approx(run.produced)
    reference = _reference(
        {"rate": 3, "consumer_rate": 2.5, "mode": "block", "capacity": 50},
        [("advance", 15_000)],
    )
    assert reference.state() == run.state()
    assert max(s["depth"]) == max(reference.series["depth"]) == 48  # the peak survives merging


def test_per_message_series_stay_bounded_and_keep_the_totals():
    run = BackpressureRun(rate=10, consumer_rate=3, mode="unbounded")
    for _ in range(3):
        run.advance(3600)
    s = run.series
    assert len(s["time"]) <= BackpressureRun.SERIES_LIMIT
    area = sum(
        r * (t1 - t0)
        for r, t0, t1 in zip(s["consumer_rate"][1:], s["time"], s["time"][1:], strict=False)
    )
    assert area == pytest.approx(run.broker.consumed)
    assert s["lag"][-1] == run.broker.lag


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: BackpressureRun(rate=1e5, mode="reject"), "rate"),
        (lambda: BackpressureRun(consumer_rate=5_000), "consumer_rate"),
        (lambda: BackpressureRun(sample_every=1e-3), "sample_every"),
        (lambda: BackpressureRun(partitions=10**6), "partitions"),
        (lambda: BackpressureRun(capacity=10**15), "capacity"),
        (lambda: BackpressureRun().advance(86_400), "seconds"),
        (lambda: BackpressureRun(rate=1000, mode="reject").advance(3600), "seconds"),
        (lambda: LargeScaleRun().advance(10**12), "seconds"),
        (lambda: LargeScaleRun(rate=1e9), "rate"),
        (lambda: LargeScaleRun(step=1e-6), "step"),
        (lambda: LargeScaleRun(consumers=10**7), "consumers"),
        (lambda: LargeScaleRun(shed_threshold=10**15), "shed_threshold"),
    ],
)
def test_out_of_bounds_is_refused_fast_and_named(make, name):
    import time

    started = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^{name}") as error:
        make()
    assert time.perf_counter() - started < 1.0
    assert any(c.isdigit() for c in str(error.value))  # says the allowed range


def test_a_call_that_would_take_too_long_is_refused_and_changes_nothing():
    run = LargeScaleRun(rate=1 / 3, consumer_rate=0.5)  # no short common period
    run.advance(100)
    before = run.state()
    with pytest.raises(ValueError, match="seconds=31536000 is more than one call"):
        run.advance(365 * 86_400)
    assert run.state() == before
    run.advance(1000)  # shorter calls still work
    assert run.now == 1100


def test_reject_at_the_top_rate_answers_fast():
    import time

    run = BackpressureRun(rate=1000, mode="reject")
    started = time.perf_counter()
    run.advance(10)
    assert time.perf_counter() - started < 3.0  # ~0.2 s idle; loaded machines are slower
    assert run.state()["rejected"] + run.broker.produced == run.state()["attempted"] == 10_001
