"""A Kafka-style broker cluster: partitions replicated over brokers, the ISR and leader election.

A topic is split into partitions, and each partition is stored on ``replication_factor`` brokers.
One of those copies is the **leader**: producers write to it and consumers read from it. The
others are **followers**: they copy the leader's log by *fetching* from it, exactly as a consumer
would. The **in-sync replicas** (ISR) are the leader itself plus the followers that are caught up
with it: a follower that has not reached the leader's log end offset for longer than
``replica.lag.time.max.ms`` is dropped from the ISR, even though its broker is still running.

What a write means depends on the producer's ``acks`` setting:

``acks=0``
    Fire and forget: the producer does not wait for any answer.
``acks=1``
    The leader answers as soon as the record is in *its* log. If the leader dies before a follower
    fetched the record, a follower becomes leader without it: an acknowledged record is lost.
``acks="all"``
    The leader answers once every *current* ISR member has the record, that is once the **high
    watermark** (HW) has passed it. The HW is the offset up to which all ISR members have
    replicated; it is also what consumers may read. ``min.insync.replicas`` sets how small the ISR
    may be: when it is smaller, the leader refuses an ``acks="all"`` write outright
    (:class:`NotEnoughReplicasError`). With Kafka's default ``min.insync.replicas=1`` an ISR that
    has shrunk to the leader alone still accepts ``acks="all"`` writes, which then live on one
    machine only: if that machine is lost, so are they.

When a leader dies, the controller elects a new one from the ISR (a **clean** election), so every
record below the HW survives. If no ISR member is alive, the partition stays offline, unless
``unclean.leader.election.enable`` lets an out-of-sync replica lead: the partition is back at once,
but the records it never copied are gone. :attr:`Partition.lost` lists them. Each election bumps
the partition's **leader epoch**; records carry the epoch they were written in, and a follower
whose log disagrees with the leader's at some offset truncates its log back to that point before
it copies anything (Kafka does this with its leader-epoch cache; the outcome is the same).

Kafka does not ``fsync`` each write: it relies on replication for durability and leaves writing
to disk to the operating system (``flush.messages`` and ``flush.ms`` default to never). A broker
process that crashes loses nothing, because the operating system still holds its page cache;
a machine that loses power loses what the operating system had not written back yet.
:meth:`Cluster.kill_broker` with ``power_loss=True`` models that: records appended less than
``writeback_delay`` seconds before the crash vanish from that broker's logs. If every replica of a
partition loses power at once, even ``acks="all"`` records acknowledged with
``min.insync.replicas=2`` can be gone.

Defaults follow Apache Kafka 3.x/4.x (KRaft mode; Kafka 4.0 removed ZooKeeper mode)
----------------------------------------------------------------------------------
* ``acks="all"`` is the producer default (since Kafka 3.0, KIP-679, together with idempotence).
* ``min.insync.replicas=1`` (broker/topic default; production clusters usually set 2 with RF 3).
* ``unclean.leader.election.enable=false`` (the default since Kafka 0.11).
* ``replica.lag.time.max.ms=30000`` (since Kafka 2.5; 10 s before): a follower not caught up for
  more than 30 s leaves the ISR. As in Kafka, the leader checks every half of that time.
* ``broker.session.timeout.ms=9000``: the controller declares a silent broker dead after 9 s,
  removes it from every ISR and re-elects the leaders it held.
* ``flush.messages`` / ``flush.ms``: never (``Long.MAX_VALUE``), so no record is forced to disk.
  ``writeback_delay=30`` s stands for the operating system's write-back of dirty pages (Linux
  writes back pages that have been dirty for 30 s, ``vm.dirty_expire_centisecs=3000``).
* Followers fetch every 0.5 s. (A Kafka follower sends its next fetch as soon as the previous
  one returns, and the leader holds a fetch that finds no new data for up to
  ``replica.fetch.wait.max.ms=500``; here the lag is always the wait for the next fetch.)
* Replica placement: the round-robin rack-unaware assignment of Kafka's ``AdminUtils``
  (``assignReplicasToBrokers``) with a fixed start index of 0, so topic "orders" (3 partitions,
  RF 3, brokers 1-3) is laid out as in the lesson: partition 0 on brokers [1, 2, 3], partition 1 on
  [2, 3, 1], partition 2 on [3, 1, 2]; the first broker of each list is the preferred leader.
  (KRaft controllers place replicas with a randomised striped placer; pass ``assignment`` to pin
  any layout.)

Errors
------
Every error a broker returns here is *retriable* in Kafka (``RetriableException``): the Java
producer retries it by itself, with ``retry.backoff.ms`` between attempts, until
``delivery.timeout.ms`` (120 s by default) has passed since ``send()``, and only then reports it.
The model reports each refusal at once and does not retry (see Simplifications).

Simplifications
---------------
* A fetch is instantaneous: the follower copies everything it lacks, and the leader learns its new
  log end offset at the same instant (Kafka learns it with the follower's next fetch request).
  Replication lag is therefore the wait for the next fetch, at most ``fetch_interval``.
  :meth:`Cluster.stall_follower` stands for a follower whose fetches make no progress while its
  broker stays up (a failing disk, a saturated link): the leader drops it from the ISR after
  ``replica.lag.time.max.ms``.
* The controller is not a broker and never fails (a KRaft cluster runs a quorum of controllers).
  Elections pick the first replica of the assignment that is alive and in the ISR, as Kafka's
  controller does. There is no automatic preferred-leader rebalance
  (``auto.leader.rebalance.enable``) and no rack awareness.
* No eligible leader replicas (ELR, KIP-966): the model follows Kafka 3.x and 4.0, where ELR is
  off. New Kafka 4.1+ clusters turn it on: the high watermark then does not advance while the ISR
  is smaller than ``min.insync.replicas``, and the controller removes a broker that re-registers
  after an unclean shutdown (a power loss) from the ISR and ELR, since it may have lost its tail.
* When the controller fences a broker it removes it from every ISR, except when it is the last ISR
  member: that one stays, so that a clean election can wait for it to come back (Kafka's rule).
  A broker restarted before the session timeout is fenced at once when it re-registers.
* With unclean election enabled in the topic's configuration, the controller elects an
  out-of-sync replica as soon as the partition has no ISR member alive, as KRaft's controller
  does. Turning it on *later* (:meth:`Cluster.set_unclean_leader_election`) elects at once, as if
  the operator also ran ``kafka-leader-election.sh --election-type unclean``; on its own, KRaft's
  controller waits for its periodic check (every 5 minutes).
* A clean election keeps the partition's high watermark (Kafka's new leader can briefly report a
  lower one), capped at the new leader's log end offset (after a power loss). An unclean election
  sets the HW to the new leader's log end offset.
* The leader epoch increases when a leader is elected; a partition going offline keeps its epoch.
* A produce sent to a leader that has died but is not yet fenced fails with
  :class:`LeaderNotAvailableError`; a real producer sees a network error there (also retriable)
  and refreshes its metadata.
* Produce requests waiting for ``acks="all"`` fail with :class:`NotLeaderOrFollowerError` when
  their leader dies or is replaced; there is no request timeout (Kafka's
  ``request.timeout.ms=30000``) and no producer retry (a retry would be a new
  :meth:`Cluster.produce`; with idempotence, Kafka's default, a retried record is not stored
  twice).
* Write-back to disk is per record, exactly ``writeback_delay`` seconds after its append (Linux's
  flusher thread wakes every 5 s, so real write-back is a little later and in pages).
* Logs are lists of records; no segments, retention or byte sizes.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _validate as check
from ..core import Simulation

__all__ = [
    "ACKS",
    "Broker",
    "Cluster",
    "KafkaError",
    "LeaderNotAvailableError",
    "LostRecord",
    "NotEnoughReplicasAfterAppendError",
    "NotEnoughReplicasError",
    "NotLeaderOrFollowerError",
    "Partition",
    "ProduceFuture",
    "Record",
    "RecordMetadata",
    "ReplicaLog",
    "assign_replicas",
]

ACKS = (0, 1, "all")
"""The producer ``acks`` values. ``-1`` is accepted as a synonym of ``"all"``, as in Kafka."""


# -- errors, named after Kafka's -------------------------------------------------------------


class KafkaError(Exception):
    """Base of the errors a broker returns to a producer (Kafka's ``ApiException``s).

    ``retriable`` says whether Kafka's producer retries the error by itself (until
    ``delivery.timeout.ms``, 120 s by default) before it reports it to the application.
    """

    retriable = False


class NotEnoughReplicasError(KafkaError):
    """``acks="all"`` write refused: the ISR is smaller than ``min.insync.replicas``.

    Kafka's ``NotEnoughReplicasException``, a ``RetriableException``: nothing was appended, and
    Kafka's producer sends the record again until ``delivery.timeout.ms`` runs out.
    """

    retriable = True


class NotEnoughReplicasAfterAppendError(KafkaError):
    """The record was appended and replicated to the ISR, but the ISR had shrunk below
    ``min.insync.replicas`` by then (Kafka's ``NotEnoughReplicasAfterAppendException``, retriable:
    a retry appends the record again, which idempotence deduplicates).

    This is what brokers before Kafka 3.7 answered. Since 3.7 (KAFKA-15583) the high watermark does
    not advance while the ISR is below ``min.insync.replicas``, so such a write waits until its
    produce request times out (``REQUEST_TIMED_OUT`` after the producer's ``request.timeout.ms``,
    30 s) or the leader changes; the engine keeps the older, immediate answer."""

    retriable = True


class NotLeaderOrFollowerError(KafkaError):
    """The broker that took the write is no longer the partition's leader (it died or was
    replaced) before the record was committed (Kafka's ``NotLeaderOrFollowerException``,
    retriable: the producer refreshes its metadata and sends to the new leader)."""

    retriable = True


class LeaderNotAvailableError(KafkaError):
    """The partition has no live leader right now (Kafka's ``LeaderNotAvailableException``,
    retriable)."""

    retriable = True


# -- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record in a partition's log.

    ``id`` is unique in the cluster (the order of :meth:`Cluster.produce` calls), so the same
    record can be recognised in every replica's log. ``epoch`` is the leader epoch it was written
    in.
    """

    id: int
    partition: int
    offset: int
    key: str | bytes | None
    value: Any
    epoch: int
    acks: int | str
    produced_at: float


class ReplicaLog:
    """One broker's copy of one partition: records with offsets 0, 1, 2, ... (no gaps).

    ``appended_at`` holds the simulated time each record reached this copy, which decides whether
    the operating system had written it to disk before a power loss.
    """

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.appended_at: list[float] = []

    @property
    def log_end_offset(self) -> int:
        """The offset the next record will get (Kafka's LEO) = the number of records."""
        return len(self.records)

    def append(self, record: Record, at: float = 0.0) -> None:
        if record.offset != self.log_end_offset:
            raise ValueError(
                f"record offset {record.offset} is not the log end offset {self.log_end_offset}"
            )
        self.records.append(record)
        self.appended_at.append(at)

    def truncate(self, offset: int) -> list[Record]:
        """Drop every record at ``offset`` and above; return the dropped records."""
        check.integer("offset", offset, minimum=0)
        dropped = self.records[offset:]
        del self.records[offset:]
        del self.appended_at[offset:]
        return dropped

    def on_disk(self, now: float, writeback_delay: float) -> int:
        """How many records (from the start) the operating system has written to disk by ``now``:
        those appended at least ``writeback_delay`` seconds ago. Appends are in time order, so
        the written records are a prefix of the log."""
        check.number("now", now)
        check.non_negative("writeback_delay", writeback_delay)
        written = 0
        while written < len(self.records) and now - self.appended_at[written] >= writeback_delay:
            written += 1
        return written

    def ids(self) -> set[int]:
        return {r.id for r in self.records}

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class RecordMetadata:
    """What a successful produce returns: where the record landed (Kafka's ``RecordMetadata``).

    For ``acks=0`` the producer never hears back, so ``offset`` is ``-1``, as in Kafka.
    """

    topic: str
    partition: int
    offset: int


class ProduceFuture:
    """The answer to one :meth:`Cluster.produce`, like the future Kafka's ``send`` returns.

    ``status`` is ``"pending"`` (``acks="all"`` waiting for the ISR), ``"acknowledged"``
    (``acks`` 1 or ``"all"`` succeeded), ``"sent"`` (``acks=0``: done, nobody answered) or
    ``"failed"`` (``error`` says why). :meth:`get` returns the metadata or raises the error.
    """

    def __init__(
        self, cluster: Cluster, partition: int, key: Any, value: Any, acks: int | str
    ) -> None:
        self._cluster = cluster
        self.topic = cluster.topic
        self.partition = partition
        self.key = key
        self.value = value
        self.acks = acks
        self.record: Record | None = None
        self.status = "pending"
        self.error: KafkaError | None = None
        self.requested_at = cluster.sim.now
        self.completed_at: float | None = None
        self.event = cluster.sim.event()  # fires when done: ``yield future.event`` in a process

    @property
    def done(self) -> bool:
        return self.status != "pending"

    @property
    def acknowledged(self) -> bool:
        """True when the broker told the producer the write succeeded (acks 1 or "all")."""
        return self.status == "acknowledged"

    @property
    def offset(self) -> int | None:
        """The record's offset in the leader's log, if it was appended."""
        return None if self.record is None else self.record.offset

    def get(self) -> RecordMetadata:
        """The record's metadata, or raise the :class:`KafkaError` the broker returned.

        Raises ``RuntimeError`` while still pending: advance the simulation first.
        """
        if self.status == "pending":
            raise RuntimeError(
                "the produce request is still pending; advance the simulation "
                "until the followers have fetched the record"
            )
        if self.error is not None:
            raise self.error
        assert self.record is not None
        offset = -1 if self.acks == 0 else self.record.offset
        return RecordMetadata(self.topic, self.partition, offset)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for tables and widgets."""
        return {
            "partition": self.partition,
            "key": self.key,
            "value": self.value,
            "acks": self.acks,
            "offset": self.offset,
            "status": self.status,
            "error": None if self.error is None else type(self.error).__name__,
            "message": None if self.error is None else str(self.error),
            "requested_at": self.requested_at,
            "completed_at": self.completed_at,
        }

    def _complete(self, status: str, error: KafkaError | None = None) -> None:
        self.status = status
        self.error = error
        self.completed_at = self._cluster.sim.now
        self.event.succeed(self)

    def __repr__(self) -> str:
        extra = f", error={type(self.error).__name__}" if self.error else ""
        return (
            f"ProduceFuture(partition={self.partition}, offset={self.offset}, "
            f"acks={self.acks!r}, status={self.status!r}{extra})"
        )


@dataclass(frozen=True)
class LostRecord:
    """A record that was appended to a leader but is not in the partition's current leader's log.

    ``status`` is what its producer was told (``"acknowledged"``, ``"sent"``, ``"failed"``).
    """

    record: Record
    status: str
    lost_at: float
    leader_epoch: int  # the epoch of the leader that does not have it

    @property
    def acknowledged(self) -> bool:
        return self.status == "acknowledged"

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "partition": r.partition,
            "offset": r.offset,
            "key": r.key,
            "value": r.value,
            "epoch": r.epoch,
            "acks": r.acks,
            "status": self.status,
            "lost_at": self.lost_at,
            "leader_epoch": self.leader_epoch,
        }


@dataclass
class Broker:
    """A broker (server). ``alive`` is whether its process runs; ``fenced`` whether the controller
    has noticed that it died."""

    id: int
    alive: bool = True
    fenced: bool = False
    stalled: bool = False  # up and registered, but its follower fetches make no progress
    generation: int = 0  # bumped on every restart, so an old fetcher loop knows to stop
    leading: set[int] = field(default_factory=set)  # partitions this broker believes it leads


@dataclass
class Partition:
    """One partition: its replica assignment, leader, ISR, high watermark and logs."""

    id: int
    replicas: list[int]  # assignment; the first is the preferred leader
    leader: int | None
    isr: list[int]
    leader_epoch: int = 0
    high_watermark: int = 0
    logs: dict[int, ReplicaLog] = field(default_factory=dict)
    # The leader's view of each follower: log end offset at its last fetch, and the last time
    # that fetch left it fully caught up (Kafka's lastCaughtUpTimeMs).
    known_leo: dict[int, int] = field(default_factory=dict)
    last_caught_up: dict[int, float] = field(default_factory=dict)
    pending: list[ProduceFuture] = field(default_factory=list)
    lost: list[LostRecord] = field(default_factory=list)
    elections: int = 0
    # Time without a live leader: since when (None while one serves) and the total so far.
    leaderless_since: float | None = None
    leaderless_time: float = 0.0

    @property
    def online(self) -> bool:
        return self.leader is not None

    def log_end_offsets(self) -> dict[int, int]:
        return {b: self.logs[b].log_end_offset for b in self.replicas}


# -- placement -------------------------------------------------------------------------------


def assign_replicas(
    num_partitions: int, replication_factor: int, broker_ids: Iterable[int], *, start_index: int = 0
) -> dict[int, list[int]]:
    """Kafka's rack-unaware round-robin replica placement (``AdminUtils``).

    Partition ``p``'s first replica (its preferred leader) is broker ``(p + start_index) %
    brokers``; the others follow at a shift that grows by one every ``len(broker_ids)``
    partitions, so that followers spread too. Kafka draws ``start_index`` at random; it is fixed
    here.

    >>> assign_replicas(3, 3, [1, 2, 3])
    {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]}
    """
    check.integer("num_partitions", num_partitions, minimum=1)
    brokers = _broker_list(broker_ids)
    n = len(brokers)
    check.integer("replication_factor", replication_factor, minimum=1)
    if replication_factor > n:
        raise ValueError(
            f"replication_factor must be <= the number of brokers ({n}), got "
            f"{replication_factor}: each replica needs its own broker"
        )
    check.integer("start_index", start_index, minimum=0, maximum=n - 1)
    result: dict[int, list[int]] = {}
    shift = start_index
    for p in range(num_partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        replicas = [brokers[first]]
        for j in range(replication_factor - 1):
            step = 1 + (shift + j) % (n - 1)
            replicas.append(brokers[(first + step) % n])
        result[p] = replicas
    return result


def _broker_list(broker_ids: Iterable[int], *, name: str = "broker_ids") -> list[int]:
    if isinstance(broker_ids, str | bytes) or not isinstance(broker_ids, Iterable):
        raise TypeError(f"{name} must be a list of integers, got {broker_ids!r}")
    brokers = list(broker_ids)
    if not brokers:
        raise ValueError(f"{name} must name at least one broker, got []")
    for b in brokers:
        check.integer(name, b)
    if len(set(brokers)) != len(brokers):
        raise ValueError(f"{name} must be distinct broker ids, got {brokers}")
    return brokers


def _acks(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(
            f"acks must be 0, 1 or 'all' (or -1), got {value!r} ({type(value).__name__})"
        )
    if value == -1:
        return "all"
    return check.choice("acks", value, ACKS)


# -- the cluster -----------------------------------------------------------------------------


#: Bounds on a cluster's size and pace, so that one simulated minute stays a fast computation
#: (every follower fetches every partition it replicates once per ``fetch_interval``).
MAX_BROKERS = 9
MAX_PARTITIONS = 32
MIN_FETCH_INTERVAL = 0.01


class Cluster:
    """Brokers hosting the replicas of one topic, with followers fetching from leaders.

    Parameters
    ----------
    sim:
        The simulation the cluster lives in.
    num_brokers:
        Brokers, numbered ``1 .. num_brokers``.
    num_partitions, replication_factor:
        The topic's shape. ``replication_factor`` cannot exceed ``num_brokers``.
    min_insync_replicas:
        ``min.insync.replicas``: the smallest ISR that accepts ``acks="all"`` writes (1 to RF).
    unclean_leader_election:
        ``unclean.leader.election.enable``: may an out-of-sync replica become leader?
    replica_lag_time_max:
        ``replica.lag.time.max.ms`` in seconds.
    session_timeout:
        ``broker.session.timeout.ms`` in seconds: how long the controller takes to notice a dead
        broker (0 = at once).
    fetch_interval:
        Seconds between two fetches of a follower.
    writeback_delay:
        Seconds after which the operating system has written an appended record to disk; a
        broker that loses power (:meth:`kill_broker` with ``power_loss=True``) loses the newer
        ones. Kafka itself never forces a flush by default.
    assignment:
        Optional explicit placement ``{partition: [broker, ...]}`` (first = preferred leader);
        by default :func:`assign_replicas`.
    topic:
        The topic's name.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        num_brokers: int = 3,
        num_partitions: int = 3,
        replication_factor: int = 3,
        min_insync_replicas: int = 1,
        unclean_leader_election: bool = False,
        replica_lag_time_max: float = 30.0,
        session_timeout: float = 9.0,
        fetch_interval: float = 0.5,
        writeback_delay: float = 30.0,
        assignment: Mapping[int, Iterable[int]] | None = None,
        topic: str = "orders",
    ) -> None:
        if not isinstance(sim, Simulation):
            raise TypeError(f"sim must be an mqlib Simulation, got {type(sim).__name__}")
        self.sim = sim
        check.integer("num_brokers", num_brokers, minimum=1, maximum=MAX_BROKERS)
        check.integer("num_partitions", num_partitions, minimum=1, maximum=MAX_PARTITIONS)
        check.integer("replication_factor", replication_factor, minimum=1)
        if replication_factor > num_brokers:
            raise ValueError(
                f"replication_factor must be <= num_brokers ({num_brokers}), got "
                f"{replication_factor}: each replica of a partition needs its own broker"
            )
        check.integer("min_insync_replicas", min_insync_replicas, minimum=1)
        if min_insync_replicas > replication_factor:
            raise ValueError(
                f"min_insync_replicas must be <= replication_factor ({replication_factor}), got "
                f"{min_insync_replicas}: the ISR can never be larger than the replica set"
            )
        self.num_brokers = num_brokers
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.min_insync_replicas = min_insync_replicas
        self.unclean_leader_election = check.boolean(
            "unclean_leader_election", unclean_leader_election
        )
        self.replica_lag_time_max = check.positive("replica_lag_time_max", replica_lag_time_max)
        self.session_timeout = check.non_negative("session_timeout", session_timeout)
        self.fetch_interval = check.number(
            "fetch_interval", fetch_interval, minimum=MIN_FETCH_INTERVAL, maximum=60.0
        )
        self.writeback_delay = check.non_negative("writeback_delay", writeback_delay)
        self.topic = check.text("topic", topic)
        self.brokers = {b: Broker(b) for b in range(1, num_brokers + 1)}
        if assignment is None:
            placed = assign_replicas(num_partitions, replication_factor, list(self.brokers))
        else:
            placed = self._check_assignment(assignment)
        self.partitions = [self._new_partition(p, replicas) for p, replicas in placed.items()]
        self._records: dict[int, dict[int, tuple[Record, ProduceFuture]]] = {
            p: {} for p in range(num_partitions)
        }
        self._next_record_id = 1
        self.futures: list[ProduceFuture] = []
        for broker in self.brokers.values():
            self.sim.process(self._fetcher(broker, broker.generation))
        self.sim.process(self._isr_expiration())

    def _check_assignment(self, assignment: Mapping[int, Iterable[int]]) -> dict[int, list[int]]:
        if not isinstance(assignment, Mapping):
            raise TypeError(
                f"assignment must be a mapping partition -> list of broker ids, "
                f"got {type(assignment).__name__}"
            )
        if set(assignment) != set(range(self.num_partitions)) or len(assignment) != len(
            set(assignment)
        ):
            raise ValueError(
                f"assignment must have exactly the partitions 0..."
                f"{self.num_partitions - 1}, got {list(assignment)!r}"
            )
        placed = {}
        for p in range(self.num_partitions):
            replicas = _broker_list(assignment[p], name=f"assignment[{p}]")
            if len(replicas) != self.replication_factor:
                raise ValueError(
                    f"assignment for partition {p} must list replication_factor="
                    f"{self.replication_factor} brokers, got {replicas}"
                )
            for b in replicas:
                self._broker(b, name="assignment")
            placed[p] = replicas
        return placed

    def _new_partition(self, p: int, replicas: list[int]) -> Partition:
        leader = replicas[0]
        part = Partition(
            id=p,
            replicas=list(replicas),
            leader=leader,
            isr=list(replicas),
            logs={b: ReplicaLog() for b in replicas},
            known_leo={b: 0 for b in replicas},
            last_caught_up={b: self.sim.now for b in replicas},
        )
        self.brokers[leader].leading.add(p)
        return part

    # -- producer side -------------------------------------------------------------------------
    def produce(
        self,
        partition: int,
        key: str | bytes | None = None,
        value: Any = None,
        *,
        acks: int | str = "all",
    ) -> ProduceFuture:
        """Send one record to ``partition``'s leader; return its :class:`ProduceFuture`.

        Errors from the broker do not raise here: they are set on the future (``future.get()``
        raises them), as with Kafka's ``send``. Bad arguments raise ``ValueError``/``TypeError``.
        """
        self._partition_index(partition)
        if key is not None and not isinstance(key, str | bytes):
            raise TypeError(f"key must be a str, bytes or None, got {key!r} ({type(key).__name__})")
        acks = _acks(acks)
        future = ProduceFuture(self, partition, key, value, acks)
        self.futures.append(future)
        part = self.partitions[partition]
        leader = part.leader
        if leader is None or not self.brokers[leader].alive:
            why = (
                "is offline: no in-sync replica is alive"
                if leader is None
                else f"has no live leader: broker {leader} is down and the controller has not "
                f"noticed yet"
            )
            self._fail(future, LeaderNotAvailableError(f"partition {partition} {why}"))
            return future
        if acks == "all" and len(part.isr) < self.min_insync_replicas:
            self._fail(
                future,
                NotEnoughReplicasError(
                    f"partition {partition}: ISR {part.isr} has {len(part.isr)} member(s), fewer "
                    f"than min.insync.replicas={self.min_insync_replicas}; acks='all' write refused"
                ),
            )
            return future
        log = part.logs[leader]
        record = Record(
            id=self._next_record_id,
            partition=partition,
            offset=log.log_end_offset,
            key=key,
            value=value,
            epoch=part.leader_epoch,
            acks=acks,
            produced_at=self.sim.now,
        )
        self._next_record_id += 1
        log.append(record, self.sim.now)
        future.record = record
        self._records[partition][record.id] = (record, future)
        self.sim.record(
            "produce",
            partition=partition,
            offset=record.offset,
            key=_plain(key),
            acks=acks,
            leader=leader,
            epoch=part.leader_epoch,
        )
        if acks == 0:
            future._complete("sent")
        elif acks == 1:
            self._acknowledge(future)
        else:
            part.pending.append(future)
        self._advance_high_watermark(part)
        return future

    # -- failures ------------------------------------------------------------------------------
    def kill_broker(self, broker_id: int, *, power_loss: bool = False) -> None:
        """Crash a broker now; it stops fetching and serving at once.

        A crashed *process* (``power_loss=False``) keeps its whole log: what it had appended was
        in the operating system's page cache, which the OS writes to disk anyway. A machine that
        loses power (``power_loss=True``) keeps only what had been written back, the records
        appended at least ``writeback_delay`` seconds ago; the newer ones are gone from this
        broker's logs.

        Requests waiting on partitions it led fail. The controller notices after
        ``session_timeout`` seconds and then fences it: out of every ISR, new leaders elected.
        """
        broker = self._broker(broker_id)
        check.boolean("power_loss", power_loss)
        if not broker.alive:
            raise ValueError(f"broker_id {broker_id} is already down; restart it first")
        broker.alive = False
        broker.stalled = False  # whatever slowed it down, it comes back healthy
        broker.leading.clear()
        if power_loss:
            self.sim.record("broker_down", broker=broker_id, power_loss=True)
        else:
            self.sim.record("broker_down", broker=broker_id)
        for part in self.partitions:
            if part.leader == broker_id:
                if part.leaderless_since is None:
                    part.leaderless_since = self.sim.now
                self._fail_pending(
                    part, f"leader broker {broker_id} died before the record was committed"
                )
            if power_loss and broker_id in part.logs:
                log = part.logs[broker_id]
                dropped = log.truncate(log.on_disk(self.sim.now, self.writeback_delay))
                if dropped:
                    self.sim.record(
                        "unwritten_lost",
                        partition=part.id,
                        broker=broker_id,
                        offsets=[dropped[0].offset, dropped[-1].offset],
                    )
        if self.session_timeout == 0:
            self._fence(broker)
        else:
            generation = broker.generation
            timer = self.sim.timeout(self.session_timeout)
            timer.callbacks.append(lambda _e, b=broker, g=generation: self._session_expired(b, g))

    def restart_broker(self, broker_id: int) -> None:
        """Bring a dead broker back with the logs it had. Its replicas start as followers: they
        truncate whatever disagrees with the leader, catch up, and rejoin the ISR."""
        broker = self._broker(broker_id)
        if broker.alive:
            raise ValueError(f"broker_id {broker_id} is already running")
        if not broker.fenced:  # its new registration tells the controller the old one died
            self._fence(broker)
        broker.alive = True
        broker.fenced = False
        broker.generation += 1
        self.sim.record("broker_up", broker=broker_id)
        self.sim.process(self._fetcher(broker, broker.generation))
        for part in self.partitions:
            if part.leader is None and broker_id in part.replicas:
                self._elect(part, reason=f"broker {broker_id} restarted")

    def set_unclean_leader_election(self, enabled: bool) -> None:
        """Turn ``unclean.leader.election.enable`` on or off; turning it on elects a leader for
        every offline partition that has a live (out-of-sync) replica, as Kafka does."""
        self.unclean_leader_election = check.boolean("enabled", enabled)
        self.sim.record("config", unclean_leader_election=enabled)
        if enabled:
            for part in self.partitions:
                if part.leader is None:
                    self._elect(part, reason="unclean leader election enabled")

    def stall_follower(self, broker_id: int) -> None:
        """Broker ``broker_id`` stays up and keeps its controller session, but its follower
        fetches stop making progress (a failing disk, a saturated link). The leader drops it from
        the ISR once it has not caught up for ``replica_lag_time_max`` seconds."""
        broker = self._broker(broker_id)
        if not broker.alive:
            raise ValueError(f"broker_id {broker_id} is down; only a running broker can stall")
        if broker.stalled:
            raise ValueError(f"broker_id {broker_id} is already stalled")
        broker.stalled = True
        self.sim.record("follower_stalled", broker=broker_id)

    def resume_follower(self, broker_id: int) -> None:
        """End a :meth:`stall_follower`: the broker's next fetches catch up and, once it has
        reached the high watermark, it rejoins the ISR."""
        broker = self._broker(broker_id)
        if not broker.stalled:
            raise ValueError(f"broker_id {broker_id} is not stalled")
        broker.stalled = False
        self.sim.record("follower_resumed", broker=broker_id)

    # -- state ---------------------------------------------------------------------------------
    def leaderless_seconds(self, partition: int) -> float:
        """Simulated seconds ``partition`` has spent without a live leader so far: from the
        leader's crash until a new leader is elected (or until now, if none is yet). No record
        can be written or read in that time."""
        part = self.partition(partition)
        ongoing = 0.0 if part.leaderless_since is None else self.sim.now - part.leaderless_since
        return part.leaderless_time + ongoing

    def partition(self, partition: int) -> Partition:
        return self.partitions[self._partition_index(partition)]

    def log(self, partition: int, broker_id: int) -> list[dict[str, Any]]:
        """Broker ``broker_id``'s copy of ``partition`` as plain rows (offset, key, value, epoch,
        committed = below the high watermark)."""
        part = self.partition(partition)
        self._broker(broker_id)
        if broker_id not in part.logs:
            raise ValueError(
                f"broker_id {broker_id} holds no replica of partition {partition}; "
                f"its replicas are on brokers {part.replicas}"
            )
        return [
            {
                "offset": r.offset,
                "key": r.key,
                "value": r.value,
                "epoch": r.epoch,
                "committed": r.offset < part.high_watermark,
            }
            for r in part.logs[broker_id].records
        ]

    def leaders_of(self, partition: int) -> list[int]:
        """Live brokers that believe they lead ``partition`` (never more than one)."""
        self._partition_index(partition)
        return [b.id for b in self.brokers.values() if b.alive and partition in b.leading]

    def lost_records(self) -> list[LostRecord]:
        """Every record lost by an election, partition by partition, in offset order."""
        return [lost for part in self.partitions for lost in part.lost]

    def state(self) -> dict[str, Any]:
        """Plain data: brokers up/down and, per partition, leader, replicas, ISR, epoch, log end
        offsets per replica, high watermark and lost records."""
        return {
            "time": self.sim.now,
            "topic": self.topic,
            "brokers": {b.id: ("up" if b.alive else "down") for b in self.brokers.values()},
            "partitions": [
                {
                    "partition": p.id,
                    "leader": p.leader,
                    "replicas": list(p.replicas),
                    "isr": list(p.isr),
                    "leader_epoch": p.leader_epoch,
                    "log_end_offsets": p.log_end_offsets(),
                    "high_watermark": p.high_watermark,
                    "pending": len(p.pending),
                    "lost": [lost.as_dict() for lost in p.lost],
                }
                for p in self.partitions
            ],
        }

    # -- internals: replication ----------------------------------------------------------------
    def _fetcher(self, broker: Broker, generation: int) -> Generator[Any, Any, None]:
        # A follower's replica fetcher: every fetch_interval, ask each partition's leader for the
        # records after our log end offset. It stops when the broker dies or restarts.
        while True:
            yield self.sim.timeout(self.fetch_interval)
            if not broker.alive or broker.generation != generation:
                return
            if broker.stalled:
                continue
            for part in self.partitions:
                leader = part.leader
                if (
                    broker.id in part.logs
                    and leader is not None
                    and leader != broker.id
                    and self.brokers[leader].alive
                ):
                    self._fetch(part, broker.id)

    def _fetch(self, part: Partition, follower: int) -> None:
        leader_log = part.logs[part.leader].records
        log = part.logs[follower]
        # Find where the two logs stop agreeing: records are unique, so equal ids at an offset
        # mean equal logs up to there (Kafka compares leader epochs to the same effect).
        agree = min(len(log), len(leader_log))
        while agree and log.records[agree - 1].id != leader_log[agree - 1].id:
            agree -= 1
        dropped = log.truncate(agree)
        if dropped:
            self.sim.record(
                "truncate",
                partition=part.id,
                broker=follower,
                offset=agree,
                dropped=[r.offset for r in dropped],
            )
        copied = leader_log[agree:]
        for record in copied:
            log.append(record, self.sim.now)
        if copied:
            self.sim.record(
                "replicate",
                partition=part.id,
                broker=follower,
                offsets=[copied[0].offset, copied[-1].offset],
            )
        part.known_leo[follower] = log.log_end_offset
        part.last_caught_up[follower] = self.sim.now
        if follower not in part.isr and log.log_end_offset >= part.high_watermark:
            part.isr = [b for b in part.replicas if b in part.isr or b == follower]
            self.sim.record("isr_expand", partition=part.id, broker=follower, isr=list(part.isr))
        self._advance_high_watermark(part)

    def _advance_high_watermark(self, part: Partition) -> None:
        leader = part.leader
        if leader is None or not self.brokers[leader].alive:
            return
        candidate = part.logs[leader].log_end_offset
        for b in part.isr:
            if b != leader:
                candidate = min(candidate, part.known_leo[b])
        if candidate > part.high_watermark:
            part.high_watermark = candidate
            self.sim.record("high_watermark", partition=part.id, high_watermark=candidate)
        still_pending = []
        for future in part.pending:
            assert future.record is not None
            if future.record.offset < part.high_watermark:
                if len(part.isr) >= self.min_insync_replicas:
                    self._acknowledge(future)
                else:
                    self._fail(
                        future,
                        NotEnoughReplicasAfterAppendError(
                            f"partition {part.id}: offset {future.record.offset} was replicated, "
                            f"but the ISR {part.isr} had shrunk below "
                            f"min.insync.replicas={self.min_insync_replicas}"
                        ),
                    )
            else:
                still_pending.append(future)
        part.pending = still_pending

    def _isr_expiration(self) -> Generator[Any, Any, None]:
        # Kafka's leader runs its "isr-expiration" task every replica.lag.time.max.ms / 2.
        while True:
            yield self.sim.timeout(self.replica_lag_time_max / 2)
            for part in self.partitions:
                leader = part.leader
                if leader is None or not self.brokers[leader].alive:
                    continue
                laggards = [
                    b
                    for b in part.isr
                    if b != leader
                    and self.sim.now - part.last_caught_up[b] > self.replica_lag_time_max
                ]
                if laggards:
                    part.isr = [b for b in part.isr if b not in laggards]
                    self.sim.record(
                        "isr_shrink",
                        partition=part.id,
                        removed=laggards,
                        isr=list(part.isr),
                        reason="lagging",
                    )
                    self._advance_high_watermark(part)

    # -- internals: controller -----------------------------------------------------------------
    def _session_expired(self, broker: Broker, generation: int) -> None:
        if not broker.alive and not broker.fenced and broker.generation == generation:
            self._fence(broker)

    def _fence(self, broker: Broker) -> None:
        broker.fenced = True
        self.sim.record("broker_fenced", broker=broker.id)
        for part in self.partitions:
            if broker.id not in part.logs:
                continue
            if broker.id in part.isr and len(part.isr) > 1:
                part.isr = [b for b in part.isr if b != broker.id]
                self.sim.record(
                    "isr_shrink",
                    partition=part.id,
                    removed=[broker.id],
                    isr=list(part.isr),
                    reason="fenced",
                )
            if part.leader == broker.id:
                self._elect(part, reason=f"leader broker {broker.id} fenced")
            else:
                self._advance_high_watermark(part)

    def _elect(self, part: Partition, *, reason: str) -> None:
        alive = [b for b in part.replicas if self.brokers[b].alive]
        in_sync = [b for b in alive if b in part.isr]
        old = part.leader
        if old is not None:
            self.brokers[old].leading.discard(part.id)
        self._fail_pending(part, f"leadership of partition {part.id} moved away from broker {old}")
        if in_sync:
            leader, clean = in_sync[0], True
        elif alive and self.unclean_leader_election:
            leader, clean = alive[0], False
        else:
            if old is not None:
                part.leader = None
                self.sim.record(
                    "partition_offline", partition=part.id, isr=list(part.isr), reason=reason
                )
            return
        part.leader = leader
        part.leader_epoch += 1
        part.elections += 1
        if part.leaderless_since is not None:
            part.leaderless_time += self.sim.now - part.leaderless_since
            part.leaderless_since = None
        self.brokers[leader].leading.add(part.id)
        leo = part.logs[leader].log_end_offset
        if clean:
            # After a power loss the new leader may hold less than the old high watermark.
            part.high_watermark = min(part.high_watermark, leo)
            # Followers in the ISR surely hold the committed prefix; anything beyond it may
            # disagree with the new leader, so the leader counts only the prefix until they fetch.
            for b in part.isr:
                if b != leader:
                    part.known_leo[b] = min(part.known_leo[b], part.high_watermark)
                    part.last_caught_up[b] = self.sim.now
        else:
            part.isr = [leader]
            part.high_watermark = leo
        self.sim.record(
            "leader_elected",
            partition=part.id,
            leader=leader,
            epoch=part.leader_epoch,
            clean=clean,
            isr=list(part.isr),
            high_watermark=part.high_watermark,
            reason=reason,
        )
        self._update_lost(part)
        self._advance_high_watermark(part)

    def _update_lost(self, part: Partition) -> None:
        # The new leader's log is now the truth: every record it lacks will be truncated away
        # from the other replicas.
        assert part.leader is not None
        kept = part.logs[part.leader].ids()
        before = {lost.record.id for lost in part.lost}
        previous = {lost.record.id: lost for lost in part.lost}
        lost = []
        for record_id, (record, future) in self._records[part.id].items():
            if record_id in kept:
                continue
            lost.append(
                previous.get(record_id)
                or LostRecord(record, future.status, self.sim.now, part.leader_epoch)
            )
        lost.sort(key=lambda x: (x.record.offset, x.record.epoch, x.record.id))
        part.lost = lost
        new = [x for x in lost if x.record.id not in before]
        if new:
            self.sim.record(
                "records_lost",
                partition=part.id,
                offsets=[x.record.offset for x in new],
                acknowledged=[x.record.offset for x in new if x.acknowledged],
            )

    # -- internals: futures and arguments --------------------------------------------------------
    def _acknowledge(self, future: ProduceFuture) -> None:
        future._complete("acknowledged")
        if future.acks == "all":
            assert future.record is not None
            self.sim.record("ack", partition=future.partition, offset=future.record.offset)

    def _fail(self, future: ProduceFuture, error: KafkaError) -> None:
        future._complete("failed", error)
        self.sim.record(
            "produce_error",
            partition=future.partition,
            key=_plain(future.key),
            acks=future.acks,
            error=type(error).__name__,
        )

    def _fail_pending(self, part: Partition, why: str) -> None:
        pending, part.pending = part.pending, []
        for future in pending:
            self._fail(
                future,
                NotLeaderOrFollowerError(f"partition {part.id} offset {future.offset}: {why}"),
            )

    def _broker(self, broker_id: Any, *, name: str = "broker_id") -> Broker:
        check.integer(name, broker_id)
        if broker_id not in self.brokers:
            raise ValueError(
                f"{name} must be one of the broker ids {sorted(self.brokers)}, got {broker_id!r}"
            )
        return self.brokers[broker_id]

    def _partition_index(self, partition: Any) -> int:
        return check.integer("partition", partition, minimum=0, maximum=self.num_partitions - 1)


def _plain(key: Any) -> Any:
    """A JSON-friendly key for the trace."""
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return key
