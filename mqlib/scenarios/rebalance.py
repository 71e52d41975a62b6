"""Chapter 7's rebalancing experiments: what a join, a slow member and a restart cost a group.

Each function runs :class:`~mqlib.models.rebalance.RebalancingGroup` through one scripted story
and returns plain data (rows of numbers) that the chapter prints and the tests pin. All of them
use 6 partitions, 3 members at the start, 0.1 s per record, commits every 5 s (Kafka's
``auto.commit.interval.ms``) and 3 s per rebalance round.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.rebalance import RebalancingGroup

#: The seconds of :meth:`RebalanceRun.timeline` kept (the chart shows the newest 60).
TIMELINE_SECONDS = 1_000

__all__ = [
    "RebalanceRun",
    "compare_join",
    "default_run",
    "lost_commit_run",
    "restart_run",
    "slow_member_run",
]


def _group(seed: int, **settings: Any) -> RebalancingGroup:
    return RebalancingGroup(Simulation(seed=seed), partitions=6, members=3, **settings)


def _row(group: RebalancingGroup, **labels: Any) -> dict[str, Any]:
    paused = group.paused_seconds()
    return {
        **labels,
        "rounds": len(group.rebalances),
        "partitions_paused": sum(1 for s in paused.values() if s > 0),
        "paused_seconds": round(sum(paused.values()), 6),
        "moved": sorted({p for r in group.rebalances for p in r.get("moved", [])}),
        "duplicates": group.total_duplicates(),
        "processed": group.processed(),
        "assignment": group.assignment(),
    }


#: The longest run :func:`compare_join` simulates, in seconds (``join_at`` < ``until`` <= this).
MAX_UNTIL = 120.0


def compare_join(join_at: float = 11.0, until: float = 30.0, seed: int = 0) -> list[dict[str, Any]]:
    """A fourth member joins at ``join_at`` seconds; the run ends at ``until``.

    One row per protocol (eager with the range assignor, cooperative-sticky) and per commit
    habit (``commit_on_revoke`` off: commits only every 5 s; on: also before giving a partition
    up). The last commit before t=11 s was at t=10 s, so one second of work per partition is
    at risk.
    """
    check.number("join_at", join_at, minimum=0, allow_min=False, maximum=MAX_UNTIL)
    check.number("until", until, minimum=0, allow_min=False, maximum=MAX_UNTIL)
    if until <= join_at:
        raise ValueError(f"until must be later than join_at={join_at!r}, got until={until!r}")
    rows = []
    for protocol in ("eager", "cooperative"):
        for commit_on_revoke in (False, True):
            group = _group(seed, protocol=protocol, commit_on_revoke=commit_on_revoke)
            group.advance(join_at)
            group.join()
            group.advance(until - join_at)
            rows.append(_row(group, protocol=protocol, commit_on_revoke=commit_on_revoke))
    return rows


def slow_member_run(stall: float = 400.0, protocol: str = "eager", seed: int = 0) -> dict[str, Any]:
    """Member ``c2`` gets stuck on one record for ``stall`` seconds at t=11 s (300 s is Kafka's
    ``max.poll.interval.ms``); the run lasts until 30 s after the record finishes."""
    check.positive("stall", stall)
    check.number("stall", stall, maximum=600.0)
    group = _group(seed, protocol=protocol)
    group.advance(11.0)
    group.stall("c2", stall)
    group.advance(stall + 30.0)
    row = _row(group, protocol=protocol, stall=stall)
    row["reasons"] = [r["reason"] for r in group.rebalances if r["round"] == 1]
    row["commit_failures"] = group.commit_failures
    row["evicted_at"] = next(
        (round(e.time, 6) for e in group.sim.trace.of_kind("poll_timeout")), None
    )
    return row


def restart_run(static_membership: bool, downtime: float = 30.0, seed: int = 0) -> dict[str, Any]:
    """Member ``c2`` is restarted at t=11 s and is back ``downtime`` seconds later (a deploy).
    Members commit on shutdown (``commit_on_revoke``), as a clean ``close()`` does."""
    check.boolean("static_membership", static_membership)
    check.positive("downtime", downtime)
    check.number("downtime", downtime, maximum=600.0)
    group = _group(seed, static_membership=static_membership, commit_on_revoke=True)
    group.advance(11.0)
    group.restart("c2", downtime)
    group.advance(downtime + 30.0)
    row = _row(group, static_membership=static_membership, downtime=downtime)
    row["paused"] = group.paused_seconds()
    return row


def lost_commit_run(rebalance_at: float | None = None, seed: int = 0) -> dict[str, Any]:
    """Member ``c1``'s commit at t=10 s is lost on the network; the run ends at t=30 s.

    With ``rebalance_at=None`` nothing else happens. With a time (before the next commit, at
    15 s, for the lost commit to matter) a fourth member joins then.
    """
    group = _group(seed)
    group.advance(9.0)
    group.lose_commits("c1")
    if rebalance_at is not None:
        check.number("rebalance_at", rebalance_at, minimum=9.0, maximum=30.0, allow_min=False)
        group.advance(rebalance_at - 9.0)
        group.join()
        group.advance(30.0 - rebalance_at)
    else:
        group.advance(21.0)
    row = _row(group, rebalance_at=rebalance_at)
    row["duplicates_by_partition"] = group.duplicates()
    row["committed"] = dict(group.committed)
    return row


class RebalanceRun:
    """A live rebalancing group for the chapter's view: every button is a method, and a change of
    settings replays the same actions on a fresh group, so eager and cooperative can be compared
    on one story.

    Time moves in whole seconds; after each second the run samples, per partition, its owner and
    whether anybody processed it (:meth:`timeline`).
    """

    def __init__(
        self,
        partitions: int = 6,
        members: int = 3,
        *,
        protocol: str = "eager",
        commit_on_revoke: bool = False,
        static_membership: bool = False,
        seed: int = 0,
    ) -> None:
        self.settings = {
            "partitions": partitions,
            "members": members,
            "protocol": protocol,
            "commit_on_revoke": commit_on_revoke,
            "static_membership": static_membership,
            "seed": check.integer("seed", seed),
        }
        self.group = RebalancingGroup(
            Simulation(seed=seed),
            partitions,
            members,
            protocol=protocol,
            commit_on_revoke=commit_on_revoke,
            static_membership=static_membership,
        )
        #: Every action so far, in order, as (method name, arguments): what a replay repeats.
        self.actions: list[tuple[str, tuple[Any, ...]]] = []
        self._samples: deque[dict[str, Any]] = deque(
            maxlen=TIMELINE_SECONDS * self.group.partitions
        )
        self._last_counts = self._counts()

    # -- actions -------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let ``seconds`` (a whole number) pass, sampling every second."""
        check.integer("seconds", seconds, minimum=1, maximum=3_600)
        self.actions.append(("advance", (seconds,)))
        for _ in range(seconds):
            before = dict(self.group.owner)
            self.group.advance(1.0)
            counts = self._counts()
            for p in range(self.group.partitions):
                processed = counts[p] - self._last_counts[p]
                self._samples.append(
                    {
                        "time": self.group.now,
                        "partition": p,
                        "owner": self.group.owner[p],
                        # who did the work: the owner when the second began, unless it changed
                        "worker": (before[p] or self.group.owner[p]) if processed else None,
                        "processed": processed,
                    }
                )
            self._last_counts = counts

    def join(self) -> str:
        """A new member joins; returns its id."""
        self.actions.append(("join", ()))
        return self.group.join()

    def leave(self, member: str | None = None) -> str:
        """``member`` (the newest running one when ``None``) shuts down cleanly."""
        member = self._pick(member)
        self.group.leave(member)
        self.actions.append(("leave", (member,)))
        return member

    def crash(self, member: str) -> None:
        """``member`` dies without a word."""
        self.group.crash(member)
        self.actions.append(("crash", (member,)))

    def stall(self, member: str, seconds: float = 400.0) -> None:
        """``member`` gets stuck on one record for ``seconds``."""
        self.group.stall(member, seconds)
        self.actions.append(("stall", (member, seconds)))

    def restart(self, member: str, downtime: float = 30.0) -> None:
        """``member`` is restarted and back ``downtime`` seconds later."""
        self.group.restart(member, downtime)
        self.actions.append(("restart", (member, downtime)))

    def with_settings(self, **changes: Any) -> RebalanceRun:
        """A new run with ``changes`` to the settings and the same actions replayed."""
        unknown = sorted(set(changes) - set(self.settings))
        if unknown:
            raise ValueError(
                f"with_settings got unknown settings {unknown}; known: {sorted(self.settings)}"
            )
        run = RebalanceRun(**{**self.settings, **changes})
        for name, args in self.actions:
            getattr(run, name)(*args)
        return run

    # -- state ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.group.now

    def timeline(self) -> list[dict[str, Any]]:
        """One sample per partition per second: time (end of that second), partition, owner at
        that moment (``None``: nobody), the member that did the second's work (``worker``,
        ``None`` if nobody did) and the records processed during the second. Only the newest
        :data:`TIMELINE_SECONDS` seconds are kept, so a long run's memory stays bounded."""
        return list(self._samples)

    def running_members(self) -> list[str]:
        """Members whose process runs (they can leave, crash, stall or restart)."""
        return [m for m in self.group.members if self.group._members[m].alive]

    def summary(self) -> str:
        return self.group.summary()

    def _counts(self) -> dict[int, int]:
        return self.group.processings()

    def _pick(self, member: str | None) -> str:
        if member is not None:
            return member
        running = self.running_members()
        if not running:
            raise ValueError("no running member to remove")
        return running[-1]


def default_run() -> RebalanceRun:
    """The view's opening story: 6 partitions, 3 members, eager; a fourth member joins at 11 s;
    30 s in all."""
    run = RebalanceRun()
    run.advance(11)
    run.join()
    run.advance(19)
    return run
