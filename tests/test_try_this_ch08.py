"""Every "Try this" bullet of chapter 8 (the message queue playground) does what it says.

As in ``test_try_this.py``: the widget is taken in the state the notebook leaves it after Run All
(its own cells are executed in-process), then each test follows one bullet by clicking the
widget's buttons and moving its controls, and asserts what the bullet promises, read from the
chart's marks, the cards and the state line.
"""

from __future__ import annotations

import html

import pytest
from test_try_this import bullets, click, notebook_widget, run_cell
from test_try_this import state_line as raw_state_line

from mqlib.scenarios.playground import default_run

CH08 = "08-simulator.ipynb"


@pytest.fixture
def ch08():
    return notebook_widget(CH08, "MessageQueueSimulator")


def state_line(view) -> str:
    """The state line as a reader sees it (entities decoded)."""
    return html.unescape(raw_state_line(view))


def depth_now(view) -> int:
    assert list(view.depth_mark.y)[-1] == view.run.queue.depth  # the chart shows the queue
    return view.run.queue.depth


def test_ch08_has_the_seven_bullets_these_tests_follow():
    found = bullets(CH08, "## Try it")
    assert len(found) == 7, found
    assert found[0].startswith("Press **Advance 30 s**")
    assert found[4].startswith("Set the rate to 15 msg/s with one consumer alive")
    assert found[5].startswith("Press **Drain**")


def test_ch08_the_widget_shows_its_opening_run_after_run_all(ch08):
    assert ch08.summary() == default_run().summary()
    assert state_line(ch08).startswith(f"State: {ch08.summary()}")
    assert max(ch08.depth_mark.y) > 10  # the backlog while B was dead
    assert list(ch08.dlq_mark.y)[-1] == 1  # the pill, dead-lettered


def test_ch08_advance_30_s_shrinks_the_backlog_to_nearly_nothing(ch08):
    click(ch08, "Advance 30 s")
    assert ch08.run.now == 60
    assert depth_now(ch08) <= 3  # three consumers (6 msg/s) against 5 msg/s
    second_half = list(ch08.depth_mark.y)[-30:]
    assert max(second_half) <= 3


def test_ch08_two_dead_consumers_make_the_queue_grow_about_3_per_second(ch08):
    click(ch08, "Kill A")
    click(ch08, "Kill B")
    assert "dead" in ch08.consumer_labels["A"].value and "dead" in ch08.consumer_labels["B"].value
    start = depth_now(ch08)
    click(ch08, "Advance 30 s")
    growth = (depth_now(ch08) - start) / 30
    assert growth == pytest.approx(5 - 2, abs=0.2)


def test_ch08_without_a_dlq_a_pill_comes_back_forever_until_the_dlq_is_back(ch08):
    ch08.dlq_control.value = False
    assert "DLQ detached" in state_line(ch08)
    # the card and the chart agree: the DLQ is off but still holds the pill it took before
    assert "off" in ch08.dlq_label.value and "keeps 1 message: m27" in ch08.dlq_label.value
    assert list(ch08.dlq_mark.y)[-1] == 1 and "DLQ off (1 dead letter kept)" in ch08.summary()
    click(ch08, "Inject poison pill")
    pill = ch08.run.poison_ids[-1]
    assert f"Poison pill {pill}" in state_line(ch08)
    for _ in range(4):
        click(ch08, "Advance 5 s")
    receives = [e.time for e in ch08.run.sim.trace.of_kind("receive") if e.data["message"] == pill]
    assert len(receives) >= 8  # far past max receives 3
    gaps = {round(b - a, 6) for a, b in zip(receives, receives[1:], strict=False)}
    assert min(gaps) >= 2.0 and max(gaps) <= 2.5  # back every visibility timeout (2 s)
    assert pill in ch08.run.queue.messages and list(ch08.dlq_mark.y)[-1] == 1
    ch08.dlq_control.value = True
    click(ch08, "Advance 5 s")
    assert pill in [d["message_id"] for d in ch08.run.dlq.inspect()]
    assert list(ch08.dlq_mark.y)[-1] == 2
    assert "on: 2 messages" in ch08.dlq_label.value


def test_ch08_fix_bug_then_replay_processes_the_dead_letters(ch08):
    click(ch08, "Fix bug")
    assert "Fix deployed" in state_line(ch08) and "bug fixed" in ch08.summary()
    assert "handler: bug fixed" in ch08.dlq_label.value
    letters = [d["message_id"] for d in ch08.run.dlq.inspect()]
    assert letters
    click(ch08, "Replay DLQ")
    assert f"Replayed {len(letters)}" in state_line(ch08)
    assert list(ch08.dlq_mark.y)[-1] == 0
    click(ch08, "Advance 5 s")
    processed = {e.data["message"] for e in ch08.run.sim.trace.of_kind("processed")}
    assert set(letters) <= processed
    click(ch08, "Replay DLQ")
    assert "nothing to replay" in state_line(ch08)


def one_consumer_at_15(view) -> None:
    click(view, "Kill B")
    click(view, "Kill C")
    view.rate_control.value = 15.0
    assert "from its next message" in state_line(view)


def test_ch08_backpressure_ticked_at_once_holds_the_capacity_at_the_consumers_pace(ch08):
    one_consumer_at_15(ch08)
    ch08.backpressure_control.value = True
    assert "Backpressure on" in state_line(ch08)
    for _ in range(4):
        click(ch08, "Advance 5 s")
    capacity = ch08.capacity_control.value
    assert max(ch08.depth_mark.y[-20:]) == capacity == depth_now(ch08)
    # the orange line (sent) falls to the green one (processed): about 2 msg/s
    assert list(ch08.producer_mark.y)[-1] == pytest.approx(2.0, abs=0.6)
    assert list(ch08.throughput_mark.y)[-1] == pytest.approx(2.0, abs=0.6)
    assert f"{ch08.run.state()['held_back']} held back" in state_line(ch08)
    assert ch08.run.state()["held_back"] > 200


def test_ch08_backpressure_ticked_over_capacity_drains_to_it_never_at_zero(ch08):
    one_consumer_at_15(ch08)
    click(ch08, "Advance 5 s")
    assert depth_now(ch08) > ch08.capacity_control.value + 30
    ch08.backpressure_control.value = True
    line = state_line(ch08)
    assert "drains to it while the producer sends one message for every two processed" in line
    before = ch08.run.state()
    click(ch08, "Advance 5 s")
    click(ch08, "Advance 5 s")
    after = ch08.run.state()
    sent, processed = after["sent"] - before["sent"], after["processed"] - before["processed"]
    assert sent == processed // 2 > 0  # half of what the consumer takes, never nothing
    assert list(ch08.producer_mark.y)[-1] == pytest.approx(1.0, abs=0.6)
    assert "1 sent per 2 processed" in state_line(ch08)
    while ch08.run.state()["draining"]:
        click(ch08, "Advance 30 s")
    assert depth_now(ch08) == ch08.capacity_control.value


def test_ch08_drain_empties_the_queue_and_the_counts_add_up(ch08):
    click(ch08, "Inject poison pill")
    click(ch08, "Drain")
    s = ch08.run.state()
    assert s["depth"] == 0 and s["rate"] == 0 and ch08.rate_control.value == 0
    assert list(ch08.depth_mark.y)[-1] == 0
    assert "Drained in" in state_line(ch08)
    assert s["sent"] + s["injected"] == s["processed"] + s["dlq_depth"]
    assert f"sent {s['sent']} + 2 poison pills, processed {s['processed']}" in ch08.summary()


def test_ch08_the_scripted_methods_do_what_the_buttons_do(ch08):
    namespace = {"sim": ch08}
    run_cell('sim.kill_consumer("A")', namespace)
    run_cell("sim.set_rate(8)", namespace)
    run_cell("sim.advance(10)", namespace)
    assert ch08.run.alive == ["B", "C"] and ch08.rate_control.value == 8
    assert ch08.consumer_buttons["A"].description == "Revive A"


def test_ch08_every_control_says_what_it_did(ch08):
    ch08.max_receives_control.value = 5
    assert "Max receives is now 5, from each message's next receive" in state_line(ch08)
    ch08.capacity_control.value = 30
    assert "the capacity 30 applies when it is on" in state_line(ch08)
    click(ch08, "Kill A")
    assert "A died" in state_line(ch08)
    click(ch08, "Revive A")
    assert "A is back" in state_line(ch08)
    click(ch08, "Fix bug")
    click(ch08, "Fix bug")
    assert "already deployed" in state_line(ch08)
