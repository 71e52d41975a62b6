"""Flow control at the consumer (chapter 5): prefetch windows, redelivery after a crash, lag in
seconds and lag alerts. Every number the chapter's flow-control section states is pinned here."""

import doctest

import pytest

import mqlib.models.flow_control as flow_module
from mqlib import quiz
from mqlib.core import Simulation
from mqlib.models.flow_control import (
    PrefetchQueue,
    first_fixed_alert,
    first_trend_alert,
    lag_seconds,
    lag_timeline,
    run_prefetch,
)
from mqlib.scenarios.flow_control import compare_alerts, compare_prefetch, crash_requeue


def test_the_docstring_examples():
    assert doctest.testmod(flow_module).failed == 0


def test_the_prefetch_table():
    rows = {r["prefetch"]: r for r in compare_prefetch()}
    got = {p: (r["A"], r["B"], r["C"], r["finished_at"]) for p, r in rows.items()}
    assert got == {
        1: (138, 137, 25, 27.55),  # every message waits for a round trip
        2: (142, 142, 16, 16.05),
        10: (139, 139, 22, 22.05),
        100: (100, 100, 100, 100.05),  # the slow consumer hoards a third of the queue
    }
    assert round(rows[1]["fast_busy"], 2) == 0.50
    assert round(rows[100]["fast_busy"], 2) == 0.10
    assert rows[100]["slow_share"] == pytest.approx(1 / 3)


def test_a_window_caps_what_each_consumer_holds():
    for prefetch in (1, 2, 10):
        result = run_prefetch(prefetch=prefetch)
        assert max(result.max_unacked.values()) == prefetch
    unlimited = run_prefetch(prefetch=0)  # RabbitMQ: 0 means no limit
    assert unlimited.max_unacked == {"A": 100, "B": 100, "C": 100}
    assert sum(unlimited.processed.values()) == 300


def test_a_crash_requeues_the_whole_window():
    """RabbitMQ requeues a closed channel's unacknowledged deliveries: the larger the window, the
    more comes back. Source: RabbitMQ docs, "Consumer Acknowledgements and Publisher Confirms"
    (automatic requeueing) and "Consumer Prefetch"."""
    rows = {r["prefetch"]: r for r in crash_requeue()}
    assert {p: r["requeued"] for p, r in rows.items()} == {1: 1, 2: 2, 10: 10, 100: 96}
    assert all(r["processed_twice"] == 0 for r in rows.values())  # C had acked what it did
    result = run_prefetch(prefetch=100, crash=("C", 5.0))
    assert sum(result.processed.values()) == 300 and result.processed["C"] == 4


def test_a_crash_between_processing_and_the_ack_processes_a_message_twice():
    # C finishes message 3 at 1.05 s; its ack would reach the broker at 1.10 s.
    result = run_prefetch(prefetch=1, crash=("C", 1.07))
    assert result.processed_twice == 1
    assert sum(result.processed.values()) == 301


def test_lag_in_seconds_is_lag_divided_by_the_consume_rate():
    assert lag_seconds(50_000, 1_000) == 50.0
    assert lag_seconds(50_000, 50) == 1000.0
    timeline = lag_timeline([(120, 1_500)], consumer_rate=1_000, sample_every=60)
    assert timeline["lag"] == [0.0, 30_000.0, 60_000.0]
    assert timeline["lag_seconds"] == [0.0, 30.0, 60.0]


def test_alerting_on_the_trend_beats_a_fixed_count():
    rows = {r["case"]: r for r in compare_alerts()}
    burst, leak = rows["burst"], rows["slow leak"]
    # The burst: one minute at 3,000/s. 120,000 behind (two minutes of work), drained by itself.
    assert (burst["peak_lag"], burst["peak_lag_seconds"], burst["end_lag"]) == (120_000, 120.0, 0)
    assert burst["fixed_alert_at"] == 660.0  # a page for something that fixes itself
    assert burst["trend_alert_at"] is None
    timeline = burst["timeline"]
    pairs = zip(timeline["time"], timeline["lag"], strict=True)
    drained = next(t for t, lag in pairs if t > 660 and lag == 0)
    assert drained == 1260.0  # "drained by itself ten minutes later": 120,000 at 200/s
    # The leak: 2 % too much traffic. The fixed alert waits 84 minutes; the trend alert 10.
    assert (leak["peak_lag"], leak["end_lag"]) == (144_000, 144_000)
    assert leak["fixed_alert_at"] == 5040.0
    assert leak["trend_alert_at"] == 600.0
    at = leak["timeline"]["time"].index(600.0)
    assert leak["timeline"]["lag"][at] == 12_000.0  # 12 s of work when the trend alert fires


def test_alert_helpers_on_a_hand_made_timeline():
    timeline = {"time": [0, 60, 120, 180], "lag": [0, 5, 3, 9]}
    assert first_fixed_alert(timeline, 4) == 60
    assert first_fixed_alert(timeline, 9) is None
    assert first_trend_alert(timeline, 1) == 60
    assert first_trend_alert(timeline, 2) is None


def test_the_quiz_numbers_are_what_the_engine_computes():
    questions = quiz.load("ch05")
    by_text = {q["question"]: q for q in questions}
    prefetch_q = next(q for t, q in by_text.items() if "prefetch count of 100" in t)
    right = next(a["value"] for a in prefetch_q["answers"] if a.get("correct"))
    assert right == next(r for r in compare_prefetch() if r["prefetch"] == 100)["C"] == 100
    requeue_q = next(q for t, q in by_text.items() if "crashes 5 seconds in" in t)
    right = next(a["value"] for a in requeue_q["answers"] if a.get("correct"))
    assert right == next(r for r in crash_requeue() if r["prefetch"] == 100)["requeued"] == 96


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: run_prefetch(prefetch=-1), ValueError, "prefetch must be >= 0"),
        (lambda: run_prefetch(messages=0), ValueError, "messages must be >= 1"),
        (lambda: run_prefetch({"A": 0}), ValueError, "processing_time must be > 0"),
        (lambda: run_prefetch(crash=("Z", 1.0)), ValueError, "crash consumer must be one of"),
        (lambda: run_prefetch(crash="C"), TypeError, "crash must be a"),
        (lambda: PrefetchQueue(Simulation(), {}), ValueError, "consumers must be a non-empty"),
        (lambda: PrefetchQueue("sim", {"A": 1.0}), TypeError, "sim must be an mqlib Simulation"),
        (lambda: lag_seconds(-1, 10), ValueError, "lag must be >= 0"),
        (lambda: lag_seconds(10, 0), ValueError, "consume_rate must be > 0"),
        (lambda: lag_timeline([]), ValueError, "phases must not be empty"),
        (lambda: lag_timeline([(10,)]), TypeError, "phases must contain"),
        (lambda: first_trend_alert({"time": [0], "lag": [0]}, 0), ValueError, "samples"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_crashing_twice_is_refused():
    queue = PrefetchQueue(Simulation(), {"A": 1.0, "B": 1.0}, prefetch=2)
    queue.publish(4)
    assert queue.crash("A") == 2
    with pytest.raises(ValueError, match="already crashed"):
        queue.crash("A")
