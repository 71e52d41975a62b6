"""A simulated worker that pulls from a :class:`~mqlib.models.work_queue.WorkQueue`.

Its :meth:`Consumer.run` loop is the loop of a real SQS or RabbitMQ worker: receive, process, ack.
It can be crashed mid-message (the process is interrupted before it acks, exactly like a worker
killed by the OOM killer) and restarted. With ``heartbeat`` set it also tells the queue, every
``heartbeat`` seconds of work, that it is still busy (:meth:`WorkQueue.extend_visibility
<mqlib.models.work_queue.WorkQueue.extend_visibility>`: SQS ``ChangeMessageVisibility``,
JetStream ``msg.in_progress()``), so a slow message is not handed to a second worker.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from .work_queue import Delivery, WorkQueue

#: Bounds on a consumer's processing time and heartbeat period, in simulated seconds: at least a
#: millisecond (so a run cannot fill a second of computing with events of one instant), at most
#: a day.
MIN_SECONDS = 0.001
MAX_SECONDS = 86_400.0


class Consumer:
    """A competing consumer with a fixed ``processing_time`` (seconds per message).

    Attributes
    ----------
    processed:
        Messages this consumer finished processing (whether or not its ack was accepted).
    acked:
        Messages whose ack the queue accepted.
    current:
        The delivery being processed right now, or ``None`` when idle or crashed.

    ``heartbeat`` (seconds, ``None`` for none) is how often the consumer extends its message's
    visibility while it works; choose it well below the queue's visibility timeout.
    """

    def __init__(
        self,
        sim: Simulation,
        queue: WorkQueue,
        name: str,
        *,
        processing_time: float = 1.0,
        heartbeat: float | None = None,
        start: bool = True,
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        if not isinstance(queue, WorkQueue):
            raise TypeError(f"queue must be a WorkQueue, got {type(queue).__name__}")
        self.sim = sim
        self.queue = queue
        self.name = check.text("name", name)
        check.positive("processing_time", processing_time)
        self.processing_time = check.number(
            "processing_time", processing_time, minimum=MIN_SECONDS, maximum=MAX_SECONDS
        )
        self.heartbeat = (
            None
            if heartbeat is None
            else check.number(
                "heartbeat",
                check.positive("heartbeat", heartbeat),
                minimum=MIN_SECONDS,
                maximum=MAX_SECONDS,
            )
        )
        check.boolean("start", start)
        check.same_simulation("queue", queue, sim)
        self.processed = 0
        self.acked = 0
        self.crashes = 0
        self.current: Delivery | None = None
        self._process: simpy.Process | None = None
        self._running = False
        self._started = False  # has the current process begun executing its loop?
        if start:
            self.start()

    @property
    def alive(self) -> bool:
        """True from :meth:`start` until :meth:`crash`."""
        return self._running

    def start(self) -> None:
        """Start (or restart after a crash) the consumer loop."""
        if self._running:
            raise ValueError(f"consumer {self.name!r} is already running")
        self._running = True
        self._started = False
        self._process = self.sim.process(self.run())
        self.sim.record("consumer_start", consumer=self.name)

    def crash(self) -> Delivery | None:
        """Kill the consumer now. A message it was processing stays in flight, un-acked.

        Returns the delivery it dropped, if any.
        """
        if not self.alive:
            raise ValueError(f"consumer {self.name!r} is not running, so it cannot crash")
        dropped = self.current
        self._running = False
        if self._started:
            assert self._process is not None
            self._process.interrupt("crash")
        else:  # crashed before its loop ever ran: the loop will see _running is False and exit
            self.crashes += 1
            self.sim.record("crash", consumer=self.name, message=None)
        return dropped

    def set_processing_time(self, seconds: float) -> None:
        """Change how long each message takes, from the next message on."""
        check.positive("processing_time", seconds)
        self.processing_time = check.number(
            "processing_time", seconds, minimum=MIN_SECONDS, maximum=MAX_SECONDS
        )

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The consumer loop: receive, process, :meth:`finish`; forever, until crashed."""
        if not self._running:
            return
        if self._process is not None and self.sim.env.active_process is not self._process:
            return  # a loop started before a crash-and-restart at one instant: the newer one runs
        self._started = True
        request = None
        try:
            while True:
                request = self.queue._request(self.name)
                delivery = yield request
                request = None
                self.current = delivery
                yield from self._work(delivery)
                self.finish(delivery)
                self.current = None
        except simpy.Interrupt:
            if request is not None:
                self.queue.cancel_receive(request)
            self.crashes += 1
            self.sim.record(
                "crash",
                consumer=self.name,
                message=self.current.message.id if self.current else None,
            )
            self.current = None

    def _work(self, delivery: Delivery) -> Generator[simpy.Event, Any, None]:
        # Spend processing_time on the message, sending a heartbeat every `heartbeat` seconds.
        if self.heartbeat is None:
            yield self.sim._timer(self.processing_time)
            return
        done_at = self.sim.now + self.processing_time
        while self.heartbeat is not None and done_at - self.sim.now > self.heartbeat:
            yield self.sim.timeout(self.heartbeat)
            self.queue.extend_visibility(delivery)
        yield self.sim.timeout(max(0.0, done_at - self.sim.now))

    def finish(self, delivery: Delivery) -> None:
        """What the consumer does once it has spent ``processing_time`` on ``delivery``: count it
        as processed and ack it, which deletes the message from the queue.

        This is the one step in which consumers differ - one whose handler can fail acks only on
        success (:class:`~mqlib.models.dlq.HandlerConsumer`) - so a subclass overrides this method
        and inherits :meth:`run`, crash handling included. It runs between two ``yield``
        statements of the loop, so a crash never lands in the middle of it.
        """
        self.queue._check_delivery(delivery)
        self.processed += 1
        self.sim.record("processed", consumer=self.name, message=delivery.message.id)
        if self.queue.ack(delivery):
            self.acked += 1
