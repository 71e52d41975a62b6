"""Chapter 0's order flow: the same five downstream services called synchronously or fed by events.

*Synchronous*: the order service does its own work, then calls payment, inventory, email,
warehouse and analytics one after another, waiting for each answer. A call to a service that is down
fails, the chain stops there, and the user gets an error. How long the failing call takes depends on
how the service is down (``failure``): a *hung* service (or an unreachable host, or one slower than
the timeout) never answers, so the call waits the whole timeout; a service whose process died on a
host that is still up is *refused* at once, because the host's operating system rejects the
connection (a TCP reset), so the call fails after about ``refuse_ms``.

Whatever ran before the failure has already happened - the card is charged - while
the services after it never heard of the order: a partial failure.

*Asynchronous*: the order service does its own work, publishes one "order created" event and
answers the user. Each service has its own queue and consumes the event at its own pace; a service
that is down leaves the event waiting in its queue and processes it when it comes back.

All times are in milliseconds here, because that is how the lesson speaks about latencies; the
simulation clock of this model counts milliseconds too, so the numbers come out exact.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _validate as check
from ..core import Simulation
from .work_queue import WorkQueue

#: The lesson's services, in call order, with their latency in milliseconds.
DEFAULT_LATENCIES_MS: dict[str, float] = {
    "payment": 200.0,
    "inventory": 30.0,
    "email": 3000.0,
    "warehouse": 100.0,
    "analytics": 20.0,
}

#: What a successful call means, for the one-line explanations.
EFFECTS: dict[str, str] = {
    "payment": "payment charged",
    "inventory": "inventory decremented",
    "email": "confirmation email sent",
    "warehouse": "warehouse notified",
    "analytics": "analytics recorded",
}

MODES = ("sync", "async")

FAILURES = ("hang", "refuse")
"""How a down service fails a synchronous call: ``"hang"`` (no answer until the caller's timeout:
a hung process or an unreachable host) or ``"refuse"`` (the connection is refused at once: the
process is dead but its host is up)."""


@dataclass(frozen=True)
class Step:
    """What happened to one service for one order.

    ``status`` is ``"ok"``, ``"timeout"`` (the call failed after waiting the timeout),
    ``"refused"`` (the connection was refused at once),
    ``"not_reached"`` (sync: the chain stopped before it), ``"queued"`` (async: the event is still
    waiting in the service's queue because the service is down) or ``"working"`` (async: the
    service has the event but had not finished when the run stopped at ``horizon_ms``).
    ``start_ms``/``end_ms`` are ``None`` for a step that never ran; for a queued step ``start_ms``
    is when the event arrived, for a working one when the service took it.
    """

    service: str
    status: str
    start_ms: float | None
    end_ms: float | None


@dataclass(frozen=True)
class FlowResult:
    """The outcome of one order through the chain."""

    mode: str
    user_wait_ms: float
    outcome: str  # "confirmed" or "error"
    steps: tuple[Step, ...]
    inconsistent: bool
    explanation: str
    trace: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def step(self, service: str) -> Step:
        """The step of ``service``."""
        for s in self.steps:
            if s.service == service:
                return s
        raise ValueError(
            f"service must be one of {[s.service for s in self.steps]}; got {service!r}"
        )

    def summary(self) -> str:
        """One line: mode, what the user saw and after how long, and any inconsistency."""
        label = "Synchronous" if self.mode == "sync" else "Asynchronous"
        line = f"{label}: the user waited {self.user_wait_ms:,.0f} ms and saw "
        line += "'Order confirmed'" if self.outcome == "confirmed" else "an error"
        return f"{line}. {self.explanation}"


def _mapping(name: str, value: Any) -> Mapping[str, float]:
    """``value`` as a mapping of service name -> milliseconds (``None`` is an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a mapping of service name to milliseconds, got {value!r} "
            f"({type(value).__name__})"
        )
    return value


def _and(items: Any) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class OrderFlow:
    """One order through the order service and its five downstream services.

    Parameters
    ----------
    mode:
        ``"sync"`` (call each service in turn) or ``"async"`` (publish an event and return).
    latencies_ms:
        Latency of each service; services not given keep :data:`DEFAULT_LATENCIES_MS`.
    down:
        Names of services that are down.
    failure:
        How a down service fails a synchronous call: ``"hang"`` (the default, the lesson's
        example: no answer until ``timeout_ms``) or ``"refuse"`` (refused after ``refuse_ms``).
    refuse_ms:
        How long a refused connection takes to fail (a round trip to a live host: 1 ms).
    timeout_ms:
        How long a synchronous call waits before giving up (the lesson's example: 5,000 ms).
    order_ms:
        The order service's own work (50 ms).
    publish_ms:
        Async mode: the time to publish the event to the broker.
    recovers_at_ms:
        Async mode: when each down service comes back (absent: it stays down for the whole run).
    horizon_ms:
        Async mode: stop the run at this time. ``None`` (the default) runs until every service
        that is up, or comes back, has processed its event.
    """

    def __init__(
        self,
        mode: str = "sync",
        *,
        latencies_ms: Mapping[str, float] | None = None,
        down: tuple[str, ...] | list[str] | set[str] = ("warehouse",),
        failure: str = "hang",
        refuse_ms: float = 1.0,
        timeout_ms: float = 5000.0,
        order_ms: float = 50.0,
        publish_ms: float = 5.0,
        recovers_at_ms: Mapping[str, float] | None = None,
        horizon_ms: float | None = None,
    ) -> None:
        self.services = list(DEFAULT_LATENCIES_MS)
        self.mode = check.choice("mode", mode, MODES)
        self.latencies_ms = dict(DEFAULT_LATENCIES_MS)
        for name, value in _mapping("latencies_ms", latencies_ms).items():
            self.set_latency(name, value)
        if isinstance(down, str):
            raise TypeError(f"down must be a collection of service names, got the string {down!r}")
        if not isinstance(down, list | tuple | set | frozenset):
            raise TypeError(
                f"down must be a list, tuple or set of service names (() for none), got {down!r} "
                f"({type(down).__name__})"
            )
        self.down: set[str] = set()
        for name in down:
            check.choice("down", name, self.services)
            self.set_down(name, True)
        self.failure = check.choice("failure", failure, FAILURES)
        self.refuse_ms = check.non_negative("refuse_ms", refuse_ms)
        self.timeout_ms = check.positive("timeout_ms", timeout_ms)
        self.order_ms = check.non_negative("order_ms", order_ms)
        self.publish_ms = check.non_negative("publish_ms", publish_ms)
        self.recovers_at_ms: dict[str, float] = {}
        for name, value in _mapping("recovers_at_ms", recovers_at_ms).items():
            self._check_service(name)
            self.recovers_at_ms[name] = check.non_negative(f"recovers_at_ms[{name!r}]", value)
        self.horizon_ms = None if horizon_ms is None else check.positive("horizon_ms", horizon_ms)
        if self.horizon_ms is not None and self.horizon_ms < self.order_ms + self.publish_ms:
            raise ValueError(
                f"horizon_ms must be >= order_ms + publish_ms ({self.order_ms + self.publish_ms:g} "
                f"ms), got {horizon_ms!r}: the run must last until the order is confirmed"
            )

    # -- settings ------------------------------------------------------------------------------
    def _check_service(self, name: str) -> str:
        return check.choice("service", name, self.services)

    def set_latency(self, service: str, ms: float) -> None:
        """Set a service's latency in milliseconds (>= 0)."""
        self._check_service(service)
        self.latencies_ms[service] = check.non_negative(f"latency of {service!r} (ms)", ms)

    def set_down(self, service: str, down: bool = True) -> None:
        """Mark a service down (``True``) or up (``False``)."""
        self._check_service(service)
        check.boolean("down", down)
        if down:
            self.down.add(service)
        else:
            self.down.discard(service)

    # -- running -------------------------------------------------------------------------------
    def run(self) -> FlowResult:
        """Simulate one order in the current mode and return what happened."""
        return self._run_sync() if self.mode == "sync" else self._run_async()

    def _run_sync(self) -> FlowResult:
        sim = Simulation(seed=0)
        steps: list[Step] = []
        state: dict[str, Any] = {}

        def order_service() -> Generator[Any, Any, None]:
            yield sim.timeout(self.order_ms)
            sim.record("order_created")
            for i, name in enumerate(self.services):
                start = sim.now
                latency = self.latencies_ms[name]
                refused = name in self.down and self.failure == "refuse"
                if refused or name in self.down or latency > self.timeout_ms:
                    if refused:  # a dead process on a live host: the connection is reset
                        yield sim.timeout(self.refuse_ms)
                        sim.record("call_refused", service=name)
                        steps.append(Step(name, "refused", start, sim.now))
                    else:  # hung or unreachable: nothing comes back until the timeout
                        yield sim.timeout(self.timeout_ms)
                        sim.record("call_timeout", service=name)
                        steps.append(Step(name, "timeout", start, sim.now))
                    steps.extend(Step(n, "not_reached", None, None) for n in self.services[i + 1 :])
                    state["failed"] = name
                    break
                yield sim.timeout(latency)
                sim.record("call_ok", service=name)
                steps.append(Step(name, "ok", start, sim.now))
            state["wait"] = sim.now

        sim.process(order_service())
        sim.run()
        failed = state.get("failed")
        done = [s.service for s in steps if s.status == "ok"]
        if failed is None:
            explanation = "Every service answered in time."
            inconsistent = False
        else:
            missed = [s.service for s in steps if s.status != "ok"]
            inconsistent = bool(done)
            if inconsistent:
                verb = "was" if len(missed) == 1 else "were"
                explanation = (
                    f"Inconsistent: {_and(EFFECTS[d] for d in done)}, but "
                    f"{_and(missed)} {verb} never told about the order."
                )
            else:
                explanation = f"{failed} failed first, so nothing else happened."
        return FlowResult(
            "sync",
            state["wait"],
            "error" if failed else "confirmed",
            tuple(steps),
            inconsistent,
            explanation,
            sim.trace.as_dicts(),
        )

    def _run_async(self) -> FlowResult:
        sim = Simulation(seed=0)
        queues = {
            name: WorkQueue(sim, visibility_timeout=3_600_000.0, name=name)
            for name in self.services
        }
        starts: dict[str, float] = {}
        ends: dict[str, float] = {}
        state: dict[str, float] = {}

        def order_service() -> Generator[Any, Any, None]:
            yield sim.timeout(self.order_ms)
            sim.record("order_created")
            yield sim.timeout(self.publish_ms)
            for queue in queues.values():  # one copy of the event per service's queue
                queue.send("order created", message_id="order-1")
            state["wait"] = sim.now
            sim.record("user_confirmed")

        def service(name: str) -> Generator[Any, Any, None]:
            if name in self.down:
                if name not in self.recovers_at_ms:
                    return  # stays down: the event keeps waiting in its queue
                yield sim.timeout(self.recovers_at_ms[name])
                sim.record("service_recovered", service=name)
            delivery = yield queues[name].receive(name)
            starts[name] = sim.now
            yield sim.timeout(self.latencies_ms[name])
            queues[name].ack(delivery)
            ends[name] = sim.now

        sim.process(order_service())
        for name in self.services:
            sim.process(service(name))
        sim.run(until=self.horizon_ms)  # None: until nothing is left to happen
        steps = []
        for name in self.services:
            if name in ends:
                steps.append(Step(name, "ok", starts[name], ends[name]))
            elif name in starts:
                steps.append(Step(name, "working", starts[name], None))
            else:
                steps.append(Step(name, "queued", state["wait"], None))
        queued = [s.service for s in steps if s.status == "queued"]
        late = [n for n in self.services if n in self.down and n in ends]
        parts = ["The order is confirmed; each service works at its own pace."]
        if late:
            parts.append(
                " ".join(
                    f"The {n} service was down; its event waited and was processed at "
                    f"{ends[n]:,.0f} ms after it recovered."
                    for n in late
                )
            )
        if queued:
            parts.append(f"Still waiting in a queue: {', '.join(queued)}.")
        working = [s.service for s in steps if s.status == "working"]
        if working:
            parts.append(f"Still working when the run stopped: {', '.join(working)}.")
        return FlowResult(
            "async",
            state["wait"],
            "confirmed",
            tuple(steps),
            False,
            " ".join(parts),
            sim.trace.as_dicts(),
        )
