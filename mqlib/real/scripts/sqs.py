"""The course's experiments on the SQS API (served by moto), with ``boto3``, and what they observed.

Each experiment creates its own queues (so one endpoint serves them all), plays a short scenario
with the real client calls and returns the evidence as plain data; :func:`observe` runs them all and
writes the comparison-table cells from that evidence. Waits use SQS long polling
(``WaitTimeSeconds``), which returns as soon as a message is visible: no fixed sleeps.

moto is an emulator. The experiments only record behaviour that AWS documents the same way
(visibility timeout, ``ApproximateReceiveCount``, redrive policy, FIFO groups and deduplication);
where moto departs from AWS (a stale receipt handle), the chapter shows AWS's rule.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from mqlib import _validate
from mqlib.real.scripts import Cell

__all__ = [
    "crash_before_delete",
    "fifo_deduplication",
    "fifo_groups",
    "no_fan_out",
    "observe",
    "poison_to_dead_letters",
    "queue_limits",
]

_COUNT = ["ApproximateReceiveCount"]
_RUNS = itertools.count(1)


def _name(base: str) -> str:
    """A queue name of its own for each run (``orders-3``, ``orders-dlq-3``, ``events-3.fifo``)."""
    n = next(_RUNS)
    return f"{base[:-5]}-{n}.fifo" if base.endswith(".fifo") else f"{base}-{n}"


def _receive(sqs: Any, url: str, *, wait: int = 0, most: int = 1) -> list[dict[str, Any]]:
    reply = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=most,
        WaitTimeSeconds=wait,
        MessageSystemAttributeNames=_COUNT,
    )
    return reply.get("Messages", [])


def _count(message: dict[str, Any]) -> int:
    return int(message["Attributes"]["ApproximateReceiveCount"])


def crash_before_delete(server: Any, *, visibility_timeout: int = 1) -> dict[str, Any]:
    """Chapter 1: A receives ``m1`` and never deletes it; after the timeout B receives it again."""
    _validate.integer("visibility_timeout", visibility_timeout, minimum=1, maximum=10)
    sqs = server.client()
    url = sqs.create_queue(
        QueueName=_name("crash-jobs"), Attributes={"VisibilityTimeout": str(visibility_timeout)}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m1")
    first = _receive(sqs, url)[0]  # worker A, which then crashes: no delete_message
    received_at = time.monotonic()
    hidden = _receive(sqs, url)  # at once: nothing, m1 is in flight
    # Long poll up to 3 timeouts: returns as soon as m1 is visible again.
    again = _receive(sqs, url, wait=3 * visibility_timeout)[0]  # worker B
    waited = time.monotonic() - received_at
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    return {
        "visibility_timeout": visibility_timeout,
        "first": {"body": first["Body"], "count": _count(first)},
        "while_in_flight": len(hidden),
        "again": {"body": again["Body"], "count": _count(again)},
        "same_message_id": first["MessageId"] == again["MessageId"],
        "new_receipt_handle": first["ReceiptHandle"] != again["ReceiptHandle"],
        "waited_seconds": waited,
    }


def poison_to_dead_letters(server: Any, *, max_receive_count: int = 3) -> dict[str, Any]:
    """Chapter 6: the lesson's redrive policy; a message that always fails reaches the DLQ.

    The failing consumer gives the message back at once with ``change_message_visibility(0)``
    (instead of waiting out the timeout), so the experiment takes milliseconds.
    """
    _validate.integer("max_receive_count", max_receive_count, minimum=1, maximum=1000)
    sqs = server.client()
    dlq_url = sqs.create_queue(QueueName=_name("orders-dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    url = sqs.create_queue(
        QueueName=_name("orders"),
        Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="order-3 (malformed)")
    counts = []
    for _ in range(max_receive_count + 1):
        got = _receive(sqs, url)
        if not got:
            break
        counts.append(_count(got[0]))
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0
        )
    dead = _receive(sqs, dlq_url, wait=2)
    return {
        "queue_url": url,
        "max_receive_count": max_receive_count,
        "receive_counts": counts,
        "dead": [{"body": m["Body"], "count": _count(m)} for m in dead],
    }


def fifo_deduplication(server: Any) -> dict[str, Any]:
    """Chapter 3: a FIFO queue drops a second send with the same ``MessageDeduplicationId``."""
    sqs = server.client()
    url = sqs.create_queue(QueueName=_name("charges.fifo"), Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    ids = []
    for _ in range(2):
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody="charge $10",
            MessageGroupId="account-7",
            MessageDeduplicationId="charge-42",
        )
        ids.append(sent["MessageId"])
    got = _receive(sqs, url, most=10)
    for message in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    again = _receive(sqs, url, most=10)
    standard = sqs.create_queue(QueueName=_name("charges"))["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=standard, MessageBody="charge $10")
    plain = _receive(sqs, standard, most=10)
    return {
        "sent": 2,
        "same_message_id_returned": ids[0] == ids[1],
        "fifo_delivered": len(got) + len(again),
        "standard_delivered": len(plain),
    }


def fifo_groups(server: Any) -> dict[str, Any]:
    """Chapter 4: a message group in flight blocks only itself."""
    sqs = server.client()
    url = sqs.create_queue(
        QueueName=_name("orders.fifo"),
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for group, event in (("42", "created"), ("42", "paid"), ("43", "created")):
        sqs.send_message(QueueUrl=url, MessageBody=f"{group}:{event}", MessageGroupId=group)
    first = [m["Body"] for m in _receive(sqs, url)]  # 42:created, now in flight
    second = [m["Body"] for m in _receive(sqs, url, most=10)]  # 42 is blocked, 43 is not
    return {"first": first, "while_42_in_flight": second}


def no_fan_out(server: Any) -> dict[str, Any]:
    """Chapter 2: two consumers of one queue: each message goes to one of them only."""
    sqs = server.client()
    url = sqs.create_queue(QueueName=_name("events"), Attributes={"VisibilityTimeout": "30"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="e1")
    a = _receive(sqs, url)
    b = _receive(sqs, url)
    return {"consumer_a": [m["Body"] for m in a], "consumer_b": [m["Body"] for m in b]}


def queue_limits(server: Any, *, messages: int = 12) -> dict[str, Any]:
    """Chapter 5: batch size of one receive, and the queue's limits (retention, no max length)."""
    _validate.integer("messages", messages, minimum=11, maximum=20)
    sqs = server.client()
    url = sqs.create_queue(QueueName=_name("limits"))["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(10)],
    )
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(10, messages)],
    )
    batch = _receive(sqs, url, most=10)
    try:
        _receive(sqs, url, most=11)
        over_ten = "accepted"
    except sqs.exceptions.ClientError as exc:
        over_ten = exc.response["Error"]["Code"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "sent": messages,
        "one_receive": len(batch),
        "max_number_of_messages_11": over_ten,
        "retention_seconds": int(attrs["MessageRetentionPeriod"]),
        "max_length_attribute": "MaxLength" in attrs,
    }


def observe(server: Any) -> dict[str, Cell]:
    """Run every experiment on the running :class:`~mqlib.real.sqs.SQSServer`."""
    crash = crash_before_delete(server)
    poison = poison_to_dead_letters(server)
    dedup = fifo_deduplication(server)
    groups = fifo_groups(server)
    fan = no_fan_out(server)
    limits = queue_limits(server)
    days = limits["retention_seconds"] / 86400
    return {
        "unit of delivery": Cell(
            f"a message, pulled: one receive_message returned {limits['one_receive']} of "
            f"{limits['sent']} (MaxNumberOfMessages 1-10). No fan-out: of two consumers "
            f"one got {', '.join(fan['consumer_a']) or 'nothing'}, "
            f"the other {', '.join(fan['consumer_b']) or 'nothing'}"
            " (fan-out is SNS with a queue per subscriber)",
            {"limits": limits, "fan-out": fan},
        ),
        "what triggers redelivery": Cell(
            f"the visibility timeout ({crash['visibility_timeout']} s) running out without "
            f"delete_message: invisible meanwhile ({crash['while_in_flight']} received), then "
            "the same MessageId with a new receipt handle; change_message_visibility extends it",
            crash,
        ),
        "delivery counter": Cell(
            f"attribute ApproximateReceiveCount: {crash['first']['count']} on the first receive, "
            f"{crash['again']['count']} after the timeout",
            crash,
        ),
        "dead-letter mechanism": Cell(
            f"the queue's RedrivePolicy (maxReceiveCount {poison['max_receive_count']}): receive "
            f"counts {', '.join(map(str, poison['receive_counts']))}, then the next receive moved "
            f"it to the dead-letter queue ({len(poison['dead'])} there); no error text is kept",
            poison,
        ),
        "deduplication": Cell(
            f"FIFO queues: a second send with the same MessageDeduplicationId within 5 minutes "
            f"is accepted but not delivered ({dedup['fifo_delivered']} of {dedup['sent']} "
            f"delivered; standard queue: {dedup['standard_delivered']} of {dedup['sent']})",
            dedup,
        ),
        "ordering unit": Cell(
            f"FIFO queues: the MessageGroupId; with 42:created in flight a receive returned "
            f"{', '.join(groups['while_42_in_flight']) or 'nothing'} (group 42 waits). "
            "Standard queues: best-effort order",
            groups,
        ),
        "overflow policies": Cell(
            f"none to set: no maximum length attribute; messages expire after "
            f"MessageRetentionPeriod (default {limits['retention_seconds']} s = {days:g} days)",
            limits,
        ),
    }
