"""Message ordering (chapter 4): keyed partitions keep per-order order, competing consumers don't.

Regenerate the golden trace with ``python tests/test_ordering.py`` (only after checking that a
change of the trace is intended).
"""

import doctest
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlib.models.ordering as ordering_module
from mqlib import kafka_partition
from mqlib.core import Simulation
from mqlib.models.ordering import (
    MAX_CONSUMERS,
    MAX_PARTITIONS,
    MODES,
    ORDER_STEPS,
    CompetingOrdering,
    OrderEvent,
    PartitionedOrdering,
    Processed,
    find_violations,
    flag_violations,
    order_events,
    partition_mapping,
    simulate_ordering,
)
from mqlib.scenarios.ordering import (
    MAX_JITTER,
    OrderingRun,
    competing_run,
    default_run,
    repartition,
)

# -- keys and partitions -----------------------------------------------------------------------


def test_the_lesson_orders_with_kafkas_partitioner():
    # murmur2 of the key bytes "42", "43", "44", made positive, modulo the partition count.
    assert partition_mapping() == {
        42: {1: 0, 2: 0, 3: 1, 4: 0, 5: 2, 6: 4, 7: 3, 8: 4},
        43: {1: 0, 2: 0, 3: 0, 4: 2, 5: 4, 6: 0, 7: 6, 8: 2},
        44: {1: 0, 2: 1, 3: 0, 4: 3, 5: 4, 6: 3, 7: 5, 8: 3},
    }


def test_growing_the_topic_moves_keys():
    mapping = partition_mapping(partition_counts=[4, 5])
    moved = [order for order, where in mapping.items() if where[4] != where[5]]
    assert moved == [42, 43, 44]  # every one of the three orders changes partition


@settings(max_examples=200, deadline=None)
@given(order=st.integers(0, 10**9), partitions=st.integers(1, 64))
def test_same_key_same_partition(order, partitions):
    sim = Simulation()
    topic = PartitionedOrdering(sim, partitions, 1)
    placed = {
        topic.publish(OrderEvent(order, step, seq))
        for seq, step in enumerate(ORDER_STEPS * 2, start=1)
    }
    assert placed == {kafka_partition(str(order), partitions)}


def test_keyed_default_run_puts_each_order_in_its_own_partition():
    run = default_run()
    assert run.partition_logs() == [
        ["42 created", "42 paid", "42 shipped"],
        [],
        ["43 created", "43 paid", "43 shipped"],
        ["44 created", "44 paid", "44 shipped"],
    ]
    assert run.assignment() == {"A": [0], "B": [1], "C": [2], "D": [3]}
    assert run.violations() == []
    assert run.summary() == (
        "t=1.58 s, 4 partitions, keyed, 4 consumers: processed 9 of 9 "
        "(42: created > paid > shipped; 43: created > paid > shipped; "
        "44: created > paid > shipped); 0 ordering violations"
    )


def test_repartition_from_4_to_5_moves_every_lesson_key():
    change = repartition(4, 5)
    assert (change.before, change.after) == (4, 5)
    assert change.mapping == {42: (0, 2), 43: (2, 4), 44: (3, 4)}
    assert change.moved == [42, 43, 44]
    assert change.summary == (
        "4 → 5 partitions: order 42: partition 0 → 2; order 43: partition 2 → 4; "
        "order 44: partition 3 → 4; 3 of 3 orders change partition"
    )
    same = repartition(4, 4)
    assert same.moved == [] and same.summary.endswith("0 of 3 orders change partition")
    assert "order 42: stays on 0" in same.summary
    doubled = repartition(4, 8, orders=[42, 43])
    assert doubled.mapping == {42: (0, 4), 43: (2, 2)}
    assert doubled.moved == [42] and doubled.summary.endswith("1 of 2 orders change partition")


@settings(max_examples=60, deadline=None)
@given(
    before=st.integers(1, MAX_PARTITIONS),
    after=st.integers(1, MAX_PARTITIONS),
    orders=st.lists(st.integers(0, 10**6), min_size=1, max_size=6, unique=True),
)
def test_repartition_agrees_with_kafkas_partitioner(before, after, orders):
    change = repartition(before, after, orders)
    assert change.mapping == {
        o: (kafka_partition(str(o), before), kafka_partition(str(o), after)) for o in orders
    }
    assert change.moved == [o for o in orders if change.mapping[o][0] != change.mapping[o][1]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: repartition(0, 5), "before must be >= 1"),
        (lambda: repartition(4, 65), "after must be <= 64"),
        (lambda: repartition(4.0, 5), "before must be an integer"),
        (lambda: repartition(4, "5"), "after must be an integer"),
        (lambda: repartition(4, 5, orders=[]), "orders must name at least one order id"),
        (lambda: repartition(4, 5, orders="42"), "orders must be a list"),
    ],
)
def test_repartition_refuses_bad_arguments_naming_them(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# -- competing consumers on one queue ----------------------------------------------------------


def test_competing_consumers_break_order_exactly_as_the_lesson_says():
    # A needs 500 ms per event, B 50 ms; events go out every 10 ms. A takes "42 created" at 0;
    # B takes everything else and finishes "42 paid" at 0.16 s, long before A is done at 0.5 s.
    run = competing_run()
    assert [(p["time"], p["consumer"], p["order"], p["step"]) for p in run.processed()] == [
        (0.06, "B", 43, "created"),
        (0.11, "B", 44, "created"),
        (0.16, "B", 42, "paid"),
        (0.21, "B", 43, "paid"),
        (0.26, "B", 44, "paid"),
        (0.31, "B", 42, "shipped"),
        (0.36, "B", 43, "shipped"),
        (0.41, "B", 44, "shipped"),
        (0.5, "A", 42, "created"),
    ]
    assert run.sequences() == {
        42: ["paid", "shipped", "created"],
        43: ["created", "paid", "shipped"],
        44: ["created", "paid", "shipped"],
    }
    assert run.violations() == [
        {"time": 0.16, "consumer": "B", "order": 42, "event": "paid", "before": "created"},
        {"time": 0.31, "consumer": "B", "order": 42, "event": "shipped", "before": "created"},
    ]
    # Each processed row says whether it broke its order's sequence.
    assert [p["violation"] for p in run.processed()] == [False] * 2 + [True] + [False] * 2 + [
        True
    ] + [False] * 3


def test_equal_consumers_on_one_queue_still_break_order_with_jitter_seed_2():
    run = OrderingRun(mode="queue", consumers=3, jitter=0.3, seed=2)
    for consumer in "ABC":
        run.set_processing_time(consumer, 0.1)
    run.run()
    assert run.sequences()[42] == ["paid", "created", "shipped"]
    assert [(v["order"], v["event"], v["before"]) for v in run.violations()] == [
        (42, "paid", "created")
    ]


@settings(max_examples=60, deadline=None)
@given(jitter=st.floats(0, 1), seed=st.integers(0, 10**6), batches=st.integers(1, 3))
def test_one_queue_with_one_consumer_keeps_fifo_order(jitter, seed, batches):
    run = OrderingRun(mode="queue", consumers=1, jitter=jitter, seed=seed)
    for _ in range(batches):
        run.send()
    run.run()
    assert [p["seq"] for p in run.processed()] == list(range(1, 9 * batches + 1))
    assert run.violations() == []


def test_unkeyed_partitions_break_order_with_seed_0():
    run = OrderingRun(keyed=False, jitter=0.2)
    run.run()
    assert run.partition_logs() == [
        ["42 created", "43 paid", "44 shipped"],
        ["43 created", "44 paid"],
        ["44 created", "42 shipped"],
        ["42 paid", "43 shipped"],
    ]
    assert [(v["consumer"], v["order"], v["event"], v["before"]) for v in run.violations()] == [
        ("D", 42, "paid", "created"),
        ("D", 43, "shipped", "paid"),
        ("C", 42, "shipped", "created"),
    ]


# -- properties --------------------------------------------------------------------------------

order_sets = st.lists(st.integers(0, 10**6), min_size=1, max_size=6, unique=True)
speeds = st.floats(0.01, 1.0)


@settings(max_examples=120, deadline=None)
@given(
    orders=order_sets,
    partitions=st.integers(1, 8),
    consumers=st.integers(1, 8),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 10**6),
    data=st.data(),
)
def test_keyed_partitioning_never_violates_per_key_order(
    orders, partitions, consumers, jitter, seed, data
):
    times = data.draw(st.lists(speeds, min_size=consumers, max_size=consumers))
    result = simulate_ordering(
        partitions=partitions,
        consumers=consumers,
        jitter=jitter,
        orders=orders,
        seed=seed,
        processing_times=times,
    )
    assert result.violations == []
    assert result.sequences == {order: list(ORDER_STEPS) for order in sorted(orders)}


@settings(max_examples=120, deadline=None)
@given(
    orders=order_sets,
    partitions=st.integers(1, 8),
    consumers=st.integers(1, 8),
    keyed=st.booleans(),
    keyless=st.sampled_from(["roundrobin", "sticky"]),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 10**6),
)
def test_order_holds_within_a_partition(
    orders, partitions, consumers, keyed, keyless, jitter, seed
):
    result = simulate_ordering(
        partitions=partitions,
        consumers=consumers,
        keyed=keyed,
        keyless=keyless,
        jitter=jitter,
        orders=orders,
        seed=seed,
    )
    per_partition = defaultdict(list)
    per_key_in_partition = defaultdict(list)
    for p in result.processed:
        per_partition[p["partition"]].append(p["seq"])
        per_key_in_partition[(p["partition"], p["order"])].append(p["seq"])
    for seqs in [*per_partition.values(), *per_key_in_partition.values()]:
        assert seqs == sorted(seqs)  # offsets are read in order, so send order is kept
    assert len(result.processed) == 3 * len(orders)
    # The rows flagged as violations are exactly the events find_violations names.
    flagged = [
        (p["time"], p["consumer"], p["order"], p["step"])
        for p in result.processed
        if p["violation"]
    ]
    named = list(
        dict.fromkeys((v["time"], v["consumer"], v["order"], v["event"]) for v in result.violations)
    )
    assert flagged == named


def test_consumers_beyond_the_partition_count_sit_idle():
    run = OrderingRun(partitions=2, consumers=4)
    run.run()
    assert run.assignment() == {"A": [0], "B": [1], "C": [], "D": []}
    assert {p["consumer"] for p in run.processed()} <= {"A", "B"}


def test_one_consumer_may_own_several_partitions_and_keeps_each_in_order():
    run = OrderingRun(partitions=4, consumers=2, jitter=0.1)
    run.run()
    assert run.assignment() == {"A": [0, 1], "B": [2, 3]}
    assert run.violations() == []


# -- the stepwise scenario ---------------------------------------------------------------------


def test_violations_show_as_soon_as_they_happen():
    run = OrderingRun(keyed=False, jitter=0.2)
    run.send()
    run.advance(0.3)
    assert run.summary() == (
        "t=0.30 s, 4 partitions, unkeyed, 4 consumers: processed 2 of 9 "
        "(42: paid; 43: created); 1 ordering violation"
    )
    assert run.violations() == [
        {"time": 0.18178335, "consumer": "D", "order": 42, "event": "paid", "before": "created"}
    ]


def test_settings_start_a_fresh_run_and_send_adds_batches():
    run = OrderingRun()
    assert run.send() == [e.label for e in order_events()]
    run.run()
    run.send()
    run.run()
    assert len(run.processed()) == 18 and run.violations() == []
    assert run.placement()["42 created #10"] == 0
    for change in (
        lambda: run.set_partitions(3),
        lambda: run.set_keyed(False),
        lambda: run.set_consumers(2),
        lambda: run.set_jitter(0.5),
        lambda: run.set_mode("queue"),
        lambda: run.set_consumers(None),
    ):
        change()
        assert run.processed() == [] and run.now == 0
    assert (run.mode, run.consumers, run.assignment(), run.placement()) == ("queue", 2, {}, {})
    assert run.partition_logs() == []
    assert run.mapping([3])[42] == {3: 1}
    run.run()
    assert run.result().mode == "queue"


def test_find_violations_counts_an_earlier_event_still_in_progress():
    first, second = OrderEvent(7, "created", 1), OrderEvent(7, "paid", 2)
    done = [Processed(1.0, "B", second)]
    assert find_violations(done) == []  # "created" is not known to have been sent
    assert flag_violations(done) == [False]
    assert find_violations(done, [first, second]) == [
        {"time": 1.0, "consumer": "B", "order": 7, "event": "paid", "before": "created"}
    ]
    assert flag_violations(done, [first, second]) == [True]


def test_violation_flags_mark_rows_not_times():
    # Two events of one order finished at the same instant by the same consumer name cannot be
    # told apart by time; the flag is per row, so only the out-of-order one is marked.
    created, paid, shipped = (
        OrderEvent(7, "created", 1),
        OrderEvent(7, "paid", 2),
        OrderEvent(7, "shipped", 3),
    )
    done = [Processed(1.0, "A", created), Processed(2.0, "A", shipped), Processed(2.0, "A", paid)]
    assert flag_violations(done) == [False, True, False]
    assert len(find_violations(done)) == 1
    # An event that jumps two earlier ones is one flagged row but two violations.
    assert flag_violations([Processed(1.0, "A", shipped)], [created, paid, shipped]) == [True]
    assert len(find_violations([Processed(1.0, "A", shipped)], [created, paid, shipped])) == 2


def test_processed_rows_are_flagged_as_they_happen():
    run = OrderingRun(keyed=False, jitter=0.2)
    run.send()
    run.advance(0.3)
    assert [(p["order"], p["step"], p["violation"]) for p in run.processed()] == [
        (42, "paid", True),  # 42 created is still waiting
        (43, "created", False),
    ]
    run.run()
    assert sum(p["violation"] for p in run.processed()) == len(run.violations()) == 3
    assert run.result().processed == run.processed()


def test_run_gives_up_after_its_limit():
    run = OrderingRun(mode="queue")
    with pytest.raises(RuntimeError, match="events still unprocessed after 0.1 s"):
        run.run(limit=0.1)
    run.run()  # and finishes when given time
    assert len(run.processed()) == 9


def test_same_seed_same_trace():
    traces = [OrderingRun(keyed=False, jitter=0.4, seed=11) for _ in range(2)]
    for run in traces:
        run.run()
    assert traces[0].sim.trace.as_dicts() == traces[1].sim.trace.as_dicts()


def test_docstring_examples():
    assert doctest.testmod(ordering_module).failed == 0


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: OrderingRun(mode="stack"), "mode must be one of 'partitions', 'queue'"),
        (lambda: OrderingRun().set_partitions(0), "partitions must be >= 1"),
        (lambda: OrderingRun().set_partitions(2.0), "partitions must be an integer"),
        (lambda: OrderingRun().set_keyed("yes"), "keyed must be True or False"),
        (lambda: OrderingRun().set_consumers(0), "consumers must be >= 1"),
        (lambda: OrderingRun().set_consumers(27), "consumers must be <= 26"),
        (lambda: OrderingRun().set_jitter(-0.1), "jitter must be >= 0"),
        (lambda: OrderingRun().set_processing_time("A", 0), "seconds must be > 0"),
        (lambda: OrderingRun().set_processing_time("a", 1), "consumer must be one of 'A'"),
        (lambda: OrderingRun().advance(0), "seconds must be > 0"),
        (lambda: OrderingRun(orders=[]), "orders must name at least one order id"),
        (lambda: OrderingRun(orders=[42, 42]), "orders must not repeat"),
        (lambda: OrderingRun(orders="42"), "orders must be a list of integer order ids"),
        (lambda: OrderingRun(orders=[4.2]), "order id in orders must be an integer"),
        (lambda: partition_mapping(partition_counts=[0]), "partition count in partition_counts"),
        (lambda: partition_mapping(partition_counts=[]), "partition_counts must not be empty"),
        (lambda: simulate_ordering(processing_times=[0.1]), "one entry per consumer"),
        (lambda: simulate_ordering(processing_times="fast"), "processing_times must be a list"),
        (
            lambda: simulate_ordering(consumers=2, processing_times=[0.1, -1]),
            "processing_times\\[1\\] must be > 0",
        ),
        (lambda: simulate_ordering(keyless="random"), "keyless must be one of"),
        (lambda: PartitionedOrdering("sim"), "sim must be an mqlib Simulation"),
        (lambda: CompetingOrdering(Simulation()).publish("42 created"), "event must be an Order"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


_bad_values = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(allow_nan=True),
    st.integers(-(10**6), 0),
    st.integers(100, 10**6),
    st.lists(st.integers(), max_size=2),
)


from mqlib._validate import MAX_INTEGER  # noqa: E402


def _real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: Parameter -> (a call that sets it to ``v`` and returns the run, is ``v`` a valid value?,
#: the value the run holds afterwards).
_SETTINGS = {
    "mode": (lambda v: OrderingRun(mode=v), lambda v: v in MODES, lambda r: r.mode),
    "partitions": (
        lambda v: _set(OrderingRun(), "set_partitions", v),
        lambda v: _whole(v) and 1 <= v <= MAX_PARTITIONS,
        lambda r: r.partitions,
    ),
    "keyed": (
        lambda v: _set(OrderingRun(), "set_keyed", v),
        lambda v: isinstance(v, bool),
        lambda r: r.keyed,
    ),
    "consumers": (
        lambda v: _set(OrderingRun(), "set_consumers", v),
        lambda v: v is None or (_whole(v) and 1 <= v <= MAX_CONSUMERS),
        lambda r: r.consumers,
    ),
    "jitter": (
        lambda v: _set(OrderingRun(), "set_jitter", v),
        lambda v: _real(v) and 0 <= v <= MAX_JITTER,
        lambda r: r.jitter,
    ),
    "seconds": (
        lambda v: _set(OrderingRun(), "advance", v),
        lambda v: _real(v) and 0 < v < float("inf"),
        lambda r: r.now,
    ),
    "send_interval": (
        lambda v: OrderingRun(send_interval=v),
        lambda v: _real(v) and 0 <= v < float("inf"),
        lambda r: r.send_interval,
    ),
    "seed": (lambda v: OrderingRun(seed=v), _whole, lambda r: r.seed),
    "orders": (
        lambda v: OrderingRun(orders=v),
        lambda v: (
            isinstance(v, list)
            and len(v) > 0
            and all(_whole(o) and 0 <= o <= MAX_INTEGER for o in v)  # the integer check's bound
            and len(set(v)) == len(v)
        ),
        lambda r: list(r.orders),
    ),
}


def _set(run: OrderingRun, method: str, value: object) -> OrderingRun:
    getattr(run, method)(value)
    return run


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(_SETTINGS)), value=_bad_values)
def test_random_bad_values_are_refused_naming_the_parameter(name, value):
    call, valid, held = _SETTINGS[name]
    try:
        run = call(value)
    except (ValueError, TypeError) as error:
        assert name in str(error) or (name == "orders" and "order id" in str(error))
        assert not valid(value), (name, value, str(error))
        return
    # Accepted: the value must really be a valid one, and the run must hold it as given (not
    # clamped, rounded or replaced by a default).
    assert valid(value), (name, value)
    expected = 4 if name == "consumers" and value is None else value  # None: one per partition
    assert held(run) == expected, (name, value, held(run))


# -- order broken inside one partition -------------------------------------------------------------
def test_producer_retries_reorder_only_without_idempotence_and_with_several_in_flight():
    """Kafka producer configs, ``max.in.flight.requests.per.connection`` (default 5): "if this
    configuration is set to be greater than 1 and enable.idempotence is set to false, there is a
    risk of message reordering after a failed send due to retries"."""
    from mqlib.models.ordering import producer_retry_log

    events = order_events((42,))
    labels = lambda log: [e.step for e in log]  # noqa: E731
    assert labels(producer_retry_log(events, idempotent=False)) == ["created", "shipped", "paid"]
    assert labels(producer_retry_log(events, idempotent=False, max_in_flight=1)) == [
        "created",
        "paid",
        "shipped",
    ]
    assert labels(producer_retry_log(events)) == ["created", "paid", "shipped"]  # idempotent, 5
    nine = order_events()
    log = producer_retry_log(nine, failed=0, idempotent=False)
    assert [e.label for e in log[:5]] == [
        "43 created",
        "44 created",
        "42 paid",
        "43 paid",
        "42 created",
    ]
    with pytest.raises(ValueError, match="max_in_flight must be <= 5"):
        producer_retry_log(events, max_in_flight=6)  # the idempotent producer's limit
    with pytest.raises(ValueError, match="failed must be <= 2"):
        producer_retry_log(events, failed=3)


def test_a_record_moved_to_a_retry_topic_is_overtaken_unless_its_key_is_parked():
    from mqlib.models.ordering import find_violations, retry_topic_processing

    carry_on = retry_topic_processing(failing="42 paid")
    assert [(v["order"], v["event"], v["before"]) for v in find_violations(carry_on)] == [
        (42, "shipped", "paid")
    ]
    assert [p.event.label for p in carry_on if p.consumer == "retry"] == ["42 paid"]
    parked = retry_topic_processing(failing="42 paid", park_key=True)
    assert find_violations(parked) == []
    assert [p.event.label for p in parked if p.consumer == "retry"] == ["42 paid", "42 shipped"]
    # the other orders are not held up: they finish on the main consumer in both cases
    assert {p.event.order_id for p in parked if p.consumer == "main"} == {42, 43, 44}
    with pytest.raises(ValueError, match="failing must be one of"):
        retry_topic_processing(failing="42 refunded")


# -- issue 13: a linear violation scan that agrees with the definition -----------------------------
def brute_force_violations(processed, sent):
    """The definition, read literally (quadratic): for each processed event, every earlier event
    of its order that is not done yet."""
    known = {p.event for p in processed} | set(sent or ())
    done, found = set(), []
    for p in processed:
        for e in sorted(known, key=lambda e: e.seq):
            if e.order_id == p.event.order_id and e.seq < p.event.seq and e not in done:
                found.append(
                    {
                        "time": round(p.time, 9),
                        "consumer": p.consumer,
                        "order": e.order_id,
                        "event": p.event.step,
                        "before": e.step,
                    }
                )
        done.add(p.event)
    return found


def batch_events(orders, batches):
    """``batches`` sends of every order's events, one after the other (as OrderingRun.send)."""
    events = []
    for _ in range(batches):
        events += order_events(orders, first_seq=len(events) + 1)
    return events


@settings(max_examples=60, deadline=None)
@given(
    orders=st.lists(st.sampled_from([42, 43, 44]), min_size=1, max_size=3, unique=True),
    batches=st.integers(min_value=1, max_value=4),
    order=st.randoms(use_true_random=False),
    drop=st.integers(min_value=0, max_value=5),
)
def test_the_linear_scan_agrees_with_the_definition(orders, batches, order, drop):
    events = batch_events(orders, batches)
    shuffled = list(events)
    order.shuffle(shuffled)
    processed = [Processed(i * 0.1, "A", e) for i, e in enumerate(shuffled[drop:])]
    assert find_violations(processed, events) == brute_force_violations(processed, events)
    assert find_violations(processed) == brute_force_violations(processed, None)


def test_the_running_system_keeps_its_violations_up_to_date():
    sim = Simulation(seed=3)
    system = CompetingOrdering(sim, 4, jitter=0.3)
    for event in batch_events([42, 43, 44], 20):
        system.publish(event)
        sim.advance(0.05)
    sim.run(until=sim.now + 100)
    assert system.processed_count == system.sent_count == 180
    assert system.violations() == find_violations(system.processed, system.sent)
    assert system.violation_count == len(system.violations()) > 0
    flags = flag_violations(system.processed, system.sent)
    assert [r["violation"] for r in system.processed_rows()] == flags


def test_placement_names_every_event_after_more_than_ten_thousand():
    """The producer keeps only its latest events in memory; the placement still names every
    event its partitions hold, here every event sent, since no partition has read 10,000 (it
    used to raise KeyError past 10,000 events sent)."""
    run = OrderingRun(mode="partitions")
    for _ in range(1200):  # 10,800 events
        run.send()
    run.advance(3600)
    placement = run.placement()
    assert len(placement) == 10_800
    assert placement["42 created #1"] == placement["42 shipped #10798"]  # one key, one partition
    assert len(set(placement.values())) == 3  # three orders, three keys


def test_a_partition_drops_its_oldest_read_records_and_keeps_its_offsets():
    """Retention in the partitioned model: past 2 * RECENT read records a partition keeps the
    latest RECENT read ones and everything unread; offsets go on from where they were."""
    from mqlib.models.ordering import RECENT, PartitionedOrdering, order_events

    sim = Simulation()
    system = PartitionedOrdering(sim, partitions=1, processing_times=[0.001])
    events = order_events(range(RECENT + 400))  # 3 events per order
    for event in events:
        system.publish(event)
    sim.run()
    assert system.processed_count == len(events)  # everything was read, in order
    assert system.positions == [len(events)]
    log = system.logs[0]
    assert len(log) <= 2 * RECENT and system.base[0] == len(events) - len(log)
    assert log == events[system.base[0] :]  # the newest records, at their own offsets
    assert set(system.placement) == {e.id for e in log}
    assert sim.trace.of_kind("append")[-1].data["offset"] == len(events) - 1
