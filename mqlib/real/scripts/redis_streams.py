"""The course's experiments on Redis Streams (served by Valkey), with ``redis-py``, and results.

Each experiment uses its own stream keys, plays a short scenario with the real commands and
returns the evidence as plain data; :func:`observe` runs them all and writes the comparison-table
cells from that evidence.

Streams have no visibility timeout: an entry read by a consumer stays in the group's *pending
entries list* (PEL) until someone acknowledges it (``XACK``), however long that takes. Another
consumer takes it over with ``XAUTOCLAIM`` once it has been idle for at least ``min_idle_time``;
:func:`claim_when_idle` polls that command until it succeeds, with a deadline, instead of
sleeping for a fixed time.
"""

from __future__ import annotations

import time
from typing import Any

from mqlib import _validate
from mqlib.real.scripts import Cell

__all__ = [
    "claim_when_idle",
    "crash_before_ack",
    "duplicate_add",
    "fan_out",
    "observe",
    "poison_to_dead_letters",
    "trim_oldest",
]

_WAIT_SECONDS = 5.0


def claim_when_idle(
    r: Any, stream: str, group: str, consumer: str, *, min_idle_ms: int, timeout: float = 5.0
) -> list[tuple[str, dict[str, str]]]:
    """``XAUTOCLAIM`` for ``consumer`` until it returns an entry idle ``min_idle_ms`` (bounded)."""
    _validate.integer("min_idle_ms", min_idle_ms, minimum=0)
    _validate.positive("timeout", timeout)
    deadline = time.monotonic() + timeout
    while True:
        _cursor, claimed, _deleted = r.xautoclaim(
            stream, group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=10
        )
        if claimed or time.monotonic() > deadline:
            return claimed
        time.sleep(0.02)


def _pending(r: Any, stream: str, group: str) -> list[dict[str, Any]]:
    return [
        {"id": p["message_id"], "consumer": p["consumer"], "times_delivered": p["times_delivered"]}
        for p in r.xpending_range(stream, group, min="-", max="+", count=100)
    ]


def crash_before_ack(server: Any, *, min_idle_ms: int = 200) -> dict[str, Any]:
    """Chapter 1: A reads an entry and dies; it stays pending until B claims it with XAUTOCLAIM."""
    _validate.integer("min_idle_ms", min_idle_ms, minimum=1, maximum=4000)
    r = server.client()
    r.delete("crash:jobs")  # a fresh stream each run
    r.xgroup_create("crash:jobs", "workers", id="0", mkstream=True)
    entry = r.xadd("crash:jobs", {"job": "m1"})
    got_a = r.xreadgroup("workers", "A", {"crash:jobs": ">"}, count=1)  # A "crashes" now
    got_b = r.xreadgroup("workers", "B", {"crash:jobs": ">"}, count=1, block=50)  # nothing new
    pending_before = _pending(r, "crash:jobs", "workers")
    started = time.monotonic()
    claimed = claim_when_idle(r, "crash:jobs", "workers", "B", min_idle_ms=min_idle_ms)
    waited = time.monotonic() - started
    pending_after = _pending(r, "crash:jobs", "workers")
    acks = [r.xack("crash:jobs", "workers", entry) for _ in range(2)]
    return {
        "entry": entry,
        "read_by_a": [e[0] for e in got_a[0][1]] if got_a else [],
        "new_for_b": len(got_b),
        "pending_before": pending_before,
        "claimed_by_b": [e[0] for e in claimed],
        "pending_after": pending_after,
        "xack_replies": acks,
        "min_idle_ms": min_idle_ms,
        "claim_waited_seconds": waited,
        "pending_left": r.xpending("crash:jobs", "workers")["pending"],
    }


def poison_to_dead_letters(server: Any, *, max_deliveries: int = 3) -> dict[str, Any]:
    """Chapter 6: no DLQ in the broker; the consumer moves an entry after ``max_deliveries``.

    The handler fails on every delivery; a recovering consumer claims the entry with
    ``XAUTOCLAIM`` (min-idle 0 here, to keep it fast), reads ``times_delivered`` from
    ``XPENDING``, and at the limit copies it with its error into ``orders:dead``, then ``XACK``\\ s
    and ``XDEL``\\ s it from the work stream.
    """
    _validate.integer("max_deliveries", max_deliveries, minimum=1, maximum=100)
    r = server.client()
    stream, group, dead_stream = "orders", "workers", "orders:dead"
    r.delete(stream, dead_stream)
    r.xgroup_create(stream, group, id="0", mkstream=True)
    entry = r.xadd(stream, {"order": "order-3 (malformed)"})
    seen: list[int] = []
    r.xreadgroup(group, "A", {stream: ">"}, count=1)  # delivery 1: the handler fails, no XACK
    for _ in range(max_deliveries + 1):
        [info] = r.xpending_range(stream, group, min=entry, max=entry, count=1)
        seen.append(info["times_delivered"])
        if info["times_delivered"] >= max_deliveries:
            fields = r.xrange(stream, min=entry, max=entry)[0][1]
            r.xadd(
                dead_stream,
                {**fields, "source_id": entry, "deliveries": info["times_delivered"],
                 "error": "ValueError: cannot parse"},
            )  # fmt: skip
            r.xack(stream, group, entry)
            r.xdel(stream, entry)
            break
        claim_when_idle(r, stream, group, "A", min_idle_ms=0)  # the retry: delivered again
    return {
        "max_deliveries": max_deliveries,
        "times_delivered_seen": seen,
        "dead": [fields for _, fields in r.xrange(dead_stream)],
        "work_stream_length": r.xlen(stream),
        "pending_left": r.xpending(stream, group)["pending"],
    }


def fan_out(server: Any) -> dict[str, Any]:
    """Chapter 2: two consumer groups each read every entry; members of one group split them."""
    r = server.client()
    r.delete("events")
    for group in ("payment", "analytics"):
        r.xgroup_create("events", group, id="0", mkstream=True)
    for n in range(1, 5):
        r.xadd("events", {"event": f"e{n}"})
    got: dict[str, list[tuple[str, str]]] = {"payment": [], "analytics": []}
    members = {"payment": ["payment-1", "payment-2"], "analytics": ["analytics-1"]}
    for _ in range(4):
        for group, names in members.items():
            for name in names:
                for _stream, entries in r.xreadgroup(group, name, {"events": ">"}, count=1):
                    for entry_id, fields in entries:
                        got[group].append((name, fields["event"]))
                        r.xack("events", group, entry_id)
    return {"deliveries": got, "order": [f["event"] for _, f in r.xrange("events")]}


def duplicate_add(server: Any) -> dict[str, Any]:
    """Chapter 3: the same payload added twice becomes two entries; the broker does not dedupe."""
    r = server.client()
    r.delete("charges")
    ids = [r.xadd("charges", {"charge_id": "charge-42", "amount": "10"}) for _ in range(2)]
    return {"added": 2, "entries": r.xlen("charges"), "distinct_ids": len(set(ids))}


def trim_oldest(server: Any, *, maxlen: int = 2, entries: int = 5) -> dict[str, Any]:
    """Chapter 5: ``XADD ... MAXLEN = n`` keeps the newest n entries, dropping the oldest."""
    _validate.integer("maxlen", maxlen, minimum=1, maximum=1000)
    _validate.integer("entries", entries, minimum=1, maximum=1000)
    r = server.client()
    r.delete("bounded")
    for n in range(1, entries + 1):
        r.xadd("bounded", {"m": f"m{n}"}, maxlen=maxlen, approximate=False)
    return {"maxlen": maxlen, "added": entries, "kept": [f["m"] for _, f in r.xrange("bounded")]}


def observe(server: Any) -> dict[str, Cell]:
    """Run every experiment on the running :class:`~mqlib.real.redis_streams.RedisServer`."""
    crash = crash_before_ack(server)
    poison = poison_to_dead_letters(server)
    fan = fan_out(server)
    dup = duplicate_add(server)
    trim = trim_oldest(server)
    before, after = crash["pending_before"][0], crash["pending_after"][0]
    split: dict[str, list[str]] = {}
    for who, event in fan["deliveries"]["payment"]:
        split.setdefault(who, []).append(event)
    return {
        "unit of delivery": Cell(
            "an entry of a stream, read by XREADGROUP (COUNT per call); every consumer group "
            f"gets every entry: payment {len(fan['deliveries']['payment'])}, analytics "
            f"{len(fan['deliveries']['analytics'])} of 4",
            fan,
        ),
        "what triggers redelivery": Cell(
            "nothing by itself: an unacked entry stays pending (no visibility timeout) until a "
            f"consumer claims it; XAUTOCLAIM with min-idle {crash['min_idle_ms']} ms moved "
            f"it from {before['consumer']} to {after['consumer']}",
            crash,
        ),
        "delivery counter": Cell(
            f"times_delivered in XPENDING: {before['times_delivered']} after the read, "
            f"{after['times_delivered']} after the claim",
            crash,
        ),
        "dead-letter mechanism": Cell(
            "none in the server: the consumer read times_delivered "
            f"{', '.join(map(str, poison['times_delivered_seen']))} from XPENDING and at "
            f"{poison['max_deliveries']} moved the entry to another stream itself "
            f"(XADD + XACK + XDEL; {len(poison['dead'])} there, with the error it wrote)",
            poison,
        ),
        "deduplication": Cell(
            f"none: XADD of the same payload twice made {dup['entries']} entries with "
            f"{dup['distinct_ids']} different ids; the consumer dedupes",
            dup,
        ),
        "ordering unit": Cell(
            f"the stream (entry ids increase: {', '.join(fan['order'])}); members of a group "
            "split it ("
            + "; ".join(f"{who} got {', '.join(ev)}" for who, ev in sorted(split.items()))
            + ")",
            fan,
        ),
        "overflow policies": Cell(
            f"trimming only: XADD MAXLEN {trim['maxlen']} over {trim['added']} adds kept "
            f"{', '.join(trim['kept'])}, the oldest dropped (also XTRIM, MINID); no reject",
            trim,
        ),
    }
