"""Chapter 1 exercise: a long-job worker that keeps its message invisible while it works.

The world is a work queue with a visibility timeout (SQS's ``VisibilityTimeout``, JetStream's
``ack_wait``) of :data:`ACK_WAIT` seconds and two competing workers, ``A`` and ``B``. Each job
is a list of parts of about :data:`PART` seconds; a slow part takes :data:`SLOW` seconds. The
learner writes ``work(job, msg)``: run the parts, save the result (the effect), ack, and in
between tell the queue that the job is still alive: ``msg.in_progress()`` (JetStream's
``AckProgress``: the ack timer starts again from now) or ``msg.extend(seconds)`` (SQS's
``ChangeMessageVisibility``: invisible for ``seconds`` from now).

As in the chapter's work queue, an ack that arrives after the timeout is still accepted and
deletes the message, but by then another worker may have received it and be doing the same job.
In the engine, a heartbeat from a delivery that has already timed out changes nothing: the
message belongs to its new delivery.
"""

from __future__ import annotations

import heapq
from typing import Any

from .. import _validate as check
from ._checker import Crash, Exercise, Fault, Outcome, Schedule, SolutionError, call, callable_with

ACK_WAIT = 30.0
"""Seconds a received message stays invisible without a heartbeat."""
PART = 10.0
"""Seconds one part of a job takes."""
SLOW = 25.0
"""Seconds a slow part takes (a long garbage-collection pause, a slow disk)."""
RESTART = 5.0
"""Seconds a crashed worker takes to come back."""
HORIZON = 600.0
"""Every job must be finished (its result saved) by this time."""
WORKERS = ("A", "B")


class Part:
    """One piece of a job's work; :meth:`run` takes :data:`PART` simulated seconds."""

    def __init__(self, delivery: _Delivery, index: int) -> None:
        self._delivery = delivery
        self.index = index

    def run(self) -> None:
        """Do this part of the work (the worker's clock moves on while it runs)."""
        self._delivery.run_part(self.index)

    def __repr__(self) -> str:
        return f"Part({self.index})"


class Job:
    """The job a message asks for: ``id``, and ``parts`` to run in order before the result
    is saved with :meth:`save_result`."""

    def __init__(self, delivery: _Delivery, parts: int) -> None:
        self._delivery = delivery
        self.id = delivery.message_id
        self.parts = [Part(delivery, i) for i in range(1, parts + 1)]

    def save_result(self) -> None:
        """Apply the job's effect: write its result (once per job, if all is well)."""
        self._delivery.act("save")

    def __repr__(self) -> str:
        return f"Job({self.id!r}, parts={len(self.parts)})"


class JobMessage:
    """The delivery of a job's message to one worker: ``ack``, ``in_progress``, ``extend``."""

    def __init__(self, delivery: _Delivery) -> None:
        self._delivery = delivery
        self.id = delivery.message_id
        self.receive_count = delivery.attempt

    def ack(self) -> None:
        """Tell the queue the job is done: the message is deleted."""
        self._delivery.act("ack")

    def in_progress(self) -> None:
        """Still working: the ack timer starts again, :data:`ACK_WAIT` seconds from now."""
        self._delivery.act("extend", ACK_WAIT)

    def extend(self, seconds: float) -> None:
        """Keep the message invisible for ``seconds`` from now (at most 12 hours, as SQS)."""
        check.number("seconds", seconds, minimum=0, maximum=43_200)
        self._delivery.act("extend", float(seconds))

    def __repr__(self) -> str:
        return f"JobMessage({self.id!r}, receive_count={self.receive_count})"


class _Delivery:
    """One receive of one message by one worker; records what the handler does, and when."""

    def __init__(self, world: _World, number: int, worker: str, start: float) -> None:
        self.world = world
        self.number = number
        self.message_id = f"m{number}"
        self.worker = worker
        self.attempt = world.receives[number]
        self.clock = start
        self.actions: list[tuple[float, str, Any]] = []
        self.parts_done: set[int] = set()

    def run_part(self, index: int) -> None:
        self.world.budget.spend("work(job, msg)")
        faults = self.world.faults
        duration = SLOW if ("slow", self.number, 0, index) in faults else PART
        if ("crash", self.number, self.attempt, index) in faults:
            self.clock += duration / 2
            self.actions.append((self.clock, "crash", index))
            raise Crash
        self.clock += duration
        self.parts_done.add(index)

    def act(self, kind: str, value: Any = None) -> None:
        self.world.budget.spend("work(job, msg)")
        self.actions.append((self.clock, kind, value))


class _World:
    def __init__(self, work: Any, schedule: Schedule, outcome: Outcome) -> None:
        from ._checker import Budget

        self.work = work
        self.out = outcome
        self.budget = Budget()
        self.faults = {(f.kind, f.target, f.attempt, f.at) for f in schedule.faults}
        self.parts = {n: 2 for n in range(1, schedule.size + 1)}
        for f in schedule.faults:
            if f.kind == "parts":
                self.parts[f.target] = f.at
        self.receives = dict.fromkeys(self.parts, 0)
        self.saves: dict[int, list[tuple[float, str]]] = {n: [] for n in self.parts}
        self.acked: dict[int, float] = {}
        self.current: dict[int, int] = {}  # message -> id of its current delivery
        self.lease: dict[int, float] = {}  # message -> invisible until
        self.visible = sorted(self.parts)
        self.idle = list(WORKERS)
        self.events: list[tuple[float, int, int, str, tuple]] = []
        self.serial = 0

    def push(self, time: float, priority: int, kind: str, *data: Any) -> None:
        self.serial += 1
        heapq.heappush(self.events, (time, priority, self.serial, kind, data))

    def dispatch(self, now: float) -> None:
        while self.visible and self.idle:
            number = self.visible.pop(0)
            worker = self.idle.pop(0)
            self.receives[number] += 1
            self.receive(number, worker, now)

    def receive(self, number: int, worker: str, now: float) -> None:
        delivery = _Delivery(self, number, worker, now)
        self.current[number] = id(delivery)
        self.lease[number] = now + ACK_WAIT
        again = delivery.attempt > 1
        self.out.step(
            now,
            delivery.message_id,
            "redelivered" if again else "delivered",
            f"to worker {worker} (receive {delivery.attempt}; invisible until "
            f"t={now + ACK_WAIT:g} s)",
        )
        self.push(now + ACK_WAIT, 2, "expire", number, id(delivery), now + ACK_WAIT)
        crashed = False
        try:
            call(
                self.work,
                Job(delivery, self.parts[number]),
                JobMessage(delivery),
                what="work(job, msg)",
            )
        except Crash:
            crashed = True
        for time, kind, value in delivery.actions:
            self.push(time, 1, kind, delivery, value)
        end = delivery.clock
        if crashed:
            self.push(end + RESTART, 3, "restart", worker)
        else:
            self.push(end, 3, "free", worker)

    def run(self) -> None:
        self.dispatch(0.0)
        while self.events and not self.out.failed:
            time, _, _, kind, data = heapq.heappop(self.events)
            if time > HORIZON:
                break
            getattr(self, "on_" + kind)(time, *data)
            self.dispatch(time)
        if self.out.failed:
            return
        for number, saves in self.saves.items():
            if saves:
                continue
            mid = f"m{number}"
            if number in self.acked:
                why = (
                    f"{mid} was acked at t={self.acked[number]:g} s but its result was never "
                    "saved: the worker crashed after acking, and an acked message is never "
                    "redelivered. Ack after the effect"
                )
            elif self.receives[number] == 0:
                why = f"{mid} was never even delivered by t={HORIZON:g} s"
            else:
                why = (
                    f"{mid}'s result was never saved by t={HORIZON:g} s (it was received "
                    f"{self.receives[number]} time(s)); a crashed job must come back within "
                    "the visibility timeout and be finished"
                )
            self.out.broke(
                "every job is finished (a crashed job is retried)",
                why,
                time=min(HORIZON, self.last_time()),
                subject=mid,
            )
            return

    def last_time(self) -> float:
        return max((s.time for s in self.out.timeline), default=0.0)

    # -- events ---------------------------------------------------------------------------------
    def stale(self, delivery: _Delivery) -> bool:
        return self.current.get(delivery.number) != id(delivery)

    def on_extend(self, time: float, delivery: _Delivery, seconds: float) -> None:
        number = delivery.number
        if number in self.acked or self.stale(delivery):
            self.out.step(
                time,
                delivery.message_id,
                "heartbeat ignored",
                f"from {delivery.worker}: the message was redelivered or acked",
            )
            return
        self.lease[number] = time + seconds
        self.out.step(
            time,
            delivery.message_id,
            "heartbeat",
            f"{delivery.worker}: invisible until t={time + seconds:g} s",
        )
        self.push(time + seconds, 2, "expire", number, id(delivery), time + seconds)

    def on_expire(self, time: float, number: int, delivery_id: int, until: float) -> None:
        if number in self.acked or self.current.get(number) != delivery_id:
            return
        if self.lease[number] != until:
            return  # a heartbeat moved the deadline
        del self.current[number]
        self.out.step(
            time,
            f"m{number}",
            "visibility timeout",
            "no ack or heartbeat in time: the message is visible again",
        )
        self.visible.append(number)
        self.visible.sort()

    def on_save(self, time: float, delivery: _Delivery, _value: Any) -> None:
        number, mid = delivery.number, delivery.message_id
        missing = [p for p in range(1, self.parts[number] + 1) if p not in delivery.parts_done]
        saves = self.saves[number]
        saves.append((time, delivery.worker))
        if missing:
            self.out.step(time, mid, "effect applied", f"by {delivery.worker}, too early")
            self.out.broke(
                "a result is saved only after all its parts ran",
                f"{delivery.worker} saved {mid}'s result before running part(s) {missing}",
            )
            return
        if len(saves) > 1:
            first_time, first_worker = saves[0]
            self.out.step(time, mid, "duplicated", f"effect applied again, by {delivery.worker}")
            self.out.broke(
                "each job's result is saved exactly once",
                f"{mid}'s result was saved twice: by {first_worker} at t={first_time:g} s and by "
                f"{delivery.worker} at t={time:g} s. The message became visible again while a "
                f"worker was still on it (no heartbeat within {ACK_WAIT:g} s), so a second "
                "worker did the same job",
            )
            return
        self.out.step(time, mid, "effect applied", f"result saved by {delivery.worker}")

    def on_ack(self, time: float, delivery: _Delivery, _value: Any) -> None:
        number, mid = delivery.number, delivery.message_id
        if number in self.acked:
            self.out.step(time, mid, "ack ignored", f"from {delivery.worker}: already deleted")
            return
        self.acked[number] = time
        if number in self.visible:
            self.visible.remove(number)
        late = " (late: after the timeout, still accepted)" if self.stale(delivery) else ""
        self.out.step(time, mid, "acked", f"by {delivery.worker}: deleted{late}")

    def on_crash(self, time: float, delivery: _Delivery, part: int) -> None:
        self.out.step(
            time,
            delivery.message_id,
            "crashed",
            f"worker {delivery.worker} died during part {part}",
        )

    def on_free(self, time: float, worker: str) -> None:
        self.idle.append(worker)

    def on_restart(self, time: float, worker: str) -> None:
        self.out.step(time, f"worker {worker}", "restarted")
        self.idle.append(worker)


class HeartbeatWorker(Exercise):
    name = "ch01-heartbeat-worker"
    chapter = 1
    title = "A long job that is never done twice and always done once"
    signature = "work(job, msg) -> None"
    task = (
        "Write the handler a worker runs for each message of a work queue. Each message asks "
        "for a job: run its parts in order (part.run() for part in job.parts), save the result "
        "with job.save_result(), and ack with msg.ack(). The queue's visibility timeout is "
        f"{ACK_WAIT:g} s; a part takes {PART:g} s, a slow one {SLOW:g} s, and a job has up to 6 "
        "parts, so a job can outlast the timeout. Keep the message invisible while you work: "
        "msg.in_progress() starts the ack timer again, msg.extend(seconds) hides the message "
        "for that many seconds from now."
    )
    checks = (
        "Two workers, up to 6 jobs, under crashes during any part of any delivery and slow "
        "parts. Checked: each job's result is saved exactly once (never by two workers); a "
        "result is saved only after all its parts ran; every job is finished by "
        f"t={HORIZON:g} s, so a job whose worker crashed must come back and be done again."
    )
    max_size = 6
    renumber = True
    size_unit = "job(s)"

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "work", 2, "work(job, msg)")

    def draw(self, rng, size):
        faults = []
        for n in range(1, size + 1):
            parts = rng.randint(1, 6)
            if parts != 2:
                faults.append(Fault("parts", n, 0, parts, "m{target} has {at} parts"))
            for p in range(1, parts + 1):
                if rng.random() < 0.15:
                    faults.append(
                        Fault("slow", n, 0, p, f"part {{at}} of m{{target}} is slow ({SLOW:g} s)")
                    )
            for attempt in (1, 2):
                if rng.random() < 0.25:
                    p = rng.randint(1, parts)
                    faults.append(
                        Fault(
                            "crash",
                            n,
                            attempt,
                            p,
                            "worker crashes during part {at} of m{target}, receive {attempt}",
                        )
                    )
        return faults

    def run(self, solution, schedule, outcome):
        world = _World(solution, schedule, outcome)
        for n in world.parts:
            outcome.step(0.0, f"m{n}", "sent", f"a job of {world.parts[n]} part(s)")
        world.run()

    def starter(self):
        return starter

    def reference(self):
        return reference


def starter(job, msg):
    """Run the job's parts, save the result, ack. (No heartbeat yet.)"""
    for part in job.parts:
        part.run()
    job.save_result()
    msg.ack()


def reference(job, msg):
    """Heartbeat after every part: the message stays invisible for as long as the work goes on,
    and no longer, so a crash is noticed one timeout after the last sign of life."""
    for part in job.parts:
        part.run()
        msg.in_progress()
    job.save_result()
    msg.ack()  # after the effect: a crash before this line means the job is done again


__all__ = ["ACK_WAIT", "HeartbeatWorker", "Job", "JobMessage", "Part", "SolutionError"]
