"""Consumer-group rebalancing (chapter 7): eager versus cooperative, lagging commits, a member too
slow for ``max.poll.interval.ms``, static membership; and the chapter's numbers.

Kafka's rules the model follows, with their sources (book/references.md, Kafka):
- eager rebalancing revokes every partition before rejoining (ConsumerCoordinator.onJoinPrepare,
  ``case EAGER: revokedPartitions.addAll(subscriptions.assignedPartitions())``);
- the cooperative protocol revokes only the partitions that change owner, and hands them over in a
  follow-up rebalance (CooperativeStickyAssignor javadoc, KIP-429);
- a member whose poll loop exceeds ``max.poll.interval.ms`` (300000 ms) leaves the group and its
  commit then fails with ``CommitFailedException`` (CommitFailedException javadoc);
- a static member (``group.instance.id``, KIP-345) restarted within ``session.timeout.ms``
  (45000 ms since 3.0, KIP-735) causes no rebalance.
"""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlib.models.rebalance as rebalance_module
from mqlib.core import Simulation
from mqlib.models.rebalance import RebalancingGroup
from mqlib.scenarios.rebalance import compare_join, lost_commit_run, restart_run, slow_member_run


def group(**kwargs) -> RebalancingGroup:
    return RebalancingGroup(Simulation(), **kwargs)


def test_a_member_processes_one_record_per_step_and_commits_every_interval():
    g = group(partitions=2, members=1, processing_time=0.5, commit_interval=2.0)
    g.advance(3.0)  # 6 steps, alternating partitions: 3 records each
    assert g.position == {0: 3, 1: 3}
    assert g.committed == {0: 2, 1: 2}  # the commit at t=2 s
    assert g.processed() == 6 and g.total_duplicates() == 0
    assert g.paused_seconds() == {0: 0.0, 1: 0.0}


def test_eager_pauses_every_partition_cooperative_only_the_moved_ones():
    rows = {(r["protocol"], r["commit_on_revoke"]): r for r in compare_join()}
    eager, coop = rows[("eager", False)], rows[("cooperative", False)]
    # Eager: all 6 partitions stop for the 3 s rebalance, although range moves only partition 5.
    assert eager["partitions_paused"] == 6 and eager["paused_seconds"] == 18.0
    assert eager["moved"] == [5] and eager["rounds"] == 1
    assert eager["assignment"] == {"c1": [0, 1], "c2": [2, 3], "c3": [4], "c4": [5]}
    # Cooperative: only the partition that changes owner pauses, for one round; two rounds.
    assert coop["partitions_paused"] == 1 and coop["paused_seconds"] == 3.0
    assert coop["moved"] == [4] and coop["rounds"] == 2
    assert coop["assignment"] == {"c1": [0, 3], "c2": [1], "c3": [2, 5], "c4": [4]}
    assert coop["processed"] > eager["processed"]


def test_commits_lagging_behind_processing_become_duplicates_after_a_rebalance():
    rows = {(r["protocol"], r["commit_on_revoke"]): r for r in compare_join()}
    # Eager, last commit at 10 s, rebalance at 11 s: 1 s x 5 records/s on each of 6 partitions.
    assert rows[("eager", False)]["duplicates"] == 6 * 5
    # Cooperative: partition 4 is processed until round one ends at 14 s, then given up
    # without a commit: 4 s x 5 records/s are done again by its new owner.
    assert rows[("cooperative", False)]["duplicates"] == 4 * 5
    # Committing before giving partitions up removes them all.
    assert rows[("eager", True)]["duplicates"] == 0
    assert rows[("cooperative", True)]["duplicates"] == 0


def test_cooperative_never_pauses_a_partition_that_stays():
    g = group(partitions=6, members=3, protocol="cooperative")
    before = g.assignment()
    g.advance(11.0)
    g.join()
    g.advance(20.0)
    paused = g.paused_seconds()
    after = g.assignment()
    for member, partitions in before.items():
        for p in partitions:
            stayed = p in after.get(member, [])
            assert (paused[p] == 0.0) == stayed


def test_a_member_slower_than_max_poll_interval_is_evicted_and_its_commit_fails():
    run = slow_member_run(400.0)
    assert run["evicted_at"] == 11.0 + 300.0  # max.poll.interval.ms = 300 s
    assert run["reasons"] == [
        "c2 exceeded max.poll.interval.ms",
        "c2 rejoined after CommitFailedException",
    ]
    assert run["commit_failures"] == [{"time": 411.0, "member": "c2", "partition": 2, "offset": 55}]
    assert run["moved"] == [2, 3]
    assert run["duplicates"] == 51  # includes offset 55 of partition 2, done by both
    # Below the limit nothing is evicted: only the slow member's own partitions wait.
    quick = slow_member_run(200.0)
    assert quick["rounds"] == 0 and quick["commit_failures"] == [] and quick["evicted_at"] is None
    assert quick["partitions_paused"] == 2 and quick["duplicates"] == 0


def test_the_stuck_record_is_processed_twice():
    g = group(partitions=6, members=3)
    g.advance(11.0)
    g.stall("c2", 400.0)
    stuck = g.sim.trace.of_kind("member_stall")[0].data
    g.advance(430.0)
    assert g.times_processed(stuck["partition"], stuck["offset"]) == 2


def test_static_membership_avoids_the_rebalances_of_a_restart():
    dynamic, static = restart_run(False), restart_run(True)
    assert dynamic["rounds"] == 2  # left on shutdown, joined again as a new member
    assert dynamic["partitions_paused"] == 6 and dynamic["paused_seconds"] == 36.0
    assert static["rounds"] == 0
    assert static["paused"] == {0: 0.0, 1: 0.0, 2: 30.0, 3: 30.0, 4: 0.0, 5: 0.0}
    assert dynamic["duplicates"] == static["duplicates"] == 0  # both commit on close
    # Away for longer than session.timeout.ms (45 s): the group gives up on it after all.
    late = restart_run(True, downtime=60.0)
    assert late["rounds"] == 2
    assert late["paused"][2] == 45.0 + 3.0 + 3.0


def test_a_crashed_member_holds_its_partitions_until_the_session_timeout():
    g = group(partitions=6, members=3)
    g.advance(11.0)
    g.crash("c2")
    g.advance(44.0)
    assert g.rebalances == [] and g.assignment()["c2"] == [2, 3]
    g.advance(4.0)  # t = 59 s: 45 s after the crash, plus 3 s of rebalance
    assert [r["reason"] for r in g.rebalances] == ["c2 timed out"]
    assert g.paused_seconds()[2] == 48.0
    assert "c2" not in g.assignment()


@settings(max_examples=40, deadline=None)
@given(
    protocol=st.sampled_from(["eager", "cooperative"]),
    partitions=st.integers(1, 8),
    members=st.integers(1, 5),
    script=st.lists(
        st.tuples(st.sampled_from(["join", "leave", "crash", "wait"]), st.integers(1, 40)),
        max_size=8,
    ),
    commit_on_revoke=st.booleans(),
)
def test_after_any_script_each_partition_has_at_most_one_owner_and_nothing_is_skipped(
    protocol, partitions, members, script, commit_on_revoke
):
    g = group(
        partitions=partitions, members=members, protocol=protocol, commit_on_revoke=commit_on_revoke
    )
    for action, n in script:
        running = [m for m in g.members if g._members[m].alive]
        if action == "join":
            g.join()
        elif action in ("leave", "crash") and running:
            getattr(g, action)(running[n % len(running)])
        g.advance(float(n))
        owners = [p for ps in g.assignment().values() for p in ps]
        assert len(owners) == len(set(owners))
    g.advance(60.0)  # let every timeout and rebalance finish
    if g.members:
        owned = sorted(p for ps in g.assignment().values() for p in ps)
        assert owned == list(range(partitions))
    for p, counts in g._processed.items():
        # At-least-once: every offset below the furthest position was processed at least once
        # (the counts below the last folded commit are kept as totals: all of them processed).
        floor = g._floor[p]
        assert g._distinct_below[p] == floor
        assert sorted(counts) == list(range(floor, floor + len(counts)))
        assert all(g.times_processed(p, o) >= 1 for o in range(floor + len(counts)))
        assert g.committed[p] <= floor + len(counts)


def test_docstring_examples():
    result = doctest.testmod(rebalance_module)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"partitions": 0}, "partitions"),
        ({"members": -1}, "members"),
        ({"protocol": "lazy"}, "protocol"),
        ({"strategy": "cooperative-sticky"}, "strategy"),
        ({"processing_time": 0}, "processing_time"),
        ({"commit_interval": 0.25}, "commit_interval"),
        ({"commit_on_revoke": "yes"}, "commit_on_revoke"),
        ({"rebalance_time": -1}, "rebalance_time"),
        ({"max_poll_interval": 0}, "max_poll_interval"),
        ({"session_timeout": 0.05}, "session_timeout"),
        ({"static_membership": 1}, "static_membership"),
        ({"topic": ""}, "topic"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        group(**kwargs)


def test_bad_actions_name_the_parameter():
    g = group()
    with pytest.raises(TypeError, match="sim"):
        RebalancingGroup("sim")
    with pytest.raises(ValueError, match="member 'c9' is not a running member"):
        g.leave("c9")
    with pytest.raises(ValueError, match="seconds must be a whole number"):
        g.advance(0.05)
    with pytest.raises(ValueError, match="downtime"):
        g.restart("c1", -1)
    g.stall("c1", 1.0)
    with pytest.raises(ValueError, match="already stuck"):
        g.stall("c1", 1.0)
    g.crash("c2")
    with pytest.raises(ValueError, match="not a running member"):
        g.crash("c2")
    with pytest.raises(ValueError, match="stall"):
        slow_member_run(-1)
    with pytest.raises(ValueError, match="until"):
        compare_join(join_at=11.0, until=5.0)


def test_a_lost_commit_is_covered_by_the_next_one_unless_a_rebalance_comes_first():
    """Kafka's position lives in the client (SubscriptionState): a lost commit triggers no
    re-fetch, and the next commit supersedes it. Only a rebalance (or a restart) before that next
    commit makes the new owner start from the stale committed offset."""
    quiet = lost_commit_run()
    assert quiet["duplicates"] == 0 and quiet["rounds"] == 0
    assert quiet["committed"] == {p: 150 for p in range(6)}  # 30 s x 5 records/s, all committed
    moved = lost_commit_run(rebalance_at=11.0)
    # c1 (partitions 0 and 1) last committed at 5 s: 6 s x 5 records/s again on each; the other
    # partitions lose only the second since their commit at 10 s.
    assert moved["duplicates_by_partition"] == {0: 30, 1: 30, 2: 5, 3: 5, 4: 5, 5: 5}
    baseline = compare_join()[0]
    assert moved["duplicates"] - baseline["duplicates"] == 2 * 25
    with pytest.raises(ValueError, match="count"):
        group().lose_commits("c1", 0)


def test_a_static_member_past_max_poll_interval_is_removed_a_session_timeout_later():
    """ConsumerConfig, max.poll.interval.ms: "For consumers using a non-null group.instance.id
    which reach this timeout, partitions will not be immediately reassigned. Instead, the
    consumer will stop sending heartbeats and partitions will be reassigned after expiration of
    session.timeout.ms"."""
    g = group(partitions=6, members=3, static_membership=True)
    g.advance(11.0)
    g.stall("c2", 400.0)
    g.advance(320.0)  # t = 331 s: past 300 s, but not yet 300 + 45 s
    assert g.rebalances == []
    g.advance(30.0)  # t = 361 s
    assert [r["reason"] for r in g.rebalances] == ["c2 exceeded max.poll.interval.ms"]
    assert g.sim.trace.of_kind("poll_timeout")[0].time == pytest.approx(11.0 + 300.0 + 45.0)


def test_the_views_run_samples_every_second_and_replays_with_other_settings():
    from mqlib.scenarios.rebalance import RebalanceRun, default_run

    run = default_run()
    samples = run.timeline()
    assert len(samples) == 30 * 6 and run.now == 30.0
    idle = sorted({s["time"] for s in samples if s["worker"] is None})
    assert idle == [12.0, 13.0, 14.0]  # the eager rebalance, 11 s to 14 s, on every partition
    assert sum(1 for s in samples if s["worker"] is None) == 18
    coop = run.with_settings(protocol="cooperative")
    assert coop.actions == run.actions and coop.settings["protocol"] == "cooperative"
    gaps = [(s["time"], s["partition"]) for s in coop.timeline() if s["worker"] is None]
    assert gaps == [(15.0, 4), (16.0, 4), (17.0, 4)]  # only the moved partition
    assert coop.summary() == compare_join_row_summary("cooperative")
    with pytest.raises(ValueError, match="unknown settings"):
        run.with_settings(colour="red")
    with pytest.raises(ValueError, match="seconds"):
        RebalanceRun().advance(0)
    empty = RebalanceRun(members=1)
    empty.leave()
    with pytest.raises(ValueError, match="no running member"):
        empty.leave()


def compare_join_row_summary(protocol):
    g = group(partitions=6, members=3, protocol=protocol)
    g.advance(11.0)
    g.join()
    g.advance(19.0)
    return g.summary()


def test_the_timeline_keeps_the_newest_seconds_only():
    """A long run keeps a bounded timeline: the newest TIMELINE_SECONDS seconds, every partition
    in each, the last second included (the chart shows the newest 60)."""
    from mqlib.scenarios.rebalance import TIMELINE_SECONDS, RebalanceRun

    run = RebalanceRun()
    for _ in range(3):
        run.advance(600)
    samples = run.timeline()
    partitions = run.group.partitions
    assert len(samples) == TIMELINE_SECONDS * partitions
    assert samples[-1]["time"] == run.now == 1800
    assert samples[0]["time"] == 1800 - TIMELINE_SECONDS + 1


def test_per_record_counts_cover_only_the_uncommitted_window():
    """Memory follows live state: after two hours the per-record counts hold only records at or
    above the last commit (50 per commit interval per partition here); the totals still count
    every record."""
    g = group(partitions=6, members=3)
    for _ in range(8):
        g.advance(900.0)
    assert g.processed() == sum(g.position.values()) == sum(g.processings().values())
    assert sum(len(c) for c in g._processed.values()) <= 6 * 50
    assert g.times_processed(0, 0) == 1 and g.total_duplicates() == 0
    with pytest.raises(ValueError, match="partition"):
        g.times_processed(6, 0)
