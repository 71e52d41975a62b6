"""Chapter 7 exercise: a consumer that commits its offsets at the right moment.

The world is one partition of a Kafka topic and a consumer group that reads it. The learner
writes one pass of the consumer's poll loop: ``poll()`` returns the next records from the
consumer's position (at most :data:`MAX_POLL_RECORDS`, like ``max.poll.records``),
``process(record)`` applies a record's effect, and ``commit(offset)`` stores the group's
committed offset, which in Kafka is the offset of the *next* record to read, not of the last one
read. When the consumer crashes, or a rebalance hands the partition to another member, the new
owner starts at the committed offset: whatever was processed after it is processed again, and
whatever was committed but not processed is never processed at all.

An offset commit can also be lost (``commitAsync`` whose request fails): the committed offset
stays where it was until the next commit, as in the chapter's delivery model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._checker import Budget, Crash, Exercise, Fault, SolutionError, call, callable_with

MAX_POLL_RECORDS = 3
"""Records one ``poll()`` returns at most."""


@dataclass(frozen=True)
class Record:
    """A record of the partition: its ``offset`` (0, 1, 2, ...) and ``value``."""

    offset: int
    value: str


class PartitionConsumer:
    """One member's view of the partition: ``poll``, ``process``, ``commit``, ``position``,
    ``committed``."""

    def __init__(self, world: _World, name: str) -> None:
        self._world = world
        self.name = name
        self.position = world.committed

    @property
    def committed(self) -> int:
        """The group's committed offset: where a new owner would start."""
        return self._world.committed

    def poll(self) -> list[Record]:
        """The next records from this consumer's position; moves the position past them."""
        w = self._world
        w.budget.spend("consume(consumer)")
        batch = w.log[self.position : self.position + MAX_POLL_RECORDS]
        if batch:
            w.out.step(
                w.clock, self.name, "polled", f"offsets {batch[0].offset}..{batch[-1].offset}"
            )
        self.position += len(batch)
        return list(batch)

    def process(self, record: Record) -> None:
        """Apply the record's effect (write it to the database)."""
        if not isinstance(record, Record):
            raise TypeError(f"process(record) needs a record from poll(), got {record!r}")
        self._world.operation(self, "process", record)

    def commit(self, offset: int) -> None:
        """Commit ``offset``: the next record the group should read (last processed + 1)."""
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offset must be an int, got {offset!r} ({type(offset).__name__})")
        if not 0 <= offset <= len(self._world.log):
            raise ValueError(
                f"offset must be between 0 and the log end {len(self._world.log)}, got {offset}"
            )
        self._world.operation(self, "commit", offset)


class _World:
    def __init__(self, schedule, out) -> None:
        self.out = out
        self.budget = Budget()
        self.log = [Record(i, f"order-{100 + i}") for i in range(schedule.size)]
        self.committed = 0
        self.processed: dict[int, int] = {}
        self.faults = {(f.kind, f.target): f.at for f in schedule.faults}
        self.ops = 0
        self.clock = 0.0
        self.restarts: list[tuple[float, int]] = []  # (time, committed offset it restarted from)
        self.since_restart: set[int] = set()

    def operation(self, consumer, kind: str, value: Any) -> None:
        self.budget.spend("consume(consumer)")
        self.ops += 1
        self.clock = round(self.clock + 0.1, 6)
        crash = self.faults.get(("crash", self.ops))
        if crash == 0:
            self.out.step(self.clock, consumer.name, "crashed", f"just before {kind}")
            raise Crash
        if kind == "process":
            offset = value.offset
            if offset in self.since_restart:
                self.out.step(
                    self.clock,
                    f"offset {offset}",
                    "duplicated",
                    f"processed again by {consumer.name}",
                )
                self.out.broke(
                    "duplicates only where at-least-once allows them",
                    f"{consumer.name} processed offset {offset} twice without a crash or "
                    "rebalance in between: a record is processed once per poll",
                )
                return
            self.since_restart.add(offset)
            again = offset in self.processed
            self.processed[offset] = self.processed.get(offset, 0) + 1
            self.out.step(
                self.clock,
                f"offset {offset}",
                "redelivered, effect applied" if again else "effect applied",
                f"by {consumer.name}",
            )
        else:
            if ("lose_commit", self.ops) in self.faults:
                self.out.step(
                    self.clock,
                    consumer.name,
                    "commit lost",
                    f"commit({value}) never reached the broker",
                )
            else:
                self.committed = value
                self.out.step(self.clock, consumer.name, "committed", f"offset {value}")
        if crash == 1:
            self.out.step(self.clock, consumer.name, "crashed", f"just after {kind}")
            raise Crash


class CommitOffsets(Exercise):
    name = "ch07-commit-offsets"
    chapter = 7
    title = "Commit so that a crash loses nothing"
    signature = "consume(consumer) -> None"
    task = (
        "Write one pass of a consumer's poll loop; it is called again and again. "
        f"consumer.poll() returns up to {MAX_POLL_RECORDS} records (record.offset, "
        "record.value) from the consumer's position; consumer.process(record) applies one; "
        "consumer.commit(offset) commits the offset of the next record to read. The consumer can "
        "crash just before or after any process or commit, a rebalance can give the partition "
        "to another member between passes, and a commit can be lost. A new owner starts at the "
        "committed offset."
    )
    checks = (
        "A partition of up to 12 records under crashes, rebalances and lost commits. Checked: "
        "every record is processed (nothing lost); a record is processed again only after a "
        "crash or rebalance (the duplicates at-least-once allows); at the end the committed "
        "offset is the log end, so a restart would redo nothing."
    )
    min_size = 2
    max_size = 12
    size_unit = "record(s)"
    per_message = False

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "consume", 1, "consume(consumer)")

    def draw(self, rng, size):
        faults = []
        ops = 2 * size + 4
        for _ in range(rng.randint(0, 3)):
            op, point = rng.randint(1, ops), rng.randint(0, 1)
            when = "before" if point == 0 else "after"
            faults.append(Fault("crash", op, 0, point, f"crash {when} operation {op}"))
        if rng.random() < 0.4:
            p = rng.randint(2, size)
            faults.append(Fault("rebalance", p, 0, 0, f"rebalance before pass {p}"))
        if rng.random() < 0.3:
            op = rng.randint(1, ops)
            faults.append(Fault("lose_commit", op, 0, 0, f"the commit at operation {op} is lost"))
        return faults

    def run(self, solution, schedule, out):
        world = _World(schedule, out)
        members = iter(f"member-{i}" for i in range(1, 1000))
        consumer = PartitionConsumer(world, next(members))
        out.step(0, consumer.name, "assigned", "starts at committed offset 0")
        passes = 3 * schedule.size + 10
        for p in range(1, passes + 1):
            if ("rebalance", p) in world.faults:
                consumer = PartitionConsumer(world, next(members))
                world.since_restart = set()
                out.step(
                    world.clock,
                    consumer.name,
                    "rebalance",
                    f"takes the partition at committed offset {world.committed}",
                )
            try:
                call(solution, consumer, what="consume(consumer)")
            except Crash:
                world.clock = round(world.clock + 1, 6)
                consumer = PartitionConsumer(world, next(members))
                world.since_restart = set()
                out.step(
                    world.clock,
                    consumer.name,
                    "restarted",
                    f"starts at committed offset {world.committed}",
                )
            if out.failed:
                return
            world.clock = round(world.clock + 0.1, 6)
        end = world.clock + 1
        for record in world.log:
            if record.offset not in world.processed:
                out.broke(
                    "nothing is lost",
                    f"offset {record.offset} was never processed: the committed offset passed "
                    "it before it was processed, and then the consumer crashed. Commit only what "
                    "has been processed",
                    time=end,
                    subject=f"offset {record.offset}",
                )
                return
        if world.committed != len(world.log):
            out.broke(
                "the committed offset reaches the log end",
                f"everything was processed, but the committed offset is {world.committed}, not "
                f"{len(world.log)}: a restart now would process offsets {world.committed}.."
                f"{len(world.log) - 1} again. The committed offset is the next record to read: "
                "last processed + 1",
                time=end,
                subject="group",
            )

    def starter(self):
        return starter

    def reference(self):
        return reference


def starter(consumer):
    """Commit as soon as the records arrive, then process them."""
    records = consumer.poll()
    if records:
        consumer.commit(records[-1].offset + 1)
    for record in records:
        consumer.process(record)


def reference(consumer):
    """Process the batch, then commit the position: the offset after the last record
    processed. A crash before the commit means the batch is processed again (at-least-once);
    nothing is committed that was not processed, so nothing is lost. Committing whenever the
    committed offset is behind also repairs a lost commit on the next pass."""
    records = consumer.poll()
    for record in records:
        consumer.process(record)
    if consumer.position > consumer.committed:
        consumer.commit(consumer.position)


__all__ = ["CommitOffsets", "PartitionConsumer", "Record", "SolutionError"]
