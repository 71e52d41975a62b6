"""Chapter 7's broker cluster: replication, the ISR, the high watermark, acks and leader election.

Regenerate the golden trace with ``python tests/test_cluster.py`` (only after checking that the
change in behaviour is intended).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib.core import Simulation
from mqlib.models.cluster import (
    Cluster,
    KafkaError,
    LeaderNotAvailableError,
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    NotLeaderOrFollowerError,
    assign_replicas,
)
from mqlib.models.partitioner import kafka_partition
from mqlib.scenarios.cluster import ClusterRun, default_run


def make(**kwargs) -> Cluster:
    """The lesson's cluster: topic "orders", 3 partitions, RF 3 on brokers 1-3, min ISR 2."""
    kwargs.setdefault("min_insync_replicas", 2)
    return Cluster(Simulation(seed=0), **kwargs)


def produce_all(cluster: Cluster, partition: int, count: int, acks="all"):
    return [cluster.produce(partition, f"k{i}", i, acks=acks) for i in range(count)]


def tick(cluster: Cluster, seconds: float) -> None:
    """Advance, including the events due at the final instant (a fetch at exactly t=0.5 s)."""
    cluster.sim.advance(seconds)
    cluster.sim.settle()


def leader_offsets(cluster: Cluster, partition: int) -> dict[int, int]:
    """record id -> offset in the current leader's log."""
    part = cluster.partitions[partition]
    return {r.id: r.offset for r in part.logs[part.leader].records}


# -- placement -----------------------------------------------------------------------------------


def test_lesson_layout_three_partitions_rf3_on_three_brokers():
    cluster = make()
    layout = {p.id: (p.leader, set(p.replicas) - {p.leader}) for p in cluster.partitions}
    # Partition 0: leader 1, replicas 2, 3; partition 1: leader 2, replicas 1, 3;
    # partition 2: leader 3, replicas 1, 2.
    assert layout == {0: (1, {2, 3}), 1: (2, {1, 3}), 2: (3, {1, 2})}
    assert assign_replicas(3, 3, [1, 2, 3]) == {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]}
    assert all(p.isr == p.replicas for p in cluster.partitions)
    assert all(p.leader_epoch == 0 and p.high_watermark == 0 for p in cluster.partitions)


def test_explicit_assignment_sets_the_election_order():
    # The lesson lists partition 1's followers as brokers 1, 3: with that order broker 1, not
    # Kafka's round-robin choice broker 3, takes over when broker 2 dies.
    lesson = {0: [1, 2, 3], 1: [2, 1, 3], 2: [3, 1, 2]}
    cluster = make(assignment=lesson, session_timeout=0.0)
    cluster.kill_broker(2)
    assert cluster.partitions[1].leader == 1
    assert make(session_timeout=0.0).partitions[1].replicas == [2, 3, 1]


@settings(max_examples=60, deadline=None)
@given(brokers=st.integers(1, 8), data=st.data())
def test_round_robin_placement_spreads_distinct_replicas(brokers, data):
    partitions = data.draw(st.integers(1, 24))
    rf = data.draw(st.integers(1, brokers))
    placed = assign_replicas(partitions, rf, range(1, brokers + 1))
    assert sorted(placed) == list(range(partitions))
    for replicas in placed.values():
        assert len(replicas) == rf == len(set(replicas))
    leaders = [placed[p][0] for p in range(partitions)]
    # Preferred leaders go round-robin over the brokers.
    assert leaders == [1 + p % brokers for p in range(partitions)]


# -- acks=all with min.insync.replicas=2 ---------------------------------------------------------


def test_rf3_min_isr2_one_broker_down_acks_all_still_commits():
    cluster = make()
    sim = cluster.sim
    cluster.kill_broker(3)
    sim.advance(10)  # the controller fences broker 3 at t=9 s
    assert [p.isr for p in cluster.partitions] == [[1, 2], [2, 1], [1, 2]]
    futures = [cluster.produce(p, "order-42", "created") for p in range(3)]
    assert all(f.status == "pending" for f in futures)  # waiting for the follower to fetch
    sim.advance(0.5)  # one fetch interval
    assert [f.status for f in futures] == ["acknowledged"] * 3
    assert [f.get().offset for f in futures] == [0, 0, 0]
    assert [p.high_watermark for p in cluster.partitions] == [1, 1, 1]


def test_acks_all_waits_for_a_dead_follower_until_the_controller_fences_it():
    cluster = make()
    cluster.kill_broker(3)
    future = cluster.produce(0, "order-42", "created")
    tick(cluster, 8.9)
    assert future.status == "pending"  # broker 3 is still in the ISR and never fetches
    tick(cluster, 0.2)
    assert future.acknowledged and future.completed_at == 9.0


def test_rf3_min_isr2_two_brokers_down_acks_all_fails_with_not_enough_replicas():
    cluster = make()
    cluster.kill_broker(2)
    cluster.kill_broker(3)
    tick(cluster, 10)
    assert [(p.leader, p.isr) for p in cluster.partitions] == [(1, [1])] * 3
    for partition in range(3):
        future = cluster.produce(partition, "order-42", "paid")
        assert future.status == "failed"
        with pytest.raises(NotEnoughReplicasError, match="min.insync.replicas=2"):
            future.get()
        assert future.record is None  # refused before the append
    # acks=1 does not look at min.insync.replicas.
    assert cluster.produce(0, "order-42", "paid", acks=1).acknowledged


def test_isr_shrinking_after_the_append_gives_not_enough_replicas_after_append():
    cluster = make()
    future = cluster.produce(0, "order-42", "created")
    cluster.kill_broker(2)
    cluster.kill_broker(3)
    tick(cluster, 10)
    with pytest.raises(NotEnoughReplicasAfterAppendError):
        future.get()
    assert cluster.partitions[0].high_watermark == 1


def test_dead_leader_replaced_from_isr_with_no_acknowledged_record_lost():
    cluster = make()
    acked = produce_all(cluster, 0, 5)
    tick(cluster, 1)
    assert all(f.acknowledged for f in acked)
    cluster.kill_broker(1)  # leader of partition 0
    with pytest.raises(LeaderNotAvailableError):
        cluster.produce(0, "x").get()  # before the controller notices
    tick(cluster, 9.5)  # fenced at t=10 s
    part = cluster.partitions[0]
    assert (part.leader, part.leader_epoch, part.isr) == (2, 1, [2, 3])
    offsets = leader_offsets(cluster, 0)
    assert all(offsets[f.record.id] == f.offset for f in acked)
    assert cluster.lost_records() == []
    more = cluster.produce(0, "k5", 5)
    tick(cluster, 0.5)
    assert more.acknowledged and more.offset == 5


def test_pending_acks_all_fails_when_the_leader_dies_and_is_never_reported_acknowledged():
    cluster = make()
    future = cluster.produce(0, "order-42", "created")
    cluster.kill_broker(1)
    with pytest.raises(NotLeaderOrFollowerError):
        future.get()
    tick(cluster, 10)
    (lost,) = cluster.lost_records()
    assert lost.record.offset == 0 and lost.status == "failed" and not lost.acknowledged


def test_acks_1_loses_an_acknowledged_record_when_the_leader_dies_before_a_fetch():
    cluster = make()
    safe = cluster.produce(0, "order-42", "created", acks=1)
    tick(cluster, 0.5)  # followers fetch offset 0
    risky = cluster.produce(0, "order-42", "paid", acks=1)
    assert risky.acknowledged and risky.get().offset == 1
    cluster.kill_broker(1)  # before the next fetch at t=1.0 s
    tick(cluster, 10)
    assert cluster.partitions[0].leader == 2
    (lost,) = cluster.lost_records()
    assert (lost.record.offset, lost.record.value, lost.acknowledged) == (1, "paid", True)
    assert safe.record.id in leader_offsets(cluster, 0)


def test_acks_0_is_sent_without_an_offset_for_the_producer():
    cluster = make()
    future = cluster.produce(1, "order-43", "created", acks=0)
    assert future.status == "sent" and not future.acknowledged
    assert future.get().offset == -1 and future.offset == 0


# -- unclean leader election ---------------------------------------------------------------------


def _broker_3_falls_behind(unclean: bool) -> tuple[Cluster, list]:
    """Offsets 0-1 reach all three brokers; broker 3 dies; offsets 2-4 reach only 1 and 2."""
    cluster = make(unclean_leader_election=unclean)
    early = produce_all(cluster, 0, 2)
    tick(cluster, 1)
    cluster.kill_broker(3)
    tick(cluster, 10)
    late = [cluster.produce(0, f"late{i}", i) for i in range(3)]
    tick(cluster, 1)
    assert all(f.acknowledged for f in early + late)
    cluster.kill_broker(1)
    cluster.kill_broker(2)
    tick(cluster, 10)
    cluster.restart_broker(3)
    return cluster, early + late


def test_unclean_election_loses_exactly_the_records_the_model_lists():
    cluster, futures = _broker_3_falls_behind(unclean=True)
    part = cluster.partitions[0]
    assert (part.leader, part.isr, part.high_watermark) == (3, [3], 2)
    lost = cluster.lost_records()
    assert [x.record.offset for x in lost] == [2, 3, 4]
    assert all(x.acknowledged for x in lost)
    kept = leader_offsets(cluster, 0)
    missing = [f.record for f in futures if f.record.id not in kept]
    assert [x.record for x in lost] == missing
    # New records reuse the lost offsets, in the new epoch; returning brokers truncate theirs.
    new = cluster.produce(0, "after", "x", acks=1)
    assert (new.offset, new.record.epoch) == (2, part.leader_epoch)
    cluster.restart_broker(1)
    tick(cluster, 0.5)
    assert [r.id for r in part.logs[1].records] == [r.id for r in part.logs[3].records]
    assert 1 in part.isr


def test_clean_only_keeps_the_partition_offline_instead_of_losing_records():
    cluster, futures = _broker_3_falls_behind(unclean=False)
    part = cluster.partitions[0]
    assert part.leader is None and part.isr == [2]  # the last ISR member stays in the ISR
    with pytest.raises(LeaderNotAvailableError, match="offline"):
        cluster.produce(0, "x").get()
    cluster.restart_broker(2)
    assert part.leader == 2
    assert cluster.lost_records() == []
    kept = leader_offsets(cluster, 0)
    assert all(kept[f.record.id] == f.offset for f in futures)


def test_enabling_unclean_election_later_elects_an_out_of_sync_replica():
    cluster, _ = _broker_3_falls_behind(unclean=False)
    cluster.set_unclean_leader_election(True)
    assert cluster.partitions[0].leader == 3
    assert [x.record.offset for x in cluster.lost_records()] == [2, 3, 4]


# -- a follower that falls behind while its broker is up; min ISR 1; power loss ------------------


def test_stalled_follower_leaves_the_isr_by_lag_while_its_broker_stays_registered():
    """Kafka's design docs: a follower that lags too long "but still has an active session" is
    removed by the leader (``replica.lag.time.max.ms``, 30 s since 2.5; checked every 15 s)."""
    cluster = make()
    cluster.stall_follower(3)
    future = cluster.produce(0, "order-42", "created")
    tick(cluster, 30)
    assert 3 in cluster.partitions[0].isr and future.status == "pending"
    tick(cluster, 15)
    assert cluster.partitions[0].isr == [1, 2] and not cluster.brokers[3].fenced
    assert future.acknowledged and future.completed_at == 45.0
    assert cluster.partitions[0].log_end_offsets() == {1: 1, 2: 1, 3: 0}
    cluster.resume_follower(3)
    tick(cluster, 0.5)
    assert cluster.partitions[0].isr == [1, 2, 3]
    assert cluster.partitions[0].log_end_offsets()[3] == 1


def test_min_isr_1_lets_the_leader_alone_acknowledge_acks_all_and_lose_it():
    """Kafka's design docs ("Availability and Durability Guarantees"): acks=all waits for the
    *current* ISR; with one replica left in sync the write succeeds and is lost if that replica
    fails. ``min.insync.replicas`` defaults to 1 (``ServerLogConfigs``)."""
    cluster = Cluster(Simulation(), replication_factor=2, num_brokers=2, num_partitions=1,
                      unclean_leader_election=True)  # fmt: skip
    assert cluster.min_insync_replicas == 1
    cluster.stall_follower(2)
    tick(cluster, 45)
    assert cluster.partitions[0].isr == [1]  # the ISR is the leader alone
    future = cluster.produce(0, "order-42", "paid", acks="all")
    assert future.acknowledged  # at once: no follower to wait for
    cluster.kill_broker(1)
    tick(cluster, 9)
    assert cluster.partitions[0].leader == 2  # unclean: the stale follower
    assert [(x.record.offset, x.status) for x in cluster.lost_records()] == [(0, "acknowledged")]


def test_every_broker_error_is_retriable_like_kafkas():
    """``NotEnoughReplicasException`` and ``NotEnoughReplicasAfterAppendException`` extend
    ``RetriableException``; ``LeaderNotAvailableException`` and ``NotLeaderOrFollowerException``
    extend ``InvalidMetadataException``, also retriable (``org.apache.kafka.common.errors``): the
    producer retries them until ``delivery.timeout.ms`` (120 s, ``ProducerConfig``)."""
    for error in (
        NotEnoughReplicasError,
        NotEnoughReplicasAfterAppendError,
        LeaderNotAvailableError,
        NotLeaderOrFollowerError,
    ):
        assert error.retriable is True
    assert KafkaError.retriable is False


def test_power_loss_drops_what_the_os_had_not_written_back_a_process_crash_keeps_it():
    """``flush.messages``/``flush.ms`` default to never (``Long.MAX_VALUE``): Kafka leaves the
    write to disk to the OS and relies on replication (``TopicConfig`` docs)."""
    cluster = make(writeback_delay=30.0)
    for second in range(40):
        cluster.produce(0, "k", second)
        tick(cluster, 1)
    cluster.kill_broker(2)  # a process crash: the page cache survives
    assert cluster.partitions[0].log_end_offsets()[2] == 40
    cluster.kill_broker(3, power_loss=True)
    # Copies arrived at k + 0.5 s; at t=40 those with 40 - (k + 0.5) >= 30 are on disk: 0-9.
    assert cluster.partitions[0].log_end_offsets()[3] == 10
    lost = cluster.sim.trace.of_kind("unwritten_lost")
    assert [(e.data["partition"], e.data["broker"], e.data["offsets"]) for e in lost][0] == (
        0,
        3,
        [10, 39],
    )


def test_all_replicas_losing_power_loses_acknowledged_records_and_keeps_the_hw_consistent():
    cluster = make()  # min ISR 2, acks=all
    futures = []
    for second in range(40):
        futures.append(cluster.produce(0, "k", second))
        tick(cluster, 1)
    assert all(f.acknowledged for f in futures)
    for broker in (1, 2, 3):
        cluster.kill_broker(broker, power_loss=True)
    tick(cluster, 10)
    for broker in (1, 2, 3):
        cluster.restart_broker(broker)
    part = cluster.partitions[0]
    assert part.leader == 3  # the last ISR member the controller kept
    assert part.high_watermark == part.logs[3].log_end_offset == 10
    assert [x.record.offset for x in cluster.lost_records() if x.acknowledged] == list(
        range(10, 40)
    )
    assert cluster.leaderless_seconds(0) == 10.0


def test_leaderless_seconds_counts_from_the_crash_to_the_election():
    cluster = make()
    cluster.kill_broker(1)
    tick(cluster, 5)
    assert cluster.leaderless_seconds(0) == 5.0  # still running: counted up to now
    tick(cluster, 5)
    assert cluster.leaderless_seconds(0) == 9.0  # the session timeout
    assert cluster.leaderless_seconds(1) == 0.0


def test_stall_resume_and_power_loss_validate_their_arguments():
    cluster = make()
    with pytest.raises(ValueError, match="broker_id must be one of"):
        cluster.stall_follower(7)
    cluster.stall_follower(2)
    with pytest.raises(ValueError, match="broker_id 2 is already stalled"):
        cluster.stall_follower(2)
    with pytest.raises(ValueError, match="broker_id 3 is not stalled"):
        cluster.resume_follower(3)
    with pytest.raises(TypeError, match="power_loss"):
        cluster.kill_broker(3, power_loss="yes")
    cluster.kill_broker(3)
    with pytest.raises(ValueError, match="broker_id 3 is down"):
        cluster.stall_follower(3)
    with pytest.raises(ValueError, match="writeback_delay"):
        make(writeback_delay=-1)
    with pytest.raises(ValueError, match="partition"):
        ClusterRun().produce("k", partition=3)


# -- ISR, high watermark, epochs -----------------------------------------------------------------


def test_follower_not_caught_up_within_replica_lag_time_max_leaves_the_isr():
    cluster = make(session_timeout=120.0)  # the controller is slow: the leader notices first
    cluster.kill_broker(3)
    future = cluster.produce(0, "order-42", "created")
    tick(cluster, 30)
    assert 3 in cluster.partitions[0].isr  # 30 s behind is not yet *more* than 30 s
    tick(cluster, 15)  # the leader's check runs every 15 s
    assert cluster.partitions[0].isr == [1, 2]
    assert future.acknowledged and future.completed_at == 45.0
    shrinks = cluster.sim.trace.of_kind("isr_shrink")
    assert {e.data["reason"] for e in shrinks} == {"lagging"}


def test_restarted_follower_catches_up_and_rejoins_the_isr():
    cluster = make()
    cluster.kill_broker(3)
    tick(cluster, 10)
    produce_all(cluster, 0, 4)
    tick(cluster, 1)
    assert cluster.partitions[0].isr == [1, 2]
    cluster.restart_broker(3)
    assert cluster.partitions[0].log_end_offsets()[3] == 0
    tick(cluster, 0.5)
    assert cluster.partitions[0].isr == [1, 2, 3]
    assert cluster.partitions[0].log_end_offsets() == {1: 4, 2: 4, 3: 4}


def test_clean_election_of_a_slower_isr_member_truncates_the_faster_follower():
    cluster = make(session_timeout=0.0)
    part = cluster.partitions[0]
    cluster.kill_broker(2)
    tick(cluster, 0.2)
    cluster.restart_broker(2)  # broker 2 now fetches at 0.7, 1.2, ...; broker 3 at 0.5, 1.0, ...
    tick(cluster, 0.6)
    assert part.isr == [1, 2, 3]
    early = produce_all(cluster, 0, 2, acks=1)  # t=0.8
    tick(cluster, 0.2)  # broker 3 has fetched them, broker 2 not yet
    assert part.log_end_offsets() == {1: 2, 2: 0, 3: 2} and part.high_watermark == 0
    cluster.kill_broker(1)
    assert (part.leader, part.isr, part.leader_epoch) == (2, [2, 3], 1)
    later = cluster.produce(0, "order-42", "new")
    # Broker 3's offset 0 is not broker 2's offset 0: the leader must not count it.
    assert later.status == "pending" and part.high_watermark == 0
    tick(cluster, 0.5)
    assert later.acknowledged and part.high_watermark == 1
    assert [r.id for r in part.logs[3].records] == [later.record.id]
    (truncate,) = cluster.sim.trace.of_kind("truncate")
    assert (truncate.data["broker"], truncate.data["dropped"]) == (3, [0, 1])
    assert [x.record for x in cluster.lost_records()] == [f.record for f in early]
    assert all(x.acknowledged for x in cluster.lost_records())  # acks=1 was not enough


def test_high_watermark_is_what_every_isr_member_has():
    cluster = make()
    produce_all(cluster, 0, 3, acks=1)
    part = cluster.partitions[0]
    assert part.log_end_offsets() == {1: 3, 2: 0, 3: 0} and part.high_watermark == 0
    tick(cluster, 0.5)
    assert part.high_watermark == 3
    assert [row["committed"] for row in cluster.log(0, 1)] == [True] * 3


def test_leader_epoch_increments_on_each_election():
    cluster = make(session_timeout=0.0)
    part = cluster.partitions[0]
    epochs = [part.leader_epoch]
    for broker in (1, 2, 1):  # kill the current leader of partition 0, three times
        assert part.leader == broker
        cluster.kill_broker(broker)
        epochs.append(part.leader_epoch)
        cluster.restart_broker(broker)
        tick(cluster, 1)
    assert epochs == [0, 1, 2, 3]
    elections = [
        e.data for e in cluster.sim.trace.of_kind("leader_elected") if e.data["partition"] == 0
    ]
    assert [e["epoch"] for e in elections] == [1, 2, 3]
    assert [e["leader"] for e in elections] == [2, 1, 2]
    # Records carry the epoch they were written in.
    assert cluster.produce(0, "k").record.epoch == 3


# -- properties over random schedules --------------------------------------------------------------

# A schedule is a list of rounds: a few produces, then one broker killed, restarted, stalled (up,
# but its follower fetches make no progress) or resumed (skipped when it is not possible), then
# some time passes.
ROUND = st.tuples(
    st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0, 1, "all"])), max_size=3),
    st.sampled_from(["kill", "restart", "stall", "resume"]),
    st.integers(1, 3),
    st.sampled_from([0.2, 0.5, 1.0, 5.0, 10.0, 20.0]),
)


def run_schedule(cluster: Cluster, rounds) -> None:
    """Play the rounds, checking the invariants after every action."""
    for produces, action, broker, seconds in rounds:
        for partition, acks in produces:
            cluster.produce(partition, "k", None, acks=acks)
            check_invariants(cluster)
        if action == "kill" and cluster.brokers[broker].alive:
            cluster.kill_broker(broker)
        elif action == "restart" and not cluster.brokers[broker].alive:
            cluster.restart_broker(broker)
        elif action == "stall" and cluster.brokers[broker].alive:
            if not cluster.brokers[broker].stalled:
                cluster.stall_follower(broker)
        elif action == "resume" and cluster.brokers[broker].stalled:
            cluster.resume_follower(broker)
        cluster.sim.settle()
        check_invariants(cluster)
        tick(cluster, seconds)
        check_invariants(cluster)


def check_invariants(cluster: Cluster) -> None:
    for part in cluster.partitions:
        # A partition never has two leaders.
        believers = cluster.leaders_of(part.id)
        assert len(believers) <= 1
        if part.leader is not None and cluster.brokers[part.leader].alive:
            assert believers == [part.leader]
        # The ISR always contains the leader, and is never empty.
        assert part.isr
        if part.leader is not None:
            assert part.leader in part.isr
        # The high watermark never exceeds the smallest log end offset in the ISR.
        leos = part.log_end_offsets()
        assert part.high_watermark <= min(leos[b] for b in part.isr)
        # Below the high watermark every ISR member holds the very same records.
        hw = part.high_watermark
        reference = part.leader if part.leader is not None else part.isr[0]
        committed = [r.id for r in part.logs[reference].records[:hw]]
        for broker in part.isr:
            assert [r.id for r in part.logs[broker].records[:hw]] == committed


def restart_everyone(cluster: Cluster) -> None:
    for broker in cluster.brokers.values():
        if not broker.alive:
            cluster.restart_broker(broker.id)
        elif broker.stalled:
            cluster.resume_follower(broker.id)
    tick(cluster, 1)
    check_invariants(cluster)


@settings(max_examples=1000, deadline=None)
@given(
    ops=st.lists(ROUND, max_size=12),
    session=st.sampled_from([0.0, 9.0, 40.0]),
    min_isr=st.integers(1, 3),
)
def test_acks_all_with_clean_elections_never_loses_an_acknowledged_record(ops, session, min_isr):
    cluster = make(session_timeout=session, min_insync_replicas=min_isr)
    run_schedule(cluster, ops)
    assert not any(x.acknowledged and x.record.acks == "all" for x in cluster.lost_records())
    restart_everyone(cluster)
    assert all(p.leader is not None for p in cluster.partitions)
    for future in cluster.futures:
        if future.acknowledged and future.acks == "all":
            offsets = leader_offsets(cluster, future.partition)
            assert offsets.get(future.record.id) == future.offset
    # Leader epochs count the elections.
    for part in cluster.partitions:
        assert part.leader_epoch == part.elections


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(ROUND, max_size=12), session=st.sampled_from([0.0, 9.0]))
def test_unclean_elections_lose_exactly_the_listed_records(ops, session):
    cluster = make(session_timeout=session, unclean_leader_election=True)
    run_schedule(cluster, ops)
    restart_everyone(cluster)
    for part in cluster.partitions:
        kept = leader_offsets(cluster, part.id)
        lost = {x.record.id for x in part.lost}
        appended = {
            f.record.id for f in cluster.futures if f.record is not None and f.partition == part.id
        }
        assert kept.keys() | lost == appended and not kept.keys() & lost
        # After catching up, every live replica holds exactly the leader's log.
        for broker in part.replicas:
            assert [r.id for r in part.logs[broker].records] == list(kept)


POWER_ROUND = st.tuples(
    st.lists(st.tuples(st.integers(0, 2), st.sampled_from([1, "all"])), max_size=3),
    st.sampled_from(["crash", "power loss", "restart"]),
    st.integers(1, 3),
    st.sampled_from([0.5, 5.0, 20.0, 40.0]),
)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(POWER_ROUND, max_size=10), unclean=st.booleans())
def test_power_losses_lose_only_listed_records_and_clean_acks_all_needs_one(ops, unclean):
    """Whatever the crashes and power losses, every appended record is either in the final
    leader's log or listed as lost; with clean elections an acknowledged ``acks=all`` record is
    lost only if some broker lost power (Kafka relies on replication, not fsync)."""
    cluster = make(unclean_leader_election=unclean, writeback_delay=10.0)
    power_lost = False
    for produces, action, broker, seconds in ops:
        for partition, acks in produces:
            cluster.produce(partition, "k", None, acks=acks)
        alive = cluster.brokers[broker].alive
        if action in ("crash", "power loss") and alive:
            cluster.kill_broker(broker, power_loss=action == "power loss")
            power_lost |= action == "power loss"
        elif action == "restart" and not alive:
            cluster.restart_broker(broker)
        tick(cluster, seconds)
    restart_everyone(cluster)
    for part in cluster.partitions:
        kept = leader_offsets(cluster, part.id)
        lost = {x.record.id for x in part.lost}
        appended = {
            f.record.id for f in cluster.futures if f.record is not None and f.partition == part.id
        }
        assert kept.keys() | lost == appended and not kept.keys() & lost
        assert part.high_watermark <= part.logs[part.leader].log_end_offset
    if not unclean and not power_lost:
        assert not any(x.acknowledged and x.record.acks == "all" for x in cluster.lost_records())


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_brokers": 3, "replication_factor": 4}, "replication_factor"),
        ({"num_partitions": 0}, "num_partitions"),
        ({"replication_factor": 2, "min_insync_replicas": 3}, "min_insync_replicas"),
        ({"num_brokers": 0}, "num_brokers"),
        ({"replica_lag_time_max": 0}, "replica_lag_time_max"),
        ({"session_timeout": -1}, "session_timeout"),
        ({"fetch_interval": float("nan")}, "fetch_interval"),
        ({"unclean_leader_election": "false"}, "unclean_leader_election"),
        ({"assignment": {0: [1, 2, 9], 1: [2, 3, 1], 2: [3, 1, 2]}}, "assignment"),
        ({"assignment": {0: [1, 2], 1: [2, 3], 2: [3, 1]}}, "assignment"),
        ({"assignment": {0: [1, 1, 2], 1: [2, 3, 1], 2: [3, 1, 2]}}, "assignment"),
        ({"assignment": {"0": [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]}}, "assignment"),
        ({"assignment": [[1, 2, 3]]}, "assignment"),
        ({"topic": ""}, "topic"),
    ],
)
def test_constructor_rejects_bad_settings_naming_the_parameter(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        Cluster(Simulation(), **kwargs)


@pytest.mark.parametrize("acks", [2, "ALL", "1", True, 1.0, None, -2])
def test_bad_acks_values_are_rejected(acks):
    with pytest.raises((ValueError, TypeError), match="acks"):
        make().produce(0, "k", acks=acks)


def test_unknown_broker_ids_and_partitions_are_rejected():
    cluster = make()
    for call in (cluster.kill_broker, cluster.restart_broker):
        with pytest.raises(
            ValueError, match=r"broker_id must be one of the broker ids \[1, 2, 3\]"
        ):
            call(4)
        with pytest.raises(TypeError, match="broker_id"):
            call(True)
    with pytest.raises(ValueError, match="partition"):
        cluster.produce(3, "k")
    with pytest.raises(ValueError, match="already running"):
        cluster.restart_broker(1)
    cluster.kill_broker(1)
    with pytest.raises(ValueError, match="already down"):
        cluster.kill_broker(1)


BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(),
    st.integers(-10, 10),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(
        [
            "brokers",
            "partitions",
            "replication_factor",
            "min_insync_replicas",
            "unclean_leader_election",
            "replica_lag_time_max",
            "session_timeout",
            "fetch_interval",
            "seed",
        ]
    ),
    value=BAD_VALUES,
)
def test_random_bad_scenario_settings_fail_with_the_parameter_named(name, value):
    try:
        run = ClusterRun(**{name: value})
    except (TypeError, ValueError) as error:
        model_name = {"brokers": "num_brokers", "partitions": "num_partitions"}.get(name, name)
        assert model_name in str(error) or name in str(error)
        return
    # Accepted values must really be valid ones, not clamped.
    state = run.state()
    if name == "brokers":
        assert len(state["brokers"]) == value
    if name == "partitions":
        assert len(state["partitions"]) == value


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from(
        [
            "kill_broker",
            "restart_broker",
            "advance",
            "produce_acks",
            "produce_key",
            "produce_partition",
            "set_unclean_leader_election",
            "stall_follower",
            "resume_follower",
            "kill_broker_power_loss",
        ]
    ),
    value=BAD_VALUES,
)
def test_random_bad_action_arguments_fail_with_the_parameter_named(method, value):
    run = ClusterRun()
    valid = {
        "kill_broker": [1, 2, 3],
        "stall_follower": [1, 2, 3],
        "produce_partition": [None, 0, 1, 2],
        "restart_broker": [],
        "resume_follower": [],
        "produce_acks": [0, 1, "all", -1],
        "set_unclean_leader_election": [True, False],
    }
    expected = {
        "kill_broker": "broker_id",
        "restart_broker": "broker_id",
        "advance": "seconds",
        "produce_acks": "acks",
        "produce_key": "key",
        "set_unclean_leader_election": "enabled",
        "produce_partition": "partition",
        "stall_follower": "broker_id",
        "resume_follower": "broker_id",
        "kill_broker_power_loss": "power_loss",
    }[method]
    if method == "produce_key" and (value is None or isinstance(value, str)):
        return  # valid keys
    if (
        method == "advance"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value > 0
    ):
        return
    if (method in valid and any(value == v and type(value) is type(v) for v in valid[method])) or (
        method in ("set_unclean_leader_election", "kill_broker_power_loss")
        and isinstance(value, bool)
    ):
        return
    with pytest.raises((TypeError, ValueError), match=expected):
        if method == "produce_acks":
            run.produce("k", acks=value)
        elif method == "produce_key":
            run.produce(value)
        elif method == "produce_partition":
            run.produce("k", partition=value)
        elif method == "kill_broker_power_loss":
            run.kill_broker(1, power_loss=value)
        else:
            getattr(run, method)(value)


# -- the scenario ----------------------------------------------------------------------------------


def test_default_run_replaces_broker_1_and_keeps_every_acknowledged_record():
    run = default_run()
    state = run.state()
    assert state["brokers"] == {1: "down", 2: "up", 3: "up"}
    p0, p1, p2 = state["partitions"]
    assert (p0["leader"], p0["leader_epoch"], p0["isr"]) == (2, 1, [2, 3])
    assert (p1["leader"], p1["leader_epoch"], p1["isr"]) == (2, 0, [2, 3])
    assert (p2["leader"], p2["leader_epoch"], p2["isr"]) == (3, 0, [3, 2])
    # Orders 42, 43, 44 hash to partitions 0, 1, 2 (Kafka's murmur2 partitioner), 3 events each,
    # then one "delivered" each after the failover: high watermark 4 everywhere.
    assert [kafka_partition(f"order-{o}", 3) for o in (42, 43, 44)] == [0, 1, 2]
    assert [p["high_watermark"] for p in state["partitions"]] == [4, 4, 4]
    assert p0["log_end_offsets"] == {1: 3, 2: 4, 3: 4}
    assert all(r["status"] == "acknowledged" for r in run.requests())
    assert run.lost_records() == []
    assert [row["value"] for row in run.logs(0)[2]] == ["created", "paid", "shipped", "delivered"]
    assert run.summary().startswith("t=12s: 12 produced (12 acknowledged")
    assert "p0 leader 2 epoch 1 ISR [2, 3] HW 4" in run.summary()


def test_scenario_reports_not_enough_replicas_as_data():
    run = ClusterRun()
    run.kill_broker(2)
    run.kill_broker(3)
    run.advance(10)
    result = run.produce("order-42", "created")
    assert result["status"] == "failed" and result["error"] == "NotEnoughReplicasError"
    assert "1 failed" in run.summary() and "brokers down: [2, 3]" in run.summary()


def test_scenario_unclean_election_lists_lost_records():
    run = ClusterRun(unclean_leader_election=True)
    run.produce("order-42", "created")
    run.advance(1)
    run.kill_broker(3)
    run.advance(10)
    run.produce("order-42", "paid")
    run.advance(1)
    run.kill_broker(1)
    run.kill_broker(2)
    run.advance(10)
    run.restart_broker(3)
    lost = run.lost_records()
    assert [(x["offset"], x["value"], x["status"]) for x in lost] == [(1, "paid", "acknowledged")]
    assert "lost 1 (1 acknowledged)" in run.summary()


def test_lesson_capacity_arithmetic_from_the_layout():
    """The lesson's sums for topic "orders" (3 partitions, RF 3, 3 brokers), with its assumed
    100 MB/s per partition and 2 TB per broker: 300 MB/s produced, 2 TB of distinct data, and
    each broker writing 300 MB/s (100 as leader, 200 as a follower), as chapter 7 states."""
    layout = ClusterRun().state()["partitions"]
    rf = len(layout[0]["replicas"])
    brokers = {b for p in layout for b in p["replicas"]}
    assert (len(layout), rf, len(brokers)) == (3, 3, 3)
    assert len(layout) * 100 == 300 and len(brokers) * 2 // rf == 2
    assert len(layout) * 100 * rf == 900 and len(layout) * 100 * (rf - 1) == 600
    for broker in brokers:
        leads = sum(p["leader"] == broker for p in layout)
        follows = sum(broker in p["replicas"] and p["leader"] != broker for p in layout)
        assert (leads * 100, follows * 100) == (100, 200)
