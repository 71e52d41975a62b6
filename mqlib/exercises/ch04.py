"""Chapter 4 exercise: choose the message key and the partition count.

The world is a Kafka topic ``orders`` whose records a consumer group processes. Records with a
key go to ``kafka_partition(key, partitions)`` (:mod:`mqlib.models.partitioner`, Kafka's own
murmur2 formula); the group's members share the partitions with Kafka's range assignor
(:func:`mqlib.models.assignors.assign`), and every member processes its partitions' records
one at a time, in offset order. Members join and leave mid-run (a rebalance: the partitions are
assigned again) and some records take longer to process than others.

Records without a key are spread over the partitions in turn. Kafka's default partitioner keeps a
"sticky" partition for a whole batch instead (KIP-480); either way, one customer's records end up
on several partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models.assignors import assign
from ..models.partitioner import kafka_partition
from ._checker import Budget, Exercise, Fault, SolutionError, call, instance_of, wrong_type

START_CONSUMERS = 4
"""Members in the group at the start."""
MAX_CONSUMERS = 6
"""The group grows to at most this many members."""
PROCESS = 1.0
"""Seconds to process one record; a slow one takes :data:`SLOW`."""
SLOW = 3.5
REGIONS = ("eu", "us")


@dataclass(frozen=True)
class Event:
    """A customer's event: ``id``, ``customer`` (``"c1"``), ``order_id``, ``seq`` (1, 2, ...
    per customer: the order they must be processed in), ``type`` and ``region``."""

    id: str
    customer: str
    order_id: int
    seq: int
    type: str
    region: str


_STEPS = ("order.placed", "order.paid", "order.shipped", "order.placed", "order.paid")


class KeyAndPartitions(Exercise):
    name = "ch04-key-and-partitions"
    chapter = 4
    title = "Per-customer order with the most parallelism"
    signature = "class Plan: partitions = <int>; key(self, event) -> str | bytes | None"
    task = (
        "Write a class with an attribute partitions (the topic's partition count) and a method "
        "key(event) that returns the record key for an event (or None for no key). Each event "
        "has id, customer, order_id, seq (its place in the customer's sequence), type and "
        "region; a customer has several orders. Records go to Kafka's default partition for "
        f"their key; a consumer group of {START_CONSUMERS} members, growing to at most "
        f"{MAX_CONSUMERS}, shares the partitions with the range assignor."
    )
    checks = (
        "Up to 8 customers with 2 to 5 events each, slow records (jitter) and members joining "
        "and leaving (rebalances). Checked: every customer's events are processed in seq order; "
        "each customer's events carry one key, and different customers different keys (no hot "
        "key); no member of the group is left without a partition."
    )
    min_size = 2
    max_size = 8
    size_unit = "customer(s)"

    def validate(self, solution: Any) -> Any:
        solution = instance_of(solution)
        if not callable(getattr(solution, "key", None)) or not hasattr(solution, "partitions"):
            raise TypeError(
                "solution must have an attribute partitions (an int) and a method key(event); "
                f"got {solution!r}"
            )
        partitions = solution.partitions
        if not isinstance(partitions, int) or isinstance(partitions, bool):
            raise TypeError(
                f"partitions must be an integer, got {partitions!r} ({type(partitions).__name__})"
            )
        if not 1 <= partitions <= 1000:
            raise ValueError(f"partitions must be between 1 and 1000, got {partitions!r}")
        return solution

    def draw(self, rng, size):
        faults = []
        for c in range(1, size + 1):
            n = rng.randint(2, 5)
            if n != 3:
                faults.append(Fault("events", c, 0, n, f"c{c} has {n} events"))
        for _ in range(rng.randint(0, 4)):
            c, n = rng.randint(1, size), rng.randint(1, 5)
            faults.append(Fault("slow", c, 0, n, f"event seq {n} of c{c} is slow ({SLOW:g} s)"))
        consumers = START_CONSUMERS
        for _ in range(rng.randint(0, 3)):
            t = rng.randint(1, 2 * size)
            if consumers < MAX_CONSUMERS and rng.random() < 0.7:
                consumers += 1
                faults.append(Fault("join", t, consumers, 0, f"a member joins at t={t} s"))
            elif consumers > 1:
                consumers -= 1
                faults.append(Fault("leave", t, consumers, 0, f"a member leaves at t={t} s"))
        return faults

    def starter(self):
        return Starter

    def reference(self):
        return Reference

    def run(self, plan, schedule, out):
        budget = Budget()
        partitions = plan.partitions
        counts = {c: 3 for c in range(1, schedule.size + 1)}
        slow, changes = set(), []
        for f in schedule.faults:
            if f.kind == "events" and f.target in counts:
                counts[f.target] = f.at
            elif f.kind == "slow":
                slow.add((f.target, f.at))
            elif f.kind in ("join", "leave"):
                changes.append((float(f.target), f.kind))
        # the producer: customers' events interleaved, one every 0.1 s
        events: list[Event] = []
        for seq in range(1, 6):
            for c in range(1, schedule.size + 1):
                if seq <= counts[c]:
                    order = 100 * c + (seq + 1) // 3
                    events.append(
                        Event(
                            f"e{len(events) + 1}",
                            f"c{c}",
                            order,
                            seq,
                            _STEPS[seq - 1],
                            REGIONS[c % 2],
                        )
                    )
        logs: list[list[tuple[float, Event]]] = [[] for _ in range(partitions)]
        keys: dict[str, set] = {}
        owner_of_key: dict[Any, str] = {}
        keyless = 0
        for i, event in enumerate(events):
            key = call(plan.key, event, what="key(event)", budget=budget)
            if key is not None and not isinstance(key, str | bytes):
                raise wrong_type("key(event)", key, "a str, bytes or None")
            if key is None:
                p = keyless % partitions
                keyless += 1
            else:
                p = kafka_partition(key, partitions)
            logs[p].append((i * 0.1, event))
            keys.setdefault(event.customer, set()).add(key)
            out.step(
                i * 0.1,
                event.id,
                "sent",
                f"{event.customer} seq {event.seq} ({event.type}), key {key!r} -> partition {p}",
            )
            if key is not None and owner_of_key.setdefault(key, event.customer) != event.customer:
                other = owner_of_key[key]
                out.broke(
                    "no hot key: different customers get different keys",
                    f"{other} and {event.customer} share the key {key!r}, so their events pile "
                    "onto one partition and one member does their work while others wait; key "
                    "by something that differs per customer",
                )
                return
        self._simulate(logs, partitions, changes, slow, out)
        if out.failed:
            return
        for customer, ks in keys.items():
            if len(ks) > 1:
                shown = sorted(ks, key=repr)
                out.broke(
                    "one key per customer",
                    f"{customer}'s events carry {len(ks)} different keys {shown[:4]}: they can "
                    "land on different partitions, read by different members, and then nothing "
                    "keeps them in order (this run was lucky); a customer's events need one key",
                    time=out.timeline[-1].time,
                    subject=customer,
                )
                return

    def _simulate(self, logs, partitions, changes, slow, out):
        members = [f"m{i}" for i in range(1, START_CONSUMERS + 1)]
        next_member = START_CONSUMERS + 1
        position = [0] * partitions
        busy_until: dict[str, float] = {}
        last_seq: dict[str, tuple[int, str]] = {}
        changes = sorted(changes)
        owner: dict[int, str] = {}

        def rebalance(now: float) -> bool:
            owner.clear()
            result = assign("range", {m: ["orders"] for m in members}, {"orders": partitions})
            for m, owned in result.items():
                for _, p in owned:
                    owner[p] = m
            idle = [m for m, owned in result.items() if not owned]
            out.step(
                now, "group", "rebalance", f"{len(members)} members, {partitions} partition(s)"
            )
            if idle:
                out.broke(
                    "no member is left without a partition",
                    f"{idle[0]} owns no partition: {len(members)} members share {partitions} "
                    f"partition(s), so {len(idle)} sit(s) idle. Use at least as many partitions "
                    f"as the group can grow to ({MAX_CONSUMERS})",
                )
                return False
            return True

        if not rebalance(0.0):
            return
        pending_changes = list(changes)
        t = 0.0
        while True:
            while pending_changes and pending_changes[0][0] <= t:
                _, kind = pending_changes.pop(0)
                # eager rebalance: wait for every member's current record, then reassign
                t = max([t, *busy_until.values()])
                if kind == "join":
                    members.append(f"m{next_member}")
                    next_member += 1
                elif len(members) > 1:
                    members.pop()
                if not rebalance(t):
                    return
            for m in members:
                if busy_until.get(m, 0.0) > t + 1e-9:
                    continue
                best = None
                for p, who in owner.items():
                    if who != m or position[p] >= len(logs[p]):
                        continue
                    sent, event = logs[p][position[p]]
                    if sent <= t and (best is None or sent < best[0]):
                        best = (sent, p, event)
                if best is None:
                    continue
                _, p, event = best
                position[p] += 1
                c, n = int(event.customer[1:]), event.seq
                done = t + (SLOW if (c, n) in slow else PROCESS)
                busy_until[m] = done
                out.step(t, event.id, "delivered", f"to {m} from partition {p}")
                before = last_seq.get(event.customer)
                if before and before[0] > event.seq:
                    out.step(
                        t,
                        event.id,
                        "out of order",
                        f"{event.customer} seq {event.seq} after seq {before[0]}",
                    )
                    out.broke(
                        "each customer's events are processed in order",
                        f"{event.customer}'s seq {event.seq} ({event.type}) started at "
                        f"t={t:.2f} s, after seq {before[0]} ({before[1]}): the two were on "
                        "different partitions",
                    )
                    return
                last_seq[event.customer] = (event.seq, event.type)
            # jump to the next moment something can happen: a member frees up, a record
            # arrives, the group changes
            later = [b for b in busy_until.values() if b > t + 1e-9]
            later += [
                logs[p][position[p]][0]
                for p in range(partitions)
                if position[p] < len(logs[p]) and logs[p][position[p]][0] > t + 1e-9
            ]
            if pending_changes:
                later.append(max(pending_changes[0][0], t))
            waiting = any(position[p] < len(logs[p]) for p in range(partitions))
            if not later or (not waiting and not pending_changes):
                break
            t = min(later)


def _plans():
    return Starter, Reference


class Starter:
    """Key by order id, six partitions. (Which check does it break?)"""

    partitions = 6

    def key(self, event):
        return str(event.order_id)


class Reference:
    """Key by customer: one customer, one key, one partition, one reader at a time, so the
    customer's events keep their order. Twelve partitions: at least the group's largest size
    (6), so no member ever idles, and a multiple of it, so the load spreads evenly."""

    partitions = 12

    def key(self, event):
        return event.customer


__all__ = ["Event", "KeyAndPartitions", "SolutionError"]
