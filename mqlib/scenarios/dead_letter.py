"""Chapter 6's scenario: a poison pill in a stream of good messages, with or without a DLQ.

:class:`DeadLetterRun` is what the chapter's widget drives: start/stop the producer, inject a
poison pill, change ``max_receives``, turn the DLQ on or off, fix the bug, replay, purge, set the
alert threshold, advance time. Everything it shows - attempts per message, the DLQ's contents with
error and receive count, alerts - is readable as plain data.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Generator, Mapping
from types import MappingProxyType
from typing import Any

import simpy

from .. import _validate as check
from ..core import Simulation
from ..models.dlq import DeadLetterQueue, HandlerConsumer, PoisonHandler, RedriveQueue
from ._sampled import SampledRun

__all__ = ["DeadLetterRun", "PoisonPillRun", "SteadyProducer", "default_run"]

CONSUMER_NAMES = "ABCDEFGHIJ"
#: The fastest producer, in messages per simulated second.
MAX_RATE = 100.0


class SteadyProducer:
    """Sends ``rate`` messages per second to a :class:`~mqlib.models.dlq.RedriveQueue`.

    With ``capacity`` set, the producer blocks while the queue holds that many messages (a bounded
    queue: backpressure) and sends again as soon as one leaves. ``rate=0`` pauses it. With
    ``groups`` above 1 it deals its messages to the message groups ``g1``, ``g2``, ... in turn
    (on a FIFO queue: one ``MessageGroupId`` per customer, say).

    Waiting is not free: when room comes back, the producer sends the message it was holding and
    carries on with its own schedule, so the sends that fell due while it waited are never made.
    :attr:`held_back` counts them: demand pushed back upstream, to the producer's callers.
    """

    def __init__(
        self,
        sim: Simulation,
        queue: RedriveQueue,
        *,
        rate: float = 1.0,
        capacity: int | None = None,
        groups: int = 1,
    ) -> None:
        check.simulation("sim", sim)
        if not isinstance(queue, RedriveQueue):
            raise TypeError(f"queue must be a RedriveQueue, got {type(queue).__name__}")
        self.sim = sim
        self.queue = queue
        self.rate = check.number("rate", rate, minimum=0, maximum=MAX_RATE)
        self.groups = check.integer("groups", groups, minimum=1, maximum=100)
        self.capacity: int | None = None
        self.set_capacity(capacity)
        check.same_simulation("queue", queue, sim)
        self.sent = 0
        self.blocked = False
        self._skipped = 0  # sends a late (unblocked) producer never made up
        self._blocked_due = 0.0
        self._last_send: float | None = None
        self._anchor = 0.0
        self._since_anchor = 0
        self._anchor_rate = -1.0
        self._process = sim.process(self.run())

    def set_rate(self, rate: float) -> None:
        """Messages per second, taking effect at once (0 pauses; at most :data:`MAX_RATE`)."""
        self.rate = check.number("rate", rate, minimum=0, maximum=MAX_RATE)
        self._process.interrupt("settings changed")

    def set_capacity(self, capacity: int | None) -> None:
        """Bound the queue's depth at ``capacity`` (the producer blocks), or ``None``: unbounded."""
        if capacity is not None:
            check.integer("capacity", capacity, minimum=1, maximum=1_000_000)
        self.capacity = capacity
        if hasattr(self, "_process"):
            self._process.interrupt("settings changed")

    @property
    def held_back(self) -> int:
        """Sends that fell due while the producer was blocked and were not made: those skipped
        after a wait, and, while it waits now, the ones due since it started waiting."""
        if not self.blocked:
            return self._skipped
        # the one it holds and those due after it, before now (one due exactly now is not late)
        behind = math.ceil(round((self.sim.now - self._blocked_due) * self.rate, 9))
        return self._skipped + max(1, behind)

    def _due_in(self, due: float, now: float) -> int:
        # due times due + k / rate with k >= 1 up to now (rounded: float sums land on the grid)
        return 0 if self.rate == 0 else int((now - due) * self.rate + 1e-9)

    def group_of(self, n: int) -> str | None:
        """The message group of the ``n``-th message (``None``: one group, the queue's default)."""
        check.integer("n", n, minimum=1)
        return None if self.groups == 1 else f"g{(n - 1) % self.groups + 1}"

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Wait one interval, wait for room if the queue is bounded and full, send."""
        due = 0.0
        while True:
            if self.rate == 0:
                wait: simpy.Event = self.sim.event()  # paused: only a new setting wakes us
            else:
                if self.rate != self._anchor_rate and self._last_send is not None:
                    self._anchor, self._since_anchor = self._last_send, 0
                self._anchor_rate = self.rate
                # due times count from an anchor (anchor + n / rate): no drift over long runs
                due = (
                    self.sim.now
                    if self._last_send is None
                    else self._anchor + (self._since_anchor + 1) / self.rate
                )
                if due > self.sim.now:
                    wait = self.sim.timeout(due - self.sim.now)
                elif self.capacity is not None and self.queue.depth >= self.capacity:
                    if not self.blocked:
                        self.sim.record(
                            "producer_blocked", queue=self.queue.name, depth=self.queue.depth
                        )
                        self._blocked_due = due
                    self.blocked = True
                    wait = self.queue.space_freed()
                else:
                    was_blocked, self.blocked = self.blocked, False
                    self.sent += 1
                    self.queue.send({"poison": False}, group=self.group_of(self.sent))
                    if was_blocked and self._last_send is not None:
                        # back on the schedule it kept while blocked: the sends that fell due in
                        # the wait are held back, not made up in a burst
                        missed = self._due_in(due, self.sim.now)
                        self._skipped += missed
                        self._since_anchor += missed + 1
                    elif self.sim.now > due or self._last_send is None:  # late: re-anchor
                        self._anchor, self._since_anchor = self.sim.now, 0
                    else:
                        self._since_anchor += 1
                    self._last_send = self.sim.now
                    continue
            with contextlib.suppress(simpy.Interrupt):  # a new setting: look again
                yield wait


#: How many messages :meth:`DeadLetterRun.attempt_history` keeps, the newest by first send.
ATTEMPT_HISTORY_LIMIT = 5_000


class _AttemptLedger:
    """Failed and successful processings per message, counted as the events are recorded
    (:meth:`Simulation.watch <mqlib.core.Simulation.watch>`), for the newest
    :data:`ATTEMPT_HISTORY_LIMIT` messages: a view reads it on every click without going
    through the trace, and the counts do not depend on how much of the trace is still kept."""

    __slots__ = ("order", "failed", "succeeded", "_seen")

    def __init__(self) -> None:
        # message -> a sort key, increasing in the order the messages were first seen (an
        # OrderedDict: forgetting the oldest is popitem(last=False), O(1) however many went)
        self.order: OrderedDict[str, int] = OrderedDict()
        self.failed: dict[str, int] = {}
        self.succeeded: dict[str, int] = {}
        self._seen = 0

    def note(self, kind: str, data: dict[str, Any]) -> None:
        message = data["message"]
        order = self.order
        if message not in order:
            order[message] = self._seen
            self._seen += 1
            if len(order) > ATTEMPT_HISTORY_LIMIT:  # forget the oldest
                oldest, _key = order.popitem(last=False)
                self.failed.pop(oldest, None)
                self.succeeded.pop(oldest, None)
        if kind == "processing_failed":
            self.failed[message] = self.failed.get(message, 0) + 1
        elif kind == "processed":
            self.succeeded[message] = self.succeeded.get(message, 0) + 1


class PoisonPillRun(SampledRun):
    """What the runs with poison pills share (this chapter's and the playground's): a
    :class:`SteadyProducer`, a :class:`~mqlib.models.dlq.RedriveQueue` with its DLQ, and competing
    :class:`~mqlib.models.dlq.HandlerConsumer` s that share one
    :class:`~mqlib.models.dlq.PoisonHandler` - so that :meth:`fix_bug` fixes all of them at once,
    like one deployment.

    A subclass validates its own settings, sets ``self.sample_every``, calls :meth:`_build` and
    then :meth:`_start_sampling`; the buttons below work on what :meth:`_build` made.
    """

    def _build(
        self,
        *,
        seed: int,
        name: str,
        consumers: tuple[str, ...] | str,
        processing_time: float,
        visibility_timeout: float,
        max_receives: int,
        dlq: bool,
        rate: float,
        capacity: int | None = None,
        ordered: bool = False,
        alert_threshold: int | None = None,
        groups: int = 1,
        write_error: bool = True,
    ) -> None:
        """Build the simulation: queue ``name`` with its DLQ ``<name>-dlq`` (attached if ``dlq``),
        one consumer per name in ``consumers``, and the producer (bounded by ``capacity``)."""
        self.sim = Simulation(seed=seed)
        self.dlq = DeadLetterQueue(self.sim, name=f"{name}-dlq", alert_threshold=alert_threshold)
        self.queue = RedriveQueue(
            self.sim,
            visibility_timeout=visibility_timeout,
            name=name,
            dead_letter_queue=self.dlq if dlq else None,
            max_receives=max_receives,
            ordered=ordered,
        )
        self.handler = PoisonHandler()
        self.consumers = {
            n: HandlerConsumer(
                self.sim,
                self.queue,
                n,
                handler=self.handler,
                processing_time=processing_time,
                write_error=write_error,
            )
            for n in consumers
        }
        self.producer = SteadyProducer(
            self.sim, self.queue, rate=rate, capacity=capacity, groups=groups
        )
        self.poison_ids: list[str] = []

    # -- actions (the widgets' buttons) ---------------------------------------------------------
    def set_rate(self, rate: float) -> None:
        """Good messages per second from the producer (0 pauses it)."""
        self.producer.set_rate(rate)
        self._settle()

    def inject_poison(self, group: str | None = None) -> str:
        """Send one poison pill now, straight to the queue (past the producer, and so past any
        bound on the queue); returns its id. On a FIFO queue it joins message group ``group``
        (default: the producer's first group)."""
        if group is None:
            group = self.producer.group_of(1)
        message = self.queue.send({"poison": True}, group=group)
        self.poison_ids.append(message.id)
        self.sim.record("inject_poison", message=message.id)
        self._settle()
        return message.id

    def set_max_receives(self, max_receives: int) -> None:
        """Receives before a message is dead-lettered."""
        self.queue.set_redrive_policy(self.queue.dead_letter_queue, max_receives)

    def set_dlq(self, enabled: bool) -> None:
        """Attach or detach the DLQ (without it, failures are retried forever)."""
        check.boolean("enabled", enabled)
        self.queue.set_redrive_policy(self.dlq if enabled else None, self.queue.max_receives)

    def fix_bug(self) -> None:
        """Deploy the fix: poison pills are processed normally from now on."""
        self.handler.fix_bug()
        self.sim.record("bug_fixed")

    def replay(self) -> list[str]:
        """Send every dead letter back to the queue; returns their ids."""
        ids = self.dlq.replay()
        self._settle()
        return ids


class DeadLetterRun(PoisonPillRun):
    """A producer, a queue with a redrive policy, its DLQ and competing consumers whose handler
    fails on poison pills until the bug is fixed.

    Its :attr:`series` over ``time``: the queue's ``depth``, the DLQ's ``dlq_depth``, the totals
    ``processed`` and ``failed`` (attempts), and ``throughput``: messages processed per second
    since the previous sample.

    Parameters
    ----------
    rate:
        Good messages per second from the producer (0: only what you :meth:`send`).
    consumers:
        Number of competing consumers.
    processing_time:
        Seconds each consumer needs per message.
    visibility_timeout:
        Seconds before an un-acked (failed) message comes back.
    max_receives:
        Receives before a message goes to the DLQ.
    dlq:
        Whether the queue has a DLQ at all.
    ordered:
        FIFO queue: within each message group strictly one message at a time, in send order.
    groups:
        Message groups the producer deals its messages to (FIFO only; 1: one group, so a pill
        holds up everything).
    write_error:
        Whether the consumers write the handler's error into a failed message's attributes (the
        only way the error reaches the DLQ: the broker never knows it).
    alert_threshold:
        Alert when the DLQ holds more than this many messages (``None``: no alerting).
    sample_every:
        Seconds between the points of :attr:`series`.
    """

    SERIES = ("depth", "dlq_depth", "processed", "failed", "throughput")
    SERIES_PEAKS = ("depth", "dlq_depth")
    SERIES_RATES = ("throughput",)

    def __init__(
        self,
        *,
        rate: float = 2.0,
        consumers: int = 2,
        processing_time: float = 0.5,
        visibility_timeout: float = 2.0,
        max_receives: int = 3,
        dlq: bool = True,
        ordered: bool = False,
        groups: int = 1,
        write_error: bool = True,
        alert_threshold: int | None = 0,
        sample_every: float = 0.5,
        seed: int = 0,
    ) -> None:
        check.integer("consumers", consumers, minimum=1, maximum=len(CONSUMER_NAMES))
        check.boolean("dlq", dlq)
        self.sample_every = check.number("sample_every", sample_every, minimum=0.05, maximum=60.0)
        self._build(
            seed=seed,
            name="orders",
            consumers=CONSUMER_NAMES[:consumers],
            processing_time=processing_time,
            visibility_timeout=visibility_timeout,
            max_receives=max_receives,
            dlq=dlq,
            rate=rate,
            ordered=ordered,
            alert_threshold=alert_threshold,
            groups=groups,
            write_error=write_error,
        )
        # before the first event (the processes start when time first passes)
        self._attempts = _AttemptLedger()
        self.sim.watch(("send", "processing_failed", "processed"), self._attempts.note)
        self._start_sampling()

    # -- actions (the widget's buttons; more in PoisonPillRun) -----------------------------------
    def start(self, rate: float = 2.0) -> None:
        """Start the producer at ``rate`` messages per second."""
        check.positive("rate", rate)
        self.set_rate(rate)

    def stop(self) -> None:
        """Stop the producer."""
        self.set_rate(0)

    def send(self, count: int = 1) -> list[str]:
        """Send ``count`` good messages now; returns their ids."""
        check.integer("count", count, minimum=1, maximum=10_000)
        ids = [self.queue.send({"poison": False}).id for _ in range(count)]
        self._settle()
        return ids

    def set_alert_threshold(self, threshold: int | None) -> None:
        """Alert when the DLQ holds more than ``threshold`` messages."""
        self.dlq.set_alert_threshold(threshold)

    def purge(self) -> int:
        """Delete every dead letter; returns how many."""
        count = self.dlq.purge()
        self._settle()
        return count

    # -- state ---------------------------------------------------------------------------------
    @property
    def processed(self) -> int:
        """Messages processed successfully (acked)."""
        return self.queue.acked_count

    def inspect_dlq(self) -> list[dict[str, Any]]:
        """The DLQ's contents: id, body, receive count, the error (if a consumer wrote it), source,
        times, message group and attributes."""
        return self.dlq.inspect()

    def attempts(self) -> dict[str, int]:
        """Receives so far of every message, by id: those in the queue or processed, and those in
        the DLQ (with the count they reached before they were moved)."""
        counts = {m.id: m.receive_count for m in self.queue.messages.values()}
        counts.update({e["message_id"]: e["receive_count"] for e in self.dlq.inspect()})
        return counts

    def attempt_history(self) -> list[dict[str, Any]]:
        """Every message in the order it was first sent, with how many of its processings failed
        and how many succeeded over all its trips through the queue (a message replayed from the
        DLQ keeps its id, so its earlier failures still count). Counted as the events happen,
        for the newest :data:`ATTEMPT_HISTORY_LIMIT` messages: after a long run, the oldest are
        forgotten (one that is processed again later comes back as a new row)."""
        order, failed, succeeded = self.attempt_counts()
        return [
            {"message": m, "failed": failed.get(m, 0), "succeeded": succeeded.get(m, 0)}
            for m in order
        ]

    def attempt_counts(self) -> tuple[Mapping[str, int], Mapping[str, int], Mapping[str, int]]:
        """What :meth:`attempt_history` is made of, for a view that needs only some rows, as
        read-only mappings (no copy: this is read on every redraw): every message with a sort
        key that increases in the order the messages were first sent (the mapping's own order
        too), and the failed and the successful processings of the messages that have any."""
        ledger = self._attempts
        return (
            MappingProxyType(ledger.order),
            MappingProxyType(ledger.failed),
            MappingProxyType(ledger.succeeded),
        )

    def processed_by_group(self) -> dict[str, int]:
        """FIFO: messages processed per message group (a standard queue has none)."""
        groups = self.queue.groups
        counts = dict.fromkeys(sorted(set(groups.values())), 0)
        for message_id in self.processed_ids():
            counts[groups[message_id]] += 1
        return counts

    def processed_ids(self) -> list[str]:
        """Ids of successfully processed messages, in the order they were processed."""
        return [e.data["message"] for e in self.sim.trace.of_kind("processed")]

    def state(self) -> dict[str, Any]:
        """Counters as plain data."""
        return {
            "time": self.now,
            "sent": self.queue.sent_count,
            "processed": self.processed,
            "failed": self.queue.failed_count,
            "depth": self.queue.depth,
            "in_flight": self.queue.in_flight_count,
            "dlq_depth": self.dlq.depth,
            "dead_lettered": self.queue.dead_lettered_count,
            "alerts": len(self.dlq.alerts),
            "alerting": self.dlq.alerting,
            "bug_fixed": self.handler.bug_fixed,
            "dlq": self.queue.dead_letter_queue is not None,
            "max_receives": self.queue.max_receives,
            "ordered": self.queue.ordered,
        }

    def summary(self) -> str:
        """One line describing the state of the run."""
        s = self.state()
        dlq = f"DLQ {s['dlq_depth']} (max receives {s['max_receives']})" if s["dlq"] else "no DLQ"
        return (
            f"t={s['time']:g}s{' [FIFO]' if s['ordered'] else ''}: sent {s['sent']}, "
            f"processed {s['processed']}, failed attempts {s['failed']}, waiting "
            f"{s['depth']}; {dlq}; alerts {s['alerts']}"
            f"{' (ALERTING)' if s['alerting'] else ''}; "
            f"bug {'fixed' if s['bug_fixed'] else 'present'}"
        )

    # -- internals -----------------------------------------------------------------------------
    def _measure(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "depth": self.queue.depth,
            "dlq_depth": self.dlq.depth,
            "processed": self.processed,
            "failed": self.queue.failed_count,
            "throughput": self._rate(self.processed, previous, "processed"),
        }


def default_run() -> DeadLetterRun:
    """The chapter's opening picture: good messages at 2/s into two consumers; a poison pill at
    t=3 s fails three times, goes to the DLQ (and raises an alert) while the rest keep flowing; at
    t=14 s the bug is fixed and the DLQ replayed, and the pill is processed."""
    run = DeadLetterRun()
    run.advance(3)
    run.inject_poison()
    run.advance(11)
    run.fix_bug()
    run.replay()
    run.advance(6)
    return run
