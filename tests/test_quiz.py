"""The question banks: well-formed, every option explained, numeric answers equal to what the
engine computes, and rendered without anything that needs a network."""

import json
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from mqlib import OrderFlow, PointToPointRun, quiz

ROOT = Path(__file__).resolve().parent.parent


def numeric_answer(bank, index):
    question = quiz.load(bank)[index]
    assert question["type"] == "numeric"
    return next(a["value"] for a in question["answers"] if a.get("correct"))


@pytest.mark.parametrize("bank", quiz.bank_names())
def test_bank_is_complete_and_used_by_its_chapter(bank):
    questions = quiz.load(bank)  # validates: a right answer, feedback on every option
    assert len(questions) >= 3
    chapter = next((ROOT / "chapters").glob(f"{bank[2:]}-*.ipynb"))
    sources = [c.source for c in nbformat.read(chapter, as_version=4).cells]
    assert any(f'quiz.show("{bank}")' in source for source in sources)


def test_validate_rejects_a_question_without_feedback():
    bad = [
        {"question": "?", "type": "multiple_choice", "answers": [{"answer": "a", "correct": True}]}
    ]
    with pytest.raises(ValueError, match="every option needs a 'feedback'"):
        quiz.validate(bad, "test")
    zero = [
        {
            "question": "?",
            "type": "numeric",
            "precision": 0,
            "answers": [{"type": "value", "value": 1, "correct": True, "feedback": "yes"}],
        }
    ]
    with pytest.raises(ValueError, match="precision must be an integer >= 1"):
        quiz.validate(zero, "test")
    with pytest.raises(ValueError, match="bank must be one of"):
        quiz.load("ch99")


def test_chapter_0_numeric_answer_is_the_engines_sync_wait():
    assert numeric_answer("ch00", 1) == OrderFlow("sync", down=["warehouse"]).run().user_wait_ms


def test_chapter_1_numeric_answer_is_the_number_of_processings():
    run = PointToPointRun()
    run.send(12)
    run.run_until_empty()
    assert sum(run.processed_by().values()) == numeric_answer("ch01", 1) == 12


def test_chapter_1_scaling_answer_matches_the_engine():
    times = {}
    for consumers in (1, 3):
        run = PointToPointRun({n: 2.0 for n in "ABC"[:consumers]}, visibility_timeout=60)
        run.send(30)
        times[consumers] = run.run_until_empty()
    assert (times[3], times[1]) == (20.0, 60.0)
    right = next(a for a in quiz.load("ch01")[4]["answers"] if a["correct"])
    assert "20 s instead of 60 s" in right["answer"]


def test_show_renders_a_stable_quiz_without_mathjax_or_network(capsys):
    shell = InteractiveShell.instance()
    outputs = []
    shell.display_pub.publish = lambda data, **kwargs: outputs.append(data)
    quiz.show("ch01")
    first = list(outputs)
    outputs.clear()
    quiz.show("ch01")
    assert outputs == first  # same id, same script: nbval can compare it
    html, script = first[0]["text/html"], first[1]["application/javascript"]
    assert 'id="mqQuizch01"' in html
    assert "typeof MathJax" not in script
    assert json.dumps(quiz.load("ch01")[0]["question"]) in script


def test_chapter_1_timeout_answer_matches_the_engine():
    """A visibility timeout shorter than the processing time, on JetStream's rule (nats-server
    2.15.1 accepts an ACK after ack_wait while the message is not yet deleted): the message is
    handed to a second consumer at 1 s, processed twice, and the first, late ACK deletes it."""
    run = PointToPointRun({"A": 2.0, "B": 2.0, "C": 2.0}, visibility_timeout=1.0)
    run.send(1)
    run.advance(60)
    receives = [(e.time, e.data["consumer"]) for e in run.sim.trace.of_kind("receive")]
    assert receives == [(0, "A"), (1.0, "B")]
    assert [(e.time, e.data.get("late")) for e in run.sim.trace.of_kind("ack")] == [(2.0, True)]
    assert [e.time for e in run.sim.trace.of_kind("ack_rejected")] == [3.0]
    assert sum(run.processed_by().values()) == 2
    assert run.queue.depth == 0
    right = next(a for a in quiz.load("ch01")[2]["answers"] if a["correct"])
    assert "processed twice" in right["answer"] and "late ACK at 2 s" in right["answer"]


def test_chapter_1_burst_with_a_short_timeout_costs_19_processings():
    """Ten 2-second messages, 1 s timeout: 9 are redelivered while their first consumer works;
    a heartbeat (JetStream msg.in_progress(), SQS ChangeMessageVisibility) removes every one."""
    run = PointToPointRun({"A": 2.0, "B": 2.0, "C": 2.0}, visibility_timeout=1.0)
    run.send(10)
    run.advance(60)
    assert sum(run.processed_by().values()) == numeric_answer("ch01", 3) == 19
    assert (len(run.redeliveries()), run.queue.acked_count, run.queue.depth) == (9, 10, 0)
    assert run.queue.late_ack_count == 10  # every message deleted by a late ACK (the page says so)
    redelivered = {e["message"] for e in run.redeliveries()}
    # m1 times out while all three are busy, and A's late ACK deletes it before anyone is free.
    assert redelivered == {f"m{n}" for n in range(2, 11)}
    steady = PointToPointRun({"A": 2.0, "B": 2.0, "C": 2.0}, visibility_timeout=1.0, heartbeat=0.5)
    steady.send(10)
    steady.advance(60)
    assert (sum(steady.processed_by().values()), len(steady.redeliveries())) == (10, 0)


def test_chapter_4_librdkafka_answer_is_crc32_and_the_retry_answer_matches_the_model():
    """librdkafka's default ``partitioner=consistent_random`` is CRC32 of the key (checked against
    a real librdkafka producer in test_partitioner.py); Kafka's producer docs warn that retries
    with ``enable.idempotence=false`` and more than one request in flight can reorder."""
    from mqlib.models.ordering import order_events, producer_retry_log
    from mqlib.models.partitioner import kafka_partition, librdkafka_partition

    index = next(i for i, q in enumerate(quiz.load("ch04")) if "confluent-kafka" in q["question"])
    assert numeric_answer("ch04", index) == librdkafka_partition("44", 4) == 1
    assert kafka_partition("44", 4) == 3
    log = producer_retry_log(order_events([42]), failed=1, idempotent=False, max_in_flight=5)
    question = next(q for q in quiz.load("ch04") if "enable.idempotence=false" in q["question"])
    right = next(a for a in question["answers"] if a["correct"])
    assert right["answer"].startswith(", ".join(e.step for e in log) + ":")


def test_chapter_7_durability_answers_match_the_engines_table():
    """Kafka's defaults (``min.insync.replicas=1``, unclean election off, ``acks=all``) and the
    rule that ``acks=all`` waits for the current ISR only (Kafka design docs, "Availability and
    Durability Guarantees"); no per-write fsync (``flush.messages``/``flush.ms`` never)."""
    from mqlib.scenarios.durability import durability_table, outcome, power_loss_run

    bank = quiz.load("ch07")
    names = ("replication_factor", "min_insync_replicas", "acks", "unclean_leader_election")
    rows = {tuple(r[name] for name in names): r for r in durability_table()}
    index = next(i for i, q in enumerate(bank) if "no leader" in q["question"])
    assert rows[(2, 1, "all", False)]["kafka_default"]
    assert numeric_answer("ch07", index) == rows[(2, 1, "all", False)]["leaderless_seconds"] == 40
    wrong = {a.get("value") for a in bank[index]["answers"] if not a.get("correct")}
    assert rows[(2, 1, "all", True)]["leaderless_seconds"] in wrong  # 9: the unclean row

    lost = next(q for q in bank if "after the follower left the ISR" in q["question"])
    right = next(a for a in lost["answers"] if a["correct"])
    assert right["answer"].startswith("They are lost")
    assert f"loses the {rows[(2, 1, 'all', True)]['acknowledged_lost']} writes" in right["feedback"]

    power = next(q for q in bank if "still lose records" in q["question"])
    right = next(a for a in power["answers"] if a["correct"])
    assert "lose power" in right["answer"]
    row = outcome(power_loss_run(replication_factor=3, min_insync_replicas=2, acks="all"))
    assert f"{row['acknowledged_lost']} records" in right["feedback"] and row["acknowledged_lost"]
    assert rows[(3, 2, "all", False)]["acknowledged_lost"] == 0  # the other options' settings


def test_chapter_2_contract_answers_match_the_engine():
    """The rename dead-letters payment's five new events; Confluent Schema Registry's default
    mode, BACKWARD, accepts removing customer_email, which breaks the email group."""
    from mqlib.scenarios.contracts import ContractRun

    index = next(
        i for i, q in enumerate(quiz.load("ch02")) if "ContractRun().table()" in q["question"]
    )
    rows = {r["group"]: r for r in ContractRun().table()}
    assert numeric_answer("ch02", index) == rows["payment"]["dead_lettered"] == 5
    assert rows["payment"]["failed_attempts"] == 15
    removal = ContractRun("remove customer_email", registry="BACKWARD")
    assert removal.deployed
    assert {r["group"]: r["dead_lettered"] for r in removal.table()}["email"] == 5
    question = next(q for q in quiz.load("ch02") if "default mode, BACKWARD" in q["question"])
    right = next(a for a in question["answers"] if a["correct"])
    assert right["answer"].startswith("The registry accepts it")


def test_chapter_7_log_rebalancing_and_compaction_answers_match_the_engine():
    """auto.offset.reset=latest (Kafka's default) reads none of the history; eager rebalancing
    after a join 1 s past a commit repeats 30 records; __consumer_offsets-style compaction keeps
    one record per (group, topic, partition). Sources: book/references.md, Kafka consumer
    configuration and log compaction."""
    from mqlib.scenarios.compaction import consumer_offsets_run, default_run
    from mqlib.scenarios.kafka_log import KafkaLogRun
    from mqlib.scenarios.rebalance import compare_join, restart_run

    questions = quiz.load("ch07")

    def index(text):
        return next(i for i, q in enumerate(questions) if text in q["question"])

    def right(text):
        return next(a for a in questions[index(text)]["answers"] if a["correct"])

    run = KafkaLogRun(1)
    for n in range(1000):
        run.produce(None, n)
    run.add_group("new", 1)  # Kafka's default reset policy
    assert len(run.consume("new")) == numeric_answer("ch07", index("1,000 records")) == 0

    rows = {(r["protocol"], r["commit_on_revoke"]): r for r in compare_join()}
    assert numeric_answer("ch07", index("compare_join()")) == rows[("eager", False)]["duplicates"]
    assert rows[("eager", False)]["duplicates"] == 30
    eager = rows[("eager", False)]
    assert eager["partitions_paused"] == 6 and eager["moved"] == [5]
    assert right("A fourth member joins")["answer"].startswith("All six")

    assert restart_run(True, downtime=20.0)["rounds"] == 0
    assert restart_run(False, downtime=20.0)["rounds"] == 2
    assert right("rolling deploy")["answer"].startswith("None")

    offsets = consumer_offsets_run(50)
    assert offsets["written"] == 200
    assert numeric_answer("ch07", index("consumer_offsets_run(50)")) == offsets["kept"] == 4

    compaction = default_run()
    assert 5 in compaction["removed_second"] and "customer-7" not in compaction["table_before"]
    assert right("null value")["answer"].startswith("Nothing at all")
