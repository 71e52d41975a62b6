"""Chapter 7's compaction examples: a partition before and after cleaning, and what a new
consumer rebuilds from it; and ``__consumer_offsets``, Kafka's own compacted topic.

Both return plain data the chapter prints and the tests pin.
"""

from __future__ import annotations

from typing import Any

from .. import _validate as check
from ..models.compaction import DELETE_RETENTION_SECONDS, CompactedPartition

__all__ = ["HOUR", "consumer_offsets_run", "default_run", "email_updates"]

HOUR = 3_600.0

#: Customers changing their e-mail address, one record per hour: (customer id, new address).
#: ``None`` is a tombstone: customer 7 closed their account.
EMAIL_UPDATES: tuple[tuple[str, str | None], ...] = (
    ("customer-5", "ana@old.example"),
    ("customer-7", "bo@example.com"),
    ("customer-9", "cy@example.com"),
    ("customer-5", "ana@work.example"),
    ("customer-9", "cy@new.example"),
    ("customer-7", None),
    ("customer-5", "ana@home.example"),
    ("customer-3", "di@example.com"),
    ("customer-9", "cy@final.example"),
    ("customer-3", "di@other.example"),
)


def email_updates() -> CompactedPartition:
    """The ten updates of :data:`EMAIL_UPDATES`, one per hour from t=0, in segments of 4
    records: offsets 0-3 and 4-7 are closed segments, 8-9 the active one."""
    partition = CompactedPartition(segment_records=4)
    for hour, (key, value) in enumerate(EMAIL_UPDATES):
        partition.append(key, value, timestamp=hour * HOUR)
    return partition


def default_run(clean_at_hours: float = 10.0, second_clean_after_hours: float = 25.0) -> dict:
    """Clean :func:`email_updates` at ``clean_at_hours``, then again ``second_clean_after_hours``
    later (past the one-day ``delete.retention.ms``). Returns the segments before, after each
    cleaning, what was removed, and the table a consumer from offset 0 rebuilds each time."""
    check.non_negative("clean_at_hours", clean_at_hours)
    check.positive("second_clean_after_hours", second_clean_after_hours)
    partition = email_updates()
    before = partition.segments
    table_before = partition.rebuild()
    first = partition.compact(now=clean_at_hours * HOUR)
    after_first = partition.segments
    table_after_first = partition.rebuild()
    later = (clean_at_hours + second_clean_after_hours) * HOUR
    second = partition.compact(now=later)
    return {
        "before": before,
        "table_before": table_before,
        "removed_first": [r.offset for r in first],
        "after_first": after_first,
        "table_after_first": table_after_first,
        "removed_second": [r.offset for r in second],
        "after_second": partition.segments,
        "table_after_second": partition.rebuild(),
        "log_end_offset": partition.log_end_offset,
        "delete_retention_hours": DELETE_RETENTION_SECONDS / HOUR,
    }


def consumer_offsets_run(commits: int = 50) -> dict[str, Any]:
    """Two groups commit their offsets of partitions 0 and 1 of ``orders``, ``commits`` rounds each,
    into a compacted partition keyed like ``__consumer_offsets`` (group, topic, partition).

    Returns how many commit records were written, how many remain after cleaning, and the
    offsets a group coordinator rebuilds by reading the partition from the start.
    """
    check.integer("commits", commits, minimum=1, maximum=10_000)
    log = CompactedPartition(segment_records=16)
    for n in range(1, commits + 1):
        for group in ("billing", "analytics"):
            for partition in (0, 1):
                # billing keeps up (10 records a round); analytics reads half as fast
                offset = n * (10 if group == "billing" else 5)
                log.append(f"{group}/orders/{partition}", offset, timestamp=float(n))
    written = log.log_end_offset
    log.roll()  # in Kafka the active segment waits for segment.ms; here close it at once
    log.compact(now=float(commits + 1))
    return {
        "written": written,
        "kept": len(log),
        "rebuilt": log.rebuild(),
    }
