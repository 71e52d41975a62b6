"""Chapter 7's simulations driven headless, as their buttons would; what they draw; the chapter's
quiz answers computed by the engine."""

from __future__ import annotations

import pytest

from mqlib import assign, quiz
from mqlib.models.log import Partition
from mqlib.scenarios import cluster as cluster_scenario
from mqlib.scenarios import kafka_log
from mqlib.scenarios.cluster import ClusterRun
from mqlib.scenarios.kafka_log import KafkaLogRun
from mqlib.widgets import KafkaCluster, KafkaLog
from mqlib.widgets.cluster import ROLE_COLOURS
from mqlib.widgets.kafka_log import DELETED_COLOUR, WINDOW

# --- the log view ---


def test_log_view_opens_on_the_default_run_with_records_deleted_offsets_and_group_positions():
    view = KafkaLog()
    assert view.summary() == kafka_log.default_run().summary()
    assert view.summary() == (
        "t=34s: topic orders offsets p0 [2..3), p1 [1..3), p2 [1..3); billing lag 0 "
        "(p0:0, p1:0, p2:0); analytics lag 6 (p0:2, p1:2, p2:2)"
    )
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    # stored records: p0 offset 2, p1 and p2 offsets 1 and 2
    assert list(zip(view.record_mark.x, view.record_mark.y, strict=True)) == [
        (2, 0),
        (1, 1),
        (2, 1),
        (1, 2),
        (2, 2),
    ]
    # deleted by retention: p0 offsets 0 and 1, p1 and p2 offset 0
    assert list(zip(view.deleted_mark.x, view.deleted_mark.y, strict=True)) == [
        (0, 0),
        (1, 0),
        (0, 1),
        (0, 2),
    ]
    assert list(view.deleted_mark.colors) == [DELETED_COLOUR]
    assert list(view.next_mark.x) == [3, 3, 3]  # the log end offsets
    # one triangle per group and partition: billing at 3, analytics at 1
    assert list(view.group_mark.x) == [3, 3, 3, 1, 1, 1]
    assert list(view.group_labels.text) == ["billing"] * 3 + ["analytics"] * 3
    assert sorted(view.offset_labels.text) == ["0", "0", "0", "1", "1", "1", "2", "2", "2"]
    assert "billing-1 reads p0, p1; billing-2 reads p2" in view.groups_html.value
    assert "total lag 6" in view.groups_html.value
    assert list(view.group_control.options) == ["billing", "analytics"]
    assert view.window() == (0, 15)  # room for 16 offsets from the start


def buttons(view) -> dict:
    return view.buttons


def test_log_buttons_drive_the_engine():
    view = KafkaLog()
    press = buttons(view)
    view.key_control.value = "order-42"
    view.value_control.value = "delivered"
    press["Produce"].click()
    assert view.run.offsets()[0]["log_end_offset"] == 4
    assert view.run.logs()[0][-1]["value"] == "delivered"
    assert view.run.group_lag() == {"billing": 1, "analytics": 7}

    # Poll all for analytics: only analytics moves.
    view.group_control.value = "analytics"
    press["Poll all"].click()
    assert view.run.group_lag() == {"billing": 1, "analytics": 0}

    # A seek to a deleted offset is accepted, as Kafka's seek() is; the next poll finds the
    # offset gone and auto.offset.reset (latest, the default) moves analytics to the log end.
    view.partition_control.value = 0
    view.offset_control.value = 0
    press["Seek"].click()
    assert view.message.value == ""
    assert view.run.committed()["analytics"][0] == 0
    assert 0 in list(view.group_mark.x)  # the triangle points at a deleted offset
    press["Poll 1"].click()
    assert "offset 0 of partition 0 no longer exists" in view.message.value
    assert "moved it to 4" in view.message.value
    assert view.run.committed()["analytics"][0] == 4
    # A negative offset is refused with the engine's reason.
    view.offset_control.value = -1
    press["Seek"].click()
    assert "Refused" in view.message.value and "offset must be &gt;= 0" in view.message.value
    # A valid seek rewinds analytics in partition 0; Poll 1 reads one record per partition.
    view.offset_control.value = 2
    press["Seek"].click()
    assert view.message.value == ""
    assert view.run.committed()["analytics"][0] == 2
    press["Poll 1"].click()
    assert view.run.committed()["analytics"][0] == 3
    press["Rewind to start"].click()
    assert view.run.committed()["analytics"] == {0: 2, 1: 1, 2: 1}

    # Members: billing gets a third member, each owns one partition; then back to two.
    view.group_control.value = "billing"
    press["+ member"].click()
    assert view.run.assignments()["billing"] == {
        "billing-1": [0],
        "billing-2": [1],
        "billing-3": [2],
    }
    press["− member"].click()
    assert len(view.run.assignments()["billing"]) == 2

    # A new group starts where auto.offset.reset says: latest (Kafka's default) at the log end,
    # earliest at the oldest stored record.
    assert view.new_group_control.value == "audit"
    assert view.reset_control.value == "latest"
    press["Add group"].click()
    assert view.run.committed()["audit"] == {0: 4, 1: 3, 2: 3}
    assert "audit" in view.group_control.options
    assert "audit" not in view.new_group_control.options
    view.reset_control.value = "earliest"
    press["Add group"].click()
    assert view.run.committed()["search"] == {0: 2, 1: 1, 2: 1}

    # Retention: 30 s later everything is gone, offsets go on.
    press["Advance 5 s"].click()
    press["Advance 30 s"].click()
    assert view.run.now == 69
    assert view.run.logs() == {0: [], 1: [], 2: []}
    assert list(view.record_mark.x) == []
    assert list(view.deleted_mark.x) == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]
    assert view.produce("order-43", "paid")["offset"] == 3


def test_log_view_keys_without_a_key_and_a_window_of_the_latest_offsets():
    view = KafkaLog(KafkaLogRun(1))
    assert list(view.group_control.options) == []
    assert view.buttons["Poll all"].disabled
    view.key_control.value = "(no key)"
    view.buttons["Produce"].click()
    assert view.run.logs()[0][0]["key"] is None
    for _ in range(30):
        view.produce("order-42", "paid")
    first, last = view.window()
    assert (first, last) == (31 - WINDOW + 1, 31)  # the log end, 31, at the right edge
    assert min(view.record_mark.x) == first
    assert "Offsets before 16 are off the chart" in view.legend.value
    view.produce("order-42", "paid")  # 32: the window moves on by 8 offsets, not by 1
    assert view.window() == (24, 39)
    for _ in range(7):
        view.produce("order-42", "paid")
    assert view.window() == (24, 39)  # up to 39: the same window, the same axis
    view.produce("order-42", "paid")
    assert view.window() == (32, 47)


def test_log_view_methods_validate_through_the_scenario():
    view = KafkaLog()
    before = view.summary()
    with pytest.raises(ValueError, match="offset must be >= 0"):
        view.seek("billing", 0, -1)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        view.advance(0)
    with pytest.raises(TypeError, match="run must be a KafkaLogRun"):
        KafkaLog(run="default")
    assert view.summary() == before


# --- the cluster view ---


def test_cluster_view_opens_on_the_failover_run():
    view = KafkaCluster()
    assert view.summary() == cluster_scenario.default_run().summary()
    assert view._repr_mimebundle_()["text/plain"] == view.summary()
    cells = {(c["partition"], c["broker"]): c for c in view.cells()}
    assert len(cells) == 9
    assert [cells[(p, 1)]["role"] for p in range(3)] == ["down"] * 3
    assert cells[(0, 2)]["role"] == "leader" and cells[(0, 3)]["role"] == "in sync"
    assert cells[(2, 3)]["role"] == "leader"
    assert cells[(0, 1)]["log_end_offset"] == 3 and cells[(0, 2)]["log_end_offset"] == 4
    assert list(view.cell_mark.colors).count(ROLE_COLOURS["leader"]) == 3
    assert list(view.offset_labels.text).count("LEO 4") == 6
    assert view.y_axis.tick_labels["0"] == "p0: HW 4, epoch 1"
    assert view.broker_buttons[1].description == "Restart broker 1"
    assert view.broker_buttons[2].description == "Kill broker 2"
    assert "none" in view.lost_html.value


def test_cluster_buttons_drive_the_engine():
    view = KafkaCluster()
    view.key_control.value = "order-42"
    view.acks_control.value = "all"
    view.buttons["Produce"].click()
    assert view.run.requests()[-1]["status"] == "pending"
    assert "pending" in view.request_html.value
    view.buttons["Advance 1 s"].click()
    assert view.run.requests()[-1]["status"] == "acknowledged"
    assert view.y_axis.tick_labels["0"] == "p0: HW 5, epoch 1"

    # A second broker down: below min.insync.replicas, acks=all is refused.
    view.broker_buttons[2].click()
    assert view.broker_buttons[2].description == "Restart broker 2"
    view.buttons["Advance 10 s"].click()
    view.buttons["Produce"].click()
    assert view.run.requests()[-1]["error"] == "NotEnoughReplicasError"
    assert "NotEnoughReplicasError" in view.request_html.value

    # Broker 1 comes back, catches up, rejoins the ISR: writes succeed again.
    view.broker_buttons[1].click()
    view.buttons["Advance 1 s"].click()
    assert 1 in view.run.state()["partitions"][0]["isr"]
    view.buttons["Produce"].click()
    view.buttons["Advance 1 s"].click()
    assert view.run.requests()[-1]["status"] == "acknowledged"
    assert view.run.lost_records() == []

    # The unclean-election checkbox calls the scenario, and code syncs it back.
    view.unclean_control.value = True
    assert view.run.cluster.unclean_leader_election is True
    view.set_unclean_leader_election(False)
    assert view.unclean_control.value is False


def test_cluster_view_shows_an_acks_1_loss():
    view = KafkaCluster(ClusterRun())
    view.acks_control.value = 1
    view.buttons["Produce"].click()  # order-42 -> p0, leader broker 1
    view.buttons["Advance 1 s"].click()
    view.buttons["Produce"].click()
    view.broker_buttons[1].click()  # dies before the followers fetch offset 1
    view.buttons["Advance 10 s"].click()
    lost = view.run.lost_records()
    assert [(x["offset"], x["status"]) for x in lost] == [(1, "acknowledged")]
    assert "Lost records:</b> p0 offset 1" in view.lost_html.value


def test_cluster_view_methods_validate_through_the_scenario():
    view = KafkaCluster()
    before = view.summary()
    with pytest.raises(ValueError):
        view.kill_broker(9)
    with pytest.raises(ValueError):
        view.produce("order-42", "x", acks=2)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        view.advance(-1)
    with pytest.raises(TypeError, match="run must be a ClusterRun"):
        KafkaCluster(run="x")
    assert view.summary() == before


def test_cluster_failure_script_button_uses_the_acks_and_unclean_controls():
    from mqlib.scenarios.durability import durability_run, outcome

    view = KafkaCluster(ClusterRun(replication_factor=2, min_insync_replicas=1))
    view.acks_control.value = "all"
    view.unclean_control.value = True
    view.buttons["Run the failure script"].click()
    assert view.message.value == ""
    expected = outcome(durability_run(2, 1, "all", True))
    assert view.script_outcome == expected and expected["acknowledged_lost"] == 51
    assert view.summary() == durability_run(2, 1, "all", True).summary()
    assert "51 of them lost" in view.script_html.value
    # 51 losses read as one run of offsets, not 51 entries.
    assert "Lost records:</b> 51: p0 offsets 10-60 (acknowledged)</span>" in view.lost_html.value
    # From code: the values given move the controls; RF and min ISR stay the view's.
    row = view.run_failure_script(acks=1, unclean_leader_election=False)
    assert (view.acks_control.value, view.unclean_control.value) == (1, False)
    assert (row["replication_factor"], row["acks"], row["acknowledged_lost"]) == (2, 1, 0)
    # A one-replica topic has no follower to fall behind: refused, the view unchanged.
    single = KafkaCluster(ClusterRun(replication_factor=1, min_insync_replicas=1))
    before = single.summary()
    single.buttons["Run the failure script"].click()
    assert "replication_factor" in single.message.value and single.summary() == before


def test_cluster_durability_try_this_untick_unclean_and_rerun():
    """Chapter 7's "try this": the RF 2 view opened on the unclean row, checkbox unticked, script
    run again: nothing lost, 40 s without a leader (Kafka's default, clean elections only)."""
    from mqlib.scenarios.durability import durability_run

    view = KafkaCluster(durability_run(2, 1, "all", True))
    assert view.unclean_control.value is True and view.acks_control.value == "all"
    assert [x["offset"] for x in view.run.lost_records()] == list(range(10, 61))
    view.unclean_control.value = False
    view.buttons["Run the failure script"].click()
    row = view.script_outcome
    assert (row["acknowledged_lost"], row["leaderless_seconds"]) == (0, 40)
    assert "none" in view.lost_html.value


# --- the facts the chapter pins, and its quiz answers ---


def _answer(question: dict) -> object:
    right = [a for a in question["answers"] if a.get("correct")]
    assert len(right) == 1
    return right[0].get("value", right[0].get("answer"))


def test_quiz_answers_are_what_the_engine_computes():
    questions = quiz.load("ch07")
    assert len(questions) >= 4
    assert sum(q["type"] == "numeric" for q in questions) >= 2
    assert all("precision" not in q for q in questions)

    # The lesson's question: 6 partitions over 4 consumers, range assignor -> 2, 2, 1, 1.
    owned = assign("range", {f"c{i}": ["t"] for i in range(4)}, {"t": 6})
    assert [len(ps) for ps in owned.values()] == [2, 2, 1, 1]
    run = KafkaLogRun(6)
    run.add_group("g", 4)
    counts = [len(ps) for ps in run.assignments()["g"].values()]
    assert counts == [2, 2, 1, 1]
    assert sorted(p for ps in run.assignments()["g"].values() for p in ps) == list(range(6))
    assert "(2, 2, 1, 1)" in _answer(questions[0])

    # The worked example: 0..7, one append at 8; A at 3 reads six records; nothing is deleted.
    p = Partition("orders", 0)
    for i in range(8):
        p.append(value=f"msg{i}")
    assert p.append(value="new").offset == 8
    assert len(p.read(3)) == _answer(questions[1]) == 6
    assert [r.offset for r in p.read(6)] == [6, 7, 8]
    assert len(p.records) == 9

    # The opening run's analytics lag.
    assert kafka_log.default_run().group_lag()["analytics"] == _answer(questions[2]) == 6

    # acks=1: an acknowledged record lost when the leader dies before a fetch; acks=all: none.
    risky = ClusterRun()
    risky.produce("order-42", "created", acks=1)
    risky.advance(1.0)
    told = risky.produce("order-42", "paid", acks=1)
    assert told["status"] == "acknowledged"
    risky.kill_broker(1)
    risky.advance(10.0)
    assert [(x["value"], x["status"]) for x in risky.lost_records()] == [("paid", "acknowledged")]
    assert _answer(questions[3]).startswith("It is lost")
    safe = cluster_scenario.default_run()
    assert safe.lost_records() == []
    assert all(r["status"] == "acknowledged" for r in safe.requests())
    assert safe.state()["partitions"][0]["leader"] == 2

    # A new group reads everything still stored, whatever billing read.
    opening = kafka_log.default_run()
    opening.add_group("audit", 1, auto_offset_reset="earliest")
    read = opening.consume("audit")
    start = {p: o["log_start_offset"] for p, o in opening.offsets().items()}
    assert len(read) == sum(len(r) for r in opening.logs().values()) == 5
    assert {r["partition"]: r["offset"] for r in reversed(read)} == start
    assert _answer(questions[4]).startswith("Every record still kept")


def test_two_groups_read_independently_and_reading_does_not_delete():
    run = KafkaLogRun(3)
    for i in range(9):
        run.produce(f"order-{40 + i % 3}", i)
    run.add_group("a", auto_offset_reset="earliest")
    run.add_group("b", auto_offset_reset="earliest")
    assert len(run.consume("a")) == 9
    assert sum(len(r) for r in run.logs().values()) == 9
    assert len(run.consume("b")) == 9
    for records in run.logs().values():
        assert [r["offset"] for r in records] == list(range(len(records)))


# --- fit and feedback (chapter 7's views at 1280x720 must fit in 560 px) ---


def _px(value: str) -> int:
    assert value.endswith("px"), value
    return int(value[:-2])


@pytest.mark.parametrize("make", [KafkaLog, KafkaCluster])
def test_the_controls_sit_beside_the_chart_and_the_chart_is_short(make):
    view = make()
    top = view.view.children[0]
    assert type(top).__name__ == "HBox" and top.children[0] is view.figure
    assert _px(view.figure.layout.height) <= 320
    # chart row, legend, state and a few lines of text (+ the page-script loader)
    assert len(view.view.children) <= 10


def test_the_retention_slider_changes_retention_ms_from_the_next_check():
    view = KafkaLog()
    assert view.retention_control.value == 30
    for key in ("order-42", "order-43"):
        view.produce(key, "x")  # at t=34
    view.advance(5.0)
    view.retention_control.value = 10
    assert view.run.retention_seconds == 10
    assert "retention.ms is now 10 s" in view.summary_label.value
    assert len(view.run.sim.trace.of_kind("config")) == 1
    view.advance(1.0)  # t=40: the opening records (from 8 s or earlier) go; 34 s ones are 6 s old
    assert sum(len(r) for r in view.run.logs().values()) == 2
    view.advance(5.0)  # t=45: 11 s old, more than 10: gone
    assert sum(len(r) for r in view.run.logs().values()) == 0
    with pytest.raises(ValueError, match="seconds must be > 0"):
        view.set_retention(0)
    assert view.run.retention_seconds == 10


def test_a_run_without_retention_hides_the_slider_and_set_retention_starts_checking():
    view = KafkaLog(KafkaLogRun(1))
    assert view.retention_control.layout.display == "none"
    view.produce("k", "v")
    view.set_retention(5)
    view.advance(6.0)
    assert view.run.logs() == {0: []}
