"""Publish/subscribe: a topic that copies each message to every consumer group subscribed to it.

The producer publishes to a *topic* and knows nothing else: not who listens, not how many. Each
*consumer group* (one per service: payment, email, analytics, ...) subscribes to the topic and
gets its own copy of every message published after it subscribed. That is *fan-out*: one
publish, one delivery per group.

Inside a group the members *compete*, as on a point-to-point queue: each message goes to exactly
one member, so three email instances do not send the same confirmation three times. This model
shares the messages **round-robin, in join order**: the group's first message goes to its first
member, the next to the second, and so on, wrapping around (RabbitMQ's default dispatch to the
consumers of one queue; a Kafka group splits *by partition* instead, see
:mod:`mqlib.models.log`). With members ``payment-1`` and ``payment-2``, msg1 goes to
``payment-1``, msg2 to ``payment-2``, msg3 to ``payment-1`` again.

Groups and members come and go at any time:

* A group that subscribes late receives the messages published **from then on**, without any
  change to the producer (a new subscription starts at the end, like a Kafka group with no
  committed offset under ``auto.offset.reset=latest``, Kafka's default, or a freshly bound
  RabbitMQ queue).
* A group whose members have all left keeps its subscription: its messages wait in the group's
  backlog (:attr:`ConsumerGroup.pending`) and are handed out when a member joins again.
* A member that leaves gets nothing more; the round-robin continues over those still there.
* An unsubscribed group gets nothing more; its waiting messages are dropped with it.

Delivery happens at the instant of publishing (members are never busy in this model), so each
delivery is a trace event ``deliver`` with the message, group and member.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .. import _validate as check
from ..core import Simulation

__all__ = ["ConsumerGroup", "Topic", "TopicMessage"]

RECENT_MESSAGES = 1_000
"""How many of the latest published messages :attr:`Topic.messages` keeps (with who got each), so
that a long run's memory does not grow with its history. Counts are counters."""


@dataclass(frozen=True)
class TopicMessage:
    """A published message. ``seq`` is its position in publish order (1, 2, 3, ...)."""

    id: str
    body: Any
    seq: int
    published_at: float
    #: Group -> the member that got this message (filled in as the groups deliver it).
    got: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


class ConsumerGroup:
    """One subscription to a :class:`Topic`: its members share the group's copy of each message.

    Create groups with :meth:`Topic.subscribe`. Counts are plain data: :attr:`received` (messages
    the group got), :attr:`delivered` (member -> messages it got, kept for members that left) and
    :attr:`pending` (messages waiting for a member).
    """

    def __init__(self, topic: Topic, name: str) -> None:
        if not isinstance(topic, Topic):
            raise TypeError(f"topic must be a Topic, got {type(topic).__name__}")
        self.topic = topic
        self.name = check.text("name", name)
        self.members: list[str] = []  # current members, in join order
        self.delivered: dict[str, int] = {}  # member -> deliveries, including departed members
        self.received = 0  # messages this group's subscription received
        self.pending: deque[TopicMessage] = deque()  # received, no member to hand them to yet
        self._turn = 0  # index into self.members of who gets the next message
        self._next_member = 1

    def add_member(self, member: str | None = None) -> str:
        """A new instance joins; returns its id (``<group>-1``, ``<group>-2``, ...).

        It takes its turn in the round-robin after the members already there. Messages waiting
        in :attr:`pending` are handed out at once.
        """
        if member is None:
            while f"{self.name}-{self._next_member}" in self.delivered:
                self._next_member += 1
            member = f"{self.name}-{self._next_member}"
            self._next_member += 1
        check.text("member", member)
        if member in self.members:
            raise ValueError(f"member {member!r} is already in group {self.name!r}")
        self.members.append(member)
        self.delivered.setdefault(member, 0)
        self.topic.sim.record("member_join", topic=self.topic.name, group=self.name, member=member)
        self._dispatch()
        return member

    def remove_member(self, member: str) -> None:
        """``member`` leaves; the next message goes to whoever came after it in the round-robin."""
        check.text("member", member)
        if member not in self.members:
            known = ", ".join(repr(m) for m in self.members) or "no members"
            raise ValueError(f"member {member!r} is not in group {self.name!r} (it has {known})")
        index = self.members.index(member)
        self.members.pop(index)
        if index < self._turn:
            self._turn -= 1  # everyone after it moved one place forward
        if self._turn >= len(self.members):
            self._turn = 0
        self.topic.sim.record("member_leave", topic=self.topic.name, group=self.name, member=member)

    def _receive(self, message: TopicMessage) -> None:
        self.received += 1
        self.pending.append(message)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.pending and self.members:
            message = self.pending.popleft()
            member = self.members[self._turn]
            self._turn = (self._turn + 1) % len(self.members)
            self.delivered[member] += 1
            message.got[self.name] = member
            self.topic.sim.record(
                "deliver", topic=self.topic.name, message=message.id, group=self.name, member=member
            )

    def __repr__(self) -> str:
        return (
            f"ConsumerGroup({self.name!r}, members={self.members}, received={self.received}, "
            f"pending={len(self.pending)})"
        )


class Topic:
    """A pub/sub topic: :meth:`publish` once, every subscribed group gets a copy.

    >>> sim = Simulation()
    >>> topic = Topic(sim, "order-events")
    >>> payment = topic.subscribe("payment", members=2)
    >>> analytics = topic.subscribe("analytics")
    >>> for _ in range(3):
    ...     _ = topic.publish()
    >>> payment.delivered, analytics.delivered
    ({'payment-1': 2, 'payment-2': 1}, {'analytics-1': 3})
    """

    def __init__(self, sim: Simulation, name: str = "order-events") -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.name = check.text("name", name)
        self.groups: dict[str, ConsumerGroup] = {}
        self._recent: deque[TopicMessage] = deque(maxlen=RECENT_MESSAGES)
        self._ids: set[str] = set()  # every id published, for the uniqueness check
        self._published = 0
        #: Every group name that has subscribed, in the order it first did.
        self.subscribed: dict[str, None] = {}

    def publish(self, body: Any = None, *, message_id: str | None = None) -> TopicMessage:
        """Publish one message; each subscribed group receives it now. Returns the message.

        ``message_id`` defaults to ``"msg<seq>"`` (``msg1``, ``msg2``, ...). The producer's call is
        the same whatever the groups are: that is the whole point.
        """
        seq = self._published + 1
        if message_id is None:
            message_id = f"msg{seq}"
            suffix = 1
            while message_id in self._ids:  # an explicit id took it: pick a free one
                message_id = f"msg{seq}-{suffix}"
                suffix += 1
        check.text("message_id", message_id)
        if message_id in self._ids:
            raise ValueError(f"message_id {message_id!r} was already published to {self.name!r}")
        message = TopicMessage(message_id, body, seq, self.sim.now)
        self._ids.add(message_id)
        self._published = seq
        self._recent.append(message)
        self.sim.record("publish", topic=self.name, message=message_id, groups=list(self.groups))
        for group in self.groups.values():
            group._receive(message)
        return message

    def subscribe(self, name: str, members: int = 1) -> ConsumerGroup:
        """Subscribe a new consumer group ``name`` with ``members`` instances (0 or more).

        It receives the messages published from now on.
        """
        check.text("name", name)
        check.integer("members", members, minimum=0, maximum=1_000)
        if name in self.groups:
            raise ValueError(
                f"name {name!r} is taken: a group of that name is already "
                f"subscribed to {self.name!r}"
            )
        group = ConsumerGroup(self, name)
        self.groups[name] = group
        self.subscribed.setdefault(name, None)
        self.sim.record("subscribe", topic=self.name, group=name)
        for _ in range(members):
            group.add_member()
        return group

    def unsubscribe(self, name: str) -> ConsumerGroup:
        """Remove group ``name``; it gets nothing more. Returns the removed group."""
        group = self.group(name)
        del self.groups[name]
        self.sim.record("unsubscribe", topic=self.name, group=name, dropped=len(group.pending))
        return group

    def group(self, name: str) -> ConsumerGroup:
        """The subscribed group called ``name``."""
        check.text("group", name)
        if name not in self.groups:
            known = ", ".join(repr(g) for g in self.groups) or "no groups"
            raise ValueError(f"group {name!r} is not subscribed to {self.name!r} (it has {known})")
        return self.groups[name]

    @property
    def published_count(self) -> int:
        """Messages ever published."""
        return self._published

    @property
    def messages(self) -> list[TopicMessage]:
        """The latest published messages, oldest first: all of them, up to the newest
        :data:`RECENT_MESSAGES` (each with :attr:`TopicMessage.got`, who received it)."""
        return list(self._recent)

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, groups={list(self.groups)}, published={self._published})"
