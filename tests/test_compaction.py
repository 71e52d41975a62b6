"""Log compaction (chapter 7): the latest value per key survives, tombstones go after
``delete.retention.ms``, the active segment is never cleaned, and a consumer reading from offset 0
rebuilds the same table before and after.

Kafka's rules, with their sources (book/references.md, Kafka): ``cleanup.policy=compact``
"retains the latest value for each key" (TopicConfig.CLEANUP_POLICY_DOC); ``delete.retention.ms``
defaults to 86400000 ms (LogConfig.DEFAULT_DELETE_RETENTION_MS) and bounds how long tombstones are
kept; the active segment is never compacted (Kafka documentation, "Log Compaction"); a compacted
topic refuses records without a key (LogValidator: "Compacted topic cannot accept message
without key").
"""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlib.models.compaction as compaction_module
from mqlib.models.compaction import DELETE_RETENTION_SECONDS, CompactedPartition
from mqlib.scenarios.compaction import HOUR, consumer_offsets_run, default_run

_writes = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.one_of(st.none(), st.integers(0, 9))),
    max_size=60,
)


def build(writes, segment_records=4):
    p = CompactedPartition(segment_records=segment_records)
    originals = [p.append(k, v, timestamp=float(i)) for i, (k, v) in enumerate(writes)]
    return p, originals


def apply_all(writes):
    table = {}
    for key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


@settings(max_examples=200, deadline=None)
@given(writes=_writes, segment_records=st.integers(1, 7))
def test_compaction_keeps_exactly_the_latest_value_per_key(writes, segment_records):
    p, originals = build(writes, segment_records)
    p.roll()
    p.compact(now=1e9)  # every tombstone gets its horizon now ...
    stored = {r.key: [] for r in p.records}
    for r in p.records:
        stored[r.key].append(r)
    last = {k: r for r in originals for k in [r.key]}
    for key, records in stored.items():
        assert records == [last[key]]  # one record per key, and it is the latest one
    assert set(stored) == set(last)  # tombstones still there: nothing vanished yet
    p.compact(now=1e9 + DELETE_RETENTION_SECONDS)  # ... and is removed once it has passed
    assert {r.key for r in p.records} == {k for k, r in last.items() if not r.tombstone}
    assert all(not r.tombstone for r in p.records)
    assert p.rebuild() == apply_all(writes)


@settings(max_examples=200, deadline=None)
@given(
    writes=_writes,
    segment_records=st.integers(1, 7),
    cleanings=st.lists(st.floats(0, 3e5), max_size=4),
)
def test_any_cleaning_keeps_offsets_order_and_the_rebuilt_table(writes, segment_records, cleanings):
    p, originals = build(writes, segment_records)
    by_offset = {r.offset: r for r in originals}
    active_before = p.segments[-1]
    now = float(len(writes))
    for gap in cleanings:
        now += gap
        p.compact(now=now)
        offsets = [r.offset for r in p.records]
        assert offsets == sorted(set(offsets))  # strictly increasing, never renumbered
        assert all(by_offset[r.offset] == r for r in p.records)  # records unchanged
        assert p.segments[-1] == active_before  # the active segment is never cleaned
        closed = [r["key"] for seg in p.segments[:-1] for r in seg]
        assert len(closed) == len(set(closed))  # at most one record per key in closed segments
        assert p.rebuild() == apply_all(writes)  # a new consumer rebuilds the same table
        assert p.log_end_offset == len(writes)


def test_a_tombstone_survives_delete_retention_then_goes():
    p = CompactedPartition(segment_records=2)
    p.append("k", "v1", timestamp=0.0)
    p.append("k", None, timestamp=1.0)  # closes the first segment
    p.compact(now=10.0)
    assert [(r.offset, r.value) for r in p.records] == [(1, None)]
    p.compact(now=10.0 + DELETE_RETENTION_SECONDS - 1)
    assert len(p) == 1  # not yet: one second short of a day after the first cleaning
    removed = p.compact(now=10.0 + DELETE_RETENTION_SECONDS)
    assert [r.offset for r in removed] == [1] and len(p) == 0
    assert p.append("k", "v2").offset == 2  # offsets go on


def test_the_chapter_example():
    run = default_run()
    # Before: 10 records; segments 0-3 and 4-7 closed, 8-9 active.
    assert [[r["offset"] for r in seg] for seg in run["before"]] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]
    # First cleaning at 10 h: offsets 0-3 go (newer values exist in closed segments).
    assert run["removed_first"] == [0, 1, 2, 3]
    kept = [r["offset"] for seg in run["after_first"] for r in seg]
    assert kept == [4, 5, 6, 7, 8, 9]
    # 4 and 7 have newer values (8 and 9) in the active segment, so they stay for now.
    closed = {r["offset"]: r["key"] for seg in run["after_first"][:-1] for r in seg}
    assert closed[4] == "customer-9" and closed[7] == "customer-3"
    # The tombstone of customer-7 (offset 5) stays a day, then goes.
    assert run["delete_retention_hours"] == 24.0
    assert run["removed_second"] == [5]
    table = {
        "customer-5": "ana@home.example",
        "customer-9": "cy@final.example",
        "customer-3": "di@other.example",
    }
    assert run["table_before"] == run["table_after_first"] == run["table_after_second"] == table
    assert run["log_end_offset"] == 10


def test_consumer_offsets_keeps_one_commit_per_group_and_partition():
    run = consumer_offsets_run(50)
    assert run["written"] == 200 and run["kept"] == 4
    assert run["rebuilt"] == {
        "billing/orders/0": 500,
        "billing/orders/1": 500,
        "analytics/orders/0": 250,
        "analytics/orders/1": 250,
    }


def test_hour_constant_and_docstring_examples():
    assert HOUR == 3600.0
    result = doctest.testmod(compaction_module)
    assert result.failed == 0 and result.attempted > 0


def test_bad_input_names_the_parameter():
    p = CompactedPartition()
    with pytest.raises(TypeError, match="key must be a non-empty str"):
        p.append(None, "v")
    with pytest.raises(TypeError, match="key"):
        p.append("", "v")
    with pytest.raises(ValueError, match="timestamp"):
        p.append("k", "v", timestamp=-1)
    p.append("k", "v", timestamp=5.0)
    with pytest.raises(ValueError, match="timestamp must not go back"):
        p.append("k", "v", timestamp=4.0)
    with pytest.raises(ValueError, match="segment_records"):
        CompactedPartition(segment_records=0)
    with pytest.raises(ValueError, match="delete_retention"):
        CompactedPartition(delete_retention=-1)
    with pytest.raises(ValueError, match="now"):
        p.compact(now=-1)
    with pytest.raises(ValueError, match="offset"):
        p.read(-1)
    with pytest.raises(ValueError, match="commits"):
        consumer_offsets_run(0)
    with pytest.raises(ValueError, match="second_clean_after_hours"):
        default_run(second_clean_after_hours=0)
