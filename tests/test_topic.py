"""Publish/subscribe with consumer groups (chapter 2): fan-out across groups, round-robin sharing
within a group, groups and members joining and leaving, and the chapter's scenario.

Run ``python tests/test_topic.py`` to rewrite tests/golden/pubsub.json after a deliberate change.
"""

from __future__ import annotations

import doctest
import inspect
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlib.models.topic as topic_module
import mqlib.scenarios.pubsub as pubsub_module
from mqlib.core import Simulation
from mqlib.models.topic import ConsumerGroup, Topic
from mqlib.scenarios.pubsub import PubSubRun, default_run


def test_the_lessons_groups_every_group_gets_every_message_members_split_them():
    run = PubSubRun()  # payment 2, email 3, analytics 1
    assert run.groups() == {
        "payment": ["payment-1", "payment-2"],
        "email": ["email-1", "email-2", "email-3"],
        "analytics": ["analytics-1"],
    }
    run.publish(3)
    log = run.delivery_log()
    # The lesson: payment msg1 -> instance 1, msg2 -> instance 2; email msg1, 2, 3 -> 1, 2, 3;
    # analytics gets all of them.
    assert [(m, mem) for m, g, mem in log if g == "payment"] == [
        ("msg1", "payment-1"),
        ("msg2", "payment-2"),
        ("msg3", "payment-1"),
    ]
    assert [(m, mem) for m, g, mem in log if g == "email"] == [
        ("msg1", "email-1"),
        ("msg2", "email-2"),
        ("msg3", "email-3"),
    ]
    assert [(m, mem) for m, g, mem in log if g == "analytics"] == [
        ("msg1", "analytics-1"),
        ("msg2", "analytics-1"),
        ("msg3", "analytics-1"),
    ]
    # One publish, three groups subscribed: three copies, one per group.
    assert Counter(m for m, _, _ in log) == {"msg1": 3, "msg2": 3, "msg3": 3}


def test_default_run_exact_split():
    run = default_run()
    assert run.now == 10.0
    assert run.published == 10
    assert run.deliveries() == {
        "payment": {"payment-1": 5, "payment-2": 5},
        "email": {"email-1": 4, "email-2": 3, "email-3": 3},
        "analytics": {"analytics-1": 10},
        "inventory": {"inventory-1": 2, "inventory-2": 2},
    }
    assert run.received() == {"payment": 10, "email": 10, "analytics": 10, "inventory": 4}
    assert run.pending() == {"payment": 0, "email": 0, "analytics": 0, "inventory": 0}
    inventory = [m for m, g, _ in run.delivery_log() if g == "inventory"]
    assert inventory == ["msg7", "msg8", "msg9", "msg10"]  # only what came after it subscribed
    assert run.summary() == (
        "t=10s: published 10; received per group (split over current members): payment 10 (5/5); "
        "email 10 (4/3/3); analytics 10 (10); inventory 4 (2/2); 34 copies in all"
    )
    # Who got each message, as the chapter's chart draws it.
    assert run.group_order() == ["payment", "email", "analytics", "inventory"]
    copies = run.copies()
    assert copies["messages"] == list(range(1, 11))
    assert copies["groups"]["inventory"] == {
        "delivered": [0] * 6 + [1] * 4,
        "waiting": [0] * 10,
        "member": [None] * 6 + ["inventory-1", "inventory-2"] * 2,
    }
    assert copies["groups"]["payment"]["member"] == ["payment-1", "payment-2"] * 5
    assert copies["groups"]["email"]["member"][:4] == ["email-1", "email-2", "email-3", "email-1"]
    assert copies["groups"]["analytics"]["delivered"] == [1] * 10
    assert run.copies(window=3)["messages"] == [8, 9, 10]
    assert run.copies(window=3)["groups"]["inventory"]["member"] == [
        "inventory-2",
        "inventory-1",
        "inventory-2",
    ]
    assert run.copies(window=50) == copies  # a window wider than the run shows all of it


def test_a_new_group_needs_no_producer_change():
    sim = Simulation()
    topic = Topic(sim, "order-events")
    topic.subscribe("payment", 1)

    def producer(n):  # the producer only ever knows the topic
        for _ in range(n):
            topic.publish({"event": "order_created"})

    producer(3)
    analytics = topic.subscribe("analytics", 1)
    producer(2)
    assert topic.groups["payment"].received == 5
    assert analytics.received == 2
    delivered = [
        e.data["message"] for e in sim.trace.of_kind("deliver") if e.data["group"] == "analytics"
    ]
    assert delivered == ["msg4", "msg5"]
    # publish takes no argument that names a group or a consumer
    assert list(inspect.signature(Topic.publish).parameters) == ["self", "body", "message_id"]


def test_a_group_without_members_keeps_its_messages_until_one_joins():
    run = PubSubRun({"email": 1})
    run.remove_member("email")
    run.publish(3)
    assert run.pending() == {"email": 3}
    assert run.received() == {"email": 3}
    assert run.summary().endswith("email 3 (no members, 3 waiting); 3 copies in all")
    member = run.add_member("email")
    assert member == "email-2"  # ids are not reused
    assert run.pending() == {"email": 0}
    assert run.deliveries() == {"email": {"email-1": 0, "email-2": 3}}


def test_a_member_that_leaves_gets_nothing_more_and_the_round_robin_continues():
    run = PubSubRun({"email": 3})
    run.publish(4)  # 1, 2, 3, 1: next turn is email-2
    run.remove_member("email", "email-2")
    run.publish(3)  # email-3, email-1, email-3
    assert [mem for _, _, mem in run.delivery_log()] == [
        "email-1",
        "email-2",
        "email-3",
        "email-1",
        "email-3",
        "email-1",
        "email-3",
    ]
    assert run.deliveries() == {"email": {"email-1": 3, "email-2": 1, "email-3": 3}}


def test_removing_a_group_stops_its_copies():
    run = PubSubRun()
    run.publish(2)
    run.advance(1.0)
    run.remove_group("email")
    run.publish(2)
    assert run.received() == {"payment": 4, "analytics": 4}
    assert "email" not in run.deliveries()
    # The removed group keeps its place (and its earlier copies) in the chart data.
    assert run.group_order() == ["payment", "email", "analytics"]
    assert run.copies()["groups"]["email"] == {
        "delivered": [1, 1, 0, 0],
        "waiting": [0, 0, 0, 0],
        "member": ["email-1", "email-2", None, None],
    }
    run.add_group("email", 1)  # subscribing again does not move it
    run.publish(1)
    assert run.group_order() == ["payment", "email", "analytics"]
    assert run.copies()["groups"]["email"]["member"][-1] == "email-1"  # the new group's


def test_copies_mark_messages_waiting_for_a_member():
    run = PubSubRun({"payment": 1, "analytics": 0})
    run.publish(2)
    assert run.copies() == {
        "messages": [1, 2],
        "groups": {
            "payment": {
                "delivered": [1, 1],
                "waiting": [0, 0],
                "member": ["payment-1", "payment-1"],
            },
            "analytics": {"delivered": [0, 0], "waiting": [1, 1], "member": [None, None]},
        },
    }
    run.add_member("analytics")
    assert run.copies()["groups"]["analytics"] == {
        "delivered": [1, 1],
        "waiting": [0, 0],
        "member": ["analytics-1", "analytics-1"],
    }
    assert PubSubRun({}).copies() == {"messages": [], "groups": {}}
    assert PubSubRun().copies(window=5)["messages"] == []


_actions = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 4)),
        st.tuples(st.just("add_group"), st.integers(0, 3)),
        st.tuples(st.just("remove_group"), st.integers(0, 9)),
        st.tuples(st.just("add_member"), st.integers(0, 9)),
        st.tuples(st.just("remove_member"), st.integers(0, 99)),
        st.tuples(st.just("advance"), st.integers(1, 3)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions=_actions)
def test_each_group_gets_every_message_published_while_subscribed_exactly_once(actions):
    run = PubSubRun({"payment": 2, "email": 3, "analytics": 1})
    expected = {name: [] for name in run.groups()}  # group -> messages it must receive
    made = 0
    for action, n in actions:
        names = list(run.groups())
        if action == "publish":
            ids = run.publish(n)
            for name in names:
                expected[name].extend(ids)
        elif action == "add_group":
            made += 1
            name = f"g{made}"
            run.add_group(name, n)
            expected[name] = []
        elif action == "remove_group" and names:
            name = names[n % len(names)]
            run.remove_group(name)
            del expected[name]
        elif action == "add_member" and names:
            run.add_member(names[n % len(names)])
        elif action == "remove_member" and names:
            name = names[n % len(names)]
            members = run.groups()[name]
            if members:
                run.remove_member(name, members[n % len(members)])
        elif action == "advance":
            run.advance(float(n))
    log = run.delivery_log()
    for name, group in run.topic.groups.items():
        delivered = [m for m, g, _ in log if g == name]
        waiting = [m.id for m in group.pending]
        assert Counter(delivered) == Counter(set(delivered))  # never twice within a group
        assert delivered + waiting == expected[name]  # every message, in publish order
        assert sum(group.delivered.values()) == len(delivered)
        assert group.received == len(expected[name])
        if group.members:
            assert not waiting


@settings(max_examples=80, deadline=None)
@given(members=st.integers(1, 6), messages=st.integers(0, 50))
def test_members_of_a_stable_group_split_the_messages_round_robin(members, messages):
    run = PubSubRun({"svc": members})
    if messages:
        run.publish(messages)
    counts = list(run.deliveries()["svc"].values())
    assert sum(counts) == messages
    assert counts == [
        messages // members + (1 if i < messages % members else 0) for i in range(members)
    ]


def test_docstring_examples():
    result = doctest.testmod(topic_module, extraglobs={"Simulation": Simulation})
    assert result.failed == 0 and result.attempted > 0
    result = doctest.testmod(pubsub_module)
    assert result.failed == 0 and result.attempted > 0


# --- bad input -----------------------------------------------------------------------------------

_not_text = st.one_of(st.just(""), st.integers(), st.none(), st.floats(), st.lists(st.text()))
_not_int = st.one_of(st.floats(), st.text(max_size=3), st.booleans(), st.none())
_not_seconds = st.one_of(
    st.floats(max_value=0),
    st.just(float("nan")),
    st.just(float("inf")),
    st.text(max_size=3),
    st.booleans(),
)


def _topic():
    topic = Topic(Simulation(), "t")
    topic.subscribe("g", 2)
    topic.publish(message_id="dup")
    return topic


def _run():
    return PubSubRun({"g": 2})


_CASES = {
    "Topic(sim)": ("sim", st.one_of(st.none(), st.integers(), st.text()), lambda v: Topic(v)),
    "Topic(name)": ("name", _not_text, lambda v: Topic(Simulation(), v)),
    "publish(message_id)": (
        "message_id",
        st.one_of(_not_text.filter(lambda v: v is not None), st.just("dup")),
        lambda v: _topic().publish(message_id=v),
    ),
    "subscribe(name)": (
        "name",
        st.one_of(_not_text, st.just("g")),
        lambda v: _topic().subscribe(v),
    ),
    "subscribe(members)": (
        "members",
        st.one_of(_not_int, st.integers(max_value=-1), st.integers(min_value=1001)),
        lambda v: _topic().subscribe("x", v),
    ),
    "unsubscribe(name)": (
        "group",
        st.one_of(_not_text, st.text(min_size=2)),
        lambda v: _topic().unsubscribe(v),
    ),
    "add_member(member)": (
        "member",
        st.one_of(st.just(""), st.integers(), st.just("g-1")),
        lambda v: _topic().groups["g"].add_member(v),
    ),
    "remove_member(member)": (
        "member",
        st.one_of(_not_text, st.text(min_size=4)),
        lambda v: _topic().groups["g"].remove_member(v),
    ),
    "ConsumerGroup(topic)": (
        "topic",
        st.one_of(st.none(), st.text()),
        lambda v: ConsumerGroup(v, "g"),
    ),
    "PubSubRun(groups)": (
        "groups",
        st.one_of(st.lists(st.text()), st.text(), st.integers()),
        lambda v: PubSubRun(v),
    ),
    "PubSubRun(groups values)": (
        "members",
        st.one_of(_not_int, st.integers(max_value=-1)),
        lambda v: PubSubRun({"g": v}),
    ),
    "PubSubRun(groups keys)": (
        "name",
        st.one_of(st.just(""), st.integers()),
        lambda v: PubSubRun({v: 1}),
    ),
    "PubSubRun(topic)": ("name", _not_text, lambda v: PubSubRun(topic=v)),
    "PubSubRun(seed)": ("seed", _not_int, lambda v: PubSubRun(seed=v)),
    "run.publish(count)": (
        "count",
        st.one_of(_not_int, st.integers(max_value=0), st.integers(min_value=10_001)),
        lambda v: _run().publish(v),
    ),
    "run.add_group(name)": (
        "name",
        st.one_of(_not_text, st.just("g")),
        lambda v: _run().add_group(v),
    ),
    "run.add_group(members)": (
        "members",
        st.one_of(_not_int, st.integers(max_value=-1)),
        lambda v: _run().add_group("h", v),
    ),
    "run.remove_group(name)": (
        "group",
        st.one_of(_not_text, st.just("nope")),
        lambda v: _run().remove_group(v),
    ),
    "run.add_member(group)": (
        "group",
        st.one_of(_not_text, st.just("nope")),
        lambda v: _run().add_member(v),
    ),
    "run.remove_member(member)": (
        "member",
        st.one_of(st.just(""), st.integers(), st.just("g-9")),
        lambda v: _run().remove_member("g", v),
    ),
    "run.advance(seconds)": ("seconds", _not_seconds, lambda v: _run().advance(v)),
    "run.copies(window)": (
        "window",
        st.one_of(_not_int.filter(lambda v: v is not None), st.integers(max_value=0)),
        lambda v: _run().copies(v),
    ),
}


@settings(max_examples=200, deadline=None)
@given(data=st.data(), case=st.sampled_from(sorted(_CASES)))
def test_bad_arguments_raise_an_error_that_names_the_parameter(data, case):
    name, bad_values, call = _CASES[case]
    value = data.draw(bad_values, label=name)
    with pytest.raises((ValueError, TypeError)) as info:
        call(value)
    assert name in str(info.value), (case, value, str(info.value))


def test_removing_a_member_from_an_empty_group_is_refused():
    run = PubSubRun({"g": 0})
    with pytest.raises(ValueError, match="no members"):
        run.remove_member("g")


# --- golden trace --------------------------------------------------------------------------------


# -- issue 13: constant cost per publish, bounded memory -------------------------------------------
def test_publish_keeps_recent_messages_and_counts_all():
    from mqlib.models.topic import RECENT_MESSAGES, Topic

    sim = Simulation(trace_limit=None)
    topic = Topic(sim)
    group = topic.subscribe("g", members=2)
    total = RECENT_MESSAGES + 500
    for _ in range(total):
        topic.publish()
    assert topic.published_count == total and group.received == total
    assert len(topic.messages) == RECENT_MESSAGES
    assert topic.messages[-1].seq == total and topic.messages[0].seq == 501
    with pytest.raises(ValueError, match="already published"):
        topic.publish(message_id="msg3")  # long gone from the recent window, still unique
    # who got each message, kept on the message, agrees with the trace
    last = {e.data["message"]: e.data["member"] for e in sim.trace.of_kind("deliver")}
    assert all(m.got["g"] == last[m.id] for m in topic.messages)


def test_copies_agree_with_the_delivery_log():
    from mqlib.scenarios.pubsub import PubSubRun

    run = PubSubRun({"payment": 2, "email": 0})
    run.publish(3)
    run.add_member("email")
    run.add_group("late", 1)
    run.publish(2)
    run.remove_group("late")
    copies = run.copies()
    got = {(m, g): member for m, g, member in run.delivery_log()}
    for name, row in copies["groups"].items():
        for seq, member in zip(copies["messages"], row["member"], strict=True):
            assert member == got.get((f"msg{seq}", name))
