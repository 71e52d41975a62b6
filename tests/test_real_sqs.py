"""The SQS API served by moto (an emulator), with boto3, and the course's experiments on it.

One endpoint serves the module; each experiment creates its own queues. Waits use long polling
(``WaitTimeSeconds``), which returns on the event, with a bound.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from mqlib.real import sqs as sqs_module
from mqlib.real._process import ServerError, ServerNotFoundError, pid_alive
from mqlib.real.scripts import ROWS
from mqlib.real.scripts import sqs as experiments
from mqlib.real.sqs import SQSServer


@pytest.fixture
def endpoint(sqs_server):
    """The session's server (tests/conftest.py); each experiment declares its own queues."""
    return sqs_server


def test_endpoint_on_loopback_answers_sqs(endpoint):
    assert endpoint.endpoint_url.startswith("http://127.0.0.1:")
    sqs = endpoint.client()
    url = sqs.create_queue(QueueName="smoke")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == "hello"


def test_visibility_timeout_redelivers_with_receive_count_2(endpoint):
    result = experiments.crash_before_delete(endpoint, visibility_timeout=1)
    assert result["first"] == {"body": "m1", "count": 1}
    assert result["while_in_flight"] == 0
    assert result["again"] == {"body": "m1", "count": 2}
    assert result["same_message_id"] and result["new_receipt_handle"]
    assert result["waited_seconds"] >= 0.9  # not before the timeout


def test_heartbeat_extends_the_visibility_timeout(endpoint):
    sqs = endpoint.client()
    url = sqs.create_queue(QueueName="heartbeat", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="slow job")
    [held] = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=5
    )
    # Past the original 1 s timeout nothing comes back: a 2 s long poll returns empty.
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", []) == []
    with pytest.raises(sqs.exceptions.ClientError):  # AWS's maximum is 12 hours
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=43201
        )


def test_redrive_policy_moves_the_poison_message_after_max_receive_count(endpoint):
    result = experiments.poison_to_dead_letters(endpoint, max_receive_count=3)
    assert result["receive_counts"] == [1, 2, 3]
    assert [d["body"] for d in result["dead"]] == ["order-3 (malformed)"]
    # the redrive policy is stored as the lesson writes it
    sqs = endpoint.client()
    url = result["queue_url"]
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert ":orders-dlq-" in policy["deadLetterTargetArn"]
    assert int(policy["maxReceiveCount"]) == 3


def test_fifo_deduplication_and_groups(endpoint):
    dedup = experiments.fifo_deduplication(endpoint)
    assert (dedup["fifo_delivered"], dedup["standard_delivered"]) == (1, 2)
    groups = experiments.fifo_groups(endpoint)
    assert groups == {"first": ["42:created"], "while_42_in_flight": ["43:created"]}


def test_one_consumer_per_message_and_queue_limits(endpoint):
    assert experiments.no_fan_out(endpoint) == {"consumer_a": ["e1"], "consumer_b": []}
    limits = experiments.queue_limits(endpoint)
    assert limits["one_receive"] == 10
    assert limits["max_number_of_messages_11"] != "accepted"
    assert limits["retention_seconds"] == 4 * 24 * 3600
    assert limits["max_length_attribute"] is False


def test_observe_fills_every_row_from_evidence(endpoint):
    cells = experiments.observe(endpoint)
    assert set(cells) == set(ROWS)
    assert "ApproximateReceiveCount: 1" in cells["delivery counter"].text
    assert cells["dead-letter mechanism"].evidence["receive_counts"] == [1, 2, 3]


def test_stop_by_pid_and_clear_errors():
    server = SQSServer().start()
    pid, url = server.pid, server.endpoint_url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/moto-api/", timeout=2) as response:
        assert response.status == 200
    server.stop()
    assert not pid_alive(pid)
    with pytest.raises(ServerError, match="not running"):
        server.client()


def test_missing_moto_server_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sqs_module.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerNotFoundError, match=r"pip install \"moto\[server\]\""):
        SQSServer()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: experiments.crash_before_delete(None, visibility_timeout=0), ValueError),
        (lambda: experiments.crash_before_delete(None, visibility_timeout=0.5), TypeError),
        (lambda: experiments.poison_to_dead_letters(None, max_receive_count=0), ValueError),
        (lambda: experiments.queue_limits(None, messages=5), ValueError),
    ],
)
def test_experiments_check_their_arguments_first(call, error):
    with pytest.raises(error):
        call()
