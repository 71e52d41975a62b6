"""Every "Try this" bullet of chapters 3 and 6 does what it says.

As in ``test_try_this.py``: each test takes the chapter's simulation in the state the notebook
leaves it after Run All (the cell that builds the widget runs, then every later cell that uses
the same variable), follows one bullet by clicking the widget's buttons and moving its controls
as a learner would, and asserts what the bullet promises, read from the marks, the tables and the
state line. The bullets are read from the notebook, so a bullet added or reworded without a test
fails the count check.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_try_this import bullets, click, code_cells, descendants, run_cell, state_line

from mqlib.scenarios.retries import retry_storm
from mqlib.widgets.guarantees import MAX_LABELS

CH03 = "03-delivery-guarantees.ipynb"
CH06 = "06-dead-letter-queues.ipynb"


def notebook_view(notebook: str, view: str):
    """The first ``view`` the notebook shows, after every later cell that uses its variable has
    run. (Unlike ``test_try_this.notebook_widget``, ``other.sim`` in a later cell is another
    object's attribute, not a use of the variable ``sim``.)"""
    cells = code_cells(notebook)
    start = next(i for i, c in enumerate(cells) if f"from mqlib.widgets import {view}" in c)
    namespace: dict = {}
    shown = run_cell(cells[start], namespace)
    names = [n for n, v in namespace.items() if type(v).__name__ == view]
    if names:
        (name,) = names
        shown = namespace[name]
        for cell in cells[start + 1 :]:
            if re.search(rf"(?<![.\w]){name}\b", cell):
                run_cell(cell, namespace)
    assert type(shown).__name__ == view, f"{notebook}: the widget cell shows {shown!r}"
    return shown


def labels_shown(view) -> list[str]:
    """The message ids written under chapter 3's bars (the others are blanked)."""
    labels = view.message_figure.axes[0].tick_labels
    return [labels[slot] for slot in view.message_mark.x if labels[slot]]


# -- chapter 3 ------------------------------------------------------------------------------------
@pytest.fixture
def ch03():
    return notebook_view(CH03, "DeliveryGuarantees")


def rows(view) -> dict[str, dict]:
    return {r["message"]: r for r in view.run.per_message()}


def last(mark) -> float:
    return float(np.asarray(mark.y, dtype=float)[-1])


def test_ch03_has_the_five_bullets_these_tests_follow():
    assert [b.split(" ")[:2] for b in bullets(CH03)] == [
        ["Switch", "the"],
        ["Switch", "to"],
        ["Under", "*at-most-once*,"],
        ["Under", "*at-least-once*,"],
        ["Now", "press"],
    ]


def test_ch03_the_widget_opens_on_the_story_the_prose_tells(ch03):
    assert ch03.run.guarantee == "at-least-once"
    assert [(r["stored"], r["delivered"], r["effects"]) for r in rows(ch03).values()] == [
        (1, 1, 1),
        (1, 1, 1),
        (2, 2, 2),  # m3: its first ack lost, stored twice
        (1, 2, 2),  # m4: the consumer crashed after the charge
        (1, 1, 1),
    ]
    assert ch03.run.result().processed == 7 and len(rows(ch03)) == 5


def test_ch03_exactly_once_stores_m3_once_and_charges_m4_once(ch03):
    ch03.guarantee_control.value = "exactly-once"
    r = rows(ch03)
    assert r["m3"]["stored"] == 1
    assert (r["m4"]["delivered"], r["m4"]["effects"]) == (2, 1)
    stored, delivered, charged = (list(s) for s in ch03.message_mark.y)
    assert stored[2] == 1 and (delivered[3], charged[3]) == (2, 1)
    assert last(ch03.balance_mark) == last(ch03.expected_mark)


def test_ch03_at_most_once_loses_a_lost_message_for_good(ch03):
    ch03.guarantee_control.value = "at-most-once"
    assert ch03.run.result().duplicates == 0
    assert all(r["effects"] <= 1 for r in rows(ch03).values())
    click(ch03, "Lose next message")
    assert "send will be lost" in state_line(ch03)
    click(ch03, "Send 1")
    assert rows(ch03)["m6"]["effects"] == 0 and ch03.run.result().lost_ids == ("m6",)
    assert last(ch03.balance_mark) > last(ch03.expected_mark)  # the red line ends above
    assert "never charged (lost): m6" in ch03.problems_label.value


def test_ch03_at_most_once_never_comes_back_after_a_crash_before_the_charge(ch03):
    ch03.guarantee_control.value = "at-most-once"
    click(ch03, "Crash before charge")
    assert "before its charge" in state_line(ch03)
    click(ch03, "Send 1")
    assert rows(ch03)["m6"] == {"message": "m6", "stored": 1, "delivered": 1, "effects": 0}
    assert ch03.run.result().lost_ids == ("m6",)


def test_ch03_a_lost_commit_is_covered_by_the_next_one(ch03):
    assert ch03.run.guarantee == "at-least-once"
    duplicates_before = ch03.run.result().duplicates
    click(ch03, "Lose next commit")
    click(ch03, "Send 1")
    click(ch03, "Send 1")
    r = rows(ch03)
    assert (r["m6"]["effects"], r["m7"]["effects"]) == (1, 1)  # neither new message twice
    assert ch03.run.result().duplicates == duplicates_before


def test_ch03_a_crash_before_the_covering_commit_charges_both_again(ch03):
    click(ch03, "Lose next commit")
    click(ch03, "Send 1")
    click(ch03, "Crash after charge")
    click(ch03, "Send 1")
    r = rows(ch03)
    assert (r["m6"]["effects"], r["m7"]["effects"]) == (2, 2)
    assert "m6, m7" in ch03.problems_label.value
    ch03.guarantee_control.value = "exactly-once"  # the id check absorbs it
    r = rows(ch03)
    assert (r["m6"]["delivered"], r["m7"]["delivered"]) == (2, 2)
    assert (r["m6"]["effects"], r["m7"]["effects"]) == (1, 1)
    assert ch03.run.result().duplicates == 0


def test_ch03_a_long_run_labels_at_most_ten_messages(ch03):
    for _ in range(9):
        click(ch03, "Send 5")
    ids = [m for m in ch03.slot_ids if m]
    assert len(ids) == 50 and len(ch03.message_mark.x) == 80
    shown = labels_shown(ch03)
    assert 5 <= len(shown) <= MAX_LABELS and shown[0] == "m3" and shown[-1] == "m48"
    gaps = {ids.index(b) - ids.index(a) for a, b in zip(shown, shown[1:], strict=False)}
    assert gaps == {5}  # evenly spaced
    assert ch03.expected_mark.line_style == "solid" and ch03.expected_mark.stroke_width >= 4


def test_ch03_every_button_says_what_it_did(ch03):
    for label, words in [
        ("Lose next message", "send will be lost"),
        ("Lose next ACK", "ack will be lost"),
        ("Lose next commit", "commit will be lost"),
        ("Crash after charge", "after its charge"),
        ("Reset", "fresh account"),
    ]:
        click(ch03, label)
        assert words in state_line(ch03), label


# -- chapter 6: DeadLetters ------------------------------------------------------------------------
@pytest.fixture
def ch06():
    return notebook_view(CH06, "DeadLetters")


def test_ch06_has_the_five_bullets_these_tests_follow():
    assert [b.split(" ")[:2] for b in bullets(CH06)] == [
        ["Press", "**Start"],
        ["Press", "**Replay**"],
        ["Press", "**Start"],
        ["In", "**Settings**,"],
        ["Press", "**Start"],
    ]


def dlq_ids(view) -> list[str]:
    return [e["message_id"] for e in view.run.inspect_dlq()]


def bars(view) -> dict[str, tuple[int, int]]:
    failed, succeeded = (np.asarray(s, dtype=int).tolist() for s in view.attempts_mark.y)
    ids = [row["message"] for row in view.attempt_rows()]  # the messages in the bars' slots
    assert list(view.attempts_mark.x) == list(range(len(ids)))
    return dict(zip(ids, zip(failed, succeeded, strict=True), strict=True))


def start_over_and_poison(view) -> str:
    click(view, "Start over")
    assert "the bug is back" in state_line(view)
    click(view, "Start")
    click(view, "Inject poison")
    return view.run.poison_ids[-1]


def test_ch06_a_pill_reaches_the_dlq_while_the_rest_keeps_flowing(ch06):
    pill = start_over_and_poison(ch06)
    processed, dlq_line = [], []
    for _ in range(4):
        click(ch06, "Advance 5 s")
        processed.append(float(np.asarray(ch06.processed_mark.y)[-1]))
        dlq_line.append(float(np.asarray(ch06.dlq_mark.y)[-1]))
    assert bars(ch06)[pill] == (3, 0) == (ch06.limit_mark.y[0], 0)  # up to the dashed line
    assert dlq_line[0] == 0 and dlq_line[-1] == 1  # the DLQ line stepped up
    assert ch06.run.dlq.alerts and "ALERT" in ch06.alert_label.value
    assert processed == sorted(processed) and processed[-1] > processed[0] + 20  # climbing
    assert pill in ch06.dlq_table.value


def test_ch06_replay_before_the_fix_fails_again_then_after_it_succeeds(ch06):
    pill = start_over_and_poison(ch06)
    for _ in range(3):
        click(ch06, "Advance 5 s")
    assert dlq_ids(ch06) == [pill]
    click(ch06, "Replay")
    for _ in range(3):
        click(ch06, "Advance 5 s")
    assert bars(ch06)[pill] == (6, 0) and dlq_ids(ch06) == [pill]  # three more, back in the DLQ
    click(ch06, "Deploy the fix")
    assert "fixed handler is deployed" in state_line(ch06)
    click(ch06, "Replay")
    click(ch06, "Advance 5 s")
    assert bars(ch06)[pill] == (6, 1) and dlq_ids(ch06) == []
    click(ch06, "Replay")
    assert "nothing to replay" in state_line(ch06)


@pytest.mark.parametrize("max_receives", [1, 8])
def test_ch06_max_receives_decides_how_long_a_pill_takes(ch06, max_receives):
    click(ch06, "Start over")
    ch06.max_receives_control.value = max_receives
    assert f"Max receives is now {max_receives}" in state_line(ch06)
    click(ch06, "Start")
    click(ch06, "Inject poison")
    for _ in range(4):
        click(ch06, "Advance 5 s")
    (entry,) = ch06.run.inspect_dlq()
    timeout = ch06.run.queue.visibility_timeout
    assert entry["receive_count"] == max_receives
    # each failed receive costs one visibility timeout (2 s), as the bullet's answer says
    assert (
        entry["dead_lettered_at"] - entry["sent_at"] == max_receives * timeout == max_receives * 2
    )
    assert bars(ch06)[entry["message_id"]] == (max_receives, 0)


def test_ch06_fifo_without_a_dlq_stalls_and_the_dlq_frees_it(ch06):
    ch06.ordered_control.value = True
    assert ch06.run.queue.ordered and "FIFO" in state_line(ch06)
    ch06.dlq_control.value = False
    assert "retried forever" in state_line(ch06)
    click(ch06, "Start")
    click(ch06, "Inject poison")
    click(ch06, "Advance 30 s")
    processed = np.asarray(ch06.processed_mark.y, dtype=float)
    waiting = np.asarray(ch06.waiting_mark.y, dtype=float)
    times = np.asarray(ch06.processed_mark.x, dtype=float)
    assert processed[-1] == processed[times <= 5][-1] <= 1  # flat after the first seconds
    assert waiting[-1] >= 55 and waiting[-1] == max(waiting)  # climbing
    ch06.dlq_control.value = True
    click(ch06, "Advance 30 s")
    assert len(dlq_ids(ch06)) == 1
    assert float(np.asarray(ch06.processed_mark.y)[-1]) > processed[-1] + 50


def test_ch06_the_alert_fires_once_above_the_threshold(ch06):
    click(ch06, "Start over")
    ch06.alert_control.value = 2
    click(ch06, "Start")
    fired = []
    for _ in range(4):
        click(ch06, "Inject poison")
        click(ch06, "Advance 5 s")
        click(ch06, "Advance 5 s")
        fired.append(len(ch06.run.dlq.alerts))
    assert fired == [0, 0, 1, 1]  # the third pill; not again for the fourth
    assert "ALERT: the DLQ holds 4 messages, more than 2" in ch06.alert_label.value


def test_ch06_the_dlq_table_has_separate_padded_columns(ch06):
    click(ch06, "Start over")
    for _ in range(5):
        click(ch06, "Inject poison")
    click(ch06, "Advance 30 s")
    table = ch06.dlq_table.value
    assert "5 messages (the newest 3 below)" in table
    assert table.count("<tr>") == 4 and table.count("<th ") == 5
    assert table.count("padding:1px 12px") == 5 + 3 * 5  # every cell padded
    assert "<th" in table and "receives</th>" in table and ">3</td>" in table


def test_ch06_buttons_that_change_nothing_drawn_say_what_they_did(ch06):
    click(ch06, "Purge")
    assert "already empty" in state_line(ch06)
    click(ch06, "Replay")
    assert "nothing to replay" in state_line(ch06)
    ch06.dlq_control.value = False
    assert "retried forever" in state_line(ch06)
    ch06.dlq_control.value = True
    assert "DLQ attached" in state_line(ch06)
    # Stop and Start change only their own label until time passes: the state line says it.
    click(ch06, "Stop")
    assert "producer has stopped" in state_line(ch06)
    assert ch06.run.producer.rate == 0
    click(ch06, "Start")
    assert "now sends 2 good messages per second" in state_line(ch06)
    assert ch06.run.producer.rate == 2


def test_ch06_the_less_used_controls_are_collapsed(ch06):
    assert ch06.settings.layout.display == "none"
    assert ch06.settings_toggle.description.startswith("Settings")
    inside = set(descendants(ch06.settings))
    for control in (ch06.ordered_control, ch06.max_receives_control, ch06.alert_control):
        assert control in inside
    outside = set(descendants(ch06.view)) - inside
    assert {b.description for b in outside if hasattr(b, "click")} >= {
        "Stop",
        "Inject poison",
        "Advance 5 s",
        "Start over",
        "Replay",
    }


# -- chapter 6: RetryStorm -------------------------------------------------------------------------
@pytest.fixture
def storm():
    return notebook_view(CH06, "RetryStorm")


def table(view) -> dict[str, dict]:
    return {r["retries"]: r for r in view.run.table()}


def test_ch06_storm_has_the_four_bullets_these_tests_follow():
    assert [b.split(" ")[:2] for b in bullets(CH06, "### A retry storm")] == [
        ["Set", "**consumers**"],
        ["Set", "**max"],
        ["Lower", "the"],
        ['`retry_storm("full",', "permanent=20)`"],
    ]


def test_ch06_storm_a_hundred_consumers_fit_in_two_waves(storm):
    storm.consumers_control.value = 100
    none = storm.run.results["none"]
    waves = [t for t, n in zip(none["time"], none["load"], strict=True) if n and t >= 10]
    assert waves == [15.0, 31.0]
    t = table(storm)
    assert t["in step (no jitter)"]["all done at (s)"] == 31.0
    assert t["full jitter"]["all done at (s)"] > 31.0
    assert max(np.asarray(storm.in_step_mark.y)) == 100 and "100 consumers" in state_line(storm)


def test_ch06_storm_five_attempts_do_not_cover_the_outage(storm):
    storm.attempts_control.value = 5
    none = storm.run.results["none"]
    after = [(t, n) for t, n in zip(none["time"], none["load"], strict=True) if n and t >= 10]
    assert after == [(15.0, 200)]  # the fifth attempt, after the recovery
    t = table(storm)
    assert 200 - t["in step (no jitter)"]["dead-lettered"] == 50  # 50 get through
    assert t["full jitter"]["dead-lettered"] > t["in step (no jitter)"]["dead-lettered"]


def test_ch06_storm_a_lower_cap_brings_the_waves_every_8_s(storm):
    storm.cap_control.value = 8
    none = storm.run.results["none"]
    waves = [t for t, n in zip(none["time"], none["load"], strict=True) if n and t >= 10]
    assert len(waves) >= 3 and set(np.diff(waves)) == {8.0}


def test_ch06_storm_permanent_errors_take_one_call_each():
    with_permanent = retry_storm("full", permanent=20)
    assert with_permanent["dead_lettered"] == 20
    assert with_permanent["attempts_of_permanent"] == 20  # one call each
    assert with_permanent["dead_letter_reasons"] == {"permanent": 20}
    assert retry_storm("full")["dead_lettered"] == 0
