"""Chapter 7's scenario: a topic as a partitioned log, read by consumer groups at their own offsets.

:class:`KafkaLogRun` is what the chapter's widget drives and its tests script. Every button is a
method (:meth:`~KafkaLogRun.produce`, :meth:`~KafkaLogRun.consume`, :meth:`~KafkaLogRun.seek`,
:meth:`~KafkaLogRun.kill_member`, :meth:`~KafkaLogRun.advance`, ...) and every picture is plain
data: each partition's records with their offsets (:meth:`~KafkaLogRun.logs`), the log start and
end offsets, each group's committed offsets, owners and lag. (Brokers, leaders and in-sync
replicas are the cluster model's business; this scenario is the log itself.)
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from .. import _validate as check
from ..core import Simulation
from ..models.log import PartitionedLog

#: The snapshots :attr:`KafkaLogRun.history` keeps.
HISTORY_LIMIT = 1_000


class KafkaLogRun:
    """A live run of one topic, its partitions, retention and consumer groups.

    Parameters
    ----------
    partitions:
        Number of partitions of the topic.
    strategy:
        The groups' assignor: ``"range"`` (Kafka's default) or ``"roundrobin"``.
    retention_seconds, retention_records, retention_bytes:
        Retention limits per partition (``None``: keep forever). Checked once per simulated
        second.
    keyless:
        How records without a key are spread: ``"roundrobin"`` (easy to follow, the default here)
        or ``"sticky"`` (the Java client's since 2.4, KIP-480: a batch of unkeyed records goes to
        one partition; since 3.3 it also favours faster brokers, KIP-794, which is not modelled).
    topic:
        The topic's name.
    session_timeout:
        Seconds after which a killed member is removed from its group (then the group rebalances).
    seed:
        Seeds the simulation (nothing here is random; the seed is recorded so traces compare).
    """

    def __init__(
        self,
        partitions: int = 3,
        *,
        strategy: Literal["range", "roundrobin"] = "range",
        retention_seconds: float | None = None,
        retention_records: int | None = None,
        retention_bytes: int | None = None,
        keyless: Literal["sticky", "roundrobin"] = "roundrobin",
        topic: str = "orders",
        session_timeout: float = 10.0,
        seed: int = 0,
    ) -> None:
        check.integer("partitions", partitions, minimum=1, maximum=64)
        check.text("topic (the topic's name)", topic)
        self.sim = Simulation(seed=seed)
        self.log = PartitionedLog(
            self.sim,
            topic,
            partitions=partitions,
            keyless=keyless,
            batch_records=1 if keyless == "roundrobin" else 16,
            retention_seconds=retention_seconds,
            retention_records=retention_records,
            retention_bytes=retention_bytes,
        )
        self.strategy = check.choice("strategy", strategy, ("range", "roundrobin"))
        self.session_timeout = check.positive("session_timeout", session_timeout)
        #: Snapshots after every action: time, log start/end offsets, each group's total lag;
        #: the newest :data:`HISTORY_LIMIT` of them (a long run's memory stays bounded).
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LIMIT)
        self._sample()

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def produce(self, key: str | None = None, value: Any = None) -> dict[str, Any]:
        """Produce one record now (keyed records go to ``kafka_partition(key, partitions)``).

        Returns the record as plain data: partition, offset, key, value, timestamp.
        """
        if key is not None:
            check.text("key", key)
        record = self.log.produce(key, value)
        self._sample()
        return record.as_dict()

    def add_group(
        self,
        name: str,
        members: int = 1,
        *,
        auto_offset_reset: Literal["latest", "earliest", "none"] = "latest",
    ) -> list[str]:
        """Create consumer group ``name`` with ``members`` consumers; returns their ids.

        ``auto_offset_reset`` is Kafka's setting, with Kafka's default: ``"latest"`` starts the
        group at the log end (only records produced from now on), ``"earliest"`` at the oldest
        record still stored (all the history), ``"none"`` nowhere (polling raises until a seek).
        """
        check.integer("members", members, minimum=0, maximum=64)
        group = self.log.add_group(
            name,
            strategy=self.strategy,
            auto_offset_reset=auto_offset_reset,
            session_timeout=self.session_timeout,
        )
        for _ in range(members):
            group.join()
        self._sample()
        return group.members

    def remove_group(self, name: str) -> None:
        """Delete group ``name`` and its offsets. The records stay in the log."""
        self.log.remove_group(name)
        self._sample()

    def add_member(self, group: str) -> str:
        """One more consumer joins ``group`` (a rebalance); returns its id."""
        member = self.log.group(group).join()
        self._sample()
        return member

    def remove_member(self, group: str, member: str | None = None) -> str:
        """``member`` (the newest when ``None``) leaves ``group`` cleanly (a rebalance)."""
        g = self.log.group(group)
        if member is None:
            if not g.members:
                raise ValueError(f"group {group!r} has no members to remove")
            member = g.members[-1]
        g.leave(member)
        self._sample()
        return member

    def kill_member(self, group: str, member: str) -> None:
        """``member`` dies: its partitions go unread until ``session_timeout`` passes."""
        self.log.group(group).kill(member)
        self._sample()

    def consume(
        self, group: str, member: str | None = None, max_records: int | None = None
    ) -> list[dict[str, Any]]:
        """``member`` of ``group`` (every live member when ``None``) polls and commits.

        ``max_records`` caps what is read from each owned partition. Returns the records read,
        as plain data with a ``member`` field.
        """
        g = self.log.group(group)
        if member is None:
            polled = g.poll_all(max_records)
        else:
            polled = {member: g.poll(member, max_records)}
        self._sample()
        return [{**r.as_dict(), "member": m} for m, records in polled.items() for r in records]

    def seek(self, group: str, partition: int, offset: int) -> None:
        """Move ``group``'s committed offset of ``partition`` to ``offset`` (rewind or skip).

        Any offset >= 0 is accepted, as by Kafka's ``seek``; if it no longer exists (deleted by
        retention, or beyond the log end) the next :meth:`consume` resets it by the group's
        ``auto_offset_reset``.
        """
        self.log.seek(group, partition, offset)
        self._sample()

    def seek_to_beginning(self, group: str, partition: int | None = None) -> None:
        """Rewind ``group`` to the oldest stored record of ``partition`` (all when ``None``)."""
        self.log.seek_to_beginning(group, None if partition is None else [partition])
        self._sample()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (retention checks and session timeouts run);
        at most a day per call."""
        check.positive("seconds", seconds)
        check.number("seconds", seconds, maximum=86_400.0)
        self.sim.advance(seconds)
        self.sim.settle()  # events due exactly now (a retention check) happen before we look
        self._sample()

    def set_retention(self, seconds: float | None) -> None:
        """Change the topic's ``retention.ms`` (here ``seconds``; ``None``: keep forever). It
        applies from the next retention check, one simulated second later at most."""
        self.log.set_retention_seconds(seconds)
        self._sample()

    @property
    def retention_seconds(self) -> float | None:
        """The topic's time limit on records (``None``: none)."""
        return self.log.partitions[0].retention_seconds

    # -- state ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    def logs(self) -> dict[int, list[dict[str, Any]]]:
        """Partition -> its stored records (plain data), oldest first."""
        return {p.index: [r.as_dict() for r in p.records] for p in self.log.partitions}

    def offsets(self) -> dict[int, dict[str, int]]:
        """Partition -> ``log_start_offset`` and ``log_end_offset``."""
        return {
            p.index: {"log_start_offset": p.log_start_offset, "log_end_offset": p.log_end_offset}
            for p in self.log.partitions
        }

    def committed(self) -> dict[str, dict[int, int | None]]:
        """Group -> partition -> committed offset (the next offset it will read; ``None``: none)."""
        return {name: g.committed() for name, g in self.log.groups.items()}

    def lag(self) -> dict[str, dict[int, int | None]]:
        """Group -> partition -> lag = log end offset - committed offset (``None``: no offset)."""
        return {name: g.lag() for name, g in self.log.groups.items()}

    def group_lag(self) -> dict[str, int]:
        """Group -> total lag over all partitions."""
        return {name: g.total_lag() for name, g in self.log.groups.items()}

    def assignments(self) -> dict[str, dict[str, list[int]]]:
        """Group -> member -> the partitions it owns."""
        return {name: g.assignment() for name, g in self.log.groups.items()}

    def summary(self) -> str:
        """One line describing the state of the run."""
        parts = ", ".join(
            f"p{p.index} [{p.log_start_offset}..{p.log_end_offset})" for p in self.log.partitions
        )
        lags = (
            "; ".join(
                f"{name} lag {g.total_lag()} ("
                + ", ".join(f"p{p}:{'-' if lag is None else lag}" for p, lag in g.lag().items())
                + ")"
                for name, g in self.log.groups.items()
            )
            or "no groups"
        )
        return f"t={self.now:g}s: topic {self.log.name} offsets {parts}; {lags}"

    # -- internals -----------------------------------------------------------------------------
    def _sample(self) -> None:
        snapshot = {
            "time": self.sim.now,
            "log_start_offset": self.log.log_start_offsets(),
            "log_end_offset": self.log.log_end_offsets(),
            "lag": self.group_lag(),
        }
        if self.history and self.history[-1]["time"] == snapshot["time"]:
            self.history.pop()
        self.history.append(snapshot)


def default_run() -> KafkaLogRun:
    """The chapter's opening picture.

    Topic ``orders`` with 3 partitions and 30 s retention. Groups ``billing`` (2 members; range
    assignor: ``billing-1`` owns partitions 0 and 1, ``billing-2`` partition 2) and
    ``analytics`` (1 member), created before anything is produced, so Kafka's default
    ``auto.offset.reset=latest`` starts them at offset 0. Orders 42, 43 and 44 each go
    created -> paid -> shipped, one record per second, keyed by order: ``order-42`` hashes to
    partition 0, ``order-43`` to 1, ``order-44`` to 2, so each partition holds one order's events
    at offsets 0, 1, 2.

    At t=9 s billing reads all 9 records (lag 0); analytics reads one per partition (lag 2 on
    each, 6 in all); billing rewinds partition 0 to offset 0 and reads order 42's 3 events again.
    Then 25 s pass: at t=34 s retention has deleted the records older than 30 s (timestamps 0..3),
    so the log start offsets are 2, 1, 1 while the end offsets stay 3, 3, 3.
    """
    run = KafkaLogRun(3, retention_seconds=30.0)
    run.add_group("billing", 2)
    run.add_group("analytics", 1)
    for event in ("created", "paid", "shipped"):
        for order in (42, 43, 44):
            run.produce(f"order-{order}", event)
            run.advance(1.0)
    run.consume("billing")
    run.consume("analytics", max_records=1)
    run.seek("billing", 0, 0)
    run.consume("billing")
    run.advance(25.0)
    return run
