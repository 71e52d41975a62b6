"""Dual writes, the transactional outbox and the inbox (chapter 3), on real sqlite3 databases."""

import doctest
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlib.models.outbox as outbox_module
from mqlib.models.outbox import (
    CRASH_POINTS,
    STRATEGIES,
    Crash,
    random_crashes,
    run_orders,
)
from mqlib.scenarios.outbox import DEFAULT_CRASHES, compare_strategies, crash_sweep


def test_the_docstring_examples():
    assert doctest.testmod(outbox_module).failed == 0


# -- the two dual writes --------------------------------------------------------------------------


def test_commit_then_publish_loses_the_event_of_a_crash_between_the_writes():
    result = run_orders("commit_then_publish", 3, [Crash("service_between_writes", 2)])
    assert result.orders == 3 and result.published == 2
    assert result.lost_events == ("o2",) and result.phantom_events == ()
    assert (result.reserved, result.expected_reserved) == (2, 3)


def test_publish_then_commit_announces_an_order_that_was_rolled_back():
    result = run_orders("publish_then_commit", 3, [Crash("service_between_writes", 2)])
    assert result.orders == 2 and result.published == 3
    assert result.phantom_events == ("o2",) and result.lost_events == ()
    assert (result.reserved, result.expected_reserved) == (3, 2)


def test_without_crashes_every_strategy_is_consistent():
    for strategy in STRATEGIES:
        result = run_orders(strategy, 5)
        assert result.consistent, strategy
        assert (result.orders, result.published, result.applied, result.reserved) == (5, 5, 5, 5)


# -- the outbox and the inbox -------------------------------------------------------------------


def test_the_outbox_writes_the_order_and_its_event_in_one_transaction():
    result = run_orders("outbox", 2, [Crash("service_between_writes", 1)])
    kinds = [(e["kind"], e["order"]) for e in result.trace]
    # the crash comes after the single commit; the relay still publishes o1 from the outbox table
    assert kinds[:3] == [("committed", "o1"), ("service_crash", "o1"), ("relayed", "o1")]
    assert result.consistent and result.published == 2


def test_a_relay_crash_publishes_twice_and_the_inbox_skips_the_copy():
    crashes = [Crash("relay_after_publish", 2)]
    without = run_orders("outbox", 3, crashes, inbox=False)
    with_inbox = run_orders("outbox", 3, crashes)
    assert without.published == with_inbox.published == 4  # o2 relayed twice: at least once
    assert without.double_effects == ("o2",) and without.reserved == 4
    assert with_inbox.double_effects == () and with_inbox.skipped == 1
    assert with_inbox.reserved == with_inbox.expected_reserved == 3


def test_a_consumer_crash_before_its_commit_rolls_the_effect_back():
    result = run_orders("outbox", 3, [Crash("consumer_before_commit", 2)], inbox=False)
    assert result.delivered == 4  # o2 twice
    assert result.applied == 3 and result.consistent  # the first attempt left nothing behind
    crash = next(e for e in result.trace if e["kind"] == "consumer_crash")
    assert crash == {"kind": "consumer_crash", "order": "o2", "committed": False}


def test_a_consumer_crash_after_its_commit_redelivers_a_message_the_inbox_recognises():
    result = run_orders("outbox", 3, [Crash("consumer_after_commit", 2)])
    assert (result.delivered, result.applied, result.skipped) == (4, 3, 1)
    assert result.consistent


def test_the_inbox_is_insert_on_conflict_do_nothing():
    """The inbox's whole check is one statement: a second insert of the same id inserts no row.
    Source: SQLite, "UPSERT" (lang_upsert.html), supported since SQLite 3.24."""
    assert sqlite3.sqlite_version_info >= (3, 24)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE inbox (message_id TEXT PRIMARY KEY)")
    sql = "INSERT INTO inbox (message_id) VALUES (?) ON CONFLICT DO NOTHING"
    assert [db.execute(sql, ("evt-o1",)).rowcount for _ in range(3)] == [1, 0, 0]


# -- the chapter's table and the sweep the prose quotes -------------------------------------------


def test_the_chapter_comparison_table():
    rows = {row["setup"]: row for row in compare_strategies()}
    assert list(rows) == [
        "commit then publish",
        "publish then commit",
        "outbox, no inbox",
        "outbox + inbox",
    ]
    pick = ("orders", "published", "applied", "lost", "phantom", "doubled", "reserved")
    assert {k: tuple(r[k] for k in pick) for k, r in rows.items()} == {
        "commit then publish": (10, 9, 9, 1, 0, 0, 9),
        "publish then commit": (9, 10, 10, 0, 1, 0, 10),
        "outbox, no inbox": (10, 11, 12, 0, 0, 2, 12),
        "outbox + inbox": (10, 11, 10, 0, 0, 0, 10),
    }
    # 10 + o5's second copy and o6's redelivery (both skipped) + o8's redelivery (its first try
    # was rolled back, so this one is applied)
    assert rows["outbox + inbox"]["delivered"] == 13


def test_two_hundred_seeded_crash_schedules_lose_nothing_and_double_nothing():
    """The issue's bar: over at least 200 seeded crash schedules the outbox with an inbox loses
    no event and applies no effect twice, while each dual write does damage."""
    rows = {row["setup"]: row for row in crash_sweep(200, 10)}
    clean = rows["outbox + inbox"]
    assert clean["schedules"] == 200 and clean["crashes"] == 1619
    assert (clean["lost"], clean["phantom"], clean["doubled"], clean["clean"]) == (0, 0, 0, 200)
    assert rows["commit then publish"]["lost"] == 404
    assert rows["publish then commit"]["phantom"] == 404
    assert rows["outbox, no inbox"]["doubled"] == 697
    assert rows["outbox, no inbox"]["lost"] == rows["outbox, no inbox"]["phantom"] == 0


@settings(max_examples=200, deadline=None)
@given(
    crashes=st.lists(
        st.builds(Crash, st.sampled_from(CRASH_POINTS), st.integers(min_value=1, max_value=8)),
        max_size=12,
    )
)
def test_any_crash_schedule_leaves_the_outbox_with_inbox_consistent(crashes):
    result = run_orders("outbox", 8, crashes)
    assert result.consistent
    assert result.reserved == result.expected_reserved == 8


def test_default_crashes_cover_every_point():
    assert {c.point for c in DEFAULT_CRASHES} == set(CRASH_POINTS)


def test_the_seeded_schedule_is_repeatable():
    assert random_crashes(11, 10) == random_crashes(11, 10)
    assert random_crashes(11, 10) != random_crashes(12, 10)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: Crash("explode", 1), ValueError, "point must be one of"),
        (lambda: Crash("relay_after_publish", 0), ValueError, "order must be >= 1"),
        (lambda: run_orders("two_phase", 3), ValueError, "strategy must be one of"),
        (lambda: run_orders("outbox", -1), ValueError, "orders must be >= 0"),
        (lambda: run_orders("outbox", 3, Crash("relay_after_publish", 1)), TypeError, "list"),
        (lambda: run_orders("outbox", 3, ["o1"]), TypeError, "only Crash objects"),
        (lambda: run_orders("outbox", 3, inbox="yes"), TypeError, "inbox must be True or False"),
        (lambda: random_crashes(0, 3, rate=1.5), ValueError, "rate must be <= 1"),
        (lambda: crash_sweep(0), ValueError, "schedules must be >= 1"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_quiz_numbers_are_what_the_engine_computes():
    from mqlib import quiz

    question = next(q for q in quiz.load("ch03") if "compare_strategies()" in q["question"])
    right = next(a["value"] for a in question["answers"] if a.get("correct"))
    rows = {row["setup"]: row for row in compare_strategies()}
    assert right == rows["outbox, no inbox"]["reserved"] == 12
    wrong = {a["value"] for a in question["answers"] if a.get("type") == "value"} - {right}
    assert wrong == {
        rows["outbox + inbox"]["reserved"],  # 10
        rows["commit then publish"]["reserved"],  # 9
        rows["outbox, no inbox"]["published"],  # 11
    }
