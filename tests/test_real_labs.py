"""The real-broker labs give the same, plain results every run."""

from __future__ import annotations

import json

import pytest

from mqlib.real import (
    JetStreamServer,
    NatsServerError,
    dedup_lab,
    dlq_lab,
    log_lab,
    pubsub_lab,
    work_queue_lab,
)


@pytest.fixture(scope="module")
def server():
    with JetStreamServer() as srv:
        yield srv


def check_plain(result: dict) -> None:
    """JSON-able (plain data), one-line summary, rounded elapsed time; print the run time."""
    json.dumps(result)
    assert isinstance(result["summary"], str) and "\n" not in result["summary"]
    assert result["elapsed_s"] == round(result["elapsed_s"], 1)
    print(f"\n{result['summary']} [{result['elapsed_s']} s]")


def test_work_queue_lab_redelivers_after_ack_wait():
    result = work_queue_lab(jobs=6, workers=2, crash_on=3, ack_wait=1.0)  # own server
    check_plain(result)
    deliveries = [
        (d["worker"], d["seq"], d["num_delivered"], d["acked"]) for d in result["deliveries"]
    ]
    assert deliveries == [
        ("worker-1", 1, 1, True),
        ("worker-2", 2, 1, True),
        ("worker-1", 3, 1, False),  # crashed before ACK
        ("worker-2", 4, 1, True),
        ("worker-2", 5, 1, True),
        ("worker-2", 6, 1, True),
        ("worker-2", 3, 2, True),  # back after ack_wait, delivery count 2
    ]
    assert result["done_by"] == {"worker-1": [1], "worker-2": [2, 4, 5, 6, 3]}
    assert result["crashed_worker"] == "worker-1"
    assert [(d["job"], d["num_delivered"]) for d in result["redelivered"]] == [("job-3", 2)]
    assert result["stream_messages_after_publish"] == 6
    assert result["stream_messages_left"] == 0
    assert result["second_consumer_allowed"] is False
    assert result["elapsed_s"] >= 0.9  # the redelivery waited for ack_wait


def test_work_queue_lab_three_workers(server):
    result = work_queue_lab(server, jobs=4, workers=3, crash_on=2, ack_wait=0.5)
    check_plain(result)
    assert result["crashed_worker"] == "worker-2"
    assert sorted(s for seqs in result["done_by"].values() for s in seqs) == [1, 2, 3, 4]
    assert result["done_by"]["worker-2"] == []
    assert [(d["seq"], d["num_delivered"]) for d in result["redelivered"]] == [(2, 2)]


def test_pubsub_lab_every_group_sees_every_event(server):
    result = pubsub_lab(server, events=6, groups={"payment": 2, "email": 2, "analytics": 1})
    check_plain(result)
    assert result["groups"] == {
        "payment": {"payment-1": [1, 3, 5], "payment-2": [2, 4, 6]},
        "email": {"email-1": [1, 3, 5], "email-2": [2, 4, 6]},
        "analytics": {"analytics-1": [1, 2, 3, 4, 5, 6]},
    }
    assert result["seen_by_group"] == {g: [1, 2, 3, 4, 5, 6] for g in result["groups"]}
    assert result["every_group_saw_every_event"] is True
    assert result["stream_messages"] == 6


def test_dedup_lab_drops_duplicates_and_consumer_is_idempotent(server):
    result = dedup_lab(server, orders=3, retries=2, crash_on=2, ack_wait=0.5)
    check_plain(result)
    assert [(p["msg_id"], p["seq"], p["duplicate"]) for p in result["publishes"]] == [
        ("order-1", 1, False), ("order-1", 1, True), ("order-1", 1, True),
        ("order-2", 2, False), ("order-2", 2, True), ("order-2", 2, True),
        ("order-3", 3, False), ("order-3", 3, True), ("order-3", 3, True),
    ]  # fmt: skip
    assert result["stream_messages"] == 3
    assert result["without_msg_id_stream_messages"] == 9
    assert result["late_retry"] is None
    assert [(d["msg_id"], d["num_delivered"], d["action"]) for d in result["deliveries"]] == [
        ("order-1", 1, "charged"),
        ("order-2", 1, "charged, crashed before ACK"),
        ("order-3", 1, "charged"),
        ("order-2", 2, "skipped: already charged"),
    ]
    assert result["charges"] == ["order-1", "order-2", "order-3"]
    assert result["redelivered"] == ["order-2"]


def test_dedup_lab_window_expires(server):
    result = dedup_lab(server, orders=2, retries=1, duplicate_window=0.3, late_retry=True,
                       crash_on=1, ack_wait=0.5)  # fmt: skip
    check_plain(result)
    assert result["stream_messages"] == 2
    assert result["late_retry"] == {"msg_id": "order-1", "seq": 3, "duplicate": False}
    assert result["charges"] == ["order-1", "order-2"]  # the consumer still charged once
    skipped = [d for d in result["deliveries"] if d["action"].startswith("skipped")]
    assert sorted((d["seq"], d["num_delivered"]) for d in skipped) == [(1, 2), (3, 1)]


def test_dlq_lab_parks_the_poison_message(server):
    result = dlq_lab(server, orders=5, poison=3, max_deliver=3)
    check_plain(result)
    assert [(d["seq"], d["num_delivered"], d["outcome"]) for d in result["deliveries"]] == [
        (1, 1, "ack"), (2, 1, "ack"),
        (3, 1, "nak"), (3, 2, "nak"), (3, 3, "nak"),
        (4, 1, "ack"), (5, 1, "ack"),
    ]  # fmt: skip
    assert result["processed"] == [1, 2, 4, 5]
    assert result["poison_deliveries"] == 3
    assert result["advisory"] == {
        "stream": "LAB_ORDERS", "consumer": "processor", "stream_seq": 3, "deliveries": 3,
    }  # fmt: skip
    assert result["dlq"] == [
        {
            "dlq_seq": 1,
            "data": "order-3 (malformed)",
            "headers": {
                "Dlq-Original-Stream": "LAB_ORDERS",
                "Dlq-Original-Subject": "lab.dlq.orders",
                "Dlq-Original-Seq": "3",
                "Dlq-Deliveries": "3",
                "Dlq-Error": "ValueError: cannot parse 'order-3 (malformed)'",
            },
        }
    ]
    assert result["consumer_ack_pending"] == 0


def test_dlq_lab_poison_last_and_single_delivery(server):
    # The poison is the last message: the advisory still fires (on the extra pull request).
    result = dlq_lab(server, orders=2, poison=2, max_deliver=1)
    assert result["processed"] == [1]
    assert result["advisory"]["stream_seq"] == 2 and result["advisory"]["deliveries"] == 1
    assert [d["data"] for d in result["dlq"]] == ["order-2 (malformed)"]


def test_log_lab_offsets_replay_and_retention(server):
    result = log_lab(server, events=8, a_reads=5, b_start=4, b_reads=3, max_msgs=5, max_age=0.3)
    check_plain(result)
    assert result["offsets"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert result["reader_a"] == {"read": [1, 2, 3, 4, 5], "next": 6, "resumed": [6, 7, 8]}
    assert result["reader_b"] == {"start": 4, "read": [4, 5, 6], "next": 7}
    assert result["stream_messages_after_reads"] == 8
    assert result["replay_from_start"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert result["count_retention"] == {
        "max_msgs": 5, "published": 8, "messages": 5, "first_seq": 4, "last_seq": 8,
        "replay_from_start": [4, 5, 6, 7, 8], "replay_from_seq_1": [4, 5, 6, 7, 8],
    }  # fmt: skip
    assert result["age_retention"] == {
        "max_age": 0.3, "published": 3, "messages_before": 3, "messages_after": 0, "next_seq": 4,
    }  # fmt: skip


def test_labs_rerun_on_the_same_server_give_the_same_results(server):
    first = pubsub_lab(server.url, events=4, groups={"a": 2, "b": 1})
    second = pubsub_lab(server, events=4, groups={"a": 2, "b": 1})
    for result in (first, second):
        del result["elapsed_s"]
    assert first == second


def test_lab_argument_checks(server):
    with pytest.raises(ValueError, match="workers"):
        work_queue_lab(server, workers=1)
    with pytest.raises(ValueError, match="crash_on"):
        work_queue_lab(server, jobs=3, crash_on=4)
    with pytest.raises(TypeError, match="ack_wait"):
        work_queue_lab(server, ack_wait="1s")
    with pytest.raises(ValueError, match="group name"):
        pubsub_lab(server, groups={"pay.ment": 1})
    with pytest.raises(TypeError, match="groups"):
        pubsub_lab(server, groups=["payment"])
    with pytest.raises(ValueError, match="duplicate_window"):
        dedup_lab(server, duplicate_window=60.0, late_retry=True)
    with pytest.raises(ValueError, match="max_deliver"):
        dlq_lab(server, max_deliver=0)
    with pytest.raises(ValueError, match="b_reads"):
        log_lab(server, events=8, b_start=7, b_reads=3)
    with pytest.raises(ValueError, match="max_age"):
        log_lab(server, max_age=0.05)
    with pytest.raises(ValueError, match="loopback"):
        pubsub_lab("nats://192.0.2.1:4222")
    with pytest.raises(TypeError, match="server"):
        pubsub_lab(4222)
    stopped = JetStreamServer()
    with pytest.raises(NatsServerError, match="not running"):
        dlq_lab(stopped)


def test_jetstream_observe_fills_every_row_from_the_runs(server):
    from mqlib.real.scripts import ROWS
    from mqlib.real.scripts.jetstream import observe

    cells = observe(server)
    assert list(cells) == list(ROWS)
    assert cells["unit of delivery"].evidence["fan_out"] == {
        "billing": [1, 2, 3, 4],
        "email": [1, 2, 3, 4],
    }
    redelivery = cells["what triggers redelivery"].evidence
    assert redelivery["redelivered"] == {"who": "A", "message": "m3", "count": 2, "acked": True}
    assert redelivery["late_ack_accepted"] is True
    assert cells["delivery counter"].evidence == {"count": 2}
    assert cells["dead-letter mechanism"].evidence["deliveries"] == [1, 2, 3]
    assert cells["dead-letter mechanism"].evidence["dead"]["receive_count"] == 3
    dedup = cells["deduplication"].evidence
    assert dedup["duplicates"] == [False, True, True] and dedup["stored"] == 1
    assert dedup["window_s"] == 120  # the server's default duplicate window
    overflow = cells["overflow policies"].evidence
    assert overflow["old"] == {"kept": ["m4", "m5"], "refused": 0}
    assert overflow["new"] == {"kept": ["m1", "m2"], "refused": 3}
    assert "m4, m5" in cells["overflow policies"].text
    with pytest.raises(TypeError, match="JetStreamServer"):
        observe("nats://127.0.0.1:4222")  # type: ignore[arg-type]
