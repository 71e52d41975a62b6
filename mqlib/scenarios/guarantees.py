"""Chapter 3's scenario: the three delivery guarantees, over the same faults, charging an account.

Two ways in:

* :func:`compare_guarantees` runs at-most-once, at-least-once and exactly-once over one fault
  schedule and returns a table (a list of dicts), one row per guarantee.
* :class:`GuaranteesRun` is what the chapter's widget drives: pick a guarantee, arm a fault for the
  next message (:meth:`~GuaranteesRun.inject_lost_message`, :meth:`~GuaranteesRun.inject_lost_ack`,
  :meth:`~GuaranteesRun.crash_consumer`, ...), :meth:`~GuaranteesRun.send`, and read the counts.
  The run keeps a log of those actions (:meth:`~GuaranteesRun.actions`), so
  :meth:`~GuaranteesRun.set_guarantee` can replay the same story under another guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _validate as check
from ..core import Simulation
from ..models.delivery import (
    GUARANTEES,
    MAX_MONEY,
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

Action = tuple[str, tuple[Any, ...]]
"""One logged action of a :class:`GuaranteesRun`: a method name and its positional arguments."""

ACTIONS = ("send", "inject_lost_message", "inject_lost_ack", "inject_lost_commit", "crash_consumer")
"""The methods of :class:`GuaranteesRun` that are logged and can be replayed."""

DEFAULT_SCRIPT: tuple[Action, ...] = (
    ("send", (2,)),
    ("inject_lost_ack", ()),
    ("send", (1,)),
    ("crash_consumer", ("after_effect",)),
    ("send", (1,)),
    ("send", (1,)),
)
"""The chapter's opening story (see :func:`default_run`), as actions for :meth:`GuaranteesRun.play`:
two clean messages, a lost ack, a consumer crash after the charge, one more clean message."""


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
    faults = list(check.collection("faults", faults))
    return {
        g: simulate_pipeline(g, messages, faults, seed=seed, **settings).result()
        for g in GUARANTEES
    }


def compare_traces(
    messages: int = 10, faults: Iterable[Fault] = DEFAULT_FAULTS, *, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """The event trace of each guarantee's run (for golden files and step-by-step replays)."""
    faults = list(check.collection("faults", faults))
    return {
        g: simulate_pipeline(g, messages, faults, seed=seed).sim.trace.as_dicts()
        for g in GUARANTEES
    }


class GuaranteesRun:
    """A producer, a broker and a consumer charging $10 per message, driven one step at a time.

    Faults are *armed* for the next message: ``inject_lost_ack(); send()`` sends a message whose
    first ack is lost. Arming the same fault twice makes the retry fail too. :meth:`send` runs the
    simulation until that message has settled (retries, redeliveries and all).

    The run logs every send and every armed fault since the last :meth:`reset`
    (:meth:`actions`). :meth:`set_guarantee` uses the log to replay the same story on a fresh
    account under another guarantee, and :meth:`play` performs a list of actions (such as
    :data:`DEFAULT_SCRIPT`).

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
        self.start_balance = check.integer(
            "start_balance", start_balance, minimum=-MAX_MONEY, maximum=MAX_MONEY
        )
        self.amount = check.integer("amount", amount, minimum=1, maximum=MAX_MONEY)
        self.seed = check.integer("seed", seed)
        self.guarantee = guarantee
        self.reset()

    # -- actions (the widget's buttons) ---------------------------------------------------------
    def reset(self) -> None:
        """Start again: a fresh account, broker and consumer, nothing armed, an empty log."""
        self._fresh()
        self._log: list[Action] = []

    def set_guarantee(self, guarantee: str, *, replay: bool = True) -> None:
        """Switch to ``guarantee`` on a fresh account.

        With ``replay=True`` (the default) the actions logged since the last :meth:`reset` (sends
        and armed faults, see :meth:`actions`) are performed again, in order, under the new
        guarantee: the same story, told by another guarantee. With ``replay=False`` the run
        starts empty (nothing sent, an empty log).
        """
        check.choice("guarantee", guarantee, GUARANTEES)
        check.boolean("replay", replay)
        script = self._log if replay else []
        self.guarantee = guarantee
        self.reset()
        self.play(script)

    def play(self, actions: Iterable[Action]) -> None:
        """Perform ``actions``, a list of ``(method name, arguments)`` pairs such as
        ``[("send", (2,)), ("inject_lost_ack", ()), ("send", (1,))]``; each is logged as if
        called directly. Every name and pair is checked before the first action is performed;
        each method then checks its own arguments, before it changes anything."""
        if isinstance(actions, str) or not isinstance(actions, Iterable):
            raise TypeError(
                f"actions must be a list of (name, args) pairs, got {actions!r} "
                f"({type(actions).__name__})"
            )
        script = list(actions)
        for action in script:
            if (
                not isinstance(action, tuple | list)
                or len(action) != 2
                or not isinstance(action[1], tuple | list)
            ):
                raise TypeError(
                    f"actions must contain (name, args) pairs with args a tuple, got {action!r}"
                )
            check.choice("action", action[0], ACTIONS)
        for name, args in script:
            getattr(self, name)(*args)

    def inject_lost_message(self) -> None:
        """The next message's next send is lost on the way to the broker."""
        self._arm("lose_message")
        self._log.append(("inject_lost_message", ()))

    def inject_lost_ack(self) -> None:
        """The broker stores the next message, but its ack to the producer is lost."""
        self._arm("lose_ack")
        self._log.append(("inject_lost_ack", ()))

    def inject_lost_commit(self) -> None:
        """The consumer's offset commit for the next message never reaches the broker.

        Kafka's rule: the consumer keeps its position and goes on, and its next commit covers
        the lost one, so by itself this changes nothing. It matters when the consumer crashes
        (``crash_consumer``) on a later message before a commit lands: the group then resumes
        from the stale committed offset and re-reads everything after it.
        """
        self._arm("lose_commit")
        self._log.append(("inject_lost_commit", ()))

    def crash_consumer(self, point: str = "after_effect") -> None:
        """The consumer crashes while handling the next message, ``"before_effect"`` (after the
        fetch, before the charge) or ``"after_effect"`` (after the charge)."""
        check.choice("point", point, CRASH_POINTS)
        self._arm(f"crash_{point}")
        self._log.append(("crash_consumer", (point,)))

    def send(self, count: int = 1) -> None:
        """Send ``count`` messages, one after the other, each until it has settled."""
        check.integer("count", count, minimum=1, maximum=1000)
        self._log.append(("send", (count,)))
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

    def actions(self) -> list[Action]:
        """The sends and armed faults since the last :meth:`reset`, in order, as
        ``(method name, arguments)`` pairs; :meth:`set_guarantee` replays them and :meth:`play`
        accepts them."""
        return list(self._log)

    def balance_series(self) -> dict[str, list[Any]]:
        """The account balance over simulated time, and the balance the sends call for.

        Returns plain lists: ``time`` (seconds) and ``balance`` (dollars) step at every charge
        applied; ``expected_time`` and ``expected`` step down by one charge at each message's
        first send. Both series start at 0 s with the opening balance and end at :attr:`now`.
        Drawn as step-after lines, the gap between them is the money lost or charged twice.
        """
        times, balances = [0.0], [self.start_balance]
        expected_times, expected = [0.0], [self.start_balance]
        for event in self.events():
            if event["kind"] == "effect":
                times.append(float(event["time"]))
                balances.append(event["balance"])
            elif event["kind"] == "send" and event["attempt"] == 1:
                expected_times.append(float(event["time"]))
                expected.append(expected[-1] - self.amount)
        now = float(self.now)
        times.append(now)
        balances.append(self.balance)
        expected_times.append(now)
        expected.append(expected[-1])
        return {
            "time": times,
            "balance": balances,
            "expected_time": expected_times,
            "expected": expected,
        }

    def bookkeeping(self) -> dict[str, int]:
        """The extra state exactly-once keeps, counted from this run's engine state.

        ``producers_tracked``: producer ids whose last sequence number the broker keeps for the
        partition (0 unless the producer is idempotent; one entry per producer however many
        messages it sends); ``resends_rejected``: resends the broker recognised by that number
        and did not store; ``processed_ids_recorded``: message ids the consumer wrote to its
        processed-id set (one per message: the consumer's side grows with the traffic);
        ``duplicates_skipped``: deliveries the consumer skipped because the id was already there.
        """
        return {
            "producers_tracked": len(self.pipeline.broker.producer_state()),
            "resends_rejected": self.pipeline.broker.duplicates_rejected,
            "processed_ids_recorded": len(self.pipeline.store.processed_ids),
            "duplicates_skipped": sum(1 for e in self.events() if e["kind"] == "skipped"),
        }

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
    def _fresh(self) -> None:
        self.sim = Simulation(seed=self.seed)
        self.pipeline = DeliveryPipeline(
            self.sim, self.guarantee, start_balance=self.start_balance, amount=self.amount
        )
        self._armed: list[Fault] = []

    def _arm(self, kind: str) -> None:
        attempt = 1 + sum(1 for f in self._armed if f.kind == kind)
        self._armed.append(Fault(kind, message=1, attempt=attempt))  # renumbered in send()


def default_run() -> GuaranteesRun:
    """The chapter's opening picture, at-least-once: two clean messages, then a lost ack (the
    retry is stored twice), then a crash after the charge (the message is processed again),
    then a clean one (:data:`DEFAULT_SCRIPT`). Five messages sent, seven charges: $930 instead of
    $950."""
    run = GuaranteesRun("at-least-once")
    run.play(DEFAULT_SCRIPT)
    return run
