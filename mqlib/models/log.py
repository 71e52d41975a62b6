"""Kafka's data model: a topic is a set of partitions, each partition an append-only log.

A queue forgets a message once it is acknowledged. A log does not: it keeps every record, in
order, and each reader only remembers *where it is*. Three pieces make that work.

**A partition is an append-only log.** :class:`Partition` gives each appended record the next
*offset*: 0, 1, 2, ... Records are never changed and never removed by reading. The first offset
still stored is the *log start offset*; the offset the next record will get is the *log end
offset* (one past the last record). An empty, new partition has both at 0.

**Retention removes whole records from the head.** Old records go when they are older than
``retention_seconds`` (Kafka's ``retention.ms``, here in simulated seconds), or when the partition
holds more than ``retention_records`` records or ``retention_bytes`` bytes (Kafka's
``retention.bytes``). Deleting moves the log start offset forward; offsets are never reused, so
offset 7 means the same record forever, or nothing at all once it is gone. (Kafka deletes whole
*segment files* of many records, so its log start offset jumps in bigger steps, and it has no
record-count limit: ``retention_records`` is a teaching aid that makes the picture easy to read.)

**A consumer group keeps one committed offset per partition.** :class:`LogConsumerGroup` shares
the partitions among its members with Kafka's range or round-robin assignor
(:func:`~mqlib.models.assignors.assign`), so a partition never has two owners in a group, and it
keeps, for each partition, the *committed offset*: the offset of the next record the group will
read. Two groups keep separate offsets, so they read the same records independently; moving an
offset back (:meth:`LogConsumerGroup.seek`) makes the group read records again.

**Where a group starts** is Kafka's ``auto.offset.reset``, used whenever the group has no
committed offset for a partition or its offset no longer exists (retention deleted it, or a seek
went past the end). Kafka's default, ``"latest"``, jumps to the log end offset and skips the
history; ``"earliest"`` starts at the log start offset; ``"none"`` raises instead of guessing.
This model's default is Kafka's, so a new group reads only what is produced after it is created;
pass ``auto_offset_reset="earliest"`` to read the history.

**Lag** is counted as Kafka's tools count it: ``lag = log end offset - committed offset``, the
number of records written that the group has not yet read. With offsets 0..9 written (log end
offset 10) and the group's committed offset 6 (it has read 0..5), the lag is 4. This is the lesson's
"last produced - last consumed", with both sides shifted by one.

A consumer loop against this model reads like one against Kafka::

    group = log.add_group("billing")
    member = group.join()
    while True:
        for record in group.poll(member):     # reads from the member's partitions, then commits
            handle(record)
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .. import _validate as check
from ..core import Simulation
from .assignors import assign
from .partitioner import KEYLESS_STRATEGIES, Partitioner

__all__ = [
    "OFFSET_RESET_POLICIES",
    "LogConsumerGroup",
    "NoOffsetError",
    "OffsetOutOfRangeError",
    "Partition",
    "PartitionedLog",
    "Record",
]

OFFSET_RESET_POLICIES = ("latest", "earliest", "none")
"""What a group does for a partition it has no valid offset for (Kafka's ``auto.offset.reset``,
whose default is ``"latest"``): start at the log end offset, start at the log start offset, or
raise (:class:`NoOffsetError` when there is no committed offset, :class:`OffsetOutOfRangeError`
when the committed offset is gone)."""


GROUP_STRATEGIES = ("range", "roundrobin")
"""The assignors a :class:`LogConsumerGroup` can use (the sticky ones live in
:mod:`mqlib.models.rebalance`, which models what a rebalance does to work in flight)."""


class OffsetOutOfRangeError(ValueError):
    """An offset before the log start offset or after the log end offset of a partition.

    Named after Kafka's ``OffsetOutOfRangeException``. It is a :class:`ValueError`, so code that
    catches bad arguments in general catches it too.
    """

    def __init__(self, name: str, offset: int, partition: Partition) -> None:
        self.offset = offset
        self.partition = partition.index
        self.log_start_offset = partition.log_start_offset
        self.log_end_offset = partition.log_end_offset
        super().__init__(
            f"{name} {offset} is out of range for partition {partition.label}: valid offsets are "
            f"{partition.log_start_offset}..{partition.log_end_offset} (log start offset "
            f"{partition.log_start_offset}; log end offset {partition.log_end_offset}, where "
            f"the next record will be written)"
        )


class NoOffsetError(ValueError):
    """A group with ``auto_offset_reset="none"`` polled a partition it has no committed offset for.

    Named after Kafka's ``NoOffsetForPartitionException``: with ``auto.offset.reset=none`` the
    consumer refuses to guess where to start; set one with :meth:`LogConsumerGroup.seek`.
    """

    def __init__(self, group: str, partition: Partition) -> None:
        self.group = group
        self.partition = partition.index
        super().__init__(
            f"group {group!r} has no committed offset for partition {partition.label} and "
            "auto_offset_reset is 'none': seek to an offset first (or use 'earliest' / 'latest')"
        )


@dataclass(frozen=True)
class Record:
    """One record in a partition. It never changes once written.

    ``timestamp`` is the simulated time (seconds) it was appended; ``size_bytes`` is what
    ``retention_bytes`` counts.
    """

    topic: str
    partition: int
    offset: int
    key: str | bytes | None
    value: Any
    timestamp: float
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """A plain-data view (keys as text, for tables and JSON)."""
        key = self.key.decode("utf-8", "replace") if isinstance(self.key, bytes) else self.key
        return {
            "partition": self.partition,
            "offset": self.offset,
            "key": key,
            "value": self.value,
            "timestamp": self.timestamp,
        }


def _size_of(part: Any) -> int:
    if part is None:
        return 0
    if isinstance(part, bytes | bytearray):
        return len(part)
    if isinstance(part, str):
        return len(part.encode("utf-8", "surrogatepass"))
    return len(str(part).encode("utf-8", "surrogatepass"))


def _check_key(key: Any) -> str | bytes | None:
    if key is None or isinstance(key, str | bytes):
        return key
    if isinstance(key, bytearray):
        return bytes(key)
    raise TypeError(f"key must be a str, bytes or None, got {key!r} ({type(key).__name__})")


def _optional(kind: str, name: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "seconds":
        return check.positive(name, value)
    return check.integer(name, value, minimum=1)


class Partition:
    """One partition's log: append at the end, read from any offset, delete only from the head.

    This is the data structure a broker hosts (a leader or a follower replica holds one each);
    it knows nothing of time except the timestamps it is given, so a broker model can drive it.

    Parameters
    ----------
    topic, index:
        Which topic-partition this is (used in messages: ``orders-0``).
    retention_seconds, retention_records, retention_bytes:
        Limits applied by :meth:`enforce_retention`; ``None`` means no limit of that kind.

    >>> p = Partition("orders", 0)
    >>> [p.append(key="k", value=v, timestamp=0.0).offset for v in "abc"]
    [0, 1, 2]
    >>> [r.value for r in p.read(1)]        # reading returns records and removes none
    ['b', 'c']
    >>> p.log_start_offset, p.log_end_offset
    (0, 3)
    """

    def __init__(
        self,
        topic: str = "topic",
        index: int = 0,
        *,
        retention_seconds: float | None = None,
        retention_records: int | None = None,
        retention_bytes: int | None = None,
    ) -> None:
        self.topic = check.text("topic", topic)
        self.index = check.integer("index", index, minimum=0, maximum=100_000)
        self.retention_seconds = _optional("seconds", "retention_seconds", retention_seconds)
        self.retention_records = _optional("count", "retention_records", retention_records)
        self.retention_bytes = _optional("count", "retention_bytes", retention_bytes)
        self._records: list[Record] = []
        self._start = 0  # the log start offset: the offset of self._records[0], if any
        self._bytes = 0

    # -- offsets -------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``topic-index``, as Kafka names a topic-partition."""
        return f"{self.topic}-{self.index}"

    @property
    def log_start_offset(self) -> int:
        """The offset of the oldest record still stored (equals the log end offset when empty)."""
        return self._start

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record will get: one past the last record."""
        return self._start + len(self._records)

    @property
    def size_bytes(self) -> int:
        """Bytes of the records still stored."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> tuple[Record, ...]:
        """The stored records, oldest first."""
        return tuple(self._records)

    # -- writing -------------------------------------------------------------------------------
    def append(
        self,
        key: str | bytes | None = None,
        value: Any = None,
        *,
        timestamp: float = 0.0,
        size_bytes: int | None = None,
    ) -> Record:
        """Write a record at the log end offset and return it.

        ``size_bytes`` defaults to the UTF-8 length of the key plus that of the value (``str()``
        of the value when it is neither text nor bytes).
        """
        key = _check_key(key)
        check.non_negative("timestamp", timestamp)
        if self._records and timestamp < self._records[-1].timestamp:
            raise ValueError(
                f"timestamp must not go back in time: got {timestamp!r}, but the last record of "
                f"{self.label} has timestamp {self._records[-1].timestamp!r}"
            )
        if size_bytes is None:
            size_bytes = _size_of(key) + _size_of(value)
        else:
            check.integer("size_bytes", size_bytes, minimum=0, maximum=2**40)
        record = Record(
            self.topic, self.index, self.log_end_offset, key, value, timestamp, size_bytes
        )
        self._records.append(record)
        self._bytes += size_bytes
        return record

    def truncate(self, end_offset: int) -> list[Record]:
        """Remove the records at ``end_offset`` and after; return them.

        A follower replica does this when it must drop records its new leader never had. The
        next record appended gets ``end_offset`` again: these offsets were never seen by a
        reader that respects the high watermark, so reusing them is safe (the only reuse there is).
        """
        self._check_offset("end_offset", end_offset)
        cut = end_offset - self._start
        removed = self._records[cut:]
        del self._records[cut:]
        self._bytes -= sum(r.size_bytes for r in removed)
        return removed

    # -- reading -------------------------------------------------------------------------------
    def read(self, offset: int, max_records: int | None = None) -> list[Record]:
        """The records from ``offset`` on (at most ``max_records``). Nothing is removed.

        ``offset`` may be anything from the log start offset to the log end offset; at the log
        end offset there is nothing yet, so the result is empty. Anything else raises
        :class:`OffsetOutOfRangeError`.
        """
        self._check_offset("offset", offset)
        if max_records is not None:
            check.integer("max_records", max_records, minimum=1, maximum=10**9)
        begin = offset - self._start
        end = len(self._records) if max_records is None else begin + max_records
        return self._records[begin:end]

    def record_at(self, offset: int) -> Record:
        """The record stored at ``offset``."""
        self._check_offset("offset", offset)
        if offset == self.log_end_offset:
            raise OffsetOutOfRangeError("offset", offset, self)  # not written yet
        return self._records[offset - self._start]

    # -- retention -----------------------------------------------------------------------------
    def enforce_retention(self, now: float) -> list[Record]:
        """Delete records from the head that break a retention limit at time ``now``; return them.

        A record is too old when ``now - timestamp > retention_seconds``. Then, while the
        partition holds more than ``retention_records`` records or more than ``retention_bytes``
        bytes, the oldest record goes. Only whole records are deleted, only from the head.
        """
        check.non_negative("now", now)
        drop = 0
        if self.retention_seconds is not None:
            while (
                drop < len(self._records)
                and now - self._records[drop].timestamp > self.retention_seconds
            ):
                drop += 1
        if self.retention_records is not None:
            drop = max(drop, len(self._records) - self.retention_records)
        if self.retention_bytes is not None:
            kept = self._bytes - sum(r.size_bytes for r in self._records[:drop])
            while kept > self.retention_bytes and drop < len(self._records):
                kept -= self._records[drop].size_bytes
                drop += 1
        deleted = self._records[:drop]
        del self._records[:drop]
        self._start += drop
        self._bytes -= sum(r.size_bytes for r in deleted)
        return deleted

    def _check_offset(self, name: str, offset: Any) -> int:
        check.integer(name, offset)
        if not self.log_start_offset <= offset <= self.log_end_offset:
            raise OffsetOutOfRangeError(name, offset, self)
        return offset

    def __repr__(self) -> str:
        return (
            f"Partition({self.label}, log_start_offset={self.log_start_offset}, "
            f"log_end_offset={self.log_end_offset})"
        )


@dataclass
class _Member:
    alive: bool = True
    incarnation: int = 0  # bumped on every kill, so a stale session timer does nothing
    joined: int = 0  # join order within the group


class LogConsumerGroup:
    """A Kafka consumer group reading one :class:`PartitionedLog`.

    Create it with :meth:`PartitionedLog.add_group`. Members :meth:`join`, :meth:`leave` or die
    (:meth:`kill`); every change of membership is a *rebalance*: the group runs its assignor
    (``"range"`` or ``"roundrobin"``) over the current members and bumps :attr:`generation`.
    A dead member keeps its partitions, unread, until ``session_timeout`` seconds pass without a
    heartbeat (Kafka's ``session.timeout.ms``, 45 s by default); then it is removed and the
    group rebalances. The committed offsets belong to the group, not to members, so whoever owns a
    partition next continues where the previous owner stopped.

    When the group is created, each partition's committed offset is set by
    ``auto_offset_reset`` (Kafka's ``auto.offset.reset``): ``"latest"``, Kafka's default (the log
    end offset: only what is produced from now on), ``"earliest"`` (the log start offset: all the
    history still stored) or ``"none"`` (no offset at all; :meth:`poll` raises
    :class:`NoOffsetError` until a :meth:`seek` sets one). If the committed offset later stops
    existing (retention deleted the records, or a seek went beyond the log end), the next
    :meth:`poll` of that partition resets it the same way and records an ``offset_reset`` event;
    with ``"none"`` it raises :class:`OffsetOutOfRangeError`, as a Kafka consumer does. (A Kafka
    consumer looks the reset position up at its first fetch, not when the group is created;
    the two differ only for records written between creating this model's group and its first
    poll.)
    """

    def __init__(
        self,
        log: PartitionedLog,
        name: str,
        *,
        strategy: Literal["range", "roundrobin"] = "range",
        auto_offset_reset: Literal["latest", "earliest", "none"] = "latest",
        session_timeout: float = 45.0,
    ) -> None:
        if not isinstance(log, PartitionedLog):
            raise TypeError(f"log must be a PartitionedLog, got {type(log).__name__}")
        self.log = log
        self.name = check.text("name", name)
        self.strategy = check.choice("strategy", strategy, GROUP_STRATEGIES)
        self.auto_offset_reset = check.choice(
            "auto_offset_reset", auto_offset_reset, OFFSET_RESET_POLICIES
        )
        self.session_timeout = check.positive("session_timeout", session_timeout)
        self.generation = 0
        self._members: dict[str, _Member] = {}
        self._assignment: dict[str, list[int]] = {}  # only the members that own partitions
        # Range and round-robin give one topic's P partitions to the first P members in sorted
        # id order; the others sit idle. So a rebalance needs only those first P ids: kept
        # sorted in _head, the rest in the min-heap _rest (with stale entries skipped when
        # popped). Joining and leaving then cost O(log n), not a pass over every member.
        self._head: list[str] = []
        self._rest: list[str] = []
        self._joins = 0
        self._next_member = 1
        self._committed: dict[int, int | None] = {
            p.index: self._reset_offset(p) for p in log.partitions
        }
        self.consumed: dict[str, int] = {}  # member -> records it polled (history, kept on leave)

    # -- membership ----------------------------------------------------------------------------
    @property
    def members(self) -> list[str]:
        """Members in the group, alive or dead-but-not-yet-timed-out, in join order."""
        return list(self._members)

    def alive(self, member: str) -> bool:
        """Is ``member`` heartbeating (not killed)?"""
        return self._member(member).alive

    def join(self, member: str | None = None) -> str:
        """A consumer joins the group; returns its member id (``<group>-1``, ``<group>-2``, ...).

        The group rebalances at once.
        """
        if member is None:
            while f"{self.name}-{self._next_member}" in self._members:
                self._next_member += 1
            member = f"{self.name}-{self._next_member}"
            self._next_member += 1
        check.text("member", member)
        if member in self._members:
            raise ValueError(f"member {member!r} is already in group {self.name!r}")
        self._joins += 1
        self._members[member] = _Member(joined=self._joins)
        self._head_add(member)
        self.consumed.setdefault(member, 0)
        self.log.sim.record("member_join", group=self.name, member=member)
        self._rebalance("join")
        return member

    def leave(self, member: str) -> None:
        """``member`` leaves the group (a clean shutdown, or an operator removing it); rebalance."""
        self._member(member)
        del self._members[member]
        self._head_remove(member)
        self.log.sim.record("member_leave", group=self.name, member=member)
        self._rebalance("leave")

    def kill(self, member: str) -> None:
        """``member`` dies: it stops polling and heartbeating but keeps its partitions until the
        session timeout expires, ``session_timeout`` simulated seconds from now."""
        state = self._member(member)
        if not state.alive:
            raise ValueError(f"member {member!r} of group {self.name!r} is already dead")
        state.alive = False
        state.incarnation += 1
        incarnation = state.incarnation
        self.log.sim.record("member_dead", group=self.name, member=member)
        timer = self.log.sim.timeout(self.session_timeout)
        timer.callbacks.append(lambda _e: self._session_expired(member, incarnation))

    def _session_expired(self, member: str, incarnation: int) -> None:
        state = self._members.get(member)
        if state is None or state.alive or state.incarnation != incarnation:
            return  # it left, or was removed already
        del self._members[member]
        self._head_remove(member)
        self.log.sim.record("session_timeout", group=self.name, member=member)
        self._rebalance("session_timeout")

    def _head_add(self, member: str) -> None:
        head, limit = self._head, len(self.log.partitions)
        if len(head) < limit:
            bisect.insort(head, member)
        elif member < head[-1]:
            bisect.insort(head, member)
            heapq.heappush(self._rest, head.pop())
        else:
            heapq.heappush(self._rest, member)

    def _head_remove(self, member: str) -> None:
        head, rest = self._head, self._rest
        i = bisect.bisect_left(head, member)
        if i == len(head) or head[i] != member:
            return  # it is in _rest: a stale entry now, skipped when popped
        del head[i]
        while rest:
            candidate = heapq.heappop(rest)
            if candidate in self._members and candidate not in head:
                bisect.insort(head, candidate)
                break

    def _rebalance(self, reason: str) -> None:
        self.generation += 1
        if self._head:
            topic = self.log.name
            # Only the first P members (sorted) can own anything, so the assignor's answer for
            # them is its answer for the whole group; the others get [].
            result = assign(
                self.strategy,
                {m: [topic] for m in self._head},
                {topic: len(self.log.partitions)},
            )
            in_join_order = sorted(self._head, key=lambda m: self._members[m].joined)
            self._assignment = {m: [p for _, p in result[m]] for m in in_join_order}
        else:
            self._assignment = {}
        # The trace names the members that own partitions (all of them while there are no more
        # members than partitions) and counts the idle ones, so one event stays small however
        # many members join.
        idle = len(self._members) - len(self._assignment)
        extra = {"idle": idle} if idle else {}
        self.log.sim.record(
            "rebalance",
            group=self.name,
            generation=self.generation,
            reason=reason,
            assignment={m: list(ps) for m, ps in self._assignment.items()},
            **extra,
        )

    # -- ownership -----------------------------------------------------------------------------
    def assignment(self) -> dict[str, list[int]]:
        """Member -> the partitions it owns, in join order of the members (``[]`` for an idle
        member: there are more members than partitions)."""
        owned = self._assignment
        return {m: list(owned.get(m, ())) for m in self._members}

    def owners(self) -> dict[int, str | None]:
        """Partition -> its owner in this group, or ``None`` when the group has no members."""
        result: dict[int, str | None] = {p.index: None for p in self.log.partitions}
        for member, partitions in self._assignment.items():
            for p in partitions:
                result[p] = member
        return result

    # -- reading -------------------------------------------------------------------------------
    def poll(self, member: str, max_records: int | None = None) -> list[Record]:
        """Read what is new in ``member``'s partitions and commit the new offsets.

        Reads at most ``max_records`` from *each* owned partition (all new records when
        ``None``), partitions in ascending order, and returns them. The group's committed offset
        of each partition moves past what was returned: commit right after the read, as
        ``enable.auto.commit`` does when processing takes no time. Reading deletes nothing.
        """
        state = self._member(member)
        if not state.alive:
            raise ValueError(f"member {member!r} of group {self.name!r} is dead and cannot poll")
        if max_records is not None:
            check.integer("max_records", max_records, minimum=1, maximum=10**9)
        out: list[Record] = []
        for index in self._assignment.get(member, []):
            partition = self.log.partitions[index]
            offset = self._committed[index]
            if offset is None:
                raise NoOffsetError(self.name, partition)
            if not partition.log_start_offset <= offset <= partition.log_end_offset:
                # The fetch fails with OFFSET_OUT_OF_RANGE; the consumer applies its reset policy.
                if self.auto_offset_reset == "none":
                    raise OffsetOutOfRangeError("committed offset", offset, partition)
                new = self._reset_offset(partition)
                self.log.sim.record(
                    "offset_reset", group=self.name, partition=index, offset=offset, reset_to=new
                )
                offset = self._committed[index] = new
            records = partition.read(offset, max_records)
            if records:
                self._committed[index] = records[-1].offset + 1
                self.log.sim.record(
                    "fetch",
                    group=self.name,
                    member=member,
                    partition=index,
                    first_offset=records[0].offset,
                    last_offset=records[-1].offset,
                )
                out.extend(records)
        self.consumed[member] += len(out)
        return out

    def poll_all(self, max_records: int | None = None) -> dict[str, list[Record]]:
        """Every live member polls once, in join order; member -> its records."""
        if max_records is not None:
            check.integer("max_records", max_records, minimum=1, maximum=10**9)
        return {m: self.poll(m, max_records) for m, s in list(self._members.items()) if s.alive}

    # -- offsets -------------------------------------------------------------------------------
    def committed(self) -> dict[int, int | None]:
        """Partition -> committed offset: the offset of the next record the group will read
        (``None``: no committed offset, only with ``auto_offset_reset="none"``)."""
        return dict(self._committed)

    def seek(self, partition: int, offset: int) -> None:
        """Set the group's committed offset of ``partition`` to ``offset``.

        Moving it back makes the group read records again (replay); forward skips records.
        Like Kafka's ``KafkaConsumer.seek``, any offset >= 0 is accepted, even one retention has
        deleted or one past the log end: the next :meth:`poll` finds it out of range and applies
        ``auto_offset_reset`` (or raises :class:`OffsetOutOfRangeError` with ``"none"``).
        """
        p = self.log._partition(partition)
        check.integer("offset", offset, minimum=0, maximum=2**63 - 1)
        self._committed[p.index] = offset
        self.log.sim.record("seek", group=self.name, partition=p.index, offset=offset)

    def seek_to_beginning(self, partitions: Iterable[int] | None = None) -> None:
        """Move to the log start offset of ``partitions`` (all partitions when ``None``)."""
        for p in self._partitions(partitions):
            self.seek(p.index, p.log_start_offset)

    def seek_to_end(self, partitions: Iterable[int] | None = None) -> None:
        """Move to the log end offset of ``partitions`` (all when ``None``): skip the backlog."""
        for p in self._partitions(partitions):
            self.seek(p.index, p.log_end_offset)

    def lag(self) -> dict[int, int | None]:
        """Partition -> ``log end offset - committed offset``: records written but not yet read.

        ``None`` where the group has no committed offset (Kafka's tools print ``-``). An offset
        beyond the log end counts as lag 0, not a negative number.
        """
        result: dict[int, int | None] = {}
        for p in self.log.partitions:
            offset = self._committed[p.index]
            result[p.index] = None if offset is None else max(0, p.log_end_offset - offset)
        return result

    def total_lag(self) -> int:
        """The group's lag summed over the partitions that have a committed offset."""
        return sum(lag for lag in self.lag().values() if lag is not None)

    # -- internals -----------------------------------------------------------------------------
    def _member(self, member: Any) -> _Member:
        check.text("member", member)
        if member not in self._members:
            known = ", ".join(repr(m) for m in self._members) or "no members"
            raise ValueError(f"member {member!r} is not in group {self.name!r} (it has {known})")
        return self._members[member]

    def _partitions(self, partitions: Iterable[int] | None) -> list[Partition]:
        if partitions is None:
            return list(self.log.partitions)
        check.collection("partitions", partitions)
        for p in partitions:
            if not isinstance(p, int) or isinstance(p, bool):
                raise TypeError(
                    f"partitions must be a list of partition numbers or None, "
                    f"got {check._show(p)} ({type(p).__name__}) in it"
                )
        return [self.log._partition(p) for p in partitions]

    def _reset_offset(self, partition: Partition) -> int | None:
        if self.auto_offset_reset == "earliest":
            return partition.log_start_offset
        if self.auto_offset_reset == "latest":
            return partition.log_end_offset
        return None  # "none": no offset until the application seeks

    def __repr__(self) -> str:
        return (
            f"LogConsumerGroup({self.name!r}, strategy={self.strategy!r}, "
            f"generation={self.generation}, members={self.members})"
        )


class PartitionedLog:
    """A Kafka topic: ``partitions`` append-only logs, a producer-side partitioner, retention and
    consumer groups, living on a :class:`~mqlib.core.Simulation` clock.

    Parameters
    ----------
    sim:
        The simulation: record timestamps and retention use its clock; events go to its trace.
    name:
        The topic name.
    partitions:
        How many partitions (1 or more).
    keyless, batch_records:
        How records without a key are spread (see :class:`~mqlib.models.partitioner.Partitioner`).
        Records with a key always go to ``kafka_partition(key, partitions)``.
    retention_seconds, retention_records, retention_bytes:
        Per-partition retention limits (``None`` for none). They are enforced every
        ``retention_check_interval`` simulated seconds (Kafka's
        ``log.retention.check.interval.ms``, 5 minutes by default; 1 s here so the chapter's
        pictures change quickly), so an expired record lingers until the next check, as in
        Kafka; :meth:`enforce_retention` runs a check now. With a limit set, the checker is a
        process that never ends, so drive the clock with ``sim.advance(seconds)``, not with an
        open-ended ``sim.run()``.
    """

    def __init__(
        self,
        sim: Simulation,
        name: str = "orders",
        *,
        partitions: int = 3,
        keyless: Literal["sticky", "roundrobin"] = "sticky",
        batch_records: int = 16,
        retention_seconds: float | None = None,
        retention_records: int | None = None,
        retention_bytes: int | None = None,
        retention_check_interval: float = 1.0,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.name = check.text("name", name)
        check.integer("partitions", partitions, minimum=1, maximum=10_000)
        check.choice("keyless", keyless, KEYLESS_STRATEGIES)
        self.partitioner = Partitioner(partitions, keyless=keyless, batch_records=batch_records)
        self.retention_check_interval = check.positive(
            "retention_check_interval", retention_check_interval
        )
        self.partitions = [
            Partition(
                name,
                i,
                retention_seconds=retention_seconds,
                retention_records=retention_records,
                retention_bytes=retention_bytes,
            )
            for i in range(partitions)
        ]
        self.groups: dict[str, LogConsumerGroup] = {}
        if any(v is not None for v in (retention_seconds, retention_records, retention_bytes)):
            self.sim.process(self._retention_checker())

    # -- producing -----------------------------------------------------------------------------
    def produce(
        self,
        key: str | bytes | None = None,
        value: Any = None,
        *,
        partition: int | None = None,
        size_bytes: int | None = None,
    ) -> Record:
        """Append a record to the partition the partitioner picks (or to ``partition``).

        A record with a key goes to ``kafka_partition(key, partitions)`` (the Java client's default
        partitioner; librdkafka-based clients default to a CRC32 one instead), so all records of
        one key land in one partition, in the order they were produced.
        """
        key = _check_key(key)
        if partition is None:
            index = self.partitioner.partition(key)
        else:
            index = self._partition(partition).index
        record = self.partitions[index].append(
            key, value, timestamp=self.sim.now, size_bytes=size_bytes
        )
        self.sim.record(
            "produce",
            topic=self.name,
            partition=index,
            offset=record.offset,
            key=record.as_dict()["key"],
            value=_plain(value),
        )
        return record

    def read(self, partition: int, offset: int, max_records: int | None = None) -> list[Record]:
        """Read ``partition`` from ``offset`` without any group (a stand-alone reader)."""
        return self._partition(partition).read(offset, max_records)

    # -- consumer groups -----------------------------------------------------------------------
    def add_group(
        self,
        name: str,
        *,
        strategy: Literal["range", "roundrobin"] = "range",
        auto_offset_reset: Literal["latest", "earliest", "none"] = "latest",
        session_timeout: float = 45.0,
    ) -> LogConsumerGroup:
        """Create consumer group ``name`` (no members yet; :meth:`LogConsumerGroup.join` adds).

        ``auto_offset_reset`` defaults to Kafka's ``"latest"``: the group starts at the log end
        offset. Use ``"earliest"`` to read the history still stored.
        """
        check.text("name", name)
        if name in self.groups:
            raise ValueError(
                f"name {name!r} is taken: a group of that name already exists on "
                f"topic {self.name!r}"
            )
        group = LogConsumerGroup(
            self,
            name,
            strategy=strategy,
            auto_offset_reset=auto_offset_reset,
            session_timeout=session_timeout,
        )
        self.groups[name] = group
        self.sim.record("group_created", group=name, committed=_str_keys(group.committed()))
        return group

    def remove_group(self, name: str) -> None:
        """Delete consumer group ``name`` and its committed offsets. The records stay."""
        self.group(name)
        del self.groups[name]
        self.sim.record("group_removed", group=name)

    def group(self, name: str) -> LogConsumerGroup:
        """The consumer group called ``name``."""
        check.text("group", name)
        if name not in self.groups:
            known = ", ".join(repr(g) for g in self.groups) or "no groups"
            raise ValueError(
                f"group {name!r} does not exist on topic {self.name!r} (it has {known})"
            )
        return self.groups[name]

    def seek(self, group: str, partition: int, offset: int) -> None:
        """Set ``group``'s committed offset of ``partition`` (see :meth:`LogConsumerGroup.seek`)."""
        self.group(group).seek(partition, offset)

    def seek_to_beginning(self, group: str, partitions: Iterable[int] | None = None) -> None:
        """Rewind ``group`` to the log start offset of ``partitions`` (all when ``None``)."""
        self.group(group).seek_to_beginning(partitions)

    # -- state ---------------------------------------------------------------------------------
    def log_start_offsets(self) -> dict[int, int]:
        """Partition -> log start offset."""
        return {p.index: p.log_start_offset for p in self.partitions}

    def log_end_offsets(self) -> dict[int, int]:
        """Partition -> log end offset."""
        return {p.index: p.log_end_offset for p in self.partitions}

    def lag(self, group: str) -> dict[int, int]:
        """Partition -> ``group``'s lag (log end offset - committed offset)."""
        return self.group(group).lag()

    # -- retention -----------------------------------------------------------------------------
    def enforce_retention(self) -> int:
        """Apply the retention limits to every partition now; return how many records went."""
        total = 0
        for p in self.partitions:
            deleted = p.enforce_retention(self.sim.now)
            if deleted:
                total += len(deleted)
                self.sim.record(
                    "retention_delete",
                    topic=self.name,
                    partition=p.index,
                    first_offset=deleted[0].offset,
                    last_offset=deleted[-1].offset,
                    log_start_offset=p.log_start_offset,
                )
        return total

    def set_retention_seconds(self, seconds: float | None) -> None:
        """Change every partition's ``retention_seconds`` (Kafka's ``retention.ms``, which a
        topic may change while it runs, e.g. with ``kafka-configs.sh --alter``); ``None`` keeps
        records forever. It applies from the next retention check."""
        value = _optional("seconds", "seconds", seconds)
        had_limit = any(
            v is not None
            for p in self.partitions
            for v in (p.retention_seconds, p.retention_records, p.retention_bytes)
        )
        for p in self.partitions:
            p.retention_seconds = value
        self.sim.record("config", topic=self.name, retention_seconds=value)
        if value is not None and not had_limit:  # no checker runs yet
            self.sim.process(self._retention_checker())

    def _retention_checker(self) -> Any:
        while True:
            yield self.sim.timeout(self.retention_check_interval)
            self.enforce_retention()

    # -- internals -----------------------------------------------------------------------------
    def _partition(self, partition: Any) -> Partition:
        check.integer("partition", partition, minimum=0, maximum=len(self.partitions) - 1)
        return self.partitions[partition]

    def __repr__(self) -> str:
        return (
            f"PartitionedLog({self.name!r}, partitions={len(self.partitions)}, "
            f"groups={list(self.groups)})"
        )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def _str_keys(mapping: dict[int, Any]) -> dict[str, Any]:
    # JSON object keys are strings; keep the trace identical before and after a JSON round trip.
    return {str(k): v for k, v in mapping.items()}
