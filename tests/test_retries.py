"""Chapter 6, retries done right: transient versus permanent errors, exponential backoff with full
jitter, a retry storm against a recovering dependency, and retry topics versus per-key order.
Every figure the chapter's section states is pinned here."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib import quiz
from mqlib.core import Simulation
from mqlib.models.retries import (
    Backoff,
    Dependency,
    RetryingConsumer,
    RetryPolicy,
    RetryTopicConsumer,
)
from mqlib.scenarios.retries import ORDER_EVENTS, RetryStormRun, retry_storm, retry_topic_order
from mqlib.widgets import RetryStorm


# -- backoff and the policy -----------------------------------------------------------------------
def test_exponential_backoff_doubles_up_to_the_cap():
    backoff = Backoff(base=1.0, cap=60.0, jitter="none")
    assert [backoff.ceiling(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.ceiling(10_000) == 60  # no overflow for a huge retry number
    assert Backoff(base=0.5, cap=3, multiplier=1.0).ceiling(7) == 0.5


@settings(max_examples=200, deadline=None)
@given(retry=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_full_jitter_waits_between_zero_and_the_exponential_value(retry, seed):
    """Full jitter, as in "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015):
    sleep = random_between(0, min(cap, base * 2 ** attempt))."""
    backoff = Backoff(base=1.0, cap=60.0, jitter="full")
    delay = backoff.delay(retry, random.Random(seed))
    assert 0 <= delay <= backoff.ceiling(retry)


def test_full_jitter_spreads_the_waits_and_no_jitter_does_not():
    rng = random.Random(0)
    full = [Backoff(jitter="full").delay(4, rng) for _ in range(1000)]
    none = {Backoff(jitter="none").delay(4, rng) for _ in range(1000)}
    assert none == {8.0}
    assert 3.5 < np.mean(full) < 4.5 and min(full) < 0.5 and max(full) > 7.5


def test_permanent_errors_are_dead_lettered_at_once_transient_ones_retried():
    policy = RetryPolicy(Backoff(jitter="none"), max_attempts=4)
    rng = random.Random(0)
    first = policy.decide("permanent", 1, rng)
    assert first.action == "dead_letter" and "permanent" in first.reason
    assert [policy.decide("transient", n, rng).delay for n in (1, 2, 3)] == [1, 2, 4]
    last = policy.decide("transient", 4, rng)
    assert last.action == "dead_letter" and "4 attempts" in last.reason


def test_a_permanent_error_costs_one_attempt_in_the_storm():
    result = retry_storm("full", permanent=20)
    assert result["dead_letter_reasons"] == {"permanent": 20}
    assert result["attempts_of_permanent"] == 20  # one each, not max_attempts (10) each
    assert result["processed"] == 180


# -- the retry storm ------------------------------------------------------------------------------
def test_the_chapters_storm_figures():
    """The figures ch06 states: 200 consumers, dependency down until t=10 s, then 50 calls/s;
    backoff 1 s doubling to a 60 s cap, 10 attempts."""
    run = RetryStormRun()
    none, full = run.results["none"], run.results["full"]
    # in step: every retry of all 200 lands in the same second; the recovered dependency serves
    # 50 of them per round, so the rounds go on at t=15, 31, 63 and 123 s
    assert none["peak_after_recovery"] == 200
    assert [t for t, load in zip(none["time"], none["load"], strict=True) if load] == [
        0,
        1,
        3,
        7,
        15,
        31,
        63,
        123,
    ]
    assert [none["load"][t] for t in (15, 31, 63, 123)] == [200, 150, 100, 50]
    assert [none["served"][t] for t in (15, 31, 63, 123)] == [50, 50, 50, 50]
    assert none["recovered_at"] == 123.0
    assert none["refused_after_recovery"] == 300
    # full jitter: the same 200 retries spread out, never above capacity once it is back
    assert full["peak_after_recovery"] == 30
    assert full["refused_after_recovery"] == 0
    assert round(full["recovered_at"], 1) == 51.8
    assert round(run.peak_ratio, 1) == 6.7
    # the spike at t=0 belongs to the outage: with jitter most first retries land in second 0
    assert none["load"][0] == 200 and full["load"][0] == 451
    assert sum(none["served"][:10]) == sum(full["served"][:10]) == 0
    assert none["processed"] == full["processed"] == 200
    assert none["dead_lettered"] == full["dead_lettered"] == 0
    assert (none["calls"], full["calls"]) == (1300, 1206)


@pytest.mark.parametrize("seed", range(20))
def test_jitter_lowers_the_peak_at_least_five_fold_for_any_seed(seed):
    run = RetryStormRun(seed=seed)
    assert run.peak_ratio >= 5
    assert run.results["full"]["peak_after_recovery"] <= run.settings["capacity"]
    assert run.results["full"]["refused_after_recovery"] == 0
    assert run.results["full"]["recovered_at"] < run.results["none"]["recovered_at"]


def test_jitter_is_not_always_sooner_with_few_consumers():
    """100 consumers: in step, two rounds of 50 finish at t=31 s; jitter spreads retries over
    windows of up to 32 s, so the last one finishes later. Jitter buys a lower peak, not speed."""
    run = RetryStormRun(consumers=100)
    assert run.results["none"]["recovered_at"] == 31.0
    assert run.results["full"]["recovered_at"] > 31.0
    assert run.results["none"]["peak_after_recovery"] == 100


def test_a_retry_budget_shorter_than_the_outage_dead_letters_healthy_messages():
    """max_attempts=5: in step the fifth attempt is at t=15 s, after the recovery, and 50 get
    through; jittered waits are shorter on average, so more attempts fall in the outage."""
    none = retry_storm("none", max_attempts=5)
    full = retry_storm("full", max_attempts=5)
    assert none["dead_letter_reasons"] == {"retries exhausted": 150}
    assert full["dead_letter_reasons"] == {"retries exhausted": 167}


@settings(max_examples=150, deadline=None)
@given(
    jitter=st.sampled_from(["none", "full"]),
    consumers=st.integers(1, 250),
    recovers_at=st.sampled_from([0.0, 0.5, 1.0, 2.999, 10.0, 33.3]),
    capacity=st.integers(1, 80),
    base=st.sampled_from([0.1, 0.25, 1.0, 3.0]),
    cap=st.sampled_from([3.0, 5.0, 60.0]),
    max_attempts=st.integers(1, 30),
    permanent_share=st.sampled_from([0.0, 0.0, 0.1, 1.0]),
    seed=st.integers(0, 1000),
)
def test_the_storm_loop_plays_exactly_what_retrying_consumers_do_on_the_engine(
    jitter, consumers, recovers_at, capacity, base, cap, max_attempts, permanent_share, seed
):
    """retry_storm plays RetryingConsumer's loop without the event engine (a slider move plays
    two storms): one heap entry per consumer with jitter, one per wave without; every call,
    draw and count must be the engine's."""
    from mqlib.scenarios.retries import _retry_storm_on_the_engine

    settings_ = {
        "consumers": consumers,
        "recovers_at": recovers_at,
        "capacity": capacity,
        "base": base,
        "cap": max(cap, base),
        "max_attempts": max_attempts,
        "permanent": int(consumers * permanent_share),
        "seed": seed,
    }
    assert retry_storm(jitter, **settings_) == _retry_storm_on_the_engine(jitter, **settings_)


def test_same_seed_same_storm():
    assert retry_storm("full", seed=3) == retry_storm("full", seed=3)
    assert retry_storm("full", seed=3) != retry_storm("full", seed=4)


def test_the_dependency_serves_capacity_per_window_and_nothing_while_down():
    sim = Simulation()
    dependency = Dependency(sim, recovers_at=1.0, capacity=2)
    assert [dependency.call("x") for _ in range(3)] == [False] * 3
    sim.advance(1.0)
    assert [dependency.call("x") for _ in range(3)] == [True, True, False]
    assert dependency.calls == {0: 3, 1: 3} and dependency.served == {1: 2}


def test_a_retrying_consumer_on_its_own():
    sim = Simulation()
    dependency = Dependency(sim, recovers_at=5.0, capacity=10)
    consumer = RetryingConsumer(sim, "c", dependency, RetryPolicy(Backoff(jitter="none")))
    sim.run()
    assert (consumer.outcome, consumer.attempts, consumer.finished_at) == ("processed", 4, 7.0)


# -- retry topics and order -----------------------------------------------------------------------
def test_a_retry_topic_lets_later_records_of_the_key_overtake():
    result = retry_topic_order("retry_topic")
    assert result["order"]["order-42"] == ["created", "shipped", "paid"]
    assert result["violations"] == ["order-42"]
    assert result["finished_at"] == 9.0


def test_a_blocking_retry_keeps_order_and_stalls_the_partition():
    result = retry_topic_order("blocking")
    assert result["violations"] == []
    assert result["finished_at"] == 14.0  # 8 records + 5 s wait + 1 s retry
    in_order = retry_topic_order("blocking", fails_once=())
    assert in_order["finished_at"] == 8.0


def test_every_key_keeps_its_order_when_nothing_fails():
    for mode in ("retry_topic", "blocking"):
        assert retry_topic_order(mode, fails_once=())["violations"] == []
    assert len(retry_topic_order()["log"]) == len(ORDER_EVENTS)


# -- the widget -----------------------------------------------------------------------------------
def test_the_widget_opens_populated_and_its_controls_replay_the_storm():
    view = RetryStorm()
    assert view.summary() == RetryStormRun().summary()
    assert max(view.in_step_mark.y) == 200
    after = [y for x, y in zip(view.jittered_mark.x, view.jittered_mark.y, strict=True) if x >= 10]
    assert 0 < max(after) == 30 < 50
    assert list(view.capacity_mark.y) == [50.0, 50.0] and view.capacity_mark.x[0] == 10.0
    assert "6.7 times higher" in view.table.value
    view.consumers_control.value = 400
    assert view.run.settings["consumers"] == 400 and max(view.in_step_mark.y) == 400
    view.configure(capacity=100)
    assert view.capacity_control.value == 100
    assert view._repr_mimebundle_()["text/plain"] == view.summary()


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Backoff(base=0), "base must be > 0"),
        (lambda: Backoff(base=2, cap=1), "cap must be >= base"),
        (lambda: Backoff(jitter="equal"), "jitter must be one of 'none', 'full'"),
        (lambda: Backoff(multiplier=0.5), "multiplier must be >= 1.0"),
        (lambda: Backoff().ceiling(0), "retry must be >= 1"),
        (lambda: RetryPolicy(backoff=3), "backoff must be a Backoff"),
        (lambda: RetryPolicy(max_attempts=0), "max_attempts must be >= 1"),
        (lambda: RetryPolicy().decide("flaky", 1, random.Random()), "error must be one of"),
        (lambda: Dependency("sim"), "sim must be an mqlib Simulation"),
        (lambda: Dependency(Simulation(), capacity=0), "capacity must be >= 1"),
        (lambda: retry_storm("half"), "jitter must be one of"),
        (lambda: retry_storm(consumers=0), "consumers must be >= 1"),
        (lambda: retry_storm(permanent=300), "permanent must be <= 200"),
        (lambda: RetryStormRun(workers=3), "unknown setting"),
        (lambda: RetryStormRun(recovers_at=-1), "recovers_at must be >= 0"),
        (lambda: retry_topic_order("skip"), "mode must be one of"),
        (lambda: retry_topic_order(fails_once=(99,)), "fails_once must be <= 7"),
        (lambda: RetryTopicConsumer(Simulation(), ["a"]), "records must be a list of"),
        (lambda: RetryStorm("run"), "run must be a RetryStormRun"),
        (
            lambda: RetryingConsumer(Simulation(), "c", None, RetryPolicy()),
            "dependency must be a Dependency",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_a_failed_configure_keeps_the_previous_results():
    run = RetryStormRun()
    before = run.summary()
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        run.configure(capacity=0)
    assert run.summary() == before and run.settings["capacity"] == 50


def test_quiz_numeric_answers_are_the_engines():
    bank = quiz.load("ch06")
    numeric = {q["question"]: q for q in bank if q["type"] == "numeric"}
    storm = next(q for text, q in numeric.items() if "RetryStormRun()" in text)
    run = RetryStormRun()
    right = next(a["value"] for a in storm["answers"] if a.get("correct"))
    assert right == run.results["none"]["recovered_at"] == 123
    wrong = {a["value"] for a in storm["answers"] if a.get("type") == "value"} - {123}
    assert wrong == {15, 10, round(run.results["full"]["recovered_at"])}
    assert "51.8 s" in next(a["feedback"] for a in storm["answers"] if a.get("value") == 52)
    order = next(q for q in bank if "retry topic read 5 s later" in q["question"])
    correct = next(a for a in order["answers"] if a["correct"])
    result = retry_topic_order("retry_topic")
    assert " -> ".join(result["order"]["order-42"]) == "created -> shipped -> paid"
    assert correct["answer"].startswith("created, shipped, paid")
    assert "14 s instead of 8 s" in correct["feedback"]
    assert retry_topic_order("blocking")["finished_at"] == 14.0


def test_the_widget_fits_and_its_table_and_slider_names_read_apart():
    view = RetryStorm()
    assert view.figure.layout.height == "290px"
    sliders = [view.consumers_control, view.recovers_control, view.capacity_control]
    sliders += [view.attempts_control, view.cap_control]
    assert {s.style.description_width for s in sliders} == {"105px"}  # no "backoff ca…"
    table = view.table.value
    assert table.count("<th style='padding:1px 14px") == 6
    assert table.count("text-align:right") == 5 + 2 * 5  # the numeric headings and figures
    assert (view.recovers_control.readout_format, view.cap_control.readout_format) == (".0f",) * 2
    (sentence,) = view.describe_charts()
    assert "in step the load after recovery peaks at 200" in sentence
    assert "with full jitter it peaks at 30" in sentence


def test_a_storm_of_permanent_errors_only_makes_no_call_and_dead_letters_all():
    """Every message permanent: nothing is worth calling the dependency for (it used to crash on
    max() of no calls)."""
    from mqlib.scenarios.retries import retry_storm

    result = retry_storm(consumers=5, permanent=5)
    assert result["calls"] == 0 and result["processed"] == 0
    assert result["dead_lettered"] == 5
    assert result["peak_after_recovery"] == 0 and result["recovered_at"] == 0.0
