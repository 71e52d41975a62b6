"""How a Kafka consumer group shares out partitions: the range, round-robin and sticky assignors.

In a consumer group every partition of a subscribed topic is read by exactly one member, so that
each record is processed once by the group. Deciding *who reads what* is the job of an assignor.
When members join or leave, the group rebalances and runs the assignor again.

The assignors here are pure functions of the group's subscriptions, the partition counts and (for
the sticky ones) who owned what before, so every member that computes them gets the same answer.
They follow Kafka's client-side ``RangeAssignor``, ``RoundRobinAssignor``, ``StickyAssignor`` and
``CooperativeStickyAssignor`` for dynamic members (no ``group.instance.id``). With the classic
group protocol the Java consumer's default ``partition.assignment.strategy`` is
``[RangeAssignor, CooperativeStickyAssignor]``: the group uses range as long as any member lists
it first. (Kafka 4.0's new consumer protocol, KIP-848, ``group.protocol=consumer``, moves the
assignment to the broker, whose default assignor is ``uniform``; it is not modelled here.)

``"range"`` (the first entry of the Java client's default list)
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
``"sticky"``
    Balances like round-robin (counts differ by at most one) but first lets every member **keep
    what it owned**, up to its quota; only the surplus of over-full members and the partitions
    of departed members move. It follows Kafka's ``ConstrainedAssignmentBuilder`` (the case where
    every member subscribes to the same topics, which this module requires for the sticky
    strategies), including the order in which Java's ``HashMap`` visits the members, so its
    answers match Kafka's own ``AbstractStickyAssignorTest`` cases.
``"cooperative-sticky"``
    The sticky target, minus every partition that changes owner: in the first round of a
    cooperative rebalance the old owner only gives such a partition up, and a second rebalance
    hands it to its new owner (Kafka's ``CooperativeStickyAssignor``). Everything that does not
    move is never revoked, so it is never paused.

Real Kafka silently ignores a subscribed topic that does not exist yet; this module raises an
error instead, so a typo in a scenario shows up at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from .. import _validate as check

__all__ = ["STICKY_STRATEGIES", "STRATEGIES", "assign", "moved_partitions"]

STRATEGIES = ("range", "roundrobin", "sticky", "cooperative-sticky")
"""The assignment strategies :func:`assign` knows, named as in Kafka's
``partition.assignment.strategy`` (the assignors' ``name()``)."""

STICKY_STRATEGIES = ("sticky", "cooperative-sticky")
"""The strategies that take the previous assignment (``owned``) into account."""

Assignment = dict[str, list[tuple[str, int]]]


def _java_order(name: str) -> bytes:
    # Kafka sorts member ids and topics with Java's String.compareTo, which compares UTF-16 code
    # units; Python compares code points. The two differ only for characters beyond U+FFFF, but
    # comparing the UTF-16 encodings gives Java's order exactly, so we never disagree with Kafka.
    return name.encode("utf-16-be", "surrogatepass")


#: Bounds that keep one call of :func:`assign` well under a second (Kafka itself allows more).
MAX_PARTITIONS = 1000
MAX_MEMBERS = 200


def _check_subscriptions(subscriptions: object) -> dict[str, frozenset[str]]:
    if not isinstance(subscriptions, Mapping):
        raise TypeError(
            "subscriptions must be a dict mapping member id -> list of topics, "
            f"got {subscriptions!r} ({type(subscriptions).__name__})"
        )
    if len(subscriptions) > MAX_MEMBERS:
        raise ValueError(
            f"subscriptions may name at most {MAX_MEMBERS} members, got {len(subscriptions)}"
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
        check.integer(f"partitions[{topic!r}]", count, minimum=1, maximum=MAX_PARTITIONS)
    if sum(partitions.values()) > MAX_PARTITIONS:
        raise ValueError(
            f"partitions must add up to at most {MAX_PARTITIONS} partitions in all, got "
            f"{sum(partitions.values())}"
        )
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


def _java_string_hash(text: str) -> int:
    # Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, as an int32.
    h = 0
    units = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h


def _java_hashmap_order(keys: list[str]) -> list[str]:
    """The order in which a ``java.util.HashMap`` filled with ``keys`` (in this order) iterates.

    Kafka's sticky assignor visits members in the iteration order of a ``HashMap``, and which
    member may keep an extra partition depends on that order. A HashMap has a power-of-two table
    (16 slots, doubled whenever it is more than 3/4 full); a key goes to slot
    ``(h ^ (h >>> 16)) & (slots - 1)``; iteration walks the slots in order and each slot's keys in
    insertion order.
    """
    slots = 16
    while len(keys) > slots * 3 // 4:
        slots *= 2

    def slot(key: str) -> int:
        h = _java_string_hash(key)
        return (h ^ (h >> 16)) & (slots - 1)

    return sorted(keys, key=slot)  # sorted() is stable: insertion order within a slot


def _sticky(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    owned: Mapping[str, list[tuple[str, int]]],
) -> tuple[Assignment, dict[tuple[str, int], str]]:
    """Kafka's ConstrainedAssignmentBuilder (all members subscribe to the same topics).

    Returns the assignment and the partitions that change owner (partition -> new owner).
    """
    members = list(subscriptions)
    topics = sorted({t for ts in subscriptions.values() for t in ts}, key=_java_order)
    total = sum(partitions[t] for t in topics)
    min_quota, extra = divmod(total, len(members))
    max_quota = min_quota + (1 if extra else 0)
    expected_over_min = extra  # how many members end with max_quota partitions
    over_min = 0
    result: Assignment = {m: [] for m in members}
    taken: set[tuple[str, int]] = set()
    maybe_revoked: dict[tuple[str, int], str] = {}
    under_min: list[str] = []
    exactly_min: list[str] = []

    # 1. Everyone keeps what it owned, up to its quota.
    for member in _java_hashmap_order(members):
        mine = sorted(
            (tp for tp in owned.get(member, []) if tp[0] in subscriptions[member]),
            key=lambda tp: (tp[1], _java_order(tp[0])),  # Kafka: by partition, then topic
        )
        if len(mine) < min_quota:
            keep = mine
            under_min.append(member)
        elif len(mine) >= max_quota and over_min < expected_over_min:
            over_min += 1
            if over_min == expected_over_min:
                exactly_min.clear()
            keep = mine[:max_quota]
        else:
            keep = mine[:min_quota]
            if over_min < expected_over_min:
                exactly_min.append(member)
        for tp in mine[len(keep) :]:
            maybe_revoked[tp] = member
        result[member].extend(keep)
        taken.update(keep)

    # 2. Deal out the rest, topic by topic and partition by partition, to the members still
    #    below their quota (sorted by member id), then one more each to members at the minimum.
    unassigned = [(t, p) for t in topics for p in range(partitions[t]) if (t, p) not in taken]
    under_min.sort(key=_java_order)
    exactly_min.sort(key=_java_order)
    transferring: dict[tuple[str, int], str] = {}
    cursor = 0  # Kafka walks under_min with an iterator that restarts when it runs out
    for tp in unassigned:
        from_under_min = True
        if cursor < len(under_min):
            member = under_min[cursor]
            cursor += 1
        elif under_min:
            member, cursor = under_min[0], 1
        elif exactly_min:
            member, from_under_min = exactly_min.pop(0), False
        else:  # cannot happen: the quotas add up to the number of partitions
            raise AssertionError("sticky assignment ran out of members with room")
        result[member].append(tp)
        if maybe_revoked.get(tp, member) != member:
            transferring[tp] = member
        count = len(result[member])
        if count == min_quota and from_under_min:
            cursor -= 1
            under_min.pop(cursor)  # filled to the minimum; it may still take one more later
            exactly_min.append(member)
        elif count == max_quota:
            over_min += 1
    return result, transferring


def _owners(name: str, assignment: Any) -> dict[tuple[str, int], str]:
    """``tp -> member`` of an assignment (member -> its ``(topic, partition)`` pairs)."""
    if not isinstance(assignment, Mapping):
        raise TypeError(
            f"{name} must be an assignment (a dict of member -> (topic, partition) pairs), "
            f"got {check._show(assignment)} ({type(assignment).__name__})"
        )
    owners: dict[tuple[str, int], str] = {}
    for member, tps in assignment.items():
        check.text(f"{name} member", member)
        check.collection(f"{name}[{member!r}]", tps)
        for tp in tps:
            if (
                not isinstance(tp, tuple)
                or len(tp) != 2
                or not isinstance(tp[0], str)
                or not isinstance(tp[1], int)
                or isinstance(tp[1], bool)
            ):
                raise TypeError(
                    f"{name}[{member!r}] must hold (topic, partition) pairs, got {check._show(tp)}"
                )
            owners[tp] = member
    return owners


def moved_partitions(
    before: Mapping[str, Collection[tuple[str, int]]],
    after: Mapping[str, Collection[tuple[str, int]]],
) -> dict[tuple[str, int], tuple[str | None, str | None]]:
    """Partitions whose owner differs between two assignments: ``tp -> (old owner, new owner)``.

    A partition nobody owned before (or after) has ``None`` on that side.

    >>> moved_partitions({"a": [("t", 0), ("t", 1)]}, {"a": [("t", 0)], "b": [("t", 1)]})
    {('t', 1): ('a', 'b')}
    """
    old = _owners("before", before)
    new = _owners("after", after)
    return {
        tp: (old.get(tp), new.get(tp))
        for tp in sorted(set(old) | set(new))
        if old.get(tp) != new.get(tp)
    }


def assign(
    strategy: Literal["range", "roundrobin", "sticky", "cooperative-sticky"],
    subscriptions: Mapping[str, Collection[str]],
    partitions: Mapping[str, int],
    *,
    owned: Mapping[str, Collection[tuple[str, int]]] | None = None,
) -> Assignment:
    """Share the partitions of the subscribed topics among the members of a consumer group.

    Parameters
    ----------
    strategy:
        ``"range"``, ``"roundrobin"``, ``"sticky"`` or ``"cooperative-sticky"`` (see the module
        documentation).
    subscriptions:
        Member id -> the topics that member subscribes to, e.g.
        ``{"c0": ["orders"], "c1": ["orders", "payments"]}``.
    partitions:
        Topic -> its number of partitions, e.g. ``{"orders": 6, "payments": 2}``. It must cover
        every subscribed topic; extra topics nobody subscribes to are ignored.
    owned:
        For the sticky strategies: member id -> the ``(topic, partition)`` pairs it owned in the
        previous generation (what a Kafka member sends in its subscription). Members not listed
        owned nothing; departed members are simply absent. Range and round-robin ignore history,
        so they refuse it.

    Returns
    -------
    dict
        Every member id (sorted) -> the sorted list of ``(topic, partition)`` it owns. A member
        that gets nothing (more members than partitions) maps to ``[]``: it sits idle, a spare.
        For ``"cooperative-sticky"`` a partition that changes owner is in nobody's list: this is
        the first round, in which its old owner gives it up.

    >>> assign("range", {f"c{i}": ["t"] for i in range(4)}, {"t": 6})
    {'c0': [('t', 0), ('t', 1)], 'c1': [('t', 2), ('t', 3)], 'c2': [('t', 4)], 'c3': [('t', 5)]}
    >>> assign("roundrobin", {"c0": ["t0", "t1"], "c1": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    {'c0': [('t0', 0), ('t0', 2), ('t1', 1)], 'c1': [('t0', 1), ('t1', 0), ('t1', 2)]}

    A third member joins a group of two that owned three partitions each. The sticky assignor
    moves one partition from each old member to the newcomer and leaves the other four alone;
    range would give the newcomer partitions 4 and 5 and also move partition 2:

    >>> before = {"c1": [("t", 0), ("t", 1), ("t", 2)], "c2": [("t", 3), ("t", 4), ("t", 5)]}
    >>> subs = {"c1": ["t"], "c2": ["t"], "c3": ["t"]}
    >>> assign("sticky", subs, {"t": 6}, owned=before)
    {'c1': [('t', 0), ('t', 1)], 'c2': [('t', 3), ('t', 4)], 'c3': [('t', 2), ('t', 5)]}
    >>> assign("cooperative-sticky", subs, {"t": 6}, owned=before)["c3"]
    []
    """
    check.choice("strategy", strategy, STRATEGIES)
    subs = _check_subscriptions(subscriptions)
    _check_partitions(partitions, subs)
    counts = dict(partitions)
    if strategy in STICKY_STRATEGIES:
        previous = _check_owned(owned, subs, counts)
        if len({frozenset(ts) for ts in subs.values()}) > 1:
            raise ValueError(
                f"subscriptions must be the same for every member with strategy {strategy!r}: "
                "this model implements Kafka's sticky assignment for identical subscriptions only"
            )
        result, transferring = _sticky(subs, counts, previous) if subs else ({}, {})
        if strategy == "cooperative-sticky":
            result = {m: [tp for tp in tps if tp not in transferring] for m, tps in result.items()}
    else:
        if owned is not None:
            raise ValueError(
                f"owned must be None for strategy {strategy!r}: only the sticky strategies "
                f"{STICKY_STRATEGIES} use the previous assignment"
            )
        result = _range(subs, counts) if strategy == "range" else _roundrobin(subs, counts)
    return {member: sorted(result[member]) for member in sorted(result, key=_java_order)}


def _check_owned(
    owned: object, subscriptions: Mapping[str, frozenset[str]], partitions: Mapping[str, int]
) -> dict[str, list[tuple[str, int]]]:
    if owned is None:
        return {}
    if not isinstance(owned, Mapping):
        raise TypeError(
            "owned must be a dict mapping member id -> list of (topic, partition), "
            f"got {owned!r} ({type(owned).__name__})"
        )
    checked: dict[str, list[tuple[str, int]]] = {}
    seen: dict[tuple[str, int], str] = {}
    for member, tps in owned.items():
        check.text("member id in owned", member)
        if isinstance(tps, str) or not isinstance(tps, list | tuple | set | frozenset):
            raise TypeError(
                f"owned[{member!r}] must be a list of (topic, partition) pairs, got {tps!r}"
            )
        pairs = []
        for tp in tps:
            if not (isinstance(tp, tuple | list) and len(tp) == 2):
                raise TypeError(f"owned[{member!r}] holds {tp!r}, not a (topic, partition) pair")
            topic, index = tp
            check.text(f"topic in owned[{member!r}]", topic)
            if topic in partitions:
                check.integer(
                    f"partition of {topic!r} in owned[{member!r}]",
                    index,
                    minimum=0,
                    maximum=partitions[topic] - 1,
                )
            if (topic, index) in seen:
                raise ValueError(
                    f"owned lists ({topic!r}, {index}) for both {seen[(topic, index)]!r} and "
                    f"{member!r}: a partition has one owner in a generation"
                )
            seen[(topic, index)] = member
            if topic in partitions:  # a deleted topic's partitions are simply dropped
                pairs.append((topic, index))
        if member in subscriptions:  # a member that left owns nothing any more
            checked[member] = pairs
    return checked
