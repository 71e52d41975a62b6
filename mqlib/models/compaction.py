"""Log compaction: a partition that keeps the latest value of every key instead of the latest days.

A topic with ``cleanup.policy=delete`` (Kafka's default, chapter 7's retention) forgets records by
age or size. A topic with ``cleanup.policy=compact`` forgets them by *key*: once a newer record
with the same key exists, the older one may go. What is left is, for every key, its latest value:
a table, stored as a log. A consumer that reads such a topic from offset 0 rebuilds the whole
table, however long ago each key was last written. Kafka keeps its own consumer offsets this way:
``__consumer_offsets`` is a compacted topic whose key is (group, topic, partition).

How the cleaner works, as :class:`CompactedPartition` models it:

**Segments.** A partition is stored as a series of segment files. New records go to the last one,
the *active segment*; when it is full (Kafka: ``segment.bytes``, 1 GiB, or ``segment.ms``, 7 days;
here ``segment_records`` records) it is closed and a new one starts. **The active segment is never
compacted**, so the newest records always stay, duplicates and all, until their segment closes.

**Cleaning.** :meth:`CompactedPartition.compact` looks at the closed segments, finds the last
offset of every key there, and drops every earlier record of that key. Offsets never change:
compaction leaves gaps (offsets 3, 7, 8 may be all that is left of 0 to 8), and records stay in
offset order.

**Deletes are tombstones.** A record whose value is ``None`` (Kafka: a null value) says "this key
is gone". Compaction removes the older values of the key at once, but keeps the tombstone itself
for ``delete_retention`` seconds (Kafka's ``delete.retention.ms``, 1 day by default) after the
cleaning that first reached it, so that a consumer reading slowly still sees the delete. After
that the tombstone goes too, and the key leaves no trace.

Simplifications, each named: Kafka's cleaner runs by itself when the dirty (not yet cleaned) part
of a log exceeds ``min.cleanable.dirty.ratio`` (0.5) and records are older than
``min.compaction.lag.ms`` (0); here a cleaning happens when you call :meth:`compact`.
A compacted topic rejects records without a key (the broker refuses them); so does this model.

>>> p = CompactedPartition(segment_records=3)
>>> for key, value in [("a", 1), ("b", 1), ("a", 2), ("b", None), ("c", 1), ("a", 3)]:
...     _ = p.append(key, value, timestamp=0.0)
>>> [(r.offset, r.key, r.value) for r in p.records]
[(0, 'a', 1), (1, 'b', 1), (2, 'a', 2), (3, 'b', None), (4, 'c', 1), (5, 'a', 3)]
>>> p.roll()   # close the active segment, so that all six records may be cleaned
>>> removed = p.compact(now=0.0)
>>> [(r.offset, r.key, r.value) for r in p.records]    # 'b' kept as a tombstone for now
[(3, 'b', None), (4, 'c', 1), (5, 'a', 3)]
>>> p.rebuild()
{'c': 1, 'a': 3}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _validate as check

__all__ = ["CompactedPartition", "LogEntry"]

DELETE_RETENTION_SECONDS = 86_400.0
"""Kafka's default ``delete.retention.ms`` (86400000 ms, one day), in seconds."""


@dataclass(frozen=True)
class LogEntry:
    """One record of a compacted partition. ``value is None`` marks a tombstone (a delete)."""

    offset: int
    key: str
    value: Any
    timestamp: float

    @property
    def tombstone(self) -> bool:
        return self.value is None

    def as_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "key": self.key, "value": self.value}


class CompactedPartition:
    """One partition of a topic with ``cleanup.policy=compact``.

    Parameters
    ----------
    segment_records:
        Records per segment: the active segment is closed when it holds this many.
    delete_retention:
        Seconds a tombstone survives after the first cleaning that reached it (Kafka's
        ``delete.retention.ms``, one day by default).
    """

    def __init__(
        self,
        *,
        segment_records: int = 4,
        delete_retention: float = DELETE_RETENTION_SECONDS,
    ) -> None:
        self.segment_records = check.integer("segment_records", segment_records, minimum=1)
        self.delete_retention = check.non_negative("delete_retention", delete_retention)
        self._segments: list[list[LogEntry]] = [[]]  # the last one is the active segment
        self._next_offset = 0
        self._horizon: dict[int, float] = {}  # tombstone offset -> when it may be removed
        self.cleanings = 0

    # -- writing -------------------------------------------------------------------------------
    def append(self, key: str, value: Any, *, timestamp: float = 0.0) -> LogEntry:
        """Append ``key`` = ``value`` (``None``: a tombstone) and return the record."""
        if not isinstance(key, str) or key == "":
            raise TypeError(
                f"key must be a non-empty str: a compacted topic refuses records without a key, "
                f"got {key!r}"
            )
        check.non_negative("timestamp", timestamp)
        last = self.last_timestamp
        if last is not None and timestamp < last:
            raise ValueError(
                f"timestamp must not go back in time: got {timestamp!r}, last {last!r}"
            )
        entry = LogEntry(self._next_offset, key, value, float(timestamp))
        self._next_offset += 1
        self._segments[-1].append(entry)
        if len(self._segments[-1]) >= self.segment_records:
            self.roll()
        return entry

    def roll(self) -> None:
        """Close the active segment (if it holds anything) and start a new one."""
        if self._segments[-1]:
            self._segments.append([])

    # -- cleaning ------------------------------------------------------------------------------
    def compact(self, now: float) -> list[LogEntry]:
        """Clean the closed segments at time ``now``; return the records removed.

        In the closed segments, only the last record of each key survives; a tombstone that has
        outlived its ``delete_retention`` horizon goes as well. The active segment is untouched.
        """
        check.non_negative("now", now)
        closed = [r for seg in self._segments[:-1] for r in seg]
        latest = {r.key: r.offset for r in closed}
        removed: list[LogEntry] = []
        cleaned: list[list[LogEntry]] = []
        for seg in self._segments[:-1]:
            kept: list[LogEntry] = []
            for r in seg:
                if latest[r.key] != r.offset:
                    removed.append(r)  # a newer record of this key exists
                elif r.tombstone and r.offset in self._horizon and now >= self._horizon[r.offset]:
                    removed.append(r)  # a tombstone past its delete horizon
                    del self._horizon[r.offset]
                elif r.tombstone:
                    # The first cleaning that reaches a tombstone sets its horizon (KIP-534).
                    self._horizon.setdefault(r.offset, now + self.delete_retention)
                    kept.append(r)
                else:
                    kept.append(r)
            if kept:
                cleaned.append(kept)
        self._segments = [*cleaned, self._segments[-1]]
        self.cleanings += 1
        return removed

    # -- reading -------------------------------------------------------------------------------
    @property
    def records(self) -> tuple[LogEntry, ...]:
        """Every record still stored, in offset order."""
        return tuple(r for seg in self._segments for r in seg)

    @property
    def segments(self) -> list[list[dict[str, Any]]]:
        """The segments as plain data, oldest first; the last is the active segment."""
        return [[r.as_dict() for r in seg] for seg in self._segments]

    @property
    def log_end_offset(self) -> int:
        """The offset the next record will get (never changed by compaction)."""
        return self._next_offset

    @property
    def last_timestamp(self) -> float | None:
        for seg in reversed(self._segments):
            if seg:
                return seg[-1].timestamp
        return None

    def read(self, offset: int = 0) -> list[LogEntry]:
        """The records at ``offset`` or later (compaction's gaps are simply skipped)."""
        check.integer("offset", offset, minimum=0, maximum=2**63 - 1)
        return [r for r in self.records if r.offset >= offset]

    def rebuild(self, offset: int = 0) -> dict[str, Any]:
        """What a consumer reading from ``offset`` ends with: key -> latest value, tombstones
        deleting their key. From offset 0 this is the full table."""
        table: dict[str, Any] = {}
        for r in self.read(offset):
            if r.tombstone:
                table.pop(r.key, None)
            else:
                table[r.key] = r.value
        return table

    def __len__(self) -> int:
        return sum(len(seg) for seg in self._segments)

    def __repr__(self) -> str:
        return (
            f"CompactedPartition({len(self)} records in {len(self._segments)} segments, "
            f"log_end_offset={self.log_end_offset})"
        )
