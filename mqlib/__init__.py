"""mqlib: the engine behind the Messaging & Events course.

A deterministic discrete-event model of brokers, queues, logs and consumers. Layers, in the one
direction data flows:

- :mod:`mqlib.core` - simulated clock and event loop (SimPy), seeded randomness, the trace;
- :mod:`mqlib.models` - one messaging concept per module (work queue, consumer, service chain, ...);
- :mod:`mqlib.scenarios` - one scripted, parameterised run per chapter simulation;
- :mod:`mqlib.widgets` - ipywidgets + bqplot views over the scenarios (imported on demand, so the
  engine works without a notebook);
- :mod:`mqlib.quiz` - the chapters' question banks;
- :mod:`mqlib.exercises` - graded exercises: learner code run under seeded fault schedules.
"""

from .core import Simulation, Trace, TraceEvent
from .models.assignors import assign
from .models.consumer import Consumer
from .models.delivery import check_idempotent
from .models.log import PartitionedLog
from .models.partitioner import Partitioner, kafka_partition, murmur2
from .models.service_chain import FlowResult, OrderFlow, Step
from .models.topic import Topic
from .models.work_queue import Delivery, Message, WorkQueue
from .scenarios.cluster import ClusterRun
from .scenarios.guarantees import GuaranteesRun, compare_guarantees
from .scenarios.kafka_log import KafkaLogRun
from .scenarios.order_flow import compare_modes
from .scenarios.ordering import OrderingRun
from .scenarios.point_to_point import PointToPointRun
from .scenarios.pubsub import PubSubRun

__version__ = "0.1.0"

__all__ = [
    "ClusterRun",
    "Consumer",
    "GuaranteesRun",
    "KafkaLogRun",
    "OrderingRun",
    "PartitionedLog",
    "PubSubRun",
    "Topic",
    "check_idempotent",
    "compare_guarantees",
    "Delivery",
    "FlowResult",
    "Message",
    "OrderFlow",
    "PointToPointRun",
    "Simulation",
    "Step",
    "Trace",
    "TraceEvent",
    "Partitioner",
    "WorkQueue",
    "assign",
    "compare_modes",
    "kafka_partition",
    "murmur2",
]
