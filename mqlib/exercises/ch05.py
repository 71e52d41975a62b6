"""Chapter 5 exercise: a producer that respects backpressure.

The world runs in one-second ticks and counts messages, as the chapter's large-scale mode does.
Each tick the application hands the producer new messages (a steady rate, with bursts); the
producer holds them in its own memory until it sends them. The broker's queue is bounded and in
reject mode, like :class:`mqlib.models.backpressure.BackpressureBroker` with ``mode="reject"``:
a send that does not fit is refused, and this producer keeps no copy, so a refused message is
lost. The consumers take what they can each tick; some ticks some of them are down.

The learner writes the producer's decision, once per tick: how many buffered messages to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._checker import Budget, Exercise, Fault, SolutionError, call, callable_with, wrong_type

RATE = 80
"""Messages the application produces per tick, normally."""
BURST = 240
"""Messages per tick during a burst (for :data:`BURST_TICKS` ticks)."""
BURST_TICKS = 5
QUEUE_CAPACITY = 200
"""The broker queue's bound (messages)."""
CONSUMER_RATE = 40
CONSUMERS = 3
"""Two consumers, 50 messages per tick each."""
DOWN_TICKS = 10
"""Ticks a consumer stays down after a crash."""
MEMORY = 5000
"""The producer may hold at most this many unsent messages (its memory bound)."""
PHASE = 10
"""Ticks per phase of a schedule (a schedule's size is its number of phases)."""
DRAIN = 120
"""Ticks at most at the end with no new messages, for the backlog to drain."""
THROUGHPUT = 0.9
"""While the producer has messages waiting, the consumers must get at least this fraction of
their capacity."""


@dataclass(frozen=True)
class ProducerState:
    """What the producer knows at the start of a tick.

    ``time`` (the tick, seconds), ``buffered`` (messages in the producer's memory, not yet
    sent), ``queue_depth`` (messages in the broker's queue, as its last reply said) and
    ``queue_capacity`` (the queue's bound)."""

    time: int
    buffered: int
    queue_depth: int
    queue_capacity: int


class BackpressureProducer(Exercise):
    name = "ch05-backpressure-producer"
    chapter = 5
    title = "Send as fast as the consumers can take it, and no faster"
    signature = "send_count(state) -> int"
    task = (
        "Write the producer's decision, called once per one-second tick: how many of its "
        "buffered messages to send now. state.buffered is what the producer holds, "
        "state.queue_depth and state.queue_capacity describe the broker's bounded queue. The "
        f"broker refuses what does not fit, and a refused message is lost. The application "
        f"produces {RATE} messages per tick, with bursts of {BURST} per tick; {CONSUMERS} "
        f"consumers take {CONSUMER_RATE} per tick each, and a consumer may be down for a while."
    )
    checks = (
        "Up to 6 phases of 10 ticks with bursts and consumer crashes, then quiet ticks to drain. "
        "Checked: no message is lost (refused); the producer never holds more than "
        f"{MEMORY} messages; while it has messages waiting, the consumers get at least "
        f"{THROUGHPUT:.0%} of their capacity; everything is delivered by the end."
    )
    min_size = 1
    max_size = 6
    size_unit = "phase(s) of 10 s"

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "send_count", 1, "send_count(state)")

    def draw(self, rng, size):
        faults = []
        for phase in range(1, size + 1):
            if rng.random() < 0.4:
                at = rng.randint(0, PHASE - 1)
                tick = (phase - 1) * PHASE + at
                faults.append(
                    Fault("burst", phase, 0, at, f"a burst of {BURST}/tick at t={tick} s")
                )
            if rng.random() < 0.3:
                at = rng.randint(0, PHASE - 1)
                tick = (phase - 1) * PHASE + at
                faults.append(Fault("down", phase, 0, at, f"a consumer is down from t={tick} s"))
        return faults

    def run(self, solution, schedule, out):
        budget = Budget()
        ticks = schedule.size * PHASE
        bursts, downs = set(), {}
        for f in schedule.faults:
            start = (f.target - 1) * PHASE + f.at
            if f.kind == "burst":
                bursts.update(range(start, start + BURST_TICKS))
            else:
                for t in range(start, start + DOWN_TICKS):
                    downs[t] = downs.get(t, 0) + 1
        buffered = depth = produced = delivered = 0
        starved_capacity = starved_used = 0
        for t in range(ticks + DRAIN):
            offered = 0 if t >= ticks else (BURST if t in bursts else RATE)
            if t in bursts and t - 1 not in bursts:
                out.step(t, "app", "burst", f"{BURST} messages per tick for {BURST_TICKS} s")
            down = min(CONSUMERS, downs.get(t, 0))
            if down and not downs.get(t - 1):
                out.step(t, "consumer", "crashed", f"{down} of {CONSUMERS} down")
            if not down and downs.get(t - 1):
                out.step(t, "consumer", "restarted", "all consumers up")
            buffered += offered
            produced += offered
            state = ProducerState(t, buffered, depth, QUEUE_CAPACITY)
            n = call(solution, state, what="send_count(state)", budget=budget)
            if not isinstance(n, int) or isinstance(n, bool):
                raise wrong_type("send_count(state)", n, "an int (how many messages to send)")
            if not 0 <= n <= buffered:
                raise SolutionError(
                    f"send_count(state) returned {n}, but it can send only between 0 and the "
                    f"{buffered} messages it holds (state.buffered)"
                )
            buffered -= n
            accepted = min(n, QUEUE_CAPACITY - depth)
            depth += accepted
            waiting_before = buffered > 0
            if accepted < n:
                out.step(t, "producer", "sent", f"{n} messages; the queue had room for {accepted}")
                out.step(t, "broker", "lost", f"{n - accepted} messages refused: the queue is full")
                out.broke(
                    "no message is lost",
                    f"at t={t} s the producer sent {n} messages into a queue with room for "
                    f"{accepted} ({depth - accepted} of {QUEUE_CAPACITY} used): the broker "
                    "refused the rest. Send no more than there is room for",
                )
                return
            if buffered > MEMORY:
                out.step(t, "producer", "memory", f"holds {buffered} unsent messages")
                out.broke(
                    "the producer's memory stays bounded",
                    f"at t={t} s the producer holds {buffered} messages (> {MEMORY}): it sends "
                    "more slowly than the consumers could take them",
                )
                return
            capacity = (CONSUMERS - down) * CONSUMER_RATE
            taken = min(depth, capacity)
            depth -= taken
            delivered += taken
            if waiting_before or buffered:
                starved_capacity += capacity
                starved_used += taken
            if t >= ticks and not buffered and not depth:
                break
            if t % PHASE == PHASE - 1:
                out.step(
                    t,
                    "system",
                    "tick",
                    f"produced {produced}, delivered {delivered}, producer holds {buffered}, "
                    f"queue {depth}/{QUEUE_CAPACITY}",
                )
        end = t + 1
        if starved_capacity and starved_used < THROUGHPUT * starved_capacity:
            share = starved_used / starved_capacity
            out.broke(
                "throughput within 90% of the consumers' capacity",
                f"while the producer had messages waiting, the consumers got {share:.0%} of what "
                "they could have processed: the producer holds back more than the queue needs",
                time=end,
                subject="producer",
            )
            return
        if delivered < produced:
            out.broke(
                "everything is delivered by the end",
                f"{produced - delivered} of {produced} messages were still not delivered at "
                f"t={end} s ({buffered} in the producer, {depth} in the queue)",
                time=end,
                subject="producer",
            )

    def starter(self):
        return starter

    def reference(self):
        return reference


def starter(state):
    """Fire and forget: send everything the producer holds."""
    return state.buffered


def reference(state):
    """Fill the queue up to its bound, never beyond: the room the broker reports is the credit
    the producer may spend, and what it cannot send yet stays in its own memory."""
    room = state.queue_capacity - state.queue_depth
    return max(0, min(state.buffered, room))


__all__ = ["BackpressureProducer", "ProducerState", "SolutionError"]
