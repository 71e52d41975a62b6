"""Chapter 7's durability table: one failure script, every combination of the settings.

The script runs on the chapter's cluster (3 brokers, topic "orders" with 3 partitions) and writes
to partition 0 only, one record a second for :data:`DURATION` seconds. Partition 0's replicas are
brokers 1 (the leader), 2 and, with replication factor 3, 3. The last of them is "the follower":

====  ==========================================================================================
t/s   what happens
====  ==========================================================================================
10    the follower falls behind: its broker stays up, but its fetches stop making progress
45    the leader drops it from the ISR (not caught up for more than 30 s, checked every 15 s)
60    the leader's broker crashes, right after that second's write
69    the controller notices (9 s session timeout) and elects a new leader, if it may
80    the follower recovers and fetches again
100   the old leader's broker restarts with the log it had
====  ==========================================================================================

:func:`durability_run` plays the script for one combination and returns the
:class:`~mqlib.scenarios.cluster.ClusterRun` (so the chapter's widget can show its end state);
:func:`outcome` reads off what happened to the writes; :func:`durability_table` does both for
every combination of replication factor, ``min.insync.replicas``, ``acks`` and unclean leader
election, and :func:`format_table` prints it. Kafka's defaults are ``min.insync.replicas=1``,
unclean leader election off and (since Kafka 3.0) ``acks=all``; rows with all three are marked.

The producer here does not retry: each refused write is counted once. Kafka's producer would
retry these retriable errors until ``delivery.timeout.ms`` (120 s), so in real Kafka a refusal
means a delayed write, and a failed one only when the outage outlasts that timeout.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .. import _validate as check
from .cluster import ClusterRun

#: Seconds the script runs; one write at each whole second 0 .. DURATION - 1.
DURATION = 120
#: When the follower falls behind, the leader crashes, the follower recovers, the leader returns.
FOLLOWER_STALLS_AT = 10
LEADER_DIES_AT = 60
FOLLOWER_RECOVERS_AT = 80
LEADER_RETURNS_AT = 100
#: The partition the script writes to.
PARTITION = 0

#: Kafka's defaults: broker ``min.insync.replicas=1``, ``unclean.leader.election.enable=false``
#: and the producer's ``acks=all`` (since 3.0).
KAFKA_DEFAULTS: dict[str, Any] = {
    "min_insync_replicas": 1,
    "unclean_leader_election": False,
    "acks": "all",
}

#: The combinations the table covers.
REPLICATION_FACTORS = (2, 3)
MIN_INSYNC_REPLICAS = (1, 2)
ACKS_SETTINGS: tuple[int | str, ...] = (1, "all")
UNCLEAN_SETTINGS = (False, True)


def durability_run(
    replication_factor: int = 3,
    min_insync_replicas: int = 1,
    acks: int | str = "all",
    unclean_leader_election: bool = False,
    *,
    brokers: int = 3,
    partitions: int = 3,
) -> ClusterRun:
    """Play the failure script with these settings and return the finished run (t = 120 s).

    ``replication_factor`` must be at least 2: the script needs a follower to fall behind. The
    other settings are checked by :class:`~mqlib.scenarios.cluster.ClusterRun` and by the first
    write (``acks``).
    """
    check.integer("replication_factor", replication_factor, minimum=2)
    run = ClusterRun(
        brokers=brokers,
        partitions=partitions,
        replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas,
        unclean_leader_election=unclean_leader_election,
    )
    replicas = run.cluster.partition(PARTITION).replicas
    leader, follower = replicas[0], replicas[-1]
    for second in range(DURATION):
        if second:
            run.advance(1.0)
        if second == FOLLOWER_STALLS_AT:
            run.stall_follower(follower)
        elif second == FOLLOWER_RECOVERS_AT:
            run.resume_follower(follower)
        elif second == LEADER_RETURNS_AT:
            run.restart_broker(leader)
        run.produce("order-42", f"event {second}", acks=acks, partition=PARTITION)
        if second == LEADER_DIES_AT:
            run.kill_broker(leader)
    run.advance(1.0)  # the last write's followers fetch it: nothing is left pending
    return run


#: The power-loss script: writes for this many seconds, then every broker loses power at once.
POWER_LOSS_AT = 60
#: ... and they all start again this many seconds later.
POWER_BACK_AFTER = 10


def power_loss_run(
    replication_factor: int = 3,
    min_insync_replicas: int = 2,
    acks: int | str = "all",
    *,
    writeback_delay: float = 30.0,
) -> ClusterRun:
    """One write a second to partition 0 for :data:`POWER_LOSS_AT` seconds; then all brokers
    lose power at the same instant and restart :data:`POWER_BACK_AFTER` seconds later, and the
    run goes on for 10 s more. Each broker keeps only what the operating system had written to
    disk (records older than ``writeback_delay``), because Kafka does not ``fsync`` each write."""
    check.integer("replication_factor", replication_factor, minimum=1)
    run = ClusterRun(
        replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas,
        writeback_delay=writeback_delay,
    )
    for second in range(POWER_LOSS_AT):
        if second:
            run.advance(1.0)
        run.produce("order-42", f"event {second}", acks=acks, partition=PARTITION)
    run.advance(1.0)
    brokers = sorted(run.cluster.brokers)
    for broker in brokers:
        run.kill_broker(broker, power_loss=True)
    run.advance(POWER_BACK_AFTER)
    for broker in brokers:
        run.restart_broker(broker)
    run.advance(10.0)
    return run


def outcome(run: ClusterRun) -> dict[str, Any]:
    """What happened to the script's writes to partition 0, as plain data.

    ``acknowledged``: writes the producer was told succeeded; ``acknowledged_lost``: of those,
    the ones missing from the partition's log at the end; ``refused``: writes that failed, with
    ``errors`` counting them by Kafka error; ``leaderless_seconds``: time with no live leader.
    """
    cluster = run.cluster
    futures = [f for f in cluster.futures if f.partition == PARTITION]
    part = cluster.partition(PARTITION)
    lost = [x for x in part.lost if x.acknowledged]
    errors = Counter(type(f.error).__name__ for f in futures if f.status == "failed")
    return {
        "replication_factor": cluster.replication_factor,
        "min_insync_replicas": cluster.min_insync_replicas,
        "unclean_leader_election": cluster.unclean_leader_election,
        "acks": futures[0].acks if futures else None,
        "writes": len(futures),
        "acknowledged": sum(f.acknowledged for f in futures),
        "acknowledged_lost": len(lost),
        "lost_offsets": [x.record.offset for x in lost],
        "refused": sum(errors.values()),
        "errors": dict(sorted(errors.items())),
        "pending": sum(f.status == "pending" for f in futures),
        "leaderless_seconds": cluster.leaderless_seconds(PARTITION),
    }


#: The keys of an :func:`outcome` row that :func:`format_table` and :func:`summary` print.
ROW_KEYS = (
    "replication_factor",
    "min_insync_replicas",
    "unclean_leader_election",
    "acks",
    "writes",
    "acknowledged",
    "acknowledged_lost",
    "refused",
    "errors",
    "leaderless_seconds",
)


def _row(name: str, row: Any, keys: tuple[str, ...] = ROW_KEYS) -> dict[str, Any]:
    """``row`` is an :func:`outcome` row (a dict with ``keys``, by default :data:`ROW_KEYS`)."""
    if not isinstance(row, dict):
        raise TypeError(
            f"{name} must be a row from outcome() (a dict), got {check._show(row)} "
            f"({type(row).__name__})"
        )
    missing = [k for k in keys if k not in row]
    if missing:
        raise ValueError(f"{name} must be a row from outcome(); it lacks {missing}")
    if "errors" in keys and not isinstance(row["errors"], dict):
        raise TypeError(f"{name}['errors'] must be a dict, got {check._show(row['errors'])}")
    return row


def is_kafka_default(row: dict[str, Any]) -> bool:
    """True when the row uses all three of Kafka's defaults (min ISR 1, clean only, acks=all)."""
    _row("row", row, tuple(KAFKA_DEFAULTS))
    return all(row[name] == value for name, value in KAFKA_DEFAULTS.items())


def durability_table() -> list[dict[str, Any]]:
    """:func:`outcome` of the failure script for every combination: replication factor 2 and 3,
    ``min.insync.replicas`` 1 and 2, ``acks`` 1 and ``all``, unclean election off and on."""
    rows = []
    for rf in REPLICATION_FACTORS:
        for min_isr in MIN_INSYNC_REPLICAS:
            for acks in ACKS_SETTINGS:
                for unclean in UNCLEAN_SETTINGS:
                    row = outcome(durability_run(rf, min_isr, acks, unclean))
                    row["kafka_default"] = is_kafka_default(row)
                    rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The table as text, one line per combination; ``*`` marks Kafka's default settings."""
    header = (
        "  RF  min.insync  acks  unclean | acked  acked+lost  refused  no leader (s)",
        "  --  ----------  ----  ------- | -----  ----------  -------  -------------",
    )
    check.collection("rows", rows)
    for i, r in enumerate(rows):
        _row(f"rows[{i}]", r)
    lines = list(header)
    for r in rows:
        lines.append(
            f"{'*' if r.get('kafka_default') else ' '} {r['replication_factor']:>2}"
            f"  {r['min_insync_replicas']:>10}  {r['acks']!s:>4}"
            f"  {'on' if r['unclean_leader_election'] else 'off':>7} |"
            f" {r['acknowledged']:>5}  {r['acknowledged_lost']:>10}  {r['refused']:>7}"
            f"  {r['leaderless_seconds']:>13g}"
        )
    return "\n".join(lines)


def summary(row: dict[str, Any]) -> str:
    """One sentence for one row (what the widget prints after running the script)."""
    _row("row", row)
    settings = (
        f"RF {row['replication_factor']}, min.insync.replicas={row['min_insync_replicas']}, "
        f"acks={row['acks']}, unclean election {'on' if row['unclean_leader_election'] else 'off'}"
    )
    errors = ", ".join(f"{n} {name}" for name, n in row["errors"].items()) or "none"
    return (
        f"{settings}: {row['writes']} writes, {row['acknowledged']} acknowledged, "
        f"{row['acknowledged_lost']} of them lost; {row['refused']} refused ({errors}); "
        f"{row['leaderless_seconds']:g} s without a leader"
    )
