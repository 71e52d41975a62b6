"""Chapter 4's views driven headless, as their controls would be, and every quiz answer of the
chapter computed by the engine."""

import numpy as np
import pytest

from mqlib import kafka_partition, quiz
from mqlib.models.ordering import partition_mapping
from mqlib.scenarios.ordering import OrderingRun, competing_run, repartition
from mqlib.widgets import MessageOrdering
from mqlib.widgets.ordering import VIOLATION, Repartitioning


def points(mark):
    return list(zip(np.asarray(mark.x, dtype=float), np.asarray(mark.y, dtype=float), strict=True))


def test_opens_on_the_populated_keyed_default_run():
    view = MessageOrdering()
    assert len(view.event_mark.x) == 9  # every event of orders 42, 43, 44 is drawn
    assert len(view.ring_mark.x) == 0  # and none is ringed
    assert all(len(x) == 2 and x[1] > 0 for x in view.track_mark.x)  # the chart is never empty
    assert view.summary() == (
        "t=1.58 s, 4 partitions, keyed, 4 consumers: processed 9 of 9 "
        "(42: created > paid > shipped; 43: created > paid > shipped; "
        "44: created > paid > shipped); 0 ordering violations"
    )
    assert "murmur2(key) mod 4: 42 &rarr; 0, 43 &rarr; 2, 44 &rarr; 3" in view.routing_html.value
    assert "partition 1 &rarr; consumer B (50 ms/event): &mdash;" in view.routing_html.value
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    assert (view.mode_control.value, view.partition_control.value) == ("partitions", 4)
    assert (view.keyed_control.value, view.consumer_control.value) == (True, 4)
    assert view.jitter_control.value == 0.05


def test_one_queue_rings_order_42s_paid_and_shipped():
    view = MessageOrdering()
    view.mode_control.value = "queue"  # as a click on the toggle would
    assert view.run.mode == "queue"
    assert view.consumer_control.value == 2
    assert view.partition_control.disabled and view.keyed_control.disabled
    row_of_42 = 0
    ringed = points(view.ring_mark)
    assert len(ringed) == 2 and all(y == row_of_42 for _, y in ringed)
    assert view.sequence_html.value.count("&#10007;") == 2
    assert VIOLATION in view.label_above.colors or VIOLATION in view.label_below.colors
    assert "42: paid > shipped > created" in view.summary()
    assert view.summary().endswith("2 ordering violations")
    assert "<b>One queue</b>" in view.routing_html.value


def test_the_lessons_competing_consumers_exactly():
    view = MessageOrdering(competing_run())
    assert points(view.ring_mark) == [(0.16, 0.0), (0.31, 0.0)]
    # The rings are the rows the scenario flags as violations.
    flagged = [(p["time"], 0.0) for p in view.run.processed() if p["violation"]]
    assert points(view.ring_mark) == flagged
    assert view.summary().startswith("t=0.50 s, one queue, 2 competing consumers")


def test_unkeyed_partitions_break_order_and_keyed_never_do():
    view = MessageOrdering()
    view.keyed_control.value = False
    assert "unkeyed" in view.summary()
    assert len(view.ring_mark.x) == len(view.run.violations()) > 0
    view.keyed_control.value = True
    for partitions in (1, 2, 3, 5, 8):
        view.partition_control.value = partitions
        for jitter in (0.0, 0.3):
            view.jitter_control.value = jitter
            assert len(view.ring_mark.x) == 0, (partitions, jitter)
    assert view.run.partitions == 8 and view.run.jitter == 0.3


def test_extra_consumers_sit_idle():
    view = MessageOrdering()
    view.consumer_control.value = 6
    assert view.run.assignment() == {"A": [0], "B": [1], "C": [2], "D": [3], "E": [], "F": []}
    assert "idle (no partition left for them): E, F" in view.routing_html.value


def test_stepping_buttons_drive_the_engine():
    view = MessageOrdering()
    view.buttons["Start over"].click()
    assert len(view.event_mark.x) == 0
    assert view.summary() == (
        "t=0.00 s, 4 partitions, keyed, 4 consumers: processed 0 of 0; 0 ordering violations"
    )
    view.buttons["Send a batch"].click()
    view.buttons["Advance 0.1 s"].click()
    view.buttons["Advance 0.1 s"].click()
    assert view.run.now == pytest.approx(0.2)
    assert 0 < len(view.event_mark.x) < 9
    view.buttons["Process all"].click()
    assert len(view.event_mark.x) == 9
    assert view.send() == [
        "42 created",
        "43 created",
        "44 created",
        "42 paid",
        "43 paid",
        "44 paid",
        "42 shipped",
        "43 shipped",
        "44 shipped",
    ]
    view.process_all()
    assert len(view.event_mark.x) == 18 and len(view.ring_mark.x) == 0


def test_methods_validate_before_touching_controls():
    view = MessageOrdering()
    with pytest.raises(ValueError, match="mode must be one of"):
        view.set_mode("stream")
    with pytest.raises(ValueError, match="partitions"):
        view.set_partitions(0)
    with pytest.raises(ValueError, match="jitter"):
        view.set_jitter(-1)
    with pytest.raises(TypeError):
        view.set_keyed("yes")
    with pytest.raises(TypeError, match="run must be an OrderingRun"):
        MessageOrdering(run="default")
    assert view.partition_control.value == 4 and view.jitter_control.value == 0.05
    view.set_partitions(12)  # beyond the slider: the slider grows instead of clamping
    assert view.partition_control.value == 12
    view.set_consumers(None)
    assert view.consumer_control.value == 12
    view.set_processing_time("A", 0.01)
    assert view.run.processing_times()["A"] == 0.01


def test_repartitioning_moves_every_lesson_key_from_4_to_5():
    view = Repartitioning()
    assert view.mapping() == {42: (0, 2), 43: (2, 4), 44: (3, 4)}
    assert view.summary() == (
        "4 → 5 partitions: order 42: partition 0 → 2; order 43: partition 2 → 4; "
        "order 44: partition 3 → 4; 3 of 3 orders change partition"
    )
    assert np.asarray(view.move_mark.x).tolist() == [[0, 2], [2, 4], [3, 4]]
    view.after_control.value = 4
    assert view.moved() == [] and view.summary().endswith("0 of 3 orders change partition")
    view.set_after(8)
    assert view.after_control.value == 8
    assert view.mapping() == {42: (0, 4), 43: (2, 2), 44: (3, 3)}
    with pytest.raises(ValueError, match="before must be >= 1"):
        view.set_before(0)
    assert view.before == 4
    assert view.before_control.value == 4  # a refused value leaves the view as it was
    # The view draws what the scenario computes, nothing of its own.
    view.set_before(3)
    change = repartition(3, 8)
    assert (view.mapping(), view.moved(), view.summary()) == (
        change.mapping,
        change.moved,
        change.summary,
    )
    assert points(view.old_mark) == [(old, i) for i, (old, _) in enumerate(change.mapping.values())]
    with pytest.raises(ValueError, match="after must be <= 64"):
        Repartitioning(before=4, after=65)
    with pytest.raises(ValueError, match="orders must name at least one order id"):
        Repartitioning(orders=[])


def test_sliders_start_at_the_values_given_widening_instead_of_clamping():
    view = Repartitioning(before=20, after=30)
    assert (view.before_control.value, view.after_control.value) == (20, 30)
    assert view.before_control.max >= 30 and view.after_control.max >= 30
    assert view.summary() == repartition(20, 30).summary
    scripted = OrderingRun(partitions=12, consumers=10, jitter=0.8)
    scripted.run()
    ordering = MessageOrdering(scripted)
    assert ordering.partition_control.value == 12
    assert ordering.consumer_control.value == 10
    assert ordering.jitter_control.value == 0.8
    assert (scripted.partitions, scripted.consumers, scripted.jitter) == (12, 10, 0.8)


# -- the numbers the chapter's prose and quiz state ---------------------------------------------


def test_kafka_puts_the_lesson_orders_on_partitions_0_2_3_not_2_3():
    assert [kafka_partition(str(o), 4) for o in (42, 43, 44)] == [0, 2, 3]
    assert (kafka_partition("42", 5), kafka_partition("42", 8)) == (2, 4)


def test_integer_serialized_keys_land_elsewhere():
    # Kafka's IntegerSerializer writes 4 big-endian bytes; murmur2 hashes bytes, not numbers.
    assert [kafka_partition(o.to_bytes(4, "big"), 4) for o in (42, 43, 44)] == [0, 0, 3]


def test_equal_consumers_with_jitter_reorder_order_42_seed_2():
    run = OrderingRun(mode="queue", consumers=3, jitter=0.3, seed=2)
    for consumer in "ABC":
        run.set_processing_time(consumer, 0.1)
    run.run()
    assert run.sequences()[42] == ["paid", "created", "shipped"]
    assert len(run.violations()) == 1


def test_same_events_same_consumers_queue_versus_partitions_seed_0():
    queue = OrderingRun(mode="queue", consumers=2, jitter=0.05, seed=0)
    queue.run()
    keyed = OrderingRun(mode="partitions", consumers=2, jitter=0.05, seed=0)
    keyed.run()
    assert queue.sequences()[42] == ["paid", "shipped", "created"]
    assert len(queue.violations()) == 2
    assert keyed.violations() == []
    assert keyed.assignment() == {"A": [0, 1], "B": [2, 3]}


def test_most_keys_move_when_the_partition_count_changes():
    for new, stay in ((5, 204), (8, 486)):
        where = partition_mapping(range(1, 1001), (4, new))
        assert sum(w[4] == w[new] for w in where.values()) == stay


def test_total_order_versus_per_key_order_throughput():
    done = {}
    for partitions in (1, 2, 3, 4):
        run = OrderingRun(partitions=partitions)
        for consumer in run.processing_times():
            run.set_processing_time(consumer, 0.1)
        run.run()
        assert run.violations() == []
        done[partitions] = round(run.now, 2)
    assert done == {1: 0.9, 2: 0.6, 3: 0.61, 4: 0.32}


def answer(bank, index):
    question = quiz.load(bank)[index]
    if question["type"] == "numeric":
        return next(a["value"] for a in question["answers"] if a.get("correct"))
    return next(a["answer"] for a in question["answers"] if a.get("correct"))


def test_quiz_answers_are_what_the_engine_computes():
    questions = quiz.load("ch04")
    assert len(questions) == 8  # 7 and 8 (librdkafka, producer retries) are pinned in test_quiz
    # 1. same key, 4 partitions, 4 consumers: all of order 42 in one partition, one reader.
    assert answer("ch04", 0).startswith("No.")
    run = OrderingRun(partitions=4, consumers=4, jitter=0.5)
    run.run()
    logs_with_42 = [p for p, log in enumerate(run.partition_logs()) if any("42" in e for e in log)]
    assert logs_with_42 == [0]
    assert [owner for owner, parts in run.assignment().items() if 0 in parts] == ["A"]
    assert run.sequences()[42] == ["created", "paid", "shipped"] and run.violations() == []
    # 2. key "42" with 4 partitions
    assert answer("ch04", 1) == kafka_partition("42", 4) == 0
    # 3. the lesson's A 500 ms / B 50 ms on one queue
    assert answer("ch04", 2) == len(competing_run().violations()) == 2
    # 4. 4 -> 5 partitions moves key 42 from partition 0 to 2
    assert "(2 instead of 0)" in answer("ch04", 3)
    assert partition_mapping([42], (4, 5)) == {42: {4: 0, 5: 2}}
    # 5. total order: one partition, one busy consumer
    single = OrderingRun(partitions=1, consumers=4)
    single.run()
    assert [c for c, parts in single.assignment().items() if parts] == ["A"]
    # 6. 6 consumers, 4 partitions: 2 idle
    six = OrderingRun(partitions=4, consumers=6)
    idle = [c for c, parts in six.assignment().items() if not parts]
    assert answer("ch04", 5) == len(idle) == 2


def test_step_names_never_overlap_even_with_eight_consumers_and_half_a_second_of_jitter():
    """The issue's case: with jitter 0.5 and 8 consumers, 43's "paid" (below its row) sat on
    44's "shipped" (above the next row). No two names in the same band, or in the facing bands of
    neighbouring rows, are closer than a label's width."""
    from mqlib.widgets.ordering import LABEL_SPAN

    for consumers in range(1, 9):
        for jitter in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
            view = MessageOrdering()
            view.set_consumers(consumers)
            view.set_jitter(jitter)
            span = view.x_scale.max
            labels = [
                (float(x), 2 * int(y) + (0 if mark is view.label_above else 1))
                for mark in (view.label_above, view.label_below)
                for x, y in zip(mark.x, mark.y, strict=True)
            ]
            assert len(view.event_mark.x) == 9
            if (consumers, jitter) == (8, 0.5):
                assert len(labels) == 9  # the case: every name has room
            for i, (t, band) in enumerate(labels):
                for u, other in labels[i + 1 :]:
                    clash = other == band or (min(band, other) % 2 == 1 and abs(band - other) == 1)
                    assert not (clash and abs(t - u) < LABEL_SPAN * span), (
                        consumers,
                        jitter,
                        (t, band),
                        (u, other),
                    )


@pytest.mark.parametrize("mode", ["partitions", "queue"])
def test_after_many_batches_each_routing_line_lists_only_the_latest_events(mode):
    from mqlib.widgets.ordering import ROUTING_EVENTS

    run = OrderingRun(mode=mode)
    for _ in range(40):  # 360 events
        run.send()
    run.run()
    view = MessageOrdering(run)
    lines = view.routing_html.value.split("<br>")[1:]
    listed = [line for line in lines if "earlier) ..." in line]
    assert listed, lines
    for line in listed:
        assert line.split("earlier) ... ")[1].count(",") == ROUTING_EVENTS - 1
    assert len(view.routing_html.value) < 4_000
