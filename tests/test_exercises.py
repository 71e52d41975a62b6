"""The graded exercises: every reference passes, typical mistakes fail with a counterexample
that names the broken invariant, and the checker is deterministic and robust to bad code."""

import contextlib
from pathlib import Path

import nbformat
import pytest

from mqlib import exercises
from mqlib.exercises import ch01, ch05, ch07

NAMES = exercises.names()


# -- typical wrong solutions, per exercise ----------------------------------------------------


def ch01_ack_first(job, msg):
    msg.ack()
    for part in job.parts:
        part.run()
    job.save_result()


def ch01_extend_for_an_hour(job, msg):
    msg.extend(3600)
    for part in job.parts:
        part.run()
    job.save_result()
    msg.ack()


def ch01_heartbeat_every_other_part(job, msg):
    for i, part in enumerate(job.parts):
        part.run()
        if i % 2:
            msg.in_progress()
    job.save_result()
    msg.ack()


class GroupPerMember:
    def topic_for(self, event):
        return event.type

    def subscribe(self, member):
        return member.name, sorted(member.wants)


class OneGroupForEveryone:
    def topic_for(self, event):
        return "orders"

    def subscribe(self, member):
        return "shop", ["orders"]


class ProducerKnowsTheServices:
    ROUTES = {
        "order.placed": "payment",
        "order.cancelled": "payment",
        "order.shipped": "email",
        "payment.failed": "email",
        "order.paid": "analytics",
    }

    def topic_for(self, event):
        return self.ROUTES[event.type]

    def subscribe(self, member):
        return member.service, [member.service]


SEEN = set()


def ch03_global_set(message, balance_store):
    if message.id in SEEN:
        return
    SEEN.add(message.id)
    balance_store.balance -= message.amount


def ch03_keyed_by_amount(message, balance_store):
    if message.amount in balance_store.processed_ids:
        return
    balance_store.balance -= message.amount
    balance_store.processed_ids.add(message.amount)


def ch03_mark_first(outbox, broker):
    for row in outbox.unsent():
        outbox.mark_sent(row.id)
        broker.publish(row.event, msg_id=row.id)


class CustomerKeyThreePartitions:
    partitions = 3

    def key(self, event):
        return event.customer


class RegionKey:
    partitions = 12

    def key(self, event):
        return event.region


class NoKey:
    partitions = 12

    def key(self, event):
        return None


def ch05_fixed_rate(state):
    return min(state.buffered, 60)


def ch05_ignores_depth(state):
    return min(state.buffered, state.queue_capacity)


def ch06_retry_everything(error, attempt):
    return min(2**attempt, 16)


def ch06_three_quick_tries(error, attempt):
    if isinstance(error, ValueError) or attempt >= 3:
        return None
    return 0.5


def ch06_no_backoff(error, attempt):
    if isinstance(error, ValueError):
        return None
    return 0


def ch07_off_by_one(consumer):
    records = consumer.poll()
    for record in records:
        consumer.process(record)
    if records:
        consumer.commit(records[-1].offset)


def ch07_never_commits(consumer):
    for record in consumer.poll():
        consumer.process(record)


def ch07_check_then_act(consumer, store):
    # the key is checked and recorded apart from the effect: a crash between them doubles it
    for record in consumer.poll():
        if not store.seen(record.offset):
            store.apply(record)
            store.remember(record.offset)
    if consumer.position > consumer.committed:
        try:
            consumer.commit(consumer.position)
        except consumer.RetriableCommitFailedError:
            return


def ch07_key_per_member(consumer, store):
    # a key that changes with the member: the new owner does not recognise a redelivery
    for record in consumer.poll():
        store.apply_once((consumer.name, record.offset), record)
    if consumer.position > consumer.committed:
        try:
            consumer.commit(consumer.position)
        except consumer.RetriableCommitFailedError:
            return


def ch07_key_not_unique(consumer, store):
    for record in consumer.poll():
        store.apply_once(record.value[:7], record)  # "order-1" for order-100..order-109
    if consumer.position > consumer.committed:
        try:
            consumer.commit(consumer.position)
        except consumer.RetriableCommitFailedError:
            return


def ch07_ignores_failover(consumer, store):
    # idempotent, but a coordinator failover's retriable commit error kills the consumer
    for record in consumer.poll():
        store.apply_once(record.offset, record)
    if consumer.position > consumer.committed:
        consumer.commit(consumer.position)


def ch07_swallows_failover(consumer, store):
    # catches the error but never commits again once no new records arrive
    records = consumer.poll()
    for record in records:
        store.apply_once(record.offset, record)
    if records:
        with contextlib.suppress(ch07.RetriableCommitFailedError):
            consumer.commit(records[-1].offset + 1)


def _noop_function(*args):
    return None


class NoOpRouting:
    def topic_for(self, event):
        return "nowhere"

    def subscribe(self, member):
        return member.service, []


class NoOpPlan:
    partitions = 1

    def key(self, event):
        return None


NOOP = {
    "ch01-heartbeat-worker": lambda job, msg: None,
    "ch02-route-events": NoOpRouting,
    "ch03-idempotent-charge": lambda message, balance_store: None,
    "ch03-outbox-relay": lambda outbox, broker: None,
    "ch04-key-and-partitions": NoOpPlan,
    "ch05-backpressure-producer": lambda state: 0,
    "ch06-retry-policy": lambda error, attempt: None,
    "ch07-commit-offsets": lambda consumer: None,
    "ch07-idempotent-consumer": lambda consumer, store: None,
    "ch08-configure-system": {
        "consumers": 1,
        "capacity": 1,
        "backpressure": "none",
        "max_receives": 1,
    },
}

WRONG = [
    ("ch01-heartbeat-worker", exercises.starter("ch01-heartbeat-worker"), "saved exactly once"),
    ("ch01-heartbeat-worker", ch01_ack_first, "every job is finished"),
    ("ch01-heartbeat-worker", ch01_extend_for_an_hour, "every job is finished"),
    ("ch01-heartbeat-worker", ch01_heartbeat_every_other_part, "saved exactly once"),
    ("ch02-route-events", exercises.starter("ch02-route-events"), "only the events it needs"),
    ("ch02-route-events", GroupPerMember, "each event once"),
    ("ch02-route-events", OneGroupForEveryone, "needs"),
    ("ch02-route-events", ProducerKnowsTheServices, "every event it needs"),
    ("ch03-idempotent-charge", exercises.starter("ch03-idempotent-charge"), "charged exactly once"),
    ("ch03-idempotent-charge", ch03_keyed_by_amount, "charged exactly once"),
    ("ch03-outbox-relay", exercises.starter("ch03-outbox-relay"), "published twice"),
    ("ch03-outbox-relay", ch03_mark_first, "no event is lost"),
    ("ch04-key-and-partitions", exercises.starter("ch04-key-and-partitions"), "key per customer"),
    ("ch04-key-and-partitions", CustomerKeyThreePartitions, "without a partition"),
    ("ch04-key-and-partitions", RegionKey, "hot key"),
    ("ch04-key-and-partitions", NoKey, "in order"),
    ("ch05-backpressure-producer", exercises.starter("ch05-backpressure-producer"), "lost"),
    ("ch05-backpressure-producer", ch05_fixed_rate, "throughput"),
    ("ch05-backpressure-producer", ch05_ignores_depth, "lost"),
    ("ch06-retry-policy", exercises.starter("ch06-retry-policy"), "permanent error"),
    ("ch06-retry-policy", ch06_three_quick_tries, "would have succeeded"),
    ("ch06-retry-policy", ch06_retry_everything, "permanent error"),
    ("ch06-retry-policy", ch06_no_backoff, "tried more than"),
    ("ch07-commit-offsets", exercises.starter("ch07-commit-offsets"), "nothing is lost"),
    ("ch07-commit-offsets", ch07_off_by_one, "reaches the log end"),
    ("ch07-commit-offsets", ch07_never_commits, "reaches the log end"),
    ("ch07-idempotent-consumer", exercises.starter("ch07-idempotent-consumer"), "applied twice"),
    ("ch07-idempotent-consumer", ch07_check_then_act, "applied twice"),
    ("ch07-idempotent-consumer", ch07_key_per_member, "applied twice"),
    ("ch07-idempotent-consumer", ch07_key_not_unique, "nothing is lost"),
    ("ch07-idempotent-consumer", ch07_ignores_failover, "retriable commit error"),
    ("ch07-idempotent-consumer", ch07_swallows_failover, "reaches the log end"),
    ("ch08-configure-system", exercises.starter("ch08-configure-system"), "lost"),
    (
        "ch08-configure-system",
        {"consumers": 8, "capacity": 100, "backpressure": "reject", "max_receives": 3},
        "lost",
    ),
    (
        "ch08-configure-system",
        {"consumers": 5, "capacity": 5000, "backpressure": "block", "max_receives": 3},
        "within 10 s",
    ),
]


# -- the public contract ----------------------------------------------------------------------


def test_every_chapter_from_1_to_8_has_an_exercise():
    assert {int(name[2:4]) for name in NAMES} == set(range(1, 9))
    assert "ch03-idempotent-charge" in NAMES and "ch03-outbox-relay" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_describe_gives_task_signature_and_checks(name):
    text = exercises.describe(name)
    assert name in text and "Write:" in text and "The checker:" in text


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_1000_schedules(name):
    result = exercises.check(name, exercises.reference(name), schedules=1000)
    assert result.passed, str(result)
    assert result.schedules_run == 1000
    assert result.counterexample is None
    assert "PASSED all 1000" in str(result)


@pytest.mark.parametrize("name", NAMES)
def test_doing_nothing_fails_with_a_counterexample(name):
    result = exercises.check(name, NOOP[name])
    assert not result.passed
    cx = result.counterexample
    assert cx is not None and cx.timeline and cx.invariant
    assert isinstance(cx.seed, int) and isinstance(cx.faults, list)


@pytest.mark.parametrize(
    ("name", "solution", "invariant"), WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)]
)
def test_typical_wrong_solution_fails_naming_the_invariant(name, solution, invariant):
    result = exercises.check(name, solution)
    assert not result.passed
    cx = result.counterexample
    assert invariant in cx.invariant, str(result)
    # the timeline names the broken invariant at the highlighted step
    assert cx.broken_step is not None
    step = cx.timeline[cx.broken_step]
    assert f"BROKEN: {cx.invariant}" in step.what + step.detail
    assert f"Broken: {cx.invariant}" in str(result)


def test_each_exercise_has_at_least_two_wrong_solutions_besides_doing_nothing():
    counts = {name: sum(1 for w in WRONG if w[0] == name) for name in NAMES}
    assert min(counts.values()) >= 2, counts


def test_global_state_passes_once_then_fails():
    # a module-level set outlives one account: the next schedules find every id "seen"
    SEEN.clear()
    result = exercises.check("ch03-idempotent-charge", ch03_global_set, schedules=20)
    assert not result.passed
    assert "never charged" in result.counterexample.explanation


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result(name):
    solution = exercises.starter(name)
    a = exercises.check(name, solution, seed=7)
    b = exercises.check(name, solution, seed=7)
    assert str(a) == str(b)
    assert a.counterexample.faults == b.counterexample.faults


def test_replay_with_the_counterexample_seed_reproduces_it():
    name = "ch01-heartbeat-worker"
    first = exercises.check(name, exercises.starter(name), seed=3)
    again = exercises.check(
        name, exercises.starter(name), schedules=1, seed=first.counterexample.seed
    )
    assert again.counterexample.faults == first.counterexample.faults
    assert again.counterexample.timeline == first.counterexample.timeline


def test_shrinking_removes_faults_that_do_not_matter():
    name = "ch01-heartbeat-worker"
    result = exercises.check(name, ch01_ack_first, schedules=200)
    cx = result.counterexample
    assert cx.unshrunk_faults >= len(cx.faults)
    # every remaining fault is needed: removing any one makes the schedule pass
    exercise = exercises._get(name)
    from dataclasses import replace

    from mqlib.exercises._checker import Schedule

    schedule = Schedule(cx.seed, cx.size, tuple(cx.faults))
    assert exercise.trial(ch01_ack_first, schedule).failed
    for i in range(len(cx.faults)):
        smaller = replace(schedule, faults=schedule.faults[:i] + schedule.faults[i + 1 :])
        assert not exercise.trial(ch01_ack_first, smaller).failed


def test_report_reads_well_and_renders_as_html_with_the_failing_step_highlighted():
    name = "ch01-heartbeat-worker"
    result = exercises.check(name, exercises.starter(name))
    text = str(result)
    assert text.startswith(f"{name}: FAILED on schedule")
    assert ">>" in text and "Replay: check(" in text
    html = result._repr_html_()
    assert html.count("<tr") == len(result.counterexample.shown_steps()) + 1
    assert html.count("background:#F0E442") == 1
    passed = exercises.check(name, exercises.reference(name), schedules=5)
    assert "PASSED" in passed._repr_html_() and bool(passed)


# -- solutions that misbehave -----------------------------------------------------------------


def raises(job, msg):
    return 1 / 0


def hangs(job, msg):
    while True:
        pass


def test_a_solution_that_raises_fails_with_a_clear_message():
    result = exercises.check("ch01-heartbeat-worker", raises)
    cx = result.counterexample
    assert cx.invariant == "the solution runs without errors"
    assert "work(job, msg) raised ZeroDivisionError: division by zero" in cx.explanation
    assert "return 1 / 0" in cx.explanation  # the learner's own line
    assert "Traceback" not in str(result)


def test_a_solution_that_hangs_fails_within_the_budget():
    result = exercises.check("ch01-heartbeat-worker", hangs, schedules=3)
    assert not result.passed
    assert "loop forever" in result.counterexample.explanation
    assert result.schedules_run == 1


def test_a_generator_or_async_solution_is_told_to_be_a_plain_function(recwarn):
    def generator(job, msg):
        yield job

    async def coroutine(job, msg):
        msg.ack()

    result = exercises.check("ch01-heartbeat-worker", generator)
    assert "returned a generator" in result.counterexample.explanation
    result = exercises.check("ch01-heartbeat-worker", coroutine)
    assert "async def" in result.counterexample.explanation
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_a_solution_that_never_makes_progress_runs_out_of_steps():
    def spins(consumer):
        while True:
            consumer.poll()  # polls forever, never processes

    result = exercises.check("ch07-commit-offsets", spins, schedules=2)
    assert "called more than" in result.counterexample.explanation
    assert "never make progress" in result.counterexample.explanation


def test_a_solution_that_returns_the_wrong_type_is_told_what_was_due():
    result = exercises.check("ch05-backpressure-producer", lambda state: "10")
    assert "returned '10' (str); it must return an int" in result.counterexample.explanation
    result = exercises.check("ch06-retry-policy", lambda error, attempt: "later")
    assert "a number of seconds, or None" in result.counterexample.explanation
    result = exercises.check(
        "ch04-key-and-partitions", type("P", (), {"partitions": 4, "key": lambda s, e: 42})
    )
    assert "it must return a str, bytes or None" in result.counterexample.explanation


def test_a_solution_that_asks_for_too_much_is_told_the_limit():
    result = exercises.check("ch05-backpressure-producer", lambda state: state.buffered + 1)
    assert "between 0 and the" in result.counterexample.explanation


def test_except_exception_does_not_survive_a_crash():
    def stubborn(job, msg):
        try:
            for part in job.parts:
                part.run()
                msg.in_progress()
        except Exception:
            pass
        job.save_result()
        msg.ack()

    # a crash is not an exception the learner can catch: the reference's behaviour holds
    assert exercises.check("ch01-heartbeat-worker", stubborn, schedules=300).passed


def test_ch07_schedules_have_crashes_rebalances_and_failovers():
    kinds = {}
    for name in ("ch07-commit-offsets", "ch07-idempotent-consumer"):
        exercise = exercises._EXERCISES[name]
        kinds[name] = [{f.kind for f in exercise.schedule(i).faults} for i in range(200)]
        # rebalances are as common as crashes, not a rare extra
        crashes = sum("crash" in k for k in kinds[name])
        rebalances = sum("rebalance" in k for k in kinds[name])
        assert crashes > 100 and rebalances > 100, (crashes, rebalances)
    assert sum("failover" in k for k in kinds["ch07-idempotent-consumer"]) > 50
    assert not any("failover" in k for k in kinds["ch07-commit-offsets"])


def test_ch07_a_rebalance_revokes_the_partition_and_the_new_member_resumes_at_the_commit():
    name = "ch07-commit-offsets"
    exercise = exercises._EXERCISES[name]
    schedule = next(
        s
        for s in map(exercise.schedule, range(200))
        if any(f.kind == "rebalance" for f in s.faults)
    )
    outcome = exercise.trial(exercises.reference(name), schedule)
    assert not outcome.failed
    steps = [s for s in outcome.timeline if s.what == "rebalance"]
    assert steps and "partition revoked from member-" in steps[0].detail
    assert "takes it at committed offset" in steps[0].detail


def test_ch07_a_revoked_member_that_keeps_working_is_caught():
    kept = {}

    def keeps_the_first_consumer(consumer):
        if consumer.name == "member-1" and consumer.position == 0:
            kept["c"] = consumer  # a new schedule: its first member
        c = kept["c"]
        for record in c.poll():
            c.process(record)
        if c.position > c.committed:
            c.commit(c.position)

    result = exercises.check("ch07-commit-offsets", keeps_the_first_consumer)
    assert "revoked member no longer touches" in result.counterexample.invariant, str(result)


def test_ch07_reprocessing_committed_records_is_more_than_at_least_once_allows():
    last = {}

    def redoes_the_last_batch_on_takeover(consumer):
        if consumer.name == "member-1" and consumer.position == 0:
            last.clear()  # a new schedule
        if last and last["by"] != consumer.name:
            for record in last["records"]:  # "to be safe": already committed
                consumer.process(record)
        records = consumer.poll()
        for record in records:
            consumer.process(record)
        if consumer.position > consumer.committed:
            consumer.commit(consumer.position)
        last.update(by=consumer.name, records=records or last.get("records", []))

    result = exercises.check("ch07-commit-offsets", redoes_the_last_batch_on_takeover)
    cx = result.counterexample
    assert "at-least-once allows" in cx.invariant, str(result)
    assert "was committed" in cx.explanation


def test_ch07_a_key_of_the_wrong_type_is_told_what_is_allowed():
    def list_key(consumer, store):
        for record in consumer.poll():
            store.apply_once([record.offset], record)

    result = exercises.check("ch07-idempotent-consumer", list_key)
    assert "key must be a str, int or tuple, got [0] (list)" in result.counterexample.explanation


def test_saving_before_the_work_is_done_is_caught():
    def lazy(job, msg):
        job.save_result()
        msg.ack()

    result = exercises.check("ch01-heartbeat-worker", lazy)
    assert "after all its parts ran" in result.counterexample.invariant


# -- bad arguments ----------------------------------------------------------------------------


def test_unknown_exercise_names_the_allowed_ones():
    with pytest.raises(ValueError, match="name must be one of .*ch01-heartbeat-worker"):
        exercises.check("nope", lambda: None)
    with pytest.raises(TypeError, match="name must be a string"):
        exercises.describe(3)
    with pytest.raises(ValueError, match="name must be one of"):
        exercises.reference("ch99")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"schedules": 0}, ValueError, "schedules must be >= 1"),
        ({"schedules": 2.5}, TypeError, "schedules must be an integer"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"seed": "x"}, TypeError, "seed must be an integer"),
    ],
)
def test_bad_check_arguments(kwargs, error, message):
    name = "ch01-heartbeat-worker"
    with pytest.raises(error, match=message):
        exercises.check(name, exercises.reference(name), **kwargs)


@pytest.mark.parametrize(
    ("name", "solution", "message"),
    [
        ("ch01-heartbeat-worker", 42, "solution must be a function work"),
        ("ch01-heartbeat-worker", lambda job: None, "has the signature"),
        ("ch02-route-events", object(), "must have the methods topic_for"),
        ("ch04-key-and-partitions", type("P", (), {"partitions": "6", "key": None}), "key"),
        ("ch07-idempotent-consumer", lambda consumer: None, "consume\\(consumer, store\\)"),
        ("ch08-configure-system", {"consumers": 3}, "missing"),
        ("ch08-configure-system", lambda load: {}, "not a function"),
    ],
)
def test_a_solution_of_the_wrong_kind_is_rejected_before_running(name, solution, message):
    with pytest.raises(TypeError if "missing" not in message else ValueError, match=message):
        exercises.check(name, solution)


def test_partitions_out_of_range_and_config_out_of_budget():
    with pytest.raises(ValueError, match="partitions must be between 1 and 1000"):
        exercises.check(
            "ch04-key-and-partitions", type("P", (), {"partitions": 0, "key": lambda s, e: None})
        )
    config = dict(exercises.reference("ch08-configure-system"), consumers=9)
    with pytest.raises(ValueError, match="consumers must be <= 8"):
        exercises.check("ch08-configure-system", config)


def test_a_long_timeline_is_cut_around_the_broken_step():
    result = exercises.check("ch06-retry-policy", ch06_no_backoff)
    cx = result.counterexample
    assert len(cx.timeline) > 40
    shown = cx.shown_steps()
    assert len(shown) <= 42 and None in shown and cx.broken_step in shown
    assert "   ..." in str(result)
    assert cx.timeline[cx.broken_step].as_text() in str(result)


def test_the_worlds_constants_are_what_describe_says():
    assert f"{ch01.ACK_WAIT:g} s" in exercises.describe("ch01-heartbeat-worker")
    assert str(ch05.MEMORY) in exercises.describe("ch05-backpressure-producer")


# -- the notebooks ----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _exercise_cells(name):
    chapter = next((ROOT / "chapters").glob(f"{name[2:4]}-*.ipynb"))
    nb = nbformat.read(chapter, as_version=4)
    cells = [(i, c) for i, c in enumerate(nb.cells) if c.metadata.get("exercise") == name]
    check_yourself = next(i for i, c in enumerate(nb.cells) if "## Check yourself" in c.source)
    return nb, cells, check_yourself


def _text(cell):
    return "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)


@pytest.mark.parametrize("name", NAMES)
def test_chapter_has_the_exercise_section_with_a_failing_starter_and_a_hidden_solution(name):
    nb, cells, check_yourself = _exercise_cells(name)
    assert cells, f"no exercise cells for {name}"
    first_index, heading = cells[0]
    assert heading.source.startswith("## Exercise: ") and first_index < check_yourself
    code = [c for _, c in cells if c.cell_type == "code"]
    checks = [c for c in code if f'check("{name}", ' in c.source]
    starter_check, solution = checks[0], checks[-1]
    assert "FAILED on schedule" in _text(starter_check)  # the reader sees a failure report
    assert "Broken:" in _text(starter_check)
    assert solution.metadata["jupyter"]["source_hidden"] is True
    assert "hide-input" in solution.metadata["tags"]
    assert "PASSED all 200" in _text(solution)
    assert any("**Hint.**" in c.source for _, c in cells if c.cell_type == "markdown")
