"""What a consumer-group rebalance does to work in flight: pauses, lost commits and duplicates.

A Kafka consumer group shares a topic's partitions among its members (chapter 7). Whenever the
membership changes (a member joins, leaves, dies or is too slow) the group *rebalances*: the
partitions are shared out again. This model runs one group working through a long backlog, in
simulated time, and counts what each rebalance costs.

**Processing and commits.** Every member handles one record per ``processing_time`` seconds,
taking its partitions in turn. Where it is in each partition (its *position*) lives in the
member's memory; the group's *committed offset* moves only when the member commits, every
``commit_interval`` seconds (``auto.commit.interval.ms``, 5 s by default in Kafka). Whatever was
processed after the last commit exists only in that member's memory.

**Eager rebalancing** (the classic protocol with the range, round-robin or sticky assignor):
when a rebalance starts, *every* member stops and gives up *every* partition, then waits for the
new assignment. For ``rebalance_time`` seconds nothing in the group is processed, and each
partition's new owner (often the same member) starts again from the committed offset.

**Cooperative rebalancing** (``CooperativeStickyAssignor``): members keep working during the
rebalance. The sticky target leaves most partitions where they are; only the partitions that
change owner are given up at the end of the first round and handed over in a second one, so
only they pause (for one ``rebalance_time``).

**Duplicates.** A partition picked up from the committed offset is processed again from there:
everything done after the last commit is done twice. ``commit_on_revoke=True`` commits what was
processed before giving a partition up, which is what Kafka's auto-commit does before a
rebalance and on close, and what a consumer that commits by hand must do in
``ConsumerRebalanceListener.onPartitionsRevoked``. A member that dies, or one that is thrown out,
cannot commit, so its partitions are always re-done from the last commit.

**Slow members.** A member stuck on one record for longer than ``max_poll_interval``
(``max.poll.interval.ms``, 300 s by default) is removed from the group by its own client and its
partitions move. When it finally finishes, the record's effect has happened, but its commit is
refused with ``CommitFailedException`` (it is no longer in the group) and it rejoins: a second
rebalance. Meanwhile the new owner has processed the same records again. (A static member that
reaches the limit stops heartbeating instead, and is removed ``session_timeout`` later.)

**A member that dies** stops heartbeating; the group notices after ``session_timeout``
(``session.timeout.ms``, 45 s by default since Kafka 3.0) and rebalances then. Until then its
partitions are owned but not read.

**Restarts and static membership.** A restarted *dynamic* member leaves the group on shutdown
and joins as a new member when it is back: two rebalances. A *static* member
(``group.instance.id``) does not leave the group on shutdown; if it is back within
``session_timeout`` it gets its own partitions back with no rebalance at all, and only its
partitions pause while it is away.

Simplifications, each named: every rebalance takes the same ``rebalance_time`` (a real classic
rebalance lasts until every member has rejoined, at most ``max.poll.interval.ms``); a membership
change during a rebalance joins that rebalance; the records are an endless backlog. Kafka 4.0's
new consumer protocol (KIP-848, ``group.protocol=consumer``) computes the assignment on the
broker and, like the cooperative protocol, only moves what must move; it is not modelled here.

>>> from mqlib.core import Simulation
>>> group = RebalancingGroup(Simulation(), partitions=6, members=3, protocol="cooperative")
>>> group.advance(12.0)
>>> group.join()
'c4'
>>> group.advance(20.0)
>>> sorted(p for p, s in group.paused_seconds().items() if s > 0)   # only the moved ones
[4]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import _validate as check
from ..core import Simulation
from .assignors import assign

__all__ = ["PROTOCOLS", "RebalancingGroup"]

PROTOCOLS = ("eager", "cooperative")
"""How a group rebalances: every member gives up everything (eager) or only what moves."""

EAGER_STRATEGIES = ("range", "roundrobin", "sticky")
"""Assignors that use the eager protocol (Kafka's RangeAssignor, RoundRobinAssignor,
StickyAssignor); the cooperative protocol always uses ``"cooperative-sticky"``."""


@dataclass
class _Member:
    name: str
    in_group: bool = True  # counted by the assignor
    alive: bool = True  # its process runs
    stalled_until: int | None = None  # tick at which a stuck record finishes
    stuck_on: tuple[int, int] | None = None  # (partition, offset) of that record
    turn: int = 0  # round-robin pointer over its partitions
    incarnation: int = 0  # bumped on every crash or restart, so stale timers do nothing
    lost_commits: int = 0  # how many of its next commits the network loses
    history: list[str] = field(default_factory=list)


#: The longest single :meth:`RebalancingGroup.advance`, in simulated seconds (it steps one
#: processing time at a time, so this keeps one call near a second of computing).
MAX_ADVANCE = 900.0


class RebalancingGroup:
    """A consumer group reading ``partitions`` partitions of one topic, rebalancing as members
    come and go.

    Parameters
    ----------
    sim:
        The simulation whose clock drives the group.
    partitions, members:
        The topic's partition count and the number of members at the start (``c1``, ``c2``, ...).
    protocol:
        ``"eager"`` or ``"cooperative"`` (see the module documentation).
    strategy:
        The assignor for the eager protocol: ``"range"`` (the first of the Java client's default
        ``[RangeAssignor, CooperativeStickyAssignor]``), ``"roundrobin"`` or ``"sticky"``. The
        cooperative protocol always uses ``"cooperative-sticky"``.
    processing_time:
        Seconds a member spends on one record: the clock's step.
    commit_interval:
        Seconds between a member's commits (``auto.commit.interval.ms``, 5 s in Kafka).
    commit_on_revoke:
        Commit what was processed before giving partitions up (auto-commit does; a hand-written
        commit must be in ``onPartitionsRevoked``).
    rebalance_time:
        Seconds one rebalance round takes.
    max_poll_interval, session_timeout:
        Kafka's ``max.poll.interval.ms`` (300 s) and ``session.timeout.ms`` (45 s), in seconds.
    static_membership:
        Members have a ``group.instance.id``: a restart within ``session_timeout`` causes no
        rebalance.
    """

    def __init__(
        self,
        sim: Simulation,
        partitions: int = 6,
        members: int = 3,
        *,
        protocol: Literal["eager", "cooperative"] = "eager",
        strategy: Literal["range", "roundrobin", "sticky"] = "range",
        processing_time: float = 0.1,
        commit_interval: float = 5.0,
        commit_on_revoke: bool = False,
        rebalance_time: float = 3.0,
        max_poll_interval: float = 300.0,
        session_timeout: float = 45.0,
        static_membership: bool = False,
        topic: str = "orders",
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.partitions = check.integer("partitions", partitions, minimum=1, maximum=64)
        check.integer("members", members, minimum=0, maximum=64)
        self.protocol = check.choice("protocol", protocol, PROTOCOLS)
        self.strategy = check.choice("strategy", strategy, EAGER_STRATEGIES)
        self.processing_time = check.positive("processing_time", processing_time)
        self.commit_interval = check.positive("commit_interval", commit_interval)
        self.commit_on_revoke = check.boolean("commit_on_revoke", commit_on_revoke)
        self.rebalance_time = check.positive("rebalance_time", rebalance_time)
        self.max_poll_interval = check.positive("max_poll_interval", max_poll_interval)
        self.session_timeout = check.positive("session_timeout", session_timeout)
        self.static_membership = check.boolean("static_membership", static_membership)
        self.topic = check.text("topic", topic)
        for name in ("commit_interval", "rebalance_time", "max_poll_interval", "session_timeout"):
            self._ticks(name, getattr(self, name))  # each must be a whole number of steps

        self._k = 0  # the current tick; time = tick * processing_time
        self._due: list[tuple[int, int, Any]] = []  # (tick, sequence, action)
        self._seq = 0
        self._members: dict[str, _Member] = {}
        self._next_id = 1
        self.owner: dict[int, str | None] = {p: None for p in range(self.partitions)}
        self.position: dict[int, int] = {p: 0 for p in range(self.partitions)}
        self.committed: dict[int, int] = {p: 0 for p in range(self.partitions)}
        # How often each record was processed, for the offsets at or above ``_floor[p]`` (the
        # committed offset when last folded; every record below it was processed at least once):
        # records below the floor are folded into counts, so memory follows the uncommitted
        # window, not the history. ``_processings`` counts every processing, duplicates included.
        self._processed: dict[int, Counter[int]] = {p: Counter() for p in range(self.partitions)}
        self._floor: dict[int, int] = {p: 0 for p in range(self.partitions)}
        self._distinct_below: dict[int, int] = {p: 0 for p in range(self.partitions)}
        # below the floor only the extra processings are kept, by offset (duplicates are rare)
        self._extra_below: dict[int, Counter[int]] = {p: Counter() for p in range(self.partitions)}
        self._processings: dict[int, int] = {p: 0 for p in range(self.partitions)}
        self._paused_ticks: dict[int, int] = {p: 0 for p in range(self.partitions)}
        self.generation = 0
        self.rebalances: list[dict[str, Any]] = []  #: one entry per completed round
        self.commit_failures: list[dict[str, Any]] = []  #: refused commits (CommitFailedException)
        self._rebalancing = False
        self._revoked_at_start: list[int] = []  # what an eager round made everyone give up
        self._last_full: dict[str, list[int]] = {}
        for _ in range(members):
            self._add_member()
        if members:
            self._assign_all(reason="start")  # the group's first assignment, before any work
        sim.process(self._clock())

    # -- actions -------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (a whole number of processing steps)."""
        check.positive("seconds", seconds)
        ticks = self._ticks("seconds", check.number("seconds", seconds, maximum=MAX_ADVANCE))
        for _ in range(ticks):
            # One step at a time: the clock's next timeout is at exactly now + processing_time,
            # the same float as this target, so no step is lost to rounding over a long run.
            self.sim.advance(self.processing_time)
            self.sim.settle()

    def join(self) -> str:
        """A new member joins (a rebalance); returns its id."""
        member = self._add_member()
        self._record("member_join", member=member)
        self._trigger(f"{member} joined")
        return member

    def leave(self, member: str) -> None:
        """``member`` shuts down cleanly: it commits (if ``commit_on_revoke``), leaves the group and
        the group rebalances."""
        m = self._live(member)
        self._give_up(m, list(self.owned(member)), commit=self.commit_on_revoke)
        m.in_group = m.alive = False
        self._record("member_leave", member=member)
        self._trigger(f"{member} left")

    def crash(self, member: str) -> None:
        """``member``'s process dies: no commit, no goodbye. The group notices after
        ``session_timeout`` and rebalances; until then its partitions are not read."""
        m = self._live(member)
        m.alive = False
        m.incarnation += 1
        m.stalled_until = m.stuck_on = None
        self._record("member_crash", member=member)
        self._after(self.session_timeout, self._expire, m, m.incarnation)

    def restart(self, member: str, downtime: float) -> None:
        """``member`` is restarted (a deploy): it shuts down now and is back ``downtime`` seconds
        later.

        A dynamic member leaves the group on shutdown (a rebalance) and comes back as a new
        member (another one). A static member does not leave; back within ``session_timeout``, it
        takes its own partitions again with no rebalance. Either way it commits on shutdown if
        ``commit_on_revoke``, and the new process starts from the committed offsets.
        """
        m = self._live(member)
        ticks = self._ticks("downtime", check.positive("downtime", downtime))
        if self.commit_on_revoke:
            self._commit(m)
        m.alive = False
        m.incarnation += 1
        self._record("member_shutdown", member=member, static=self.static_membership)
        if self.static_membership:
            self._after(self.session_timeout, self._expire, m, m.incarnation)
        else:
            self._give_up(m, list(self.owned(member)), commit=False)
            m.in_group = False
            self._trigger(f"{member} left (restart)")
        self._due_at(self._k + ticks, self._come_back, m, m.incarnation)

    def stall(self, member: str, seconds: float) -> None:
        """``member``'s handler gets stuck on its next record for ``seconds``.

        Longer than ``max_poll_interval`` and the member is removed from the group
        (``max.poll.interval.ms`` exceeded); when the record finally finishes, the member's commit
        fails with ``CommitFailedException`` and it rejoins. A static member is removed only
        ``session_timeout`` later: at the limit it stops heartbeating rather than leaving.
        """
        m = self._live(member)
        ticks = self._ticks("seconds", check.positive("seconds", seconds))
        if m.stalled_until is not None:
            raise ValueError(f"member {member!r} is already stuck on a record")
        mine = self.owned(member)
        if not mine:
            raise ValueError(
                f"member {member!r} owns no partition, so it has no record to stall on"
            )
        p = mine[m.turn % len(mine)]
        m.turn += 1
        m.stuck_on = (p, self.position[p])
        m.stalled_until = self._k + ticks
        self._record("member_stall", member=member, partition=p, offset=self.position[p])
        limit = self.max_poll_interval
        if self.static_membership:
            # A static member that reaches the limit stops heartbeating instead of leaving; the
            # group removes it when session.timeout.ms has passed on top (ConsumerConfig docs).
            limit += self.session_timeout
        if ticks > self._ticks("max_poll_interval", limit):
            self._after(limit, self._evict, m, m.incarnation)
        self._due_at(self._k + ticks, self._unstick, m, m.incarnation)

    def lose_commits(self, member: str, count: int = 1) -> None:
        """The next ``count`` commits of ``member`` are lost on the network.

        Nothing else happens: the member keeps its position (it lives in the client) and reads
        on, and its next commit that arrives covers the lost ones. The lost commits matter only if
        a rebalance or a restart moves the partition before that next commit.
        """
        m = self._live(member)
        m.lost_commits += check.integer("count", count, minimum=1, maximum=1_000_000)

    # -- state ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return round(self._k * self.processing_time, 9)

    @property
    def members(self) -> list[str]:
        """The group's members (what the assignor shares partitions among)."""
        return [name for name, m in self._members.items() if m.in_group]

    def owned(self, member: str) -> list[int]:
        """The partitions ``member`` owns now."""
        check.text("member", member)
        return [p for p, owner in self.owner.items() if owner == member]

    def assignment(self) -> dict[str, list[int]]:
        """Member -> partitions it owns now (a partition being handed over is in nobody's list)."""
        return {m: self.owned(m) for m in self.members}

    def processed(self) -> int:
        """Records processed at least once."""
        return sum(self._distinct_below[p] + len(c) for p, c in self._processed.items())

    def processings(self) -> dict[int, int]:
        """Partition -> processings so far, each extra processing of a record included."""
        return dict(self._processings)

    def duplicates(self) -> dict[int, int]:
        """Partition -> records processed more than once (each extra processing counts)."""
        return {
            p: self._extra_below[p].total() + sum(n - 1 for n in c.values() if n > 1)
            for p, c in self._processed.items()
        }

    def times_processed(self, partition: int, offset: int) -> int:
        """How often record ``offset`` of ``partition`` has been processed so far."""
        partition = check.integer("partition", partition, minimum=0, maximum=self.partitions - 1)
        offset = check.integer("offset", offset, minimum=0)
        if offset < self._floor[partition]:  # below a commit: processed, maybe more than once
            return 1 + self._extra_below[partition][offset]
        return self._processed[partition][offset]

    def _process(self, p: int, offset: int) -> None:
        """Count one processing of record ``offset`` of partition ``p``."""
        self._processings[p] += 1
        if offset < self._floor[p]:
            self._extra_below[p][offset] += 1  # processed before: it is below the floor
        else:
            self._processed[p][offset] += 1

    def _fold_committed(self) -> None:
        """Fold the counts of records below each committed offset (all processed at least once:
        a commit records the position after processing) into per-partition totals."""
        for p, counts in self._processed.items():
            for offset in range(self._floor[p], self.committed[p]):
                n = counts.pop(offset, 0)
                self._distinct_below[p] += n > 0
                if n > 1:
                    self._extra_below[p][offset] = n - 1
            self._floor[p] = max(self._floor[p], self.committed[p])

    def total_duplicates(self) -> int:
        """All extra processings."""
        return sum(self.duplicates().values())

    def paused_seconds(self) -> dict[int, float]:
        """Partition -> seconds no working member was reading it (unowned, or its owner dead,
        stuck, or waiting for an eager rebalance)."""
        return {p: round(t * self.processing_time, 9) for p, t in self._paused_ticks.items()}

    def summary(self) -> str:
        """One line: time, members, rebalances, paused partition-seconds, duplicates."""
        paused = sum(self.paused_seconds().values())
        return (
            f"t={self.now:g}s: {len(self.members)} members, {self.protocol} protocol; "
            f"{len(self.rebalances)} rebalance rounds; {self.processed()} records processed, "
            f"{self.total_duplicates()} twice or more; partitions paused {paused:g} s in all"
        )

    # -- internals: time -----------------------------------------------------------------------
    def _ticks(self, name: str, seconds: float) -> int:
        ticks = round(seconds / self.processing_time)
        if ticks < 1 or abs(ticks * self.processing_time - seconds) > 1e-9 * max(1.0, seconds):
            raise ValueError(
                f"{name} must be a whole number of processing steps "
                f"(processing_time={self.processing_time:g} s), got {seconds!r}"
            )
        return ticks

    def _after(self, seconds: float, action: Any, *args: Any) -> None:
        self._due_at(self._k + self._ticks("delay", seconds), action, *args)

    def _due_at(self, tick: int, action: Any, *args: Any) -> None:
        self._seq += 1
        self._due.append((tick, self._seq, (action, args)))

    def _clock(self) -> Any:
        while True:
            yield self.sim.timeout(self.processing_time)
            self._k += 1
            self._step()

    def _step(self) -> None:
        # Work done during the step that just ended: each working member finishes one record.
        for name, m in self._members.items():
            if not (m.in_group and m.alive) or m.stalled_until is not None:
                continue
            mine = self.owned(name)
            if not mine:
                continue
            p = mine[m.turn % len(mine)]
            m.turn += 1
            self._process(p, self.position[p])
            self.position[p] += 1
        for p, owner in self.owner.items():
            if owner is None or not self._working(owner):
                self._paused_ticks[p] += 1
        # Then what is due now: commits, timers, rebalance rounds (in the order scheduled).
        if self._k % self._ticks("commit_interval", self.commit_interval) == 0:
            for m in self._members.values():
                if m.in_group and m.alive and m.stalled_until is None:
                    self._commit(m)
            self._fold_committed()
        while True:
            due = sorted(d for d in self._due if d[0] <= self._k)
            if not due:
                break
            self._due.remove(due[0])
            action, args = due[0][2]
            action(*args)

    def _working(self, member: str) -> bool:
        m = self._members[member]
        return m.alive and m.in_group and m.stalled_until is None

    # -- internals: membership -----------------------------------------------------------------
    def _add_member(self) -> str:
        name = f"c{self._next_id}"
        self._next_id += 1
        self._members[name] = _Member(name)
        return name

    def _live(self, member: Any) -> _Member:
        check.text("member", member)
        m = self._members.get(member)
        if m is None or not m.in_group or not m.alive:
            live = ", ".join(repr(n) for n in self.members if self._members[n].alive) or "none"
            raise ValueError(f"member {member!r} is not a running member (running: {live})")
        return m

    def _commit(self, m: _Member) -> None:
        if m.lost_commits:
            m.lost_commits -= 1
            self._record("commit_lost", member=m.name)
            return
        for p in self.owned(m.name):
            self.committed[p] = self.position[p]
        self._record("commit", member=m.name, offsets={str(p): self.committed[p]
                                                        for p in self.owned(m.name)})  # fmt: skip

    def _give_up(self, m: _Member, partitions: list[int], *, commit: bool) -> None:
        if commit and m.alive and m.stalled_until is None:
            if m.lost_commits:
                m.lost_commits -= 1
                self._record("commit_lost", member=m.name)
            else:
                for p in partitions:
                    self.committed[p] = self.position[p]
        for p in partitions:
            self.owner[p] = None

    def _expire(self, m: _Member, incarnation: int) -> None:
        if m.incarnation != incarnation or m.alive or not m.in_group:
            return  # it came back, or left some other way
        self._give_up(m, self.owned(m.name), commit=False)
        m.in_group = False
        self._record("session_timeout", member=m.name)
        self._trigger(f"{m.name} timed out")

    def _come_back(self, m: _Member, incarnation: int) -> None:
        if m.incarnation != incarnation:
            return
        m.alive = True
        m.stalled_until = m.stuck_on = None
        m.incarnation += 1  # its pending session timer is void now
        if m.in_group:  # static, back in time: same partitions, from the committed offsets
            for p in self.owned(m.name):
                self.position[p] = self.committed[p]
            self._record("member_return", member=m.name, rebalance=False)
        else:
            m.in_group = True
            self._record("member_return", member=m.name, rebalance=True)
            self._trigger(f"{m.name} rejoined")

    def _evict(self, m: _Member, incarnation: int) -> None:
        if m.incarnation != incarnation or m.stalled_until is None:
            return
        self._give_up(m, self.owned(m.name), commit=False)
        m.in_group = False
        self._record("poll_timeout", member=m.name)
        self._trigger(f"{m.name} exceeded max.poll.interval.ms")

    def _unstick(self, m: _Member, incarnation: int) -> None:
        if m.incarnation != incarnation or m.stuck_on is None:
            return
        p, offset = m.stuck_on
        self._process(p, offset)  # the slow handler's effect happens, owner or not
        m.stalled_until = m.stuck_on = None
        if m.in_group and self.owner[p] == m.name:
            self.position[p] = offset + 1
            return
        failure = {"time": self.now, "member": m.name, "partition": p, "offset": offset}
        self.commit_failures.append(failure)
        self._record("commit_failed", **failure)
        m.in_group = True
        self._trigger(f"{m.name} rejoined after CommitFailedException")

    # -- internals: rebalancing ----------------------------------------------------------------
    def _trigger(self, reason: str) -> None:
        self._record("rebalance_start", reason=reason, protocol=self.protocol)
        if self._rebalancing:
            return  # it joins the round in progress, which reads the membership when it ends
        self._rebalancing = True
        self._revoked_at_start = []
        if self.protocol == "eager":
            for m in self._members.values():  # every member gives up everything
                if m.in_group:
                    self._revoked_at_start += self.owned(m.name)
                    self._give_up(m, self.owned(m.name), commit=self.commit_on_revoke)
        self._after(self.rebalance_time, self._round, reason, 1)

    def _round(self, reason: str, number: int) -> None:
        before = self.assignment()
        subs = {m: [self.topic] for m in self.members}
        counts = {self.topic: self.partitions}
        if self.protocol == "eager":
            target = assign(self.strategy, subs, counts) if subs else {}
        else:
            owned = {m: [(self.topic, p) for p in ps] for m, ps in before.items()}
            target = assign("cooperative-sticky", subs, counts, owned=owned) if subs else {}
        new = {m: [p for _, p in tps] for m, tps in target.items()}
        revoked = sorted(self._revoked_at_start) if number == 1 else []
        for m, ps in before.items():
            for p in ps:
                if p not in new.get(m, []):
                    revoked.append(p)
                    self._give_up(self._members[m], [p], commit=self.commit_on_revoke)
        assigned = []
        for m, ps in new.items():
            for p in ps:
                if self.owner[p] != m:
                    self.owner[p] = m
                    self.position[p] = self.committed[p]  # a new owner starts from the commit
                    assigned.append(p)
        self.generation += 1
        entry = {
            "time": self.now,
            "reason": reason,
            "round": number,
            "generation": self.generation,
            "revoked": sorted(revoked),
            "assigned": sorted(assigned),
            "assignment": self.assignment(),
        }
        follow_up = bool(revoked) and self.protocol == "cooperative"
        if not follow_up:  # the rebalance is complete: what changed hands since it started?
            now = self.assignment()
            old = {p: m for m, ps in self._last_full.items() for p in ps}
            new = {p: m for m, ps in now.items() for p in ps}
            entry["moved"] = sorted(p for p in new if old.get(p) != new[p])
            self._last_full = now
            self._rebalancing = False
        self.rebalances.append(entry)
        self._record("rebalance", **{k: v for k, v in entry.items() if k != "time"})
        if follow_up:
            self._after(self.rebalance_time, self._round, reason, number + 1)

    def _assign_all(self, reason: str) -> None:
        subs = {m: [self.topic] for m in self.members}
        strategy = self.strategy if self.protocol == "eager" else "cooperative-sticky"
        for m, tps in assign(strategy, subs, {self.topic: self.partitions}).items():
            for _, p in tps:
                self.owner[p] = m
        self.generation = 1
        self._last_full = self.assignment()
        self._record("rebalance", reason=reason, round=1, generation=1,
                     assignment=self.assignment())  # fmt: skip

    def _record(self, kind: str, **data: Any) -> None:
        self.sim.record(kind, group="group", **data)

    def __repr__(self) -> str:
        return f"<RebalancingGroup {self.summary()}>"
