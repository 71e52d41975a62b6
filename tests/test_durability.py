"""Chapter 7's durability table: every number it prints, derived from the failure script's times.

The rules pinned here are Kafka's own:

* ``acks=all`` waits for the *current* ISR, and with ``min.insync.replicas=1`` (the broker
  default, ``ServerLogConfigs.MIN_IN_SYNC_REPLICAS_DEFAULT``) an ISR shrunk to the leader alone
  still acknowledges; "Availability and Durability Guarantees" in Kafka's design docs.
* A follower leaves the ISR when it has not caught up for more than ``replica.lag.time.max.ms``
  (30 s since Kafka 2.5; ``ReplicationConfigs.REPLICA_LAG_TIME_MAX_MS_DEFAULT``), checked every
  half of that (``ReplicaManager``'s "isr-expiration" task).
* ``unclean.leader.election.enable`` defaults to false (since 0.11, ``LogConfig``); an unclean
  election makes a stale replica the truth ("Unclean leader election: What if they all die?").
* ``broker.session.timeout.ms`` is 9 s (``KRaftConfigs``).
* Kafka does not fsync each write: ``flush.messages``/``flush.ms`` default to ``Long.MAX_VALUE``
  (``TopicConfig`` docs: "use replication for durability").
"""

from __future__ import annotations

import pytest

from mqlib.scenarios import durability as d
from mqlib.scenarios.durability import (
    durability_run,
    durability_table,
    format_table,
    outcome,
    power_loss_run,
)

SESSION_TIMEOUT = 9  # broker.session.timeout.ms
LAG_MAX = 30  # replica.lag.time.max.ms
FENCED_AT = d.LEADER_DIES_AT + SESSION_TIMEOUT  # 69: the controller notices the dead leader
# The follower last caught up at t=10; the leader's check runs every 15 s, and 10 + 30 is not yet
# *more* than 30 s behind, so the check at 45 is the first that drops it.
SHRINK_AT = 45
WRITES = d.DURATION  # one a second, t = 0 .. 119
# Writes to the dead leader before the controller notices: t = 61 .. 68.
BEFORE_FENCING = FENCED_AT - d.LEADER_DIES_AT - 1
# Writes while partition 0 has no leader at all with clean elections only (RF 2): t = 61 .. 99.
OFFLINE = d.LEADER_RETURNS_AT - d.LEADER_DIES_AT - 1
# Acknowledged by the leader alone, lost to an unclean election: t = 10 .. 60.
LEADER_ONLY = d.LEADER_DIES_AT - d.FOLLOWER_STALLS_AT + 1


@pytest.fixture(scope="module")
def table():
    rows = durability_table()
    return {
        (
            r["replication_factor"],
            r["min_insync_replicas"],
            r["acks"],
            r["unclean_leader_election"],
        ): r
        for r in rows
    }


def test_the_script_times_follow_kafkas_defaults():
    assert (FENCED_AT, SHRINK_AT, BEFORE_FENCING, OFFLINE, LEADER_ONLY) == (69, 45, 8, 39, 51)
    run = durability_run(2, 1, "all", False)
    shrinks = [e for e in run.sim.trace.of_kind("isr_shrink") if e.data["partition"] == 0]
    assert [(e.time, e.data["reason"], e.data["isr"]) for e in shrinks][0] == (
        SHRINK_AT,
        "lagging",
        [1],
    )
    elections = [e for e in run.sim.trace.of_kind("leader_elected") if e.data["partition"] == 0]
    assert [(e.time, e.data["leader"], e.data["clean"]) for e in elections] == [
        (d.LEADER_RETURNS_AT, 1, True)
    ]


def test_table_has_every_combination_once_and_marks_kafkas_defaults(table):
    assert len(table) == 2 * 2 * 2 * 2
    defaults = sorted(k for k, r in table.items() if r["kafka_default"])
    assert defaults == [(2, 1, "all", False), (3, 1, "all", False)]
    assert all(r["writes"] == WRITES and r["pending"] == 0 for r in table.values())
    text = format_table(list(table.values()))
    assert len(text.splitlines()) == 2 + 16
    assert sum(line.startswith("*") for line in text.splitlines()) == 2


def test_rf2_default_settings_the_leader_alone_acknowledges_and_an_unclean_election_loses_it(
    table,
):
    # min.insync.replicas=1: once the ISR is [leader], acks=all is acknowledged by the leader
    # alone, exactly like acks=1.
    for acks in (1, "all"):
        clean, unclean = table[(2, 1, acks, False)], table[(2, 1, acks, True)]
        # Clean only: nothing lost, but no leader from the crash until the old leader returns.
        assert clean["acknowledged_lost"] == 0
        assert clean["leaderless_seconds"] == d.LEADER_RETURNS_AT - d.LEADER_DIES_AT == 40
        assert clean["errors"] == {"LeaderNotAvailableError": OFFLINE}
        assert clean["acknowledged"] == WRITES - OFFLINE == 81
        # Unclean: back after the session timeout, and every write since the stall is gone.
        assert unclean["leaderless_seconds"] == SESSION_TIMEOUT
        assert unclean["acknowledged_lost"] == LEADER_ONLY
        assert unclean["lost_offsets"] == list(range(d.FOLLOWER_STALLS_AT, d.LEADER_DIES_AT + 1))
        assert unclean["errors"] == {"LeaderNotAvailableError": BEFORE_FENCING}
        assert unclean["acknowledged"] == WRITES - BEFORE_FENCING == 112


def test_rf2_min_isr_2_refuses_instead_of_losing(table):
    for unclean in (False, True):
        row = table[(2, 2, "all", unclean)]
        assert row["acknowledged_lost"] == 0
        # Appended while the stalled follower was still in the ISR, then refused at the shrink.
        assert row["errors"]["NotEnoughReplicasAfterAppendError"] == SHRINK_AT - 10 == 35
        # Writes 0-9, then 101-119 once the returned leader's follower has caught up again.
        assert row["acknowledged"] == 10 + (WRITES - d.LEADER_RETURNS_AT - 1) == 29
        assert row["refused"] == WRITES - row["acknowledged"] == 91
    clean, unclean = table[(2, 2, "all", False)], table[(2, 2, "all", True)]
    # Clean: 45-60 refused by the lone leader, 61-99 offline, 100 refused (ISR [1] again).
    assert clean["errors"] == {
        "LeaderNotAvailableError": OFFLINE,
        "NotEnoughReplicasAfterAppendError": 35,
        "NotEnoughReplicasError": 16 + 1,
    }
    # Unclean: the stale follower leads from 69 but alone, so 69-100 are refused too.
    assert unclean["errors"] == {
        "LeaderNotAvailableError": BEFORE_FENCING,
        "NotEnoughReplicasAfterAppendError": 35,
        "NotEnoughReplicasError": 16 + (d.LEADER_RETURNS_AT - FENCED_AT + 1),
    }
    assert unclean["leaderless_seconds"] == SESSION_TIMEOUT
    # min.insync.replicas only governs acks=all: with acks=1 min ISR 2 is the same as 1.
    for unclean in (False, True):
        assert table[(2, 2, 1, unclean)] | {"min_insync_replicas": 1} == table[
            (2, 1, 1, unclean)
        ] | {"kafka_default": table[(2, 2, 1, unclean)]["kafka_default"]}


def test_rf3_survives_the_script_and_acks_1_still_loses_the_last_write(table):
    for min_isr in (1, 2):
        for unclean in (False, True):
            ones = table[(3, min_isr, 1, unclean)]
            # The write at t=60 reached only the leader before it died.
            assert ones["lost_offsets"] == [d.LEADER_DIES_AT]
            assert ones["errors"] == {"LeaderNotAvailableError": BEFORE_FENCING}
            assert ones["leaderless_seconds"] == SESSION_TIMEOUT
            alls = table[(3, min_isr, "all", unclean)]
            assert alls["acknowledged_lost"] == 0
            assert alls["errors"]["NotLeaderOrFollowerError"] == 1  # write 60, never acked
            assert alls["leaderless_seconds"] == SESSION_TIMEOUT
    # Unclean election never comes into play: broker 2 was in the ISR.
    assert table[(3, 1, "all", False)] == table[(3, 1, "all", True)] | {
        "unclean_leader_election": False,
        "kafka_default": True,
    }
    assert table[(3, 1, "all", False)]["acknowledged"] == WRITES - BEFORE_FENCING - 1 == 111
    # min ISR 2: from the election (ISR [2]) until broker 3 recovers and rejoins (t=80.5).
    strict = table[(3, 2, "all", False)]
    assert strict["errors"]["NotEnoughReplicasError"] == d.FOLLOWER_RECOVERS_AT - FENCED_AT + 1
    assert strict["refused"] == BEFORE_FENCING + 1 + 12 == 21
    assert strict["acknowledged"] == 99


def test_acks_all_loses_nothing_when_min_isr_is_2_or_elections_are_clean(table):
    for (rf, min_isr, acks, unclean), row in table.items():
        if acks == "all" and (min_isr >= 2 or not unclean):
            assert row["acknowledged_lost"] == 0, (rf, min_isr, acks, unclean)


def test_every_refusal_is_one_of_kafkas_retriable_errors(table):
    from mqlib.models import cluster as model

    for row in table.values():
        for name in row["errors"]:
            assert getattr(model, name).retriable


# -- power loss: Kafka does not fsync each write --------------------------------------------------


def test_losing_power_on_every_replica_loses_acknowledged_records_even_with_min_isr_2():
    run = power_loss_run()  # RF 3, min ISR 2, acks=all: the durable settings
    row = outcome(run)
    assert row["acknowledged"] == d.POWER_LOSS_AT == 60
    # Broker 3 is the last ISR member the controller keeps, so it leads afterwards. Its copy of
    # record k arrived at k + 0.5 s and was on disk only if 60 - (k + 0.5) >= 30: records 0-29.
    assert run.state()["partitions"][0]["leader"] == 3
    assert row["lost_offsets"] == list(range(30, 60))
    assert row["leaderless_seconds"] == d.POWER_BACK_AFTER
    # The OS writes back sooner: fewer lost; records never leave the page cache: all lost.
    assert outcome(power_loss_run(writeback_delay=5.0))["acknowledged_lost"] == 5
    assert outcome(power_loss_run(writeback_delay=0.0))["acknowledged_lost"] == 0
    assert outcome(power_loss_run(writeback_delay=100.0))["acknowledged_lost"] == 60


def test_a_process_crash_on_every_replica_loses_nothing():
    run = d.ClusterRun(min_insync_replicas=2)
    for second in range(20):
        run.produce("k", second, partition=0)
        run.advance(1.0)
    for broker in (1, 2, 3):
        run.kill_broker(broker)  # the OS keeps the page cache: nothing unwritten is lost
    run.advance(10.0)
    for broker in (1, 2, 3):
        run.restart_broker(broker)
    run.advance(1.0)
    assert outcome(run)["acknowledged"] == 20 and outcome(run)["acknowledged_lost"] == 0


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((1,), ValueError, "replication_factor"),
        (("3",), TypeError, "replication_factor"),
        ((2, 3), ValueError, "min_insync_replicas"),
        ((3, 1, 2), ValueError, "acks"),
        ((3, 1, "all", "no"), TypeError, "unclean_leader_election"),
    ],
)
def test_durability_run_rejects_bad_settings(args, error, name):
    with pytest.raises(error, match=name):
        durability_run(*args)


def test_power_loss_run_rejects_bad_settings():
    with pytest.raises(ValueError, match="writeback_delay"):
        power_loss_run(writeback_delay=-1)
    with pytest.raises(TypeError, match="replication_factor"):
        power_loss_run(replication_factor=2.5)
