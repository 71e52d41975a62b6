"""Chapter 8 exercise: configure the whole system to meet a service level.

The world is the chapter's playground at scale, counted per one-second tick like chapter 5's
large-scale mode: a producer, a broker queue, a pool of consumers, a dead letter queue. The
load is fixed (see :data:`LOAD`); the faults are bursts, consumer crashes and poison pills. The
learner chooses the configuration: how many consumers, the queue's capacity, what happens when
it is full (the backpressure mode) and the maximum number of receives before a message is
dead-lettered. The engine simplifies redelivery: a failed message is tried again within the same
tick, where SQS and JetStream wait for the visibility timeout (``ack_wait``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ._checker import Exercise, Fault, SolutionError

LOAD = {
    "rate": 420,
    "burst_rate": 700,
    "burst_seconds": 5,
    "consumer_rate": 100,
    "crash_seconds": 20,
    "flaky_once": 0.05,
    "flaky_twice": 0.01,
    "poison_burst": 20,
}
"""The load: messages per second normally and in a burst, what one consumer handles per second,
how long a crashed consumer stays down, the share of messages that fail once or twice before
they succeed, and how many poison pills arrive at once."""

SLO_LAG = 10.0
"""Every message must be processed within this many seconds of being produced."""
MAX_CONSUMERS = 8
"""The budget: at most this many consumers."""
MEMORY = 20_000
"""The broker may hold at most this many messages (with backpressure "none" it is unbounded,
and this is where memory runs out)."""
MODES = ("none", "block", "reject", "shed")
PHASE = 20
"""Seconds per phase of a schedule."""
KEYS = ("consumers", "capacity", "backpressure", "max_receives")


class ConfigureSystem(Exercise):
    name = "ch08-configure-system"
    chapter = 8
    title = "A configuration that meets the service level under failures"
    signature = (
        'config = {"consumers": int, "capacity": int, "backpressure": "none" | "block" | '
        '"reject" | "shed", "max_receives": int}'
    )
    task = (
        f"Choose a configuration (a dict). The producer sends {LOAD['rate']} messages/s, with "
        f"bursts of {LOAD['burst_rate']}/s for {LOAD['burst_seconds']} s; one consumer handles "
        f"{LOAD['consumer_rate']} deliveries/s; a consumer may crash and stay down "
        f"{LOAD['crash_seconds']} s; {LOAD['flaky_once']:.0%} of messages fail once and "
        f"{LOAD['flaky_twice']:.0%} twice before they succeed; {LOAD['poison_burst']} poison "
        "pills may arrive at once. consumers (1 to 8: the budget), capacity (the queue's bound), "
        "backpressure (none: unbounded; block: the producer waits; reject: refused messages are "
        "lost; shed: the newest are dropped) and max_receives (deliveries before the DLQ)."
    )
    checks = (
        f"Up to 6 phases of {PHASE} s with bursts, consumer crashes and poison bursts. Checked: "
        f"every message is processed within {SLO_LAG:g} s of being produced (lag); no message is "
        "lost (refused, shed, or dead-lettered though it would have succeeded); poison pills end "
        f"in the DLQ; the broker never holds more than {MEMORY} messages."
    )
    min_size = 1
    max_size = 6
    size_unit = "phase(s) of 20 s"

    def validate(self, solution: Any) -> Any:
        if callable(solution) and not isinstance(solution, dict):
            raise TypeError(
                "solution must be a dict of settings (consumers, capacity, backpressure, "
                f"max_receives), not a function: got {solution!r}"
            )
        if not isinstance(solution, dict):
            raise TypeError(
                f"solution must be a dict with the keys {', '.join(KEYS)}; got {solution!r} "
                f"({type(solution).__name__})"
            )
        missing = [k for k in KEYS if k not in solution]
        extra = [k for k in solution if k not in KEYS]
        if missing or extra:
            raise ValueError(
                f"solution must have exactly the keys {', '.join(KEYS)}; "
                f"missing {missing}, unknown {extra}"
            )
        from .. import _validate as check

        check.integer("consumers", solution["consumers"], minimum=1, maximum=MAX_CONSUMERS)
        check.integer("capacity", solution["capacity"], minimum=1, maximum=10_000_000)
        check.choice("backpressure", solution["backpressure"], MODES)
        check.integer("max_receives", solution["max_receives"], minimum=1, maximum=100)
        return dict(solution)

    def draw(self, rng, size):
        faults = []
        for phase in range(1, size + 1):
            for kind, p in (("burst", 0.5), ("crash", 0.4), ("poison", 0.3)):
                if rng.random() < p:
                    at = rng.randint(0, PHASE - 1)
                    t = (phase - 1) * PHASE + at
                    text = {
                        "burst": f"a burst of {LOAD['burst_rate']}/s at t={t} s",
                        "crash": f"a consumer crashes at t={t} s",
                        "poison": f"{LOAD['poison_burst']} poison pills at t={t} s",
                    }[kind]
                    faults.append(Fault(kind, phase, 0, at, text))
        return faults

    def run(self, config, schedule, out):
        consumers, capacity = config["consumers"], config["capacity"]
        mode, max_receives = config["backpressure"], config["max_receives"]
        ticks = schedule.size * PHASE
        bursts, down, poison = set(), {}, {}
        for f in schedule.faults:
            t0 = (f.target - 1) * PHASE + f.at
            if f.kind == "burst":
                bursts.update(range(t0, t0 + LOAD["burst_seconds"]))
            elif f.kind == "crash":
                for t in range(t0, t0 + LOAD["crash_seconds"]):
                    down[t] = down.get(t, 0) + 1
            else:
                poison[t0] = poison.get(t0, 0) + LOAD["poison_burst"]
        out.step(0, "config", "set", ", ".join(f"{k}={config[k]!r}" for k in KEYS))
        # queue and producer backlog hold buckets [born, count, deliveries each needs or -1]
        queue: deque[list] = deque()
        waiting: deque[list] = deque()  # blocked at the producer (mode "block")
        depth = 0
        dlq = dead_poison = 0
        flaky_lost = 0
        for t in range(ticks + 60):
            if t < ticks:
                n = LOAD["burst_rate"] if t in bursts else LOAD["rate"]
                twice = round(n * LOAD["flaky_twice"])
                once = round(n * LOAD["flaky_once"])
                new = [[t, n - once - twice, 1], [t, once, 2], [t, twice, 3]]
                if poison.get(t):
                    new.append([t, poison[t], -1])
                    out.step(t, "producer", "poison", f"{poison[t]} poison pills sent")
                if t in bursts and t - 1 not in bursts:
                    out.step(t, "producer", "burst", f"{LOAD['burst_rate']} messages/s")
            else:
                new = []
            if down.get(t) and not down.get(t - 1):
                out.step(t, "consumer", "crashed", f"{min(down[t], consumers)} down")
            waiting.extend(b for b in new if b[1])
            # admit into the queue as the mode allows
            while waiting:
                bucket = waiting[0]
                room = bucket[1] if mode == "none" else max(0, capacity - depth)
                if room >= bucket[1]:
                    queue.append(waiting.popleft())
                    depth += bucket[1]
                    continue
                if mode == "block":
                    if room:
                        queue.append([bucket[0], room, bucket[2]])
                        bucket[1] -= room
                        depth += room
                    break
                lost = bucket[1] - room
                out.step(
                    t,
                    "broker",
                    "lost",
                    f"{lost} messages {'refused' if mode == 'reject' else 'shed'}: queue full "
                    f"({depth}/{capacity})",
                )
                out.broke(
                    "no message is lost",
                    f"at t={t} s the queue was full and backpressure {mode!r} "
                    f"{'refused' if mode == 'reject' else 'dropped'} {lost} messages",
                )
                return
            if depth > MEMORY:
                out.step(t, "broker", "memory", f"{depth} messages held")
                out.broke(
                    "the broker's memory stays bounded",
                    f"at t={t} s the broker holds {depth} messages (> {MEMORY}): with no bound "
                    "the queue grows until memory runs out",
                )
                return
            # consumers deliver FIFO; each delivery costs one unit of capacity
            budget = max(0, consumers - down.get(t, 0)) * LOAD["consumer_rate"]
            while budget and queue:
                born, count, need = queue[0]
                cost = max_receives if need == -1 else min(need, max_receives)
                can = min(count, budget // cost) if cost <= budget else 0
                if can == 0:
                    break
                budget -= can * cost
                queue[0][1] -= can
                depth -= can
                if need == -1:
                    dlq += can
                    dead_poison += can
                elif need > max_receives:
                    flaky_lost += can
                    out.step(
                        t,
                        "consumer",
                        "dead-lettered",
                        f"{can} messages that needed {need} tries (max_receives={max_receives})",
                    )
                    out.broke(
                        "no message is lost",
                        f"messages that fail {need - 1} time(s) and then succeed were "
                        f"dead-lettered after {max_receives} receive(s): raise max_receives",
                    )
                    return
                if queue[0][1] == 0:
                    queue.popleft()
            oldest = queue[0][0] if queue else (waiting[0][0] if waiting else None)
            if waiting and (oldest is None or waiting[0][0] < oldest):
                oldest = waiting[0][0]
            if oldest is not None and t - oldest > SLO_LAG:
                held = depth + sum(b[1] for b in waiting)
                out.step(
                    t, "queue", "lag", f"oldest message is {t - oldest} s old ({held} waiting)"
                )
                out.broke(
                    f"every message is processed within {SLO_LAG:g} s",
                    f"at t={t} s the oldest unprocessed message was produced at t={oldest} s: "
                    f"{consumers} consumer(s) cannot keep up with this load and its failures",
                )
                return
            if t % PHASE == PHASE - 1:
                out.step(t, "system", "tick", f"queue {depth}, dead-lettered {dlq}")
            if t >= ticks and not queue and not waiting:
                break
        total_poison = sum(poison.values())
        if dead_poison < total_poison:
            out.broke(
                "poison pills end in the DLQ",
                f"only {dead_poison} of {total_poison} poison pills reached the DLQ",
                time=t,
                subject="dlq",
            )

    def starter(self):
        return dict(STARTER)

    def reference(self):
        return dict(REFERENCE)


STARTER = {"consumers": 3, "capacity": 1000, "backpressure": "reject", "max_receives": 1}
"""A first guess: it breaks the service level in several ways."""

REFERENCE = {"consumers": 7, "capacity": 5000, "backpressure": "block", "max_receives": 3}
"""Seven consumers: 700 deliveries/s, 600 with one down, against about 450 needed (420 messages
plus retries); a burst's excess (about 1,250 messages) drains in seconds. Block: a full queue
slows the producer and loses nothing. max_receives 3: a message that fails twice still succeeds
on its third receive, and a poison pill costs only three deliveries."""

__all__ = ["LOAD", "ConfigureSystem", "SolutionError"]
