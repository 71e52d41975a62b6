"""Chapter 8's playground widget driven headless, as its controls would; the facts chapters 8 and 9
state in their prose and quizzes, computed by the engine."""

from __future__ import annotations

import pytest
from test_widget_dead_letter import drawn

from mqlib import PubSubRun, assign, compare_guarantees, kafka_partition, quiz
from mqlib.scenarios.backpressure import lesson_backlog
from mqlib.scenarios.kafka_log import KafkaLogRun
from mqlib.scenarios.playground import (
    Playground,
    default_run,
    experiment_kill_consumer,
    experiment_normal_flow,
    experiment_overload,
    experiment_poison_pill,
)
from mqlib.widgets import MessageQueueSimulator
from mqlib.widgets._base import PALETTE
from mqlib.widgets.playground import _windowed_rate


def buttons(view: MessageQueueSimulator) -> dict[str, object]:
    """Every button of the view, by label (consumer cards included)."""
    found: dict[str, object] = {}

    def walk(widget: object) -> None:
        if hasattr(widget, "click") and isinstance(getattr(widget, "description", None), str):
            found[widget.description] = widget
        for child in getattr(widget, "children", ()):
            walk(child)

    walk(view.view)
    return found


# -- the widget ------------------------------------------------------------------------------------
def test_opens_on_the_populated_default_run():
    view = MessageQueueSimulator()
    assert view.summary() == default_run().summary()
    assert view.summary() == (
        "t=30s: rate 5/s, sent 151 + 1 poison pill, processed 148, depth 3 (max 14), DLQ 1; "
        "backpressure off; processed by A 56, B 36, C 56"
    )
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    # 0..30 s every 0.5 s: 61 samples, and every line draws each of them (sending only the
    # points where the value changes: the DLQ line is three)
    times = view.run.series["time"]
    assert len(times) == 61
    throughput, producer = view._rates()
    for mark, values, linear in (
        (view.depth_mark, view.run.series["depth"], False),
        (view.dlq_mark, view.run.series["dlq_depth"], False),
        (view.throughput_mark, throughput, True),
        (view.producer_mark, producer, True),
    ):
        assert drawn(mark, times, linear=linear) == pytest.approx(values)
        assert len(mark.x) == len(mark.y)
    assert len(view.dlq_mark.x) < 10  # 0 until the pill is dead-lettered, then 1
    assert max(view.depth_mark.y) == 14
    assert list(view.dlq_mark.y)[-1] == 1 and list(view.dlq_mark.y)[0] == 0
    # Averaged over 2 s, the producer's line sits at its rate of 5 msg/s once it is running.
    # (a sample on the 0.5 s grid may be taken before or after a send due at the same instant)
    assert list(view.producer_mark.y)[-1] == pytest.approx(5.0, abs=0.5)
    assert view.x_scale.max > 30  # room to the right of the newest sample
    assert view.depth_scale.max > 14
    assert "m27" in view.dlq_label.value and "bug present" in view.dlq_label.value
    assert "busy: m1" in view.consumer_labels["A"].value
    assert "56 done, 1 failed" in view.consumer_labels["A"].value
    assert view.rate_control.value == 5.0
    assert view.dlq_control.value is True
    assert view.max_receives_control.value == 3
    assert view.backpressure_control.value is False
    assert view.capacity_control.value == 20
    for label in ("Kill A", "Kill B", "Kill C", "Inject poison pill", "Fix bug", "Replay DLQ"):
        assert label in buttons(view)
    assert "dead letter queue" in view.legend.value


def test_every_control_drives_the_run():
    view = MessageQueueSimulator(Playground())
    b = buttons(view)
    b["Advance 5 s"].click()
    assert view.run.now == 5
    assert drawn(view.depth_mark, view.run.series["time"]) == view.run.series["depth"]
    assert view.depth_mark.x[-1] == 5.0  # up to the newest sample
    b["Kill B"].click()
    assert view.run.alive == ["A", "C"]
    assert buttons(view)["Revive B"] is b["Kill B"]  # the same button, relabelled
    assert "dead" in view.consumer_labels["B"].value
    assert PALETTE["grey"] in view.consumer_labels["B"].value
    b["Kill B"].click()  # now "Revive B"
    assert view.run.alive == ["A", "B", "C"]
    b["Inject poison pill"].click()
    assert len(view.run.poison_ids) == 1
    b["Advance 30 s"].click()
    assert view.run.dlq.depth == 1
    view.rate_control.value = 8.0
    assert view.run.producer.rate == 8.0
    view.max_receives_control.value = 5
    assert view.run.queue.max_receives == 5
    view.dlq_control.value = False
    assert view.run.state()["dlq"] is False
    assert "off" in view.dlq_label.value
    view.dlq_control.value = True
    view.capacity_control.value = 10
    assert view.run.capacity == 10 and not view.run.state()["backpressure"]
    view.backpressure_control.value = True
    assert view.run.state()["backpressure"] and view.run.state()["capacity"] == 10
    b["Advance 5 s"].click()  # 8 msg/s into 6 msg/s of consumers: the bound holds
    assert view.run.queue.depth <= 10
    b["Fix bug"].click()
    b["Replay DLQ"].click()
    assert view.run.dlq.depth == 0
    b["Drain"].click()
    assert view.run.queue.depth == 0 and view.run.producer.rate == 0
    assert view.rate_control.value == 0  # the slider follows the scenario
    assert "(Drained in " in view.summary_label.value
    assert view.run.state()["processed"] == view.run.state()["sent"] + 1  # the replayed pill


def test_drain_with_every_consumer_dead_reports_instead_of_crashing():
    view = MessageQueueSimulator(Playground())
    for name in "ABC":
        view.kill_consumer(name)
    view.advance(2)
    buttons(view)["Drain"].click()
    assert "(Cannot drain: " in view.summary_label.value
    with pytest.raises(RuntimeError, match="every consumer is dead"):
        view.drain()


def test_methods_validate_before_touching_controls():
    view = MessageQueueSimulator(Playground())
    with pytest.raises(ValueError, match="rate"):
        view.set_rate(-1)
    assert view.rate_control.value == 5.0
    with pytest.raises(ValueError, match="consumer must be one of"):
        view.kill_consumer("Q")
    with pytest.raises(ValueError, match="capacity"):
        view.set_backpressure(True, 0)
    assert view.capacity_control.value == 20 and not view.backpressure_control.value
    with pytest.raises(TypeError, match="run must be a Playground"):
        MessageQueueSimulator(run="default")


def test_controls_show_values_outside_their_usual_range_instead_of_clamping():
    view = MessageQueueSimulator(Playground(rate=50, max_receives=25, capacity=500))
    assert view.rate_control.value == 50
    assert view.max_receives_control.value == 25
    assert view.capacity_control.value == 500
    view.set_rate(45)
    assert view.rate_control.value == 45
    view.set_max_receives(40)
    assert view.max_receives_control.value == 40


def test_windowed_rate_smooths_a_counter():
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    totals = [0, 3, 5, 8, 10, 13]
    assert _windowed_rate(times, totals) == [0.0, 6.0, 5.0, 16 / 3, 5.0, 5.0]


# -- chapter 8's prose and quiz --------------------------------------------------------------------
def test_chapter_8_capacity_arithmetic():
    run = Playground()
    assert 1 / run.consumers["A"].processing_time == 2
    assert run.producer.rate == 5


def test_chapter_8_experiments_as_the_notebook_states_them():
    normal = experiment_normal_flow()
    assert (normal["sent"], normal["processed"], normal["lost"], normal["max_depth"]) == (
        151,
        151,
        0,
        3,
    )
    assert normal["processed_by"] == {"A": 51, "B": 50, "C": 50}
    killed = experiment_kill_consumer()
    assert killed["dropped_message"] == "m50" and killed["redelivered_to"] == ["C"]
    assert killed["lost"] == 0 and killed["throughput_after"] < killed["throughput_before"]
    poison = experiment_poison_pill()
    assert (poison["receives"], poison["dead_lettered_at"]) == (3, 11.1)
    assert poison["processed_while_poison_retried"] == 31
    over = experiment_overload()
    assert over["without_backpressure"]["depth_series"][::10] == [1, 66, 131, 196, 261, 326, 391]
    assert over["with_backpressure"]["depth_series"][::10] == [1, 20, 20, 20, 20, 20, 20]


def test_chapter_8_quiz_answers_are_what_the_engine_computes():
    questions = quiz.load("ch08")
    over = experiment_overload()
    numeric = questions[0]
    right = [a["value"] for a in numeric["answers"] if a.get("correct")]
    assert right == [over["without_backpressure"]["final_depth"]] == [391]
    wrong = {a["value"] for a in numeric["answers"] if a.get("type") == "value"} - {391}
    assert wrong == {
        over["without_backpressure"]["sent"],
        over["with_backpressure"]["final_depth"],
        over["without_backpressure"]["processed"],
    }
    bp = over["with_backpressure"]
    assert (bp["sent"], bp["processed"], bp["max_depth"]) == (80, 60, 20)
    assert round(bp["producer_rate"], 1) == 2.7
    assert (bp["demand"], bp["held_back"]) == (451, 371)  # throttled demand is held back, not free
    assert f"{bp['sent']} messages" in questions[3]["answers"][0]["answer"]
    assert (
        f"held back the other {bp['held_back']} of the {bp['demand']}"
        in questions[3]["answers"][0]["answer"]
    )
    assert all(a.get("feedback") for q in questions for a in q["answers"])  # every option explained
    assert not any(q.get("precision") == 0 for q in questions)


# -- chapter 9's table, design example and quiz ----------------------------------------------------
def test_chapter_9_recap_facts():
    topic = PubSubRun({"billing": 2, "email": 1, "analytics": 1})
    topic.publish(1)
    assert topic.summary().endswith("3 copies in all")
    rows = {r["guarantee"]: r for r in compare_guarantees()}
    assert (rows["at-most-once"]["lost"], rows["at-most-once"]["duplicates"]) == (2, 0)
    assert (rows["at-least-once"]["lost"], rows["at-least-once"]["duplicates"]) == (0, 2)
    assert (rows["exactly-once"]["lost"], rows["exactly-once"]["duplicates"]) == (0, 0)
    assert kafka_partition("42", 4) == 0
    assert lesson_backlog()["after_1_hour"] == 32_400_000
    owned = assign("range", {f"c{i}": ["orders"] for i in range(1, 5)}, {"orders": 6})
    assert [len(p) for p in owned.values()] == [2, 2, 1, 1]


def test_chapter_9_design_every_service_gets_every_event_in_order():
    shop = KafkaLogRun(partitions=3, topic="order-events")
    for service, members in {"billing": 2, "shipping": 1, "analytics": 1}.items():
        shop.add_group(service, members)
    for step in ("created", "paid", "shipped"):
        for order in ("order-42", "order-43", "order-44"):
            shop.produce(key=order, value=step)
    for service in ("billing", "shipping", "analytics"):
        records = shop.consume(service)
        assert len(records) == 9
        for order in ("order-42", "order-43", "order-44"):
            assert [r["value"] for r in records if r["key"] == order] == [
                "created",
                "paid",
                "shipped",
            ]
    assert shop.group_lag() == {"billing": 0, "shipping": 0, "analytics": 0}


def test_chapter_9_quiz_answers_are_what_the_engine_computes():
    questions = quiz.load("ch09")
    assert len(questions) >= 5
    assert "partitioned, replicated log topic keyed by order id" in next(
        a["answer"] for a in questions[0]["answers"] if a["correct"]
    )
    owned = assign("range", {f"c{i}": ["orders"] for i in range(1, 9)}, {"orders": 6})
    idle = sum(1 for parts in owned.values() if not parts)
    assert [a["value"] for a in questions[1]["answers"] if a.get("correct")] == [idle] == [2]
    topic = PubSubRun({"billing": 2, "email": 1, "analytics": 1})
    topic.publish(1)
    copies = int(topic.summary().rsplit("; ", 1)[1].split()[0])
    assert [a["value"] for a in questions[2]["answers"] if a.get("correct")] == [copies] == [3]
    assert all(a.get("feedback") for q in questions for a in q["answers"])
    assert not any(q.get("precision") == 0 for q in questions)


def test_the_layout_fits_a_1280_by_720_screen():
    """Charts side by side at 215 px, one row of cards, the state line and three rows of
    controls: about 430 px in JupyterLab at 1280x720 (test_jupyterlab_ch08 measures it)."""
    view = MessageQueueSimulator()
    charts, legend, cards, summary, *rows, loader = view.view.children
    assert loader is view.a11y_loader
    assert [f.layout.height for f in charts.children] == ["215px", "215px"]
    assert [f.layout.width for f in charts.children] == ["50%", "50%"]
    assert len(cards.children) == 4 and summary is view.summary_label
    assert [r.children[0].value for r in rows] == [
        "<b>Producer</b>",
        "<b>Failures</b>",
        "<b>Broker</b>",
    ]
    # every card fits the 848 px a JupyterLab output gets at 1280 px wide
    widths = [int(c.layout.width.removesuffix("px")) + 6 for c in cards.children]
    assert sum(widths) <= 848


def test_a_long_run_draws_bounded_series_with_rates_over_their_spacing():
    from mqlib.scenarios.playground import MAX_POINTS

    run = Playground(rate=20.0, backpressure=True, capacity=100)
    for _ in range(120):
        run.advance(60)
    view = MessageQueueSimulator(run)
    assert len(run.series["time"]) <= MAX_POINTS
    assert drawn(view.depth_mark, run.series["time"]) == run.series["depth"]
    assert run.resolution > 2  # merged: the rate lines average over the points' spacing
    assert f"averaged over {run.resolution:g} s" in view.legend.value
    # six msg/s of consumers, all of it used: the drawn throughput says so
    assert list(view.throughput_mark.y)[-1] == pytest.approx(6.0, abs=0.5)
    assert list(view.producer_mark.y)[-1] == pytest.approx(6.0, abs=0.5)
