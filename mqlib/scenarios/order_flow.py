"""Chapter 0's scenario: the lesson's order flow run both ways with the same settings."""

from __future__ import annotations

from typing import Any

from ..models.service_chain import FlowResult, OrderFlow


def compare_modes(**settings: Any) -> dict[str, FlowResult]:
    """Run one order synchronously and asynchronously with the same ``settings``.

    ``settings`` are :class:`~mqlib.models.service_chain.OrderFlow`'s keyword arguments (latencies,
    down services, timeout, ...). The default is the lesson's example: the warehouse is down, the
    email service takes 3 s, the synchronous call times out after 5 s, and (async only) the
    warehouse comes back after 6 s.
    """
    if "mode" in settings:
        raise ValueError("compare_modes runs both modes; do not pass mode")
    settings.setdefault("recovers_at_ms", {"warehouse": 6000.0})
    return {mode: OrderFlow(mode, **settings).run() for mode in ("sync", "async")}
