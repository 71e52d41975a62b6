"""Differential tests: the same script on the simulator and on a real JetStream server.

Each chapter scenario is defined once (in :mod:`mqlib.real.differential`) and played twice; the
two runs must agree on every delivery (who, which message, delivery count, ACKed), on the stored
messages and on the dead letter queue. The expected values are spelled out too, so a mistake made
the same way in both adapters is still caught. The real runs sleep through small ``ack_wait``
timeouts (0.5 s), so the whole file takes about 10 s.
"""

from __future__ import annotations

import time

import pytest

from mqlib.models.delivery import Fault
from mqlib.real import JetStreamServer
from mqlib.real.differential import (
    CHAPTER_1,
    CHAPTER_3_FAULTS,
    CHAPTER_6,
    HEARTBEAT,
    LATE_ACK,
    AckHeld,
    AckResult,
    DeadLetterRow,
    Delivered,
    ExpectNothing,
    LogDelivery,
    Publication,
    Publish,
    QueueOutcome,
    QueueScript,
    Receive,
    Wait,
    WaitPastTimeout,
    run_guarantee_on_jetstream,
    run_script_on_jetstream,
    side_by_side,
    simulate_guarantee,
    simulate_script,
)
from mqlib.scenarios.guarantees import DEFAULT_FAULTS


@pytest.fixture(scope="module")
def server():
    with JetStreamServer() as srv:
        yield srv


def both(script: QueueScript, server: JetStreamServer) -> tuple[QueueOutcome, QueueOutcome]:
    simulated = simulate_script(script)
    started = time.perf_counter()
    real = run_script_on_jetstream(script, server)
    print(f"\n{script.name}: JetStream run {time.perf_counter() - started:.2f} s")
    print(side_by_side(simulated, real))
    return simulated, real


# -- chapter 1: competing consumers and the visibility timeout --------------------------------


def test_chapter_1_competing_consumers_and_redelivery_match(server):
    simulated, real = both(CHAPTER_1, server)
    assert real == simulated
    assert simulated.deliveries == [
        Delivered("A", "m1", 1, True),
        Delivered("B", "m2", 1, True),
        Delivered("C", "m3", 1, False),  # crashed before the ACK
        Delivered("A", "m4", 1, True),
        Delivered("B", "m5", 1, True),
        Delivered("A", "m3", 2, True),  # back after the visibility timeout, count 2
        Delivered("B", "m6", 1, True),
        Delivered("C", None, 0, False),  # nothing left: no message was handed out twice
    ]
    assert simulated.remaining == 0 and simulated.dead_letters == []


def test_without_crashes_each_message_goes_to_exactly_one_consumer(server):
    script = QueueScript(
        (
            *(Publish(f"m{n}") for n in range(1, 5)),
            *(Receive(who) for who in "ABCA"),
            ExpectNothing("B"),
        ),
        name="chapter 1: no crash",
    )
    simulated, real = both(script, server)
    assert real == simulated
    assert [(d.who, d.message, d.count) for d in simulated.deliveries] == [
        ("A", "m1", 1),
        ("B", "m2", 1),
        ("C", "m3", 1),
        ("A", "m4", 1),
        ("B", None, 0),
    ]


# -- chapter 3: delivery guarantees -----------------------------------------------------------


def test_chapter_3_uses_the_chapters_fault_schedule():
    assert CHAPTER_3_FAULTS == DEFAULT_FAULTS


@pytest.mark.parametrize("guarantee", ["at-most-once", "at-least-once", "exactly-once"])
def test_chapter_3_guarantees_match(server, guarantee):
    simulated = simulate_guarantee(guarantee, 10, CHAPTER_3_FAULTS)
    started = time.perf_counter()
    real = run_guarantee_on_jetstream(guarantee, 10, CHAPTER_3_FAULTS, server=server)
    print(f"\n{guarantee}: JetStream run {time.perf_counter() - started:.2f} s")
    assert real == simulated

    ids = [f"m{n}" for n in range(1, 11)]
    redelivered = [(d.message, d.position, d.count) for d in simulated.deliveries if d.count > 1]
    effects = simulated.effects
    if guarantee == "at-most-once":
        # Fire and forget: m3 is lost on the wire and never retried. The consumer commits
        # first, so the crash before m8's charge loses m8; only m9's lost commit redelivers.
        assert simulated.stored == [i for i in ids if i != "m3"]
        assert ("m3", 1, "lost") in simulated.publications
        assert redelivered == [("m9", 8, 2)]
        assert effects["m3"] == effects["m8"] == 0
        assert simulated.balance == 920
    elif guarantee == "at-least-once":
        # Retries store m5 twice (its PubAck was lost); un-ACKed m7, m8, m9 come back with
        # delivery count 2; naive charges: m5, m7 and m9 are charged twice.
        assert simulated.stored == ids[:5] + ["m5"] + ids[5:]
        assert redelivered == [("m7", 8, 2), ("m8", 9, 2), ("m9", 10, 2)]
        assert [i for i in ids if effects[i] == 2] == ["m5", "m7", "m9"]
        assert simulated.balance == 870
    else:
        # The retry of m5 is recognised (Nats-Msg-Id / producer sequence number) and dropped;
        # redeliveries still happen, but the idempotent consumer charges each message once.
        assert simulated.stored == ids
        assert ("m5", 2, "duplicate") in simulated.publications
        assert redelivered == [("m7", 7, 2), ("m8", 8, 2), ("m9", 9, 2)]
        assert all(effects[i] == 1 for i in ids)
        assert simulated.balance == 900


def test_chapter_3_duplicate_publishes_are_dropped_by_message_id(server):
    # m2's PubAck is lost twice, so the producer sends m2 three times.
    faults = [Fault("lose_ack", message=2, attempt=1), Fault("lose_ack", message=2, attempt=2)]
    for guarantee, stored, results in (
        ("at-least-once", ["m1", "m2", "m2", "m2", "m3"], ["stored"] * 3),
        ("exactly-once", ["m1", "m2", "m3"], ["stored", "duplicate", "duplicate"]),
    ):
        simulated = simulate_guarantee(guarantee, 3, faults)
        real = run_guarantee_on_jetstream(guarantee, 3, faults, server=server)
        assert real == simulated
        assert simulated.stored == stored
        assert [p.result for p in simulated.publications if p.message == "m2"] == results
        assert [p.attempt for p in simulated.publications if p.message == "m2"] == [1, 2, 3]
        assert all(d.count == 1 for d in simulated.deliveries)  # no consumer fault


def test_chapter_3_at_least_once_redelivery_counts(server):
    # The consumer crashes after charging m2 and before its ACK, twice in a row.
    faults = [
        Fault("crash_after_effect", message=2, attempt=1),
        Fault("crash_after_effect", message=2, attempt=2),
    ]
    simulated = simulate_guarantee("at-least-once", 3, faults)
    real = run_guarantee_on_jetstream("at-least-once", 3, faults, server=server)
    assert real == simulated
    assert simulated.publications == [Publication(f"m{n}", 1, "stored") for n in (1, 2, 3)]
    assert simulated.deliveries == [
        LogDelivery("m1", 1, 1),
        LogDelivery("m2", 2, 1),
        LogDelivery("m2", 2, 2),
        LogDelivery("m2", 2, 3),
        LogDelivery("m3", 3, 1),
    ]
    assert simulated.effects == {"m1": 1, "m2": 3, "m3": 1}
    assert simulated.balance == 950


# -- chapter 6: a poison message and the dead letter queue ------------------------------------


def test_chapter_6_poison_message_goes_to_the_dlq(server):
    simulated, real = both(CHAPTER_6, server)
    assert real == simulated
    poison = [d for d in simulated.deliveries if d.message == "m3"]
    assert poison == [Delivered("A", "m3", n, False) for n in (1, 2, 3)]
    others = [d for d in simulated.deliveries if d.message not in ("m3", None)]
    assert others == [  # the good orders keep flowing between the poison's attempts
        Delivered("A", "m1", 1, True),
        Delivered("B", "m2", 1, True),
        Delivered("B", "m4", 1, True),
        Delivered("B", "m5", 1, True),
        Delivered("B", "m6", 1, True),
    ]
    assert simulated.deliveries[-1] == Delivered("A", None, 0, False)  # not redelivered again
    assert simulated.dead_letters == [
        DeadLetterRow(
            "m3", "order-3 (malformed)", 3, "ValueError: cannot parse 'order-3 (malformed)'"
        )
    ]
    assert simulated.remaining == 0


def test_chapter_6_max_receives_1_dead_letters_a_crashed_message(server):
    script = QueueScript(
        (
            Publish("m1"),
            Publish("m2"),
            Receive("A", "crash"),
            Receive("B"),
            WaitPastTimeout(),
            ExpectNothing("B"),
        ),
        max_receives=1,
        name="max_receives=1, a crash",
    )
    simulated, real = both(script, server)
    assert real == simulated
    assert simulated.dead_letters == [DeadLetterRow("m1", "m1", 1, None)]  # no error reported
    assert simulated.remaining == 0


# -- input checking ---------------------------------------------------------------------------


def test_scripts_reject_bad_input():
    with pytest.raises(ValueError, match="then"):
        Receive("A", "nak")
    with pytest.raises(ValueError, match="error"):
        Receive("A", "ack", error="boom")
    with pytest.raises(ValueError, match="distinct"):
        QueueScript((Publish("m1"), Publish("m1")))
    with pytest.raises(TypeError, match="steps"):
        QueueScript(("publish m1",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="visibility_timeout"):
        QueueScript((), visibility_timeout=0)
    with pytest.raises(ValueError, match="guarantee"):
        simulate_guarantee("twice", 3)


# -- chapter 1: a visibility timeout shorter than the processing (issue 9 item 1) -------------


def test_late_ack_is_accepted_on_both(server):
    """Processing outlasts ``ack_wait``: duplicate, concurrent processing, then a late ACK.

    JetStream's rule, which the simulator follows (seen on nats-server 2.15.1): an ACK for a
    message that is not deleted yet is accepted and deletes it, even after ``ack_wait`` ran out
    and the message went to another worker; an ACK for a deleted message changes nothing.
    Source: NATS docs, JetStream consumers, "AckWait" and "Acknowledgement models"
    (https://docs.nats.io/nats-concepts/jetstream/consumers). SQS differs: DeleteMessage with an
    older receipt handle succeeds but the message might not be deleted (SQS API reference,
    DeleteMessage).
    """
    simulated, real = both(LATE_ACK, server)
    assert real == simulated
    assert simulated.deliveries == [
        Delivered("A", "m1", 1, False),  # A holds it and works on ...
        Delivered("B", "m1", 2, False),  # ... while B gets it again: concurrent processing
        Delivered("C", None, 0, False),  # after the ACKs nothing is left to hand out
    ]
    assert simulated.acks == [
        AckResult("A", "m1", 1, True),  # the late ACK is accepted and deletes m1
        AckResult("B", "m1", 2, False),  # the second ACK finds nothing to delete
    ]
    assert simulated.remaining == 0 and real.remaining == 0


def test_heartbeat_keeps_the_message_with_its_worker(server):
    """``in_progress()`` / ``extend_visibility`` restarts the timeout: no second receive.

    Source: NATS docs, JetStream consumers, "AckProgress" / nats-py ``Msg.in_progress``
    (https://docs.nats.io/using-nats/developer/develop_jetstream/consumers); SQS
    ChangeMessageVisibility.
    """
    simulated, real = both(HEARTBEAT, server)
    assert real == simulated
    assert simulated.deliveries == [Delivered("A", "m1", 1, False), Delivered("B", None, 0, False)]
    assert simulated.acks == [AckResult("A", "m1", 1, True)]
    assert simulated.remaining == 0


def test_hold_steps_are_checked():
    with pytest.raises(ValueError, match="needs an earlier"):
        QueueScript((Publish("m1"), AckHeld("A")))
    with pytest.raises(ValueError, match="already holds"):
        QueueScript((Receive("A", "hold"), Receive("A", "hold")))
    with pytest.raises(ValueError, match="seconds"):
        Wait(0)
