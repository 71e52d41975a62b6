"""The work queue: competing consumers, ACK, visibility timeout, redelivery, receive counts."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib import Consumer, PointToPointRun, Simulation, WorkQueue


def make(times=(1.0, 1.5, 2.5), visibility_timeout=5.0):
    sim = Simulation(seed=0)
    queue = WorkQueue(sim, visibility_timeout=visibility_timeout)
    consumers = {
        n: Consumer(sim, queue, n, processing_time=t)
        for n, t in zip("ABCDEFG", times, strict=False)
    }
    return sim, queue, consumers


@settings(max_examples=60, deadline=None)
@given(
    messages=st.integers(1, 40),
    times=st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]), min_size=1, max_size=5),
)
def test_without_crashes_each_message_is_processed_by_exactly_one_consumer(messages, times):
    sim, queue, consumers = make(times, visibility_timeout=10.0)  # longer than any processing
    for _ in range(messages):
        queue.send()
    sim.run(until=messages * 3.0 + 1)
    processed = Counter(e.data["message"] for e in sim.trace.of_kind("processed"))
    assert set(processed) == {f"m{i}" for i in range(1, messages + 1)}
    assert set(processed.values()) == {1}
    assert queue.acked_count == messages
    assert queue.depth == 0
    assert not sim.trace.of_kind("visibility_timeout", "ack_rejected")


def test_crash_before_ack_makes_the_message_visible_after_the_timeout_for_another_consumer():
    sim, queue, consumers = make(visibility_timeout=5.0)
    for _ in range(3):
        queue.send()
    sim.run(until=0.5)
    dropped = consumers["B"].crash()
    assert dropped.message.id == "m2"
    sim.run(until=4.99)
    assert queue.in_flight_count >= 1
    assert "m2" in [d.message.id for d in queue.in_flight()]  # still invisible: nobody has it
    sim.run(until=20)
    timeouts = sim.trace.of_kind("visibility_timeout")
    assert [(e.time, e.data["message"]) for e in timeouts] == [(5.0, "m2")]
    second = [e for e in sim.trace.of_kind("receive") if e.data["message"] == "m2"][-1]
    assert second.time == 5.0
    assert second.data["receive_count"] == 2
    assert second.data["consumer"] in {"A", "C"}
    assert [e.data["consumer"] for e in sim.trace.of_kind("ack") if e.data["message"] == "m2"] == [
        second.data["consumer"]
    ]
    assert queue.messages["m2"].receive_count == 2
    assert queue.acked_count == 3


def test_a_late_ack_is_accepted_as_jetstream_does_and_the_second_ack_finds_nothing():
    """JetStream's rule (nats-server 2.15.1; nats-io/nats-server issue #4786): an ack that
    arrives after ``ack_wait``, while the message is redelivered to someone else, still deletes
    the message. The redelivered copy is processed all the same (twice, concurrently), and its
    ack finds the message gone, so it returns False and changes nothing."""
    sim, queue, consumers = make(times=(3.0, 3.0), visibility_timeout=2.0)
    queue.send()
    sim.run(until=10)
    # A receives at 0; at 2 the timeout hands the message to B; A finishes at 3 and its late ack
    # deletes it; B, who started at 2, finishes at 5 and its ack is refused.
    processed = [(e.time, e.data["consumer"]) for e in sim.trace.of_kind("processed")]
    assert processed == [(3.0, "A"), (5.0, "B")]
    acks = sim.trace.of_kind("ack")
    assert [(e.time, e.data["consumer"], e.data.get("late")) for e in acks] == [(3.0, "A", True)]
    assert [(e.time, e.data["consumer"]) for e in sim.trace.of_kind("ack_rejected")] == [(5.0, "B")]
    assert queue.messages["m1"].receive_count == 2
    assert (queue.acked_count, queue.late_ack_count, queue.depth) == (1, 1, 0)
    assert consumers["A"].acked == 1 and consumers["B"].acked == 0


def test_a_late_ack_also_deletes_a_message_that_is_visible_again():
    """With nobody free to take the redelivery, the message waits in the queue; the late ack
    takes it out of the line, so it is never received a second time."""
    sim = Simulation()
    queue = WorkQueue(sim, visibility_timeout=1.0)
    delivery = None

    def slow_worker():
        nonlocal delivery
        delivery = yield queue.receive("A")
        yield sim.timeout(2.5)
        assert queue.ack(delivery) is True

    queue.send()
    sim.process(slow_worker())
    sim.run(until=2.0)
    assert (queue.visible_count, queue.in_flight_count) == (1, 0)  # timed out at 1 s
    sim.run(until=3.0)
    assert (queue.visible_count, queue.depth, queue.late_ack_count) == (0, 0, 1)
    assert queue.ack(delivery) is False  # already deleted: nothing changes
    assert queue.acked_count == 1
    Consumer(sim, queue, "B")
    sim.run(until=5.0)
    assert len(sim.trace.of_kind("receive")) == 1


def test_an_ack_for_a_deleted_message_changes_nothing():
    sim = Simulation()
    queue = WorkQueue(sim)
    got = []
    queue.send()
    queue.receive("A").callbacks.append(lambda e: got.append(e.value))
    sim.run(until=1)
    [delivery] = got
    assert queue.ack(delivery) is True
    assert queue.ack(delivery) is False  # a second ack: the message is already gone
    assert (queue.acked_count, queue.late_ack_count, queue.depth) == (1, 0, 0)
    assert [e.data["message"] for e in sim.trace.of_kind("ack_rejected")] == ["m1"]


def test_a_too_short_timeout_dead_letters_a_healthy_message():
    """SQS's redrive policy counts receives, not failures: when processing takes longer than
    the visibility timeout, a message that never failed is received again and again and reaches
    the DLQ (SQS Developer Guide, "Amazon SQS dead-letter queues")."""
    from mqlib.models.dlq import DeadLetterQueue, RedriveQueue

    sim = Simulation()
    dlq = DeadLetterQueue(sim)
    queue = RedriveQueue(sim, visibility_timeout=1.0, dead_letter_queue=dlq, max_receives=2)
    for name in "ABC":
        Consumer(sim, queue, name, processing_time=10.0)
    queue.send(message_id="healthy")
    sim.run(until=20)
    # A receives at 0, B at 1 (A's timeout); at 2 B's timeout runs out and idle C's receive
    # would be the third: the message goes to the DLQ although nothing ever failed.
    assert [(e["message_id"], e["receive_count"]) for e in dlq.inspect()] == [("healthy", 2)]
    assert [e.time for e in sim.trace.of_kind("dead_letter")] == [2.0]
    assert not sim.trace.of_kind("processing_failed")
    assert queue.acked_count == 0  # A's late ack at 10 s finds the message gone from the queue
    assert [e.data["consumer"] for e in sim.trace.of_kind("ack_rejected")] == ["A", "B"]


def test_a_heartbeat_keeps_a_slow_message_with_its_consumer():
    """The cure for a timeout shorter than the work: extend the visibility while working (SQS
    ``ChangeMessageVisibility``, JetStream ``msg.in_progress()`` which restarts ``ack_wait``)."""
    sim = Simulation()
    queue = WorkQueue(sim, visibility_timeout=2.0)
    for name in "AB":
        Consumer(sim, queue, name, processing_time=7.0, heartbeat=1.5)
    queue.send()
    sim.run(until=20)
    assert [e.data["consumer"] for e in sim.trace.of_kind("processed")] == ["A"]
    assert queue.messages["m1"].receive_count == 1
    assert not sim.trace.of_kind("visibility_timeout", "ack_rejected")
    assert [e.time for e in sim.trace.of_kind("visibility_extended")] == [1.5, 3.0, 4.5, 6.0]
    assert (queue.acked_count, queue.late_ack_count) == (1, 0)


def test_extend_visibility_moves_the_deadline_and_only_for_the_current_holder():
    sim = Simulation()
    queue = WorkQueue(sim, visibility_timeout=2.0)
    got = []
    queue.send()
    queue.receive("A").callbacks.append(lambda e: got.append(e.value))
    sim.run(until=1.0)
    [delivery] = got
    assert queue.extend_visibility(delivery, 10.0) is True  # SQS: 10 s from now
    sim.run(until=10.9)
    assert queue.in_flight_count == 1
    sim.run(until=11.1)
    assert [e.time for e in sim.trace.of_kind("visibility_timeout")] == [11.0]
    assert queue.extend_visibility(delivery) is False  # too late: it timed out
    with pytest.raises(ValueError, match="seconds must be <= 43200"):
        queue.extend_visibility(delivery, 50_000)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        queue.extend_visibility(delivery, 0)
    with pytest.raises(TypeError, match="delivery must be a Delivery"):
        queue.extend_visibility("m1")


def test_restarted_consumer_takes_work_again():
    sim, queue, consumers = make(times=(1.0,))
    consumers["A"].crash()
    queue.send()
    sim.run(until=3)
    assert queue.visible_count == 1
    consumers["A"].start()
    sim.run(until=5)
    assert queue.acked_count == 1


@pytest.mark.parametrize(("consumers", "expected"), [(1, 60.0), (2, 30.0), (3, 20.0)])
def test_throughput_grows_with_consumers(consumers, expected):
    run = PointToPointRun({n: 2.0 for n in "ABC"[:consumers]}, visibility_timeout=60)
    run.send(30)
    assert run.run_until_empty() == expected


def test_run_until_empty_reports_a_queue_nobody_reads():
    run = PointToPointRun({"A": 1.0})
    run.crash_consumer("A")
    run.send(2)
    with pytest.raises(RuntimeError, match="are all consumers crashed"):
        run.run_until_empty(limit=5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, q: WorkQueue(s, visibility_timeout=-1), "visibility_timeout must be > 0"),
        (lambda s, q: WorkQueue(s, visibility_timeout=0), "visibility_timeout must be > 0"),
        (lambda s, q: WorkQueue("sim"), "sim must be an mqlib Simulation"),
        (
            lambda s, q: q.set_visibility_timeout(float("inf")),
            "visibility_timeout must be a finite",
        ),
        (lambda s, q: q.send(message_id=""), "message_id must be a non-empty string"),
        (lambda s, q: q.receive(7), "consumer must be a string"),
        (lambda s, q: q.ack("m1"), "delivery must be a Delivery"),
        (lambda s, q: Consumer(s, q, "A", processing_time=0), "processing_time must be > 0"),
        (lambda s, q: Consumer(s, "q", "A"), "queue must be a WorkQueue"),
        (lambda s, q: Consumer(s, q, "A", heartbeat=-1), "heartbeat must be > 0"),
        (lambda s, q: PointToPointRun(heartbeat=0), "heartbeat must be > 0"),
        (lambda s, q: PointToPointRun({}), "processing_times must name at least one consumer"),
        (lambda s, q: PointToPointRun({"A": -1.0}), "processing_time must be > 0"),
        (lambda s, q: PointToPointRun().send(0), "count must be >= 1"),
        (lambda s, q: PointToPointRun().crash_consumer("Z"), "consumer must be one of 'A', 'B'"),
        (lambda s, q: PointToPointRun().advance(-3), "seconds must be > 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    sim = Simulation()
    queue = WorkQueue(sim)
    with pytest.raises((ValueError, TypeError), match=message):
        call(sim, queue)


def test_duplicate_message_id_is_refused():
    sim = Simulation()
    queue = WorkQueue(sim)
    queue.send(message_id="order-1")
    with pytest.raises(ValueError, match="message_id 'order-1' is already in queue"):
        queue.send(message_id="order-1")


def test_crashing_a_crashed_consumer_is_an_error():
    run = PointToPointRun()
    run.crash_consumer("A")
    with pytest.raises(ValueError, match="consumer 'A' is not running"):
        run.crash_consumer("A")
    with pytest.raises(ValueError, match="consumer 'B' is already running"):
        run.restart_consumer("B")


def test_max_in_flight_one_makes_the_queue_fifo_across_consumers():
    sim = Simulation()
    queue = WorkQueue(sim, visibility_timeout=30, max_in_flight=1)
    for name, t in (("A", 1.0), ("B", 0.1)):
        Consumer(sim, queue, name, processing_time=t)
    for _ in range(4):
        queue.send()
    sim.run(until=10)
    done = [(e.time, e.data["message"]) for e in sim.trace.of_kind("processed")]
    assert [m for _, m in done] == ["m1", "m2", "m3", "m4"]  # never two at once, so in order
    assert done[0] == (1.0, "m1")  # A took m1; fast B had to wait for it
    with pytest.raises(ValueError, match="max_in_flight must be >= 1"):
        WorkQueue(sim, max_in_flight=0)


def test_processing_times_must_be_a_mapping():
    with pytest.raises(TypeError, match="processing_times must be a mapping"):
        PointToPointRun(5)
    with pytest.raises(TypeError, match="processing_times must be a mapping"):
        PointToPointRun(["A"])


def test_one_advance_is_at_most_a_day():
    with pytest.raises(ValueError, match="seconds must be <= 86400"):
        PointToPointRun().advance(1e9)


# -- issue 13: memory follows live state -----------------------------------------------------------
def test_acked_messages_are_forgotten_beyond_the_recent_history():
    from mqlib.models.work_queue import RECENT_ACKED

    sim = Simulation(record=False)
    queue = WorkQueue(sim, visibility_timeout=60)
    Consumer(sim, queue, "A", processing_time=0.01)
    total = RECENT_ACKED * 3
    for _ in range(total):
        queue.send()
    sim.run(until=total * 0.01 + 1)
    assert queue.acked_count == queue.sent_count == total and queue.depth == 0
    assert len(queue.messages) == RECENT_ACKED  # the newest acked ones, for inspection
    assert f"m{total}" in queue.messages and "m1" not in queue.messages


def test_redeliveries_are_counted():
    sim = Simulation()
    queue = WorkQueue(sim, visibility_timeout=1.0)
    slow = Consumer(sim, queue, "A", processing_time=2.5)
    queue.send()
    sim.run(until=1.5)
    slow.crash()
    Consumer(sim, queue, "B", processing_time=0.5)
    sim.run(until=5)
    receives = sim.trace.of_kind("receive")
    assert queue.redelivered_count == sum(1 for e in receives if e.data["receive_count"] > 1) >= 1
