"""Chapter 2's simulation driven headless, as its buttons would; its chart data and summary; the
chapter's quiz answers computed by the engine; the simulator's split matches a real JetStream."""

from __future__ import annotations

import numpy as np
import pytest

from mqlib import quiz
from mqlib.real import labs
from mqlib.scenarios.pubsub import PubSubRun, default_run
from mqlib.widgets import PubSub
from mqlib.widgets.pubsub import WAITING_COLOUR, WINDOW, chart_window


def buttons(view: PubSub) -> dict[str, object]:
    """The producer's buttons and the subscribe button, by label."""
    found = {}
    stack = list(view.view.children)
    while stack:
        child = stack.pop(0)
        stack[:0] = list(getattr(child, "children", ()))
        if hasattr(child, "click") and child not in view.group_rows.children:
            found.setdefault(child.description, child)
    return found


def group_buttons(view: PubSub, group: str) -> dict[str, object]:
    row = view._rows[group]["box"]
    return {b.description: b for b in row.children if hasattr(b, "click")}


def stacked(view: PubSub) -> np.ndarray:
    """The drawn blocks of the columns that hold a message (the empty slots right of them,
    drawn at height 0, left out)."""
    heights = np.atleast_2d(np.asarray(view.copies_mark.y, dtype=float))
    assert not heights[:, len(shown_messages(view)) :].any()  # empty slots draw nothing
    return heights[:, : len(shown_messages(view))]


def test_opens_on_the_default_run_every_group_every_message_members_split():
    view = PubSub()
    assert view.summary() == (
        "t=10s: published 10; received per group (split over current members): payment 10 "
        "(5/5); email 10 (4/3/3); analytics 10 (10); inventory 4 (2/2); 34 copies in all"
    )
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    # Left chart: one column per message, one block per group subscribed when it was published.
    assert shown_messages(view) == list(range(1, 11))
    heights = stacked(view)
    assert heights.shape == (8, 10)  # delivered + waiting row for each of the four groups
    assert list(heights.sum(axis=0)) == [3] * 6 + [4] * 4  # 34 copies
    delivered = heights[0::2]
    assert (delivered[:3] == 1).all()  # payment, email, analytics: every message
    assert list(delivered[3]) == [0] * 6 + [1] * 4  # inventory: only msg7..msg10
    assert not heights[1::2].any()  # nothing waiting
    assert list(view.copies_mark.colors[1::2]) == [WAITING_COLOUR] * 4
    # Labels: which member got it. Message 1: payment-1, email-1, analytics-1.
    text = list(view.member_labels.text)
    assert text[:3] == ["1", "1", "1"]
    assert text[3:6] == ["2", "2", "1"]  # message 2: payment-2, email-2, analytics-1
    assert len(text) == 34
    # Right chart: per-member deliveries.
    assert list(view.member_mark.x) == [
        "payment-1",
        "payment-2",
        "email-1",
        "email-2",
        "email-3",
        "analytics-1",
        "inventory-1",
        "inventory-2",
    ]
    assert list(view.member_mark.y) == [5, 5, 4, 3, 3, 10, 2, 2]
    assert list(view.copies_axis.tick_values) == [0, 1, 2, 3, 4]  # whole copies only
    assert view.copies_axis in view.copies_figure.axes
    assert view.member_axis in view.member_figure.axes
    assert list(view.member_axis.tick_values) == [0, 2, 4, 6, 8, 10]
    assert "inventory" in view.legend.value
    assert list(view.new_group_name.options) == [
        "warehouse",
        "fraud-check",
        "shipping",
        "search",
    ]
    assert view.new_group_name.value == "warehouse"  # ready to subscribe


def test_buttons_drive_the_engine():
    view = PubSub(PubSubRun())  # payment 2, email 3, analytics 1, nothing published
    assert list(view.member_mark.y) == [0, 0, 0, 0, 0, 0]
    press = buttons(view)
    press["Publish 1"].click()
    assert view.run.published == 1
    assert list(view.member_mark.y) == [1, 0, 1, 0, 0, 1]  # one copy per group
    press["Publish 5"].click()
    assert view.run.received() == {"payment": 6, "email": 6, "analytics": 6}
    assert list(view.member_mark.y) == [3, 3, 2, 2, 2, 6]

    # + member on payment: the next messages cycle over three members.
    group_buttons(view, "payment")["+ member"].click()
    assert view.run.groups()["payment"] == ["payment-1", "payment-2", "payment-3"]
    press["Publish 1"].click()
    assert view.run.deliveries()["payment"]["payment-3"] == 0  # turn was payment-1's
    press["Publish 1"].click()
    press["Publish 1"].click()
    assert view.run.deliveries()["payment"] == {"payment-1": 4, "payment-2": 4, "payment-3": 1}

    # Unsubscribe email: later columns are one block shorter; the producer did nothing new.
    group_buttons(view, "email")["Unsubscribe"].click()
    assert "email" not in view.run.groups()
    assert "email" in view.new_group_name.options
    press["Publish 1"].click()
    assert list(stacked(view).sum(axis=0)[-2:]) == [3, 2]
    assert not any(name.startswith("email") for name in view.member_mark.x)
    assert "email (unsubscribed)" in view.legend.value  # its earlier blocks are still drawn

    # Subscribe a new group from the menu: it gets messages from now on.
    view.new_group_members.value = 2
    press["Subscribe"].click()  # the menu's first free name: inventory
    assert view.run.groups()["inventory"] == ["inventory-1", "inventory-2"]
    assert "inventory" not in view.new_group_name.options
    press["Publish 5"].click()
    assert view.run.received()["inventory"] == 5
    assert view.run.deliveries()["inventory"] == {"inventory-1": 3, "inventory-2": 2}
    assert view.summary().endswith("inventory 5 (3/2); 35 copies in all")
    view.new_group_name.value = "warehouse"
    view.new_group_members.value = 0
    press["Subscribe"].click()
    assert view.run.groups()["warehouse"] == []
    press["Publish 1"].click()
    assert view.run.pending()["warehouse"] == 1
    for name in list(view.new_group_name.options):
        view.add_group(name, 1)
    assert view.new_group_name.value is None
    assert press["Subscribe"].disabled  # every offered name is taken


def test_a_group_without_members_shows_waiting_blocks_until_a_member_joins():
    view = PubSub(PubSubRun({"payment": 1, "analytics": 1}))
    remove = group_buttons(view, "analytics")["− member"]
    remove.click()
    assert remove.disabled  # nothing left to remove: the control cannot make a bad call
    buttons(view)["Publish 1"].click()
    buttons(view)["Publish 1"].click()
    heights = stacked(view)
    assert list(heights[3]) == [1, 1]  # analytics' waiting row
    assert list(view.member_labels.text) == ["1", "…", "1", "…"]
    assert "analytics</b>: 0 members, 2 waiting" in view._rows["analytics"]["label"].value
    assert list(view.member_mark.x) == ["payment-1", "analytics-1 (left)"]
    group_buttons(view, "analytics")["+ member"].click()
    assert not group_buttons(view, "analytics")["− member"].disabled
    assert list(stacked(view)[3]) == [0, 0]
    assert list(stacked(view)[2]) == [1, 1]  # now delivered, to analytics-2
    assert list(view.member_labels.text) == ["1", "2", "1", "2"]
    assert view.run.deliveries()["analytics"] == {"analytics-1": 0, "analytics-2": 2}


def shown_messages(view):
    """The messages the left chart's columns hold: its axis labels every slot with the number
    of the message it holds or will hold, and the published ones fill the slots from the left."""
    first, last = view.window()
    labels = [view.copies_figure.axes[0].tick_labels[slot] for slot in view.copies_mark.x]
    every = 2 if last < 100 else 5  # thinned: twenty numbers do not fit side by side
    assert labels == [str(n) if n % every == 0 else "" for n in range(first, last + 1)]
    return list(range(first, min(last, view.run.published) + 1))


def test_the_chart_window_moves_on_in_steps_of_ten():
    assert [chart_window(n) for n in (0, 1, 20, 21, 29, 30, 31, 40, 41)] == [
        (1, 20),
        (1, 20),
        (1, 20),
        (11, 30),
        (11, 30),
        (11, 30),
        (21, 40),
        (21, 40),
        (31, 50),
    ]
    for bad, error in ((-1, ValueError), (2.0, TypeError), (True, TypeError), (None, TypeError)):
        with pytest.raises(error, match="published must be"):
            chart_window(bad)


def test_the_chart_shows_the_latest_messages_only():
    view = PubSub()
    view.publish(25)
    assert shown_messages(view) == list(range(21, 36))
    assert view.copies_figure.title == "Who got each message (21 to 35 of 35)"
    assert list(view.copies_mark.x) == list(range(WINDOW))  # the same slots as it moves on
    assert view.run.published == 35
    # The chart draws the scenario's own data for that window.
    assert view.copies() == view.run.copies(15)
    assert view.group_order() == view.run.group_order()
    data = view.run.copies(15)
    assert stacked(view).tolist() == [
        row[part]
        for name in view.run.group_order()
        for row in [data["groups"][name]]
        for part in ("delivered", "waiting")
    ]
    ticks = dict(view.copies_figure.axes[0].tick_labels)
    view.publish(1)  # fits: the next slot fills, the axis stays
    assert shown_messages(view) == list(range(21, 37))
    assert view.copies_figure.axes[0].tick_labels == ticks
    view.publish(70)  # 106: three-digit numbers, every fifth labelled
    assert view.window() == (91, 110)
    assert [v for v in view.copies_figure.axes[0].tick_labels.values() if v] == [
        "95",
        "100",
        "105",
        "110",
    ]
    view = PubSub()
    view.publish(31)  # 41: the window moves on by ten
    assert shown_messages(view) == list(range(31, 42))
    assert list(view.copies_mark.x) == list(range(WINDOW))
    assert max(view.member_labels.x) < 11  # the member numbers sit in the filled slots


def test_methods_validate_through_the_scenario_and_leave_the_view_alone():
    view = PubSub()
    before = view.summary()
    with pytest.raises(ValueError, match="count must be"):
        view.publish(0)
    with pytest.raises(ValueError, match="name 'payment' is taken"):
        view.add_group("payment", 1)
    with pytest.raises(ValueError, match="group 'nope' is not subscribed"):
        view.remove_group("nope")
    with pytest.raises(ValueError, match="group 'nope' is not subscribed"):
        view.add_member("nope")
    with pytest.raises(ValueError, match="member 'email-9' is not in group"):
        view.remove_member("email", "email-9")
    with pytest.raises(ValueError, match="seconds must be > 0"):
        view.advance(-1)
    with pytest.raises(TypeError, match="run must be a PubSubRun"):
        PubSub(run="default")
    assert view.summary() == before
    assert list(view.member_mark.y) == [5, 5, 4, 3, 3, 10, 2, 2]
    view.advance(2.5)
    assert view.summary().startswith("t=12.5s: published 10;")


def test_no_groups_at_all_draws_an_empty_but_valid_chart():
    view = PubSub(PubSubRun({}))
    view.publish(2)
    assert list(view.member_mark.x) == []
    assert stacked(view).size == 0
    assert view.summary().endswith("no groups; 0 copies in all")
    view.add_group("email", 1)
    view.publish(1)
    assert list(stacked(view)[0]) == [0, 0, 1]


# --- the quiz's answers are what the engine computes -------------------------------------------


def _answer(question: dict) -> object:
    right = [a for a in question["answers"] if a.get("correct")]
    assert len(right) == 1
    return right[0].get("value", right[0].get("answer"))


def test_quiz_answers_are_what_the_engine_computes():
    questions = quiz.load("ch02")
    assert len(questions) >= 4
    assert sum(q["type"] == "numeric" for q in questions) >= 2

    # The lesson's question: three groups subscribed -> three copies, one member of each.
    run = PubSubRun({"payment": 2, "inventory": 2, "email": 3})
    run.publish(1)
    log = run.delivery_log()
    assert len(log) == 3
    assert sorted(g for _, g, _ in log) == ["email", "inventory", "payment"]
    assert _answer(questions[0]).startswith("Three: one per group")

    # Predict the output: email-1's share of 10 messages over 3 members.
    run = PubSubRun()
    run.publish(10)
    assert run.deliveries()["email"]["email-1"] == _answer(questions[1]) == 4

    # The opening run's total copies.
    opening = default_run()
    assert sum(opening.received().values()) == _answer(questions[2]) == 34

    # A late group receives only what follows its subscription.
    assert [m for m, g, _ in opening.delivery_log() if g == "inventory"] == [
        "msg7",
        "msg8",
        "msg9",
        "msg10",
    ]
    assert _answer(questions[4]).startswith("Orders 7 to 10")

    # Separate subscriptions would triple the e-mails; one group sends each once.
    apart = PubSubRun({"email-a": 1, "email-b": 1, "email-c": 1})
    apart.publish(1)
    assert sum(apart.received().values()) == 3
    together = PubSubRun({"email": 3})
    together.publish(1)
    assert sum(together.received().values()) == 1


# --- the lab: a real JetStream splits the events the way the simulator does --------------------


def test_jetstream_lab_matches_the_simulator():
    groups = {"payment": 2, "email": 2, "analytics": 1}
    lab = labs.pubsub_lab(events=6, groups=groups)
    run = PubSubRun(groups)
    run.publish(6)
    simulated: dict[str, list[int]] = {}
    for message, _group, member in run.delivery_log():
        simulated.setdefault(member, []).append(int(message.removeprefix("msg")))
    real = {member: seqs for members in lab["groups"].values() for member, seqs in members.items()}
    assert (
        real
        == simulated
        == {
            "payment-1": [1, 3, 5],
            "payment-2": [2, 4, 6],
            "email-1": [1, 3, 5],
            "email-2": [2, 4, 6],
            "analytics-1": [1, 2, 3, 4, 5, 6],
        }
    )
    assert lab["every_group_saw_every_event"] is True
    assert lab["stream_messages"] == 6


def test_the_module_examples_hold():
    import doctest

    import mqlib.widgets.pubsub as pubsub_module

    result = doctest.testmod(pubsub_module)
    assert result.attempted >= 1 and result.failed == 0
