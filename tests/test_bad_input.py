"""The bad-input reproducers of issue 13, one regression test each.

Every call here once crashed with another exception, hung, corrupted state or took a wrong value
silently. Each must now refuse with a ``ValueError``/``TypeError`` that names the parameter (or,
where the value was legal all along, do the right thing) and answer at once. The calls that hung
run under a wall-clock budget (:func:`answers_within`), generous for a loaded CI machine.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Iterator

import pytest

from mqlib import Consumer, OrderFlow, Simulation, Topic, WorkQueue, assign
from mqlib.models import backpressure, delivery, dlq
from mqlib.models.cluster import Cluster
from mqlib.scenarios.cluster import ClusterRun
from mqlib.scenarios.point_to_point import PointToPointRun

BUDGET = 4.0  # wall-clock seconds; the bounds aim for well under one


class Hang(BaseException):
    pass


@contextlib.contextmanager
def answers_within(seconds: float = BUDGET) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block takes more than ``seconds``."""

    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.perf_counter()
    try:
        yield
    except Hang:
        pytest.fail(f"no answer within {seconds} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - started < seconds


def received(sim: Simulation, queue: WorkQueue, consumer: str = "c"):
    """Send one message to ``queue`` and receive it now; returns the delivery."""
    queue.send("hello")
    request = queue.receive(consumer)
    sim.settle()
    return request.value


# -- huge ints and NaN through the shared number check -------------------------------------------


def test_a_huge_int_is_refused_by_the_number_check_not_an_overflow():
    sim = Simulation()
    with pytest.raises(ValueError, match="seconds must be a finite number"):
        sim.advance(10**400)
    assert sim.now == 0


def test_integer_ticks_refuses_nan_and_huge_values():
    from mqlib.widgets.backpressure import integer_ticks

    with pytest.raises(ValueError, match="top must be a finite number"):
        integer_ticks(float("nan"))
    with pytest.raises(ValueError, match="top must be"):
        integer_ticks(10**400)
    assert integer_ticks(23) == [0, 5, 10, 15, 20, 25]


# -- checked but unbounded: each call now refuses at once --------------------------------------


def test_cluster_size_is_bounded():
    with answers_within(), pytest.raises(ValueError, match="num_brokers must be <="):
        ClusterRun(brokers=10**6)


def test_assignor_partition_count_is_bounded():
    with answers_within(), pytest.raises(ValueError, match=r"partitions\['t'\] must be <="):
        assign("range", {"c": ["t"]}, {"t": 10**8})


def test_cluster_fetch_interval_has_a_lower_bound():
    with answers_within(), pytest.raises(ValueError, match="fetch_interval must be >="):
        Cluster(Simulation(), fetch_interval=1e-6)


def test_cluster_run_advance_refuses_a_step_that_would_take_long():
    run = ClusterRun()
    with answers_within(), pytest.raises(ValueError, match="seconds must be <="):
        run.advance(1e8)
    assert run.now == 0
    with answers_within():
        run.advance(60)  # an ordinary step still works
    assert run.now == 60


def test_point_to_point_sample_every_and_advance_are_bounded():
    with pytest.raises(ValueError, match="sample_every must be >="):
        PointToPointRun(sample_every=1e-3)
    run = PointToPointRun(sample_every=0.05)
    with answers_within(), pytest.raises(ValueError, match="seconds must be <="):
        run.advance(86400)
    assert run.now == 0


def test_run_until_empty_with_every_consumer_dead_answers_at_once():
    run = PointToPointRun({"A": 1.0})
    run.crash_consumer("A")
    run.send(3)
    with pytest.raises(ValueError, match="limit must be <="):
        run.run_until_empty(limit=1e9)
    with answers_within(), pytest.raises(RuntimeError, match="are all consumers crashed"):
        run.run_until_empty(limit=86_400)


def test_delivery_interval_is_bounded_against_float_absorption():
    with answers_within(), pytest.raises(ValueError, match="interval must be <="):
        delivery.simulate("at-least-once", 2, interval=1e16)
    with answers_within():
        result = delivery.simulate("at-least-once", 2, interval=3600.0)
    assert result.sent == 2


# -- objects from elsewhere ----------------------------------------------------------------------


def test_ack_of_another_queues_delivery_is_refused_and_changes_nothing():
    sim = Simulation()
    mine, other = WorkQueue(sim, name="mine"), WorkQueue(sim, name="other")
    foreign = received(sim, other)
    mine.send("x")
    with pytest.raises(ValueError, match="delivery of 'm1' was received from queue 'other'"):
        mine.ack(foreign)
    assert mine.acked_count == 0 and other.in_flight_count == 1
    sim.advance(100)  # no KeyError later: nothing was corrupted
    assert other.acked_count == 0


def test_extend_visibility_of_another_queues_delivery_is_refused():
    sim = Simulation()
    mine, other = WorkQueue(sim, name="mine"), WorkQueue(sim, name="other")
    with pytest.raises(ValueError, match="delivery"):
        mine.extend_visibility(received(sim, other), 5)


def test_consumer_refuses_a_queue_of_another_simulation():
    with pytest.raises(ValueError, match="queue belongs to another simulation"):
        Consumer(Simulation(), WorkQueue(Simulation()), "c")


def test_redrive_queue_fail_refuses_another_queues_delivery():
    sim = Simulation()
    redrive = dlq.RedriveQueue(sim, name="orders")
    foreign = received(sim, WorkQueue(sim, name="other"))
    with pytest.raises(ValueError, match="received from queue 'other'"):
        redrive.fail(foreign, "boom")
    assert redrive.failed_count == 0 and redrive.last_errors == {}


def test_backpressure_models_refuse_a_broker_of_another_simulation():
    broker = backpressure.BackpressureBroker(Simulation())
    with pytest.raises(ValueError, match="broker belongs to another simulation"):
        backpressure.RateProducer(Simulation(), broker)
    with pytest.raises(ValueError, match="broker belongs to another simulation"):
        backpressure.PartitionConsumer(Simulation(), broker, "c")


# -- ids -----------------------------------------------------------------------------------------


def test_an_explicit_message_id_does_not_break_later_automatic_ids():
    queue = WorkQueue(Simulation())
    queue.send(message_id="m2")
    ids = [queue.send().id for _ in range(3)]
    assert "m2" not in ids and len(set(ids)) == 3
    with pytest.raises(ValueError, match="message_id 'm2' is already in queue"):
        queue.send(message_id="m2")  # an explicit duplicate is still refused


def test_an_explicit_topic_message_id_does_not_break_later_automatic_ids():
    topic = Topic(Simulation())
    topic.publish(message_id="msg2")
    ids = [topic.publish().id for _ in range(3)]
    assert "msg2" not in ids and len(set(ids)) == 3


def _dead_letter_queue_holding(*ids: str) -> tuple[Simulation, dlq.DeadLetterQueue]:
    sim = Simulation()
    dead = dlq.DeadLetterQueue(sim)
    queue = dlq.RedriveQueue(sim, dead_letter_queue=dead, max_receives=1, visibility_timeout=1)
    for message_id in ids:
        queue.send("poison", message_id=message_id)
        delivery_ = queue.receive("c")
        sim.settle()
        queue.fail(delivery_.value, "boom")
    sim.advance(2)
    queue.receive("c")  # the next receive moves them (max_receives used up)
    sim.settle()
    return sim, dead


def test_dlq_replay_refuses_a_bare_string_and_duplicates_without_doing_half():
    sim, dead = _dead_letter_queue_holding("p1", "p2")
    depth = dead.depth
    assert depth == 2
    with pytest.raises(TypeError, match="message_ids must be a list"):
        dead.replay("p1")
    with pytest.raises(ValueError, match="message_ids must not repeat"):
        dead.replay(["p1", "p1"])
    assert dead.depth == depth  # nothing was replayed half way
    assert dead.replay(["p1"]) == ["p1"]
    assert dead.depth == depth - 1


# -- a consumer crashed before its loop started, then restarted ----------------------------------


def test_crash_before_the_loop_started_then_restart_runs_one_loop():
    sim = Simulation()
    queue = WorkQueue(sim)
    consumer = Consumer(sim, queue, "c", processing_time=1.0)
    consumer.crash()
    consumer.start()
    queue.send()
    queue.send()
    sim.settle()
    assert queue.in_flight_count == 1  # one loop, so one message in flight, not two
    sim.advance(2.5)
    assert consumer.processed == 2


# -- wrong exception types or messages ---------------------------------------------------------


def test_rate_producer_without_a_simulation_names_sim():
    broker = backpressure.BackpressureBroker(Simulation())
    with pytest.raises(TypeError, match="sim must be an mqlib Simulation"):
        backpressure.RateProducer(None, broker)


def test_order_flow_horizon_before_the_order_is_confirmed_is_refused():
    with pytest.raises(ValueError, match="horizon_ms must be >= order_ms"):
        OrderFlow("async", horizon_ms=10)
    result = OrderFlow("async", horizon_ms=60).run()  # just after the confirmation: fine
    assert result.user_wait_ms == pytest.approx(55)


def test_order_flow_down_none_names_down():
    with pytest.raises(TypeError, match="down must be a list, tuple or set"):
        OrderFlow(down=None)


def test_experiment_kill_consumer_names_kill_at():
    from mqlib.scenarios.playground import experiment_kill_consumer

    with pytest.raises(ValueError, match="kill_at"):
        experiment_kill_consumer(kill_at=1e6)


# -- silently accepted before ------------------------------------------------------------------


def test_backpressure_commit_of_a_record_never_produced_is_refused():
    sim = Simulation()
    broker = backpressure.BackpressureBroker(sim)
    ghost = backpressure.Record("zz", 0, 5, "high", 0.0)
    with pytest.raises(ValueError, match="never produced"):
        broker.commit("m", ghost)
    assert broker.lag == 0 and broker.consumed == 0
    with pytest.raises(TypeError, match="record must be a Record"):
        broker.commit("m", "m1")


def test_rebalance_refuses_a_string_of_member_names():
    broker = backpressure.BackpressureBroker(Simulation(), partitions=2)
    with pytest.raises(TypeError, match="members must be a list of names"):
        broker.rebalance("AB")
    with pytest.raises(ValueError, match="members must not repeat"):
        broker.rebalance(["A", "A"])
    assert broker.rebalance(["A", "B"]) == {"A": [0], "B": [1]}


@pytest.mark.parametrize(
    ("offset", "error"),
    [(None, TypeError), (3.5, TypeError), (math.nan, TypeError), (-1, ValueError), (5, ValueError)],
)
def test_delivery_broker_commit_checks_the_offset(offset, error):
    broker = delivery.Broker(Simulation())
    with pytest.raises(error, match="offset must be"):
        broker.commit(offset)
    assert broker.committed_offset == 0
