"""Every "Try this" bullet of chapters 0, 1, 2 and 4 does what it says.

Each test takes the chapter's simulation in the state the notebook leaves it after Run All: the
notebook's own code cells are executed in-process (the cell that builds the widget, and every later
cell that touches the same variable), so a cell added later that drives the widget again would
show up here. Then the test follows one bullet as a learner would, by clicking the widget's
buttons and moving its controls (not by calling the methods), and asserts the outcome the bullet
promises, read from the chart's marks and the state line.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mqlib import OrderFlow

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"


def code_cells(notebook: str) -> list[str]:
    cells = json.loads((CHAPTERS / notebook).read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def markdown(notebook: str) -> str:
    cells = json.loads((CHAPTERS / notebook).read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def run_cell(source: str, namespace: dict):
    """Execute a notebook cell; return the value of its last line if that is an expression (what
    the notebook displays)."""
    tree = ast.parse(source)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the course's own notebook
    if last is not None:
        return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)  # noqa: S307
    return None


def notebook_widget(notebook: str, view: str):
    """The ``view`` widget the notebook displays first, after every later cell that uses the same
    variable has run (as Run All leaves it)."""
    cells = code_cells(notebook)
    start = next(i for i, c in enumerate(cells) if f"from mqlib.widgets import {view}" in c)
    namespace: dict = {}
    shown = run_cell(cells[start], namespace)
    names = [n for n, v in namespace.items() if type(v).__name__ == view]
    if names:  # ``sim = View(); sim``: later cells that use ``sim`` change what the chart shows
        (name,) = names
        shown = namespace[name]
        for cell in cells[start + 1 :]:
            if re.search(rf"\b{name}\b", cell):
                run_cell(cell, namespace)
    assert type(shown).__name__ == view, f"{notebook}: the widget cell shows {shown!r}"
    return shown


def descendants(widget):
    for child in getattr(widget, "children", ()):
        yield child
        yield from descendants(child)


def click(view, label: str) -> None:
    """Click the button labelled ``label`` (exactly one must exist)."""
    found = [b for b in descendants(view.view) if getattr(b, "description", None) == label]
    found = [b for b in found if hasattr(b, "click")]
    assert len(found) == 1, f"{len(found)} buttons labelled {label!r}"
    assert not found[0].disabled, f"{label!r} is disabled"
    found[0].click()


def state_line(view) -> str:
    return re.sub(r"<[^>]+>", "", view.summary_label.value.split("<img")[0])


def bullets(notebook: str, heading: str = "## Run it") -> list[str]:
    text = markdown(notebook)
    section = text[text.index(heading) :]
    section = section[section.index("Try this:") :].split("\n\n")[0]
    return [line[2:] for line in section.splitlines() if line.startswith("- ")]


# -- chapter 0 ------------------------------------------------------------------------------------
CH00 = "00-the-problem.ipynb"


@pytest.fixture
def ch00():
    return notebook_widget(CH00, "SyncVsAsync")


def test_ch00_has_the_four_bullets_these_tests_follow():
    assert [b.split(" ")[0] for b in bullets(CH00)] == ["Switch", "In", "Back", "Lower"]


def test_ch00_switch_to_asynchronous_and_the_user_answer_comes_sooner(ch00):
    sync_wait = ch00.result.user_wait_ms
    ch00.mode_control.value = "async"
    assert ch00.result.user_wait_ms == 55 < sync_wait == 8280
    assert ch00.user_mark.x[0] == 55
    assert "user sees 'confirmed' at 55 ms" in ch00.user_label.text[0]


def test_ch00_email_latency_does_not_change_the_asynchronous_wait(ch00):
    ch00.mode_control.value = "async"
    before = ch00.result.user_wait_ms
    email_bar_before = np.asarray(ch00.work_mark.x, dtype=float)[3]
    ch00.latency_controls["email"].value = 6000
    assert ch00.result.user_wait_ms == before == 55
    email_bar = np.asarray(ch00.work_mark.x, dtype=float)[3]
    assert email_bar[1] - email_bar[0] == 6000 != email_bar_before[1] - email_bar_before[0]


def test_ch00_analytics_down_breaks_every_synchronous_order(ch00):
    assert ch00.mode_control.value == "sync"
    ch00.down_controls["warehouse"].value = False
    ch00.down_controls["analytics"].value = True
    r = ch00.result
    status = {s.service: s.status for s in r.steps}
    assert status == {
        "payment": "ok",
        "inventory": "ok",
        "email": "ok",
        "warehouse": "ok",
        "analytics": "timeout",
    }
    assert r.outcome != "confirmed" and r.inconsistent
    assert "user sees 'error'" in ch00.user_label.text[0]
    assert "analytics was never told" in state_line(ch00)


def test_ch00_lower_timeout_shortens_the_wait_but_not_the_partial_failure(ch00):
    before = ch00.result.user_wait_ms
    assert ch00.result.inconsistent
    ch00.timeout_control.value = 1000
    assert ch00.result.user_wait_ms < before
    assert ch00.result.inconsistent
    assert "Inconsistent" in state_line(ch00)


def test_ch00_code_try_this_a_timeout_guards_against_silence_not_refusal():
    text = markdown(CH00)
    assert 'OrderFlow("sync", failure="refuse", timeout_ms=30_000)' in text
    waits = {
        (failure, timeout): OrderFlow("sync", failure=failure, timeout_ms=timeout).run()
        for failure in ("refuse", "hang")
        for timeout in (5000, 30_000)
    }
    assert waits["refuse", 30_000].user_wait_ms == waits["refuse", 5000].user_wait_ms
    assert waits["hang", 30_000].user_wait_ms == waits["hang", 5000].user_wait_ms + 25_000


def test_ch00_controls_that_change_nothing_visible_say_so(ch00):
    ch00.recovery_control.value = 2000  # sync mode: nobody waits for the recovery
    assert "only in asynchronous mode" in state_line(ch00)
    ch00.latency_controls["analytics"].value = 500  # never reached: the chain stops at warehouse
    assert "never called" in state_line(ch00)


# -- chapter 1 ------------------------------------------------------------------------------------
CH01 = "01-point-to-point.ipynb"


@pytest.fixture
def ch01():
    return notebook_widget(CH01, "PointToPoint")


def alive(view) -> list[str]:
    return [n for n, c in view.run.consumers.items() if c.alive]


def test_ch01_has_the_four_bullets_these_tests_follow():
    assert [b.split(" ")[0] for b in bullets(CH01)] == ["**Burst", "Send", "Set", "B"]


def test_ch01_the_widget_shows_its_opening_run_after_run_all(ch01):
    """The scripted demonstration drives a widget of its own."""
    assert ch01.summary().startswith("t=20s: sent 12")
    assert "B 1 (crashed)" in ch01.summary()


def test_ch01_burst_then_advance_drains_waiting_with_one_in_flight_per_live_consumer(ch01):
    start = ch01.run.now
    click(ch01, "Burst of 10")
    waiting = [ch01.run.queue.visible_count]
    for _ in range(4):
        click(ch01, "Advance 5 s")
        waiting.append(ch01.run.queue.visible_count)
    assert waiting[0] > 0 and waiting[-1] == 0
    assert all(a >= b for a, b in zip(waiting, waiting[1:], strict=False)), waiting
    series = ch01.run.series
    busy = [
        f
        for t, v, f in zip(series["time"], series["visible"], series["in_flight"], strict=True)
        if t >= start and v > 0
    ]
    assert busy and set(busy) == {len(alive(ch01))} == {2}
    # The chart draws the same step line (it sends only the samples where the line changes).
    x, y = np.asarray(ch01.depth_mark.x), np.asarray(ch01.depth_mark.y)
    drawn = y[np.searchsorted(x, series["time"], side="right") - 1]
    assert drawn.tolist() == series["visible"]


def test_ch01_crash_a_keeps_its_message_in_flight_for_the_visibility_timeout(ch01):
    click(ch01, "Burst of 10")
    crashed_at = ch01.run.now
    click(ch01, "Crash A")
    assert "A crashed holding" in state_line(ch01)
    dropped = re.search(r"holding (\S+):", state_line(ch01)).group(1)
    for _ in range(4):
        click(ch01, "Advance 5 s")
    receives = [e for e in ch01.run.sim.trace.of_kind("receive") if e.data["message"] == dropped]
    timeout = ch01.run.queue.visibility_timeout
    assert [e.data["consumer"] for e in receives][0] == "A"
    again = receives[1]
    assert again.data["consumer"] != "A" and again.time >= crashed_at + timeout
    series = ch01.run.series
    assert all(
        f >= 1
        for t, f in zip(series["time"], series["in_flight"], strict=True)
        if crashed_at <= t < crashed_at + timeout
    )
    click(ch01, "Restart A")
    assert ch01.run.consumers["A"].alive


def test_ch01_visibility_timeout_below_the_work_time_redelivers_yet_empties(ch01):
    sent, processed = ch01.run.queue.sent_count, sum(ch01.run.processed_by().values())
    redelivered = len(ch01.run.redeliveries())
    ch01.visibility_control.value = 2.0  # C needs 2.5 s per message
    assert "from now on" in state_line(ch01)
    click(ch01, "Burst of 10")
    for _ in range(10):
        click(ch01, "Advance 5 s")
    assert len(ch01.run.redeliveries()) > redelivered
    extra_processings = sum(ch01.run.processed_by().values()) - processed
    assert extra_processings > ch01.run.queue.sent_count - sent == 10
    assert list(ch01.count_mark.y) == list(ch01.run.processed_by().values())
    assert ch01.run.queue.visible_count == 0 and ch01.run.series["in_flight"][-1] == 0


def drain_time(view) -> float:
    start = view.run.now
    click(view, "Burst of 10")
    while view.run.queue.visible_count or view.run.series["in_flight"][-1]:
        click(view, "Advance 1 s")
        assert view.run.now - start < 120
    return view.run.now - start


def test_ch01_with_two_consumers_down_the_last_one_does_everything_more_slowly(ch01):
    both = drain_time(notebook_widget(CH01, "PointToPoint"))
    assert alive(ch01) == ["A", "C"]
    done_before = ch01.run.processed_by()
    click(ch01, "Crash A")
    assert alive(ch01) == ["C"]
    alone = drain_time(ch01)
    done = ch01.run.processed_by()
    assert done["C"] - done_before["C"] == 10
    assert done["A"] == done_before["A"] and done["B"] == done_before["B"]
    assert alone > both
    # The crashed consumers' bars are grey, and the legend says what grey means.
    assert list(ch01.count_mark.colors)[:2] == ["#767676", "#767676"]


# -- chapter 2 ------------------------------------------------------------------------------------
CH02 = "02-publish-subscribe.ipynb"


@pytest.fixture
def ch02():
    return notebook_widget(CH02, "PubSub")


def column_heights(view) -> list[int]:
    """Blocks drawn in each column of the left chart that holds a message (delivered and
    waiting)."""
    first, last = view.window()  # the slots' message numbers; the published ones are filled
    shown = min(last, view.run.published) - first + 1
    return [int(round(sum(col))) for col in zip(*view.copies_mark.y, strict=True)][:shown]


def group_button(view, group: str, label: str):
    return next(
        b for b in descendants(view._rows[group]["box"]) if getattr(b, "description", "") == label
    )


def test_ch02_has_the_five_bullets_these_tests_follow():
    assert [b.split(" ")[0] for b in bullets(CH02)] == [
        "**Publish",
        "**Unsubscribe**",
        "Press",
        "Give",
        "Pick",
    ]


def test_ch02_the_widget_shows_its_opening_run_after_run_all(ch02):
    assert ch02.run.published == 10
    assert list(ch02.run.groups()) == ["payment", "email", "analytics", "inventory"]


def test_ch02_each_new_column_is_as_tall_as_the_number_of_groups(ch02):
    for _ in range(3):
        click(ch02, "Publish 1")
    assert column_heights(ch02)[-3:] == [len(ch02.run.groups())] * 3 == [4, 4, 4]


def test_ch02_unsubscribing_email_shortens_new_columns_by_one(ch02):
    group_button(ch02, "email", "Unsubscribe").click()
    click(ch02, "Publish 1")
    assert column_heights(ch02)[-2:] == [4, 3]
    assert ch02.run.published == 11  # the producer did nothing different: one message


def test_ch02_analytics_without_members_waits_then_a_new_member_gets_the_backlog(ch02):
    remove = group_button(ch02, "analytics", "− member")
    while not remove.disabled:
        remove.click()
    click(ch02, "Publish 1")
    click(ch02, "Publish 1")
    row = ch02.copies()["groups"]["analytics"]
    assert row["waiting"][-2:] == [1, 1] and row["member"][-2:] == [None, None]
    assert "…" in list(ch02.member_labels.text)
    assert "#BBBBBB" in list(ch02.copies_mark.colors)
    group_button(ch02, "analytics", "+ member").click()
    newest = ch02.run.groups()["analytics"][-1]
    assert ch02.run.deliveries()["analytics"][newest] == 2
    assert ch02.run.pending()["analytics"] == 0
    assert "received the 2 waiting" in state_line(ch02)


def test_ch02_a_third_payment_member_takes_every_third_message(ch02):
    group_button(ch02, "payment", "+ member").click()
    for _ in range(6):
        click(ch02, "Publish 1")
    members = ch02.copies()["groups"]["payment"]["member"][-6:]
    numbers = [m.split("-")[-1] for m in members]
    assert sorted(numbers) == ["1", "1", "2", "2", "3", "3"]
    assert numbers[:3] == numbers[3:]  # a cycle through the three members


def test_ch02_a_new_warehouse_group_appears_on_top_from_its_first_message(ch02):
    assert "warehouse" in ch02.new_group_name.options
    ch02.new_group_name.value = "warehouse"
    click(ch02, "Subscribe")
    click(ch02, "Publish 1")
    click(ch02, "Publish 1")
    row = ch02.copies()["groups"]["warehouse"]
    assert row["delivered"] == [0] * (len(row["delivered"]) - 2) + [1, 1]
    assert ch02.group_order()[-1] == "warehouse"  # the last stacked block: on top
    assert column_heights(ch02)[-1] == 5


def test_ch02_the_chart_says_it_shows_only_the_latest_messages(ch02):
    assert ch02.copies_figure.title == "Who got each message"
    for _ in range(3):
        click(ch02, "Publish 5")
    assert ch02.copies_figure.title == "Who got each message (11 to 25 of 25)"
    assert len(ch02.copies_mark.x) == 20


# -- chapter 4 ------------------------------------------------------------------------------------
CH04 = "04-message-ordering.ipynb"


@pytest.fixture
def ch04():
    return notebook_widget(CH04, "MessageOrdering")


def rings(view) -> int:
    return len(view.ring_mark.x)


def test_ch04_has_the_five_bullets_these_tests_follow():
    assert [b.split(" ")[0] for b in bullets(CH04)] == ["Switch", "Back", "Keep", "Set", "Press"]


def test_ch04_opens_keyed_without_rings(ch04):
    assert ch04.run.mode == "partitions" and ch04.run.keyed and rings(ch04) == 0


def test_ch04_one_queue_ships_order_42_before_it_is_created(ch04):
    ch04.mode_control.value = "queue"
    order_42 = ch04.run.sequences()[42]
    assert order_42.index("shipped") < order_42.index("created")
    assert rings(ch04) == len(ch04.run.violations()) > 0


def test_ch04_unkeyed_partitions_bring_the_rings_back(ch04):
    ch04.mode_control.value = "queue"
    ch04.mode_control.value = "partitions"
    assert rings(ch04) == 0
    ch04.keyed_control.value = False
    assert rings(ch04) == len(ch04.run.violations()) > 0
    assert "Unkeyed" in ch04.routing_html.value


def test_ch04_keyed_no_jitter_or_consumer_setting_produces_a_ring(ch04):
    jitters = np.round(np.arange(0.0, 0.51, 0.05), 2)
    for consumers in range(1, ch04.consumer_control.max + 1):
        ch04.consumer_control.value = consumers
        for jitter in jitters:
            ch04.jitter_control.value = float(jitter)
            assert rings(ch04) == 0, (consumers, jitter)
            assert len(ch04.event_mark.x) == 9


def test_ch04_consumers_beyond_the_partitions_sit_idle(ch04):
    ch04.consumer_control.value = ch04.run.partitions + 2
    idle = [c for c, parts in ch04.run.assignment().items() if not parts]
    assert idle == ["E", "F"]
    assert "idle (no partition left for them): E, F" in ch04.routing_html.value


def test_ch04_start_over_send_and_advance_unfold_the_run(ch04):
    click(ch04, "Start over")
    assert len(ch04.event_mark.x) == 0
    click(ch04, "Send a batch")
    assert "Sent 9 events" in state_line(ch04)
    seen = []
    for _ in range(30):
        click(ch04, "Advance 0.1 s")
        seen.append(len(ch04.event_mark.x))
    assert seen == sorted(seen) and seen[-1] == 9
    assert len(set(seen)) > 3  # it unfolds step by step, not all at once
