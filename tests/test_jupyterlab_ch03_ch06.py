"""Chapters 3 and 6 as a learner meets them in a real JupyterLab in Chromium, at 1280×720.

Each test opens the chapter, runs all cells, then clicks, drags and types on the simulation and
compares the state line and the drawn bars with the same actions run on the engine in this
process; the keyboard tests tab through the controls, press them with Enter and Space, read the
live region's new text and run axe-core on the widget. The fixtures and helpers are
``test_jupyterlab``'s. Element screenshots go to ``screenshots/jupyterlab-ch03-*.png`` and
``screenshots/jupyterlab-ch06-*.png``.
"""

from __future__ import annotations

import pytest
import test_jupyterlab
from test_jupyterlab import (
    AXE,
    CLICK_TIMEOUT,
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
    wait_until_every_cell_ran,
)

from mqlib.scenarios.dead_letter import default_run as dead_letter_run
from mqlib.scenarios.guarantees import default_run as guarantees_run
from mqlib.scenarios.retries import RetryStormRun
from mqlib.widgets import DeadLetters, DeliveryGuarantees, RetryStorm

pytestmark = pytest.mark.slow

# test_jupyterlab's fixtures: a JupyterLab server over one notebook, and a page that fails the
# test on any console error or request to another host.
lab = test_jupyterlab.lab
page = test_jupyterlab.page

CH03 = "03-delivery-guarantees.ipynb"
CH06 = "06-dead-letter-queues.ipynb"

# Heights of every bar drawn, in drawing order, and the x-axis labels that are written.
BAR_HEIGHTS = """fig => [...fig.querySelectorAll('rect.bar')]
    .map(r => parseFloat(r.getAttribute('height') || '0'))"""
X_LABELS = """fig => [...fig.querySelectorAll('.axis')][0] ?
    [...[...fig.querySelectorAll('.axis')][0].querySelectorAll('.tick text')]
        .map(t => t.textContent.trim()).filter(t => t) : []"""


def drawn_ratios(page, figure, expected: list[float]) -> None:
    """Wait until the bars drawn have the heights ``expected`` (relative to the tallest), as a
    sorted multiset (grouped and stacked bars draw in an order of their own)."""
    want = sorted(round(v / max(expected), 2) for v in expected if v > 0)
    page.wait_for_function(
        f"""([fig, want]) => {{
            const h = ({BAR_HEIGHTS})(fig).filter(v => v > 0.5);
            const top = Math.max(...h);
            const got = h.map(v => Math.round(v / top * 100) / 100).sort((a, b) => a - b);
            return got.length === want.length &&
                got.every((v, i) => Math.abs(v - want[i]) <= 0.02);
        }}""",
        arg=[figure.element_handle(), want],
        timeout=CLICK_TIMEOUT,
    )


def guarantee_bars(engine) -> list[float]:
    return [r[s] for r in engine.per_message() for s in ("stored", "delivered", "effects")]


def attempt_bars(engine) -> list[float]:
    rows = DeadLetters(engine).attempt_rows()  # the rows the chart shows, from the engine
    return [v for r in rows for v in (r["failed"], r["succeeded"])]


# -- chapter 3 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", [CH03], indirect=True)
def test_delivery_guarantees_widget_in_jupyterlab(page, lab, screenshot_dir):
    """Chapter 3: switch the guarantee, arm faults, send; the state line and the bars drawn are
    the engine's; a run of 50 messages labels at most ten of them; it fits the screen."""
    from playwright.sync_api import expect

    engine = guarantees_run()
    open_and_run_all(page, lab, CH03)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    widget = live_widget(page, "Lose next ACK")
    summary = widget.locator(".mq-state")
    expect(summary).to_have_text(state(engine.summary()), timeout=RUN_ALL_TIMEOUT)
    figures = widget.locator(".bqplot")
    expect(figures).to_have_count(2)
    bars = figures.first

    def expect_engine(what: str) -> None:
        expect(summary, what).to_have_text(state(engine.summary()))
        drawn_ratios(page, bars, guarantee_bars(engine))
        assert_no_clipped_text(widget)

    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    expect_engine("after Run All")
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch03-guarantees.png")

    engine.set_guarantee("exactly-once")
    button(widget, "exactly-once").click()
    expect_engine("after exactly-once")
    engine.set_guarantee("at-most-once")
    button(widget, "at-most-once").click()
    expect_engine("after at-most-once")
    engine.inject_lost_message()
    button(widget, "Lose next message").click()
    expect(summary).to_contain_text("send will be lost")
    engine.send(1)
    button(widget, "Send 1").click()
    expect_engine("after a lost message")
    expect(widget).to_contain_text("never charged (lost): m6")

    engine.set_guarantee("at-least-once")
    button(widget, "at-least-once").click()
    for _ in range(9):
        engine.send(5)
        button(widget, "Send 5").click()
    expect_engine("after 45 more messages")
    labels = bars.evaluate(X_LABELS)
    assert 5 <= len(labels) <= 10 and labels[0] == "m4", labels  # 51 ids: every 6th from m4
    expect_fits_the_screen(widget)
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch03-guarantees-51-messages.png")


@pytest.mark.parametrize("lab", [CH03], indirect=True)
def test_delivery_guarantees_with_the_keyboard_and_a_screen_reader(page, lab, screenshot_dir):
    """Chapter 3 without a mouse: tab order, focus ring, Enter and Space, the live region, the
    charts' names, axe-core."""
    from playwright.sync_api import expect

    engine = guarantees_run()
    open_and_run_all(page, lab, CH03)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    widget = live_widget(page, "Lose next ACK")
    live = widget.locator(".mq-state")
    expect(live).to_have_attribute("aria-live", "polite", timeout=RUN_ALL_TIMEOUT)
    expect(live).to_have_attribute("role", "status")
    expect(live).to_have_text(state(engine.summary()))
    charts = widget.locator(".bqplot[role=img]")
    expect(charts).to_have_count(2)
    for i, sentence in enumerate(DeliveryGuarantees(engine).describe_charts()):
        expect(charts.nth(i)).to_have_attribute("aria-label", sentence)

    button(widget, "at-most-once").focus()
    order, rings = [page.evaluate(FOCUSED)], [page.evaluate(FOCUS_RING)]
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
        rings.append(page.evaluate(FOCUS_RING))
    assert order == [
        "at-most-once",
        "at-least-once",
        "exactly-once",
        "Reset",
        "Send 1",
        "Send 5",
        "Lose next message",
        "Lose next ACK",
        "Crash before charge",
        "Crash after charge",
        "Lose next commit",
    ], order
    assert all(style != "none" and width >= 2 for style, width in rings), rings
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch03-focus.png")

    button(widget, "Lose next ACK").focus()
    page.keyboard.press("Space")
    engine.inject_lost_ack()
    expect(live, "Space on 'Lose next ACK'").to_have_text(
        f"State: {engine.summary()} (The next message's ack will be lost; press Send.)"
    )
    button(widget, "Send 1").focus()
    page.keyboard.press("Enter")
    engine.send(1)
    expect(live, "Enter on 'Send 1'").to_have_text(state(engine.summary()))
    assert "duplicates 3" in engine.summary()
    for i, sentence in enumerate(DeliveryGuarantees(engine).describe_charts()):
        expect(charts.nth(i)).to_have_attribute("aria-label", sentence)

    page.add_script_tag(path=str(ROOT / "node_modules" / "axe-core" / "axe.min.js"))
    findings = widget.evaluate(AXE)
    assert not findings, findings


# -- chapter 6 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", [CH06], indirect=True)
def test_dead_letters_and_retry_storm_in_jupyterlab(page, lab, screenshot_dir):
    """Chapter 6: start over, poison, advance, replay, fix, a dragged max-receives slider in the
    Settings section; the state line and the attempts bars are the engine's, the DLQ table has
    its columns apart, and the view still fits with a full table. Then the retry storm: a
    dragged slider gives the engine's summary and table."""
    from playwright.sync_api import expect

    engine = dead_letter_run()
    open_and_run_all(page, lab, CH06)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    widget = live_widget(page, "Inject poison", count=2)
    summary = widget.locator(".mq-state")
    expect(summary).to_have_text(state(engine.summary()), timeout=RUN_ALL_TIMEOUT)
    attempts = widget.locator(".bqplot").nth(1)

    def expect_engine(what: str) -> None:
        expect(summary, what).to_have_text(state(engine.summary()))
        drawn_ratios(page, attempts, attempt_bars(engine))
        assert_no_clipped_text(widget)

    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    expect_engine("after Run All")
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch06-dead-letters.png")

    view = DeadLetters(engine)  # the engine's run, driven as the widget's buttons drive theirs
    view.start_over()
    engine = view.run
    button(widget, "Start over").click()
    expect(summary).to_contain_text("the bug is back")
    for _ in range(5):
        view.inject_poison()
        button(widget, "Inject poison").click()
    view.advance(30)
    button(widget, "Advance 30 s").click()
    expect_engine("after five pills and 30 s")
    table = widget.locator("table.mq-dlq-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(widget).to_contain_text("5 messages (the newest 3 below)")
    cells = table.locator("tbody tr").first.locator("td")
    expect(cells).to_have_count(5)
    boxes = [cells.nth(i).bounding_box() for i in range(5)]
    gaps = [b["x"] - (a["x"] + a["width"]) for a, b in zip(boxes, boxes[1:], strict=False)]
    assert all(g >= 0 for g in gaps), gaps  # the cells do not overlap ...
    texts = [cells.nth(i).inner_text() for i in range(5)]
    assert texts[1] == "3" and texts[2].startswith("KeyError"), texts
    padding = cells.nth(1).evaluate("c => parseFloat(getComputedStyle(c).paddingRight)")
    assert padding >= 8  # ... and the text in them keeps apart
    expect_fits_the_screen(widget)
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch06-dead-letters-full-dlq.png")

    view.fix_bug()
    button(widget, "Deploy the fix").click()
    expect(summary).to_contain_text("fixed handler is deployed")
    view.replay()
    button(widget, "Replay").click()
    view.advance(5)
    button(widget, "Advance 5 s").click()
    expect_engine("after the fix, a replay and 5 s")
    expect(widget).to_contain_text("orders-dlq: empty")

    button(widget, "Settings: queue type, redrive, alert").click()
    slider = widget.locator(".widget-slider").filter(has_text="max receives")
    expect(slider).to_be_visible()
    drag_slider(page, widget, "max receives", 1.0)  # the right end: 10
    expect(slider.locator(".widget-readout")).to_have_text("10")
    view.set_max_receives(10)
    expect(summary).to_have_text(
        f"State: {engine.summary()} (Max receives is now 10, from each message's next receive.)"
    )
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch06-dead-letters-settings.png")

    storm_engine = RetryStormRun()
    storm = page.locator(".mq-view").filter(has_text="Calls reaching the dependency").last
    storm_summary = storm.locator(".mq-state")
    expect(storm_summary).to_have_text(state(storm_engine.summary()))
    expect_fits_the_screen(storm)
    storm.scroll_into_view_if_needed()
    storm.screenshot(path=screenshot_dir / "jupyterlab-ch06-retry-storm.png")
    drag_slider(page, storm, "consumers", 0.0)  # the left end: 20 consumers
    storm_engine.configure(consumers=20)
    expect(storm_summary).to_have_text(state(storm_engine.summary()))
    table = storm.locator("table.mq-table")
    expect(table.locator("tbody tr").first).to_contain_text(
        str(storm_engine.table()[0]["all done at (s)"])
    )
    head = table.locator("th")
    boxes = [head.nth(i).bounding_box() for i in range(head.count())]
    assert all(b["x"] >= a["x"] + a["width"] for a, b in zip(boxes, boxes[1:], strict=False)), boxes
    labels = storm.locator(".widget-slider .widget-label")
    for i in range(labels.count()):  # every slider's name in full, none cut to "…"
        assert labels.nth(i).evaluate("l => l.scrollWidth <= l.clientWidth + 1"), i
    expect(storm.locator(".bqplot[role=img]")).to_have_attribute(
        "aria-label", RetryStorm(storm_engine).describe_charts()[0]
    )


@pytest.mark.parametrize("lab", [CH06], indirect=True)
def test_dead_letters_with_the_keyboard_and_a_screen_reader(page, lab, screenshot_dir):
    """Chapter 6 without a mouse: the buttons in reading order with a focus ring, the Settings
    section opened from the keyboard, a slider moved with an arrow key, the live region's text,
    the charts' names, axe-core."""
    from playwright.sync_api import expect

    engine = dead_letter_run()
    open_and_run_all(page, lab, CH06)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    widget = live_widget(page, "Inject poison", count=2)
    live = widget.locator(".mq-state")
    expect(live).to_have_attribute("aria-live", "polite", timeout=RUN_ALL_TIMEOUT)
    expect(live).to_have_text(state(engine.summary()))
    charts = widget.locator(".bqplot[role=img]")
    expect(charts).to_have_count(2)
    for i, sentence in enumerate(DeadLetters(engine).describe_charts()):
        expect(charts.nth(i)).to_have_attribute("aria-label", sentence)

    button(widget, "Stop").focus()
    order, rings = [page.evaluate(FOCUSED)], [page.evaluate(FOCUS_RING)]
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
        rings.append(page.evaluate(FOCUS_RING))
    assert order[:8] == [
        "Stop",
        "Inject poison",
        "Advance 1 s",
        "Advance 5 s",
        "Advance 30 s",
        "Start over",
        "Replay",  # "Fix deployed" is disabled, so Tab passes it
        "Purge",
    ], order
    assert order[8] == "Settings: queue type, redrive, alert", order  # collapsed, then
    assert all(style != "none" and width >= 2 for style, width in rings), rings
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch06-focus.png")

    page.keyboard.press("Enter")  # opens the Settings section
    slider = widget.locator(".widget-slider").filter(has_text="max receives")
    expect(slider).to_be_visible()

    view = DeadLetters(engine)
    button(widget, "Start over").focus()
    page.keyboard.press("Enter")
    view.start_over()
    expect(live, "Enter on 'Start over'").to_have_text(
        f"State: {view.run.summary()} (A fresh run on a standard queue: t=0, producer stopped, "
        "the bug is back.)"
    )
    button(widget, "Inject poison").focus()
    page.keyboard.press("Space")
    view.inject_poison()
    button(widget, "Advance 30 s").focus()
    page.keyboard.press("Enter")
    view.advance(30)
    expect(live, "Space and Enter").to_have_text(state(view.run.summary()))
    for i, sentence in enumerate(view.describe_charts()):
        expect(charts.nth(i)).to_have_attribute("aria-label", sentence)

    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    view.set_max_receives(4)
    expect(slider.locator(".widget-readout")).to_have_text("4")
    expect(live, "ArrowRight on max receives").to_have_text(
        f"State: {view.run.summary()} (Max receives is now 4, from each message's next receive.)"
    )

    page.add_script_tag(path=str(ROOT / "node_modules" / "axe-core" / "axe.min.js"))
    findings = widget.evaluate(AXE)
    assert not findings, findings

    # The retry storm: its sliders by keyboard, its live state line and chart name, axe-core.
    storm = page.locator(".mq-view").filter(has_text="Calls reaching the dependency").last
    storm_live = storm.locator(".mq-state")
    engine = RetryStormRun()
    expect(storm_live).to_have_attribute("aria-live", "polite")
    expect(storm_live).to_have_text(state(engine.summary()))
    handle = storm.locator(".widget-slider").filter(has_text="max attempts").locator(".noUi-handle")
    handle.focus()
    assert page.evaluate(FOCUSED) == "max attempts"
    ring = page.evaluate(FOCUS_RING)
    assert ring[0] != "none" and ring[1] >= 2, ring
    page.keyboard.press("ArrowLeft")
    engine.configure(max_attempts=9)
    expect(storm_live, "ArrowLeft on max attempts").to_have_text(state(engine.summary()))
    expect(storm.locator(".bqplot[role=img]")).to_have_attribute(
        "aria-label", RetryStorm(engine).describe_charts()[0]
    )
    findings = storm.evaluate(AXE)
    assert not findings, findings
