"""Chapter 3's scenario: the three delivery guarantees, over the same faults, charging an account.

Two ways in:

* :func:`compare_guarantees` runs at-most-once, at-least-once and exactly-once over one fault
  schedule and returns a table (a list of dicts), one row per guarantee.
* :class:`GuaranteesRun` is what the chapter's widget drives: pick a guarantee, arm a fault for the
  next message (:meth:`~GuaranteesRun.inject_lost_message`, :meth:`~GuaranteesRun.inject_lost_ack`,
  :meth:`~GuaranteesRun.crash_consumer`, ...), :meth:`~GuaranteesRun.send`, and read the counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.delivery import (
    GUARANTEES,
    DeliveryPipeline,
    DeliveryResult,
    Fault,
    simulate_pipeline,
)

DEFAULT_FAULTS: tuple[Fault, ...] = (
    Fault("lose_message", message=3),
    Fault("lose_ack", message=5),
    Fault("crash_after_effect", message=7),
    Fault("crash_before_effect", message=8),
    Fault("lose_commit", message=9),
)
"""The chapter's schedule for ten messages: one fault of every kind, each on the first try."""

CRASH_POINTS = ("before_effect", "after_effect")


def compare_guarantees(
    messages: int = 10, faults: Iterable[Fault] = DEFAULT_FAULTS, *, seed: int = 0, **settings: Any
) -> list[dict[str, Any]]:
    """Run the three guarantees over the same ``faults`` and return one table row for each.

    Each row has ``guarantee, sent, stored, delivered, processed, lost, duplicates,
    final_balance, expected_balance``. Pass ``faults=random_faults(seed, messages, ...)`` (from
    :mod:`mqlib.models.delivery`) for a random schedule; ``settings`` go to
    :class:`~mqlib.models.delivery.DeliveryPipeline`.
    """
    return [
        result.as_row()
        for result in compare_results(messages, faults, seed=seed, **settings).values()
    ]


def compare_results(
    messages: int = 10, faults: Iterable[Fault] = DEFAULT_FAULTS, *, seed: int = 0, **settings: Any
) -> dict[str, DeliveryResult]:
    """Like :func:`compare_guarantees`, with the full :class:`DeliveryResult` per guarantee."""
    faults = list(faults)
    return {
        g: simulate_pipeline(g, messages, faults, seed=seed, **settings).result()
        for g in GUARANTEES
    }


def compare_traces(
    messages: int = 10, faults: Iterable[Fault] = DEFAULT_FAULTS, *, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """The event trace of each guarantee's run (for golden files and step-by-step replays)."""
    faults = list(faults)
    return {
        g: simulate_pipeline(g, messages, faults, seed=seed).sim.trace.as_dicts()
        for g in GUARANTEES
    }


class GuaranteesRun:
    """A producer, a broker and a consumer charging $10 per message, driven one step at a time.

    Faults are *armed* for the next message: ``inject_lost_ack(); send()`` sends a message whose
    first ack is lost. Arming the same fault twice makes the retry fail too. :meth:`send` runs the
    simulation until that message has settled (retries, redeliveries and all).

    Parameters
    ----------
    guarantee:
        ``"at-most-once"``, ``"at-least-once"`` or ``"exactly-once"``.
    start_balance, amount:
        The account's opening balance and each charge, in dollars.
    seed:
        Seeds the simulation (the faults are never random here: you arm them).
    """

    def __init__(
        self,
        guarantee: str = "at-least-once",
        *,
        start_balance: int = 1000,
        amount: int = 10,
        seed: int = 0,
    ) -> None:
        check.choice("guarantee", guarantee, GUARANTEES)
        self.start_balance = check.integer("start_balance", start_balance)
        self.amount = check.integer("amount", amount, minimum=1)
        self.seed = check.integer("seed", seed)
        self.guarantee = guarantee
        self.reset()

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def reset(self) -> None:
        """Start again: a fresh account, broker and consumer, nothing armed."""
        self.sim = Simulation(seed=self.seed)
        self.pipeline = DeliveryPipeline(
            self.sim, self.guarantee, start_balance=self.start_balance, amount=self.amount
        )
        self._armed: list[Fault] = []

    def set_guarantee(self, guarantee: str) -> None:
        """Switch the guarantee. This starts a fresh run: a new account, nothing sent."""
        self.guarantee = check.choice("guarantee", guarantee, GUARANTEES)
        self.reset()

    def inject_lost_message(self) -> None:
        """The next message's next send is lost on the way to the broker."""
        self._arm("lose_message")

    def inject_lost_ack(self) -> None:
        """The broker stores the next message, but its ack to the producer is lost."""
        self._arm("lose_ack")

    def inject_lost_commit(self) -> None:
        """The consumer's offset commit for the next message never reaches the broker."""
        self._arm("lose_commit")

    def crash_consumer(self, point: str = "after_effect") -> None:
        """The consumer crashes while handling the next message, ``"before_effect"`` (after the
        fetch, before the charge) or ``"after_effect"`` (after the charge)."""
        check.choice("point", point, CRASH_POINTS)
        self._arm(f"crash_{point}")

    def send(self, count: int = 1) -> None:
        """Send ``count`` messages, one after the other, each until it has settled."""
        check.integer("count", count, minimum=1, maximum=1000)
        for _ in range(count):
            armed, self._armed = self._armed, []
            number = len(self.pipeline.messages) + 1
            for fault in armed:
                self.pipeline.add_fault(Fault(fault.kind, number, fault.attempt))
            self.pipeline.send()
            self.sim.run()  # until no event is left: the message is stored and handled

    # -- state ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    @property
    def balance(self) -> int:
        """The account balance in dollars."""
        return self.pipeline.store.balance

    def armed(self) -> list[str]:
        """The faults waiting for the next message, e.g. ``["lose_ack (try 1)"]``."""
        return [f"{f.kind} (try {f.attempt})" for f in self._armed]

    def result(self) -> DeliveryResult:
        """The counts and balances so far."""
        return self.pipeline.result()

    def per_message(self) -> list[dict[str, Any]]:
        """One row per message: ``message, stored, delivered, effects`` (charges applied)."""
        return self.pipeline.per_message()

    def counts(self) -> dict[str, Any]:
        """The counts as one table row."""
        return self.result().as_row()

    def events(self) -> list[dict[str, Any]]:
        """Everything that happened, in order, as plain dicts."""
        return self.sim.trace.as_dicts()

    def summary(self) -> str:
        """One line describing the run."""
        r = self.result()
        armed = f"; armed: {', '.join(self.armed())}" if self._armed else ""
        return (
            f"{r.guarantee}: sent {r.sent}, stored {r.stored}, delivered {r.delivered}, "
            f"charges applied {r.processed}; lost {r.lost}, duplicates {r.duplicates}; "
            f"balance ${r.final_balance} (expected ${r.expected_balance}){armed}"
        )

    # -- internals -----------------------------------------------------------------------------
    def _arm(self, kind: str) -> None:
        attempt = 1 + sum(1 for f in self._armed if f.kind == kind)
        self._armed.append(Fault(kind, message=1, attempt=attempt))  # renumbered in send()


def default_run() -> GuaranteesRun:
    """The chapter's opening picture, at-least-once: two clean messages, then a lost ack (the
    retry is stored twice), then a crash after the charge (the message is processed again),
    then a clean one. Five messages sent, seven charges: $930 instead of $950."""
    run = GuaranteesRun("at-least-once")
    run.send(2)
    run.inject_lost_ack()
    run.send()
    run.crash_consumer("after_effect")
    run.send()
    run.send()
    return run
