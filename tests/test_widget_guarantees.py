"""Chapter 3's widget driven headless, as its buttons would; the facts its prose and quiz use."""

import numpy as np
import pytest

from mqlib import quiz
from mqlib.models.delivery import (
    BalanceStore,
    ChargeMessage,
    Fault,
    charge,
    charge_once,
    check_idempotent,
    replay,
    simulate,
)
from mqlib.real.labs import dedup_lab
from mqlib.scenarios.guarantees import (
    DEFAULT_FAULTS,
    GuaranteesRun,
    compare_guarantees,
    default_run,
)
from mqlib.widgets import DeliveryGuarantees


def buttons(view):
    return {
        b.description: b
        for row in view.view.children
        for b in getattr(row, "children", ())
        if isinstance(getattr(b, "description", None), str) and hasattr(b, "click")
    }


def test_opens_on_the_populated_default_run():
    view = DeliveryGuarantees()
    assert view.run.events() == default_run().events()  # the view draws default_run
    # the bars stand in ten slots, labelled with their messages, the empty ones with nothing
    assert list(view.message_mark.x) == list(range(10))
    assert view.slot_ids == ["m1", "m2", "m3", "m4", "m5"] + [""] * 5
    assert view.message_figure.axes[0].tick_labels == dict(enumerate(view.slot_ids))
    stored, delivered, charged = (list(s) for s in view.message_mark.y)
    assert stored == [1, 1, 2, 1, 1] + [0] * 5  # m3's ack was lost: the retry is stored again
    assert delivered == [1, 1, 2, 2, 1] + [0] * 5  # m4: the consumer crashed after charging it
    assert charged == [1, 1, 2, 2, 1] + [0] * 5
    assert list(view.balance_mark.y)[-1] == 930
    assert list(view.expected_mark.y)[-1] == 950
    assert view.guarantee_control.value == "at-least-once"
    assert "charged more than once: m3, m4" in view.problems_label.value
    assert view.summary() == (
        "at-least-once: sent 5, stored 6, delivered 7, charges applied 7; lost 0, duplicates 2; "
        "balance $930 (expected $950)"
    )
    assert view._repr_mimebundle_()["text/plain"] == view.summary()


def test_switching_the_guarantee_replays_the_same_story():
    view = DeliveryGuarantees()
    view.guarantee_control.value = "exactly-once"  # as a click would
    assert view.run.guarantee == "exactly-once"
    assert view.summary().startswith(
        "exactly-once: sent 5, stored 5, delivered 6, charges applied 5"
    )
    assert list(view.balance_mark.y)[-1] == 950
    assert view.problems_label.value == "No message lost, none charged twice."
    view.set_guarantee("at-most-once")
    assert view.guarantee_control.value == "at-most-once"
    assert (view.run.result().lost, view.run.result().duplicates) == (0, 0)


def test_buttons_drive_the_engine():
    view = DeliveryGuarantees(GuaranteesRun("at-most-once"))
    b = buttons(view)
    assert list(view.message_mark.x) == list(range(10))  # an empty run: ten empty slots
    assert [list(s) for s in view.message_mark.y] == [[0] * 10] * 3
    assert set(view.message_figure.axes[0].tick_labels.values()) == {""}
    b["Lose next message"].click()
    assert "armed: lose_message (try 1)" in view.summary()
    b["Send 1"].click()
    b["Crash before charge"].click()
    b["Send 1"].click()
    b["Send 5"].click()
    result = view.run.result()
    assert result.lost_ids == ("m1", "m2")  # never retried, and committed before the charge
    assert result.duplicates == 0
    assert "never charged (lost): m1, m2" in view.problems_label.value
    assert list(view.balance_mark.y)[-1] == 950 and list(view.expected_mark.y)[-1] == 930

    view.guarantee_control.value = "at-least-once"  # the same faults, now retried
    result = view.run.result()
    assert (result.lost, result.final_balance) == (0, 930)
    b["Lose next ACK"].click()
    b["Lose next commit"].click()
    b["Crash after charge"].click()
    b["Send 1"].click()
    assert view.run.per_message()[-1] == {
        "message": "m8",
        "stored": 2,
        "effects": 3,
        "delivered": 3,
    }
    b["Reset"].click()
    assert view.run.result().sent == 0
    assert view.guarantee_control.value == "at-least-once"
    view.set_guarantee("exactly-once")  # nothing to replay after a reset
    assert view.run.result().sent == 0
    assert np.asarray(view.balance_mark.y).tolist() == [1000, 1000]


def test_the_view_draws_the_run_and_replays_a_run_scripted_in_code():
    run = GuaranteesRun("at-most-once")
    run.send()
    run.inject_lost_message()
    run.send(2)
    view = DeliveryGuarantees(run)
    series = run.balance_series()
    assert np.asarray(view.balance_mark.x).tolist() == series["time"]
    assert np.asarray(view.balance_mark.y).tolist() == series["balance"]
    assert np.asarray(view.expected_mark.x).tolist() == series["expected_time"]
    assert np.asarray(view.expected_mark.y).tolist() == series["expected"]
    assert view.run.result().lost_ids == ("m2",)
    view.guarantee_control.value = "at-least-once"  # the run replays its own log
    assert view.run is run and run.actions() == [
        ("send", (1,)),
        ("inject_lost_message", ()),
        ("send", (2,)),
    ]
    assert (run.result().sent, run.result().lost, run.balance) == (3, 0, 970)
    assert np.asarray(view.balance_mark.y).tolist() == run.balance_series()["balance"]


def test_methods_validate_before_touching_anything():
    view = DeliveryGuarantees()
    before = view.run.events()
    with pytest.raises(ValueError, match="guarantee must be one of"):
        view.set_guarantee("twice")
    with pytest.raises(ValueError, match="point must be one of"):
        view.crash_consumer("during")
    with pytest.raises(ValueError, match="count"):
        view.send(0)
    with pytest.raises(TypeError, match="run must be a GuaranteesRun"):
        DeliveryGuarantees("at-least-once")
    assert view.run.events() == before
    assert view.guarantee_control.value == "at-least-once"
    view.set_guarantee("exactly-once")  # the failed calls were not recorded for replay
    assert view.run.result().sent == 5


# -- facts the chapter's prose and quiz state ---------------------------------------------------


def test_the_lost_ack_example():
    faults = [Fault("lose_ack", message=2)]
    assert simulate("at-least-once", 3, faults).final_balance == 960
    assert simulate("exactly-once", 3, faults).final_balance == 970


def test_idempotent_handlers():
    twice = [ChargeMessage("txn-abc", 10)] * 2
    assert replay(charge, twice).balance == 980
    assert replay(charge_once, twice).balance == 990
    assert (check_idempotent(charge), check_idempotent(charge_once)) == (False, True)
    # the learner's exercise, with the naive handler first and the reference solution
    result = simulate("at-least-once", 10, DEFAULT_FAULTS, handler=charge_once)
    assert (result.final_balance, result.processed) == (900, 10)

    def set_balance_to_stale_value(message: ChargeMessage, store: BalanceStore) -> None:
        store.data.setdefault(message.id, store.balance - message.amount)
        store.balance = store.data[message.id]

    assert check_idempotent(set_balance_to_stale_value)


def test_the_lab_twin_in_the_simulator():
    # Every message is sent three times (two lost acks) and the consumer crashes after charging m2:
    # JetStream's dedup lab, in the simulator.
    faults = [Fault("lose_ack", n, a) for n in (1, 2, 3) for a in (1, 2)]
    faults.append(Fault("crash_after_effect", 2))
    alo = simulate("at-least-once", 3, faults)
    eo = simulate("exactly-once", 3, faults)
    assert (alo.send_attempts, alo.stored, alo.processed, alo.final_balance) == (9, 9, 10, 900)
    assert (eo.send_attempts, eo.stored, eo.delivered, eo.processed) == (9, 3, 4, 3)
    assert eo.final_balance == 970


def correct_value(question):
    return next(a["value"] for a in question["answers"] if a.get("correct"))


def test_quiz_numbers_are_what_the_engine_computes():
    questions = quiz.load("ch03")
    assert len(questions) >= 4
    numeric = [q for q in questions if q["type"] == "numeric"]
    assert numeric
    table = {row["guarantee"]: row for row in compare_guarantees()}
    assert correct_value(numeric[0]) == table["at-least-once"]["final_balance"] == 880
    assert table["at-most-once"]["final_balance"] == 920
    assert table["exactly-once"]["final_balance"] == 900
    assert correct_value(numeric[1]) == table["exactly-once"]["delivered"] == 12
    assert table["exactly-once"]["processed"] == 10
    # the wrong options that name JetStream's per-message rule are what that rule computes
    per_message = {row["guarantee"]: row for row in compare_guarantees(commit_rule="per-message")}
    assert per_message["at-least-once"]["final_balance"] == 870
    assert per_message["exactly-once"]["delivered"] == 13
    assert {a["value"] for a in numeric[0]["answers"] if "value" in a} >= {870, 880}
    assert {a["value"] for a in numeric[1]["answers"] if "value" in a} >= {12, 13}


def test_quiz_facts_about_the_guarantees():
    # at-most-once commits before the charge: a crash before the charge loses the message
    run = GuaranteesRun("at-most-once")
    run.crash_consumer("before_effect")
    run.send()
    assert (run.result().lost, run.balance) == (1, 1000)
    # at-least-once: a lost ack makes the producer resend and the broker store the message twice
    run = GuaranteesRun("at-least-once")
    run.inject_lost_ack()
    run.send()
    assert (run.result().stored, run.balance) == (2, 980)
    # exactly-once: the broker drops the resend (same producer id and sequence number)
    run.set_guarantee("exactly-once")  # the same lost ack and send, replayed
    assert (run.result().stored, run.balance) == (1, 990)
    assert any(e["kind"] == "duplicate_rejected" for e in run.events())


def test_the_lab_reports_the_duplicate_windows_the_prose_quotes():
    # the chapter: "the lab set 60 s; the second stream, which sets none, got 120 s"
    lab = dedup_lab(orders=1, retries=1, crash_on=1, ack_wait=0.3)
    assert (lab["duplicate_window"], lab["default_duplicate_window"]) == (60.0, 120.0)
    assert (
        dedup_lab(orders=1, retries=0, crash_on=1, duplicate_window=2.5, ack_wait=0.3)[
            "duplicate_window"
        ]
        == 2.5
    )


def test_the_lost_commit_try_this():
    """The chapter's "Try this": a lost commit alone charges nothing twice (the next commit covers
    it, Kafka's rule); a lost commit followed by a crash before the next commit re-reads both."""
    view = DeliveryGuarantees()
    b = buttons(view)
    before = view.run.result().duplicates
    b["Lose next commit"].click()
    b["Send 1"].click()
    b["Send 1"].click()
    assert view.run.result().duplicates == before == 2
    b["Lose next commit"].click()
    b["Send 1"].click()
    b["Crash after charge"].click()
    b["Send 1"].click()
    assert [row["effects"] for row in view.run.per_message()[-2:]] == [2, 2]
    view.set_guarantee("exactly-once")
    assert view.run.result().duplicates == 0


def test_a_long_run_thins_the_message_labels_and_draws_expected_as_one_line():
    from mqlib.widgets.guarantees import MAX_LABELS, _message_labels

    view = DeliveryGuarantees(GuaranteesRun("at-least-once"))
    view.send(10)
    labels = view.message_figure.axes[0].tick_labels
    assert list(labels.values()) == [f"m{i}" for i in range(1, 11)]  # ten ids: all written
    view.send(1)  # the eleventh doubles the slots: 20, the ticks thinned
    assert list(view.message_mark.x) == list(range(20))
    assert view.slot_ids == [f"m{i}" for i in range(1, 12)] + [""] * 9
    written = [label for label in view.message_figure.axes[0].tick_labels.values() if label]
    assert written == [f"m{i}" for i in range(2, 12, 2)]  # every second id of eleven
    view.send(9)  # fits: the slots stay
    assert list(view.message_mark.x) == list(range(20))
    view.send(25)
    assert list(view.message_mark.x) == list(range(80))  # 45 messages in 80 slots
    written = [label for label in view.message_figure.axes[0].tick_labels.values() if label]
    assert written == [f"m{i}" for i in range(3, 46, 5)] and len(written) <= MAX_LABELS
    assert _message_labels([f"m{i}" for i in range(1, 12)]) == {
        f"m{i}": ""
        for i in range(1, 12, 2)  # m2, m4, ..., m10 keep theirs
    }
    assert view.expected_mark.line_style == "solid" and view.expected_mark.stroke_width == 5
    assert view.figures()[1].marks[-1] is view.balance_mark  # the red line drawn on top


def test_fault_buttons_say_what_they_armed():
    view = DeliveryGuarantees(GuaranteesRun("at-least-once"))
    view.inject_lost_ack()
    assert "(The next message&#x27;s ack will be lost; press Send.)" in view.summary_label.value
    view.crash_consumer("before_effect")
    assert "crash on the next message, before its charge" in view.summary_label.value
    with pytest.raises(ValueError, match="point"):
        view.crash_consumer("sideways")
    view.send()
    assert "press Send" not in view.summary_label.value


def test_the_charts_have_sentences_for_screen_readers():
    bars, balance = DeliveryGuarantees().describe_charts()
    assert bars.endswith(
        "every message once except m3 (stored 2, delivered 2, charged 2), "
        "m4 (stored 1, delivered 2, charged 2)."
    )
    assert "$930 now, against $950 expected" in balance
