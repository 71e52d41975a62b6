"""Dead letter queues: quarantining the message that can never be processed.

A *poison pill* is a message whose processing always fails - a malformed payload, a reference to a
deleted record, a bug that crashes on one particular input. A queue redelivers a message whose
processing failed (at-least-once), so without a limit the poison pill is retried forever.

SQS's answer is the *redrive policy* of a queue: a dead letter queue and ``maxReceiveCount``. Every
receive of a message raises its receive count (SQS shows it as the ``ApproximateReceiveCount``
attribute). The broker moves a message to the DLQ when its receive count would *exceed*
``maxReceiveCount``: not when its last visibility timeout runs out, but on the next receive after
the ``maxReceiveCount``-th, instead of handing it out a ``maxReceiveCount + 1``-th time. This model
does the same: a message that used up its receives waits, visible, until a consumer asks for a
message, and that receive moves it.

**Who knows the error.** The broker never learns why processing failed: it only sees that no
acknowledgement came. SQS moves the message with its body and message attributes, nothing else;
RabbitMQ adds an ``x-death`` header (the reason, such as ``rejected``, and a count), not the
exception. The error reaches the DLQ only if the consumer (or a framework around it) writes it.
Here the consumer writes it: :meth:`RedriveQueue.fail` with an ``error`` stores it as the message
attribute ``error`` (with ``error_by``, the consumer), and the redrive carries the message's
attributes into the :class:`DeadLetter`; without it, the dead letter's ``last_error`` is ``None``.
(A simplification: SQS and RabbitMQ cannot change a stored message, so a real consumer that wants
the error to travel re-publishes the message with the error in an attribute or header, as
Spring Kafka's ``DeadLetterPublishingRecoverer`` does, or logs it under the message id.)

With the DLQ an engineer can

- **inspect** it (what failed, how often, and the error if a consumer wrote one),
- fix the bug and **replay** the messages back to their source queue (fresh, receive count 0),
- **purge** messages that are truly unrecoverable,
- be **alerted** when the DLQ holds more than ``alert_threshold`` messages.

An *ordered* queue here is an SQS FIFO queue: each message has a *message group*
(``MessageGroupId``), and within a group a message is handed out only when everything before it in
that group is done; while one is in flight, the rest of its group waits. Without a DLQ a poison
pill at the head of a group is redelivered forever and nothing behind it *in that group* is ever
processed: head-of-line blocking, that group's throughput zero. Other groups keep flowing.

A standard queue's dead letters keep their original enqueue time (``sent_at``), so a DLQ's
retention period must be longer than its source's; a FIFO queue's dead letter gets a fresh one.
:attr:`DeadLetter.enqueued_at` follows that rule.

A consumer that can fail reads like a real handler loop::

    while True:
        delivery = yield queue.receive("A")
        yield sim.timeout(processing_time)
        error = handler(delivery.message)         # None, or the exception text
        if error is None:
            queue.ack(delivery)
        else:
            queue.fail(delivery, error)           # no ack; the consumer writes the error
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from .consumer import Consumer
from .work_queue import Delivery, Message, WorkQueue

__all__ = [
    "DeadLetter",
    "DeadLetterQueue",
    "HandlerConsumer",
    "PoisonHandler",
    "RedriveQueue",
    "is_poison",
]


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead letter queue, with what the broker knows about it.

    ``receive_count``, ``source`` and the times are the broker's own bookkeeping (SQS's
    ``ApproximateReceiveCount``; RabbitMQ's ``x-death`` header holds a reason and a count).
    ``attributes`` are the message attributes that travelled with it; ``last_error`` is the one
    named ``error``, which exists only if a consumer wrote it (``None`` otherwise: the broker never
    knows why processing failed). ``group`` is its message group on a FIFO queue.
    ``enqueued_at`` is when its retention period started counting: the original send on a
    standard queue, the move on a FIFO queue.
    """

    message_id: str
    body: Any
    receive_count: int
    last_error: str | None
    source: str
    sent_at: float
    dead_lettered_at: float
    enqueued_at: float = 0.0
    group: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeadLetterQueue:
    """Where a :class:`RedriveQueue` moves the messages it gave up on.

    Parameters
    ----------
    sim:
        The simulation it lives in.
    name:
        Used in the trace (SQS convention: ``<source>-dlq``).
    alert_threshold:
        An alert (a ``dlq_alert`` trace event) fires when the depth rises above this many
        messages; it fires again only after the depth has fallen back to the threshold or below.
        ``None`` disables alerting.
    """

    def __init__(
        self, sim: Simulation, *, name: str = "dlq", alert_threshold: int | None = None
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        self.name = check.text("name", name)
        self.alert_threshold: int | None = None
        self.alerts: list[dict[str, Any]] = []
        self._alerting = False
        self._entries: dict[str, DeadLetter] = {}
        self._sources: dict[str, RedriveQueue] = {}
        self.set_alert_threshold(alert_threshold)

    @property
    def depth(self) -> int:
        """Messages in the DLQ."""
        return len(self._entries)

    @property
    def alerting(self) -> bool:
        """True while the depth is above the alert threshold."""
        return self._alerting

    def set_alert_threshold(self, threshold: int | None) -> None:
        """Alert when the depth passes ``threshold`` messages (``None``: never)."""
        if threshold is not None:
            check.integer("alert_threshold", threshold, minimum=0, maximum=1_000_000)
        self.alert_threshold = threshold
        self._check_alert()

    def inspect(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first, as plain data."""
        return [entry.as_dict() for entry in self._entries.values()]

    def replay(self, message_ids: list[str] | None = None) -> list[str]:
        """Send dead letters back to the queue they came from (all of them by default).

        Each goes to the back of its source queue as a fresh message with receive count 0, so it
        gets ``max_receives`` new attempts. Returns the ids replayed.
        """
        if message_ids is None:
            ids = list(self._entries)
        else:  # a bare string is a mistake ("p1" is not ["p", "1"]); a repeated id too
            if isinstance(message_ids, str) or not isinstance(message_ids, list | tuple):
                raise TypeError(
                    f"message_ids must be a list of message ids or None, got {message_ids!r} "
                    f"({type(message_ids).__name__}); write [{message_ids!r}] for one"
                )
            ids = list(message_ids)
            if len(set(map(repr, ids))) != len(ids):
                raise ValueError(f"message_ids must not repeat an id, got {ids!r}")
        for message_id in ids:
            check.text("message_id in message_ids", message_id)
            if message_id not in self._entries:
                raise ValueError(
                    f"message_ids: message_id {message_id!r} is not in DLQ {self.name!r}; it "
                    f"holds {list(self._entries)!r}"
                )
            source = self._sources[message_id]
            if message_id in source.messages:
                raise ValueError(
                    f"message_ids: message_id {message_id!r} cannot be replayed: queue "
                    f"{source.name!r} already holds a message with that id"
                )
        for message_id in ids:
            entry = self._entries.pop(message_id)
            source = self._sources.pop(message_id)
            self.sim.record("dlq_replay", dlq=self.name, message=message_id, queue=source.name)
            source.send(entry.body, message_id=message_id, group=entry.group)
        self._check_alert()
        return ids

    def purge(self) -> int:
        """Delete every dead letter for good; returns how many."""
        count = len(self._entries)
        self._entries.clear()
        self._sources.clear()
        self.sim.record("dlq_purge", dlq=self.name, count=count)
        self._check_alert()
        return count

    def add(
        self,
        source: RedriveQueue,
        message: Message,
        attributes: dict[str, str] | None = None,
        *,
        group: str | None = None,
    ) -> DeadLetter:
        """Take in a message that ``source`` gave up on, with the message attributes that travel
        with it (called by the source queue)."""
        attributes = dict(attributes or {})
        entry = DeadLetter(
            message.id,
            message.body,
            message.receive_count,
            attributes.get("error"),
            source.name,
            message.sent_at,
            self.sim.now,
            self.sim.now if source.ordered else message.sent_at,
            group,
            attributes,
        )
        self._entries[message.id] = entry
        self._sources[message.id] = source
        self.sim.record(
            "dead_letter",
            queue=source.name,
            dlq=self.name,
            message=message.id,
            receive_count=message.receive_count,
            error=entry.last_error,
        )
        self._check_alert()
        return entry

    def _check_alert(self) -> None:
        above = self.alert_threshold is not None and self.depth > self.alert_threshold
        if above and not self._alerting:
            alert = {"time": self.sim.now, "depth": self.depth, "threshold": self.alert_threshold}
            self.alerts.append(alert)
            self.sim.record(
                "dlq_alert", dlq=self.name, depth=self.depth, threshold=self.alert_threshold
            )
        self._alerting = above


class RedriveQueue(WorkQueue):
    """A :class:`~mqlib.models.work_queue.WorkQueue` with an SQS redrive policy and an optional
    FIFO (ordered) mode with message groups.

    Parameters
    ----------
    dead_letter_queue:
        Where to move a message whose receive count would exceed ``max_receives``. ``None``: no
        DLQ, the message is redelivered forever.
    max_receives:
        SQS's ``maxReceiveCount`` (1 to 1,000): the receives a message gets; the receive after the
        last of them moves it to the DLQ instead.
    ordered:
        FIFO: within a message group a message is handed out only when the one before it was
        acked (or dead-lettered), oldest first, so each group is processed strictly in send order;
        different groups do not wait for each other (an SQS FIFO queue and its
        ``MessageGroupId``).
    """

    #: The message group of a message sent to a FIFO queue without one.
    DEFAULT_GROUP = "default"

    def __init__(
        self,
        sim: Simulation,
        *,
        visibility_timeout: float = 30.0,
        name: str = "queue",
        dead_letter_queue: DeadLetterQueue | None = None,
        max_receives: int = 3,
        ordered: bool = False,
    ) -> None:
        check.boolean("ordered", ordered)
        self.ordered = ordered
        # FIFO bookkeeping: each message's group (kept after it leaves, for reports); per group
        # the one message released into the queue (visible or in flight) and the ones held back
        # behind it, in send order.
        self.groups: dict[str, str] = {}
        self._group_head: dict[str, str] = {}
        self._held: dict[str, deque[Message]] = {}
        self._next_group: str | None = None
        super().__init__(sim, visibility_timeout=visibility_timeout, name=name)
        self.dead_letter_queue: DeadLetterQueue | None = None
        self.max_receives = 3
        self.set_redrive_policy(dead_letter_queue, max_receives)
        self.attributes: dict[str, dict[str, str]] = {}
        self.failed_count = 0
        self.dead_lettered_count = 0
        self._freed = sim.event()

    def set_redrive_policy(
        self, dead_letter_queue: DeadLetterQueue | None, max_receives: int
    ) -> None:
        """Set (or with ``None`` remove) the DLQ and the receive limit, for the next receive of
        each message."""
        if dead_letter_queue is not None and not isinstance(dead_letter_queue, DeadLetterQueue):
            raise TypeError(
                "dead_letter_queue must be a DeadLetterQueue or None, got "
                f"{type(dead_letter_queue).__name__}"
            )
        self.max_receives = check.integer("max_receives", max_receives, minimum=1, maximum=1000)
        self.dead_letter_queue = dead_letter_queue

    def send(
        self, body: Any = None, *, message_id: str | None = None, group: str | None = None
    ) -> Message:
        """Put a message at the back of the queue and return it; on a FIFO queue ``group`` is its
        message group (default :attr:`DEFAULT_GROUP`). A standard queue ignores groups."""
        if group is not None:
            check.text("group", group)
        self._next_group = (group or self.DEFAULT_GROUP) if self.ordered else None
        try:
            return super().send(body, message_id=message_id)
        finally:
            self._next_group = None

    def fail(self, delivery: Delivery, error: str | None = None) -> None:
        """The consumer's processing of ``delivery`` failed.

        Nothing is acked: the message stays in flight until its visibility timeout expires and then
        comes back (or, once it has used up ``max_receives``, goes to the DLQ at its next receive).
        The queue learns nothing about the cause. With ``error``, the *consumer* writes it into
        the message's attributes (``error``, and ``error_by``: who wrote it), which travel with
        the message into the DLQ; without it the dead letter carries no error.
        """
        self._check_delivery(delivery)
        if error is not None:
            check.text("error", error)
            self.attributes[delivery.message.id] = {"error": error, "error_by": delivery.consumer}
        self.failed_count += 1
        self.sim.record(
            "processing_failed",
            queue=self.name,
            message=delivery.message.id,
            consumer=delivery.consumer,
            receive_count=delivery.receive_count,
            error=error,
        )

    @property
    def last_errors(self) -> dict[str, str]:
        """The error attribute a consumer wrote on each message still in the queue, by id."""
        return {m: a["error"] for m, a in self.attributes.items() if "error" in a}

    def ack(self, delivery: Delivery) -> bool:
        accepted = super().ack(delivery)
        if accepted:
            message_id = delivery.message.id
            self.attributes.pop(message_id, None)
            self._release_next(message_id)
            self._dispatch()
            self._wake_freed()
        return accepted

    @property
    def visible_count(self) -> int:
        """Messages waiting to be received, including those a FIFO group holds back."""
        return super().visible_count + sum(len(held) for held in self._held.values())

    def held_back(self) -> dict[str, int]:
        """FIFO: per message group, the messages waiting behind the group's head."""
        return {g: len(held) for g, held in self._held.items() if held}

    def space_freed(self) -> simpy.Event:
        """An event that fires the next time a message leaves the queue (acked or dead-lettered),
        for a producer blocked by a bound on the depth."""
        return self._freed

    def _wake_freed(self) -> None:
        event, self._freed = self._freed, self.sim.event()
        event.succeed()

    # -- hooks into WorkQueue ------------------------------------------------------------------
    def _before_visible(self, message: Message) -> bool:
        if not self.ordered:
            return True
        if self._next_group is not None:  # being sent (not coming back after a timeout)
            self.groups[message.id] = self._next_group
        group = self.groups[message.id]
        head = self._group_head.get(group)
        if head is None or head == message.id:
            self._group_head[group] = message.id
            return True
        self._held.setdefault(group, deque()).append(message)  # waits behind its group's head
        return False

    def _has_room_in_flight(self) -> bool:
        # WorkQueue._dispatch asks this just before it pops the oldest visible message for a
        # waiting consumer, so this is the moment of a receive. SQS's rule: a message whose
        # receive count would exceed maxReceiveCount is moved to the DLQ by that receive instead
        # of being returned; the receive then takes the next message.
        dlq = self.dead_letter_queue
        while dlq is not None and self._visible:
            message = self.messages[self._visible[0][1]]
            if message.receive_count < self.max_receives:
                break
            heapq.heappop(self._visible)
            self._dead_letter(message, dlq)
        return bool(self._visible) and super()._has_room_in_flight()

    def _dead_letter(self, message: Message, dlq: DeadLetterQueue) -> None:
        del self.messages[message.id]  # it now lives in the DLQ; replay may send it back
        self.dead_lettered_count += 1
        group = self.groups.get(message.id)
        dlq.add(self, message, self.attributes.pop(message.id, None), group=group)
        self._release_next(message.id)
        self._wake_freed()

    def _release_next(self, message_id: str) -> None:
        # FIFO: the group's head is done (acked or dead-lettered): the next of its group becomes
        # visible. Pushed straight onto the heap: the caller is dispatching already.
        group = self.groups.get(message_id)
        if group is None or self._group_head.get(group) != message_id:
            return
        held = self._held.get(group)
        if held:
            successor = held.popleft()
            self._group_head[group] = successor.id
            heapq.heappush(self._visible, (successor.seq, successor.id))
        else:
            del self._group_head[group]


def is_poison(message: Message) -> bool:
    """A poison pill is a message whose body is a dict with ``"poison": True``."""
    return isinstance(message.body, dict) and bool(message.body.get("poison"))


class PoisonHandler:
    """The consumers' message handler, with a bug: it fails on every poison pill until
    :meth:`fix_bug` (a new deployment) is called. Returns ``None`` on success, else the error."""

    error = "KeyError: 'customer_id' (malformed payload)"

    def __init__(self) -> None:
        self.bug_fixed = False

    def fix_bug(self) -> None:
        """Deploy the fix: from now on poison pills are processed like any other message."""
        self.bug_fixed = True

    def __call__(self, message: Message) -> str | None:
        if is_poison(message) and not self.bug_fixed:
            return self.error
        return None


class HandlerConsumer(Consumer):
    """A competing consumer whose handler may fail: receive, process, then ack on success or report
    the failure (no ack) to a :class:`RedriveQueue`. It can be crashed and restarted like
    :class:`~mqlib.models.consumer.Consumer`.

    ``handler`` takes the message and returns ``None`` (success) or an error text. With
    ``write_error`` (the default) the consumer writes that error into the message's attributes
    when it fails, so the error reaches the DLQ with the message; without it the dead letter
    carries no error, because the broker never knew it.
    """

    def __init__(
        self,
        sim: Simulation,
        queue: WorkQueue,
        name: str,
        *,
        handler: Callable[[Message], str | None] | None = None,
        processing_time: float = 1.0,
        write_error: bool = True,
        start: bool = True,
    ) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable or None, got {type(handler).__name__}")
        self.handler = PoisonHandler() if handler is None else handler
        self.write_error = check.boolean("write_error", write_error)
        self.failed = 0
        super().__init__(sim, queue, name, processing_time=processing_time, start=start)

    def finish(self, delivery: Delivery) -> None:
        """Run the handler on the processed message: on success count it and ack it like any
        consumer; on failure report it to the queue (writing the error if ``write_error``) and do
        not ack, so the message comes back after the visibility timeout (or goes to the DLQ at
        its next receive once it has used up its receives)."""
        self.queue._check_delivery(delivery)
        error = self.handler(delivery.message)
        if error is None:
            super().finish(delivery)
        else:
            self.failed += 1
            if isinstance(self.queue, RedriveQueue):
                self.queue.fail(delivery, error if self.write_error else None)
