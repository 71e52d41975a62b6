"""Chapter 8's playground: a producer, a broker queue and three consumers, with everything at once.

Turn the producer's rate up and down, kill and revive consumers, inject poison pills, switch the
DLQ and backpressure (a bounded queue that blocks the producer) on and off - and watch depth,
throughput and the DLQ. :class:`Playground` is the live run a widget drives; the lesson's four
experiments are scripted as functions that return their outcome as plain data:

1. :func:`experiment_normal_flow` - 5 msg/s into three consumers: everything is processed and the
   queue stays nearly empty.
2. :func:`experiment_kill_consumer` - one consumer dies mid-message: the other two take over its
   work (including the message it dropped), throughput drops, nothing is lost.
3. :func:`experiment_poison_pill` - a poison pill fails ``max_receives`` times and goes to the
   DLQ while the other messages keep flowing.
4. :func:`experiment_overload` - 15 msg/s into one live consumer: the queue grows without limit,
   unless backpressure is on, when it never holds more than its capacity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _validate as check
from ..models.dlq import HandlerConsumer
from .dead_letter import PoisonPillRun

__all__ = [
    "Playground",
    "default_run",
    "experiment_kill_consumer",
    "experiment_normal_flow",
    "experiment_overload",
    "experiment_poison_pill",
    "run_experiments",
]

CONSUMER_NAMES = ("A", "B", "C")


class Playground(PoisonPillRun):
    """Producer -> broker queue (with DLQ and optional bound) -> three competing consumers.

    Its :attr:`series` over ``time``: the queue's ``depth`` and ``in_flight`` messages, the DLQ's
    ``dlq_depth``, the totals ``sent`` and ``processed``, and per second since the previous
    sample, ``throughput`` (processed) and ``producer_rate`` (sent).

    Parameters
    ----------
    rate:
        Messages per second from the producer (0 pauses it).
    processing_time:
        Seconds each consumer needs per message (0.5 s: 2 msg/s each, 6 msg/s for three).
    visibility_timeout:
        Seconds before an un-acked message (its consumer died or failed) is handed out again.
    max_receives:
        Receives before a message goes to the DLQ.
    dlq:
        Whether the queue has a DLQ.
    backpressure:
        Whether the queue is bounded at ``capacity`` messages, blocking the producer when full.
    capacity:
        The bound used while backpressure is on.
    sample_every:
        Seconds between the points of :attr:`series`.
    """

    SERIES = (
        "depth",
        "in_flight",
        "dlq_depth",
        "sent",
        "processed",
        "throughput",
        "producer_rate",
    )

    def __init__(
        self,
        *,
        rate: float = 5.0,
        processing_time: float = 0.5,
        visibility_timeout: float = 2.0,
        max_receives: int = 3,
        dlq: bool = True,
        backpressure: bool = False,
        capacity: int = 20,
        sample_every: float = 0.5,
        seed: int = 0,
    ) -> None:
        check.boolean("dlq", dlq)
        check.boolean("backpressure", backpressure)
        self.capacity = check.integer("capacity", capacity, minimum=1)
        self.sample_every = check.positive("sample_every", sample_every)
        self._build(
            seed=seed,
            name="broker",
            consumers=CONSUMER_NAMES,
            processing_time=processing_time,
            visibility_timeout=visibility_timeout,
            max_receives=max_receives,
            dlq=dlq,
            rate=rate,
            capacity=capacity if backpressure else None,
        )
        self.max_depth = 0
        self._start_sampling()

    # -- actions (the widget's buttons; more in PoisonPillRun) -----------------------------------
    def kill_consumer(self, name: str) -> str | None:
        """Kill consumer ``name`` now; returns the id of the message it dropped, if any. That
        message comes back after the visibility timeout and another consumer takes it."""
        dropped = self._consumer(name).crash()
        self._settle()
        return dropped.message.id if dropped else None

    def revive_consumer(self, name: str) -> None:
        """Bring a killed consumer back."""
        self._consumer(name).start()
        self._settle()

    def set_backpressure(self, enabled: bool, capacity: int | None = None) -> None:
        """Bound the queue at ``capacity`` (default: the current one) so that a full queue blocks
        the producer, or remove the bound."""
        check.boolean("enabled", enabled)
        if capacity is not None:
            self.capacity = check.integer("capacity", capacity, minimum=1)
        self.producer.set_capacity(self.capacity if enabled else None)
        self.sim.record("backpressure", enabled=enabled, capacity=self.capacity)
        self._settle()

    def replay_dlq(self) -> list[str]:
        """Send every dead letter back to the queue (the same as :meth:`replay`)."""
        return self.replay()

    def drain(self, limit: float = 3600.0) -> float:
        """Stop the producer and advance until the queue is empty; returns the time it took.

        Raises ``RuntimeError`` if it is not empty after ``limit`` seconds (every consumer dead, or
        a poison pill retried forever with no DLQ).
        """
        check.positive("limit", limit)
        self.set_rate(0)
        start = self.now
        while self.queue.depth:
            if self.now - start >= limit:
                raise RuntimeError(
                    f"queue still holds {self.queue.depth} messages after "
                    f"{limit:g} s; are all consumers dead, or a poison pill stuck "
                    "with no DLQ?"
                )
            self.advance(self.sample_every)
        return self.now - start

    # -- state ---------------------------------------------------------------------------------
    @property
    def alive(self) -> list[str]:
        """Names of the consumers that are running."""
        return [n for n, c in self.consumers.items() if c.alive]

    def state(self) -> dict[str, Any]:
        """Counters and settings as plain data."""
        return {
            "time": self.now,
            "rate": self.producer.rate,
            "sent": self.producer.sent,
            "injected": len(self.poison_ids),
            "processed": self.queue.acked_count,
            "depth": self.queue.depth,
            "in_flight": self.queue.in_flight_count,
            "max_depth": self.max_depth,
            "dlq_depth": self.dlq.depth,
            "dlq": self.queue.dead_letter_queue is not None,
            "backpressure": self.producer.capacity is not None,
            "capacity": self.capacity,
            "producer_blocked": self.producer.blocked,
            "held_back": self.producer.held_back,
            "alive": self.alive,
            "processed_by": {n: c.processed for n, c in self.consumers.items()},
            "failed": self.queue.failed_count,
        }

    def summary(self) -> str:
        """One line describing the state of the run."""
        s = self.state()
        consumers = ", ".join(
            f"{n} {c}" + ("" if n in s["alive"] else " (dead)")
            for n, c in s["processed_by"].items()
        )
        bp = f"backpressure on (cap {s['capacity']})" if s["backpressure"] else "backpressure off"
        if s["held_back"]:
            bp += f", {s['held_back']} held back"
        return (
            f"t={s['time']:g}s: rate {s['rate']:g}/s"
            f"{' BLOCKED' if s['producer_blocked'] else ''}, sent {s['sent']}, processed "
            f"{s['processed']}, depth {s['depth']} (max {s['max_depth']}), DLQ "
            f"{s['dlq_depth'] if s['dlq'] else 'off'}; {bp}; processed by {consumers}"
        )

    # -- internals -----------------------------------------------------------------------------
    def _consumer(self, name: str) -> HandlerConsumer:
        check.choice("consumer", name, self.consumers)
        return self.consumers[name]

    def _measure(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        depth = self.queue.depth
        # every sample, including one replaced later at the same instant, counts for the maximum
        self.max_depth = max(self.max_depth, depth)
        processed, sent = self.queue.acked_count, self.producer.sent
        return {
            "depth": depth,
            "in_flight": self.queue.in_flight_count,
            "dlq_depth": self.dlq.depth,
            "sent": sent,
            "processed": processed,
            "throughput": self._rate(processed, previous, "processed"),
            "producer_rate": self._rate(sent, previous, "sent"),
        }


# ------------------------------------------------------------------------------------------------
# The lesson's four experiments
# ------------------------------------------------------------------------------------------------
def _rate(run: Playground, start: float, end: float) -> float:
    """Acks per second between two sample times of ``run``."""
    s = run.series
    i, j = s["time"].index(start), s["time"].index(end)
    return (s["processed"][j] - s["processed"][i]) / (end - start)


def experiment_normal_flow(seconds: float = 30.0, seed: int = 0) -> dict[str, Any]:
    """Experiment 1: 5 msg/s into three healthy consumers for ``seconds``, then drain."""
    check.positive("seconds", seconds)
    run = Playground(rate=5.0, seed=seed)
    run.advance(seconds)
    depth_while_running = max(run.series["depth"])
    run.drain()
    s = run.state()
    return {
        "sent": s["sent"],
        "processed": s["processed"],
        "lost": s["sent"] - s["processed"],
        "max_depth": depth_while_running,
        "throughput": _rate(run, 0.0, seconds),
        "processed_by": s["processed_by"],
        "summary": run.summary(),
    }


def experiment_kill_consumer(
    kill_at: float = 10.0, seconds: float = 30.0, consumer: str = "B", seed: int = 0
) -> dict[str, Any]:
    """Experiment 2: 5 msg/s into three consumers; ``consumer`` dies at ``kill_at`` (mid-message);
    the run goes on to ``seconds`` and then drains."""
    check.positive("kill_at", kill_at)
    check.number("seconds", seconds, minimum=kill_at, allow_min=False)
    run = Playground(rate=5.0, seed=seed)
    run.advance(kill_at)
    before = dict(run.state()["processed_by"])
    dropped = run.kill_consumer(consumer)
    run.advance(seconds - kill_at)
    redelivered_to = [
        e.data["consumer"] for e in run.sim.trace.of_kind("ack") if e.data["message"] == dropped
    ]
    throughput_before = _rate(run, 0.0, kill_at)
    throughput_after = _rate(run, kill_at, seconds)
    run.drain()
    s = run.state()
    return {
        "killed": consumer,
        "dropped_message": dropped,
        "redelivered_to": redelivered_to,
        "processed_by_before": before,
        "processed_by": s["processed_by"],
        "throughput_before": throughput_before,
        "throughput_after": throughput_after,
        "sent": s["sent"],
        "processed": s["processed"],
        "lost": s["sent"] - s["processed"],
        "summary": run.summary(),
    }


def experiment_poison_pill(
    inject_at: float = 5.0, seconds: float = 20.0, max_receives: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Experiment 3: 5 msg/s into three consumers; a poison pill at ``inject_at``; run to
    ``seconds``."""
    check.positive("inject_at", inject_at)
    check.number("seconds", seconds, minimum=inject_at, allow_min=False)
    run = Playground(rate=5.0, max_receives=max_receives, seed=seed)
    run.advance(inject_at)
    poison = run.inject_poison()
    run.advance(seconds - inject_at)
    trace = run.sim.trace
    receives = [e for e in trace.of_kind("receive") if e.data["message"] == poison]
    moved = [e.time for e in trace.of_kind("dead_letter") if e.data["message"] == poison]
    processed_meanwhile = sum(
        1 for e in trace.of_kind("ack") if inject_at <= e.time <= (moved[0] if moved else seconds)
    )
    return {
        "poison": poison,
        "receives": len(receives),
        "dead_lettered_at": moved[0] if moved else None,
        "dlq": run.dlq.inspect(),
        "processed_while_poison_retried": processed_meanwhile,
        "processed": run.state()["processed"],
        "summary": run.summary(),
    }


def experiment_overload(
    seconds: float = 30.0, rate: float = 15.0, capacity: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Experiment 4: ``rate`` msg/s with only consumer A alive, for ``seconds``, once without and
    once with backpressure (a queue bounded at ``capacity``). The bounded run also reports
    ``demand`` (what the producer was asked to send) and ``held_back`` (demand it did not send)."""
    check.positive("seconds", seconds)
    results: dict[str, Any] = {}
    for backpressure in (False, True):
        run = Playground(rate=rate, backpressure=backpressure, capacity=capacity, seed=seed)
        run.kill_consumer("B")
        run.kill_consumer("C")
        run.advance(seconds)
        s = run.state()
        results["with_backpressure" if backpressure else "without_backpressure"] = {
            "sent": s["sent"],
            "processed": s["processed"],
            "final_depth": s["depth"],
            "max_depth": s["max_depth"],
            "depth_series": list(run.series["depth"]),
            "producer_rate": s["sent"] / seconds,
            "held_back": s["held_back"],
            "summary": run.summary(),
        }
    # What the bounded run did not send was held back upstream, not done: backpressure is not
    # free. The unbounded run never waited, so what it sent is the demand.
    bounded = results["with_backpressure"]
    bounded["demand"] = results["without_backpressure"]["sent"]
    results["capacity"] = capacity
    return results


def run_experiments() -> dict[str, dict[str, Any]]:
    """All four experiments at the lesson's settings."""
    return {
        "normal_flow": experiment_normal_flow(),
        "kill_consumer": experiment_kill_consumer(),
        "poison_pill": experiment_poison_pill(),
        "overload": experiment_overload(),
    }


def default_run() -> Playground:
    """The playground's opening picture: 5 msg/s into three consumers; a poison pill at t=5 s goes
    to the DLQ; consumer B is killed at t=10 s and revived at t=20 s; 30 s in all."""
    run = Playground()
    run.advance(5)
    run.inject_poison()
    run.advance(5)
    run.kill_consumer("B")
    run.advance(10)
    run.revive_consumer("B")
    run.advance(10)
    return run
