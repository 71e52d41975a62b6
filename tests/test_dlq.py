"""Chapter 6: dead letter queues - redrive after max receives, head-of-line blocking, replay,
alerts.

Regenerate the golden trace with ``python tests/test_dlq.py``.
"""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib import Simulation, WorkQueue
from mqlib.models.dlq import (
    DeadLetterQueue,
    HandlerConsumer,
    PoisonHandler,
    RedriveQueue,
    is_poison,
)
from mqlib.scenarios.dead_letter import DeadLetterRun, SteadyProducer, default_run


def receives_of(run, message_id):
    return [e for e in run.sim.trace.of_kind("receive") if e.data["message"] == message_id]


# -- redrive: exactly max_receives, the rest keeps flowing -----------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    max_receives=st.integers(1, 6),
    consumers=st.integers(1, 3),
    visibility_timeout=st.sampled_from([0.75, 1.0, 2.0, 3.0]),
    processing_time=st.sampled_from([0.25, 0.5]),
    inject_at=st.sampled_from([0.5, 2.0, 3.25]),
    ordered=st.booleans(),
)
def test_a_poison_pill_reaches_the_dlq_after_exactly_max_receives(
    max_receives, consumers, visibility_timeout, processing_time, inject_at, ordered
):
    run = DeadLetterRun(
        rate=1.0,
        consumers=consumers,
        processing_time=processing_time,
        visibility_timeout=visibility_timeout,
        max_receives=max_receives,
        ordered=ordered,
        alert_threshold=None,
    )
    run.advance(inject_at)
    poison = run.inject_poison()
    poison_seq = run.queue.messages[poison].seq
    run.advance(max_receives * visibility_timeout + 5)
    assert len(receives_of(run, poison)) == max_receives
    failures = [
        e for e in run.sim.trace.of_kind("processing_failed") if e.data["message"] == poison
    ]
    assert [e.data["receive_count"] for e in failures] == list(range(1, max_receives + 1))
    [moved] = run.sim.trace.of_kind("dead_letter")
    assert moved.data["message"] == poison and moved.data["receive_count"] == max_receives
    # SQS moves it on the receive after the max_receives-th: at its last timeout if a consumer is
    # free then, else when the next consumer finishes its message and asks for another
    expired = receives_of(run, poison)[-1].time + visibility_timeout
    finished = {e.time for e in run.sim.trace if e.kind in ("processed", "processing_failed")}
    assert moved.time == pytest.approx(expired) or (moved.time > expired and moved.time in finished)
    [entry] = run.inspect_dlq()
    assert entry["receive_count"] == max_receives
    assert entry["last_error"] == PoisonHandler.error
    assert entry["source"] == "orders"
    # messages sent after the pill: on a standard queue they kept flowing while it was retried;
    # on a FIFO queue none overtakes it (they wait until it has moved to the DLQ)
    overtook = [
        e
        for e in run.sim.trace.of_kind("ack")
        if e.time < moved.time and int(e.data["message"][1:]) > poison_seq
    ]
    if ordered:
        assert overtook == []
    elif moved.time - inject_at >= 2:
        assert overtook
    run.stop()
    run.advance(20)
    assert run.queue.depth == 0
    assert run.processed == run.queue.sent_count - 1


def test_the_lesson_lifecycle_three_failures_then_the_dlq():
    run = default_run()
    trace = [
        (e.time, e.kind, e.data.get("receive_count"))
        for e in run.sim.trace
        if e.data.get("message") == "m8"  # m7 is sent at t=3 just before the pill (instant rule)
        and e.kind in ("receive", "processing_failed", "dead_letter")
    ]
    assert trace[:7] == [
        (3, "receive", 1),
        (3.5, "processing_failed", 1),
        (5.0, "receive", 2),
        (5.5, "processing_failed", 2),
        (7.0, "receive", 3),
        (7.5, "processing_failed", 3),
        (9.0, "dead_letter", 3),
    ]
    processed_meanwhile = [e for e in run.sim.trace.of_kind("ack") if 3 < e.time < 9]
    assert len(processed_meanwhile) >= 10
    assert run.sim.trace.of_kind("dlq_alert")[0].time == 9.0


# -- no DLQ ---------------------------------------------------------------------------------------
def test_without_a_dlq_an_ordered_queue_stalls_behind_the_poison_pill():
    run = DeadLetterRun(rate=2.0, consumers=1, dlq=False, ordered=True)
    run.advance(3)
    poison = run.inject_poison()
    poison_seq = run.queue.messages[poison].seq
    run.advance(1)
    processed = run.processed
    run.advance(60)
    assert run.processed == processed  # throughput zero: nothing behind the pill is processed
    later = [m for m in run.processed_ids() if run.queue.messages[m].seq > poison_seq]
    assert later == []
    assert len(receives_of(run, poison)) > 20  # retried over and over
    assert run.inspect_dlq() == []
    tail = run.series["throughput"][-100:]
    assert set(tail) == {0.0}
    assert run.queue.depth > 100
    # the fix unblocks it: the pill goes through and everything behind follows, in order
    run.fix_bug()
    run.advance(200)
    ids = run.processed_ids()
    assert poison in ids
    seqs = [run.queue.messages[m].seq for m in ids]
    assert seqs == sorted(seqs)


def test_without_a_dlq_a_standard_queue_retries_forever_but_others_pass():
    run = DeadLetterRun(rate=2.0, consumers=2, dlq=False)
    poison = run.inject_poison()
    run.advance(60)
    assert len(receives_of(run, poison)) >= 25
    assert run.dlq.depth == 0
    assert run.processed >= 110


def test_an_ordered_queue_with_a_dlq_resumes_after_the_move():
    run = DeadLetterRun(rate=1.0, consumers=1, ordered=True, max_receives=2)
    run.advance(2)
    poison = run.inject_poison()
    run.advance(30)
    assert run.dlq.depth == 1
    ids = run.processed_ids()
    seqs = [run.queue.messages[m].seq for m in ids]
    assert seqs == sorted(seqs)
    assert poison not in ids
    assert run.queue.depth <= 2


# -- DLQ operations -------------------------------------------------------------------------------
def test_replay_after_the_fix_processes_the_poison_pill():
    run = DeadLetterRun(max_receives=2)
    poison = run.inject_poison()
    run.advance(10)
    assert [e["message_id"] for e in run.inspect_dlq()] == [poison]
    run.fix_bug()
    assert run.replay() == [poison]
    assert run.dlq.depth == 0
    run.advance(5)
    assert poison in run.processed_ids()
    assert run.dlq.depth == 0
    assert run.queue.messages[poison].receive_count == 1  # a fresh message: the count restarts


def test_replay_before_the_fix_sends_it_back_to_the_dlq():
    run = DeadLetterRun(max_receives=2)
    poison = run.inject_poison()
    run.advance(10)
    run.replay()
    run.advance(10)
    assert [e["message_id"] for e in run.inspect_dlq()] == [poison]
    assert len(receives_of(run, poison)) == 4
    assert poison not in run.processed_ids()


def test_purge_deletes_dead_letters_for_good():
    run = DeadLetterRun(rate=0, max_receives=1, alert_threshold=None)
    for _ in range(3):
        run.inject_poison()
    run.advance(10)
    assert run.dlq.depth == 3
    assert run.purge() == 3
    assert run.dlq.depth == 0 and run.inspect_dlq() == []
    assert run.sim.trace.of_kind("dlq_purge")[0].data["count"] == 3
    run.advance(10)
    assert run.queue.depth == 0  # nothing came back


def test_alert_fires_when_the_dlq_passes_the_threshold():
    run = DeadLetterRun(rate=0, max_receives=1, alert_threshold=2)
    for _ in range(2):
        run.inject_poison()
    run.advance(5)
    assert run.dlq.depth == 2
    assert run.sim.trace.of_kind("dlq_alert") == [] and not run.dlq.alerting
    run.inject_poison()
    run.advance(5)
    [alert] = run.sim.trace.of_kind("dlq_alert")
    assert alert.data == {"dlq": "orders-dlq", "depth": 3, "threshold": 2}
    assert run.dlq.alerting and "(ALERTING)" in run.summary()
    run.inject_poison()
    run.advance(5)
    assert len(run.sim.trace.of_kind("dlq_alert")) == 1  # once per crossing, not per message
    run.purge()
    assert not run.dlq.alerting
    for _ in range(3):
        run.inject_poison()
    run.advance(5)
    assert len(run.sim.trace.of_kind("dlq_alert")) == 2  # re-armed after the purge


def test_lowering_the_threshold_alerts_at_once():
    run = DeadLetterRun(rate=0, max_receives=1, alert_threshold=None)
    run.inject_poison()
    run.advance(5)
    run.set_alert_threshold(0)
    assert run.dlq.alerts == [{"time": 5, "depth": 1, "threshold": 0}]


def test_turning_the_dlq_off_and_on_at_runtime():
    run = DeadLetterRun(rate=0, max_receives=2, dlq=False)
    poison = run.inject_poison()
    run.advance(20)
    assert len(receives_of(run, poison)) >= 5 and run.dlq.depth == 0
    run.set_dlq(True)
    run.advance(5)
    assert run.dlq.depth == 1  # it had used up its receives: moved the next time it came back
    run.set_max_receives(5)
    assert run.queue.max_receives == 5


def test_replay_into_a_queue_that_reused_the_id_is_refused_and_nothing_is_lost():
    run = DeadLetterRun(rate=0, max_receives=1)
    run.queue.send({"poison": True}, message_id="order-9")
    run.advance(5)
    run.queue.send({"poison": False}, message_id="order-9")
    with pytest.raises(ValueError, match="queue 'orders' already holds a message with that id"):
        run.replay()
    assert run.dlq.depth == 1


def test_attempts_include_dead_letters():
    run = default_run()
    run2 = DeadLetterRun(max_receives=2)
    poison = run2.inject_poison()
    run2.advance(10)
    assert run2.attempts()[poison] == 2
    assert run.attempts()["m7"] == 1  # replayed: a fresh message


def test_replay_of_an_unknown_id_is_refused():
    sim = Simulation()
    dlq = DeadLetterQueue(sim)
    with pytest.raises(ValueError, match="message_id 'm9' is not in DLQ 'dlq'"):
        dlq.replay(["m9"])


# -- the model on its own -------------------------------------------------------------------------
def test_redrive_queue_with_a_handler_consumer():
    sim = Simulation()
    dlq = DeadLetterQueue(sim, name="jobs-dlq")
    queue = RedriveQueue(
        sim, visibility_timeout=1.0, name="jobs", dead_letter_queue=dlq, max_receives=2
    )
    consumer = HandlerConsumer(sim, queue, "W", processing_time=0.25)
    queue.send({"poison": True}, message_id="bad")
    queue.send({"poison": False}, message_id="good")
    sim.run(until=5)
    assert [e["message_id"] for e in dlq.inspect()] == ["bad"]
    assert consumer.failed == 2 and consumer.processed == 1
    assert queue.dead_lettered_count == 1 and queue.depth == 0
    assert is_poison(queue.messages["good"]) is False


def test_a_handler_consumer_on_a_plain_work_queue_just_does_not_ack():
    sim = Simulation()
    queue = WorkQueue(sim, visibility_timeout=1.0)
    HandlerConsumer(sim, queue, "W", processing_time=0.25)
    queue.send({"poison": True})
    sim.run(until=3.5)
    assert queue.messages["m1"].receive_count == 4
    assert queue.acked_count == 0


def test_a_crashed_handler_consumer_leaves_its_message_for_the_others():
    run = DeadLetterRun(rate=0, consumers=2, processing_time=1.0)
    run.send(2)
    dropped = run.consumers["A"].crash()
    run.advance(5)
    assert dropped.message.id == "m1"
    assert run.processed == 2
    assert [e.data["consumer"] for e in run.sim.trace.of_kind("ack")] == ["B", "B"]


def test_stop_start_and_send():
    run = DeadLetterRun(rate=0)
    run.advance(5)
    assert run.queue.sent_count == 0
    assert run.send(3) == ["m1", "m2", "m3"]
    run.start(4.0)
    run.advance(1)
    assert run.producer.sent == 5  # at 5, 5.25, 5.5, 5.75 and 6: advance(1) includes its end
    run.stop()
    run.advance(5)
    assert run.producer.sent == 5


def test_producer_capacity_blocks():
    sim = Simulation()
    queue = RedriveQueue(sim, visibility_timeout=5)
    producer = SteadyProducer(sim, queue, rate=10, capacity=3)
    sim.run(until=5)
    assert queue.depth == 3 and producer.blocked and producer.sent == 3
    producer.set_capacity(None)
    sim.run(until=6)
    assert producer.sent > 3


# -- scenario plumbing ----------------------------------------------------------------------------
def test_summary_state_and_series():
    run = default_run()
    assert run.summary() == (
        "t=20s: sent 43, processed 41, failed attempts 3, waiting 1; "
        "DLQ 0 (max receives 3); alerts 1; bug fixed"
    )
    state = run.state()
    assert json.loads(json.dumps(state)) == state
    assert max(run.series["dlq_depth"]) == 1 and run.series["dlq_depth"][-1] == 0
    assert run.attempts()["m8"] == 1
    assert len({len(v) for v in run.series.values()}) == 1


# -- bad input ------------------------------------------------------------------------------------
BAD_VALUES = st.one_of(
    st.just(-1),
    st.just(0),
    st.just(-0.5),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just("many"),
    st.just(2.5),
    st.just([3]),
)

CALLS = {
    "rate": lambda v: DeadLetterRun(rate=v),
    "consumers": lambda v: DeadLetterRun(consumers=v),
    "processing_time": lambda v: DeadLetterRun(processing_time=v),
    "visibility_timeout": lambda v: DeadLetterRun(visibility_timeout=v),
    "max_receives": lambda v: DeadLetterRun(max_receives=v),
    "alert_threshold": lambda v: DeadLetterRun(alert_threshold=v),
    "sample_every": lambda v: DeadLetterRun(sample_every=v),
    "seconds": lambda v: DeadLetterRun().advance(v),
    "count": lambda v: DeadLetterRun().send(v),
    "capacity": lambda v: SteadyProducer(Simulation(), RedriveQueue(Simulation()), capacity=v),
}

FLOATS_OK = {"rate", "processing_time", "visibility_timeout", "sample_every", "seconds"}


def is_valid(name, value):
    if type(value) not in (int, float) or value != value or value in (float("inf"),):
        return False
    if name == "rate":
        return value >= 0
    if name == "alert_threshold":
        return value == 0 and type(value) is int
    return name in FLOATS_OK and value > 0


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(CALLS)), value=BAD_VALUES)
def test_bad_arguments_raise_errors_that_name_the_parameter(name, value):
    if is_valid(name, value):
        return
    with pytest.raises((ValueError, TypeError), match=name):
        CALLS[name](value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.set_max_receives(0), "max_receives must be >= 1"),
        (lambda r: r.set_dlq("yes"), "enabled must be True or False"),
        (lambda r: r.set_alert_threshold(-1), "alert_threshold must be >= 0"),
        (lambda r: r.start(0), "rate must be > 0"),
        (lambda r: r.set_rate(-3), "rate must be >= 0"),
        (lambda r: DeadLetterRun(dlq=1), "dlq must be True or False"),
        (lambda r: DeadLetterRun(ordered="no"), "ordered must be True or False"),
        (lambda r: r.queue.fail("m1", "boom"), "delivery must be a Delivery"),
        (
            lambda r: RedriveQueue(Simulation(), dead_letter_queue="dlq"),
            "dead_letter_queue must be a DeadLetterQueue",
        ),
        (lambda r: DeadLetterQueue("sim"), "sim must be an mqlib Simulation"),
        (lambda r: DeadLetterQueue(Simulation(), name=""), "name must be a non-empty string"),
        (lambda r: HandlerConsumer(Simulation(), r.queue, "X", handler=5), "handler must be"),
        (
            lambda r: SteadyProducer(Simulation(), WorkQueue(Simulation())),
            "queue must be a RedriveQueue",
        ),
        (lambda r: r.dlq.replay([7]), "message_id in message_ids must be a string"),
    ],
)
def test_bad_method_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(DeadLetterRun())


def test_attempt_history_counts_failures_across_replays():
    run = DeadLetterRun(rate=1.0, consumers=1)
    run.inject_poison()
    run.advance(12)
    run.replay()  # before the fix: three more failures, back to the DLQ
    run.advance(12)
    run.fix_bug()
    run.replay()
    run.advance(5)
    run.stop()  # the message sent at the last instant is still being processed: let it finish
    run.advance(5)
    pill = next(row for row in run.attempt_history() if row["failed"])
    assert (pill["failed"], pill["succeeded"]) == (6, 1)
    good = [row for row in run.attempt_history() if not row["failed"]]
    assert good and all(row["succeeded"] == 1 for row in good)


def scanned_attempt_history(run):
    """attempt_history read from the whole trace, as it was before the counts were kept as the
    events happen: the reference while the trace still holds every event."""
    order, failed, succeeded = {}, {}, {}
    for kind, data in run.sim.trace.data_of_kind("send", "processing_failed", "processed"):
        message = data["message"]
        order.setdefault(message, len(order))
        counts = {"processing_failed": failed, "processed": succeeded}.get(kind)
        if counts is not None:
            counts[message] = counts.get(message, 0) + 1
    return [
        {"message": m, "failed": failed.get(m, 0), "succeeded": succeeded.get(m, 0)} for m in order
    ]


def test_attempt_history_is_the_trace_counted_as_it_happens():
    run = default_run()  # poison pills, a DLQ, replays in the scenario's own script
    run.advance(120)
    run.replay()
    run.fix_bug()
    run.replay()
    run.advance(60)
    assert run.sim.trace.dropped == 0  # the whole run is still in the trace: compare them
    history = run.attempt_history()
    assert history == scanned_attempt_history(run)
    assert any(row["failed"] for row in history) and len(history) > 100
    order, failed, _succeeded = run.attempt_counts()
    with pytest.raises(TypeError):
        order["m1"] = 0  # read-only: the view reads the scenario's own counts, not a copy


def test_attempt_history_keeps_the_newest_messages_only():
    from mqlib.scenarios.dead_letter import ATTEMPT_HISTORY_LIMIT

    run = DeadLetterRun(rate=5.0, consumers=2)
    run.advance(1.2 * ATTEMPT_HISTORY_LIMIT / 5.0)
    history = run.attempt_history()
    assert len(history) == ATTEMPT_HISTORY_LIMIT
    sent = run.queue.sent_count
    assert sent > ATTEMPT_HISTORY_LIMIT
    numbers = [int(row["message"].removeprefix("m")) for row in history]
    assert numbers == list(range(sent - ATTEMPT_HISTORY_LIMIT + 1, sent + 1))  # the newest
    order, failed, succeeded = run.attempt_counts()
    assert set(failed) | set(succeeded) <= set(order)  # nothing kept of a forgotten message


# -- the real systems' rules (issue 9) ------------------------------------------------------------
def test_sqs_moves_a_message_on_the_receive_after_max_receive_count():
    """SQS moves a message to the DLQ "when the ReceiveCount for a message exceeds the
    maxReceiveCount" (Amazon SQS Developer Guide, "Using dead-letter queues in Amazon SQS"; the
    ``ApproximateReceiveCount`` attribute, ReceiveMessage API reference): the move is done by the
    receive that would be the ``maxReceiveCount + 1``-th, not when the last timeout runs out."""
    sim = Simulation()
    dlq = DeadLetterQueue(sim)
    queue = RedriveQueue(sim, visibility_timeout=1.0, dead_letter_queue=dlq, max_receives=2)
    queue.send("bad", message_id="bad")
    for _ in range(2):  # two receives, never acked
        delivery = queue.receive("A").value
        queue.fail(delivery, "boom")
        sim.advance(1.5)  # past the visibility timeout: visible again
    # its receives are used up, yet it is still in the source queue, visible: nobody received
    assert queue.messages["bad"].receive_count == 2 and queue.visible_count == 1
    assert dlq.depth == 0
    sim.advance(10)
    assert dlq.depth == 0  # time alone moves nothing
    queue.send("good", message_id="good")
    delivery = queue.receive("B").value  # this receive moves "bad" and returns the next message
    assert delivery.message.id == "good"
    [entry] = dlq.inspect()
    assert (entry["message_id"], entry["receive_count"], entry["dead_lettered_at"]) == (
        "bad",
        2,
        13,
    )
    assert len([e for e in sim.trace.of_kind("receive") if e.data["message"] == "bad"]) == 2


def test_a_receive_with_nothing_else_visible_moves_the_message_and_keeps_waiting():
    """Same rule with an empty queue behind it: the receive moves the message and long-polls on."""
    sim = Simulation()
    dlq = DeadLetterQueue(sim)
    queue = RedriveQueue(sim, visibility_timeout=1.0, dead_letter_queue=dlq, max_receives=1)
    queue.send("bad")
    queue.fail(queue.receive("A").value, "boom")
    sim.advance(1.5)
    request = queue.receive("A")
    assert not request.triggered and dlq.depth == 1 and queue.depth == 0


def test_the_broker_does_not_know_the_error_the_consumer_writes_it():
    """SQS moves "only the message and its attributes" to the DLQ; RabbitMQ's dead-lettering adds
    an ``x-death`` header with a reason and a count, not the exception (RabbitMQ "Dead Letter
    Exchanges" guide). So the dead letter's error is whatever the consumer wrote, or nothing."""
    silent = DeadLetterRun(rate=0, max_receives=2, write_error=False)
    silent.inject_poison()
    silent.advance(10)
    [entry] = silent.inspect_dlq()
    assert entry["last_error"] is None and entry["attributes"] == {}
    assert entry["receive_count"] == 2  # what the broker counts itself
    writing = DeadLetterRun(rate=0, max_receives=2)
    writing.inject_poison()
    writing.advance(10)
    [entry] = writing.inspect_dlq()
    assert entry["attributes"] == {"error": PoisonHandler.error, "error_by": "B"}  # last attempt
    assert entry["last_error"] == PoisonHandler.error
    assert writing.queue.attributes == {}  # it went with the message


def test_fifo_blocks_only_the_poison_pills_message_group():
    """SQS FIFO: "Inflight messages block delivery of available messages within the same message
    group"; other groups are returned (AWS knowledge center, "Why doesn't my SQS FIFO queue
    return all messages or messages in other message groups?"; SQS Developer Guide, "Using the
    message group ID")."""
    run = DeadLetterRun(
        consumers=1, processing_time=0.25, ordered=True, dlq=False, groups=3, rate=3.0
    )
    run.advance(9.9)  # between two sends, so no g1 message is sent at the pill's instant
    before = run.processed_by_group()
    pill = run.inject_poison("g1")
    run.advance(30)
    after = run.processed_by_group()
    assert after["g1"] == before["g1"]  # the pill's group stalls...
    assert after["g2"] - before["g2"] == after["g3"] - before["g3"] == 30  # ...not the others
    assert run.queue.held_back() == {"g1": 30}
    assert len(receives_of(run, pill)) == 15
    # within every group, send order is kept
    ids = run.processed_ids()
    for group in ("g2", "g3"):
        seqs = [run.queue.messages[m].seq for m in ids if run.queue.groups[m] == group]
        assert seqs == sorted(seqs)


def test_fifo_with_one_group_stalls_everything_and_a_dlq_releases_it():
    run = DeadLetterRun(consumers=2, processing_time=0.25, ordered=True, dlq=True, rate=2.0)
    run.advance(3)
    pill = run.inject_poison()
    run.advance(1)
    assert run.queue.in_flight_count <= 1  # one group: one message at a time, even for 2 consumers
    run.advance(20)
    assert [e["message_id"] for e in run.inspect_dlq()] == [pill]
    seqs = [run.queue.messages[m].seq for m in run.processed_ids()]
    assert seqs == sorted(seqs)


def test_dead_letter_retention_clock_standard_keeps_the_send_time_fifo_restarts_it():
    """SQS Developer Guide, "Setting-up dead-letter queue retention": in a standard queue the
    enqueue timestamp is unchanged by the move (so the DLQ's retention must be longer); in a FIFO
    queue it is reset to the time of the move."""
    for ordered in (False, True):
        run = DeadLetterRun(rate=0, max_receives=2, ordered=ordered)
        run.advance(1)
        run.inject_poison()
        run.advance(10)
        [entry] = run.inspect_dlq()
        assert entry["sent_at"] == 1 and entry["dead_lettered_at"] == 5
        assert entry["enqueued_at"] == (5 if ordered else 1)


def test_replay_keeps_the_message_group():
    run = DeadLetterRun(rate=0, max_receives=1, ordered=True, groups=2)
    pill = run.inject_poison("g2")
    run.advance(5)
    run.fix_bug()
    run.replay()
    run.advance(5)
    assert pill in run.processed_ids() and run.queue.groups[pill] == "g2"


def test_groups_and_write_error_are_validated():
    with pytest.raises(ValueError, match="groups must be >= 1"):
        DeadLetterRun(groups=0)
    with pytest.raises(TypeError, match="write_error must be True or False"):
        DeadLetterRun(write_error="yes")
    with pytest.raises(ValueError, match="group must be a non-empty string"):
        RedriveQueue(Simulation(), ordered=True).send("x", group="")


@settings(max_examples=60, deadline=None)
@given(
    groups=st.integers(1, 4),
    consumers=st.integers(1, 3),
    pill_group=st.integers(1, 4),
    dlq=st.booleans(),
)
def test_fifo_groups_keep_order_and_only_the_pills_group_waits(groups, consumers, pill_group, dlq):
    pill_group = min(pill_group, groups)
    run = DeadLetterRun(
        rate=2.0,
        consumers=consumers,
        processing_time=0.25,
        ordered=True,
        dlq=dlq,
        groups=groups,
        alert_threshold=None,
    )
    run.advance(5)
    group = None if groups == 1 else f"g{pill_group}"
    pill = run.inject_poison(group)
    pill_group_name = run.queue.groups[pill]
    run.advance(30)
    ids = run.processed_ids()
    by_group: dict[str, list[int]] = {}
    for m in ids:
        by_group.setdefault(run.queue.groups[m], []).append(run.queue.messages[m].seq)
    assert all(seqs == sorted(seqs) for seqs in by_group.values())  # order within each group
    if not dlq:
        behind = [s for s in by_group.get(pill_group_name, []) if s > run.queue.messages[pill].seq]
        assert behind == []  # nothing behind the pill in its group
        assert run.queue.held_back().get(pill_group_name, 0) > 0
        assert set(run.queue.held_back()) == {pill_group_name}  # the other groups kept flowing
    else:
        assert [e["message_id"] for e in run.inspect_dlq()] == [pill]


@pytest.mark.parametrize("seconds", [0.5, 7.3, 17.3, 30.0, 60.0])
def test_a_blocked_producer_counts_the_demand_it_held_back(seconds):
    """Backpressure is not free (issue 9, item 8): what a blocked producer does not send is
    counted as held back, so sent + held back is the demand, floor(rate x seconds) + 1, as if it had
    never waited; an unbounded producer holds nothing back."""
    for capacity in (None, 5):
        sim = Simulation()
        queue = RedriveQueue(sim, visibility_timeout=5)
        HandlerConsumer(sim, queue, "A", processing_time=0.5)
        producer = SteadyProducer(sim, queue, rate=15, capacity=capacity)
        sim.advance(seconds)
        # sends at 0, 1/15, 2/15, ... up to and including the end time (the instant rule)
        assert producer.sent + producer.held_back == math.floor(15 * seconds) + 1
        if capacity is None:
            assert producer.held_back == 0
        elif seconds >= 7.3:
            assert producer.held_back > producer.sent


def test_a_paused_producer_holds_nothing_back():
    sim = Simulation()
    queue = RedriveQueue(sim, visibility_timeout=5)
    HandlerConsumer(sim, queue, "A", processing_time=0.5)
    producer = SteadyProducer(sim, queue, rate=2, capacity=3)
    sim.advance(2)
    producer.set_rate(0)
    sim.advance(10)
    producer.set_rate(2)
    sim.advance(2)
    assert producer.held_back == 0 and producer.sent == 10  # t=0..2 and t=12..14, ends included
