"""Chapter 5's view driven headless, as its controls would be, and every number the chapter's
prose and quiz state computed by the engine."""

import html

import numpy as np
import pytest

from mqlib import quiz
from mqlib.models.backpressure import consumer_lag
from mqlib.scenarios.backpressure import (
    BackpressureRun,
    LargeScaleRun,
    compare_modes,
    default_run,
    lesson_backlog,
)
from mqlib.widgets import Backpressure


def ys(mark):
    return np.asarray(mark.y, dtype=float).tolist()


def xs(mark):
    return np.asarray(mark.x, dtype=float).tolist()


def drawn_line(view, key):
    """The values the chart's ``key`` line draws at each sample time of the run's series
    (step-after, linear for the rates): the view sends only the points where a line changes."""
    mark, times = view.marks[key], np.asarray(view.run.series["time"], dtype=float)
    x, y = np.asarray(mark.x, dtype=float), np.asarray(mark.y, dtype=float)
    if key.endswith("_rate"):
        return np.interp(times, x, y)
    return y[np.searchsorted(x, times, side="right") - 1]


def test_opens_on_the_populated_blocking_default_run():
    view = Backpressure()
    assert (
        view.summary()
        == default_run().summary()
        == (
            "t=30s [block]: producer 10/s, produced 81, consumed 60, depth 20, lag 21, "
            "rejected 0, dropped 0 low / 0 high, held back 219; "
            "1 consumers (0 idle) on 1 partitions"
        )
    )
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    assert "depth 20" in view.summary_label.value
    series = view.run.series
    assert len(series["time"]) == 31  # one sample a second, never an empty chart
    for key in ("depth", "lag", "producer_rate", "consumer_rate", "rejected", "dropped"):
        assert drawn_line(view, key).tolist() == series[key]  # every sample, as drawn
        assert xs(view.marks[key])[0] == 0.0 and xs(view.marks[key])[-1] == series["time"][-1]
    assert max(ys(view.marks["depth"])) == 20  # the bound holds
    assert drawn_line(view, "producer_rate")[-5:-1].tolist() == [2.0] * 4  # the consumer's rate
    assert view.limit() == ("capacity", 20)
    assert ys(view.marks["limit"]) == [20.0, 20.0] and view.marks["limit"].visible
    assert xs(view.marks["limit"]) == [0.0, view.x_scale.max]  # across the chart
    assert view.mode_control.value == "block"
    assert (view.rate_control.value, view.consumer_rate_control.value) == (10.0, 2.0)
    assert view.partition_control.value == 1 and view.capacity_control.value == 20
    assert not view.capacity_control.disabled and view.shed_control.disabled
    assert view.queue_scale.max > 21 and view.x_scale.max > 30  # room above and right


def test_mode_buttons_switch_the_policy():
    view = Backpressure()
    view.mode_control.value = "unbounded"  # as a click would
    assert view.run.broker.mode == "unbounded" and view.limit() is None
    assert not view.marks["limit"].visible
    view.buttons["Advance 60 s"].click()
    assert view.run.broker.depth > 400
    assert view.summary().startswith("t=90s [unbounded]")
    deep = view.run.broker.depth
    view.mode_control.value = "reject"
    view.buttons["Advance 60 s"].click()
    # a queue already above the bound only drains: every publish meanwhile is refused
    assert view.run.broker.depth == deep - 120
    assert view.run.state()["rejected"] > 0
    assert ys(view.marks["rejected"])[-1] == view.run.state()["rejected"]
    view.mode_control.value = "shed"
    assert view.limit() == ("shed threshold", 10) and not view.shed_control.disabled
    view.shed_control.value = 5
    assert view.run.broker.shed_threshold == 5
    view.mode_control.value = "rate_limit"
    view.lag_control.value = 30
    assert (
        view.limit() == ("lag threshold", 30) == ("lag threshold", view.run.producer.lag_threshold)
    )


def test_reject_loses_and_block_does_not():
    rejecting = Backpressure()
    rejecting.set_mode("reject")
    rejecting.advance(30)
    assert rejecting.summary() == (
        "t=60s [reject]: producer 10/s, produced 141, consumed 120, depth 20, lag 21, "
        "rejected 240, dropped 0 low / 0 high, held back 219; 1 consumers (0 idle) on 1 partitions"
    )
    blocking = Backpressure()
    blocking.advance(30)
    s = blocking.run.state()
    assert s["rejected"] == 0 and s["dropped"] == {"high": 0, "low": 0}
    assert max(ys(blocking.marks["depth"])) == 20


def test_rate_sliders_and_consumer_buttons_drive_the_engine():
    view = Backpressure()
    view.rate_control.value = 4.0
    view.consumer_rate_control.value = 3.0
    assert view.run.producer.rate == 4.0 and view.run.consumer_rate == 3.0
    view.capacity_control.value = 50
    assert view.run.broker.capacity == 50
    view.add_button.click()
    assert list(view.run.consumers) == ["A", "B"]
    assert "idle: B" in view.consumer_label.value  # one partition: the new one has nothing
    view.advance(10)
    assert view.run.consumers["B"].consumed == 0
    view.remove_button.click()
    assert list(view.run.consumers) == ["A"]
    view.remove_consumer()
    assert view.remove_button.disabled
    view.buttons["Advance 1 s"].click()
    assert "0 consumers" in view.summary()


def test_partitions_start_over_keeping_the_settings_and_let_consumers_scale():
    view = Backpressure()
    view.set_mode("unbounded")
    view.set_consumer_rate(2)
    for _ in range(4):
        view.add_consumer()
    view.partition_control.value = 5  # starts over at t=0 with 5 partitions
    assert view.run.now == 0 and view.run.broker.partition_count == 5
    assert len(view.run.consumers) == 5 and view.run.broker.mode == "unbounded"
    view.buttons["Advance 60 s"].click()
    assert view.run.broker.lag <= 10  # five consumers at 2/s keep up with 10/s
    assert "5 consumers (0 idle) on 5 partitions" in view.summary()
    view.buttons["Start over"].click()
    assert view.run.now == 0 and view.run.broker.partition_count == 5


def test_methods_validate_before_touching_controls():
    view = Backpressure()
    with pytest.raises(ValueError, match="mode must be one of"):
        view.set_mode("panic")
    with pytest.raises(ValueError, match="rate"):
        view.set_rate(-1)
    with pytest.raises(ValueError, match="rate"):
        view.set_consumer_rate(0)
    with pytest.raises(ValueError, match="capacity"):
        view.set_capacity(0)
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        view.set_partitions(0)
    with pytest.raises(TypeError, match="run must be a BackpressureRun"):
        Backpressure(run="default")
    assert view.summary() == default_run().summary()  # refused values changed nothing
    assert (view.rate_control.value, view.partition_control.value) == (10.0, 1)
    view.set_rate(80)  # beyond the slider: the slider grows instead of clamping
    assert view.rate_control.value == 80 and view.rate_control.max >= 80
    view.set_capacity(500)
    assert view.capacity_control.value == 500


def test_a_scripted_run_is_shown_as_given():
    run = BackpressureRun(rate=40, consumer_rate=12, consumers=3, partitions=12, capacity=150)
    run.advance(5)
    view = Backpressure(run)
    assert view.rate_control.value == 40 and view.consumer_rate_control.value == 12
    assert view.partition_control.value == 12 and view.capacity_control.value == 150
    assert view.summary() == run.summary()


# -- the numbers the chapter's prose and quiz state ---------------------------------------------


def test_the_chapters_numbers():
    assert consumer_lag(500_000, 450_000) == 50_000
    assert lesson_backlog() == {
        "growth_per_second": 9_000,
        "after_10_minutes": 5_400_000,
        "after_1_hour": 32_400_000,
    }
    results = compare_modes(seconds=60, rate=10, consumer_rate=2, capacity=20)
    table = {
        mode: (
            r["state"]["attempted"],
            r["state"]["produced"],
            r["state"]["consumed"],
            r["state"]["max_depth"],
            r["state"]["rejected"],
            r["state"]["dropped"]["low"],
            r["state"]["dropped"]["high"],
        )
        for mode, r in results.items()
    }
    assert table == {
        # 60 s include the instant t=60 (the engine's rule): 601 sends at 10/s from t=0 on
        "unbounded": (601, 601, 120, 480, 0, 0, 0),
        "block": (141, 141, 120, 20, 0, 0, 0),
        "reject": (601, 141, 120, 20, 460, 0, 0),
        "rate_limit": (130, 130, 120, 10, 0, 0, 0),
        "shed": (601, 306, 120, 186, 0, 295, 0),
    }
    hour = {}
    for mode in ("block", "reject", "shed"):
        run = LargeScaleRun(mode=mode)
        run.advance(3600)
        hour[mode] = run.state()
    assert hour["block"]["held_back"] == hour["reject"]["rejected"] == 31_401_000
    assert hour["shed"]["dropped"] == {"high": 0, "low": 17_945_000}
    assert hour["shed"]["lag"] == 14_455_000
    lags = {}
    for partitions, consumers, each in ((4, 4, 1000), (4, 8, 1000), (10, 10, 1000), (4, 4, 2500)):
        run = LargeScaleRun(partitions=partitions, consumers=consumers, consumer_rate=each)
        run.advance(600)
        lags[(partitions, consumers, each)] = (run.lag, run.state()["idle_consumers"])
    assert lags == {
        (4, 4, 1000): (3_600_000, 0),
        (4, 8, 1000): (3_600_000, 4),
        (10, 10, 1000): (0, 0),
        (4, 4, 2500): (0, 0),
    }


def answer(index):
    question = quiz.load("ch05")[index]
    if question["type"] == "numeric":
        return next(a["value"] for a in question["answers"] if a.get("correct"))
    return next(a["answer"] for a in question["answers"] if a.get("correct"))


def test_quiz_answers_are_what_the_engine_computes():
    assert len(quiz.load("ch05")) == 12  # 5 here; the flow-control and real-broker ones are
    # pinned in test_flow_control.py and test_backpressure.py
    # 1. lag growing on 4 partitions / 4 consumers: partitions and consumers together
    assert answer(0).startswith("Add partitions and consumers together")
    more_consumers = LargeScaleRun(partitions=4, consumers=8)
    together = LargeScaleRun(partitions=10, consumers=10)
    for run in (more_consumers, together):
        run.advance(600)
    assert more_consumers.lag == 3_600_000 and more_consumers.state()["idle_consumers"] == 4
    assert together.lag == 0
    # 2. 10,000 in, 1,000 out, 10 minutes
    assert answer(1) == lesson_backlog()["after_10_minutes"] == 5_400_000
    # 3. the worked lag example
    assert answer(2) == consumer_lag(500_000, 450_000) == 50_000
    # 4. 4 partitions, 6 consumers at 1,000/s, producer 10,000/s: growth per second
    six = LargeScaleRun(partitions=4, consumers=6)
    six.advance(1)
    assert answer(3) == six.lag == 6_000
    # 5. the comparison: block loses nothing, shedding only low and the queue still grows
    results = compare_modes(seconds=60, rate=10, consumer_rate=2, capacity=20)
    block, shed, reject = (results[m]["state"] for m in ("block", "shed", "reject"))
    assert block["max_depth"] <= 20 and block["rejected"] == 0 and block["dropped"]["low"] == 0
    assert shed["dropped"] == {"high": 0, "low": 295} and shed["depth"] == 185
    assert reject["rejected"] == 460
    assert {r["state"]["consumed"] for r in results.values()} == {120}
    assert "185 waiting" in answer(4)


# -- what the learner sees (issue 14) -------------------------------------------------------------
def _round(ticks) -> bool:
    ticks = [int(t) for t in ticks]
    steps = set(np.diff(ticks).tolist())
    return (
        ticks[0] == 0
        and len(steps) == 1
        and str(steps.pop()).rstrip("0") in ("1", "2", "5")
        and len(ticks) <= 8
    )


@pytest.mark.parametrize("seconds", [0, 30, 77, 158, 600, 3600])
def test_every_axis_has_round_ticks_from_zero(seconds):
    view = Backpressure(BackpressureRun(mode="unbounded")) if seconds else Backpressure()
    if seconds:
        view.advance(seconds)
    for axis in [*view.time_axes, *view.axes.values()]:
        ticks = list(axis.tick_values)
        assert _round(ticks), ticks
        assert min(ticks) >= 0  # never a negative time or count
    assert view.x_scale.min == 0 and view.x_scale.max == view.time_axes[0].tick_values[-1]
    assert view.x_scale.max >= view.run.now


def test_the_three_charts_sit_side_by_side_at_a_readable_height():
    view = Backpressure()
    row = view.view.children[0]
    assert list(row.children) == [view.queue_figure, view.rate_figure, view.lost_figure]
    for figure in row.children:
        assert figure.layout.height == "250px"  # the lost chart too (was 190 px, 0-350 in ~90)
    view.mode_control.value = "reject"
    view.advance(60)
    ticks = list(view.axes["lost"].tick_values)
    assert 3 <= len(ticks) <= 7  # 250 px of figure: at least ~25 px between labels


def test_the_less_used_settings_are_folded_away():
    view = Backpressure()
    assert view.settings_toggle.value is False  # closed when it opens
    assert view.settings_box.layout.display == "none"
    folded = {c for box in view.settings_box.children for c in box.children}
    assert folded == {
        view.partition_control,
        view.capacity_control,
        view.lag_control,
        view.shed_control,
    }
    # what stays open: charts, legend, state line, buttons, modes, the two rate sliders
    assert len(view.view.children) == 8  # (+ the page-script loader)
    assert view.rate_control in view.view.children[5].children
    view.settings_toggle.value = True  # a click (or Enter/Space: it is a button)
    assert view.settings_box.layout.display == "" and view.settings_toggle.icon == "chevron-down"
    view.settings_toggle.value = False
    assert view.settings_box.layout.display == "none"


def test_each_chart_has_a_sentence_for_screen_readers():
    view = Backpressure()
    queue, rates, lost = view.describe_charts()
    assert "depth now 20" in queue and "capacity is 20" in queue
    assert "msg/s" in rates and "0 rejected, 0 dropped" in lost
    assert html.escape(queue, quote=True) in view.summary_label.value
