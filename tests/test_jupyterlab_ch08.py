"""Chapter 8's playground in a real JupyterLab in Chromium (see ``test_jupyterlab.py``): Run All,
then clicks, a dragged slider, checkboxes and the keyboard; each time the state line, the drawn
lines and the charts' text alternatives are what the engine computes for the same actions."""

from __future__ import annotations

import re

import pytest
import test_jupyterlab
from test_jupyterlab import (
    AXE,
    CLICK_TIMEOUT,
    FOCUS_RING,
    ROOT,
    RUN_ALL_TIMEOUT,
    assert_no_clipped_text,
    button,
    drag_slider,
    expect_fits_the_screen,
    live_widget,
    open_and_run_all,
    state,
    wait_until_every_cell_ran,
)

from mqlib.scenarios.playground import default_run
from mqlib.widgets import MessageQueueSimulator

# The JupyterLab server and the browser page are test_jupyterlab's fixtures.
lab = test_jupyterlab.lab
page = test_jupyterlab.page

pytestmark = pytest.mark.slow

NOTEBOOK = "08-simulator.ipynb"

# What the keyboard focus is on: its aria-label, a checkbox's label, or a button's text.
FOCUSED = """() => { const e = document.activeElement;
    const label = e.labels && e.labels.length ? e.labels[0].textContent.trim() : '';
    return e.getAttribute('aria-label') || label || e.textContent.trim() || e.tagName; }"""

# Per figure, per line: how many vertices its path has (M and L commands).
VERTICES = """widget => [...widget.querySelectorAll('.bqplot')].map(fig =>
    [...fig.querySelectorAll('path.line')].map(p =>
        ((p.getAttribute('d') || '').match(/[ML]/g) || []).length))"""


def expected_vertices(view: MessageQueueSimulator) -> list[list[int]]:
    """What ``view`` (of the engine's run) makes bqplot draw: the depth and DLQ lines step after
    each point the view sends (two vertices per point after the first), the two rate lines join
    their points. (The view sends the points that draw each line: repeats dropped.)"""
    steps = [2 * len(mark.x) - 1 for mark in (view.depth_mark, view.dlq_mark)]
    rates = [len(mark.x) for mark in view.throughput_figure.marks]
    return [steps, rates]


def open_playground(page, lab):
    open_and_run_all(page, lab, NOTEBOOK)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    return live_widget(page, "Inject poison pill")


@pytest.mark.parametrize("lab", [NOTEBOOK], indirect=True)
def test_playground_widget_in_jupyterlab(page, lab, screenshot_dir):
    """Advance, kill, a dragged rate slider, backpressure, a poison pill, fix, replay, drain:
    after each, the state line, the lines drawn and the charts' names are the engine's."""
    from playwright.sync_api import expect

    engine = default_run()
    widget = open_playground(page, lab)
    summary = widget.locator(".mq-state")
    expect(summary).to_have_text(state(engine.summary()), timeout=RUN_ALL_TIMEOUT)
    charts = widget.locator(".bqplot")
    expect(charts).to_have_count(2)

    def expect_engine(what: str) -> None:
        expect(summary, what).to_have_text(state(engine.summary()))
        view = MessageQueueSimulator(engine)  # the same widget code, on the engine's run
        page.wait_for_function(
            f"([w, n]) => JSON.stringify(({VERTICES})(w)) === JSON.stringify(n)",
            arg=[widget.element_handle(), expected_vertices(view)],
            timeout=CLICK_TIMEOUT,
        )
        sentences = view.describe_charts()
        expect(widget.locator(".bqplot[role=img]").first).to_have_attribute(
            "aria-label", sentences[0]
        )
        expect(widget.locator(".bqplot[role=img]").nth(1)).to_have_attribute(
            "aria-label", sentences[1]
        )
        assert_no_clipped_text(widget)

    expect_engine("after Run All")
    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch08-playground.png")

    engine.advance(5)
    button(widget, "Advance 5 s").click()
    expect_engine("after Advance 5 s")
    engine.kill_consumer("B")
    engine.kill_consumer("C")
    button(widget, "Kill B").click()
    expect(summary).to_contain_text(f"B {engine.consumers['B'].processed} (dead)")
    button(widget, "Kill C").click()
    expect_engine("after killing B and C")
    expect(button(widget, "Revive B")).to_have_count(1)

    drag_slider(page, widget, "rate (msg/s)", 1.0)  # the right end: 20 msg/s
    expect(widget.locator(".widget-slider").filter(has_text="rate")).to_contain_text("20.0")
    engine.set_rate(20.0)
    expect(summary).to_contain_text("(The producer now sends 20 msg/s, from its next message.)")
    expect_engine("after dragging the rate to 20 msg/s")
    engine.advance(5)
    button(widget, "Advance 5 s").click()
    expect_engine("after 5 s at 20 msg/s with one consumer")
    assert engine.queue.depth > engine.capacity

    widget.get_by_role("checkbox", name="backpressure (bounded queue)").check()
    engine.set_backpressure(True)
    expect(summary).to_contain_text("drains to it while the producer sends one message")
    expect_engine("after ticking backpressure above the capacity")
    for _ in range(2):
        engine.advance(5)
        button(widget, "Advance 5 s").click()
    expect_engine("draining")
    expect(summary).to_contain_text("1 sent per 2 processed until the depth is down to 20")
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch08-backpressure.png")

    widget.get_by_role("checkbox", name="dead letter queue").uncheck()
    engine.set_dlq(False)
    expect_engine("after switching the DLQ off")
    expect(widget).to_contain_text("off (retry forever); keeps 1 message: m27")
    engine.inject_poison()
    button(widget, "Inject poison pill").click()
    expect_engine("after a poison pill")
    engine.fix_bug()
    button(widget, "Fix bug").click()
    expect(summary).to_contain_text("Fix deployed")
    expect_engine("after Fix bug")
    expect(widget).to_contain_text("handler: bug fixed")
    engine.replay_dlq()
    button(widget, "Replay DLQ").click()
    expect_engine("after Replay DLQ")
    button(widget, "Revive B").click()
    engine.revive_consumer("B")
    expect_engine("after reviving B")
    engine.drain()
    button(widget, "Drain").click()
    expect(summary).to_contain_text("Drained in")
    expect_engine("after Drain")
    s = engine.state()
    assert s["sent"] + s["injected"] == s["processed"] + s["dlq_depth"]
    expect_fits_the_screen(widget)
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch08-after-drain.png")


@pytest.mark.parametrize("lab", [NOTEBOOK], indirect=True)
def test_playground_with_the_keyboard_and_a_screen_reader(page, lab, screenshot_dir):
    """Tab goes through the controls in reading order with a visible focus ring; Enter and Space
    press buttons, Space ticks a checkbox, an arrow key moves the rate slider; the polite live
    region's text becomes the engine's; axe-core finds nothing serious or critical."""
    from playwright.sync_api import expect

    engine = default_run()
    widget = open_playground(page, lab)
    live = widget.locator(".mq-state")
    expect(live).to_have_attribute("aria-live", "polite", timeout=RUN_ALL_TIMEOUT)
    expect(live).to_have_attribute("role", "status")
    expect(live).to_have_text(state(engine.summary()))
    expect_fits_the_screen(widget)
    charts = widget.locator(".bqplot[role=img]")
    expect(charts).to_have_count(2)
    expect(charts.first).to_have_attribute("aria-label", re.compile(r"^Line chart of messages"))

    button(widget, "Kill A").focus()
    order = [page.evaluate(FOCUSED)]
    rings = [page.evaluate(FOCUS_RING)]
    for _ in range(17):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
        rings.append(page.evaluate(FOCUS_RING))
    assert order == [
        "Kill A",
        "Kill B",
        "Kill C",
        "rate (msg/s)",
        "rate (msg/s), typed value",
        "Advance 1 s",
        "Advance 5 s",
        "Advance 30 s",
        "Drain",
        "Inject poison pill",
        "dead letter queue",
        "Fix bug",
        "Replay DLQ",
        "backpressure (bounded queue)",
        "capacity",
        "capacity, typed value",
        "max receives",
        "max receives, typed value",
    ], order
    assert all(style != "none" and width >= 2 for style, width in rings), rings
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch08-focus.png")

    button(widget, "Advance 5 s").focus()
    page.keyboard.press("Enter")
    engine.advance(5)
    expect(live, "Enter on 'Advance 5 s'").to_have_text(state(engine.summary()))
    button(widget, "Kill B").focus()
    page.keyboard.press("Space")
    engine.kill_consumer("B")
    expect(live, "Space on 'Kill B'").to_have_text(state(engine.summary()))
    expect(live).to_contain_text("B died holding")
    button(widget, "Fix bug").focus()
    page.keyboard.press("Enter")
    engine.fix_bug()
    expect(live, "Enter on 'Fix bug'").to_contain_text("Fix deployed")
    expect(live).to_have_text(state(engine.summary()))

    slider = widget.locator(".widget-slider").filter(has_text="rate (msg/s)")
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    engine.set_rate(5.5)
    expect(slider.locator(".widget-readout"), "the arrow key moves the slider").to_have_text("5.5")
    expect(live, "ArrowRight on the rate").to_have_text(
        f"State: {engine.summary()} (The producer now sends 5.5 msg/s, from its next message.)"
    )
    box = widget.get_by_role("checkbox", name="backpressure (bounded queue)")
    box.focus()
    page.keyboard.press("Space")
    engine.set_backpressure(True)
    expect(box).to_be_checked()
    expect(live, "Space on the backpressure checkbox").to_contain_text("Backpressure on")
    expect(live).to_have_text(state(engine.summary()))
    sentences = MessageQueueSimulator(engine).describe_charts()
    expect(charts.first).to_have_attribute("aria-label", sentences[0])
    expect(charts.nth(1)).to_have_attribute("aria-label", sentences[1])

    page.add_script_tag(path=str(ROOT / "node_modules" / "axe-core" / "axe.min.js"))
    findings = widget.evaluate(AXE)
    assert not findings, findings
