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


def test_a_consumer_slower_than_the_timeout_never_gets_its_ack_accepted():
    sim, queue, consumers = make(times=(3.0, 3.0), visibility_timeout=2.0)
    queue.send()
    sim.run(until=5.5)
    # A receives at 0; at 2 the timeout hands the message to B; A finishes at 3 (ack refused);
    # at 4 B's timeout hands it back to A; B finishes at 5 (ack refused). It never completes.
    processed = [(e.time, e.data["consumer"]) for e in sim.trace.of_kind("processed")]
    assert processed == [(3.0, "A"), (5.0, "B")]
    assert [e.data["consumer"] for e in sim.trace.of_kind("ack_rejected")] == ["A", "B"]
    assert queue.messages["m1"].receive_count == 3
    assert queue.acked_count == 0


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
