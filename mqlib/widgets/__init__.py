"""ipywidgets + bqplot views over the scenarios. A view draws what its scenario reports and turns
button clicks into scenario method calls; it holds no messaging logic of its own.

Each view lives in its own module and is imported on first use, so that ``from mqlib.widgets import
PointToPoint`` does not load every chapter's view.
"""

from importlib import import_module
from typing import Any

_VIEWS = {
    "SyncVsAsync": "order_flow",
    "PointToPoint": "point_to_point",
    "PubSub": "pubsub",
    "DeliveryGuarantees": "guarantees",
    "MessageOrdering": "ordering",
    "Backpressure": "backpressure",
    "DeadLetters": "dead_letter",
    "RetryStorm": "retries",
    "KafkaLog": "kafka_log",
    "Rebalancing": "rebalance",
    "KafkaCluster": "cluster",
    "MessageQueueSimulator": "playground",
}

__all__ = list(_VIEWS)


def __getattr__(name: str) -> Any:
    if name in _VIEWS:
        return getattr(import_module(f".{_VIEWS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
