"""Chapter 6's widget driven headless, as its buttons would; the facts its prose and quiz use."""

import numpy as np
import pytest

from mqlib import quiz
from mqlib.models.dlq import PoisonHandler
from mqlib.scenarios.dead_letter import DeadLetterRun, default_run
from mqlib.widgets import DeadLetters


def buttons(view):
    return {
        b.description: b
        for row in view.view.children
        for b in getattr(row, "children", ())
        if isinstance(getattr(b, "description", None), str) and hasattr(b, "click")
    }


def receives_of(run, message_id):
    return [e for e in run.sim.trace.of_kind("receive") if e.data["message"] == message_id]


def drawn(mark, times, *, linear=False):
    """The values a Lines mark draws at ``times``: step-after, or linear interpolation."""
    x, y = np.asarray(mark.x, dtype=float), np.asarray(mark.y, dtype=float)
    if linear:
        return np.interp(times, x, y).tolist()
    return y[np.searchsorted(x, np.asarray(times, dtype=float), side="right") - 1].tolist()


def test_opens_on_the_populated_default_run():
    view = DeadLetters()
    assert view.summary() == default_run().summary()
    assert view.summary() == (
        "t=20s: sent 43, processed 41, failed attempts 3, waiting 1; "
        "DLQ 0 (max receives 3); alerts 1; bug fixed"
    )
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    series = view.run.series
    times = series["time"]
    assert len(times) > 30
    # the lines draw every sample of the run's series (a repeated sample is not sent again)
    assert drawn(view.waiting_mark, times) == series["depth"]
    assert drawn(view.dlq_mark, times) == series["dlq_depth"]
    assert drawn(view.processed_mark, times, linear=True) == series["processed"]
    assert len(view.waiting_mark.x) < len(times)
    assert max(view.dlq_mark.y) == 1
    assert np.asarray(view.processed_mark.y).tolist()[-1] == 41
    # the poison pill m8 (m7 is sent at t=3 just before it, the instant rule): three failed
    # attempts, then processed after the fix and the replay
    ids = [row["message"] for row in view.attempt_rows()]
    assert ids[0] == "m8" and len(ids) == 24
    assert list(view.attempts_mark.x) == list(range(24))  # one slot per bar
    assert view.attempts_figure.axes[0].tick_labels[0] == "m8"  # the pill's slot is labelled
    failed, succeeded = (np.asarray(s).tolist() for s in view.attempts_mark.y)
    assert (failed[0], succeeded[0]) == (3, 1)
    assert sum(failed) == 3
    assert list(view.limit_mark.y) == [3.0, 3.0]
    assert "Alerts fired: 1, at t=9 s (depth 1)." in view.alert_label.value
    assert "empty" in view.dlq_table.value
    assert view.fix_button.disabled and view.producer_button.description == "Stop"


def test_buttons_drive_the_engine_through_a_poison_pill():
    view = DeadLetters(DeadLetterRun(rate=0))
    b = buttons(view)
    assert view.producer_button.description == "Start"
    assert list(view.attempts_mark.x) == [0]  # an empty run: one blank bar
    assert view.attempts_figure.axes[0].tick_labels == {0: " "}
    b["Start"].click()
    assert view.run.producer.rate == 2.0 and view.producer_button.description == "Stop"
    b["Advance 1 s"].click()
    b["Inject poison"].click()
    pill = view.run.poison_ids[0]
    for _ in range(2):
        b["Advance 5 s"].click()
    # three attempts, moved after three visibility timeouts; the others kept flowing
    [entry] = view.run.inspect_dlq()
    assert (entry["message_id"], entry["receive_count"]) == (pill, 3)
    assert entry["dead_lettered_at"] == 1 + 3 * 2.0
    assert "KeyError" in view.dlq_table.value and ">3</td>" in view.dlq_table.value
    assert "ALERT: the DLQ holds 1 message, more than 0." in view.alert_label.value
    assert view.run.processed >= 18
    b["Replay"].click()  # before the fix: back to the DLQ after three more failures
    b["Advance 5 s"].click()
    b["Advance 5 s"].click()
    assert len(receives_of(view.run, pill)) == 6 and view.run.dlq.depth == 1
    b["Deploy the fix"].click()
    assert view.fix_button.disabled and view.fix_button.description == "Fix deployed"
    b["Replay"].click()
    b["Advance 1 s"].click()
    assert pill in view.run.processed_ids() and view.run.dlq.depth == 0
    rows = {r["message"]: r for r in view.attempt_rows()}
    assert (rows[pill]["failed"], rows[pill]["succeeded"]) == (6, 1)
    view.producer_button.click()  # now labelled Stop
    assert view.run.producer.rate == 0


def test_controls_and_methods_stay_in_step():
    view = DeadLetters(DeadLetterRun(rate=0))
    view.max_receives_control.value = 5  # as a drag would
    assert view.run.queue.max_receives == 5
    assert list(view.limit_mark.y) == [5.0, 5.0]
    view.set_max_receives(50)  # beyond the slider: it grows instead of clamping
    assert view.max_receives_control.value == 50 and view.max_receives_control.max >= 50
    view.dlq_control.value = False
    assert view.run.queue.dead_letter_queue is None
    assert "detached" in view.dlq_table.value and view.limit_mark.visible is False
    view.set_dlq(True)
    assert view.dlq_control.value is True
    view.alert_control.value = 4
    assert view.run.dlq.alert_threshold == 4
    view.alert_on_control.value = False
    assert view.run.dlq.alert_threshold is None and view.alert_control.disabled
    assert view.alert_label.value == "Alerting is off."
    view.set_alert_threshold(20)
    assert view.alert_on_control.value is True and view.alert_control.value == 20
    with pytest.raises(ValueError, match="max_receives must be >= 1"):
        view.set_max_receives(0)
    with pytest.raises(ValueError, match="alert_threshold must be >= 0"):
        view.set_alert_threshold(-1)
    with pytest.raises(TypeError, match="enabled must be True or False"):
        view.set_dlq("yes")
    with pytest.raises(TypeError, match="run must be a DeadLetterRun"):
        DeadLetters("run")
    assert view.run.queue.max_receives == 50 and view.max_receives_control.value == 50


def test_fifo_without_a_dlq_stalls_and_start_over_keeps_the_settings():
    view = DeadLetters()
    view.dlq_control.value = False
    view.max_receives_control.value = 4
    view.ordered_control.value = True  # a fresh FIFO run, producer stopped, bug back
    run = view.run
    assert run.queue.ordered and run.now == 0 and run.producer.rate == 0
    assert run.queue.dead_letter_queue is None and run.queue.max_receives == 4
    assert not run.handler.bug_fixed and not view.fix_button.disabled
    view.start()
    view.advance(5)
    view.inject_poison()
    view.advance(1)
    stuck = run.processed
    view.advance(30)
    assert run.processed == stuck  # throughput zero behind the pill
    times = [t for t in run.series["time"] if t >= run.now - 30]
    assert drawn(view.processed_mark, times, linear=True) == [stuck] * len(times) == [stuck] * 61
    assert max(view.waiting_mark.y) > 60
    assert "no DLQ" in view.summary() and "[FIFO]" in view.summary()
    view.set_dlq(True)  # it has used up its receives: moved the next time it comes back
    view.advance(5)
    assert run.dlq.depth == 1 and run.processed > stuck
    buttons(view)["Start over"].click()
    assert view.run is not run and view.run.queue.ordered and view.run.now == 0
    view.ordered_control.value = False
    assert not view.run.queue.ordered


# -- facts the chapter's prose and quiz state ---------------------------------------------------


def dead_lettered_at(run):
    return run.sim.trace.of_kind("dead_letter")[0].time


def test_the_worked_example_three_attempts_then_the_dlq_at_9s():
    run = DeadLetterRun(max_receives=3)
    run.advance(3)
    pill = run.inject_poison()
    run.advance(10)
    failures = [
        (e.time, e.data["receive_count"])
        for e in run.sim.trace.of_kind("processing_failed")
        if e.data["message"] == pill
    ]
    assert failures == [(3.5, 1), (5.5, 2), (7.5, 3)]
    assert dead_lettered_at(run) == 9.0
    others = [e for e in run.sim.trace.of_kind("ack") if 3 < e.time < 9]
    assert len(others) == 11
    [entry] = run.inspect_dlq()
    assert entry["receive_count"] == 3 and entry["last_error"] == PoisonHandler.error


def test_the_head_of_line_experiment():
    def experiment(ordered, dlq):
        run = DeadLetterRun(consumers=1, processing_time=0.25, ordered=ordered, dlq=dlq)
        run.advance(10)
        at_10 = run.processed
        pill = run.inject_poison()
        run.advance(10)
        at_20 = run.processed
        run.advance(20)
        return (at_10 / 10, (run.processed - at_20) / 20, run.queue.depth, run.attempts()[pill])

    assert experiment(True, False) == (2.0, 0.0, 61, 15)  # stalled: throughput zero
    # caught up: only the order sent at t=40 itself is still waiting (advance includes its end)
    assert experiment(True, True) == (2.0, 2.2, 1, 3)
    assert experiment(False, False) == (2.0, 2.0, 2, 15)  # the pill and the order sent at t=40
    assert experiment(False, True) == (2.0, 2.0, 1, 3)


def test_the_operations_example():
    ops = DeadLetterRun(rate=0, max_receives=3, alert_threshold=2)
    pills = [ops.inject_poison() for _ in range(3)]
    ops.advance(10)
    assert ops.dlq.alerts == [{"time": 6.5, "depth": 3, "threshold": 2}]
    ops.replay()
    ops.advance(10)
    assert ops.dlq.depth == 3 and len(ops.dlq.alerts) == 2
    assert len(receives_of(ops, pills[0])) == 6
    ops.fix_bug()
    ops.replay()
    ops.advance(5)
    assert ops.processed_ids() == pills


def numeric(index):
    question = quiz.load("ch06")[index]
    assert question["type"] == "numeric"
    return next(a["value"] for a in question["answers"] if a.get("correct"))


def test_quiz_has_the_lessons_question_and_three_more():
    questions = quiz.load("ch06")
    assert len(questions) >= 4
    right = next(a for a in questions[0]["answers"] if a["correct"])
    assert "retried forever" in right["answer"] and "drops to zero" in right["answer"]
    assert all("precision" not in q for q in questions)


def test_quiz_time_to_the_dlq_is_what_the_engine_computes():
    run = DeadLetterRun(visibility_timeout=5, max_receives=2)
    run.inject_poison()
    run.advance(20)
    assert dead_lettered_at(run) == numeric(1) == 10


def test_quiz_receives_with_an_early_replay_is_what_the_engine_computes():
    run = DeadLetterRun(max_receives=4)
    pill = run.inject_poison()
    run.advance(20)
    assert run.dlq.depth == 1
    run.replay()  # before the fix
    run.advance(20)
    assert run.dlq.depth == 1
    run.fix_bug()
    run.replay()
    run.advance(5)
    assert pill in run.processed_ids()
    assert len(receives_of(run, pill)) == numeric(2) == 9


def test_quiz_alerts_fire_once_per_crossing():
    run = DeadLetterRun(rate=0, max_receives=1, alert_threshold=2)
    for _ in range(5):
        run.inject_poison()
    run.advance(10)
    assert run.dlq.depth == 5
    assert len(run.dlq.alerts) == numeric(4) == 1


def test_the_dlq_table_shows_who_wrote_the_error():
    """The broker never knows the error (SQS moves the message and its attributes; RabbitMQ's
    x-death header has a reason and a count): the table names the consumer that wrote it, or says
    that none did."""
    writing = DeadLetterRun(rate=0, max_receives=1)
    writing.inject_poison()
    writing.advance(5)
    view = DeadLetters(writing)
    assert "error (written by)" in view.dlq_table.value
    assert f"{PoisonHandler.error} (A)".replace("'", "&#x27;") in view.dlq_table.value
    silent = DeadLetterRun(rate=0, max_receives=1, write_error=False)
    silent.inject_poison()
    silent.advance(5)
    assert "none: no consumer wrote one" in DeadLetters(silent).dlq_table.value


def test_the_view_fits_a_laptop_screen_with_the_settings_collapsed():
    """Issue 14: the charts, state, DLQ table and main buttons together in 560 px (the browser
    test measures it); here, the parts that make that possible."""
    view = DeadLetters()
    heights = [int(f.layout.height.removesuffix("px")) for f in view.figures()]
    assert heights == [225, 225]
    assert view.settings.layout.display == "none"  # collapsed until opened
    view.settings_toggle.value = True  # a press, by mouse or keyboard
    assert view.settings.layout.display == "flex" and view.settings_toggle.icon == "caret-down"
    assert view.summary() == DeadLetters().summary()  # showing settings changes no run
    assert view.settings in view.view.children


def test_the_dlq_table_keeps_its_columns_apart_and_lists_the_newest_three():
    run = DeadLetterRun(rate=0, max_receives=1)
    pills = [run.inject_poison() for _ in range(4)]
    run.advance(10)
    view = DeadLetters(run)
    table = view.dlq_table.value
    assert "4 messages (the newest 3 below)" in table
    assert [p for p in pills if f">{p}</td>" in table] == pills[1:]
    assert table.count("<th ") == 5 and table.count("<td ") == 15
    assert table.count("padding:1px 12px 1px 0") == 20


def test_actions_that_change_nothing_drawn_say_what_they_did():
    view = DeadLetters(DeadLetterRun(rate=0))
    assert view.purge() == 0 and "already empty" in view.summary_label.value
    assert view.replay() == [] and "nothing to replay" in view.summary_label.value
    view.set_max_receives(5)
    assert "Max receives is now 5, from each message" in view.summary_label.value
    view.advance(1)
    assert "Max receives" not in view.summary_label.value  # a notice is shown once


def test_the_charts_have_sentences_for_screen_readers():
    view = DeadLetters()
    time_chart, attempts = view.describe_charts()
    assert time_chart.startswith(f"Line chart of the queue over {view.run.now:g} s")
    pill = view.run.poison_ids[0]
    assert f"{pill} failed 3 times then was processed" in attempts


def test_attempt_rows_after_a_long_run_are_the_chart_rule_over_the_whole_history():
    """The view reads the newest rows from the end of the counts; they are what the rule gives
    over attempt_history(): the newest MAX_BARS that failed, then the newest others."""
    from mqlib.widgets.dead_letter import MAX_BARS

    view = DeadLetters()
    view.advance(600)
    history = view.run.attempt_history()
    troubled = [row for row in history if row["failed"]][-MAX_BARS:]
    others = [row for row in history if not row["failed"]]
    keep = MAX_BARS - len(troubled)
    shown = {row["message"] for row in troubled + (others[len(others) - keep :] if keep else [])}
    assert len(history) > 10 * MAX_BARS and troubled  # a long history with failures in it
    assert view.attempt_rows() == [row for row in history if row["message"] in shown]
    assert len(view.attempt_rows()) == MAX_BARS
