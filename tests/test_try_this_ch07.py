"""Every "Try this" bullet of chapter 7's simulations does what it says.

As in ``test_try_this.py``: each test takes the widget in the state the notebook leaves it after
Run All (its cell, and every later cell that uses the same variable, executed in-process), follows
one bullet by clicking the widget's buttons and moving its controls, and asserts the outcome the
bullet promises, read from the chart's marks, the state line and the lines under the chart.
"""

from __future__ import annotations

import re

import pytest
from test_try_this import bullets, click, code_cells, notebook_widget, run_cell, state_line

from mqlib.scenarios.cluster import default_run as cluster_run
from mqlib.scenarios.durability import durability_run, outcome, power_loss_run
from mqlib.scenarios.kafka_log import default_run as log_run
from mqlib.scenarios.rebalance import default_run as rebalance_run
from mqlib.widgets import KafkaCluster, KafkaLog, Rebalancing
from mqlib.widgets.cluster import ROLE_COLOURS

NB = "07-kafka-architecture.ipynb"


def first_words(heading: str) -> list[str]:
    return [" ".join(b.split(" ")[:2]) for b in bullets(NB, heading)]


# -- the log --------------------------------------------------------------------------------------
@pytest.fixture
def log_view() -> KafkaLog:
    return notebook_widget(NB, "KafkaLog")


def triangles(view: KafkaLog, group: str) -> dict[int, int]:
    """Partition -> offset of ``group``'s triangle, as drawn."""
    drawn = zip(view.group_labels.text, view.group_mark.x, view.group_mark.y, strict=True)
    return {int(y): int(x) for g, x, y in drawn if g == group}


def test_log_has_the_six_bullets_these_tests_follow():
    assert first_words("## Run it: the log") == [
        "**Produce** a",
        "**Poll all**",
        "Choose a",
        "**+ member**",
        "**Add group**",
        "**Advance 30",
    ]


def test_log_view_shows_its_opening_run_after_run_all(log_view):
    """The scripted audit demonstration runs on a view of its own."""
    assert log_view.summary() == log_run().summary()
    assert "audit" not in log_view.run.committed()
    namespace: dict = {}
    cells = code_cells(NB)
    start = next(i for i, c in enumerate(cells) if "audit_view = KafkaLog()" in c)
    run_cell("from mqlib.widgets import KafkaLog", namespace)
    shown = run_cell(cells[start], namespace)
    assert isinstance(shown, KafkaLog) and shown is not log_view
    assert shown.run.committed()["audit"] == {0: 3, 1: 3, 2: 3}


def test_log_produce_lands_at_the_end_of_the_keys_partition_and_lag_grows(log_view):
    ends = {p: o["log_end_offset"] for p, o in log_view.run.offsets().items()}
    lags = log_view.run.group_lag()
    for key, partition in (("order-42", 0), ("order-43", 1), ("order-44", 2)):
        log_view.key_control.value = key
        click(log_view, "Produce")
        record = log_view.run.logs()[partition][-1]
        assert (record["key"], record["offset"]) == (key, ends[partition])
        drawn = set(zip(log_view.record_mark.x, log_view.record_mark.y, strict=True))
        assert (ends[partition], partition) in drawn
        # the empty "next" box moved one to the right
        assert (ends[partition] + 1, partition) in set(
            zip(log_view.next_mark.x, log_view.next_mark.y, strict=True)
        )
    assert log_view.run.group_lag() == {g: lag + 3 for g, lag in lags.items()}
    assert "billing lag 3" in state_line(log_view)


def test_log_poll_all_for_analytics_moves_only_its_triangles(log_view):
    billing = triangles(log_view, "billing")
    engine = log_run()
    read = engine.consume("analytics")
    log_view.group_control.value = "analytics"
    click(log_view, "Poll all")
    assert log_view.run.summary() == engine.summary()
    ends = {p: o["log_end_offset"] for p, o in log_view.run.offsets().items()}
    assert triangles(log_view, "analytics") == ends
    assert triangles(log_view, "billing") == billing
    assert f"analytics read {len(read)} records" in state_line(log_view)


def test_log_seek_to_a_deleted_offset_is_accepted_and_the_next_poll_resets(log_view):
    assert log_view.group_control.value == "billing"
    log_view.partition_control.value = 0
    log_view.offset_control.value = 0
    click(log_view, "Seek")
    assert log_view.message.value == ""  # accepted, not refused
    assert triangles(log_view, "billing")[0] == 0
    assert (0, 0) in set(zip(log_view.deleted_mark.x, log_view.deleted_mark.y, strict=True))
    assert "Retention has deleted it" in state_line(log_view)
    click(log_view, "Poll 1")
    note = re.sub(r"<[^>]+>", "", log_view.message.value)
    assert "billing: offset 0 of partition 0 no longer exists" in note
    assert "auto.offset.reset moved it to 3 before reading" in note
    assert log_view.run.committed()["billing"][0] == 3  # latest: the end, nothing to read
    # Rewind to start instead: the oldest record still stored, in every partition.
    click(log_view, "Rewind to start")
    starts = {p: o["log_start_offset"] for p, o in log_view.run.offsets().items()}
    assert triangles(log_view, "billing") == starts == {0: 2, 1: 1, 2: 1}


def test_log_a_third_billing_member_shares_the_partitions_out_again(log_view):
    assert "billing-1 reads p0, p1; billing-2 reads p2" in log_view.groups_html.value
    log_view.group_control.value = "billing"
    click(log_view, "+ member")
    assert "billing-1 reads p0; billing-2 reads p1; billing-3 reads p2" in (
        log_view.groups_html.value
    )
    assert "billing-3 joined billing" in state_line(log_view)


def test_log_add_group_latest_then_earliest(log_view):
    log_view.reset_control.value = "latest"
    click(log_view, "Add group")
    first = log_view.run.committed()
    (late,) = set(first) - {"billing", "analytics"}
    ends = {p: o["log_end_offset"] for p, o in log_view.run.offsets().items()}
    assert triangles(log_view, late) == ends
    log_view.reset_control.value = "earliest"
    click(log_view, "Add group")
    (early,) = set(log_view.run.committed()) - set(first)
    starts = {p: o["log_start_offset"] for p, o in log_view.run.offsets().items()}
    assert triangles(log_view, early) == starts != ends


def test_log_advance_30_s_keeps_records_exactly_30_s_old_then_5_s_more_empties(log_view):
    for key in ("order-42", "order-43", "order-44"):  # the first bullet's records
        log_view.key_control.value = key
        click(log_view, "Produce")
    produced_at = log_view.run.now
    click(log_view, "Advance 30 s")
    assert log_view.run.now - produced_at == 30
    left = [r for rs in log_view.run.logs().values() for r in rs]
    assert [r["timestamp"] for r in left] == [produced_at] * 3  # only the 30-s-old ones stay
    assert len(log_view.record_mark.x) == 3
    line = state_line(log_view)
    assert "retention deleted 5 records" in line and "3 exactly 30 s old stay" in line
    click(log_view, "Advance 5 s")
    assert log_view.run.logs() == {0: [], 1: [], 2: []}
    assert list(log_view.record_mark.x) == []
    ends = {p: o["log_end_offset"] for p, o in log_view.run.offsets().items()}
    assert ends == {0: 4, 1: 4, 2: 4}
    log_view.key_control.value = "order-43"
    click(log_view, "Produce")
    assert log_view.run.logs()[1][-1]["offset"] == 4  # the offsets go on


# -- rebalancing ----------------------------------------------------------------------------------
@pytest.fixture
def rebalancing() -> Rebalancing:
    return notebook_widget(NB, "Rebalancing")


def grey(view: Rebalancing) -> list[tuple[float, int]]:
    return list(zip(view.paused_mark.x, view.paused_mark.y, strict=True))


def workers(view: Rebalancing, partition: int) -> list[str]:
    colours = {c: m for m, c in view._colours.items()}
    drawn = zip(view.work_mark.y, view.work_mark.colors, strict=True)
    return [colours[c] for y, c in drawn if y == partition]


def test_rebalancing_has_the_four_bullets_these_tests_follow():
    assert first_words("### Run it: rebalancing") == [
        "Set **protocol**",
        "Tick **commit",
        "Choose `c2`,",
        "**Restart (30",
    ]


def test_rebalancing_opens_on_the_eager_join_with_every_row_grey_at_12_to_14_s(rebalancing):
    assert rebalancing.summary() == rebalance_run().summary()
    assert sorted({t for t, _ in grey(rebalancing)}) == [12.0, 13.0, 14.0]
    assert len(grey(rebalancing)) == 18


def test_rebalancing_cooperative_pauses_only_partition_4_as_it_moves_to_c4(rebalancing):
    rebalancing.protocol_control.value = "cooperative"
    assert rebalancing.run.settings["protocol"] == "cooperative"
    assert rebalancing.run.actions == rebalance_run().actions  # the same story, replayed
    assert {p for _, p in grey(rebalancing)} == {4}
    moved = rebalancing.run.group.rebalances[-1]
    assert moved["moved"] == [4] and moved["assignment"]["c4"] == [4]
    assert workers(rebalancing, 4)[-1] == "c4" != workers(rebalancing, 4)[0]
    assert "Replayed the same 30 s" in state_line(rebalancing)


def test_rebalancing_commit_on_revoke_leaves_nothing_processed_twice(rebalancing):
    assert "30 twice or more" in state_line(rebalancing)
    rebalancing.commit_control.value = True
    assert "0 twice or more" in state_line(rebalancing)
    rebalancing.protocol_control.value = "cooperative"
    assert "0 twice or more" in state_line(rebalancing)


def test_rebalancing_a_stalled_c2_leaves_at_300_s_and_comes_back_at_400_s(rebalancing):
    rebalancing.member_control.value = "c2"
    click(rebalancing, "Stall 400 s")
    stalled_at = rebalancing.run.now
    for _ in range(7):
        click(rebalancing, "Advance 60 s")
    reasons = [(r["time"], r["reason"]) for r in rebalancing.run.group.rebalances]
    assert reasons[1:] == [
        (stalled_at + 303, "c2 exceeded max.poll.interval.ms"),
        (stalled_at + 403, "c2 rejoined after CommitFailedException"),
    ]
    assert "c2 rejoined" in rebalancing.rebalances_html.value
    samples = rebalancing.run.timeline()
    # c2's partitions are grey from the stall until they move at the eviction's rebalance
    stuck = [s for s in samples if s["partition"] in (2, 3) and stalled_at < s["time"] <= 330]
    assert stuck and all(s["worker"] is None for s in stuck)
    after = [s for s in samples if s["partition"] in (2, 3) and 335 <= s["time"] <= 420]
    assert after and all(s["worker"] not in (None, "c2") for s in after)


@pytest.mark.parametrize(("static", "rounds", "grey_rows"), [(False, 2, 6), (True, 0, 2)])
def test_rebalancing_restart_with_and_without_static_membership(
    rebalancing, static, rounds, grey_rows
):
    if static:
        rebalancing.static_control.value = True
    before = len(rebalancing.run.group.rebalances)
    rebalancing.member_control.value = "c2"
    click(rebalancing, "Restart (30 s)")
    click(rebalancing, "Advance 60 s")
    assert len(rebalancing.run.group.rebalances) - before == rounds
    rows = {p for t, p in grey(rebalancing) if t > 30}
    assert len(rows) == grey_rows
    if static:
        assert rows == {2, 3}  # only c2's partitions wait, for the 30 s it is away
        assert len([t for t, p in grey(rebalancing) if t > 30 and p == 2]) == 30


# -- the cluster ----------------------------------------------------------------------------------
@pytest.fixture
def cluster() -> KafkaCluster:
    return notebook_widget(NB, "KafkaCluster")


def roles(view: KafkaCluster) -> dict[tuple[int, int], str]:
    """(partition, broker) -> role, read from the drawn colours."""
    by_colour = {c: r for r, c in ROLE_COLOURS.items()}
    drawn = zip(view.cell_mark.y, view.cell_mark.x, view.cell_mark.colors, strict=True)
    return {(int(p), int(b)): by_colour[c] for p, b, c in drawn}


def test_cluster_has_the_four_bullets_these_tests_follow():
    assert first_words("## Run it: the cluster") == [
        "**Produce** with",
        "**Kill broker",
        "**Restart broker",
        "Reproduce the",
    ]


def test_cluster_opens_on_its_default_run_after_run_all(cluster):
    assert cluster.summary() == cluster_run().summary()


def test_cluster_an_acks_all_write_is_pending_until_the_followers_fetch(cluster):
    click(cluster, "Produce")
    assert "pending" in cluster.request_html.value
    assert cluster.y_axis.tick_labels["0"] == "p0: HW 4, epoch 1"
    click(cluster, "Advance 1 s")
    assert "acknowledged" in cluster.request_html.value
    assert cluster.y_axis.tick_labels["0"] == "p0: HW 5, epoch 1"


def test_cluster_second_broker_down_first_no_leader_then_not_enough_replicas(cluster):
    click(cluster, "Advance 1 s")  # the first bullet's pause
    click(cluster, "Kill broker 2")
    assert "controller notices after broker.session.timeout.ms (9 s)" in state_line(cluster)
    click(cluster, "Produce")  # order-42 -> partition 0, led by broker 2
    request = cluster.run.requests()[-1]
    assert (request["partition"], request["error"]) == (0, "LeaderNotAvailableError")
    assert "controller has not noticed yet" in request["message"]
    assert "LeaderNotAvailableError" in cluster.request_html.value
    click(cluster, "Advance 10 s")
    assert "the controller fenced broker 2" in state_line(cluster)
    state = cluster.run.state()["partitions"]
    assert [(p["leader"], p["isr"]) for p in state] == [(3, [3])] * 3
    assert [r for (_, b), r in roles(cluster).items() if b == 3] == ["leader"] * 3
    click(cluster, "Produce")
    assert cluster.run.requests()[-1]["error"] == "NotEnoughReplicasError"
    assert "NotEnoughReplicasError" in cluster.request_html.value
    assert "min.insync.replicas" in state_line(cluster)


def test_cluster_restarting_broker_1_brings_it_back_in_sync_and_writes_succeed(cluster):
    click(cluster, "Kill broker 2")
    click(cluster, "Advance 10 s")
    click(cluster, "Restart broker 1")
    assert {r for (_, b), r in roles(cluster).items() if b == 1} == {"out of sync"}
    click(cluster, "Advance 1 s")
    assert {r for (_, b), r in roles(cluster).items() if b == 1} == {"in sync"}
    click(cluster, "Produce")
    assert cluster.run.requests()[-1]["status"] == "pending"
    click(cluster, "Advance 1 s")
    assert cluster.run.requests()[-1]["status"] == "acknowledged"


def test_cluster_acks_1_then_killing_the_leader_loses_an_acknowledged_record(cluster):
    cluster.acks_control.value = 1
    assert "acks=1 applies from the next Produce" in state_line(cluster)
    click(cluster, "Produce")
    request = cluster.run.requests()[-1]
    assert (request["partition"], request["status"]) == (0, "acknowledged")
    assert cluster.run.state()["partitions"][0]["leader"] == 2
    click(cluster, "Kill broker 2")
    click(cluster, "Advance 10 s")
    lost = cluster.run.lost_records()
    assert [(x["partition"], x["offset"], x["status"]) for x in lost] == [
        (0, request["offset"], "acknowledged")
    ]
    assert f"p0 offset {request['offset']}" in cluster.lost_html.value


def test_cluster_controls_that_change_nothing_visible_say_so(cluster):
    cluster.key_control.value = "order-44"
    assert "order-44 goes to partition 2" in state_line(cluster)
    click(cluster, "Advance 1 s")
    assert "nothing changed" in state_line(cluster)
    cluster.unclean_control.value = True
    assert "Unclean leader election on" in state_line(cluster)


# -- durability -----------------------------------------------------------------------------------
@pytest.fixture
def rf2_view() -> KafkaCluster:
    cells = code_cells(NB)
    (cell,) = [c for c in cells if "rf2_view = KafkaCluster(" in c]
    namespace: dict = {}
    run_cell("from mqlib.widgets import KafkaCluster", namespace)
    return run_cell(cell, namespace)


def test_durability_has_the_three_bullets_these_tests_follow():
    assert first_words("### When every replica loses power") == [
        "The cell",
        "On the",
        "Make the",
    ]


def test_durability_rf2_view_loses_10_to_60_then_clean_elections_lose_nothing(rf2_view):
    assert rf2_view.run.now == 120
    assert "p0 offsets 10-60 (acknowledged)" in rf2_view.lost_html.value
    rf2_view.unclean_control.value = False
    click(rf2_view, "Run the failure script")
    assert rf2_view.script_outcome["acknowledged_lost"] == 0
    assert rf2_view.script_outcome["leaderless_seconds"] == 40
    assert "none" in rf2_view.lost_html.value


def test_durability_on_the_first_view_acks_1_loses_the_one_record_before_the_crash(cluster):
    cluster.acks_control.value = 1
    click(cluster, "Run the failure script")
    ones = cluster.script_outcome
    cluster.acks_control.value = "all"
    click(cluster, "Run the failure script")
    alls = cluster.script_outcome
    assert (ones["acknowledged_lost"], alls["acknowledged_lost"]) == (1, 0)
    assert ones["lost_offsets"] == [60]  # written just before the crash at 60 s


def test_durability_writeback_delay_changes_the_power_loss():
    assert outcome(power_loss_run())["acknowledged_lost"] == 30
    assert outcome(power_loss_run(writeback_delay=5.0))["acknowledged_lost"] == 5
    assert outcome(power_loss_run(writeback_delay=0))["acknowledged_lost"] == 0


def test_durability_views_match_the_engine():
    assert KafkaCluster(durability_run(2, 1, "all", True)).summary() == (
        durability_run(2, 1, "all", True).summary()
    )


# -- the rebalancing section's code bullets --------------------------------------------------------
def test_rebalancing_code_bullets_hold_what_they_state():
    from mqlib.core import Simulation
    from mqlib.models.rebalance import RebalancingGroup
    from mqlib.scenarios.rebalance import compare_join, restart_run, slow_member_run

    text = bullets(NB, "Where the model simplifies")
    assert [b.split("(")[0].strip("`") for b in text[:3]] == [
        "compare_join",
        "slow_member_run",
        "restart_run",
    ]
    rows = {(r["protocol"], r["commit_on_revoke"]): r for r in compare_join(join_at=14.5)}
    eager, cooperative = rows[("eager", False)], rows[("cooperative", False)]
    assert eager["duplicates"] > cooperative["duplicates"] > 0
    assert cooperative["partitions_paused"] < eager["partitions_paused"]
    # the edge of max.poll.interval.ms (300 s)
    assert slow_member_run(stall=299.0)["rounds"] == 0
    assert slow_member_run(stall=301.0)["evicted_at"] is not None
    # back after the 45 s session timeout: the static member causes rebalances after all
    late = restart_run(True, downtime=50.0)
    assert late["rounds"] > 0
    assert max(late["paused"], key=late["paused"].get) in (2, 3)  # c2's partitions wait longest
    group = RebalancingGroup(Simulation(), protocol="cooperative", commit_interval=1.0)
    group.advance(11.0)
    group.join()
    group.advance(20.0)
    assert "4 members, cooperative protocol" in group.summary()
