"""Chapter 5's simulation in a real JupyterLab in Chromium: Run All, clicks, a dragged slider,
the keyboard and a screen reader's view. Uses the server and page fixtures of
``test_jupyterlab.py``; each action is repeated on the engine in this process and the state line,
the axes' tick labels and the lines' points are compared with what it computes."""

from __future__ import annotations

import re
import time

import pytest
import test_jupyterlab
from test_jupyterlab import (
    AXE,
    FOCUS_RING,
    FOCUSED,
    ROOT,
    RUN_ALL_TIMEOUT,
    assert_no_clipped_text,
    button,
    drag_slider,
    expect_fits_the_screen,
    live_widget,
    open_and_run_all,
    state,
)

from mqlib.scenarios.backpressure import default_run
from mqlib.widgets import Backpressure

# The JupyterLab server and the browser page are test_jupyterlab's fixtures.
lab = test_jupyterlab.lab
page = test_jupyterlab.page

pytestmark = pytest.mark.slow

NOTEBOOK = "05-backpressure.ipynb"

# The tick labels of each figure's axes, in document order, and the number of points of each
# line (bqplot draws a line as one path: "M x,y L x,y ..."; a step line has two per sample).
TICKS = """fig => [...fig.querySelectorAll('.axis')].map(a =>
    [...a.querySelectorAll('.tick text')].map(t => t.textContent))"""
POINTS = """fig => [...fig.querySelectorAll('path.line')].map(p =>
    ((p.getAttribute('d') || '').match(/[ML]/g) || []).length)"""


def expected_ticks(view: Backpressure) -> list[list[str]]:
    """What the engine's view puts on each figure's axes (time first, then the count)."""
    out = []
    for time_axis, axis in zip(view.time_axes, view.axes.values(), strict=True):
        out.append([f"{int(t)}" for t in time_axis.tick_values])
        out.append([f"{int(t)}" for t in axis.tick_values])
    return out


#: Run All includes the RabbitMQ lab, which boots a broker node (~5 s idle, minutes on a loaded
#: machine); the kernel answers no widget message before it is done.
EVERY_CELL_TIMEOUT = 600_000  # ms


def wait_until_every_cell_ran(page) -> None:
    from playwright.sync_api import expect

    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-InputArea-prompt')]
            .every(p => !p.textContent.includes('*'))""",
        timeout=EVERY_CELL_TIMEOUT,
    )
    idle = page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) |")
    expect(idle).to_have_text("Python 3 (ipykernel) | Idle", timeout=RUN_ALL_TIMEOUT)


def open_chapter(page, lab):
    from playwright.sync_api import expect

    open_and_run_all(page, lab, NOTEBOOK)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    widget = live_widget(page, "Advance 60 s")
    summary = widget.locator(".mq-state")
    expect(summary).to_have_text(state(default_run().summary()), timeout=RUN_ALL_TIMEOUT)
    return widget, summary


@pytest.mark.parametrize("lab", [NOTEBOOK], indirect=True)
def test_backpressure_widget_in_jupyterlab(page, lab, screenshot_dir):
    """Advance, the mode buttons, + consumer, a dragged slider, Start over: each time the state
    line, the tick labels and the number of points drawn are the engine's."""
    from playwright.sync_api import expect

    engine = Backpressure()  # the same widget code, driven in this process
    widget, summary = open_chapter(page, lab)
    figures = widget.locator(".bqplot")
    expect(figures).to_have_count(3)

    def expect_engine(what: str) -> None:
        expect(summary, what).to_have_text(state(engine.summary()))
        want = sorted(map(sorted, expected_ticks(engine)))
        deadline = time.monotonic() + 5
        while True:  # the labels arrive with the next frame; bounded wait, no fixed sleep
            drawn = [t for f in figures.all() for t in f.evaluate(TICKS)]
            drawn = sorted(sorted(axis) for axis in drawn if axis)
            if drawn == want or time.monotonic() > deadline:
                break
            page.wait_for_timeout(50)
        assert drawn == want, (what, drawn, want)
        # the producer and consumer rates (linear lines): the page draws each point the view
        # sends, which are the samples that draw the line (repeats dropped, step_points)
        sent = [len(engine.marks[key].x) for key in ("producer_rate", "consumer_rate")]
        rates = figures.nth(1).evaluate(POINTS)
        assert rates == sent, (what, rates, sent)
        assert_no_clipped_text(widget)

    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch05-backpressure.png")
    expect_engine("as it opens")

    engine.advance(10)
    button(widget, "Advance 10 s").click()
    expect_engine("after Advance 10 s")
    engine.set_mode("unbounded")
    button(widget, "Unbounded").click()
    expect_engine("after Unbounded")
    engine.advance(60)
    button(widget, "Advance 60 s").click()
    expect_engine("after Advance 60 s unbounded")
    engine.set_mode("reject")
    button(widget, "Reject when full").click()
    expect_engine("after Reject when full")
    expect(summary).to_contain_text("it only drains")
    engine.start_over()
    button(widget, "Start over").click()
    expect_engine("after Start over")
    engine.advance(60)
    button(widget, "Advance 60 s").click()
    expect_engine("after a rejecting minute")
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch05-reject.png")

    engine.add_consumer()
    button(widget, "+ consumer").click()
    expect_engine("after + consumer")
    expect(summary).to_contain_text("B joined but sits idle")

    # Changes only the next messages' speed, so the values passed on the way do not matter.
    drag_slider(page, widget, "each consumer", 1.0)  # the right end: 10 msg/s
    readout = widget.locator(".widget-slider").filter(has_text="each consumer")
    expect(readout.locator(".widget-readout")).to_have_text("10.0")
    engine.set_consumer_rate(10.0)
    expect_engine("after dragging each consumer to 10")
    expect(summary).to_contain_text("from its next message on")
    engine.advance(10)
    button(widget, "Advance 10 s").click()
    expect_engine("after ten seconds at 10 msg/s")
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch05-after.png")


@pytest.mark.parametrize("lab", [NOTEBOOK], indirect=True)
def test_backpressure_widget_with_the_keyboard_and_a_screen_reader(page, lab, screenshot_dir):
    """Tab goes through the controls in reading order with a visible focus ring; Enter and Space
    press a button, an arrow key moves a slider; the state line is a polite live region whose
    text becomes the engine's; each chart is an image named by its sentence; axe-core finds
    nothing serious or critical."""
    from playwright.sync_api import expect

    engine = Backpressure()
    widget, live = open_chapter(page, lab)
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_have_attribute("role", "status")
    expect_fits_the_screen(widget)
    charts = widget.locator(".bqplot[role=img]")
    expect(charts).to_have_count(3)
    for i, sentence in enumerate(engine.describe_charts()):
        expect(charts.nth(i)).to_have_attribute("aria-label", sentence)

    button(widget, "Advance 1 s").focus()
    order = [page.evaluate(FOCUSED)]
    rings = [page.evaluate(FOCUS_RING)]
    for _ in range(16):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
        rings.append(page.evaluate(FOCUS_RING))
    head = ["Advance 1 s", "Advance 10 s", "Advance 60 s", "Start over", "+ consumer"]
    assert order[:5] == head, order
    # then the mode buttons and the two rate sliders (handle, then typed readout), in that order
    wanted = ["Unbounded", "producer (msg/s)", "each consumer (msg/s)"]
    positions = [next(i for i, f in enumerate(order) if f.startswith(w)) for w in wanted]
    assert positions == sorted(positions), order
    # the fold-away section's button is the widget's last control; what follows is the page's
    end = next(i for i, f in enumerate(order) if f.startswith("More settings"))
    assert all(style != "none" and width >= 2 for style, width in rings[: end + 1]), rings
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch05-focus.png")

    button(widget, "Advance 10 s").focus()
    page.keyboard.press("Enter")
    engine.advance(10)
    expect(live, "Enter on 'Advance 10 s'").to_have_text(state(engine.summary()))
    page.keyboard.press("Space")
    engine.advance(10)
    expect(live, "Space on 'Advance 10 s'").to_have_text(state(engine.summary()))
    for i, sentence in enumerate(engine.describe_charts()):
        expect(charts.nth(i)).to_have_attribute("aria-label", sentence)

    slider = widget.locator(".widget-slider").filter(has_text="each consumer")
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    engine.set_consumer_rate(2.5)
    expect(slider.locator(".widget-readout")).to_have_text("2.5")
    expect(live, "ArrowRight on each consumer").to_have_text(
        re.compile(
            rf"^\s*State: {re.escape(engine.summary())} "
            r"\(Each consumer now finishes 2\.5 msg/s, from its next message on\.\)\s*$"
        )
    )

    page.add_script_tag(path=str(ROOT / "node_modules" / "axe-core" / "axe.min.js"))
    findings = widget.evaluate(AXE)
    assert not findings, findings
