"""Chapter 7 exercises: a consumer that commits its offsets at the right moment, and one whose
effect is idempotent.

The world is one partition of a Kafka topic and a consumer group that reads it. The learner
writes one pass of the consumer's poll loop: ``poll()`` returns the next records from the
consumer's position (at most :data:`MAX_POLL_RECORDS`, like ``max.poll.records``) and
``commit(offset)`` stores the group's committed offset, which in Kafka is the offset of the *next*
record to read, not of the last one read. When the consumer crashes, or a rebalance revokes the
partition and gives it to another member, the new owner starts at the committed offset: whatever
was processed after it is processed again (the duplicates at-least-once allows), and whatever was
committed but not processed is never processed at all. The revoked member no longer owns the
partition and must not touch it.

An offset commit can also be lost (``commitAsync`` whose request fails): the committed offset
stays where it was until the next commit, as in the chapter's delivery model. In the second
exercise the group coordinator can fail over: while a new broker takes the coordinator's role,
``commit`` raises :class:`RetriableCommitFailedError`, as Kafka's client reports
``RetriableCommitFailedException`` to a ``commitAsync`` callback. The error is retriable: commit
again later, and do not let it stop the consumer.

The first exercise applies effects with ``consumer.process(record)``; the second through a store
whose ``apply_once(key, record)`` applies an effect and records its key in one transaction, so a
redelivered record has no second effect.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ._checker import Budget, Crash, Exercise, Fault, SolutionError, call, callable_with

MAX_POLL_RECORDS = 3
"""Records one ``poll()`` returns at most."""

FAILOVER_OPERATIONS = (2, 5)
"""A coordinator failover lasts this many operations (fewest, most): commits fail during it."""


class RetriableCommitFailedError(Exception):
    """``commit`` failed because the group coordinator is failing over; commit again later."""


@dataclass(frozen=True)
class Record:
    """A record of the partition: its ``offset`` (0, 1, 2, ...) and ``value``."""

    offset: int
    value: str


class PartitionConsumer:
    """One member's view of the partition: ``poll``, ``process``, ``commit``, ``position``,
    ``committed``."""

    RetriableCommitFailedError = RetriableCommitFailedError

    def __init__(self, world: _World, name: str) -> None:
        self._world = world
        self.name = name
        self.position = world.committed
        self.revoked = False

    @property
    def committed(self) -> int:
        """The group's committed offset: where a new owner would start."""
        return self._world.committed

    def poll(self) -> list[Record]:
        """The next records from this consumer's position; moves the position past them."""
        w = self._world
        w.budget.spend("consume(consumer)")
        w.check_owner(self, "poll")
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


class GroupConsumer(PartitionConsumer):
    """A member of the second exercise: ``poll``, ``commit``, ``position``, ``committed``; the
    effect goes through the store, not through ``process``."""

    def process(self, record: Record) -> None:
        raise TypeError("apply the effect through the store (store.apply_once), not process()")


class EffectStore:
    """The database the consumer writes to; it outlives every member.

    ``apply(record)`` applies the record's effect (a second call applies it again);
    ``apply_once(key, record)`` applies it and records ``key`` in one transaction, and does
    nothing (returning ``False``) if ``key`` is already recorded; ``seen(key)`` and
    ``remember(key)`` read and record a key on their own."""

    def __init__(self, world: _World) -> None:
        self._world = world

    @staticmethod
    def _key(key: Any) -> Hashable:
        if isinstance(key, (list, dict, set)) or not isinstance(key, Hashable):
            raise TypeError(f"key must be a str, int or tuple, got {key!r} ({type(key).__name__})")
        return key

    def apply(self, record: Record) -> None:
        """Apply ``record``'s effect (not idempotent)."""
        self._world.store_op("apply", None, record)

    def apply_once(self, key: Hashable, record: Record) -> bool:
        """Apply ``record``'s effect and record ``key``, atomically; ``False`` if ``key`` was
        already recorded (then nothing is applied)."""
        return self._world.store_op("apply_once", self._key(key), record)

    def seen(self, key: Hashable) -> bool:
        """Whether ``key`` is recorded."""
        return self._world.store_op("seen", self._key(key), None)

    def remember(self, key: Hashable) -> None:
        """Record ``key`` (without applying anything)."""
        self._world.store_op("remember", self._key(key), None)


class _World:
    def __init__(self, schedule, out) -> None:
        self.out = out
        self.budget = Budget()
        self.log = [Record(i, f"order-{100 + i}") for i in range(schedule.size)]
        self.committed = 0
        self.processed: dict[int, int] = {}
        self.faults = {(f.kind, f.target): f.at for f in schedule.faults}
        self.failovers = [
            (f.target, f.target + f.at) for f in schedule.faults if f.kind == "failover"
        ]
        self.ops = 0
        self.clock = 0.0
        self.owner: PartitionConsumer | None = None
        self.resumed_at = 0  # the committed offset the current owner started from
        self.since_restart: set[int] = set()
        self.keys: dict[Hashable, int] = {}  # store: key -> offset whose effect recorded it
        self.skipped: dict[int, Hashable] = {}  # offset -> key that made apply_once skip it
        self.commit_error_raised = False

    def assign(self, consumer: PartitionConsumer) -> None:
        if self.owner is not None:
            self.owner.revoked = True
        self.owner = consumer
        self.resumed_at = self.committed
        self.since_restart = set()

    def check_owner(self, consumer: PartitionConsumer, kind: str) -> None:
        if consumer.revoked:
            self.out.step(self.clock, consumer.name, kind, "after its partition was revoked")
            self.out.broke(
                "a revoked member no longer touches the partition",
                f"{consumer.name} called {kind}() after a crash or rebalance gave the partition "
                f"to {self.owner.name}: keep no consumer from an earlier pass; use the one "
                "each pass is given",
            )
            raise Crash

    def tick(self, consumer, kind: str) -> int | None:
        """Count one operation; crash before it if the schedule says so. Returns the crash
        point (0 before, 1 after, None)."""
        self.budget.spend("consume(consumer)")
        self.check_owner(consumer, kind)
        self.ops += 1
        self.clock = round(self.clock + 0.1, 6)
        crash = self.faults.get(("crash", self.ops))
        if crash == 0:
            self.out.step(self.clock, consumer.name, "crashed", f"just before {kind}")
            raise Crash
        return crash

    def crash_after(self, consumer, crash, kind: str) -> None:
        if crash == 1:
            self.out.step(self.clock, consumer.name, "crashed", f"just after {kind}")
            raise Crash

    def effect(self, consumer, record: Record, how: str) -> bool:
        """Apply ``record``'s effect; break the rules a double effect breaks. False if broken."""
        offset = record.offset
        again = offset in self.processed
        self.processed[offset] = self.processed.get(offset, 0) + 1
        if again and self.idempotent:
            self.out.step(
                self.clock,
                f"offset {offset}",
                "duplicated",
                f"effect applied again by {consumer.name}{how}",
            )
            self.out.broke(
                "no effect is applied twice",
                f"{consumer.name} applied offset {offset}'s effect a second time after it was "
                "redelivered: the store must recognise a record it has applied, in the same "
                "transaction as the effect",
            )
            return False
        if again and offset < self.resumed_at:
            self.out.step(
                self.clock, f"offset {offset}", "duplicated", f"processed again by {consumer.name}"
            )
            self.out.broke(
                "duplicates only where at-least-once allows them",
                f"offset {offset} was committed (the committed offset was {self.resumed_at} when "
                f"{consumer.name} took over), yet {consumer.name} processed it again: only records "
                "after the last commit may be processed again after a crash or rebalance",
            )
            return False
        self.out.step(
            self.clock,
            f"offset {offset}",
            "redelivered, effect applied" if again else "effect applied",
            f"by {consumer.name}{how}",
        )
        return True

    def operation(self, consumer, kind: str, value: Any) -> None:
        crash = self.tick(consumer, kind)
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
            if not self.effect(consumer, value, ""):
                return
        elif any(a <= self.ops < b for a, b in self.failovers):
            self.commit_error_raised = True
            self.out.step(
                self.clock,
                consumer.name,
                "commit failed",
                f"commit({value}): the group coordinator is failing over (retriable)",
            )
            raise RetriableCommitFailedError(
                "the group coordinator is failing over; commit again later"
            )
        elif ("lose_commit", self.ops) in self.faults:
            self.out.step(
                self.clock,
                consumer.name,
                "commit lost",
                f"commit({value}) never reached the broker",
            )
        else:
            self.committed = value
            self.out.step(self.clock, consumer.name, "committed", f"offset {value}")
        self.crash_after(consumer, crash, kind)

    idempotent = False

    def store_op(self, kind: str, key: Any, record: Any) -> Any:
        consumer = self.owner
        if record is not None and not isinstance(record, Record):
            raise TypeError(f"store.{kind} needs a record from poll(), got {record!r}")
        crash = self.tick(consumer, f"store.{kind}")
        result: Any = None
        if kind == "apply":
            if not self.effect(consumer, record, " (store.apply)"):
                return None
        elif kind == "apply_once":
            if key in self.keys:
                result = False
                if self.keys[key] != record.offset:
                    self.skipped.setdefault(record.offset, key)
                self.out.step(
                    self.clock,
                    f"offset {record.offset}",
                    "skipped",
                    f"key {key!r} already recorded (by offset {self.keys[key]})",
                )
            else:
                self.keys[key] = record.offset
                result = True
                if not self.effect(consumer, record, f" (apply_once, key {key!r})"):
                    return None
        elif kind == "seen":
            result = key in self.keys
        else:
            self.keys.setdefault(key, -1)
            self.out.step(self.clock, consumer.name, "remembered", f"key {key!r}")
        self.crash_after(consumer, crash, f"store.{kind}")
        return result


def _draw(rng, size, ops, *, failover):
    faults = []
    for _ in range(rng.randint(0, 3)):
        op, point = rng.randint(1, ops), rng.randint(0, 1)
        when = "before" if point == 0 else "after"
        faults.append(Fault("crash", op, 0, point, f"crash {when} operation {op}"))
    # rebalances are as common as crashes: up to two, each revoking the partition between passes
    for p in sorted(rng.sample(range(2, size + 2), rng.choice((0, 1, 1, 2)))):
        faults.append(
            Fault("rebalance", p, 0, 0, f"rebalance before pass {p}: the partition moves")
        )
    if rng.random() < 0.3:
        op = rng.randint(1, ops)
        faults.append(Fault("lose_commit", op, 0, 0, f"the commit at operation {op} is lost"))
    if failover and rng.random() < 0.5:
        op, length = rng.randint(1, ops), rng.randint(*FAILOVER_OPERATIONS)
        faults.append(
            Fault(
                "failover",
                op,
                0,
                length,
                f"coordinator failover at operations {op}..{op + length - 1}: commits fail",
            )
        )
    return faults


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
        "crash just before or after any process or commit, a rebalance can revoke the partition "
        "and give it to another member between passes, and a commit can be lost. A new owner "
        "starts at the committed offset."
    )
    checks = (
        "A partition of up to 12 records under crashes, rebalances and lost commits. Checked: "
        "every record is processed (nothing lost); a record is processed again only after a "
        "crash or rebalance, and only if it came after the last commit (the duplicates "
        "at-least-once allows); a revoked member no longer touches the partition; at the end "
        "the committed offset is the log end, so a restart would redo nothing."
    )
    min_size = 2
    max_size = 12
    size_unit = "record(s)"
    per_message = False
    world = _World
    member = PartitionConsumer
    failover = False

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "consume", 1, "consume(consumer)")

    def draw(self, rng, size):
        return _draw(rng, size, 2 * size + 4, failover=self.failover)

    def call(self, solution, consumer, world):
        call(solution, consumer, what="consume(consumer)")

    def run(self, solution, schedule, out):
        world = self.world(schedule, out)
        members = iter(f"member-{i}" for i in range(1, 1000))
        consumer = self.member(world, next(members))
        world.assign(consumer)
        out.step(0, consumer.name, "assigned", "starts at committed offset 0")
        passes = 3 * schedule.size + 10
        for p in range(1, passes + 1):
            if ("rebalance", p) in world.faults:
                old = consumer.name
                consumer = self.member(world, next(members))
                world.assign(consumer)
                out.step(
                    world.clock,
                    consumer.name,
                    "rebalance",
                    f"partition revoked from {old}; {consumer.name} takes it at committed "
                    f"offset {world.committed}",
                )
            try:
                self.call(solution, consumer, world)
            except Crash:
                if out.failed:
                    return
                world.clock = round(world.clock + 1, 6)
                consumer = self.member(world, next(members))
                world.assign(consumer)
                out.step(
                    world.clock,
                    consumer.name,
                    "restarted",
                    f"starts at committed offset {world.committed}",
                )
            except SolutionError as error:
                if world.commit_error_raised and "RetriableCommitFailedError" in str(error):
                    out.broke(
                        "a retriable commit error does not stop the consumer",
                        "commit() raised RetriableCommitFailedError while the group coordinator "
                        "failed over, and consume() let it escape, which kills the consumer: "
                        "catch it and commit again later (on a later pass)",
                        time=world.clock,
                        subject=consumer.name,
                    )
                    return
                raise
            if out.failed:
                return
            world.clock = round(world.clock + 0.1, 6)
        end = world.clock + 1
        for record in world.log:
            if record.offset not in world.processed:
                key = world.skipped.get(record.offset)
                why = (
                    f"offset {record.offset}'s effect was never applied: apply_once skipped it "
                    f"because its key {key!r} was already recorded by another record. The key "
                    "must name this record and no other"
                    if key is not None
                    else f"offset {record.offset} was never processed: the committed offset "
                    "passed it before it was processed, and then the consumer crashed. Commit "
                    "only what has been processed"
                )
                out.broke("nothing is lost", why, time=end, subject=f"offset {record.offset}")
                return
        if world.committed != len(world.log):
            out.broke(
                "the committed offset reaches the log end",
                f"everything was processed, but the committed offset is {world.committed}, not "
                f"{len(world.log)}: a restart now would process offsets {world.committed}.."
                f"{len(world.log) - 1} again. The committed offset is the next record to read: "
                "last processed + 1; and a commit that failed or was lost must be made again",
                time=end,
                subject="group",
            )

    def starter(self):
        return starter

    def reference(self):
        return reference


class _StoreWorld(_World):
    idempotent = True


class IdempotentConsumer(CommitOffsets):
    name = "ch07-idempotent-consumer"
    title = "An idempotent effect: redelivered, but never applied twice"
    signature = "consume(consumer, store) -> None"
    task = (
        "Write one pass of a consumer's poll loop that applies each record's effect through "
        f"the store; it is called again and again. consumer.poll() returns up to "
        f"{MAX_POLL_RECORDS} records (record.offset, record.value); consumer.commit(offset) "
        "commits the next offset to read; during a group coordinator failover commit raises "
        "consumer.RetriableCommitFailedError (retriable: commit again later). The store "
        "outlives every member: store.apply(record) applies the effect (again on every call); "
        "store.apply_once(key, record) applies it and records key in one transaction, or does "
        "nothing if key is already recorded; store.seen(key) and store.remember(key) read and "
        "record a key on their own. Crashes, rebalances, lost commits and failovers as in "
        "ch07-commit-offsets."
    )
    checks = (
        "A partition of up to 12 records under crashes before or after any store call or "
        "commit, rebalances, lost commits and coordinator failovers. Checked: no record's "
        "effect is applied twice, though records are redelivered; every record's effect is "
        "applied (nothing lost); a retriable commit error does not stop the consumer; a revoked "
        "member no longer touches the partition; at the end the committed offset is the log end."
    )
    world = _StoreWorld
    member = GroupConsumer
    failover = True

    def validate(self, solution: Any) -> Any:
        return callable_with(solution, "consume", 2, "consume(consumer, store)")

    def draw(self, rng, size):
        return _draw(rng, size, 3 * size + 4, failover=True)

    def call(self, solution, consumer, world):
        call(solution, consumer, EffectStore(world), what="consume(consumer, store)")

    def starter(self):
        return idempotent_starter

    def reference(self):
        return idempotent_reference


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


def idempotent_starter(consumer, store):
    """At-least-once, with an effect that is not idempotent: a redelivery applies it again."""
    for record in consumer.poll():
        store.apply(record)
    if consumer.position > consumer.committed:
        try:
            consumer.commit(consumer.position)
        except consumer.RetriableCommitFailedError:
            return  # retriable: a later pass commits again


def idempotent_reference(consumer, store):
    """Apply each record through ``apply_once`` keyed by its offset (topic, partition and
    offset name one record, and the same one on every redelivery), so the effect and the key
    are recorded in one transaction: a crash cannot fall between them. Then commit whenever the
    committed offset is behind; a commit that fails during a coordinator failover is simply
    made again on a later pass."""
    for record in consumer.poll():
        store.apply_once(("orders", 0, record.offset), record)
    if consumer.position > consumer.committed:
        try:
            consumer.commit(consumer.position)
        except consumer.RetriableCommitFailedError:
            return  # retriable: the next pass sees the committed offset behind and commits again


__all__ = [
    "CommitOffsets",
    "EffectStore",
    "GroupConsumer",
    "IdempotentConsumer",
    "PartitionConsumer",
    "Record",
    "RetriableCommitFailedError",
    "SolutionError",
]
