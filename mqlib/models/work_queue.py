"""A point-to-point work queue with competing consumers, acknowledgements and a visibility timeout.

The model follows SQS and JetStream, which agree on the loop:

1. A consumer *receives* a message. The queue hides it from everyone else (it is *in flight*) and
   hands the consumer a :class:`Delivery` whose ``receipt`` identifies this one receive.
2. The consumer processes the message. If the work takes long, it can ask for more time with
   :meth:`WorkQueue.extend_visibility` (SQS ``ChangeMessageVisibility``, JetStream
   ``msg.in_progress()``), a *heartbeat*.
3. The consumer *acks* it with that delivery; the queue deletes the message for good.
4. If no ack (and no heartbeat) arrives within ``visibility_timeout`` seconds, the queue assumes the
   consumer died and makes the message visible again, so another consumer receives it. The
   message's ``receive_count`` goes up by one on every receive.

**A late ack.** What happens when the first consumer was only slow and acks *after* its timeout ran
out, while a second consumer already holds the message? The brokers differ, and this model follows
**JetStream**: an ack for a message that is not yet deleted is accepted and deletes it, whichever
receive it came from (nats-server 2.15.1 does this; nats-io/nats-server issue #4786 discusses it).
An ack for a message that is already deleted returns ``False`` and changes nothing. **SQS** differs:
``DeleteMessage`` with an older receipt handle "succeeds", but the message might not be deleted
(the ``DeleteMessage`` API reference), so on SQS only the newest receipt is sure to work.

What holds on every broker: a visibility timeout shorter than the processing time makes two
consumers work on one message at once, so the work is done twice (at-least-once delivery), and with
a redrive policy healthy messages reach the dead letter queue. The cure is a longer timeout or a
heartbeat.

A simulated consumer reads like a real consumer loop::

    while True:
        delivery = yield queue.receive("A")        # long-poll until a message is visible
        yield sim.timeout(processing_time)          # do the work
        queue.ack(delivery)                         # delete it from the queue
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation

MAX_VISIBILITY = 43_200.0
"""SQS's upper bound on a visibility timeout: 12 hours, in seconds."""

_new = object.__new__

RECENT_ACKED = 1_000
"""How many acked messages :attr:`WorkQueue.messages` keeps after their ack (the newest ones), so
that a long run's memory follows its live state, not its history. Counts are kept as counters."""


@dataclass
class Message:
    """A message in a queue. ``seq`` is its position in send order (1, 2, 3, ...)."""

    id: str
    body: Any
    seq: int
    sent_at: float
    receive_count: int = 0
    acked: bool = False
    receipt: int | None = None  # the receipt of the current in-flight delivery, if any


@dataclass(frozen=True)
class Delivery:
    """One receive of a message by one consumer; ``receipt`` is unique per receive."""

    message: Message
    consumer: str
    receipt: int
    received_at: float
    receive_count: int = field(default=1)
    #: The queue that handed it out (acks and heartbeats are refused by any other queue).
    queue: Any = field(default=None, repr=False, compare=False)


class WorkQueue:
    """A queue from which each message is processed by one of several competing consumers.

    Parameters
    ----------
    sim:
        The simulation this queue lives in.
    visibility_timeout:
        Seconds a received message stays invisible before it is handed out again if not acked
        (SQS's ``VisibilityTimeout``; JetStream calls it ``ack_wait``).
    name:
        Used in the trace.
    max_in_flight:
        At most this many messages in flight at once (``None``: no limit). ``1`` with one
        consumer group makes the queue strictly FIFO, like an SQS FIFO queue with one message group.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        visibility_timeout: float = 30.0,
        name: str = "queue",
        max_in_flight: int | None = None,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.visibility_timeout = check.positive("visibility_timeout", visibility_timeout)
        self.name = check.text("name", name)
        self.messages: dict[str, Message] = {}
        self._visible: list[tuple[int, str]] = []  # heap of (seq, id): oldest first
        self._waiting: deque[tuple[str, simpy.Event]] = deque()  # consumers long-polling
        self._in_flight: dict[str, Delivery] = {}
        self._deadlines: dict[str, float] = {}  # message id -> when its invisibility ends
        self._next_seq = 1
        self._next_receipt = 1
        self.acked_count = 0
        self.late_ack_count = 0  # acks accepted after the visibility timeout had run out
        self.redelivered_count = 0  # receives of a message that had been received before
        self._recent_acked: deque[Message] = deque()  # acked, still in self.messages
        self.max_in_flight = (
            None
            if max_in_flight is None
            else check.integer("max_in_flight", max_in_flight, minimum=1, maximum=100_000)
        )

    # -- producer side -------------------------------------------------------------------------
    def send(self, body: Any = None, *, message_id: str | None = None) -> Message:
        """Put a message at the back of the queue and return it.

        ``message_id`` defaults to ``"m<seq>"`` (``m1``, ``m2``, ...).
        """
        seq = self._next_seq
        if message_id is None:
            message_id = f"m{seq}"
            suffix = 1
            while message_id in self.messages:  # an explicit id took it: pick a free one
                message_id = f"m{seq}-{suffix}"
                suffix += 1
        check.text("message_id", message_id)
        if message_id in self.messages:
            raise ValueError(f"message_id {message_id!r} is already in queue {self.name!r}")
        self._next_seq += 1
        message = Message(id=message_id, body=body, seq=seq, sent_at=self.sim.now)
        self.messages[message_id] = message
        self.sim.record("send", queue=self.name, message=message_id)
        self._make_visible(message)
        return message

    # -- consumer side -------------------------------------------------------------------------
    def receive(self, consumer: str) -> simpy.Event:
        """An event that fires with a :class:`Delivery` as soon as a message is visible.

        ``yield`` it from a consumer process. If a message is visible now, it fires at once.
        """
        check.text("consumer", consumer)
        return self._request(consumer)

    def _request(self, consumer: str) -> simpy.Event:
        # receive() without the argument check, for Consumer's loop (its name is checked once).
        request = simpy.Event(self.sim.env)
        self._waiting.append((consumer, request))
        if self._visible:
            self._dispatch()
        return request

    def cancel_receive(self, request: simpy.Event) -> None:
        """Withdraw a pending :meth:`receive` (a consumer that stops while long-polling)."""
        check.instance("request", request, simpy.Event, "pending receive() request")
        self._waiting = deque((c, r) for c, r in self._waiting if r is not request)

    def ack(self, delivery: Delivery) -> bool:
        """Acknowledge a delivery: the message is deleted and never handed out again.

        This follows JetStream's rule. An ack for a message that is still in the queue is
        accepted even when it comes *late*: its visibility timeout ran out and the message is
        visible again or already in flight with another consumer. The message is deleted all the
        same (the trace's ``ack`` event then carries ``late=True``), and the other consumer's
        ack, when it comes, finds nothing to delete. Returns ``False`` and changes nothing when
        the message is already deleted (acked, or moved to a dead letter queue).

        SQS differs here: ``DeleteMessage`` with a receipt handle older than the newest
        "succeeds", but the message might not be deleted.
        """
        self._check_delivery(delivery)
        message = delivery.message
        if not self._holds(message):
            self.sim.record(
                "ack_rejected",
                queue=self.name,
                message=message.id,
                consumer=delivery.consumer,
                receipt=delivery.receipt,
            )
            return False
        late = message.receipt != delivery.receipt
        message.acked = True
        message.receipt = None
        if message.id in self._in_flight:
            del self._in_flight[message.id]
            self._deadlines.pop(message.id, None)
        else:  # visible again after its timeout: take it out of the line
            self._visible[:] = [entry for entry in self._visible if entry[1] != message.id]
            heapq.heapify(self._visible)
        self.acked_count += 1
        recent = self._recent_acked  # _forget_old(message), inlined: this is the hot path
        recent.append(message)
        if len(recent) > RECENT_ACKED:
            old = recent.popleft()
            if self.messages.get(old.id) is old:
                del self.messages[old.id]
        if late:
            self.late_ack_count += 1
            self.sim.record(
                "ack", queue=self.name, message=message.id, consumer=delivery.consumer, late=True
            )
        else:
            self.sim.record("ack", queue=self.name, message=message.id, consumer=delivery.consumer)
        if self._visible and self._waiting:
            self._dispatch()  # a slot in flight is free (matters when max_in_flight is set)
        return True

    def extend_visibility(self, delivery: Delivery, seconds: float | None = None) -> bool:
        """A heartbeat: keep ``delivery``'s message invisible for ``seconds`` more from now.

        A consumer whose work takes longer than the visibility timeout calls this while it works,
        so the queue does not hand the message to someone else. SQS's ``ChangeMessageVisibility``
        takes the new timeout in seconds, counted from the call (at most 12 hours in all);
        JetStream's ``msg.in_progress()`` restarts the full ``ack_wait``, which is what
        ``seconds=None`` does here.

        Returns ``True`` if the delivery still holds the message and the deadline moved;
        ``False`` (and changes nothing) when it no longer does: it timed out, or the message is
        deleted. A heartbeat must come before the timeout runs out.
        """
        self._check_delivery(delivery)
        if seconds is None:
            seconds = self.visibility_timeout
        check.number("seconds", seconds, minimum=0, allow_min=False, maximum=MAX_VISIBILITY)
        message = delivery.message
        current = self._in_flight.get(message.id)
        if not self._holds(message) or current is None or current.receipt != delivery.receipt:
            return False
        self._deadlines[message.id] = self.sim.now + seconds
        self.sim.record(
            "visibility_extended",
            queue=self.name,
            message=message.id,
            consumer=delivery.consumer,
            until=self.sim.now + seconds,
        )
        return True

    # -- settings and state --------------------------------------------------------------------
    def set_visibility_timeout(self, seconds: float) -> None:
        """Change the visibility timeout for messages received from now on."""
        self.visibility_timeout = check.positive("visibility_timeout", seconds)

    @property
    def sent_count(self) -> int:
        """Messages ever sent to this queue."""
        return self._next_seq - 1

    @property
    def visible_count(self) -> int:
        """Messages waiting to be received."""
        return len(self._visible)

    @property
    def in_flight_count(self) -> int:
        """Messages received but neither acked nor timed out."""
        return len(self._in_flight)

    @property
    def depth(self) -> int:
        """Messages not yet acked: visible plus in flight (SQS's "approximate number")."""
        return self.visible_count + self.in_flight_count

    def in_flight(self) -> list[Delivery]:
        """The current in-flight deliveries, oldest message first."""
        return sorted(self._in_flight.values(), key=lambda d: d.message.seq)

    # -- internals -----------------------------------------------------------------------------
    def _check_delivery(self, delivery: Delivery) -> None:
        if not isinstance(delivery, Delivery):
            raise TypeError(f"delivery must be a Delivery, got {type(delivery).__name__}")
        owner = delivery.queue
        if owner is not None and owner is not self:
            raise ValueError(
                f"delivery of {delivery.message.id!r} was received from queue "
                f"{getattr(owner, 'name', owner)!r}, not from this queue {self.name!r}"
            )

    def _holds(self, message: Message) -> bool:
        """Is ``message`` still in this queue, not deleted? (A replayed dead letter is a new
        :class:`Message` with the same id, so identity, not the id, decides.)"""
        return not message.acked and self.messages.get(message.id) is message

    def _forget_old(self, message: Message) -> None:
        """Keep ``message`` (just deleted) among the recent history of :attr:`messages` and drop
        the oldest deleted message once there are more than :data:`RECENT_ACKED`."""
        recent = self._recent_acked
        recent.append(message)
        if len(recent) > RECENT_ACKED:
            old = recent.popleft()
            if self.messages.get(old.id) is old:
                del self.messages[old.id]

    def _before_visible(self, message: Message) -> bool:
        """Hook for subclasses, called whenever a message is about to become visible (when sent,
        and again after each visibility timeout). Return ``False`` to keep it out of the queue, for
        example because a redrive policy moved it to a dead letter queue."""
        return True

    def _make_visible(self, message: Message) -> None:
        if not self._before_visible(message):
            return
        heapq.heappush(self._visible, (message.seq, message.id))
        if self._waiting:
            self._dispatch()

    def _has_room_in_flight(self) -> bool:
        return self.max_in_flight is None or len(self._in_flight) < self.max_in_flight

    def _dispatch(self) -> None:
        # Hand visible messages to long-polling consumers, oldest message to longest waiter.
        visible, waiting = self._visible, self._waiting
        if not (visible and waiting):
            return
        sim = self.sim
        now = sim.env._now
        timeout = self.visibility_timeout
        in_flight, deadlines, messages = self._in_flight, self._deadlines, self.messages
        while visible and waiting and self._has_room_in_flight():
            consumer, request = waiting.popleft()
            _, message_id = heapq.heappop(visible)
            message = messages[message_id]
            count = message.receive_count = message.receive_count + 1
            if count > 1:
                self.redelivered_count += 1
            receipt = self._next_receipt
            self._next_receipt = receipt + 1
            message.receipt = receipt
            delivery = _new(Delivery)  # Delivery(...) minus the frozen dataclass's setattr calls
            delivery.__dict__.update(
                message=message,
                consumer=consumer,
                receipt=receipt,
                received_at=now,
                receive_count=count,
                queue=self,
            )
            in_flight[message_id] = delivery
            sim.record(
                "receive",
                queue=self.name,
                message=message_id,
                consumer=consumer,
                receive_count=count,
            )
            deadlines[message_id] = now + timeout
            self._start_timer(delivery, timeout)
            request.succeed(delivery)

    def _start_timer(self, delivery: Delivery, seconds: float) -> None:
        self.sim._timer(seconds, delivery, self._on_timer)

    def _on_timer(self, event: simpy.Event) -> None:
        self._expire(event._value)

    def _expire(self, delivery: Delivery) -> None:
        message = delivery.message
        if message.acked or message.receipt != delivery.receipt:
            return  # acked in time (or already handed out again): nothing to do
        remaining = self._deadlines[message.id] - self.sim.now
        if remaining > 0:  # a heartbeat moved the deadline: wait the rest
            self._start_timer(delivery, remaining)
            return
        message.receipt = None
        del self._in_flight[message.id]
        del self._deadlines[message.id]
        self.sim.record(
            "visibility_timeout", queue=self.name, message=message.id, consumer=delivery.consumer
        )
        self._make_visible(message)
