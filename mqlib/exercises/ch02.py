"""Chapter 2 exercise: route events to consumer groups so each service gets what it needs.

The world is a broker with topics and consumer groups, as in the chapter: an event published to
a topic is delivered once to every group subscribed to that topic, and within a group to one of
its live members. The learner writes the routing, both sides of it:

* ``topic_for(event)``: the producer's choice of topic, from the event alone (the producer does
  not know which services exist);
* ``subscribe(member)``: for one member (instance) of a service, the consumer group it joins and
  the topics it subscribes to.

Services come and go: members crash and come back, and a new service (``fraud``) may start in the
middle of the stream. A group created then starts at the end of its topics (Kafka's
``auto.offset.reset=latest``), so it must receive every event published after it joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._checker import Budget, Exercise, Fault, SolutionError, call, instance_of, wrong_type

TYPES = ("order.placed", "order.paid", "order.shipped", "order.cancelled", "payment.failed")
"""The event types the shop publishes."""

SERVICES = {
    "payment": (2, frozenset({"order.placed", "order.cancelled"})),
    "email": (3, frozenset({"order.placed", "order.shipped", "payment.failed"})),
    "analytics": (1, frozenset(TYPES)),
}
"""Service -> (members, the event types it needs)."""

LATE_SERVICE = ("fraud", 2, frozenset({"order.placed", "payment.failed"}))
"""The service that may start in the middle of the stream."""


@dataclass(frozen=True)
class Event:
    """One business event: ``id`` (``"e1"``, ...), ``type`` (one of :data:`TYPES`), ``order_id``."""

    id: str
    type: str
    order_id: int


@dataclass(frozen=True)
class Member:
    """One running instance of a service: ``name`` (``"email-2"``), ``service`` (``"email"``)
    and ``wants``, the event types that service needs."""

    name: str
    service: str
    wants: frozenset[str]


def _members(service: str, count: int, wants: frozenset[str]) -> list[Member]:
    return [Member(f"{service}-{i}", service, wants) for i in range(1, count + 1)]


class RouteEvents(Exercise):
    name = "ch02-route-events"
    chapter = 2
    title = "Every service gets exactly the events it needs"
    signature = (
        "class Routing: topic_for(self, event) -> str; subscribe(self, member) -> (group, topics)"
    )
    task = (
        "Write a class with two methods. topic_for(event) is the producer's side: the topic to "
        "publish an event to, decided from the event alone (event.type, event.order_id, "
        "event.id). subscribe(member) is the consumer's side: for one member of a service "
        "(member.name, member.service, member.wants: the event types the service needs), "
        "return (group, topics): the consumer group it joins and the topics it reads. Services: "
        "payment (2 members), email (3), analytics (1), and fraud (2), which may start later."
    )
    checks = (
        "Up to 10 events of five types, members that crash and come back, and a service that "
        "starts mid-stream. Checked: every service receives every event it needs exactly once "
        "(not once per member) and no event it does not need; a service started later receives "
        "every event published after it started, with the same topic_for."
    )
    min_size = 2
    max_size = 10
    renumber = True
    size_unit = "event(s)"

    def validate(self, solution: Any) -> Any:
        solution = instance_of(solution)
        for method in ("topic_for", "subscribe"):
            if not callable(getattr(solution, method, None)):
                raise TypeError(
                    f"solution must have the methods topic_for(event) and subscribe(member); "
                    f"{solution!r} has no {method}"
                )
        return solution

    def draw(self, rng, size):
        faults = []
        for k in range(1, size + 1):
            t = rng.randrange(len(TYPES))
            if t:
                faults.append(Fault("type", k, 0, t, f"e{{target}} is {TYPES[t]}"))
        if rng.random() < 0.6:
            k = rng.randint(1, size)
            faults.append(Fault("join", k, 0, 0, "fraud starts just before e{target}"))
        names = [m.name for s, (n, w) in SERVICES.items() for m in _members(s, n, w)]
        for _ in range(rng.randint(0, 2)):
            k = rng.randint(1, size)
            i = rng.randrange(len(names))
            faults.append(
                Fault(
                    "crash", k, i, 0, f"{names[i]} crashes before e{{target}}, back 2 events later"
                )
            )
        return faults

    def run(self, solution, schedule, out):
        budget = Budget()
        types = {k: "order.placed" for k in range(1, schedule.size + 1)}
        joins, crashes = {}, {}
        for f in schedule.faults:
            if f.kind == "type":
                types[f.target] = TYPES[f.at]
            elif f.kind == "join":
                joins.setdefault(f.target, True)
            elif f.kind == "crash":
                crashes.setdefault(f.target, []).append(f.attempt)
        everyone = [m for s, (n, w) in SERVICES.items() for m in _members(s, n, w)]
        members: dict[str, tuple[Member, str, frozenset[str]]] = {}
        group_start: dict[str, int] = {}
        started: dict[str, int] = {}

        def join(member: Member, k: int) -> None:
            answer = call(solution.subscribe, member, what="subscribe(member)", budget=budget)
            if not isinstance(answer, tuple | list) or len(answer) != 2:
                raise wrong_type("subscribe(member)", answer, "a pair (group, topics)")
            group, topics = answer
            if not isinstance(group, str) or not group:
                raise wrong_type("subscribe(member) as its group", group, "a non-empty str")
            if isinstance(topics, str) or not isinstance(topics, list | tuple | set | frozenset):
                raise wrong_type("subscribe(member) as its topics", topics, "a list of str")
            if not all(isinstance(t, str) and t for t in topics):
                raise wrong_type("subscribe(member) as its topics", topics, "a list of str")
            members[member.name] = (member, group, frozenset(topics))
            group_start.setdefault(group, k)
            started.setdefault(member.service, k)
            out.step(
                0 if k == 1 else k - 0.5,
                member.name,
                "subscribed",
                f"group {group!r}, topics {sorted(topics)}",
            )

        for member in everyone:
            join(member, 1)
        log: list[tuple[int, str, Event]] = []  # (k, topic, event)
        received: dict[tuple[str, str], list[str]] = {}  # (service, event id) -> members
        offsets: dict[tuple[str, str], int] = {}  # (group, topic) -> next index into log
        down: dict[str, int] = {}  # member name -> event number it comes back at
        rr: dict[str, int] = {}

        def deliver(k: float) -> None:
            # every group reads each subscribed topic from its position, one live member each
            groups: dict[str, list[tuple[Member, frozenset[str]]]] = {}
            for name, (member, group, topics) in members.items():
                if name not in down:
                    groups.setdefault(group, []).append((member, topics))
            for group, live in sorted(groups.items()):
                for index, (kk, topic, event) in enumerate(log):
                    if kk < group_start[group]:
                        continue
                    if offsets.get((group, topic), 0) > index:
                        continue
                    readers = [m for m, topics in live if topic in topics]
                    if not readers:
                        continue
                    offsets[(group, topic)] = index + 1
                    member = readers[rr.get(group, 0) % len(readers)]
                    rr[group] = rr.get(group, 0) + 1
                    got = received.setdefault((member.service, event.id), [])
                    got.append(member.name)
                    out.step(k, event.id, "delivered", f"to {member.name} (group {group!r})")
                    if event.type not in member.wants:
                        out.broke(
                            "each service gets only the events it needs",
                            f"{member.service} received {event.id} ({event.type}), which it "
                            "does not need",
                        )
                        return
                    if len(got) > 1:
                        out.broke(
                            "each service gets each event once",
                            f"{member.service} received {event.id} {len(got)} times "
                            f"({', '.join(got)}): its members are in different groups, and "
                            "every group gets its own copy",
                        )
                        return

        for k in range(1, schedule.size + 1):
            for name, back in list(down.items()):
                if back <= k:
                    del down[name]
                    out.step(k - 0.5, name, "restarted", "rejoins its group")
            if joins.get(k) and LATE_SERVICE[0] not in started:
                out.step(k - 0.5, LATE_SERVICE[0], "new service", "starts with no producer change")
                for member in _members(*LATE_SERVICE):
                    join(member, k)
            for i in crashes.get(k, []):
                name = everyone[i].name
                if name not in down:
                    down[name] = k + 2
                    out.step(k - 0.5, name, "crashed", "leaves its group")
            event = Event(f"e{k}", types[k], 100 + (k + 1) // 2)
            topic = call(solution.topic_for, event, what="topic_for(event)", budget=budget)
            if not isinstance(topic, str) or not topic:
                raise wrong_type("topic_for(event)", topic, "a non-empty str (a topic name)")
            log.append((k, topic, event))
            out.step(k, event.id, "sent", f"{event.type} to topic {topic!r}")
            deliver(k)
            if out.failed:
                return
        end = schedule.size + 1
        if down:
            down.clear()
            out.step(end - 0.5, "everyone", "restarted", "all crashed members are back")
            deliver(end)
            if out.failed:
                return
        wants = {s: w for s, (_, w) in SERVICES.items()}
        wants[LATE_SERVICE[0]] = LATE_SERVICE[2]
        for k, _topic, event in log:
            for service, need in wants.items():
                due = service in started and started[service] <= k and event.type in need
                if due and (service, event.id) not in received:
                    out.broke(
                        "each service gets every event it needs",
                        f"{service} never received {event.id} ({event.type}), published "
                        "after it started",
                        time=end,
                        subject=service,
                    )
                    return

    def starter(self):
        return Starter

    def reference(self):
        return Reference


class Starter:
    """One topic for everything; every member in its own group. (Try it: what goes wrong?)"""

    def topic_for(self, event):
        return "orders"

    def subscribe(self, member):
        return member.name, ["orders"]


class Reference:
    """A topic per event type; one consumer group per service, named after the service.

    The producer names the topic from the event's type alone, so a new service needs no
    producer change: it subscribes to the types it needs under its own group, and its members
    share that group's events."""

    def topic_for(self, event):
        return event.type

    def subscribe(self, member):
        return member.service, sorted(member.wants)


__all__ = ["Event", "Member", "RouteEvents", "SolutionError"]
