"""Dead letter queues: quarantining the message that can never be processed.

A *poison pill* is a message whose processing always fails - a malformed payload, a reference to a
deleted record, a bug that crashes on one particular input. A queue redelivers a message whose
processing failed (at-least-once), so without a limit the poison pill is retried forever.

SQS's answer is the *redrive policy* of a queue: a dead letter queue and ``maxReceiveCount``. Every
receive of a message raises its receive count; a message that has been received ``max_receives``
times and still comes back (its consumer never acked it) is moved to the dead letter queue instead
of being handed out again. Here the dead letter keeps the last error its consumer reported and its
receive count, so an engineer can:

- **inspect** the DLQ (what failed, how often, with which error),
- fix the bug and **replay** the messages back to their source queue (fresh, receive count 0),
- **purge** messages that are truly unrecoverable,
- be **alerted** when the DLQ holds more than ``alert_threshold`` messages.

An *ordered* queue (an SQS FIFO queue, one message group) hands out a message only when everything
before it is done. Without a DLQ a poison pill at its head is redelivered forever and nothing behind
it is ever processed: head-of-line blocking, throughput zero.

A consumer that can fail reads like a real handler loop::

    while True:
        delivery = yield queue.receive("A")
        yield sim.timeout(processing_time)
        error = handler(delivery.message)         # None, or the exception text
        if error is None:
            queue.ack(delivery)
        else:
            queue.fail(delivery, error)           # no ack: it comes back after the timeout
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
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
    """A message in a dead letter queue, with what the engineer needs to diagnose it."""

    message_id: str
    body: Any
    receive_count: int
    last_error: str | None
    source: str
    sent_at: float
    dead_lettered_at: float

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
            check.integer("alert_threshold", threshold, minimum=0)
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
        ids = list(self._entries) if message_ids is None else list(message_ids)
        for message_id in ids:
            check.text("message_id", message_id)
            if message_id not in self._entries:
                raise ValueError(
                    f"message_id {message_id!r} is not in DLQ {self.name!r}; it "
                    f"holds {list(self._entries)!r}"
                )
            source = self._sources[message_id]
            if message_id in source.messages:
                raise ValueError(
                    f"message_id {message_id!r} cannot be replayed: queue {source.name!r} "
                    "already holds a message with that id"
                )
        for message_id in ids:
            entry = self._entries.pop(message_id)
            source = self._sources.pop(message_id)
            self.sim.record("dlq_replay", dlq=self.name, message=message_id, queue=source.name)
            source.send(entry.body, message_id=message_id)
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

    def add(self, source: RedriveQueue, message: Message, error: str | None) -> DeadLetter:
        """Take in a message that ``source`` gave up on (called by the source queue)."""
        entry = DeadLetter(
            message.id,
            message.body,
            message.receive_count,
            error,
            source.name,
            message.sent_at,
            self.sim.now,
        )
        self._entries[message.id] = entry
        self._sources[message.id] = source
        self.sim.record(
            "dead_letter",
            queue=source.name,
            dlq=self.name,
            message=message.id,
            receive_count=message.receive_count,
            error=error,
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
    FIFO (ordered) mode.

    Parameters
    ----------
    dead_letter_queue:
        Where to move a message that was received ``max_receives`` times without an ack.
        ``None``: no DLQ, the message is redelivered forever.
    max_receives:
        SQS's ``maxReceiveCount``.
    ordered:
        FIFO: a message is handed out only when nothing is in flight, oldest first, so consumers
        process strictly in send order (SQS FIFO with one message group).
    """

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
        super().__init__(
            sim,
            visibility_timeout=visibility_timeout,
            name=name,
            max_in_flight=1 if ordered else None,  # FIFO: the oldest message, one at a time
        )
        self.ordered = ordered
        self.dead_letter_queue: DeadLetterQueue | None = None
        self.max_receives = 3
        self.set_redrive_policy(dead_letter_queue, max_receives)
        self.last_errors: dict[str, str] = {}
        self.failed_count = 0
        self.dead_lettered_count = 0
        self._freed = sim.event()

    def set_redrive_policy(
        self, dead_letter_queue: DeadLetterQueue | None, max_receives: int
    ) -> None:
        """Set (or with ``None`` remove) the DLQ and the receive limit, for the next time each
        message would become visible again."""
        if dead_letter_queue is not None and not isinstance(dead_letter_queue, DeadLetterQueue):
            raise TypeError(
                "dead_letter_queue must be a DeadLetterQueue or None, got "
                f"{type(dead_letter_queue).__name__}"
            )
        self.max_receives = check.integer("max_receives", max_receives, minimum=1, maximum=1000)
        self.dead_letter_queue = dead_letter_queue

    def fail(self, delivery: Delivery, error: str) -> None:
        """The consumer's processing of ``delivery`` failed with ``error``.

        Nothing is acked: the message stays in flight until its visibility timeout expires and then
        comes back - or, if it has used up ``max_receives``, goes to the DLQ with this error.
        """
        if not isinstance(delivery, Delivery):
            raise TypeError(f"delivery must be a Delivery, got {type(delivery).__name__}")
        check.text("error", error)
        self.failed_count += 1
        self.last_errors[delivery.message.id] = error
        self.sim.record(
            "processing_failed",
            queue=self.name,
            message=delivery.message.id,
            consumer=delivery.consumer,
            receive_count=delivery.receive_count,
            error=error,
        )

    def ack(self, delivery: Delivery) -> bool:
        accepted = super().ack(delivery)
        if accepted:
            self.last_errors.pop(delivery.message.id, None)
            self._wake_freed()
        return accepted

    def space_freed(self) -> simpy.Event:
        """An event that fires the next time a message leaves the queue (acked or dead-lettered),
        for a producer blocked by a bound on the depth."""
        return self._freed

    def _wake_freed(self) -> None:
        event, self._freed = self._freed, self.sim.event()
        event.succeed()

    # -- hooks into WorkQueue ------------------------------------------------------------------
    def _before_visible(self, message: Message) -> bool:
        dlq = self.dead_letter_queue
        if dlq is not None and message.receive_count >= self.max_receives:
            del self.messages[message.id]  # it now lives in the DLQ; replay may send it back
            self.dead_lettered_count += 1
            dlq.add(self, message, self.last_errors.pop(message.id, None))
            self._wake_freed()
            return False
        return True


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

    ``handler`` takes the message and returns ``None`` (success) or an error text.
    """

    def __init__(
        self,
        sim: Simulation,
        queue: WorkQueue,
        name: str,
        *,
        handler: Callable[[Message], str | None] | None = None,
        processing_time: float = 1.0,
        start: bool = True,
    ) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable or None, got {type(handler).__name__}")
        self.handler = PoisonHandler() if handler is None else handler
        self.failed = 0
        super().__init__(sim, queue, name, processing_time=processing_time, start=start)

    def finish(self, delivery: Delivery) -> None:
        """Run the handler on the processed message: on success count it and ack it like any
        consumer; on failure report the error to the queue and do not ack, so the message comes
        back after the visibility timeout (or goes to the DLQ once it has used up its receives)."""
        error = self.handler(delivery.message)
        if error is None:
            super().finish(delivery)
        else:
            self.failed += 1
            if isinstance(self.queue, RedriveQueue):
                self.queue.fail(delivery, error)
