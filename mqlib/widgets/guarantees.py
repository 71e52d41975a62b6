"""Chapter 3's view: producer -> broker -> consumer charging $10 per message, under a guarantee."""

from __future__ import annotations

import html
import math
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..models.delivery import GUARANTEES
from ..scenarios.guarantees import CRASH_POINTS, GuaranteesRun, default_run
from ._base import PALETTE, SimulationView, assign, held, nice_ceiling

SERIES = ("stored", "delivered", "effects")
SERIES_LABELS = {"stored": "stored by the broker", "delivered": "delivered", "effects": "charged"}
SERIES_COLOURS = [PALETTE["blue"], PALETTE["sky"], PALETTE["orange"]]


#: At most this many message ids are written under the bars; the others keep their bar unlabelled.
MAX_LABELS = 10


def _message_labels(ids: list[str], most: int = MAX_LABELS) -> dict[str, str]:
    """The ``tick_labels`` that thin the message axis to at most ``most`` labels: every
    ``step``-th id keeps its label, starting half a step in (so that no label sits on the y axis
    or runs off the right edge), and the others get an empty one. (An ordinal axis ignores string
    ``tick_values``, so the labels are blanked instead.)"""
    if len(ids) <= most:
        return {}
    step = math.ceil(len(ids) / most)
    return {m: "" for i, m in enumerate(ids) if i % step != step // 2}


#: The bars stand in this many slots, doubled whenever the messages outgrow them.
MIN_SLOTS = 10


def _slot_count(messages: int) -> int:
    """Slots for ``messages`` bars: :data:`MIN_SLOTS`, doubled until they all fit. A send that
    fits leaves the ordinal domain as it is, so only the new bars are drawn; only a send that
    doubles the slots moves every bar and tick."""
    slots = MIN_SLOTS
    while slots < messages:
        slots *= 2
    return slots


def _time_ticks(end: float) -> list[float]:
    """Round tick positions from 0 to ``end`` seconds, at most six of them."""
    magnitude = 10 ** math.floor(math.log10(end / 5))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if end / (m * magnitude) <= 5)
    return [round(i * step, 9) for i in range(int(end / step + 1e-9) + 1)]


class DeliveryGuarantees(SimulationView):
    """Per-message counts (stored, delivered, charged) and the account balance over time.

    Every control is also a method: :meth:`set_guarantee`, :meth:`send`,
    :meth:`inject_lost_message`, :meth:`inject_lost_ack`, :meth:`inject_lost_commit`,
    :meth:`crash_consumer` and :meth:`reset`; each calls the same method of the
    :class:`~mqlib.scenarios.guarantees.GuaranteesRun` it draws. That run logs its sends and faults,
    so switching the guarantee replays the same story on a fresh account
    (:meth:`GuaranteesRun.set_guarantee <mqlib.scenarios.guarantees.GuaranteesRun.set_guarantee>`).
    Pass ``run`` to view a run you scripted yourself; the default is
    :func:`~mqlib.scenarios.guarantees.default_run` (two clean messages, a lost ack, a consumer
    crash after the charge, one more clean message).

    The bars stand in numbered slots (10, doubled whenever the messages outgrow them) that the
    axis labels with their messages; :attr:`slot_ids` lists the message of each slot, ``""`` for
    an empty one.
    """

    def __init__(self, run: GuaranteesRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, GuaranteesRun, default_run)
        self._build()
        self.refresh()

    # -- scriptable actions (each button calls one of these) ------------------------------------
    def set_guarantee(self, guarantee: str) -> None:
        """Switch to ``guarantee``: the run replays its sends and faults on a fresh account."""
        self.run.set_guarantee(guarantee, replay=True)  # validates, then replays
        self.refresh()

    def send(self, count: int = 1) -> None:
        """The producer sends ``count`` "charge $10" messages (each runs until it has settled)."""
        self._act("send", count)

    def inject_lost_message(self) -> None:
        """The next message's next send is lost on its way to the broker."""
        self._act(
            "inject_lost_message", notice="(The next message's next send will be lost; press Send.)"
        )

    def inject_lost_ack(self) -> None:
        """The broker stores the next message, but its ack back to the producer is lost."""
        self._act("inject_lost_ack", notice="(The next message's ack will be lost; press Send.)")

    def inject_lost_commit(self) -> None:
        """The consumer's offset commit for the next message never reaches the broker (Kafka's
        rule: its next commit covers it, unless the consumer crashes before that)."""
        self._act(
            "inject_lost_commit",
            notice="(The next message's offset commit will be lost; press Send.)",
        )

    def crash_consumer(self, point: str = "after_effect") -> None:
        """The consumer crashes on the next message, ``"before_effect"`` or ``"after_effect"``."""
        when = str(point).replace("_effect", "").replace("_", " ")  # validated by the run first
        self._act(
            "crash_consumer",
            point,
            notice=f"(The consumer will crash on the next message, {when} its charge; press Send.)",
        )

    def reset(self) -> None:
        """A fresh account and pipeline under the current guarantee; the run forgets its log."""
        self.run.reset()
        self._tell("(A fresh account: nothing sent yet; press Send.)")
        self.refresh()

    def describe_charts(self) -> list[str]:
        """The two charts in words: the messages handled other than once, and the balance."""
        rows = self.run.per_message()
        odd = [
            f"{r['message']} (stored {r['stored']}, delivered {r['delivered']}, "
            f"charged {r['effects']})"
            for r in rows
            if (r["stored"], r["delivered"], r["effects"]) != (1, 1, 1)
        ]
        if not rows:
            handled = "no message sent yet."
        elif odd:
            handled = f"every message once except {', '.join(odd)}."
        else:
            handled = "every message stored, delivered and charged once."
        r = self.run.result()
        return [
            f"Bar chart of how often each of {len(rows)} messages was stored, delivered and "
            f"charged: {handled}",
            f"Line chart of the account balance over {self.run.now:g} s of simulated time: "
            f"${r.final_balance} now, against ${r.expected_balance} expected from the messages "
            "sent.",
        ]

    # -- internals -----------------------------------------------------------------------------
    def _act(self, name: str, *args: Any, notice: str = "") -> None:
        getattr(self.run, name)(*args)  # the scenario validates and logs the action
        self._tell(notice)  # a fault armed shows nothing on the charts until the next send
        self.refresh()

    def _build(self) -> None:
        mx = bq.OrdinalScale()
        my = bq.LinearScale(min=0.0, max=3.0)
        # Never empty: grouped Bars with no x fail to update in a live notebook ("Error setting
        # state"); an empty run is drawn as empty, zero-height slots.
        self.message_mark = bq.Bars(
            x=[0],
            y=[[0], [0], [0]],
            scales={"x": mx, "y": my},
            type="grouped",
            colors=SERIES_COLOURS,
            padding=0.25,
            labels=[SERIES_LABELS[s] for s in SERIES],
        )
        self.message_figure = bq.Figure(
            marks=[self.message_mark],
            title="What happened to each message",
            axes=[
                bq.Axis(scale=mx, label="message"),
                bq.Axis(scale=my, side="left", label="times", tick_format="d", tick_values=[0]),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 50, "right": 15},
            layout=w.Layout(width="50%", height="300px"),
        )
        tx = bq.LinearScale(min=0.0)
        ty = bq.LinearScale()
        # A wide solid band under the balance line: dashes broke up into scattered ticks on the
        # short steps of a long run, and where the two agree the band shows round the red line.
        self.expected_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": tx, "y": ty},
            colors=[PALETTE["grey"]],
            stroke_width=5,
            interpolation="step-after",
        )
        self.balance_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": tx, "y": ty},
            colors=[PALETTE["vermillion"]],
            stroke_width=2.5,
            interpolation="step-after",
        )
        self.balance_figure = bq.Figure(
            marks=[self.expected_mark, self.balance_mark],
            title="Account balance",
            axes=[
                bq.Axis(scale=tx, label="simulated time (s)", tick_format="~g"),
                bq.Axis(scale=ty, side="left", label="balance ($)", tick_format="d"),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 60, "right": 15},
            layout=w.Layout(width="48%", height="300px"),
        )
        # A legend in HTML: bqplot's own legend box sits on top of the marks it explains.
        # Colour only in the swatches: the words stay black, readable at any contrast setting.
        swatches = " &nbsp; ".join(
            f'<span style="color:{c}">&#9632;</span> {SERIES_LABELS[s]}'
            for s, c in zip(SERIES, SERIES_COLOURS, strict=True)
        )
        legend = w.HTML(
            f"Bars: {swatches}. &nbsp; Lines: "
            f'<span style="color:{PALETTE["vermillion"]}"><b>&#8212;</b></span> balance &nbsp; '
            f'<span style="color:{PALETTE["grey"]}"><b>&#9644;</b></span> expected '
            f"(${self.run.amount} per message sent)"
        )
        self.problems_label = w.HTML()

        self.guarantee_control = w.ToggleButtons(
            options=list(GUARANTEES),
            value=self.run.guarantee,
            tooltips=[
                "send once, never retry; commit before charging",
                "retry until acked, no deduplication at the broker; charge, then commit",
                "idempotent producer + consumer that records processed ids",
            ],
            style={"button_width": "110px"},
        )
        self.guarantee_control.observe(self._on_control(self.set_guarantee), "value")
        producer = w.HBox(
            [
                w.HTML("<b>Producer</b>", layout=w.Layout(width="80px")),
                self._button("Send 1", lambda: self.send(1), "send one charge message"),
                self._button("Send 5", lambda: self.send(5), "send five charge messages"),
                self._button(
                    "Lose next message",
                    self.inject_lost_message,
                    "the next message's next send never reaches the broker",
                    "bolt",
                ),
                self._button(
                    "Lose next ACK",
                    self.inject_lost_ack,
                    "the broker stores the next message, but its ack is lost",
                    "bolt",
                ),
            ]
        )
        consumer = w.HBox(
            [
                w.HTML("<b>Consumer</b>", layout=w.Layout(width="80px")),
                *[
                    self._button(
                        f"Crash {point.replace('_effect', '')} charge",
                        lambda p=point: self.crash_consumer(p),
                        f"the consumer crashes on the next message, {point.replace('_', ' ')}",
                        "power-off",
                    )
                    for point in CRASH_POINTS
                ],
                self._button(
                    "Lose next commit",
                    self.inject_lost_commit,
                    "the consumer's offset commit for the next message is lost; as on Kafka, "
                    "its next commit covers it unless the consumer crashes first",
                    "bolt",
                ),
            ]
        )
        note = w.HTML(
            "<small>Fault buttons arm a fault for the next message; then press Send. Switching "
            "the guarantee replays the same sends and faults on a fresh "
            f"${self.run.start_balance:,} account.</small>"
        )
        self.view = w.VBox(
            [
                w.HBox([self.message_figure, self.balance_figure]),
                legend,
                self.problems_label,
                self.summary_label,
                w.HBox(
                    [
                        w.HTML("<b>Guarantee</b>", layout=w.Layout(width="80px")),
                        self.guarantee_control,
                        self._button(
                            "Reset", self.reset, "a fresh account; forget the replayed story"
                        ),
                    ]
                ),
                producer,
                consumer,
                note,
            ]
        )

    def _draw(self) -> None:
        rows = self.run.per_message()
        ids = [row["message"] for row in rows]
        slots = _slot_count(len(ids))
        empty = [0] * (slots - len(ids))
        values = [[row[s] for row in rows] + empty for s in SERIES]
        top = max([3, *(v + 1 for series in values for v in series)])
        # the message each bar slot stands for ("" for an empty slot), left to right
        self.slot_ids = ids + [""] * len(empty)
        blank = _message_labels(ids)
        with held(self.message_figure):
            assign(self.message_mark.scales["y"], max=float(top))
            assign(self.message_figure.axes[1], tick_values=list(range(top + 1)))
            # The bars stand in slots 0, 1, ... and the axis labels each slot with its message
            # (or nothing), so a send that fits changes no domain. (The ordinal scale takes its
            # domain from the bars: set here, it would reach the page before their new x.)
            assign(
                self.message_figure.axes[0],
                tick_labels={slot: "" if m in blank else m for slot, m in enumerate(self.slot_ids)},
            )
            assign(self.message_mark, x=list(range(slots)), y=values)
        series = self.run.balance_series()
        times, balances = series["time"], series["balance"]
        expected_times, expected = series["expected_time"], series["expected"]
        low = min(balances + expected)
        # Round spans (1, 2, 5, 10, 20, ...): a domain that changes redraws its axis and every
        # mark on it, so most sends must leave both domains as they are.
        top = float(self.run.start_balance + self.run.amount)
        span = nice_ceiling(top - (low - 2 * self.run.amount))
        end = nice_ceiling(max(1.0, times[-1]))
        with held(self.balance_figure):
            assign(self.balance_mark.scales["y"], min=top - span, max=top)
            assign(self.balance_mark.scales["x"], max=end)
            assign(self.balance_figure.axes[0], tick_values=_time_ticks(end))
            assign(self.expected_mark, x=expected_times, y=expected)
            assign(self.balance_mark, x=times, y=balances)
        self._sync(self.guarantee_control, self.run.guarantee)
        result = self.run.result()
        parts = []
        if result.lost_ids:
            parts.append(f"never charged (lost): {', '.join(result.lost_ids)}")
        if result.duplicate_ids:
            parts.append(f"charged more than once: {', '.join(result.duplicate_ids)}")
        text = " &nbsp;|&nbsp; ".join(html.escape(p) for p in parts)
        marker = f'<span style="color:{PALETTE["vermillion"]}">&#9888;</span>'
        self.problems_label.value = (
            f"{marker} <b>{text}</b>" if parts else "No message lost, none charged twice."
        )
