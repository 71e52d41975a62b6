"""Chapter 2's contract scenario: a producer deploys a new version of its event mid-stream.

The ``order-events`` topic has three consumer groups, each reading only the fields it needs
(:class:`~mqlib.models.contracts.Reader`): **payment** needs ``order_id`` and ``total``, **email**
``order_id`` and ``customer_email``, **analytics** only ``order_id`` (it counts orders). The
producer publishes one ``OrderCreated`` event per second; after ``deploy_after`` events it deploys
``change`` and publishes the new version from then on.

Each group handles every event. An event its reader cannot handle fails; the group retries it
``max_attempts`` times (one second apart) and then moves it to the group's dead letter queue with
the error, which the consumer writes there (the broker never learns why processing failed), and
goes on with the next event. So a breaking change shows up as one group failing and
dead-lettering while the others carry on; a compatible one passes everywhere.

With ``registry`` set to a compatibility mode, the producer's serializer first registers the new
schema; a registry that refuses it stops the deployment (the producer keeps publishing the old
version), which is what a registry is for.
"""

from __future__ import annotations

from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.contracts import (
    REGISTRY_MODES,
    Envelope,
    Field,
    Reader,
    Schema,
    add_field,
    change_type,
    compatibility,
    example_payload,
    registry_accepts,
    remove_field,
    rename_field,
)

#: Version 1 of the chapter's event.
ORDER_CREATED_V1 = Schema(
    "OrderCreated",
    1,
    (Field("order_id", "int"), Field("total", "float"), Field("customer_email", "str")),
)

#: The changes a learner can deploy, by name: what each does to version 1.
CHANGES = {
    "add optional coupon": lambda s: add_field(s, "coupon", "str"),
    "add required coupon": lambda s: add_field(s, "coupon", "str", required=True),
    "rename total to amount": lambda s: rename_field(s, "total", "amount"),
    "total as a string": lambda s: change_type(s, "total", "str"),
    "remove customer_email": lambda s: remove_field(s, "customer_email"),
}

#: Which fields each group's code uses.
GROUP_NEEDS = {
    "payment": ("order_id", "total"),
    "email": ("order_id", "customer_email"),
    "analytics": ("order_id",),
}


def _payload(schema: Schema, n: int) -> dict[str, Any]:
    # Order n's values, written in whatever shape this version of the schema has.
    values = {
        "order_id": 1000 + n,
        "total": round(10.0 + 2.5 * n, 2),
        "amount": round(10.0 + 2.5 * n, 2),
        "customer_email": f"customer{n}@example.com",
        "coupon": "SPRING" if n % 2 else "",
    }
    field = schema.field("total")
    if field is not None and field.type == "str":
        values["total"] = f"{values['total']:.2f}"
    return example_payload(schema, {k: v for k, v in values.items() if schema.field(k)})


class ContractRun:
    """One run of the contract scenario; :meth:`table` and :meth:`summary` report it.

    Parameters
    ----------
    change:
        One of :data:`CHANGES`, deployed after ``deploy_after`` events.
    events:
        Events the producer publishes, one per simulated second.
    deploy_after:
        How many version-1 events come before the deployment.
    strict:
        Groups whose reader is strict (refuses unknown fields); the others are tolerant.
    registry:
        ``None`` (no registry) or a compatibility mode of :data:`REGISTRY_MODES` that the new
        schema must pass before the producer may use it.
    max_attempts:
        Attempts per event before a group dead-letters it.
    """

    def __init__(
        self,
        change: str = "rename total to amount",
        *,
        events: int = 10,
        deploy_after: int = 5,
        strict: tuple[str, ...] | list[str] = (),
        registry: str | None = None,
        max_attempts: int = 3,
        seed: int = 0,
    ) -> None:
        check.choice("change", change, CHANGES)
        self.change = change
        self.events = check.integer("events", events, minimum=1, maximum=1000)
        self.deploy_after = check.integer("deploy_after", deploy_after, minimum=0, maximum=events)
        if isinstance(strict, str):
            raise TypeError(f"strict must be a list of group names, got the string {strict!r}")
        check.collection("strict", strict)
        self.strict = tuple(check.choice("group in strict", g, GROUP_NEEDS) for g in strict)
        if registry is not None:
            check.choice("registry", registry, REGISTRY_MODES)
        self.registry = registry
        self.max_attempts = check.integer("max_attempts", max_attempts, minimum=1, maximum=10)
        self.old = ORDER_CREATED_V1
        self.new = CHANGES[change](ORDER_CREATED_V1)
        self.compatibility = compatibility(self.old, self.new)
        self.deployed = registry is None or registry_accepts(self.old, self.new, registry)
        self.readers = {
            group: Reader(ORDER_CREATED_V1, needs, tolerant=group not in self.strict)
            for group, needs in GROUP_NEEDS.items()
        }
        self.sim = Simulation(seed=seed)
        self.published: list[Envelope] = []
        self.handled: dict[str, list[str]] = {g: [] for g in GROUP_NEEDS}
        self.dead_letters: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUP_NEEDS}
        self.failed_attempts: dict[str, int] = dict.fromkeys(GROUP_NEEDS, 0)
        self._run()

    def _run(self) -> None:
        sim = self.sim
        if self.registry is not None:
            sim.record(
                "schema_registered" if self.deployed else "schema_rejected",
                mode=self.registry,
                version=self.new.version,
            )

        def producer():
            for n in range(1, self.events + 1):
                schema = self.new if (n > self.deploy_after and self.deployed) else self.old
                event = Envelope(
                    id=f"evt-{n}",
                    type=schema.type,
                    version=schema.version,
                    time=sim.now,
                    correlation_id=f"checkout-{n}",
                    payload=_payload(schema, n),
                )
                self.published.append(event)
                sim.record("publish", event=event.id, version=event.version)
                for group in GROUP_NEEDS:
                    sim.process(self._handle(group, event))
                yield sim.timeout(1.0)

        sim.process(producer())
        sim.run()

    def _handle(self, group: str, event: Envelope):
        sim = self.sim
        for attempt in range(1, self.max_attempts + 1):
            error = self.readers[group].read(event)
            if error is None:
                self.handled[group].append(event.id)
                sim.record("handled", group=group, event=event.id, attempt=attempt)
                return
            self.failed_attempts[group] += 1
            sim.record("failed", group=group, event=event.id, attempt=attempt, error=error)
            if attempt < self.max_attempts:
                yield sim.timeout(1.0)
        # The consumer gives up and writes the event, with its error, to its DLQ.
        entry = {
            "event": event.id,
            "version": event.version,
            "error": error,
            "attempts": self.max_attempts,
            "at": sim.now,
        }
        self.dead_letters[group].append(entry)
        sim.record("dead_letter", group=group, event=event.id, error=error)

    # -- results -------------------------------------------------------------------------------
    def first_failure(self, group: str) -> float | None:
        """When ``group`` first failed to handle an event (``None``: never)."""
        check.choice("group", group, GROUP_NEEDS)
        times = [e.time for e in self.sim.trace.of_kind("failed") if e.data["group"] == group]
        return times[0] if times else None

    def table(self) -> list[dict[str, Any]]:
        """One row per group: events handled, failed attempts, dead letters, first failure."""
        return [
            {
                "group": group,
                "reader": "strict" if group in self.strict else "tolerant",
                "handled": len(self.handled[group]),
                "failed_attempts": self.failed_attempts[group],
                "dead_lettered": len(self.dead_letters[group]),
                "first_failure": self.first_failure(group),
            }
            for group in GROUP_NEEDS
        ]

    def summary(self) -> str:
        """One line: the change, whether it was deployed, and what each group made of it."""
        kind = (
            "compatible both ways"
            if self.compatibility["full"]
            else (
                "backward only"
                if self.compatibility["backward"]
                else "forward only"
                if self.compatibility["forward"]
                else "breaking both ways"
            )
        )
        head = f"{self.change} (v{self.new.version}, {kind})"
        if not self.deployed:
            head += f": refused by the {self.registry} registry, the producer stays on v1"
        parts = [
            f"{r['group']} {r['handled']}/{self.events} handled, {r['dead_lettered']} dead-lettered"
            for r in self.table()
        ]
        return f"{head}; " + "; ".join(parts)


def compare_changes(**settings: Any) -> dict[str, ContractRun]:
    """Every change of :data:`CHANGES` run with the same ``settings``."""
    if "change" in settings:
        raise ValueError("compare_changes runs every change; do not pass change")
    return {name: ContractRun(name, **settings) for name in CHANGES}


def default_run() -> ContractRun:
    """The chapter's example: ``total`` is renamed to ``amount`` after five orders."""
    return ContractRun()
