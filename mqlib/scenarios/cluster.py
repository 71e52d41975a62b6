"""Chapter 7's replicated log: topic "orders", 3 partitions, replication factor 3, 3 brokers.

:class:`ClusterRun` is what the chapter's widget drives and what its tests script: every button is
a method (:meth:`~ClusterRun.produce`, :meth:`~ClusterRun.kill_broker`,
:meth:`~ClusterRun.restart_broker`, :meth:`~ClusterRun.advance`, ...) and :meth:`~ClusterRun.state`
returns everything the picture needs as plain data. Keys go to partitions with Kafka's own
partitioner, so a learner can predict where ``"order-42"`` lands.
"""

from __future__ import annotations

from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.cluster import Cluster
from ..models.partitioner import Partitioner

#: The events of the chapter's default run: three orders, each created, paid and shipped.
DEFAULT_EVENTS: list[tuple[str, str]] = [
    (f"order-{order}", step) for order in (42, 43, 44) for step in ("created", "paid", "shipped")
]


#: Partition fetches one :meth:`ClusterRun.advance` may simulate (about a second of computing).
MAX_FETCHES = 100_000


class ClusterRun:
    """A live broker cluster that advances in simulated seconds.

    Parameters
    ----------
    brokers, partitions, replication_factor:
        The cluster and the topic's shape (brokers are numbered from 1).
    min_insync_replicas:
        ``min.insync.replicas``. The chapter uses 2 with RF 3, the usual production setting
        (Kafka's own default is 1).
    unclean_leader_election:
        ``unclean.leader.election.enable`` (Kafka's default: off).
    replica_lag_time_max, session_timeout, fetch_interval, writeback_delay:
        Seconds; see :class:`~mqlib.models.cluster.Cluster`.
    seed:
        Seeds the simulation (this scenario draws no random numbers; the seed is kept so that
        traces are comparable).
    """

    def __init__(
        self,
        *,
        brokers: int = 3,
        partitions: int = 3,
        replication_factor: int = 3,
        min_insync_replicas: int = 2,
        unclean_leader_election: bool = False,
        replica_lag_time_max: float = 30.0,
        session_timeout: float = 9.0,
        fetch_interval: float = 0.5,
        writeback_delay: float = 30.0,
        seed: int = 0,
    ) -> None:
        self.sim = Simulation(seed=seed)
        self.cluster = Cluster(
            self.sim,
            num_brokers=brokers,
            num_partitions=partitions,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
            unclean_leader_election=unclean_leader_election,
            replica_lag_time_max=replica_lag_time_max,
            session_timeout=session_timeout,
            fetch_interval=fetch_interval,
            writeback_delay=writeback_delay,
            topic="orders",
        )
        self.partitioner = Partitioner(partitions)

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def produce(
        self,
        key: str | bytes | None,
        value: Any = None,
        *,
        acks: int | str = "all",
        partition: int | None = None,
    ) -> dict[str, Any]:
        """Send one record; its partition is Kafka's choice for ``key``, unless ``partition``
        names one (as a Kafka ``ProducerRecord`` may).

        Returns the request as plain data. ``status`` is ``"acknowledged"``, ``"sent"``
        (``acks=0``), ``"pending"`` (``acks="all"`` waiting for followers to fetch: advance time)
        or ``"failed"`` with ``error`` naming Kafka's error, e.g. ``"NotEnoughReplicasError"``.
        """
        if key is not None and not isinstance(key, str | bytes):
            raise TypeError(f"key must be a str, bytes or None, got {key!r} ({type(key).__name__})")
        if partition is None:
            partition = self.partitioner.partition(key)
        future = self.cluster.produce(partition, key, value, acks=acks)
        self.sim.settle()
        return future.as_dict()

    def kill_broker(self, broker_id: int, *, power_loss: bool = False) -> None:
        """Crash broker ``broker_id`` now (the controller notices after the session timeout).
        With ``power_loss`` the machine goes down too and loses the records the operating
        system had not yet written to disk."""
        self.cluster.kill_broker(broker_id, power_loss=power_loss)
        self.sim.settle()

    def stall_follower(self, broker_id: int) -> None:
        """Broker ``broker_id`` stays up but its follower fetches make no progress."""
        self.cluster.stall_follower(broker_id)
        self.sim.settle()

    def resume_follower(self, broker_id: int) -> None:
        """Broker ``broker_id`` fetches normally again and catches up."""
        self.cluster.resume_follower(broker_id)
        self.sim.settle()

    def restart_broker(self, broker_id: int) -> None:
        """Bring broker ``broker_id`` back with the logs it had on disk."""
        self.cluster.restart_broker(broker_id)
        self.sim.settle()

    def set_unclean_leader_election(self, enabled: bool) -> None:
        """Allow (or forbid) an out-of-sync replica to become leader."""
        self.cluster.set_unclean_leader_election(enabled)
        self.sim.settle()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass, including what happens at the final instant
        (a fetch due at exactly that time)."""
        check.positive("seconds", seconds)
        cluster = self.cluster
        # one call may do at most MAX_FETCHES partition fetches (about a second of computing)
        per_second = cluster.num_brokers * cluster.num_partitions / cluster.fetch_interval
        limit = max(1.0, MAX_FETCHES / per_second)
        if seconds > limit:
            raise ValueError(
                f"seconds must be <= {limit:g} for this cluster ({cluster.num_brokers} brokers, "
                f"{cluster.num_partitions} partitions, a fetch every "
                f"{cluster.fetch_interval:g} s), got {seconds!r}: advance in several steps"
            )
        self.sim.advance(seconds)
        self.sim.settle()

    # -- state ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    def state(self) -> dict[str, Any]:
        """Plain data: brokers up/down, and per partition the leader, replicas, ISR, leader epoch,
        log end offset of each replica, high watermark, pending requests and lost records."""
        return self.cluster.state()

    def logs(self, partition: int) -> dict[int, list[dict[str, Any]]]:
        """Each replica's copy of ``partition``: broker id -> rows (offset, key, value, epoch,
        committed)."""
        part = self.cluster.partition(partition)
        return {b: self.cluster.log(partition, b) for b in part.replicas}

    def requests(self) -> list[dict[str, Any]]:
        """Every produce request so far, in order, with its outcome."""
        return [f.as_dict() for f in self.cluster.futures]

    def leaderless_seconds(self, partition: int) -> float:
        """Seconds ``partition`` has had no live leader (nothing could be written or read)."""
        return self.cluster.leaderless_seconds(partition)

    def lost_records(self) -> list[dict[str, Any]]:
        """The records elections have lost, with what their producers had been told."""
        return [lost.as_dict() for lost in self.cluster.lost_records()]

    def summary(self) -> str:
        """One line describing the state of the run."""
        futures = self.cluster.futures
        counts = {
            s: sum(f.status == s for f in futures)
            for s in ("acknowledged", "sent", "pending", "failed")
        }
        lost = self.cluster.lost_records()
        down = [b.id for b in self.cluster.brokers.values() if not b.alive]
        parts = "; ".join(
            f"p{p.id} leader {p.leader if p.leader is not None else 'none'} "
            f"epoch {p.leader_epoch} ISR {p.isr} HW {p.high_watermark}"
            for p in self.cluster.partitions
        )
        return (
            f"t={self.now:g}s: {len(futures)} produced ({counts['acknowledged']} acknowledged,"
            f" {counts['sent']} sent with acks=0, {counts['pending']} pending, "
            f"{counts['failed']} failed); lost {len(lost)} "
            f"({sum(x.acknowledged for x in lost)} acknowledged); "
            f"brokers down: {down or 'none'}; {parts}"
        )


def default_run() -> ClusterRun:
    """The chapter's opening picture: 9 keyed order events with ``acks="all"`` (RF 3, min ISR 2),
    1 s for the followers to fetch them, then broker 1 (leader of partition 0) crashes. The
    controller notices 9 s later and elects broker 2 from the ISR with leader epoch 1; nothing
    acknowledged is lost, and with one broker down 3 more events still commit."""
    run = ClusterRun()
    for key, step in DEFAULT_EVENTS:
        run.produce(key, step)
    run.advance(1.0)
    run.kill_broker(1)
    run.advance(10.0)
    for order in (42, 43, 44):
        run.produce(f"order-{order}", "delivered")
    run.advance(1.0)
    return run
