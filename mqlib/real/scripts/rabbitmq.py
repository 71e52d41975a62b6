"""The course's experiments on a real RabbitMQ node, with ``pika``, and what they observed.

Each experiment declares its own queues (names prefixed by the experiment, so one node serves
them all), plays a short scenario with the real client calls and returns the evidence as plain
data. :func:`observe` runs them all and writes the comparison-table cells from that evidence.

Every wait is bounded: :func:`_pump` lets pika deliver for at most a few seconds and stops as soon
as the scenario has what it waits for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mqlib import _validate
from mqlib.real.scripts import Cell

__all__ = [
    "crash_before_ack",
    "duplicate_publish",
    "fan_out",
    "observe",
    "overflow",
    "poison_to_dead_letters",
    "prefetch_window",
]

_WAIT_SECONDS = 5.0


def _pump(connections: list[Any], done: Callable[[], bool], timeout: float = _WAIT_SECONDS) -> bool:
    """Let pika dispatch deliveries on ``connections`` until ``done()`` or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        for connection in connections:
            connection.process_data_events(time_limit=0.01)
    return True


def _body(body: bytes) -> str:
    return body.decode()


def crash_before_ack(server: Any) -> dict[str, Any]:
    """Chapter 1: consumer A's channel closes holding a message; B gets it, ``redelivered``.

    Both consumers use ``basic_qos(prefetch_count=1)`` and manual acks. A receives ``m1`` and
    its channel is closed before it acks (what a crash does to the connection); RabbitMQ puts
    ``m1`` back at once and hands it to B with ``redelivered=True``.
    """
    conn_a, conn_b = server.connect(), server.connect()
    try:
        ch_a, ch_b = conn_a.channel(), conn_b.channel()
        ch_a.queue_delete("crash.jobs")  # a fresh queue each run
        ch_a.queue_declare("crash.jobs")
        log: list[tuple[str, str, bool]] = []
        closed_at: list[float] = []
        got_again: list[float] = []

        def on_a(ch: Any, method: Any, props: Any, body: bytes) -> None:
            log.append(("A", _body(body), method.redelivered))
            closed_at.append(time.monotonic())
            ch.close()  # A "crashes": its channel closes with the message unacked

        def on_b(ch: Any, method: Any, props: Any, body: bytes) -> None:
            log.append(("B", _body(body), method.redelivered))
            got_again.append(time.monotonic())
            ch.basic_ack(method.delivery_tag)

        ch_a.basic_qos(prefetch_count=1)
        ch_a.basic_consume(queue="crash.jobs", on_message_callback=on_a)
        ch_a.basic_publish(exchange="", routing_key="crash.jobs", body=b"m1")
        _pump([conn_a], lambda: bool(log))
        ch_b.basic_qos(prefetch_count=1)
        ch_b.basic_consume(queue="crash.jobs", on_message_callback=on_b)
        _pump([conn_a, conn_b], lambda: len(log) >= 2)
        left = ch_b.queue_declare("crash.jobs", passive=True).method.message_count
        gap = (got_again[0] - closed_at[0]) * 1000 if got_again and closed_at else None
        return {"deliveries": log, "redelivery_ms": gap, "left_in_queue": left}
    finally:
        for connection in (conn_a, conn_b):
            if connection.is_open:
                connection.close()


def prefetch_window(server: Any, *, prefetch: int = 2, messages: int = 5) -> dict[str, Any]:
    """How many unacknowledged messages RabbitMQ pushes to a consumer, and in what order.

    The consumer acks nothing at first: the broker stops at ``prefetch`` messages in flight.
    Then it acks each message as it arrives and receives the rest, in publish order.
    """
    _validate.integer("prefetch", prefetch, minimum=1, maximum=1000)
    _validate.integer("messages", messages, minimum=prefetch + 1, maximum=1000)
    connection = server.connect()
    try:
        ch = connection.channel()
        ch.queue_delete("prefetch.jobs")
        ch.queue_declare("prefetch.jobs")
        got: list[str] = []
        tags: list[int] = []

        def handle(c: Any, method: Any, props: Any, body: bytes) -> None:
            got.append(_body(body))
            tags.append(method.delivery_tag)

        ch.basic_qos(prefetch_count=prefetch)
        ch.basic_consume(queue="prefetch.jobs", on_message_callback=handle)
        for n in range(1, messages + 1):
            ch.basic_publish(exchange="", routing_key="prefetch.jobs", body=f"m{n}".encode())
        # Wait until the window is full, then a little longer to see that no more arrive.
        _pump([connection], lambda: len(got) >= prefetch)
        _pump([connection], lambda: len(got) > prefetch, timeout=0.3)
        window = list(got)
        ready = ch.queue_declare("prefetch.jobs", passive=True).method.message_count
        acked = 0

        def ack_all() -> bool:
            nonlocal acked
            while acked < len(tags):
                ch.basic_ack(tags[acked])
                acked += 1
            return len(got) >= messages

        _pump([connection], ack_all)
        ack_all()
        return {
            "prefetch": prefetch, "published": messages, "unacked": window, "ready": ready,
            "order": got,
        }  # fmt: skip
    finally:
        connection.close()


def poison_to_dead_letters(server: Any, *, delivery_limit: int = 3) -> dict[str, Any]:
    """Chapter 6: a quorum queue with ``x-delivery-limit`` and a dead-letter exchange.

    The handler rejects the poison message every time (``basic_nack(requeue=True)``); after the
    limit RabbitMQ dead-letters it to the exchange ``dlx``, whose queue receives it with an
    ``x-death`` header: the reason and a count, not the consumer's exception.
    """
    _validate.integer("delivery_limit", delivery_limit, minimum=0, maximum=100)
    connection = server.connect()
    try:
        ch = connection.channel()
        for queue in ("poison.orders", "poison.dead"):
            ch.queue_delete(queue)
        ch.exchange_declare("dlx", exchange_type="fanout")
        ch.queue_declare("poison.dead", durable=True)
        ch.queue_bind("poison.dead", "dlx")
        ch.queue_declare(
            "poison.orders",
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": delivery_limit,
                "x-dead-letter-exchange": "dlx",
            },
        )
        counts: list[int | None] = []
        dead: list[dict[str, Any]] = []

        def handle(c: Any, method: Any, props: Any, body: bytes) -> None:
            count = (props.headers or {}).get("x-delivery-count")
            counts.append(None if count is None else int(count))
            c.basic_nack(method.delivery_tag, requeue=True)  # the handler fails every time

        def on_dead(c: Any, method: Any, props: Any, body: bytes) -> None:
            death = (props.headers or {}).get("x-death", [{}])[0]
            dead.append(
                {
                    "body": _body(body),
                    "reason": death.get("reason"),
                    "count": int(death.get("count", 0)),
                    "queue": death.get("queue"),
                    "headers": sorted((props.headers or {}).keys()),
                }
            )
            c.basic_ack(method.delivery_tag)

        ch.basic_qos(prefetch_count=1)
        ch.basic_consume(queue="poison.orders", on_message_callback=handle)
        ch.basic_consume(queue="poison.dead", on_message_callback=on_dead)
        ch.basic_publish(exchange="", routing_key="poison.orders", body=b"order-3 (malformed)")
        _pump([connection], lambda: bool(dead))
        return {"delivery_limit": delivery_limit, "delivery_counts": counts, "dead": dead}
    finally:
        connection.close()


def overflow(server: Any, policy: str, *, max_length: int = 2, messages: int = 5) -> dict[str, Any]:
    """Chapter 5: a classic queue with ``x-max-length`` and ``x-overflow`` = ``policy``.

    Publishes ``m1`` .. ``m<messages>`` with publisher confirms on; returns which publishes
    the broker nacked, what the queue kept and what it dead-lettered (to ``<queue>.dropped``).
    """
    import pika.exceptions

    _validate.choice("policy", policy, ("drop-head", "reject-publish", "reject-publish-dlx"))
    _validate.integer("max_length", max_length, minimum=0, maximum=1000)
    _validate.integer("messages", messages, minimum=1, maximum=1000)
    connection = server.connect()
    try:
        ch = connection.channel()
        name = f"overflow.{policy}"
        for queue in (name, f"{name}.dropped"):
            ch.queue_delete(queue)
        ch.exchange_declare(f"{name}.dlx", exchange_type="fanout")
        ch.queue_declare(f"{name}.dropped")
        ch.queue_bind(f"{name}.dropped", f"{name}.dlx")
        ch.queue_declare(
            name,
            arguments={
                "x-max-length": max_length,
                "x-overflow": policy,
                "x-dead-letter-exchange": f"{name}.dlx",
            },
        )
        ch.confirm_delivery()
        nacked: list[str] = []
        for n in range(1, messages + 1):
            try:
                ch.basic_publish(exchange="", routing_key=name, body=f"m{n}".encode())
            except pika.exceptions.NackError:
                nacked.append(f"m{n}")

        def drain(queue: str) -> list[str]:
            out = []
            while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
                out.append(_body(got[2]))
            return out

        kept = drain(name)
        # Dead-lettering is asynchronous: wait (bounded) for the dropped ones to arrive.
        dropped: list[str] = []
        deadline = time.monotonic() + _WAIT_SECONDS
        while len(dropped) + len(kept) + len(nacked) < messages and time.monotonic() < deadline:
            dropped += drain(f"{name}.dropped")
        return {
            "policy": policy, "max_length": max_length, "kept": kept, "nacked": nacked,
            "dropped": dropped,
        }  # fmt: skip
    finally:
        connection.close()


def fan_out(server: Any) -> dict[str, Any]:
    """Chapter 2: a fanout exchange with one queue per group; members of a group compete.

    Groups ``payment`` (2 members), ``email`` (3) and ``analytics`` (1), four messages.
    """
    connection = server.connect()
    try:
        ch = connection.channel()
        ch.exchange_declare("orders", exchange_type="fanout")
        groups = {"payment": 2, "email": 3, "analytics": 1}
        got: dict[str, list[tuple[str, str]]] = {group: [] for group in groups}
        for group, members in groups.items():
            queue = f"fanout.{group}"
            ch.queue_delete(queue)
            ch.queue_declare(queue)
            ch.queue_bind(queue, "orders")
            for member in range(1, members + 1):
                member_ch = connection.channel()
                # No prefetch limit: RabbitMQ then deals a queue's messages round-robin to its
                # consumers as they arrive, so the split does not depend on ack timing.

                def handle(c, m, p, b, group=group, who=f"{group}-{member}"):  # noqa: ANN001
                    got[group].append((who, _body(b)))
                    c.basic_ack(m.delivery_tag)

                member_ch.basic_consume(queue=queue, on_message_callback=handle)
        for n in range(1, 5):
            ch.basic_publish(exchange="orders", routing_key="", body=f"e{n}".encode())
        _pump([connection], lambda: sum(len(v) for v in got.values()) >= 4 * len(groups))
        return {"groups": groups, "deliveries": got}
    finally:
        connection.close()


def duplicate_publish(server: Any) -> dict[str, Any]:
    """Chapter 3: the same message published twice with one ``message_id``: both are delivered."""
    import pika

    connection = server.connect()
    try:
        ch = connection.channel()
        ch.queue_delete("dedup.jobs")
        ch.queue_declare("dedup.jobs")
        props = pika.BasicProperties(message_id="charge-42")
        for _ in range(2):
            ch.basic_publish(
                exchange="", routing_key="dedup.jobs", body=b"charge $10", properties=props
            )
        got = []
        deadline = time.monotonic() + _WAIT_SECONDS
        while len(got) < 2 and time.monotonic() < deadline:
            method, properties, body = ch.basic_get("dedup.jobs", auto_ack=True)
            if method is not None:
                got.append(properties.message_id)
        return {"published": 2, "delivered_ids": got}
    finally:
        connection.close()


def observe(server: Any) -> dict[str, Cell]:
    """Run every experiment on the running :class:`~mqlib.real.rabbitmq.RabbitMQServer`."""
    crash = crash_before_ack(server)
    window = prefetch_window(server)
    poison = poison_to_dead_letters(server)
    fan = fan_out(server)
    dup = duplicate_publish(server)
    drop = overflow(server, "drop-head")
    reject = overflow(server, "reject-publish")

    first, again = crash["deliveries"][0], crash["deliveries"][-1]
    counts = ", ".join("absent" if c is None else str(c) for c in poison["delivery_counts"])
    death = poison["dead"][0] if poison["dead"] else {}
    per_group = ", ".join(f"{g} {len(v)}" for g, v in fan["deliveries"].items())
    by_member: dict[str, list[str]] = {}
    for who, message in fan["deliveries"]["payment"]:
        by_member.setdefault(who, []).append(message)
    split = "; ".join(f"{who} got {', '.join(sorted(m))}" for who, m in sorted(by_member.items()))
    return {
        "unit of delivery": Cell(
            f"a message pushed to a consumer: with basic_qos(prefetch_count={window['prefetch']}) "
            f"it held {len(window['unacked'])} unacked ({', '.join(window['unacked'])}) while "
            f"{window['ready']} waited. Fan-out: a fanout exchange copies each message to one "
            f"queue per group ({per_group} of 4 messages)",
            {"prefetch": window, "fan-out": fan},
        ),
        "what triggers redelivery": Cell(
            f"the consumer's channel or connection closing with the message unacked (or a nack "
            f"with requeue): {first[1]} went from {first[0]} to {again[0]} with "
            f"redelivered={again[2]}; no visibility timer",
            crash,
        ),
        "delivery counter": Cell(
            f"quorum queues: header x-delivery-count ({counts} on successive deliveries); "
            "classic queues: only the redelivered flag",
            poison,
        ),
        "dead-letter mechanism": Cell(
            f"x-delivery-limit={poison['delivery_limit']} on a quorum queue + a dead-letter "
            f"exchange: after {len(poison['delivery_counts'])} deliveries it arrived with "
            f"x-death reason {death.get('reason')!r}, count {death.get('count')} "
            "(no error text)",
            poison,
        ),
        "deduplication": Cell(
            f"none in the broker: {len(dup['delivered_ids'])} of {dup['published']} publishes "
            f"with message_id {dup['delivered_ids'][0]!r} delivered; the consumer dedupes",
            dup,
        ),
        "ordering unit": Cell(
            f"the queue: one consumer received {', '.join(window['order'])} in publish order; "
            f"competing consumers split it ({split})",
            {"order": window["order"], "fan-out": fan},
        ),
        "overflow policies": Cell(
            f"x-max-length={drop['max_length']} + x-overflow: drop-head kept "
            f"{', '.join(drop['kept'])} and "
            f"dead-lettered {', '.join(drop['dropped'])}; reject-publish nacked "
            f"{', '.join(reject['nacked'])} (publisher confirms); also reject-publish-dlx",
            {"drop-head": drop, "reject-publish": reject},
        ),
    }
