"""Dual writes, the transactional outbox and the inbox, on real SQLite databases.

An order service has to do two things when an order comes in: write the order to its database
and tell the rest of the system (publish an ``OrderPlaced`` event). Those are two systems, and no
transaction spans both. Whichever it does first, a crash between the two leaves them disagreeing:

``"commit_then_publish"``
    ``COMMIT`` the order, then publish. A crash in between leaves an order that no event
    announces: the warehouse never hears of it (a **lost event**).
``"publish_then_commit"``
    Publish, then ``COMMIT``. A crash (or a failed commit) in between rolls the order back, but
    the event is already out: the warehouse reserves stock for an order that does not exist (a
    **phantom event**).
``"outbox"``
    The transactional outbox. The service writes the order *and* the event, as a row of an
    ``outbox`` table, in **one** database transaction: both or neither. A separate **relay**
    reads unpublished outbox rows, publishes each, and then marks it published. A relay that
    crashes after publishing and before marking publishes that row again when it restarts, so
    the relay delivers **at least once**. In production the relay is usually change data capture
    (Debezium reading the database's write-ahead log and its outbox event router), not a
    polling loop; the guarantee is the same.

On the consuming side, the inventory service applies each event (``reserved = reserved + qty``,
an increment, so not idempotent) and protects it with an **inbox**: in the same transaction as
the effect it runs ``INSERT INTO inbox(message_id) VALUES (?) ON CONFLICT DO NOTHING``; when that
inserts no row, the message was applied before and the transaction does nothing else. The
consumer acknowledges only after its transaction has committed, so a crash before the commit
rolls the effect back and the broker redelivers; a crash after it redelivers a message the inbox
then skips.

Both services use real SQL on in-memory :mod:`sqlite3` databases; the broker is an
at-least-once queue (a message stays until acknowledged). It is a step model with no clock: the
services take turns in a fixed order (place an order, a relay pass, drain the queue), so the only
thing that varies is the crash schedule, a :class:`Crash` list drawn from a seed by
:func:`random_crashes`. The same schedule gives the same run.

>>> from mqlib.models.outbox import Crash, run_orders
>>> crashes = [Crash("service_between_writes", order=2)]
>>> run_orders("commit_then_publish", 3, crashes).lost_events
('o2',)
>>> run_orders("publish_then_commit", 3, crashes).phantom_events
('o2',)
>>> r = run_orders("outbox", 3, crashes)
>>> (r.lost_events, r.phantom_events, r.double_effects)
((), (), ())
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import _validate as check

__all__ = [
    "CRASH_POINTS",
    "STRATEGIES",
    "Crash",
    "InventoryService",
    "OrderService",
    "OutboxResult",
    "QueueBroker",
    "Relay",
    "random_crashes",
    "run_orders",
]

STRATEGIES = ("commit_then_publish", "publish_then_commit", "outbox")
"""How the order service gets its order and its event out, the two dual writes first."""

CRASH_POINTS = (
    "service_between_writes",
    "relay_after_publish",
    "consumer_before_commit",
    "consumer_after_commit",
)
"""Where a :class:`Crash` can strike.

``service_between_writes``: the order service dies after its first write (the commit, the
publish, or, with the outbox, its single transaction) and before anything else.
``relay_after_publish``: the outbox relay dies after publishing a row, before marking it
published (outbox only). ``consumer_before_commit``: the inventory service dies inside its
transaction (it is rolled back). ``consumer_after_commit``: it dies after committing, before
acknowledging the message.
"""

ORDERS_SCHEMA = """
CREATE TABLE orders (id TEXT PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
"""

INVENTORY_SCHEMA = """
CREATE TABLE stock (item TEXT PRIMARY KEY, reserved INTEGER NOT NULL DEFAULT 0);
CREATE TABLE inbox (message_id TEXT PRIMARY KEY);
CREATE TABLE applied (order_id TEXT NOT NULL);  -- one row per effect, so doubles are visible
"""


@dataclass(frozen=True)
class Crash:
    """A planned crash at ``point`` while order number ``order`` (1, 2, ...) is handled.

    Each crash strikes once, the first time its moment comes.
    """

    point: str
    order: int

    def __post_init__(self) -> None:
        check.choice("point", self.point, CRASH_POINTS)
        check.integer("order", self.order, minimum=1)


class _Crashes:
    def __init__(self, crashes: Iterable[Crash]) -> None:
        if isinstance(crashes, Crash | str) or not isinstance(crashes, Iterable):
            raise TypeError(f"crashes must be a list of Crash, got {crashes!r}")
        self._pending: Counter[Crash] = Counter()
        for crash in crashes:
            if not isinstance(crash, Crash):
                raise TypeError(f"crashes must contain only Crash objects, got {crash!r}")
            self._pending[crash] += 1

    def hit(self, point: str, order: int) -> bool:
        crash = Crash(point, order)
        if self._pending[crash]:
            self._pending[crash] -= 1
            return True
        return False


def random_crashes(seed: int, orders: int, *, rate: float = 0.2) -> list[Crash]:
    """Draw a crash schedule for ``orders`` orders from ``seed``: every crash point strikes each
    order with probability ``rate``.

    >>> random_crashes(3, 2, rate=0.3)  # doctest: +NORMALIZE_WHITESPACE
    [Crash(point='service_between_writes', order=1), Crash(point='relay_after_publish', order=2),
     Crash(point='consumer_before_commit', order=2)]
    """
    check.integer("seed", seed)
    check.integer("orders", orders, minimum=0, maximum=10_000)
    check.number("rate", rate, minimum=0, maximum=1)
    rng = random.Random(seed)
    return [
        Crash(point, number)
        for number in range(1, orders + 1)
        for point in CRASH_POINTS
        if rng.random() < rate
    ]


class QueueBroker:
    """An at-least-once queue: a message stays at the head until it is acknowledged."""

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()
        self.published = 0

    def publish(self, message: dict[str, Any]) -> None:
        self.queue.append(dict(message))
        self.published += 1

    def head(self) -> dict[str, Any] | None:
        return self.queue[0] if self.queue else None

    def ack(self) -> None:
        self.queue.popleft()


class OrderService:
    """Places orders in its own SQLite database and gets an ``OrderPlaced`` event out, following
    ``strategy`` (one of :data:`STRATEGIES`)."""

    def __init__(self, strategy: str, broker: QueueBroker, crashes: _Crashes, trace: list) -> None:
        self.strategy = check.choice("strategy", strategy, STRATEGIES)
        self.broker = broker
        self.crashes = crashes
        self.trace = trace
        self.db = sqlite3.connect(":memory:", isolation_level=None)  # explicit BEGIN/COMMIT
        self.db.executescript(ORDERS_SCHEMA)

    def place(self, number: int, item: str, qty: int) -> None:
        order_id = f"o{number}"
        event = {"message_id": f"evt-{order_id}", "order_id": order_id, "item": item, "qty": qty}
        db = self.db
        db.execute("BEGIN")
        db.execute("INSERT INTO orders (id, item, qty) VALUES (?, ?, ?)", (order_id, item, qty))
        if self.strategy == "outbox":
            db.execute(
                "INSERT INTO outbox (message_id, payload) VALUES (?, ?)",
                (event["message_id"], json.dumps(event)),
            )
            db.execute("COMMIT")  # the order and its event, together or not at all
            self._log("committed", order_id)
            if self.crashes.hit("service_between_writes", number):
                self._log("service_crash", order_id)  # harmless: the relay has the row
            return
        if self.strategy == "commit_then_publish":
            db.execute("COMMIT")
            self._log("committed", order_id)
            if self.crashes.hit("service_between_writes", number):
                self._log("service_crash", order_id)  # the event is never published
                return
            self.broker.publish(event)
            self._log("published", order_id)
            return
        # publish_then_commit
        self.broker.publish(event)
        self._log("published", order_id)
        if self.crashes.hit("service_between_writes", number):
            db.execute("ROLLBACK")  # the process died: its open transaction is undone
            self._log("service_crash", order_id)
            return
        db.execute("COMMIT")
        self._log("committed", order_id)

    def order_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM orders")}

    def _log(self, kind: str, order_id: str) -> None:
        self.trace.append({"kind": kind, "order": order_id})


class Relay:
    """The outbox relay: publish every unpublished outbox row, oldest first, then mark it.

    Publishing and marking are two writes to two systems again, so a crash between them makes
    the next pass publish the row a second time: the relay is at-least-once, never at-most-once.
    """

    def __init__(self, service: OrderService, crashes: _Crashes, trace: list) -> None:
        self.service = service
        self.crashes = crashes
        self.trace = trace

    def run_once(self) -> None:
        """One pass over the outbox; stops early if the relay crashes (it restarts next pass)."""
        db = self.service.db
        rows = db.execute(
            "SELECT seq, payload FROM outbox WHERE published = 0 ORDER BY seq"
        ).fetchall()
        for seq, payload in rows:
            event = json.loads(payload)
            self.service.broker.publish(event)
            self.trace.append({"kind": "relayed", "order": event["order_id"]})
            number = int(event["order_id"][1:])
            if self.crashes.hit("relay_after_publish", number):
                self.trace.append({"kind": "relay_crash", "order": event["order_id"]})
                return
            db.execute("UPDATE outbox SET published = 1 WHERE seq = ?", (seq,))


class InventoryService:
    """Consumes ``OrderPlaced`` events and reserves stock in its own SQLite database.

    With ``inbox=True`` each message id is recorded with ``INSERT ... ON CONFLICT DO NOTHING`` in
    the same transaction as the effect, and a message whose id is already there changes nothing.
    """

    def __init__(self, broker: QueueBroker, crashes: _Crashes, trace: list, *, inbox: bool) -> None:
        self.broker = broker
        self.crashes = crashes
        self.trace = trace
        self.inbox = check.boolean("inbox", inbox)
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.executescript(INVENTORY_SCHEMA)
        self.skipped = 0
        self.deliveries = 0

    def drain(self) -> None:
        """Handle messages until the queue is empty; a crash ends the pass (redelivery next)."""
        while (message := self.broker.head()) is not None:
            self.deliveries += 1
            if not self._handle(message):
                return
            self.broker.ack()

    def _handle(self, message: dict[str, Any]) -> bool:
        db, order_id = self.db, message["order_id"]
        number = int(order_id[1:])
        db.execute("BEGIN")
        if self.inbox:
            inserted = db.execute(
                "INSERT INTO inbox (message_id) VALUES (?) ON CONFLICT DO NOTHING",
                (message["message_id"],),
            ).rowcount
            if inserted == 0:  # seen before: its effect is already committed
                db.execute("COMMIT")
                self.skipped += 1
                self.trace.append({"kind": "skipped", "order": order_id})
                return True
        db.execute(
            "INSERT INTO stock (item, reserved) VALUES (?, ?) "
            "ON CONFLICT (item) DO UPDATE SET reserved = reserved + excluded.reserved",
            (message["item"], message["qty"]),
        )
        db.execute("INSERT INTO applied (order_id) VALUES (?)", (order_id,))
        if self.crashes.hit("consumer_before_commit", number):
            db.execute("ROLLBACK")  # the process died mid-transaction
            self.trace.append({"kind": "consumer_crash", "order": order_id, "committed": False})
            return False
        db.execute("COMMIT")
        self.trace.append({"kind": "applied", "order": order_id})
        if self.crashes.hit("consumer_after_commit", number):
            self.trace.append({"kind": "consumer_crash", "order": order_id, "committed": True})
            return False  # never acknowledged: the broker hands it out again
        return True

    def effects(self) -> Counter[str]:
        return Counter(row[0] for row in self.db.execute("SELECT order_id FROM applied"))

    def reserved(self) -> int:
        return self.db.execute("SELECT COALESCE(SUM(reserved), 0) FROM stock").fetchone()[0]


@dataclass(frozen=True)
class OutboxResult:
    """What one run left behind in the two databases and the broker.

    ``orders``: orders committed in the order service's database; ``published``: messages that
    reached the broker, counting re-publishes; ``delivered``: deliveries to the inventory
    service; ``applied``: effects committed there. ``lost_events``: committed orders whose effect
    never happened; ``phantom_events``: effects for orders that do not exist;
    ``double_effects``: orders whose effect was applied more than once; ``skipped``: deliveries
    the inbox recognised; ``reserved`` / ``expected_reserved``: units of stock reserved, and the
    units the committed orders call for.
    """

    strategy: str
    inbox: bool
    attempted: int
    orders: int
    published: int
    delivered: int
    applied: int
    skipped: int
    lost_events: tuple[str, ...]
    phantom_events: tuple[str, ...]
    double_effects: tuple[str, ...]
    reserved: int
    expected_reserved: int
    trace: tuple[dict[str, Any], ...]

    @property
    def consistent(self) -> bool:
        """True when every committed order took effect exactly once and nothing else did."""
        return not (self.lost_events or self.phantom_events or self.double_effects)

    def as_row(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "orders": self.orders,
            "published": self.published,
            "delivered": self.delivered,
            "applied": self.applied,
            "lost": len(self.lost_events),
            "phantom": len(self.phantom_events),
            "doubled": len(self.double_effects),
            "reserved": self.reserved,
            "expected_reserved": self.expected_reserved,
        }


def run_orders(
    strategy: str,
    orders: int = 10,
    crashes: Iterable[Crash] = (),
    *,
    inbox: bool = True,
    qty: int = 1,
) -> OutboxResult:
    """Place ``orders`` orders (``o1``, ``o2``, ...; ``qty`` units of one item each) under
    ``strategy``, following the ``crashes`` schedule, and run until everything has settled.

    After each order the relay makes a pass (outbox only) and the inventory service drains the
    queue; a crashed process restarts on the next pass. At the end both keep going until the
    outbox has nothing unpublished and the queue is empty.
    """
    check.choice("strategy", strategy, STRATEGIES)
    check.integer("orders", orders, minimum=0, maximum=10_000)
    check.boolean("inbox", inbox)
    check.integer("qty", qty, minimum=1)
    check.collection("crashes", crashes)
    schedule = _Crashes(crashes)
    trace: list[dict[str, Any]] = []
    broker = QueueBroker()
    service = OrderService(strategy, broker, schedule, trace)
    relay = Relay(service, schedule, trace)
    inventory = InventoryService(broker, schedule, trace, inbox=inbox)

    def step() -> None:
        if strategy == "outbox":
            relay.run_once()
        inventory.drain()

    for number in range(1, orders + 1):
        service.place(number, "sku-17", qty)
        step()
    # Each pass ends early only by using up a crash, and there are finitely many: this ends.
    while broker.queue or _unpublished(service):
        step()

    committed = service.order_ids()
    effects = inventory.effects()
    ids = [f"o{n}" for n in range(1, orders + 1)]
    return OutboxResult(
        strategy=strategy,
        inbox=inbox,
        attempted=orders,
        orders=len(committed),
        published=broker.published,
        delivered=inventory.deliveries,
        applied=sum(effects.values()),
        skipped=inventory.skipped,
        lost_events=tuple(i for i in ids if i in committed and effects[i] == 0),
        phantom_events=tuple(i for i in ids if i not in committed and effects[i] > 0),
        double_effects=tuple(i for i in ids if effects[i] > 1),
        reserved=inventory.reserved(),
        expected_reserved=qty * len(committed),
        trace=tuple(trace),
    )


def _unpublished(service: OrderService) -> bool:
    if service.strategy != "outbox":
        return False
    return (
        service.db.execute("SELECT 1 FROM outbox WHERE published = 0 LIMIT 1").fetchone()
        is not None
    )
