"""The same experiments on every real broker, one module per broker, and what they observed.

Each module here (``jetstream``, ``rabbitmq``, ``sqs``, ``redis_streams``, ``kafka``) runs the
course's scripted experiments with that broker's own client against a server started by
``mqlib.real`` and reports what it saw, as :class:`Cell` values keyed by the rows of :data:`ROWS`::

    def observe(server) -> dict[str, Cell]: ...

A cell's ``text`` is written from its ``evidence`` (the values the run measured: delivery counts,
who received what, what reached the dead-letter queue, what overflow dropped), never typed by hand;
a broker without the feature says so in ``text`` and says what a user does instead.
:mod:`mqlib.real.compare` calls every module's ``observe`` and builds the comparison table of
chapter 9.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROWS = (
    "unit of delivery",
    "what triggers redelivery",
    "delivery counter",
    "dead-letter mechanism",
    "deduplication",
    "ordering unit",
    "overflow policies",
)


@dataclass(frozen=True)
class Cell:
    """One observed fact about one broker: the sentence shown and the measurements behind it."""

    text: str
    evidence: dict[str, Any] = field(default_factory=dict)
