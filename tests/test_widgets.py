"""Drive each simulation headless, as its buttons would; check what its chart and summary show."""

import html
import re

import numpy as np
import pytest

from mqlib.scenarios.point_to_point import PointToPointRun
from mqlib.widgets import PointToPoint, SyncVsAsync


def descendants(widget):
    """Every widget inside ``widget`` (depth first, in display order)."""
    for child in getattr(widget, "children", ()):
        yield child
        yield from descendants(child)


def segments(mark):
    x = np.atleast_2d(np.asarray(mark.x, dtype=float))
    y = np.atleast_2d(np.asarray(mark.y, dtype=float))
    return [(tuple(a), tuple(b)) for a, b in zip(x, y, strict=True)]


def test_sync_vs_async_opens_on_the_lessons_synchronous_failure():
    view = SyncVsAsync()
    work = segments(view.work_mark)
    # order service, payment, inventory, email, then the warehouse timeout in red
    assert [x for x, _ in work] == [(0, 50), (50, 250), (250, 280), (280, 3280), (3280, 8280)]
    assert view.work_mark.colors[-1] == "#D55E00"
    assert list(view.user_mark.x) == [8280, 8280]
    assert list(view.status_label.text) == ["never called"]  # the analytics row
    assert list(view.status_label.y) == [5]
    assert view.summary().startswith("Synchronous: the user waited 8,280 ms and saw an error.")
    assert "Inconsistent" in view.summary_label.value
    assert "text/plain" in view._repr_mimebundle_()


def test_switching_to_async_moves_the_users_answer_and_queues_the_warehouse_event():
    view = SyncVsAsync()
    view.mode_control.value = "async"  # as a click on the toggle would
    assert view.result.user_wait_ms == 55
    assert list(view.user_mark.x) == [55, 55]
    waiting = segments(view.waiting_mark)
    assert waiting == [((55.0, 6000.0), (4.0, 4.0))]  # warehouse row waits until it recovers
    view.set_latency("email", 6000)
    assert view.result.user_wait_ms == 55
    assert view.latency_controls["email"].value == 6000
    assert "processed at 6,100 ms" in view.summary()


def test_controls_and_methods_stay_in_step():
    view = SyncVsAsync()
    view.down_controls["warehouse"].value = False
    assert view.result.outcome == "confirmed"
    view.set_down("analytics", True)
    assert view.down_controls["analytics"].value is True
    assert view.result.step("analytics").status == "timeout"
    view.timeout_control.value = 2000
    assert view.result.user_wait_ms == 50 + 200 + 30 + 2000  # email now times out
    view.set_timeout(20000)  # beyond the slider: the slider grows instead of clamping
    assert view.timeout_control.value == 20000
    with pytest.raises(ValueError, match="service must be one of"):
        view.set_down("sms", True)
    with pytest.raises(ValueError, match="timeout_ms must be > 0"):
        view.set_timeout(0)


def test_point_to_point_opens_on_a_populated_default_run():
    view = PointToPoint()
    # Only the samples where the line changes are sent; they draw the engine's every sample.
    series = view.run.series
    assert 5 < len(view.depth_mark.x) < len(series["time"])
    assert (
        step_value(view.depth_mark.x, view.depth_mark.y, series["time"]) == series["visible"]
    ).all()
    visible, in_flight = list(view.depth_mark.y), list(view.in_flight_mark.y)
    assert max(visible) == 9  # 12 sent, 3 taken at once
    assert max(in_flight) == 3
    assert list(view.count_mark.y) == [8, 1, 3]
    assert view.crash_buttons["B"].description == "Restart B"
    assert view.summary() == (
        "t=20s: sent 12, waiting 0, in flight 0, acked 12; processed by "
        "A 8, B 1 (crashed), C 3; redelivered 1"
    )


def test_point_to_point_buttons_drive_the_engine():
    view = PointToPoint(PointToPointRun())
    buttons = {b.description: b for b in descendants(view.view) if hasattr(b, "click")}
    buttons["Burst of 10"].click()
    assert view.run.queue.sent_count == 10
    assert (view.run.series["visible"][-1], view.run.series["in_flight"][-1]) == (7, 3)
    view.crash_buttons["A"].click()
    assert "A 0 (crashed)" in view.summary()
    assert view.run.queue.in_flight_count == 3  # A's message is still in flight
    buttons["Advance 5 s"].click()
    assert view.run.now == 5
    assert len(view.run.series["time"]) == 21  # a sample every 0.25 s; the marks keep changes
    for mark, key in ((view.depth_mark, "visible"), (view.in_flight_mark, "in_flight")):
        assert len(mark.x) == len(mark.y) and mark.x[-1] == 5
        assert (step_value(mark.x, mark.y, view.run.series["time"]) == view.run.series[key]).all()
    assert view.x_scale.max > 5  # room to the right of the newest sample
    assert view.count_mark.colors[0] == "#767676"  # A is crashed: its bar is grey
    # A's message timed out at t=5 exactly (advance includes its end) and another consumer has it
    assert view.run.queue.in_flight_count == 2
    assert view.run.sim.trace.of_kind("visibility_timeout")[0].time == 5
    view.crash_buttons["A"].click()  # now labelled Restart A
    assert view.run.consumers["A"].alive
    view.speed_controls["C"].value = 0.5
    assert view.run.consumers["C"].processing_time == 0.5
    view.visibility_control.value = 2.0
    assert view.run.queue.visibility_timeout == 2.0
    view.advance(30)
    assert view.run.queue.depth == 0
    assert len(view.run.redeliveries()) == 1
    assert sum(view.count_mark.y) == 10  # A never finished the one it dropped; B or C did


def test_point_to_point_methods_validate_before_touching_controls():
    view = PointToPoint()
    with pytest.raises(ValueError, match="processing_time must be > 0"):
        view.set_processing_time("A", -1)
    with pytest.raises(ValueError, match="consumer must be one of"):
        view.crash_consumer("Q")
    view.set_visibility_timeout(45)
    assert view.visibility_control.value == 45  # slider grew to fit


def test_controls_show_values_outside_their_usual_range_instead_of_clamping():
    view = SyncVsAsync(timeout_ms=20_000, recovers_at_ms=30_000)
    assert view.timeout_control.value == 20_000
    assert view.recovery_control.value == 30_000
    view.set_latency("email", 12.5)
    assert view.latency_controls["email"].value == 12.5
    run = PointToPointRun({"A": 10.0, "B": 0.1}, visibility_timeout=60)
    p2p = PointToPoint(run)
    assert p2p.speed_controls["A"].value == 10.0
    assert p2p.speed_controls["B"].value == 0.1
    assert p2p.visibility_control.value == 60
    p2p.set_processing_time("B", 0.05)
    assert p2p.speed_controls["B"].value == 0.05


@pytest.mark.parametrize("name", __import__("mqlib.widgets").widgets.__all__)
def test_every_view_has_a_live_state_line_and_a_sentence_per_chart(name):
    """The accessibility groundwork of the shared base, on every chapter's view: the state line
    is marked for the page script that makes it a live region, and each chart has one sentence."""
    import mqlib.widgets
    from mqlib.widgets._base import A11Y_SCRIPT

    view = getattr(mqlib.widgets, name)()
    assert "mq-state" in view.summary_label._dom_classes
    assert "<b>State:</b> " in view.summary_label.value
    # the page script comes once, with the view, not with every state line
    assert 'onload="' not in view.summary_label.value and "aria-live" in A11Y_SCRIPT
    assert 'onload="' in view.a11y_loader.value and view.a11y_loader in view.view.children
    assert "mq-view" in view.view._dom_classes
    figures = view.figures()
    sentences = view.describe_charts()
    assert figures and len(sentences) == len(figures)
    assert all(s.strip() for s in sentences)
    # the sentences ride with the state line, as attributes of a hidden span: no text of
    # their own in the line, and no widget (and no message a click) of their own
    line = view.summary_label.value
    assert line.count('class="mq-alt"') == len(figures)
    assert [html.unescape(a) for a in re.findall(r'data-alt="([^"]*)"', line)] == sentences
    assert '<span class="mq-chart-text" hidden>' in line
    assert not re.search(r'class="mq-alt"[^>]*>[^<]', line)  # empty spans: nothing to read out


def test_chart_sentences_follow_the_data():
    view = PointToPoint(PointToPointRun())
    assert "0 waiting" in view.describe_charts()[0]
    view.send(10)
    assert "10 waiting" in view.describe_charts()[0] or "in flight" in view.describe_charts()[0]
    view.advance(30)
    assert (
        "A 10" in view.describe_charts()[1] or "processed per consumer" in view.describe_charts()[1]
    )
    counts = view.run.processed_by()
    assert all(f"{n} {c}" in view.describe_charts()[1] for n, c in counts.items())


def test_a_notice_shows_once_in_the_state_line():
    view = PointToPoint(PointToPointRun())
    view.set_processing_time("A", 2.0)
    assert "A now needs 2 s per message, from its next message" in view.summary_label.value
    view.send(1)
    assert "from its next message" not in view.summary_label.value


def test_point_to_point_legend_explains_the_grey_bar_of_a_crashed_consumer():
    view = PointToPoint()
    legend = next(c for c in descendants(view.view) if "in flight" in str(getattr(c, "value", "")))
    assert "grey = crashed" in legend.value
    assert "#767676" in legend.value
    crashed = [not c.alive for c in view.run.consumers.values()]
    assert [c == "#767676" for c in view.count_mark.colors] == crashed


def step_value(x, y, at):
    """The value a step-after line through ``(x, y)`` draws at each time in ``at``."""
    return np.asarray(y)[np.searchsorted(np.asarray(x), np.asarray(at), side="right") - 1]


def test_step_points_drops_repeats_and_draws_the_same_step_line():
    from mqlib.widgets._base import step_points

    rng = np.random.default_rng(7)
    times = np.arange(5000) * 0.25
    values = np.repeat(rng.integers(0, 9, 50), 100)  # 50 runs of 100 equal samples
    x, y = step_points(times, values)
    assert len(x) <= 51 + 1 < len(times)
    assert x[0] == times[0] and x[-1] == times[-1]
    assert (step_value(x, y, times) == values).all()


def test_step_points_for_a_linear_line_keeps_where_each_flat_run_ends():
    from mqlib.widgets._base import step_points

    times = np.arange(4000) * 0.5
    values = np.cumsum(np.repeat([0, 1, 0, 3, 0], 800))  # flat, rising, flat, rising, flat
    x, y = step_points(times, values, linear=True)
    assert len(x) < len(times)
    assert np.interp(times, x, y).tolist() == values.tolist()  # the same linear picture
    step_x, step_y = step_points(times, values)
    assert np.interp(times, step_x, step_y).tolist() != values.tolist()  # what linear avoids
    with pytest.raises(TypeError, match="linear"):
        step_points(times, values, linear="yes")


def test_step_points_bounds_a_busy_line_and_keeps_every_extreme():
    from mqlib.widgets._base import step_points

    rng = np.random.default_rng(3)
    times = np.arange(100_000, dtype=float)
    values = rng.integers(0, 1000, len(times))
    values[61_234] = 5000  # a single-sample peak in the middle of a span
    x, y = step_points(times, values, limit=300)
    assert len(x) <= 300
    assert list(x) == sorted(x) and x[0] == 0 and x[-1] == times[-1]
    assert max(y) == 5000 and min(y) == values.min()


@pytest.mark.parametrize(
    ("times", "values", "limit", "error"),
    [
        ([0, 1], [0], 10, ValueError),
        ([[0, 1]], [[0, 1]], 10, ValueError),
        ([0, 1], [0, 1], 3, ValueError),
        ([0, 1], [0, 1], 10.0, TypeError),
        ([0, 1], [0, 1], True, TypeError),
    ],
)
def test_step_points_refuses_bad_input(times, values, limit, error):
    from mqlib.widgets._base import step_points

    with pytest.raises(error, match="limit|times and values"):
        step_points(times, values, limit)


def test_point_to_point_after_an_hour_sends_a_bounded_chart_that_draws_the_engines_series():
    from mqlib.widgets._base import MAX_CHART_POINTS

    view = PointToPoint()
    view.send(10)
    view.advance(3600)
    view.send(1)
    series = view.run.series
    # the engine's own samples (one every 0.25 s), merged to at most SERIES_LIMIT over the hour
    assert series["time"][-1] == view.run.now > 3600
    assert len(series["time"]) <= view.run.SERIES_LIMIT
    for mark, key in ((view.depth_mark, "visible"), (view.in_flight_mark, "in_flight")):
        assert len(mark.x) <= MAX_CHART_POINTS
        assert (step_value(mark.x, mark.y, series["time"]) == np.asarray(series[key])).all()


def test_sliders_send_their_value_on_release_not_while_drawn():
    """A continuously updating float slider echoes a rounded value when drawn; during Run All
    that echo can leave the page's model waiting forever (see ``SimulationView._slider``)."""
    from mqlib.widgets import MessageOrdering, PubSub

    for view in (PointToPoint(), SyncVsAsync(), MessageOrdering(), PubSub()):
        sliders = [w for w in descendants(view.view) if type(w).__name__.startswith("Float")]
        assert all(not s.continuous_update for s in sliders), type(view).__name__


def test_nice_ceiling_rounds_up_to_one_two_or_five_times_a_power_of_ten():
    from mqlib.widgets._base import FINE_STEPS, nice_ceiling

    assert [nice_ceiling(v) for v in (0, 0.3, 1, 1.5, 2, 2.01, 12, 20, 20.5, 99, 101)] == [
        1, 1, 1, 2, 2, 5, 20, 20, 50, 100, 200,
    ]  # fmt: skip
    assert nice_ceiling(124, FINE_STEPS) == 125 and nice_ceiling(126, FINE_STEPS) == 150
    for bad in ("3", None, True, float("nan")):
        with pytest.raises(TypeError, match="value must be a number"):
            nice_ceiling(bad)


def test_assign_sets_only_the_traits_whose_value_changed():
    import bqplot as bq

    from mqlib.widgets._base import assign

    mark = bq.Lines(x=[0.0, 1.0], y=[[0, 1], [2, 3]], colors=["red"])
    changes = []
    mark.observe(lambda change: changes.append(change["name"]), ["x", "y", "colors"])
    assign(mark, x=[0, 1], y=[[0, 1], [2, 3]], colors=["red"])  # equal: nothing sent
    assert changes == []
    assign(mark, x=[0.0, 2.0], y=[[0, 1], [2, 3]], colors=["blue"])
    assert changes == ["x", "colors"]
    assign(mark, x=["a", "b"])  # strings are never equal to numbers
    assert list(mark.x) == ["a", "b"]


def test_a_click_that_stays_inside_the_round_scale_ends_changes_no_domain():
    # The page redraws an axis and every mark on a scale whose domain changes; most clicks
    # must change none, and the data must still fit inside every scale.
    view = PointToPoint()
    scales = [view.x_scale, view.y_scale, view.count_scale]
    changes = []
    for scale in scales:
        scale.observe(lambda change: changes.append(change["name"]), ["min", "max"])
    names = []
    view.count_mark.observe(lambda change: names.append(change["name"]), ["x", "colors"])
    view.send(1)
    view.advance(0.5)
    assert changes == [] and names == []  # same consumers, same colours: nothing re-sent
    series = view.run.series
    assert view.x_scale.max >= view.run.now
    assert view.y_scale.max >= max(series["visible"] + series["in_flight"])
    assert view.count_scale.max >= max(view.run.processed_by().values())
