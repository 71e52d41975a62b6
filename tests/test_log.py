"""The partitioned log (chapter 7): offsets, reading without deleting, consumer groups with their
own offsets, seek, retention, lag, assignment and rebalancing, and the chapter's scenario.

Run ``python tests/test_log.py`` to rewrite tests/golden/kafka_log.json after a deliberate change.
"""

from __future__ import annotations

import doctest
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlib.models.log as log_module
from mqlib.core import Simulation
from mqlib.models.assignors import assign
from mqlib.models.log import (
    LogConsumerGroup,
    NoOffsetError,
    OffsetOutOfRangeError,
    Partition,
    PartitionedLog,
)
from mqlib.models.partitioner import kafka_partition
from mqlib.scenarios.kafka_log import KafkaLogRun, default_run


def make_log(partitions=3, **kwargs):
    sim = Simulation(seed=0)
    return sim, PartitionedLog(sim, "orders", partitions=partitions, **kwargs)


# --- the log: offsets, reading -------------------------------------------------------------------


def test_offsets_start_at_zero_and_are_sequential_per_partition():
    _, log = make_log(3)
    offsets = {0: [], 1: [], 2: []}
    for i in range(12):
        record = log.produce(f"order-{40 + i % 6}", i)
        offsets[record.partition].append(record.offset)
    for p, seen in offsets.items():
        assert seen == list(range(len(seen)))
        assert log.partitions[p].log_end_offset == len(seen)
        assert log.partitions[p].log_start_offset == 0
    assert sum(map(len, offsets.values())) == 12


def test_the_lessons_log_next_append_gets_offset_8_and_readers_start_where_they_are():
    p = Partition("orders", 0)
    for i in range(8):
        p.append(value=f"msg{i}")
    assert p.append(value="new").offset == 8
    assert [r.offset for r in p.read(3)] == [3, 4, 5, 6, 7, 8]  # consumer A at offset 3
    assert [r.offset for r in p.read(6)] == [6, 7, 8]  # consumer B at offset 6, no interference
    assert p.read(9) == []  # at the log end offset there is nothing yet


def test_reading_does_not_delete():
    sim, log = make_log(1)
    for i in range(5):
        log.produce(value=i)
    first = log.read(0, 0)
    again = log.read(0, 0)
    assert first == again and len(first) == 5
    group = log.add_group("billing", auto_offset_reset="earliest")
    member = group.join()
    assert len(group.poll(member)) == 5
    assert len(log.partitions[0]) == 5
    assert (log.partitions[0].log_start_offset, log.partitions[0].log_end_offset) == (0, 5)
    assert [r.value for r in log.read(0, 0)] == [0, 1, 2, 3, 4]


def test_two_groups_read_independently():
    _, log = make_log(1)
    for i in range(8):
        log.produce(value=i)
    a = log.add_group("a", auto_offset_reset="earliest")
    b = log.add_group("b", auto_offset_reset="earliest")
    ma, mb = a.join(), b.join()
    assert [r.value for r in a.poll(ma, max_records=3)] == [0, 1, 2]
    assert [r.value for r in b.poll(mb, max_records=6)] == [0, 1, 2, 3, 4, 5]
    assert a.committed() == {0: 3} and b.committed() == {0: 6}
    assert [r.value for r in a.poll(ma)] == [3, 4, 5, 6, 7]  # b's reading took nothing from a
    assert a.lag() == {0: 0} and b.lag() == {0: 2}


def test_seek_rewinds_and_the_group_reads_the_same_records_again():
    _, log = make_log(2, keyless="roundrobin", batch_records=1)
    for i in range(6):
        log.produce(value=i)
    group = log.add_group("billing", auto_offset_reset="earliest")
    member = group.join()
    first = group.poll(member)
    assert group.committed() == {0: 3, 1: 3}
    log.seek("billing", 1, 1)
    assert [(r.partition, r.offset) for r in group.poll(member)] == [(1, 1), (1, 2)]
    log.seek_to_beginning("billing")
    assert group.poll(member) == first
    group.seek_to_end()
    assert group.poll(member) == [] and group.total_lag() == 0


def test_offsets_out_of_range_raise_a_clear_error():
    _, log = make_log(1, retention_records=2)
    for i in range(5):
        log.produce(value=i)
    with pytest.raises(OffsetOutOfRangeError, match=r"offset 6 is out of range .*0\.\.5"):
        log.read(0, 6)
    with pytest.raises(OffsetOutOfRangeError, match="offset -1"):
        log.read(0, -1)
    log.enforce_retention()
    assert log.partitions[0].log_start_offset == 3
    with pytest.raises(OffsetOutOfRangeError, match=r"offset 2 .*3\.\.5") as info:
        log.read(0, 2)
    assert (info.value.log_start_offset, info.value.log_end_offset) == (3, 5)
    assert isinstance(info.value, ValueError)
    with pytest.raises(OffsetOutOfRangeError):
        log.partitions[0].record_at(5)
    assert log.partitions[0].record_at(4).value == 4


# --- retention -----------------------------------------------------------------------------------


def test_time_retention_deletes_old_records_from_the_head_and_moves_the_log_start_offset():
    sim, log = make_log(1, retention_seconds=10.0)
    for _ in range(6):  # records at t = 0, 2, 4, 6, 8, 10
        log.produce(value=sim.now)
        sim.advance(2.0)
    sim.settle()
    # Checked every second; at t = 12 the record from t = 0 is 12 s old (> 10), t = 2 is 10 s old.
    assert sim.now == 12.0
    p = log.partitions[0]
    assert (p.log_start_offset, p.log_end_offset) == (1, 6)
    sim.advance(3.0)
    sim.settle()  # t = 15: records from t = 0, 2 and 4 are gone
    assert (p.log_start_offset, p.log_end_offset) == (3, 6)
    assert [r.offset for r in p.records] == [3, 4, 5]
    assert log.produce(value="new").offset == 6  # offsets are never reused
    deleted = sim.trace.of_kind("retention_delete")
    assert [(e.time, e.data["first_offset"], e.data["last_offset"]) for e in deleted] == [
        (11.0, 0, 0),
        (13.0, 1, 1),
        (15.0, 2, 2),
    ]


def test_size_retention_by_records_and_by_bytes():
    p = Partition("t", 0, retention_records=3)
    for i in range(7):
        p.append(value=i)
    assert [r.offset for r in p.enforce_retention(now=0.0)] == [0, 1, 2, 3]
    assert (p.log_start_offset, p.log_end_offset, len(p)) == (4, 7, 3)

    q = Partition("t", 0, retention_bytes=10)
    for _ in range(5):
        q.append(key="k", value="abcd")  # 1 + 4 = 5 bytes each
    assert q.size_bytes == 25
    q.enforce_retention(now=0.0)
    assert (q.log_start_offset, q.log_end_offset, q.size_bytes) == (3, 5, 10)


def test_a_group_behind_the_log_start_resets_to_earliest_on_its_next_poll():
    sim, log = make_log(1, retention_records=2)
    group = log.add_group("slow", auto_offset_reset="earliest")
    member = group.join()
    for i in range(5):
        log.produce(value=i)
    assert group.lag() == {0: 5}  # lag still counts the records it never read
    log.enforce_retention()
    assert [r.value for r in group.poll(member)] == [3, 4]
    reset = sim.trace.of_kind("offset_reset")
    assert [(e.data["offset"], e.data["reset_to"]) for e in reset] == [(0, 3)]


@settings(max_examples=80, deadline=None)
@given(
    appends=st.lists(st.tuples(st.floats(0, 5), st.integers(0, 20)), max_size=40),
    seconds=st.one_of(st.none(), st.floats(0.5, 20)),
    records=st.one_of(st.none(), st.integers(1, 10)),
    size=st.one_of(st.none(), st.integers(1, 60)),
)
def test_retention_only_removes_whole_records_from_the_head(appends, seconds, records, size):
    p = Partition(
        "t", 0, retention_seconds=seconds, retention_records=records, retention_bytes=size
    )
    now, start = 0.0, 0
    for gap, nbytes in appends:
        now += gap
        p.append(value="x", timestamp=now, size_bytes=nbytes)
        before = [r.offset for r in p.records]
        deleted = p.enforce_retention(now)
        assert [r.offset for r in deleted] + [r.offset for r in p.records] == before
        assert p.log_start_offset >= start
        start = p.log_start_offset
        assert [r.offset for r in p.records] == list(range(p.log_start_offset, p.log_end_offset))
        if records is not None:
            assert len(p) <= records
        if size is not None:
            assert p.size_bytes <= size
        if seconds is not None:
            assert all(now - r.timestamp <= seconds for r in p.records)
    assert p.log_end_offset == len(appends)


# --- lag -----------------------------------------------------------------------------------------


def test_lag_is_log_end_offset_minus_committed_offset_exactly():
    _, log = make_log(2, keyless="roundrobin", batch_records=1)
    group = log.add_group("g", auto_offset_reset="earliest")
    member = group.join()
    for i in range(10):
        log.produce(value=i)  # 5 records in each partition: offsets 0..4
    assert group.lag() == {0: 5, 1: 5} and group.total_lag() == 10
    group.poll(member, max_records=2)
    assert group.committed() == {0: 2, 1: 2}
    assert group.lag() == {0: 3, 1: 3} and log.lag("g") == {0: 3, 1: 3}
    # The lesson's numbers: written up to #500,000, processed up to #450,000 -> 50,000 behind.
    _, big = make_log(1)
    lesson = big.add_group("lesson")
    for _ in range(500_000):
        big.partitions[0].append(size_bytes=0)  # offsets 0 .. 499,999: log end offset 500,000
    lesson.seek(0, 450_000)  # read offsets 0 .. 449,999: the next to read is 450,000
    assert lesson.lag() == {0: 50_000}


def test_latest_group_starts_at_the_end_and_only_sees_new_records():
    _, log = make_log(1)
    for i in range(4):
        log.produce(value=i)
    group = log.add_group("late", auto_offset_reset="latest")
    member = group.join()
    assert group.lag() == {0: 0}
    log.produce(value="new")
    assert [r.value for r in group.poll(member)] == ["new"]


def test_the_default_reset_is_kafkas_latest_and_skips_the_history():
    """Kafka's consumer default is ``auto.offset.reset=latest`` (ConsumerConfig.java defines it
    as ``OffsetResetStrategy.LATEST``; consumer configs reference): a new group starts at the log
    end and never sees the records written before it."""
    _, log = make_log(1)
    for i in range(4):
        log.produce(value=i)
    group = log.add_group("new")
    assert group.auto_offset_reset == "latest"
    member = group.join()
    assert group.committed() == {0: 4} and group.lag() == {0: 0}
    assert group.poll(member) == []
    early = log.add_group("early", auto_offset_reset="earliest")
    assert [r.value for r in early.poll(early.join())] == [0, 1, 2, 3]


def test_seek_is_never_refused_the_next_poll_applies_the_reset_policy():
    """``KafkaConsumer.seek`` accepts any offset >= 0; the fetch that follows fails with
    OFFSET_OUT_OF_RANGE and the consumer resets by ``auto.offset.reset`` (``none`` throws
    ``OffsetOutOfRangeException``). KafkaConsumer javadoc; consumer configs reference."""
    sim, log = make_log(1, retention_records=3)
    for i in range(6):
        log.produce(value=i)
    log.enforce_retention()  # offsets 3..5 remain
    latest = log.add_group("latest")
    earliest = log.add_group("earliest", auto_offset_reset="earliest")
    strict = log.add_group("strict", auto_offset_reset="none")
    members = {g.name: g.join() for g in (latest, earliest, strict)}
    for g in (latest, earliest, strict):
        g.seek(0, 1)  # deleted by retention: accepted all the same
        assert g.committed() == {0: 1}
    assert earliest.poll(members["earliest"])[0].offset == 3  # reset to the log start
    assert latest.poll(members["latest"]) == []  # reset to the log end: 3 records skipped
    assert latest.committed() == {0: 6}
    with pytest.raises(OffsetOutOfRangeError, match=r"committed offset 1 is out of range"):
        strict.poll(members["strict"])
    earliest.seek(0, 99)  # beyond the log end: also accepted, reset on the next poll
    assert earliest.lag() == {0: 0}
    assert [r.offset for r in earliest.poll(members["earliest"])] == [3, 4, 5]
    resets = [(e.data["group"], e.data["offset"], e.data["reset_to"])
              for e in sim.trace.of_kind("offset_reset")]  # fmt: skip
    assert resets == [("earliest", 1, 3), ("latest", 1, 6), ("earliest", 99, 3)]
    with pytest.raises(ValueError, match="offset must be >= 0"):
        earliest.seek(0, -1)


def test_reset_none_has_no_offset_until_a_seek():
    """``auto.offset.reset=none``: with no committed offset the consumer throws
    ``NoOffsetForPartitionException`` instead of picking a position."""
    _, log = make_log(2)
    for i in range(4):
        log.produce(value=i, partition=i % 2)
    group = log.add_group("strict", auto_offset_reset="none")
    member = group.join()
    assert group.committed() == {0: None, 1: None}
    assert group.lag() == {0: None, 1: None} and group.total_lag() == 0
    with pytest.raises(NoOffsetError, match="no committed offset for partition orders-0"):
        group.poll(member)
    group.seek(0, 1)
    group.seek(1, 0)
    assert [(r.partition, r.offset) for r in group.poll(member)] == [(0, 1), (1, 0), (1, 1)]


# --- keys and partitions -------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(
    keys=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["order-42", "order-43", "order-44", "a", "b", "c", "é", "order-45"]),
        ),
        max_size=60,
    ),
    partitions=st.integers(1, 6),
    keyless=st.sampled_from(["sticky", "roundrobin"]),
)
def test_records_of_one_key_stay_in_one_partition_in_produce_order(keys, partitions, keyless):
    _, log = make_log(partitions, keyless=keyless, batch_records=2)
    for seq, key in enumerate(keys):
        log.produce(key, seq)
    by_key: dict[str, list[tuple[int, int, int]]] = {}
    for p in log.partitions:
        assert [r.offset for r in p.records] == list(range(len(p)))  # sequential per partition
        for r in p.records:
            if r.key is not None:
                by_key.setdefault(r.key, []).append((r.value, r.partition, r.offset))
    for key, entries in by_key.items():
        entries.sort()
        assert {part for _, part, _ in entries} == {kafka_partition(key, partitions)}
        offsets = [offset for _, _, offset in entries]
        assert offsets == sorted(offsets)  # produce order = offset order within the partition
    assert sum(len(p) for p in log.partitions) == len(keys)


def test_unkeyed_records_use_the_partitioner():
    _, log = make_log(3, keyless="roundrobin", batch_records=1)
    assert [log.produce(value=i).partition for i in range(5)] == [0, 1, 2, 0, 1]
    _, sticky = make_log(3, keyless="sticky", batch_records=2)
    assert [sticky.produce(value=i).partition for i in range(5)] == [0, 0, 1, 1, 2]


# --- consumer groups: assignment, rebalancing ----------------------------------------------------


def test_six_partitions_over_four_consumers_with_the_range_assignor_is_2_2_1_1():
    _, log = make_log(6)
    group = log.add_group("g", strategy="range")
    for i in range(4):
        group.join(f"c{i}")
    assert group.assignment() == {"c0": [0, 1], "c1": [2, 3], "c2": [4], "c3": [5]}
    assert [len(ps) for ps in group.assignment().values()] == [2, 2, 1, 1]
    rr = log.add_group("rr", strategy="roundrobin")
    for i in range(4):
        rr.join(f"c{i}")
    assert rr.assignment() == {"c0": [0, 4], "c1": [1, 5], "c2": [2], "c3": [3]}


def test_more_consumers_than_partitions_leaves_spares_idle():
    _, log = make_log(2)
    group = log.add_group("g")
    members = [group.join() for _ in range(3)]
    assert group.assignment() == {members[0]: [0], members[1]: [1], members[2]: []}


def test_a_dead_member_keeps_its_partitions_until_the_session_timeout_then_the_new_owner_resumes():
    sim, log = make_log(2, keyless="roundrobin", batch_records=1)
    group = log.add_group("g", session_timeout=10.0, auto_offset_reset="earliest")
    a, b = group.join(), group.join()
    for i in range(4):
        log.produce(value=i)  # p0: 0, 2   p1: 1, 3
    assert [r.value for r in group.poll(b)] == [1, 3]
    log.produce(value=4)
    log.produce(value=5)  # p1 gets 5
    group.kill(b)
    with pytest.raises(ValueError, match="dead"):
        group.poll(b)
    sim.advance(9.0)
    assert group.owners() == {0: a, 1: b}  # not yet timed out: partition 1 goes unread
    assert group.lag()[1] == 1
    sim.advance(1.0)
    sim.settle()
    assert group.members == [a]
    assert group.owners() == {0: a, 1: a}
    # a continues partition 1 at the group's committed offset: no record skipped, none re-read
    assert [(r.partition, r.value) for r in group.poll(a)] == [(0, 0), (0, 2), (0, 4), (1, 5)]
    reasons = [e.data["reason"] for e in sim.trace.of_kind("rebalance")]
    assert reasons == ["join", "join", "session_timeout"]


def test_a_killed_member_that_left_before_its_timeout_is_not_removed_twice():
    sim, log = make_log(2)
    group = log.add_group("g", session_timeout=5.0)
    a, b = group.join(), group.join()
    group.kill(b)
    group.leave(b)
    group.join(b)  # the same id comes back, alive
    sim.advance(6.0)
    sim.settle()
    assert group.members == [a, b] and group.alive(b)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 0)),
        st.tuples(st.just("leave"), st.integers(0, 9)),
        st.tuples(st.just("kill"), st.integers(0, 9)),
        st.tuples(st.just("wait"), st.integers(1, 8)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, partitions=st.integers(1, 8), strategy=st.sampled_from(["range", "roundrobin"]))
def test_after_any_joins_and_leaves_every_partition_has_exactly_one_owner(
    ops, partitions, strategy
):
    sim, log = make_log(partitions)
    group = log.add_group("g", strategy=strategy, session_timeout=5.0)
    for op, n in ops:
        members = group.members
        if op == "join":
            group.join()
        elif op == "leave" and members:
            group.leave(members[n % len(members)])
        elif op == "kill":
            alive = [m for m in members if group.alive(m)]
            if alive:
                group.kill(alive[n % len(alive)])
        elif op == "wait":
            sim.advance(float(n))
            sim.settle()
        assignment = group.assignment()
        owned = Counter(p for ps in assignment.values() for p in ps)
        if group.members:
            assert set(assignment) == set(group.members)
            assert owned == Counter(range(partitions))  # each partition exactly once
            expected = assign(
                strategy, {m: ["orders"] for m in group.members}, {"orders": partitions}
            )
            assert assignment == {m: [p for _, p in expected[m]] for m in group.members}
        else:
            assert not owned
            assert set(group.owners().values()) == {None}


# --- the data structure a broker hosts -----------------------------------------------------------


def test_truncate_drops_the_tail_for_a_follower():
    p = Partition("orders", 1)
    for i in range(5):
        p.append(value=i, size_bytes=2)
    removed = p.truncate(3)
    assert [r.offset for r in removed] == [3, 4]
    assert (p.log_end_offset, p.size_bytes) == (3, 6)
    assert p.append(value="x").offset == 3
    with pytest.raises(OffsetOutOfRangeError):
        p.truncate(7)


def test_timestamps_must_not_go_back():
    p = Partition()
    p.append(timestamp=5.0)
    with pytest.raises(ValueError, match="timestamp"):
        p.append(timestamp=4.0)


def test_docstring_examples():
    result = doctest.testmod(log_module)
    assert result.failed == 0 and result.attempted > 0


# --- bad input -----------------------------------------------------------------------------------

_not_text = st.one_of(st.just(""), st.integers(), st.none(), st.floats(), st.lists(st.text()))
_not_int = st.one_of(st.floats(), st.text(max_size=3), st.booleans(), st.binary(max_size=2))
_not_count = st.one_of(_not_int, st.integers(max_value=0))  # for >= 1
_not_index = st.one_of(_not_int, st.integers(max_value=-1))  # for >= 0
_not_seconds = st.one_of(
    st.floats(max_value=0),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(max_size=3),
    st.booleans(),
)


def _log_with_records():
    sim, log = make_log(3)
    for i in range(4):
        log.produce("order-42", i)
    group = log.add_group("g")
    group.join("m")
    return log, group


_CASES = {
    "Partition(topic)": ("topic", _not_text, lambda v: Partition(v, 0)),
    "Partition(index)": ("index", _not_index, lambda v: Partition("t", v)),
    "Partition(retention_seconds)": (
        "retention_seconds",
        _not_seconds,
        lambda v: Partition(retention_seconds=v),
    ),
    "Partition(retention_records)": (
        "retention_records",
        _not_count,
        lambda v: Partition(retention_records=v),
    ),
    "Partition(retention_bytes)": (
        "retention_bytes",
        _not_count,
        lambda v: Partition(retention_bytes=v),
    ),
    "append(key)": (
        "key",
        st.one_of(st.integers(), st.floats(), st.lists(st.text())),
        lambda v: Partition().append(key=v),
    ),
    "append(timestamp)": (
        "timestamp",
        st.one_of(st.floats(max_value=-0.001), st.text(max_size=2), st.just(float("nan"))),
        lambda v: Partition().append(timestamp=v),
    ),
    "append(size_bytes)": ("size_bytes", _not_index, lambda v: Partition().append(size_bytes=v)),
    "read(offset)": (
        "offset",
        st.one_of(_not_int, st.integers(max_value=-1), st.integers(min_value=5)),
        lambda v: _log_with_records()[0].read(0, v),
    ),
    "read(max_records)": (
        "max_records",
        _not_count,
        lambda v: _log_with_records()[0].read(0, 0, v),
    ),
    "read(partition)": (
        "partition",
        st.one_of(_not_int, st.integers(max_value=-1), st.integers(min_value=3)),
        lambda v: _log_with_records()[0].read(v, 0),
    ),
    "PartitionedLog(name)": ("name", _not_text, lambda v: PartitionedLog(Simulation(), v)),
    "PartitionedLog(partitions)": (
        "partitions",
        st.one_of(_not_count, st.integers(min_value=10_001)),
        lambda v: PartitionedLog(Simulation(), partitions=v),
    ),
    "PartitionedLog(keyless)": (
        "keyless",
        st.one_of(st.text(max_size=5), st.integers()),
        lambda v: PartitionedLog(Simulation(), keyless=v),
    ),
    "PartitionedLog(batch_records)": (
        "batch_records",
        _not_count,
        lambda v: PartitionedLog(Simulation(), batch_records=v),
    ),
    "PartitionedLog(retention_check_interval)": (
        "retention_check_interval",
        _not_seconds,
        lambda v: PartitionedLog(Simulation(), retention_check_interval=v),
    ),
    "PartitionedLog(sim)": (
        "sim",
        st.one_of(st.none(), st.integers(), st.text()),
        lambda v: PartitionedLog(v),
    ),
    "produce(key)": (
        "key",
        st.one_of(st.integers(), st.floats(), st.lists(st.text())),
        lambda v: _log_with_records()[0].produce(v),
    ),
    "produce(partition)": (
        "partition",
        st.one_of(_not_int, st.integers(max_value=-1), st.integers(min_value=3)),
        lambda v: _log_with_records()[0].produce(partition=v),
    ),
    "add_group(name)": (
        "name",
        st.one_of(_not_text, st.just("g")),
        lambda v: _log_with_records()[0].add_group(v),
    ),
    "add_group(strategy)": (
        "strategy",
        st.one_of(st.text(max_size=5), st.integers()),
        lambda v: _log_with_records()[0].add_group("x", strategy=v),
    ),
    "add_group(auto_offset_reset)": (
        "auto_offset_reset",
        st.one_of(st.text(max_size=5), st.none()),
        lambda v: _log_with_records()[0].add_group("x", auto_offset_reset=v),
    ),
    "add_group(session_timeout)": (
        "session_timeout",
        _not_seconds,
        lambda v: _log_with_records()[0].add_group("x", session_timeout=v),
    ),
    "group(name)": (
        "group",
        st.one_of(_not_text, st.text(min_size=2)),
        lambda v: _log_with_records()[0].group(v),
    ),
    "seek(partition)": (
        "partition",
        st.one_of(_not_int, st.integers(max_value=-1), st.integers(min_value=3)),
        lambda v: _log_with_records()[1].seek(v, 0),
    ),
    "seek(offset)": (
        "offset",
        st.one_of(_not_int, st.integers(max_value=-1)),
        lambda v: _log_with_records()[1].seek(0, v),
    ),
    "seek_to_beginning(partitions)": (
        "partitions",
        st.one_of(st.integers(), st.floats()),
        lambda v: _log_with_records()[1].seek_to_beginning(v),
    ),
    "poll(member)": (
        "member",
        st.one_of(_not_text, st.text(min_size=2)),
        lambda v: _log_with_records()[1].poll(v),
    ),
    "poll(max_records)": ("max_records", _not_count, lambda v: _log_with_records()[1].poll("m", v)),
    "join(member)": (
        "member",
        st.one_of(st.just("m"), st.just(""), st.integers()),
        lambda v: _log_with_records()[1].join(v),
    ),
    "leave(member)": (
        "member",
        st.one_of(_not_text, st.text(min_size=2)),
        lambda v: _log_with_records()[1].leave(v),
    ),
    "KafkaLogRun(partitions)": (
        "partitions",
        st.one_of(_not_count, st.integers(min_value=65)),
        lambda v: KafkaLogRun(v),
    ),
    "KafkaLogRun(strategy)": ("strategy", st.text(max_size=4), lambda v: KafkaLogRun(strategy=v)),
    "KafkaLogRun(retention_seconds)": (
        "retention_seconds",
        _not_seconds,
        lambda v: KafkaLogRun(retention_seconds=v),
    ),
    "KafkaLogRun(retention_records)": (
        "retention_records",
        _not_count,
        lambda v: KafkaLogRun(retention_records=v),
    ),
    "KafkaLogRun(keyless)": ("keyless", st.text(max_size=4), lambda v: KafkaLogRun(keyless=v)),
    "KafkaLogRun(session_timeout)": (
        "session_timeout",
        _not_seconds,
        lambda v: KafkaLogRun(session_timeout=v),
    ),
    "KafkaLogRun(seed)": ("seed", _not_int, lambda v: KafkaLogRun(seed=v)),
    "run.produce(key)": (
        "key",
        st.one_of(st.just(""), st.integers(), st.binary(min_size=1)),
        lambda v: KafkaLogRun().produce(v),
    ),
    "run.add_group(members)": (
        "members",
        st.one_of(_not_int, st.integers(max_value=-1), st.integers(min_value=65)),
        lambda v: KafkaLogRun().add_group("g", v),
    ),
    "run.consume(max_records)": (
        "max_records",
        _not_count,
        lambda v: _run_with_group().consume("g", max_records=v),
    ),
    "run.consume(member)": (
        "member",
        st.one_of(st.just(""), st.integers(), st.just("nobody")),
        lambda v: _run_with_group().consume("g", v),
    ),
    "run.seek(offset)": (
        "offset",
        st.one_of(_not_int, st.integers(max_value=-1)),
        lambda v: _run_with_group().seek("g", 0, v),
    ),
    "run.seek_to_beginning(partition)": (
        "partition",
        st.one_of(_not_int, st.integers(min_value=3)),
        lambda v: _run_with_group().seek_to_beginning("g", v),
    ),
    "run.kill_member(member)": (
        "member",
        st.one_of(st.just(""), st.just("nobody")),
        lambda v: _run_with_group().kill_member("g", v),
    ),
    "run.remove_member(group)": (
        "group",
        st.one_of(st.just(""), st.just("nobody")),
        lambda v: _run_with_group().remove_member(v),
    ),
    "run.advance(seconds)": ("seconds", _not_seconds, lambda v: KafkaLogRun().advance(v)),
}


def _run_with_group():
    run = KafkaLogRun()
    run.add_group("g", 2)
    return run


@settings(max_examples=300, deadline=None)
@given(data=st.data(), case=st.sampled_from(sorted(_CASES)))
def test_bad_arguments_raise_an_error_that_names_the_parameter(data, case):
    name, bad_values, call = _CASES[case]
    value = data.draw(bad_values, label=name)
    with pytest.raises((ValueError, TypeError)) as info:
        call(value)
    assert name in str(info.value), (case, value, str(info.value))


def test_group_checks_its_log_argument():
    with pytest.raises(TypeError, match="log"):
        LogConsumerGroup("not a log", "g")


def test_killing_a_dead_member_or_removing_an_empty_groups_member_is_refused():
    run = KafkaLogRun()
    run.add_group("g", 1)
    run.kill_member("g", "g-1")
    with pytest.raises(ValueError, match="already dead"):
        run.kill_member("g", "g-1")
    run.add_group("empty", 0)
    with pytest.raises(ValueError, match="no members"):
        run.remove_member("empty")


# --- the chapter's scenario ----------------------------------------------------------------------


def test_default_run_numbers():
    run = default_run()
    assert run.now == 34.0
    # order-42 -> p0, order-43 -> p1, order-44 -> p2 (Kafka's murmur2 partitioner, 3 partitions)
    assert [kafka_partition(f"order-{n}", 3) for n in (42, 43, 44)] == [0, 1, 2]
    assert run.assignments() == {
        "billing": {"billing-1": [0, 1], "billing-2": [2]},
        "analytics": {"analytics-1": [0, 1, 2]},
    }
    assert run.offsets() == {
        0: {"log_start_offset": 2, "log_end_offset": 3},
        1: {"log_start_offset": 1, "log_end_offset": 3},
        2: {"log_start_offset": 1, "log_end_offset": 3},
    }
    assert run.committed() == {"billing": {0: 3, 1: 3, 2: 3}, "analytics": {0: 1, 1: 1, 2: 1}}
    assert run.lag() == {"billing": {0: 0, 1: 0, 2: 0}, "analytics": {0: 2, 1: 2, 2: 2}}
    assert run.group_lag() == {"billing": 0, "analytics": 6}
    assert [r["value"] for r in run.logs()[0]] == ["shipped"]
    fetches = [
        (e.data["group"], e.data["partition"], e.data["first_offset"], e.data["last_offset"])
        for e in run.sim.trace.of_kind("fetch")
    ]
    assert fetches == [
        ("billing", 0, 0, 2),
        ("billing", 1, 0, 2),
        ("billing", 2, 0, 2),
        ("analytics", 0, 0, 0),
        ("analytics", 1, 0, 0),
        ("analytics", 2, 0, 0),
        ("billing", 0, 0, 2),
    ]  # the last one re-reads order 42 after the rewind
    assert run.summary() == (
        "t=34s: topic orders offsets p0 [2..3), p1 [1..3), p2 [1..3); "
        "billing lag 0 (p0:0, p1:0, p2:0); analytics lag 6 (p0:2, p1:2, p2:2)"
    )
    assert run.history[-1] == {
        "time": 34.0,
        "log_start_offset": {0: 2, 1: 1, 2: 1},
        "log_end_offset": {0: 3, 1: 3, 2: 3},
        "lag": {"billing": 0, "analytics": 6},
    }


def test_scenario_consume_returns_plain_records_and_rebalances_on_kill():
    run = KafkaLogRun(3, session_timeout=5.0)
    run.add_group("g", 2)  # created before the records, so "latest" starts at offset 0
    for key in ("order-42", "order-43", "order-44"):
        run.produce(key, "created")
    got = run.consume("g", "g-2")
    assert got == [
        {
            "partition": 2,
            "offset": 0,
            "key": "order-44",
            "value": "created",
            "timestamp": 0,
            "member": "g-2",
        }
    ]
    run.kill_member("g", "g-1")
    run.advance(5.0)
    assert run.assignments() == {"g": {"g-2": [0, 1, 2]}}
    assert [(r["partition"], r["offset"]) for r in run.consume("g")] == [(0, 0), (1, 0)]
    assert run.add_member("g") == "g-3"
    assert run.remove_member("g") == "g-3"
    run.remove_group("g")
    assert run.lag() == {}


# -- issue 13: joining costs the same however many members there are -------------------------------
@settings(max_examples=40, deadline=None)
@given(
    partitions=st.integers(min_value=1, max_value=6),
    strategy=st.sampled_from(["range", "roundrobin"]),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 30)), min_size=1, max_size=40),
)
def test_incremental_rebalance_agrees_with_the_assignor_over_every_member(
    partitions, strategy, steps
):
    sim = Simulation()
    log = PartitionedLog(sim, "t", partitions=partitions)
    group = log.add_group("g", strategy=strategy)
    for join, pick in steps:
        if join or not group.members:
            group.join(f"m{pick:02d}" if f"m{pick:02d}" not in group.members else None)
        else:
            group.leave(group.members[pick % len(group.members)])
        if group.members:
            expected = assign(strategy, {m: ["t"] for m in group.members}, {"t": partitions})
            assert group.assignment() == {m: [p for _, p in expected[m]] for m in group.members}
        event = sim.trace.of_kind("rebalance")[-1].data
        idle = sum(1 for ps in group.assignment().values() if not ps)
        assert event.get("idle", 0) == idle
        assert event["assignment"] == {m: ps for m, ps in group.assignment().items() if ps}


def test_add_member_stays_cheap_with_many_members():
    from mqlib.scenarios.kafka_log import KafkaLogRun

    run = KafkaLogRun(4)
    run.add_group("g", 0)
    for _ in range(300):
        run.add_member("g")
    owned = run.assignments()["g"]
    assert len(owned) == 300 and sorted(p for ps in owned.values() for p in ps) == [0, 1, 2, 3]
    # the four owners are the first four ids in sorted order, as in Kafka's assignors
    assert sorted(m for m, ps in owned.items() if ps) == sorted(owned)[:4]


def test_the_run_history_keeps_the_newest_snapshots_only():
    from mqlib.scenarios.kafka_log import HISTORY_LIMIT, KafkaLogRun

    run = KafkaLogRun(partitions=1)
    for n in range(HISTORY_LIMIT + 50):
        run.produce(f"k{n}")
        run.advance(1.0)
    assert len(run.history) == HISTORY_LIMIT
    assert run.history[-1]["time"] == run.now
    assert run.history[-1]["log_end_offset"] == {0: HISTORY_LIMIT + 50}
