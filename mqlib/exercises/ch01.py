"""Chapter 1 exercise: a long-job worker that keeps its message invisible while it works.

The world is the chapter's :class:`~mqlib.models.work_queue.WorkQueue`, with a visibility
timeout (SQS's ``VisibilityTimeout``, JetStream's ``ack_wait``) of :data:`ACK_WAIT` seconds,
and two competing workers, ``A`` and ``B``. Each job
is a list of parts of about :data:`PART` seconds; a slow part takes :data:`SLOW` seconds. The
learner writes ``work(job, msg)``: run the parts, save the result (the effect), ack, and in
between tell the queue that the job is still alive: ``msg.in_progress()`` (JetStream's
``AckProgress``: the ack timer starts again from now) or ``msg.extend(seconds)`` (SQS's
``ChangeMessageVisibility``: invisible for ``seconds`` from now).

The queue's rules apply as they are: an ack that arrives after the timeout is still accepted
and deletes the message (JetStream's rule), but by then another worker may have received it and
be doing the same job; a heartbeat from a delivery that has already timed out changes nothing
(:meth:`~mqlib.models.work_queue.WorkQueue.extend_visibility` returns ``False``).
"""

from __future__ import annotations

from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.work_queue import MAX_VISIBILITY, WorkQueue
from ._checker import (
    Budget,
    Crash,
    Exercise,
    Fault,
    Outcome,
    Schedule,
    SolutionError,
    call,
    callable_with,
)

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
        self._delivery.act("extend", None)

    def extend(self, seconds: float) -> None:
        """Keep the message invisible for ``seconds`` from now (more than 0, at most 12 hours,
        as SQS allows)."""
        check.number("seconds", seconds, minimum=0, allow_min=False, maximum=MAX_VISIBILITY)
        self._delivery.act("extend", float(seconds))

    def __repr__(self) -> str:
        return f"JobMessage({self.id!r}, receive_count={self.receive_count})"


class _Delivery:
    """One receive of one message by one worker; records what the handler does, and when.

    The handler runs to its end at the moment of the receive (it cannot see what other workers
    do meanwhile, just as a real one cannot); each call it makes is stamped with the worker's
    clock, which ``part.run()`` moves on. The worker's process then replays those calls against
    the queue at their times."""

    def __init__(self, world: _World, number: int, worker: str, start: float, attempt: int):
        self.world = world
        self.number = number
        self.message_id = f"m{number}"
        self.worker = worker
        self.attempt = attempt
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
    """The chapter's :class:`~mqlib.models.work_queue.WorkQueue` with two worker processes."""

    def __init__(self, work: Any, schedule: Schedule, outcome: Outcome) -> None:
        self.work = work
        self.out = outcome
        self.budget = Budget()
        self.faults = {(f.kind, f.target, f.attempt, f.at) for f in schedule.faults}
        self.parts = {n: 2 for n in range(1, schedule.size + 1)}
        for f in schedule.faults:
            if f.kind == "parts":
                self.parts[f.target] = f.at
        self.sim = Simulation(seed=schedule.seed)
        self.queue = WorkQueue(self.sim, visibility_timeout=ACK_WAIT, name="jobs")
        self.saves: dict[int, list[tuple[float, str]]] = {n: [] for n in self.parts}
        self.acked: dict[int, float] = {}
        self.timeouts_shown = 0

    def run(self) -> None:
        for n, parts in self.parts.items():
            self.queue.send({"parts": parts}, message_id=f"m{n}")
            self.out.step(0.0, f"m{n}", "sent", f"a job of {parts} part(s)")
        for name in WORKERS:
            self.sim.process(self.worker(name))
        self.sim.run(until=HORIZON)
        self.show_timeouts()
        if self.out.failed:
            return
        for number, saves in self.saves.items():
            if saves:
                continue
            mid = f"m{number}"
            receives = self.queue.messages[mid].receive_count
            if number in self.acked:
                why = (
                    f"{mid} was acked at t={self.acked[number]:g} s but its result was never "
                    "saved: the worker crashed after acking, and an acked message is never "
                    "redelivered. Ack after the effect"
                )
            elif receives == 0:
                why = f"{mid} was never even delivered by t={HORIZON:g} s"
            else:
                why = (
                    f"{mid}'s result was never saved by t={HORIZON:g} s (it was received "
                    f"{receives} time(s)); a crashed job must come back within the visibility "
                    "timeout and be finished"
                )
            self.out.broke(
                "every job is finished (a crashed job is retried)",
                why,
                time=min(HORIZON, max(s.time for s in self.out.timeline)),
                subject=mid,
            )
            return

    def show_timeouts(self) -> None:
        """Copy the queue's visibility timeouts from its trace into the timeline."""
        timeouts = self.sim.trace.of_kind("visibility_timeout")
        for event in timeouts[self.timeouts_shown :]:
            self.out.step(
                event.time,
                event.data["message"],
                "visibility timeout",
                "no ack or heartbeat in time: the message is visible again",
            )
        self.timeouts_shown = len(timeouts)

    def worker(self, name: str):
        while not self.out.failed:
            delivery = yield self.queue.receive(name)
            self.show_timeouts()
            now = self.sim.now
            number = int(delivery.message.id[1:])
            again = delivery.receive_count > 1
            self.out.step(
                now,
                delivery.message.id,
                "redelivered" if again else "delivered",
                f"to worker {name} (receive {delivery.receive_count}; invisible until "
                f"t={now + ACK_WAIT:g} s)",
            )
            record = _Delivery(self, number, name, now, delivery.receive_count)
            crashed = False
            try:
                call(
                    self.work,
                    Job(record, self.parts[number]),
                    JobMessage(record),
                    what="work(job, msg)",
                )
            except Crash:
                crashed = True
            for time, kind, value in record.actions:
                yield self.sim.timeout(time - self.sim.now)
                if self.out.failed:
                    return
                getattr(self, "on_" + kind)(delivery, record, value)
            if crashed:
                yield self.sim.timeout(RESTART)
                self.out.step(self.sim.now, f"worker {name}", "restarted")
            else:
                yield self.sim.timeout(max(0.0, record.clock - self.sim.now))

    # -- what the handler did, applied to the queue at its time ---------------------------------
    def on_extend(self, delivery, record: _Delivery, seconds: float | None) -> None:
        now = self.sim.now
        if self.queue.extend_visibility(delivery, seconds):
            until = now + (ACK_WAIT if seconds is None else seconds)
            self.out.step(
                now,
                record.message_id,
                "heartbeat",
                f"{record.worker}: invisible until t={until:g} s",
            )
        else:
            self.show_timeouts()
            self.out.step(
                now,
                record.message_id,
                "heartbeat ignored",
                f"from {record.worker}: its delivery timed out, or the job was acked",
            )

    def on_save(self, delivery, record: _Delivery, _value: Any) -> None:
        now, number, mid = self.sim.now, record.number, record.message_id
        missing = [p for p in range(1, self.parts[number] + 1) if p not in record.parts_done]
        saves = self.saves[number]
        saves.append((now, record.worker))
        if missing:
            self.out.step(now, mid, "effect applied", f"by {record.worker}, too early")
            self.out.broke(
                "a result is saved only after all its parts ran",
                f"{record.worker} saved {mid}'s result before running part(s) {missing}",
            )
            return
        if len(saves) > 1:
            first_time, first_worker = saves[0]
            self.out.step(now, mid, "duplicated", f"effect applied again, by {record.worker}")
            self.out.broke(
                "each job's result is saved exactly once",
                f"{mid}'s result was saved twice: by {first_worker} at t={first_time:g} s and by "
                f"{record.worker} at t={now:g} s. The message became visible again while a "
                f"worker was still on it (no heartbeat within {ACK_WAIT:g} s), so a second "
                "worker did the same job",
            )
            return
        self.out.step(now, mid, "effect applied", f"result saved by {record.worker}")

    def on_ack(self, delivery, record: _Delivery, _value: Any) -> None:
        now, mid = self.sim.now, record.message_id
        late_before = self.queue.late_ack_count
        if not self.queue.ack(delivery):
            self.out.step(now, mid, "ack ignored", f"from {record.worker}: already deleted")
            return
        self.acked[record.number] = now
        late = self.queue.late_ack_count > late_before
        note = " (late: after the timeout, still accepted)" if late else ""
        self.out.step(now, mid, "acked", f"by {record.worker}: deleted{note}")

    def on_crash(self, delivery, record: _Delivery, part: int) -> None:
        self.out.step(
            self.sim.now,
            record.message_id,
            "crashed",
            f"worker {record.worker} died during part {part}",
        )


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
        _World(solution, schedule, outcome).run()

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
