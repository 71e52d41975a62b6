"""Chapter 1's scenario: a producer, a work queue and three competing consumers of different speeds.

:class:`PointToPointRun` is what the chapter's widget drives and what its tests script: every button
is a method (:meth:`~PointToPointRun.send`, :meth:`~PointToPointRun.crash_consumer`,
:meth:`~PointToPointRun.advance`, ...), and the chart reads :attr:`~PointToPointRun.series`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.consumer import Consumer
from ..models.work_queue import WorkQueue
from ._sampled import SampledRun

#: Seconds each default consumer needs per message: a fast, a medium and a slow worker.
DEFAULT_PROCESSING_TIMES: dict[str, float] = {"A": 1.0, "B": 1.5, "C": 2.5}


class PointToPointRun(SampledRun):
    """A live work-queue run that advances in simulated seconds.

    Its :attr:`series` are ``visible`` (messages waiting) and ``in_flight`` (received, not yet
    acked) over ``time``.

    Parameters
    ----------
    processing_times:
        Consumer name -> seconds per message. At least one consumer.
    visibility_timeout:
        Seconds before an un-acked message is handed out again.
    heartbeat:
        Seconds between the consumers' heartbeats while they work (``None``: no heartbeat), see
        :meth:`~mqlib.models.work_queue.WorkQueue.extend_visibility`.
    sample_every:
        Seconds between the samples of queue depth kept in :attr:`series` (0.05 to 60).
    seed:
        Seeds the simulation (this scenario draws no random numbers yet, but the seed is recorded so
        that traces are comparable).
    """

    SERIES = ("visible", "in_flight")
    SERIES_PEAKS = ("visible", "in_flight")

    def __init__(
        self,
        processing_times: Mapping[str, float] | None = None,
        *,
        visibility_timeout: float = 5.0,
        heartbeat: float | None = None,
        sample_every: float = 0.25,
        seed: int = 0,
    ) -> None:
        if processing_times is not None and not isinstance(processing_times, Mapping):
            raise TypeError(
                "processing_times must be a mapping of consumer name to seconds per message, got "
                f"{processing_times!r} ({type(processing_times).__name__})"
            )
        times = dict(DEFAULT_PROCESSING_TIMES if processing_times is None else processing_times)
        if not times:
            raise ValueError("processing_times must name at least one consumer, got {}")
        self.sim = Simulation(seed=seed)
        self.queue = WorkQueue(self.sim, visibility_timeout=visibility_timeout, name="work")
        self.consumers = {
            name: Consumer(self.sim, self.queue, name, processing_time=t, heartbeat=heartbeat)
            for name, t in times.items()
        }
        self.sample_every = check.number("sample_every", sample_every, minimum=0.05, maximum=60.0)
        self._start_sampling()

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def send(self, count: int = 1) -> None:
        """The producer sends ``count`` messages now."""
        check.integer("count", count, minimum=1, maximum=10_000)
        for _ in range(count):
            self.queue.send()
        self._settle()  # idle consumers pick up their messages at this same instant

    def crash_consumer(self, name: str) -> str | None:
        """Kill consumer ``name`` now; returns the id of the message it dropped mid-processing."""
        dropped = self._consumer(name).crash()
        self._settle()  # let the interrupt land before anyone looks at the state
        return dropped.message.id if dropped else None

    def restart_consumer(self, name: str) -> None:
        """Bring a crashed consumer back."""
        self._consumer(name).start()
        self._settle()

    def set_processing_time(self, name: str, seconds: float) -> None:
        """Seconds consumer ``name`` needs per message, from its next message on."""
        self._consumer(name).set_processing_time(seconds)

    def set_visibility_timeout(self, seconds: float) -> None:
        """Visibility timeout for messages received from now on."""
        self.queue.set_visibility_timeout(seconds)

    def run_until_empty(self, limit: float = 3600.0) -> float:
        """Advance until every message is acked; return the time of the last ack.

        Raises ``RuntimeError`` if the queue is not empty after ``limit`` more seconds (for example
        when every consumer has crashed).
        """
        check.positive("limit", limit)
        check.number("limit", limit, maximum=86_400.0)
        deadline = self.now + limit
        if self.queue.depth and not any(c.alive for c in self.consumers.values()):
            raise RuntimeError(
                f"queue still holds {self.queue.depth} messages and no consumer reads it: are all "
                "consumers crashed? Restart one (restart_consumer) first"
            )
        while self.queue.depth:
            if self.now >= deadline:
                raise RuntimeError(
                    f"queue still holds {self.queue.depth} messages after "
                    f"{limit:g} s; are all consumers crashed?"
                )
            self.advance(min(self.sample_every, deadline - self.now))
        acks = self.sim.trace.of_kind("ack")
        return acks[-1].time if acks else self.now

    # -- state ---------------------------------------------------------------------------------
    def processed_by(self) -> dict[str, int]:
        """Messages each consumer has processed (including a redelivered one processed twice)."""
        return {name: c.processed for name, c in self.consumers.items()}

    def redeliveries(self) -> list[dict[str, Any]]:
        """Each message that was received more than once: who dropped it and who got it next."""
        return [
            e.as_dict() for e in self.sim.trace.of_kind("receive") if e.data["receive_count"] > 1
        ]

    def summary(self) -> str:
        """One line describing the state of the run."""
        per = ", ".join(
            f"{n} {c}" + ("" if self.consumers[n].alive else " (crashed)")
            for n, c in self.processed_by().items()
        )
        sent = self.queue.sent_count
        redelivered = len(self.redeliveries())
        late = self.queue.late_ack_count
        return (
            f"t={self.now:g}s: sent {sent}, waiting {self.queue.visible_count}, "
            f"in flight {self.queue.in_flight_count}, acked {self.queue.acked_count}"
            + (f" ({late} late)" if late else "")
            + f"; processed by {per}; redelivered {redelivered}"
        )

    # -- internals -----------------------------------------------------------------------------
    def _consumer(self, name: str) -> Consumer:
        check.choice("consumer", name, self.consumers)
        return self.consumers[name]

    def _measure(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"visible": self.queue.visible_count, "in_flight": self.queue.in_flight_count}


def default_run() -> PointToPointRun:
    """The chapter's opening picture: a burst of 12 messages, B crashes mid-message at t=2 s,
    and 20 s pass. B's message becomes visible again 5 s after B received it and A processes it."""
    run = PointToPointRun()
    run.send(12)
    run.advance(2.0)
    run.crash_consumer("B")
    run.advance(18.0)
    return run
