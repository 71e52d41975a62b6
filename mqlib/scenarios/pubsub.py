"""Chapter 2's scenario: one topic, three consumer groups, fan-out across groups and sharing within.

:class:`PubSubRun` is what the chapter's widget drives and its tests script. Every button is a
method (:meth:`~PubSubRun.publish`, :meth:`~PubSubRun.add_group`, :meth:`~PubSubRun.add_member`,
...), and the state is plain data (:meth:`~PubSubRun.deliveries`, :meth:`~PubSubRun.copies`,
...).
The producer side is one call, ``publish``, whatever groups exist: adding a group changes nothing
for the producer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.topic import Topic

#: The lesson's groups: service -> number of instances.
DEFAULT_GROUPS: dict[str, int] = {"payment": 2, "email": 3, "analytics": 1}


class PubSubRun:
    """A live pub/sub run: a topic ``order-events`` and its consumer groups.

    Parameters
    ----------
    groups:
        Group name -> number of members at the start (0 or more each; the dict may be empty).
    topic:
        The topic's name.
    seed:
        Seeds the simulation (nothing here is random; the seed is recorded so traces compare).
    """

    def __init__(
        self, groups: Mapping[str, int] | None = None, *, topic: str = "order-events", seed: int = 0
    ) -> None:
        if groups is None:
            groups = DEFAULT_GROUPS
        if not isinstance(groups, Mapping):
            raise TypeError(
                f"groups must be a dict of group name -> member count, "
                f"got {groups!r} ({type(groups).__name__})"
            )
        check.text("topic (the topic's name)", topic)
        self.sim = Simulation(seed=seed)
        self.topic = Topic(self.sim, topic)
        for name, members in groups.items():
            self.topic.subscribe(name, members)

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def publish(self, count: int = 1) -> list[str]:
        """The producer publishes ``count`` messages now; returns their ids."""
        check.integer("count", count, minimum=1, maximum=10_000)
        ids = [self.topic.publish().id for _ in range(count)]
        return ids

    def add_group(self, name: str, members: int = 1) -> list[str]:
        """Subscribe a new group with ``members`` instances; returns their ids.

        It receives every message published from now on; the producer is not touched.
        """
        group = self.topic.subscribe(name, members)
        return list(group.members)

    def remove_group(self, name: str) -> None:
        """Unsubscribe group ``name``."""
        self.topic.unsubscribe(name)

    def add_member(self, group: str) -> str:
        """Start one more instance in ``group``; returns its id."""
        member = self.topic.group(group).add_member()
        return member

    def remove_member(self, group: str, member: str | None = None) -> str:
        """Stop ``member`` of ``group`` (its newest member when ``None``); returns its id."""
        g = self.topic.group(group)
        if member is None:
            if not g.members:
                raise ValueError(f"group {group!r} has no members to remove")
            member = g.members[-1]
        g.remove_member(member)
        return member

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (publishes after it get later timestamps)."""
        check.positive("seconds", seconds)
        self.sim.advance(seconds)
        self.sim.settle()

    # -- state ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    @property
    def published(self) -> int:
        """Messages published so far."""
        return self.topic.published_count

    def groups(self) -> dict[str, list[str]]:
        """Group -> its current members, in join order."""
        return {name: list(g.members) for name, g in self.topic.groups.items()}

    def deliveries(self) -> dict[str, dict[str, int]]:
        """Group -> member -> messages delivered to it (members that left keep their count)."""
        return {name: dict(g.delivered) for name, g in self.topic.groups.items()}

    def received(self) -> dict[str, int]:
        """Group -> messages its subscription received (delivered plus waiting)."""
        return {name: g.received for name, g in self.topic.groups.items()}

    def pending(self) -> dict[str, int]:
        """Group -> messages waiting because the group has no member right now."""
        return {name: len(g.pending) for name, g in self.topic.groups.items()}

    def delivery_log(self) -> list[tuple[str, str, str]]:
        """``(message, group, member)`` for every delivery, in order."""
        return [
            (e.data["message"], e.data["group"], e.data["member"])
            for e in self.sim.trace.of_kind("deliver")
        ]

    def group_order(self) -> list[str]:
        """Every group that has subscribed during the run, in the order it first did (groups
        that unsubscribed since are still listed: their earlier copies are part of the story)."""
        return list(self.topic.subscribed)

    def copies(self, window: int | None = None) -> dict[str, Any]:
        """Who got each published message: the latest ``window`` of them (all when ``None``).

        Returns ``{"messages": [seq, ...], "groups": {group: row}}`` with a row for every group in
        :meth:`group_order`. A row has one entry per message in ``messages``: ``delivered`` (1
        where a member of the group got the message, else 0), ``waiting`` (1 where the message
        waits in the group's backlog because the group has no member) and ``member`` (the member
        that got it, or ``None``).

        >>> run = PubSubRun({"payment": 2, "email": 0})
        >>> _ = run.publish(2)
        >>> run.copies()["messages"]
        [1, 2]
        >>> run.copies()["groups"]["payment"]
        {'delivered': [1, 1], 'waiting': [0, 0], 'member': ['payment-1', 'payment-2']}
        >>> run.copies(window=1)["groups"]["email"]
        {'delivered': [0], 'waiting': [1], 'member': [None]}
        """
        if window is not None:
            check.integer("window", window, minimum=1)
        recent = self.topic._recent
        if window is None or window >= len(recent):
            shown = list(recent)
        else:
            shown = [recent[i] for i in range(len(recent) - window, len(recent))]
        first = shown[0].seq if shown else 0
        waiting: set[tuple[int, str]] = set()
        for name, g in self.topic.groups.items():
            for m in reversed(g.pending):  # newest first: stop at the first one not shown
                if m.seq < first:
                    break
                waiting.add((m.seq, name))
        rows: dict[str, dict[str, list[Any]]] = {}
        for name in self.group_order():
            members = [m.got.get(name) for m in shown]
            rows[name] = {
                "delivered": [0 if member is None else 1 for member in members],
                "waiting": [1 if (m.seq, name) in waiting else 0 for m in shown],
                "member": members,
            }
        return {"messages": [m.seq for m in shown], "groups": rows}

    def summary(self) -> str:
        """One line describing the state of the run."""
        parts = []
        for name, g in self.topic.groups.items():
            split = "/".join(str(g.delivered[m]) for m in g.members) or "no members"
            waiting = f", {len(g.pending)} waiting" if g.pending else ""
            parts.append(f"{name} {g.received} ({split}{waiting})")
        groups = "; ".join(parts) if parts else "no groups"
        copies = sum(g.received for g in self.topic.groups.values())
        return (
            f"t={self.now:g}s: published {self.published}; received per group (split over "
            f"current members): {groups}; {copies} copies in all"
        )


def default_run() -> PubSubRun:
    """The chapter's opening picture.

    payment (2 members), email (3) and analytics (1) subscribe; one message is published each
    second for 6 s; then an inventory group with 2 members subscribes and 4 more messages follow.
    Every group that was there receives all 10; payment splits 5/5, email 4/3/3, analytics gets
    10; inventory receives only the 4 published after it subscribed, 2/2. The producer never
    changed.
    """
    run = PubSubRun()
    for _ in range(6):
        run.publish()
        run.advance(1.0)
    run.add_group("inventory", 2)
    for _ in range(4):
        run.publish()
        run.advance(1.0)
    return run
