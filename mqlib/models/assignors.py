"""How a Kafka consumer group shares out partitions: the range and round-robin assignors.

In a consumer group every partition of a subscribed topic is read by exactly one member, so that
each record is processed once by the group. Deciding *who reads what* is the job of an assignor.
When members join or leave, the group rebalances and runs the assignor again.

Both assignors here are pure functions of the group's subscriptions and the partition counts, so
every member that computes them gets the same answer. They follow Kafka's client-side
``RangeAssignor`` and ``RoundRobinAssignor`` for dynamic members (no ``group.instance.id``):

``"range"`` (Kafka's default; since 3.0 the default list is ``[range, cooperative-sticky]``)
    Works **topic by topic**. Take the members subscribed to the topic, sorted by member id, and
    cut the partitions ``0 .. n-1`` into contiguous ranges: each member gets ``n // m`` of them
    and the first ``n % m`` members get one more. Six partitions over four members give
    ``[0, 1], [2, 3], [4], [5]``. Because every topic favours the same first members, with many
    topics the first member can end up with far more partitions than the last, but partition
    ``i`` of two co-partitioned topics lands on the same member, which joins need.
``"roundrobin"``
    Lays out **all** subscribed topic-partitions (sorted by topic, then partition) and deals
    them one by one to the members sorted by member id, like cards, skipping a member that is not
    subscribed to the partition's topic. With identical subscriptions the counts differ by at
    most one across the whole group.

Real Kafka silently ignores a subscribed topic that does not exist yet; this module raises an
error instead, so a typo in a scenario shows up at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

from .. import _validate as check

__all__ = ["STRATEGIES", "assign"]

STRATEGIES = ("range", "roundrobin")
"""The assignment strategies :func:`assign` knows, named as in Kafka's
``partition.assignment.strategy``."""

Assignment = dict[str, list[tuple[str, int]]]


def _java_order(name: str) -> bytes:
    # Kafka sorts member ids and topics with Java's String.compareTo, which compares UTF-16 code
    # units; Python compares code points. The two differ only for characters beyond U+FFFF, but
    # comparing the UTF-16 encodings gives Java's order exactly, so we never disagree with Kafka.
    return name.encode("utf-16-be", "surrogatepass")


def _check_subscriptions(subscriptions: object) -> dict[str, frozenset[str]]:
    if not isinstance(subscriptions, Mapping):
        raise TypeError(
            "subscriptions must be a dict mapping member id -> list of topics, "
            f"got {subscriptions!r} ({type(subscriptions).__name__})"
        )
    checked: dict[str, frozenset[str]] = {}
    for member, topics in subscriptions.items():
        check.text("member id in subscriptions", member)
        where = f"subscriptions[{member!r}]"
        if isinstance(topics, str):
            # A bare string is iterable, so without this check "orders" would silently become
            # the topics "o", "r", "d", ...
            raise TypeError(
                f"{where} must be a list of topic names, got the str {topics!r}; "
                f"write [{topics!r}] for a single topic"
            )
        if not isinstance(topics, list | tuple | set | frozenset):
            raise TypeError(
                f"{where} must be a list of topic names, got {topics!r} ({type(topics).__name__})"
            )
        seen: set[str] = set()
        for topic in topics:
            check.text(f"topic in {where}", topic)
            if topic in seen:
                raise ValueError(f"{where} lists topic {topic!r} more than once")
            seen.add(topic)
        checked[member] = frozenset(seen)
    return checked


def _check_partitions(partitions: object, subscriptions: Mapping[str, frozenset[str]]) -> None:
    if not isinstance(partitions, Mapping):
        raise TypeError(
            "partitions must be a dict mapping topic -> partition count, "
            f"got {partitions!r} ({type(partitions).__name__})"
        )
    for topic, count in partitions.items():
        check.text("topic in partitions", topic)
        check.integer(f"partitions[{topic!r}]", count, minimum=1)
    for member, topics in subscriptions.items():
        for topic in sorted(topics):
            if topic not in partitions:
                known = ", ".join(repr(t) for t in sorted(partitions)) or "no topics"
                raise ValueError(
                    f"subscriptions[{member!r}] subscribes to topic {topic!r}, which is missing "
                    f"from partitions (partitions has: {known})"
                )


def _range(
    subscriptions: Mapping[str, frozenset[str]], partitions: Mapping[str, int]
) -> Assignment:
    result: Assignment = {member: [] for member in subscriptions}
    topics = {topic for topics in subscriptions.values() for topic in topics}
    for topic in topics:  # topics are independent of each other, so their order does not matter
        members = sorted((m for m in subscriptions if topic in subscriptions[m]), key=_java_order)
        per_member, extra = divmod(partitions[topic], len(members))
        for i, member in enumerate(members):
            # Members before index `extra` each took one partition more, hence min(i, extra).
            start = per_member * i + min(i, extra)
            length = per_member + (1 if i < extra else 0)
            result[member].extend((topic, p) for p in range(start, start + length))
    return result


def _roundrobin(
    subscriptions: Mapping[str, frozenset[str]], partitions: Mapping[str, int]
) -> Assignment:
    result: Assignment = {member: [] for member in subscriptions}
    members = sorted(subscriptions, key=_java_order)
    topics = sorted({t for topics in subscriptions.values() for t in topics}, key=_java_order)
    turn = 0  # index into `members` of whose turn it is; it carries over from topic to topic
    for topic in topics:
        for partition in range(partitions[topic]):
            # Skip members not subscribed to this topic. At least one member is (that is how the
            # topic got into `topics`), so this loop ends.
            while topic not in subscriptions[members[turn]]:
                turn = (turn + 1) % len(members)
            result[members[turn]].append((topic, partition))
            turn = (turn + 1) % len(members)
    return result


def assign(
    strategy: Literal["range", "roundrobin"],
    subscriptions: Mapping[str, Collection[str]],
    partitions: Mapping[str, int],
) -> Assignment:
    """Share the partitions of the subscribed topics among the members of a consumer group.

    Parameters
    ----------
    strategy:
        ``"range"`` or ``"roundrobin"`` (see the module documentation).
    subscriptions:
        Member id -> the topics that member subscribes to, e.g.
        ``{"c0": ["orders"], "c1": ["orders", "payments"]}``.
    partitions:
        Topic -> its number of partitions, e.g. ``{"orders": 6, "payments": 2}``. It must cover
        every subscribed topic; extra topics nobody subscribes to are ignored.

    Returns
    -------
    dict
        Every member id (sorted) -> the sorted list of ``(topic, partition)`` it owns. A member
        that gets nothing (more members than partitions) maps to ``[]``: it sits idle, a spare.

    >>> assign("range", {f"c{i}": ["t"] for i in range(4)}, {"t": 6})
    {'c0': [('t', 0), ('t', 1)], 'c1': [('t', 2), ('t', 3)], 'c2': [('t', 4)], 'c3': [('t', 5)]}
    >>> assign("roundrobin", {"c0": ["t0", "t1"], "c1": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    {'c0': [('t0', 0), ('t0', 2), ('t1', 1)], 'c1': [('t0', 1), ('t1', 0), ('t1', 2)]}
    """
    check.choice("strategy", strategy, STRATEGIES)
    subs = _check_subscriptions(subscriptions)
    _check_partitions(partitions, subs)
    counts = dict(partitions)
    result = _range(subs, counts) if strategy == "range" else _roundrobin(subs, counts)
    return {member: sorted(result[member]) for member in sorted(result, key=_java_order)}
