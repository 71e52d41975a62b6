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
