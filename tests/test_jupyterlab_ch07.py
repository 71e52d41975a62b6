"""Chapter 7's simulations as a learner meets them: a real JupyterLab in Chromium, Run All, clicks.

The helpers and the server come from ``test_jupyterlab.py``. For every action the test clicks, it
makes the same call on a view of its own in this process (the "mirror"), and the page must show
what the mirror computes: the same state line, word for word, and the same marks in the chart
(each record, deleted offset, log end and group triangle is one drawn dot; each replica cell one
role label). Screenshots go to ``screenshots/jupyterlab-ch07-*.png``.
"""

from __future__ import annotations

import re

import pytest
import test_jupyterlab
from test_jupyterlab import (
    AXE,
    FOCUS_RING,
    LABEL_TEXTS,
    LIVE_OUTPUT,
    ROOT,
    RUN_ALL_TIMEOUT,
    assert_no_clipped_text,
    button,
    drag_slider,
    expect_fits_the_screen,
    live_widget,
    open_and_run_all,
    wait_until_every_cell_ran,
)

from mqlib.widgets import KafkaCluster, KafkaLog, Rebalancing

# The JupyterLab server and the browser page are test_jupyterlab's fixtures.
lab = test_jupyterlab.lab
page = test_jupyterlab.page

pytestmark = pytest.mark.slow

NB = "07-kafka-architecture.ipynb"
KERNEL_START_TIMEOUT = 180_000  # ms; about 5 s when idle, 47 s seen with eight test runs at once
DOTS = "fig => fig.querySelectorAll('.dot').length"
# What the keyboard focus is on: a dropdown's chosen option, a checkbox's label, a button's text.
FOCUSED = """() => { const e = document.activeElement;
    if (e.tagName === 'SELECT') return 'select ' + e.options[e.selectedIndex].text;
    if (e.type === 'checkbox')
        return 'checkbox ' +
            e.closest('.widget-checkbox').textContent.replace(/\u200b/g, '').trim();
    return e.getAttribute('aria-label') || e.textContent.trim() || e.tagName; }"""


def state_text(mirror) -> str:
    """The state line's text as the page shows it: the summary, then the latest action's note."""
    text = re.sub(r"<[^>]+>", "", mirror.summary_label.value.split("<img")[0])
    return re.sub(r"\s+", " ", text.replace("&#x27;", "'").replace("&amp;", "&")).strip()


def dots(view: KafkaLog) -> int:
    return sum(
        len(mark.x)
        for mark in (view.deleted_mark, view.record_mark, view.next_mark, view.group_mark)
    )


def open_chapter(page, lab):
    """Open the chapter, Run All and wait for every cell. The kernel may take longer than
    ``open_and_run_all`` allows to start on a loaded machine, so wait for it here first."""
    from playwright.sync_api import expect

    url, token = lab
    page.goto(f"{url}/lab/tree/{NB}?token={token}", wait_until="domcontentloaded")
    status = page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) |")
    expect(status).to_have_text("Python 3 (ipykernel) | Idle", timeout=KERNEL_START_TIMEOUT)
    open_and_run_all(page, lab, NB)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})


def expect_state(live, mirror, what: str) -> None:
    from playwright.sync_api import expect

    expect(live, what).to_have_text(
        re.compile(rf"^\s*{re.escape(state_text(mirror))}\s*$"), timeout=RUN_ALL_TIMEOUT
    )


@pytest.mark.parametrize("lab", [NB], indirect=True)
def test_kafka_widgets_in_jupyterlab(page, lab, screenshot_dir):
    """The log, the rebalancing group and the cluster after Run All: each opens on its default
    run, fits the screen, and after each click (and a dragged retention slider) shows the state
    line and the marks that the same calls give in this process."""
    from playwright.sync_api import expect

    open_chapter(page, lab)

    # -- the log: two views (the second one is the scripted audit demonstration)
    mirror = KafkaLog()
    widget = live_widget(page, "Poll all", count=2)
    live = widget.locator(".mq-state")
    figure = widget.locator(".bqplot").first

    def expect_log(what: str) -> None:
        expect_state(live, mirror, what)
        page.wait_for_function(
            f"([fig, n]) => ({DOTS})(fig) === n",
            arg=[figure.element_handle(), dots(mirror)],
            timeout=RUN_ALL_TIMEOUT,
        )
        assert_no_clipped_text(widget)

    expect_log("the log view opens on default_run()")
    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-log.png")

    mirror.produce("order-42", "delivered")
    button(widget, "Produce").click()
    expect_log("after Produce")
    widget.locator("select").nth(2).select_option("analytics")  # key, value, group
    mirror.consume("analytics")
    button(widget, "Poll all").click()
    expect_log("after Poll all for analytics")
    drag_slider(page, widget, "retention (s)", 0.0)  # the left end: 5 s
    expect(widget.locator(".widget-slider").filter(has_text="retention")).to_contain_text("5")
    mirror.set_retention(5)
    expect_log("after dragging retention to 5 s")
    mirror.advance(5.0)
    button(widget, "Advance 5 s").click()
    expect_log("after Advance 5 s")
    # only the record produced 5 s ago is left: exactly retention.ms old, not older
    assert [r["value"] for rs in mirror.run.logs().values() for r in rs] == ["delivered"]
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-log-after.png")

    # -- rebalancing
    mirror = Rebalancing()
    widget = live_widget(page, "Stall 400 s")
    live = widget.locator(".mq-state")
    figure = widget.locator(".bqplot").first

    def expect_rebalancing(what: str) -> None:
        expect_state(live, mirror, what)
        n = len(mirror.work_mark.x) + len(mirror.paused_mark.x)
        page.wait_for_function(
            f"([fig, n]) => ({DOTS})(fig) === n",
            arg=[figure.element_handle(), n],
            timeout=RUN_ALL_TIMEOUT,
        )
        assert_no_clipped_text(widget)

    expect_rebalancing("the rebalancing view opens on default_run()")
    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-rebalancing.png")
    widget.locator("select").first.select_option("cooperative")
    mirror.settings(protocol="cooperative")
    expect_rebalancing("after choosing cooperative")
    widget.locator("select").nth(1).select_option("c2")
    mirror.stall("c2", 400.0)
    button(widget, "Stall 400 s").click()
    expect_rebalancing("after Stall 400 s")
    for _ in range(7):
        mirror.advance(60)
        button(widget, "Advance 60 s").click()
    expect_rebalancing("seven times Advance 60 s later")
    expect(widget).to_contain_text("c2 rejoined after CommitFailedException")
    expect_fits_the_screen(widget)  # the list of rounds shows only the latest three
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-rebalancing-after.png")

    # -- the cluster: the chapter's view and the RF 2 view (the scripted second view prints only)
    mirror = KafkaCluster()
    widget = live_widget(page, "Run the failure script", count=2)
    live = widget.locator(".mq-state")
    figure = widget.locator(".bqplot").first

    def expect_cluster(what: str) -> None:
        expect_state(live, mirror, what)
        roles = sorted(f"{r}" for r in mirror.role_labels.text)
        page.wait_for_function(
            f"([fig, want]) => JSON.stringify(({LABEL_TEXTS})(fig)"
            ".filter(t => !t.startsWith('LEO')).sort()) === want",
            arg=[figure.element_handle(), str(roles).replace("'", '"').replace(", ", ",")],
            timeout=RUN_ALL_TIMEOUT,
        )
        assert_no_clipped_text(widget)

    expect_cluster("the cluster view opens on default_run()")
    expect_fits_the_screen(widget)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-cluster.png")
    mirror.kill_broker(2)
    button(widget, "Kill broker 2").click()
    expect_cluster("after Kill broker 2")
    mirror.produce("order-42", "event", acks="all")
    button(widget, "Produce").click()
    expect_cluster("after Produce right after the kill")
    expect(widget).to_contain_text("LeaderNotAvailableError")
    mirror.advance(10.0)
    button(widget, "Advance 10 s").click()
    expect_cluster("after Advance 10 s")
    mirror.produce("order-42", "event", acks="all")
    button(widget, "Produce").click()
    expect_cluster("after Produce below min.insync.replicas")
    expect(widget).to_contain_text("NotEnoughReplicasError")
    mirror.restart_broker(1)
    button(widget, "Restart broker 1").click()
    expect_cluster("after Restart broker 1")
    mirror.advance(1.0)
    button(widget, "Advance 1 s").click()
    expect_cluster("after Advance 1 s")
    expect_fits_the_screen(widget)
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-cluster-after.png")

    rf2 = page.locator(LIVE_OUTPUT).filter(has=button(page, "Run the failure script")).nth(1)
    rf2.scroll_into_view_if_needed()
    expect_fits_the_screen(rf2)
    expect(rf2).to_contain_text("51: p0 offsets 10-60 (acknowledged)")
    rf2.screenshot(path=screenshot_dir / "jupyterlab-ch07-durability.png")


@pytest.mark.parametrize("lab", [NB], indirect=True)
def test_kafka_cluster_with_the_keyboard_and_a_screen_reader(page, lab, screenshot_dir):
    """The cluster view without a mouse: Tab goes through its controls in reading order with a
    visible focus ring; Enter and Space press buttons; the live state line becomes the engine's;
    the chart is an image named by what it shows; axe-core finds nothing serious or critical in
    any of the chapter's views."""
    from playwright.sync_api import expect

    open_chapter(page, lab)
    mirror = KafkaCluster()
    widget = live_widget(page, "Run the failure script", count=2)
    live = widget.locator(".mq-state")
    expect(live).to_have_attribute("aria-live", "polite", timeout=RUN_ALL_TIMEOUT)
    expect(live).to_have_attribute("role", "status")
    expect_state(live, mirror, "opening state")
    chart = widget.locator(".bqplot[role=img]")
    expect(chart).to_have_count(1)
    expect(chart).to_have_attribute("aria-label", mirror.describe_charts()[0])

    widget.locator("select").first.focus()
    order = [page.evaluate(FOCUSED)]
    rings = [page.evaluate(FOCUS_RING)]
    for _ in range(9):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
        rings.append(page.evaluate(FOCUS_RING))
    assert order == [
        "select order-42",
        "select all",
        "Produce",
        "Restart broker 1",
        "Kill broker 2",
        "Kill broker 3",
        "Advance 1 s",
        "Advance 10 s",
        "checkbox unclean leader election",
        "Run the failure script",
    ], order
    assert all(style != "none" and width >= 2 for style, width in rings), rings
    widget.screenshot(path=screenshot_dir / "jupyterlab-ch07-cluster-focus.png")

    button(widget, "Kill broker 2").focus()
    page.keyboard.press("Enter")
    mirror.kill_broker(2)
    expect_state(live, mirror, "Enter on Kill broker 2")
    button(widget, "Advance 10 s").focus()
    page.keyboard.press("Space")
    mirror.advance(10.0)
    expect_state(live, mirror, "Space on Advance 10 s")
    expect(chart).to_have_attribute("aria-label", mirror.describe_charts()[0])

    page.add_script_tag(path=str(ROOT / "node_modules" / "axe-core" / "axe.min.js"))
    for label, count in (("Poll all", 2), ("Stall 400 s", 1), ("Run the failure script", 2)):
        view = live_widget(page, label, count=count)
        findings = view.evaluate(AXE)
        assert not findings, (label, findings)
