"""Every "Try this" bullet of chapter 5's simulation does what it says.

As in ``test_try_this.py``: the widget is taken in the state the notebook leaves it after Run All,
each bullet is followed by clicking the widget's buttons and moving its controls, and the outcome
the bullet promises is read from the chart's marks and the state line.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_try_this import bullets, click, code_cells, run_cell, state_line
from test_widget_backpressure import drawn_line

CH05 = "05-backpressure.ipynb"


def chapter_widget():
    """The ``sim`` widget as Run All leaves it: the cells after it that use ``sim`` run too, up
    to a cell that binds the name ``sim`` to something else (the RabbitMQ lab reuses the name
    for a scenario of its own; from there on the widget is no longer touched)."""
    cells = code_cells(CH05)
    start = next(i for i, c in enumerate(cells) if "from mqlib.widgets import Backpressure" in c)
    namespace: dict = {}
    run_cell(cells[start], namespace)
    view = namespace["sim"]
    for cell in cells[start + 1 :]:
        if re.search(r"^sim\s*=", cell, re.MULTILINE):
            break
        if re.search(r"\bsim\b", cell):
            run_cell(cell, namespace)
    assert type(view).__name__ == "Backpressure"
    return view


@pytest.fixture
def ch05():
    return chapter_widget()


def last(view, key: str) -> float:
    return float(np.asarray(view.marks[key].y, dtype=float)[-1])


def test_ch05_has_the_five_bullets_these_tests_follow():
    assert [b.split(" ")[0] for b in bullets(CH05)] == ["Click", "Now", "Click", "Click", "Go"]


def test_ch05_the_widget_shows_its_opening_run_after_run_all(ch05):
    assert ch05.run.now == 30 and ch05.run.broker.mode == "block"
    assert max(ch05.marks["depth"].y) == 20 and ch05.run.state()["rejected"] == 0


def test_ch05_unbounded_depth_and_lag_grow_in_a_straight_line_8_per_second(ch05):
    ch05.mode_control.value = "unbounded"
    depths, lags = [], []
    for _ in range(3):
        click(ch05, "Advance 60 s")
        depths.append(last(ch05, "depth"))
        lags.append(last(ch05, "lag"))
    for values in (depths, lags):
        steps = np.diff(values)
        assert np.all(np.abs(steps - 8 * 60) <= 1), steps  # 10 in, 2 out: 8 a second
    assert "[unbounded]" in state_line(ch05)


def test_ch05_reject_above_the_bound_only_drains_then_holds_at_capacity(ch05):
    ch05.mode_control.value = "unbounded"
    click(ch05, "Advance 60 s")
    deep = ch05.run.broker.depth
    ch05.mode_control.value = "reject"
    assert "only drains" in state_line(ch05)
    rejected = ch05.run.state()["rejected"]
    click(ch05, "Advance 10 s")
    assert ch05.run.broker.depth < deep  # it drains ...
    assert ch05.run.broker.produced == ch05.run.state()["produced"]
    assert ch05.run.state()["rejected"] - rejected == pytest.approx(100, abs=1)  # all refused
    click(ch05, "Start over")
    assert "Started over" in state_line(ch05)
    click(ch05, "Advance 60 s")
    depth = drawn_line(ch05, "depth")
    assert depth.max() == ch05.run.broker.capacity == 20 and depth[-1] == 20
    before = ch05.run.state()
    click(ch05, "Advance 10 s")
    after = ch05.run.state()
    assert after["attempted"] - before["attempted"] == 100  # still trying at 10 per second
    assert (after["rejected"] - before["rejected"]) / 10 == pytest.approx(8, abs=0.2)
    assert last(ch05, "rejected") == after["rejected"]


def test_ch05_rate_limit_drops_to_1_per_second_and_holds_back_about_8(ch05):
    ch05.mode_control.value = "rate_limit"
    click(ch05, "Start over")
    click(ch05, "Advance 60 s")
    run = ch05.run
    threshold = run.producer.lag_threshold
    lag = drawn_line(ch05, "lag")[20:]
    assert abs(lag.mean() - threshold) <= 3 and lag.max() <= threshold + 10  # hovers around it
    before = run.state()
    click(ch05, "Advance 10 s")
    after = run.state()
    assert (after["held_back"] - before["held_back"]) / 10 == pytest.approx(8, abs=0.6)
    assert f"held back {after['held_back']}" in state_line(ch05)
    if run.producer.throttled:
        assert "1/s (throttled)" in state_line(ch05)
    late = drawn_line(ch05, "producer_rate")[-10:]
    assert late.mean() < 3  # mostly 1 per second, a full-rate burst when the lag dips


def test_ch05_shedding_drops_only_low_priority_and_the_queue_still_grows(ch05):
    ch05.mode_control.value = "shed"
    click(ch05, "Start over")
    click(ch05, "Advance 60 s")
    first = ch05.run.broker.depth
    click(ch05, "Advance 60 s")
    s = ch05.run.state()
    assert s["dropped"]["low"] > 0 and s["dropped"]["high"] == 0
    assert ch05.run.broker.depth > first + 100  # about 5 high per second against 2 out
    assert last(ch05, "dropped") == s["dropped"]["low"]


def test_ch05_extra_consumers_idle_until_there_are_partitions_for_them(ch05):
    ch05.mode_control.value = "unbounded"
    for _ in range(4):
        click(ch05, "+ consumer")
    assert "sits idle" in state_line(ch05)
    assert "idle: B, C, D, E" in ch05.consumer_label.value
    ch05.partition_control.value = 5
    assert ch05.run.now == 0 and len(ch05.run.consumers) == 5
    assert "Started over at t=0 on 5 partition(s)" in state_line(ch05)
    assert "idle" not in ch05.consumer_label.value
    click(ch05, "Advance 60 s")
    rates = drawn_line(ch05, "consumer_rate")[5:-1]
    assert np.all(rates == 10)  # five consumers at 2 per second match the producer's 10
    assert ch05.run.broker.depth <= 5


def test_ch05_controls_that_change_nothing_visible_say_so(ch05):
    ch05.consumer_rate_control.value = 3.0
    assert "from its next message on" in state_line(ch05)
    ch05.capacity_control.value = 30
    assert "Capacity now 30, from the next publish on." in state_line(ch05)
    ch05.mode_control.value = "shed"
    ch05.shed_control.value = 15
    assert "Shedding now starts at 15" in state_line(ch05)
    ch05.mode_control.value = "rate_limit"
    ch05.lag_control.value = 12
    assert "slows down above a lag of 12" in state_line(ch05)
    click(ch05, "− consumer")
    assert "left the group" in state_line(ch05)
