"""The course's experiments on NATS JetStream, with nats-py, and what they observed.

:func:`observe` plays the differential scripts of :mod:`mqlib.real.differential` (chapter 1's
crash and redelivery, the late ACK, chapter 6's poison message and dead letter queue) on a running
:class:`~mqlib.real.server.JetStreamServer`, adds four short experiments of its own (fan-out to
two durable consumers, ``Nats-Msg-Id`` deduplication, publish order, the stream limit with
``discard`` old and new), and writes each comparison-table cell from what they measured.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, StreamConfig
from nats.js.errors import APIError, NotFoundError

from mqlib.real.differential import (
    CHAPTER_1,
    CHAPTER_6,
    LATE_ACK,
    run_script_on_jetstream,
)
from mqlib.real.scripts import Cell
from mqlib.real.server import JetStreamServer, run

__all__ = ["observe", "stream_experiments"]


async def _fresh(js: Any, config: StreamConfig) -> None:
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(config.name)
    await js.add_stream(config)


async def _experiments(url: str) -> dict[str, Any]:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    js = nc.jetstream()
    try:
        # Fan-out: two durable consumers on one stream each read every message.
        await _fresh(js, StreamConfig(name="CMP_FANOUT", subjects=["cmp.fanout"]))
        for n in range(1, 5):
            await js.publish("cmp.fanout", f"event-{n}".encode())
        fan_out: dict[str, list[int]] = {}
        for group in ("billing", "email"):
            await js.add_consumer(
                "CMP_FANOUT", ConsumerConfig(durable_name=group, ack_policy=AckPolicy.EXPLICIT)
            )
            sub = await js.pull_subscribe_bind(group, stream="CMP_FANOUT")
            msgs = await sub.fetch(4, timeout=2)
            for msg in msgs:
                await msg.ack()
            fan_out[group] = [m.metadata.sequence.stream for m in msgs]

        # Deduplication: the same Nats-Msg-Id three times inside the duplicate window.
        await _fresh(js, StreamConfig(name="CMP_DEDUP", subjects=["cmp.dedup"]))
        acks = [
            await js.publish("cmp.dedup", b"charge", headers={"Nats-Msg-Id": "order-1"})
            for _ in range(3)
        ]
        dedup_info = await js.stream_info("CMP_DEDUP")

        # Limits: max_msgs=2 and five publishes, discard old (default) and discard new.
        limits: dict[str, Any] = {}
        for policy in (DiscardPolicy.OLD, DiscardPolicy.NEW):
            name = f"CMP_LIMIT_{str(policy.value).upper()}"
            await _fresh(
                js, StreamConfig(name=name, subjects=[name.lower()], max_msgs=2, discard=policy)
            )
            refused = 0
            for n in range(1, 6):
                try:
                    await js.publish(name.lower(), f"m{n}".encode())
                except APIError:
                    refused += 1
            state = (await js.stream_info(name)).state
            kept = [
                (await js.get_msg(name, seq)).data.decode()
                for seq in range(state.first_seq, state.last_seq + 1)
            ]
            limits[str(policy.value)] = {"kept": kept, "refused": refused}
        default_discard = (await js.stream_info("CMP_FANOUT")).config.discard
    finally:
        await nc.close()
    return {
        "fan_out": fan_out,
        "dedup": {
            "publishes": len(acks),
            "duplicates": [bool(a.duplicate) for a in acks],
            "stored": dedup_info.state.messages,
            "window_s": dedup_info.config.duplicate_window,
        },
        "limits": limits,
        "default_discard": getattr(default_discard, "value", default_discard),
    }


def stream_experiments(server: JetStreamServer | str) -> dict[str, Any]:
    """Fan-out, deduplication and stream limits on ``server`` (or its ``nats://`` URL)."""
    url = server.url if isinstance(server, JetStreamServer) else str(server)
    return run(_experiments(url))


def observe(server: JetStreamServer) -> dict[str, Cell]:
    """Run every experiment on ``server`` and return the table's cells (about 2.5 s)."""
    if not isinstance(server, JetStreamServer):
        raise TypeError(f"server must be a running JetStreamServer, got {type(server).__name__}")
    # The three scripts spend most of their time waiting for ack_wait to expire, and each uses
    # the same stream names, so the late-ACK and chapter 6 scripts run side by side on two more
    # throwaway servers (started from this thread, which outlives them).
    with (
        JetStreamServer() as late_server,
        JetStreamServer() as ch6_server,
        concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="mqlib-jetstream") as pool,
    ):
        late_run = pool.submit(run_script_on_jetstream, LATE_ACK, late_server)
        ch6_run = pool.submit(run_script_on_jetstream, CHAPTER_6, ch6_server)
        ch1 = run_script_on_jetstream(CHAPTER_1, server)
        more = stream_experiments(server)
        late, ch6 = late_run.result(), ch6_run.result()

    back = next(d for d in ch1.deliveries if d.message is not None and d.count > 1)
    poison = [d.count for d in ch6.deliveries if d.message == "m3"]
    dead = ch6.dead_letters[0] if ch6.dead_letters else None
    late_accepted = late.acks[0].accepted if late.acks else None
    fan = more["fan_out"]
    dedup = more["dedup"]
    old, new = more["limits"]["old"], more["limits"]["new"]
    return {
        "unit of delivery": Cell(
            "a message, pulled through a consumer; every durable consumer reads the whole stream "
            f"(billing got {fan['billing']}, email got {fan['email']})",
            {"fan_out": fan},
        ),
        "what triggers redelivery": Cell(
            f"ack_wait ({CHAPTER_1.visibility_timeout:g} s) running out without an ACK "
            f"({back.message} came back to {back.who}), or nak(); a late ACK is "
            f"{'accepted' if late_accepted else 'refused'}",
            {"redelivered": back._asdict(), "late_ack_accepted": late_accepted},
        ),
        "delivery counter": Cell(
            f"num_delivered in the message metadata ({back.message}: {back.count} on its "
            "second delivery)",
            {"count": back.count},
        ),
        "dead-letter mechanism": Cell(
            f"none built in: max_deliver={CHAPTER_6.max_receives} stopped after deliveries "
            f"{', '.join(map(str, poison))}; the MAX_DELIVERIES advisory (at most once) lets "
            f"your code copy it to a DLQ stream"
            + (f" ({dead.message} moved with count {dead.receive_count})" if dead else ""),
            {"deliveries": poison, "dead": dead._asdict() if dead else None},
        ),
        "deduplication": Cell(
            f"Nats-Msg-Id within the stream's duplicate window ({dedup['window_s']:g} s by "
            f"default): {dedup['publishes']} publishes stored {dedup['stored']}",
            dedup,
        ),
        "ordering unit": Cell(
            f"the stream: one sequence for all its messages ({fan['billing']} in publish order)",
            {"sequence": fan["billing"]},
        ),
        "overflow policies": Cell(
            f"stream limits (max_msgs=2, 5 publishes): discard old ({more['default_discard']} is "
            f"the default) kept "
            f"{', '.join(old['kept'])}; discard new kept {', '.join(new['kept'])} and refused "
            f"{new['refused']}",
            more["limits"],
        ),
    }
