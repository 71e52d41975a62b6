"""Chapter 3 exercises: the idempotent charge, and an outbox relay that survives crashes.

``ch03-idempotent-charge`` puts the learner's ``handle(message, balance_store)`` into the
chapter's at-least-once pipeline (:class:`mqlib.models.delivery.DeliveryPipeline`): a producer
that retries until acked, a broker, and a consumer that processes, then commits. The fault
schedules are drawn by :func:`mqlib.models.delivery.random_faults`: lost messages and acks (so
the broker stores a message twice), crashes before and after the effect and lost commits (so the
consumer gets a message again). The balance must end where one charge per message puts it.

``ch03-outbox-relay`` is the other half of the chapter's outbox pattern: the application has
written each event into an ``outbox`` table in the same transaction as its business change, and
a relay, run once per tick, copies the unsent rows to the broker. The relay can crash before or
after any call. The broker deduplicates by message id, as JetStream does with the
``Nats-Msg-Id`` header; the engine keeps every id for the whole run, where JetStream remembers
them for its ``duplicate_window`` (two minutes by default).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from .. import _validate as check
from ..models import delivery
from ._checker import Budget, Crash, Exercise, Fault, SolutionError, call, callable_with

# -- the idempotent charge --------------------------------------------------------------------

_WORDS = {
    "send": ("sent", "producer sends (try {attempt})"),
    "message_lost": ("lost", "the network lost it on the way to the broker"),
    "ack_lost": ("ack lost", "the broker stored it, but its ack never reached the producer"),
    "ack_timeout": ("ack timeout", "the producer gives up waiting and will send again"),
    "stored": ("stored", "broker log offset {offset}"),
    "acked": ("acked", "the producer got the broker's ack"),
    "delivered": ("delivered", "to the consumer (delivery {delivery}, offset {offset})"),
    "effect": ("effect applied", "balance now ${balance}"),
    "skipped": ("no effect", "the handler left the balance at ${balance}"),
    "commit_lost": ("commit lost", "the offset commit never reached the broker"),
}


def _pipeline_step(out, event) -> None:
    data = event.data
    subject = data.get("message", "consumer")
    if event.kind == "consumer_crash":
        where = "before" if data["point"] == "before_effect" else "after"
        out.step(event.time, subject, "crashed", f"consumer died {where} the effect")
    elif event.kind in _WORDS:
        what, detail = _WORDS[event.kind]
        out.step(event.time, subject, what, detail.format(**data))


class IdempotentCharge(Exercise):
    name = "ch03-idempotent-charge"
    chapter = 3
    title = "Charge once per transaction, however often the message comes"
    signature = "handle(message, balance_store) -> None"
    task = (
        "Write the consumer's handler for 'charge $10' messages. message.id is the transaction "
        "id, message.amount the dollars; balance_store.balance is the account, and "
        "balance_store.processed_ids (a set) and balance_store.data (a dict) are the account's "
        "own storage, kept in the same database as the balance, so a change to both is one "
        "transaction. The pipeline is at-least-once: the same message may arrive again."
    )
    checks = (
        "The chapter's at-least-once pipeline with up to 8 messages under lost messages, lost "
        "acks (the broker stores a message twice), crashes before and after the effect and lost "
        "commits (the consumer gets a message again). Checked: every message is charged exactly "
        "once and the final balance is the start balance minus one charge per message."
    )
    min_size = 1
    max_size = 8
    renumber = True

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "handle", 2, "handle(message, balance_store)")

    def draw(self, rng, size):
        faults = delivery.random_faults(
            rng.randrange(2**31),
            size,
            lose_message=0.1,
            lose_ack=0.2,
            lose_commit=0.15,
            crash_before_effect=0.15,
            crash_after_effect=0.2,
            max_attempts=2,
        )
        texts = {
            "lose_message": "the network loses send {attempt} of m{target}",
            "lose_ack": "the broker's ack of m{target}'s send {attempt} is lost",
            "lose_commit": "the commit after delivery {attempt} of m{target} is lost",
            "crash_before_effect": "the consumer crashes before the effect, delivery {attempt} "
            "of m{target}",
            "crash_after_effect": "the consumer crashes after the effect, delivery {attempt} of "
            "m{target}",
        }
        return [Fault(f.kind, f.message, f.attempt, 0, texts[f.kind]) for f in faults]

    def run(self, solution, schedule, out):
        budget = Budget()

        def handler(message, store):
            call(solution, message, store, what="handle(message, balance_store)", budget=budget)

        faults = [delivery.Fault(f.kind, f.target, f.attempt) for f in schedule.faults]
        pipeline = delivery.simulate_pipeline(
            "at-least-once", schedule.size, faults, handler=handler
        )
        for event in pipeline.sim.trace:
            _pipeline_step(out, event)
        result = pipeline.result()
        end = pipeline.sim.now
        for row in pipeline.per_message():
            mid = row["message"]
            if row["effects"] > 1:
                out.broke(
                    "each message is charged exactly once",
                    f"{mid} was charged {row['effects']} times (delivered {row['delivered']} "
                    "times): a redelivered message must not be charged again",
                    time=end,
                    subject=mid,
                )
                return
            if row["effects"] == 0:
                out.broke(
                    "each message is charged exactly once",
                    f"{mid} was never charged though it was delivered {row['delivered']} "
                    "time(s): the handler skipped it (state left over from another account, "
                    "or the wrong key?)",
                    time=end,
                    subject=mid,
                )
                return
        if result.final_balance != result.expected_balance:
            out.broke(
                "the balance ends at one charge per message",
                f"the balance is ${result.final_balance}, expected ${result.expected_balance}",
                time=end,
                subject="account",
            )

    def starter(self):
        return starter_handle

    def reference(self):
        return reference_handle


def starter_handle(message, balance_store):
    """The naive charge: applied again on every redelivery."""
    balance_store.balance -= message.amount


def reference_handle(message, balance_store):
    """Charge once per transaction id; the id is recorded together with the charge."""
    if message.id in balance_store.processed_ids:
        return  # a duplicate: this transaction was already charged
    balance_store.balance -= message.amount
    balance_store.processed_ids.add(message.id)


# -- the outbox relay -------------------------------------------------------------------------

QUIET_TICKS = 4
"""Ticks at the end of a run with no new rows and no faults, for the relay to catch up."""


@dataclass(frozen=True)
class Row:
    """One outbox row: ``id`` (``"e1"``, ...) and the ``event`` to publish (a dict)."""

    id: str
    event: dict


class Outbox:
    """The outbox table: rows the application committed with its business changes."""

    def __init__(self, world: _RelayWorld) -> None:
        self._world = world

    def unsent(self) -> list[Row]:
        """The rows not yet marked sent, oldest first."""
        w = self._world
        w.budget.spend("relay(outbox, broker)")
        return [w.rows[i] for i in sorted(w.unsent)]

    def mark_sent(self, row_id: str) -> None:
        """Mark row ``row_id`` as sent (``UPDATE outbox SET sent = true WHERE id = ...``)."""
        self._world.operation("mark_sent", row_id)


class RelayBroker:
    """The broker, as the relay sees it."""

    def __init__(self, world: _RelayWorld) -> None:
        self._world = world

    def publish(self, event: dict, msg_id: str | None = None) -> None:
        """Publish ``event``. With ``msg_id`` the broker drops a second publish of the same id
        (JetStream's ``Nats-Msg-Id``); without it every publish is stored."""
        if msg_id is not None:
            check.text("msg_id", msg_id)
        if not isinstance(event, dict):
            raise TypeError(f"event must be a dict, got {event!r} ({type(event).__name__})")
        self._world.operation("publish", (event, msg_id))


class _RelayWorld:
    def __init__(self, schedule, out) -> None:
        self.out = out
        self.budget = Budget()
        self.rows = {
            i: Row(f"e{i}", {"type": "order.placed", "order_id": 100 + i})
            for i in range(1, schedule.size + 1)
        }
        self.unsent: set[int] = set()
        self.faults = {(f.target, f.attempt): f.at for f in schedule.faults}
        self.stream: list[str] = []
        self.seen_ids: set[str] = set()
        self.tick = 0
        self.ops = 0

    def operation(self, kind: str, value: Any) -> None:
        self.budget.spend("relay(outbox, broker)")
        self.ops += 1
        point = self.faults.get((self.tick, self.ops))
        if point == 0:
            self.out.step(self.tick, "relay", "crashed", f"just before {kind}")
            raise Crash
        if kind == "mark_sent":
            number = next((i for i, r in self.rows.items() if r.id == value), None)
            if number is None:
                raise ValueError(f"mark_sent: no outbox row with id {value!r}")
            self.unsent.discard(number)
            self.out.step(self.tick, value, "marked sent", "in the outbox table")
        else:
            event, msg_id = value
            row = next((r for r in self.rows.values() if r.event == event), None)
            rid = row.id if row else "?"
            if msg_id is not None and msg_id in self.seen_ids:
                self.out.step(self.tick, rid, "duplicate dropped", f"msg_id {msg_id!r} seen before")
            else:
                if msg_id is not None:
                    self.seen_ids.add(msg_id)
                self.stream.append(rid)
                self.out.step(
                    self.tick, rid, "published", f"stored in the stream (msg_id={msg_id!r})"
                )
                if self.stream.count(rid) > 1:
                    self.out.broke(
                        "no event is published twice",
                        f"{rid} is in the stream {self.stream.count(rid)} times: the relay "
                        "crashed after publishing it but before marking it sent, published it "
                        "again, and nothing told the broker it was the same event",
                    )
        if point == 1:
            self.out.step(self.tick, "relay", "crashed", f"just after {kind}")
            raise Crash


class OutboxRelay(Exercise):
    name = "ch03-outbox-relay"
    chapter = 3
    title = "An outbox relay that never loses or doubles an event"
    signature = "relay(outbox, broker) -> None"
    task = (
        "Write one pass of the outbox relay; it is called once per tick. outbox.unsent() lists "
        "the rows not yet marked sent (row.id, row.event), oldest first; outbox.mark_sent(row_id) "
        "marks one; broker.publish(event, msg_id=None) publishes an event, and the broker drops "
        "a second publish with the same msg_id. The relay may crash just before or just after any "
        "publish or mark_sent, and runs again on the next tick."
    )
    checks = (
        "Up to 6 rows, one new row per tick, crashes before and after any call, then "
        f"{QUIET_TICKS} quiet ticks. Checked: every row's event ends up in the stream (none "
        "lost), and no event is in it twice."
    )
    max_size = 6
    size_unit = "row(s)"
    per_message = False

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "relay", 2, "relay(outbox, broker)")

    def draw(self, rng, size):
        faults = []
        for tick in range(1, size + 1):
            if rng.random() < 0.5:
                op = rng.randint(1, 4)
                point = rng.randint(0, 1)
                when = "before" if point == 0 else "after"
                faults.append(
                    Fault(
                        "crash", tick, op, point, f"relay crashes {when} call {op} of tick {tick}"
                    )
                )
        return faults

    def run(self, solution, schedule, out):
        world = _RelayWorld(schedule, out)
        outbox, broker = Outbox(world), RelayBroker(world)
        for tick in range(1, schedule.size + QUIET_TICKS + 1):
            world.tick, world.ops = tick, 0
            if tick in world.rows:
                world.unsent.add(tick)
                out.step(tick, f"e{tick}", "written", "to the outbox with its order")
            with contextlib.suppress(Crash):  # it runs again next tick
                call(solution, outbox, broker, what="relay(outbox, broker)")
            if out.failed:
                return
        for row in world.rows.values():
            if row.id not in world.stream:
                out.broke(
                    "no event is lost",
                    f"{row.id} never reached the stream"
                    + (
                        " though it was marked sent: mark a row only after its publish"
                        if int(row.id[1:]) not in world.unsent
                        else ""
                    ),
                    time=world.tick,
                    subject=row.id,
                )
                return

    def starter(self):
        return starter_relay

    def reference(self):
        return reference_relay


def starter_relay(outbox, broker):
    """Publish every unsent row, then mark it sent."""
    for row in outbox.unsent():
        broker.publish(row.event)
        outbox.mark_sent(row.id)


def reference_relay(outbox, broker):
    """Publish with the row's id as the message id, then mark the row sent.

    A crash between the two leaves the row unsent, so the next pass publishes it again: the
    broker recognises the id and drops the copy. Marking first would lose the event instead."""
    for row in outbox.unsent():
        broker.publish(row.event, msg_id=row.id)
        outbox.mark_sent(row.id)


__all__ = ["IdempotentCharge", "Outbox", "OutboxRelay", "RelayBroker", "Row", "SolutionError"]
