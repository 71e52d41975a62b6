"""Chapter 4's views: per-order processing sequences, and where keys go when a topic grows.

:class:`MessageOrdering` draws one row per order with a dot for every event at the simulated time
it was processed; an event processed before an earlier event of its order is ringed in vermillion.
:class:`Repartitioning` shows how Kafka's partitioner moves keys when the partition count changes.
Both only draw what the scenario reports: :class:`~mqlib.scenarios.ordering.OrderingRun` and
:func:`~mqlib.scenarios.ordering.repartition`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..models.ordering import DEFAULT_ORDERS
from ..scenarios.ordering import OrderingRun, default_run, repartition
from ._base import PALETTE, SimulationView, held

STEP_COLOURS = {
    "created": PALETTE["blue"],
    "paid": PALETTE["orange"],
    "shipped": PALETTE["green"],
}
VIOLATION = PALETTE["vermillion"]
MAX_SLIDER_PARTITIONS = 8
MAX_SLIDER_CONSUMERS = 8
MAX_SLIDER_JITTER = 0.5


#: How much of the time axis one step name covers ("shipped" in 12 px bold is about 50 px; the
#: chart is at least about 650 px wide), so labels closer than this would overlap.
LABEL_SPAN = 0.085


#: The sequence and routing text beside the controls: compact, so the widget fits one screen.
_TEXT_STYLE = "line-height:1.35; font-size:12px; margin-bottom:4px"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


#: The most events one line of the routing text lists (the latest ones).
ROUTING_EVENTS = 12


def _latest(labels: list[str]) -> str:
    """``labels`` joined by commas, only the latest :data:`ROUTING_EVENTS` after a long run."""
    if not labels:
        return "&mdash;"
    if len(labels) <= ROUTING_EVENTS:
        return ", ".join(labels)
    earlier = len(labels) - ROUTING_EVENTS
    return f"({earlier:,} earlier) ... " + ", ".join(labels[-ROUTING_EVENTS:])


def _label_sides(times: list[float], rows: list[int], span: float) -> list[bool | None]:
    """For each event (in processing order), whether its step name goes above its dot (``True``),
    below it (``False``) or nowhere (``None``).

    Names alternate along a row, so neighbours in one row do not overlap. A name below row ``r``
    sits close to the names above row ``r + 1``, though, so a side is taken only if no name already
    placed in the same band, or in the facing band of the neighbouring row, is nearer in time than
    :data:`LABEL_SPAN` of the axis. If both sides are taken the name is left out rather than
    printed over another: the dot's colour still says the step, and the sequence beside the
    chart lists every event.
    """
    near = LABEL_SPAN * span
    placed: list[tuple[float, int]] = []  # (time, band); band 2r is above row r, 2r + 1 below it
    last_side: dict[int, bool] = {}
    sides = []
    for t, r in zip(times, rows, strict=True):
        prefer = not last_side.get(r, False)
        for above in (prefer, not prefer):
            band = 2 * r if above else 2 * r + 1
            # Same band, or the facing band of the neighbouring row (below r-1 / above r+1).
            facing = band - 1 if above else band + 1
            if not any(abs(t - u) < near and b in (band, facing) for u, b in placed):
                break
        else:
            sides.append(None)
            continue
        placed.append((t, 2 * r if above else 2 * r + 1))
        last_side[r] = above
        sides.append(above)
    return sides


class MessageOrdering(SimulationView):
    """The events of orders 42, 43 and 44 through a partitioned topic or one shared queue.

    Every control is also a method: :meth:`set_mode`, :meth:`set_partitions`, :meth:`set_keyed`,
    :meth:`set_consumers`, :meth:`set_jitter` and :meth:`set_processing_time` start a fresh run and
    process one batch (created, paid, shipped for every order); :meth:`start_over`, :meth:`send`,
    :meth:`advance` and :meth:`process_all` let you step through a run. Pass ``run`` to view a run
    you scripted; the default is :func:`~mqlib.scenarios.ordering.default_run`.
    """

    def __init__(self, run: OrderingRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, OrderingRun, default_run)
        self._build()
        self._sync_controls()
        self.refresh()

    # -- settings: each one starts a fresh run and processes one batch --------------------------
    def set_mode(self, mode: str) -> None:
        """``"partitions"`` (a topic keyed into partitions) or ``"queue"`` (one shared queue)."""
        self.run.set_mode(mode)
        self._rerun()

    def set_partitions(self, n: int) -> None:
        """The topic's partition count."""
        self.run.set_partitions(n)
        self._rerun()

    def set_keyed(self, keyed: bool) -> None:
        """Send events with the order id as key (``True``) or without a key (``False``)."""
        self.run.set_keyed(keyed)
        self._rerun()

    def set_consumers(self, n: int | None) -> None:
        """How many consumers; ``None`` for the default (one per partition, or two on a queue)."""
        self.run.set_consumers(n)
        self._rerun()

    def set_jitter(self, seconds: float) -> None:
        """Up to this many extra seconds of processing per event (drawn from the seed)."""
        self.run.set_jitter(seconds)
        self._rerun()

    def set_processing_time(self, consumer: str, seconds: float) -> None:
        """Seconds consumer ``consumer`` (``"A"``, ``"B"``, ...) needs per event."""
        self.run.set_processing_time(consumer, seconds)
        self._rerun()

    # -- stepping ------------------------------------------------------------------------------
    def start_over(self) -> None:
        """Throw the run away: nothing sent, nothing processed."""
        self.run.reset()
        self._tell("(Nothing sent yet: press Send a batch.)")
        self.refresh()

    def send(self) -> list[str]:
        """Publish one more batch; returns the labels of the events it sends."""
        labels = self.run.send()
        self._tell(
            f"(Sent {len(labels)} events, created, paid and shipped per order; "
            "Advance to see them processed.)"
        )
        self.refresh()
        return labels

    def advance(self, seconds: float = 0.1) -> None:
        """Let ``seconds`` of simulated time pass."""
        before = self.run.system.processed_count
        self.run.advance(seconds)
        done = self.run.system.processed_count - before
        if not self.run.scheduled:
            self._tell("(Nothing has been sent: press Send a batch first.)")
        else:
            self._tell(f"({done} more event{'' if done == 1 else 's'} processed.)")
        self.refresh()

    def process_all(self) -> None:
        """Process everything sent (sending one batch first if nothing was sent)."""
        self.run.run()
        self.refresh()

    # -- internals -----------------------------------------------------------------------------
    def _rerun(self) -> None:
        self.run.run()
        self._sync_controls()
        self.refresh()

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            run = self.run
            self.mode_control.value = run.mode
            self.partition_control.max = max(self.partition_control.max, run.partitions)
            self.partition_control.value = run.partitions
            self.keyed_control.value = run.keyed
            self.consumer_control.max = max(self.consumer_control.max, run.consumers)
            self.consumer_control.value = run.consumers
            self.jitter_control.max = max(self.jitter_control.max, run.jitter)
            self.jitter_control.value = run.jitter
            queue = run.mode == "queue"
            self.partition_control.disabled = queue
            self.keyed_control.disabled = queue
        finally:
            self._syncing = False

    def _build(self) -> None:
        self._syncing = False
        rows = len(self.run.orders)
        self.x_scale = bq.LinearScale(min=0.0, max=1.0)
        self.y_scale = bq.LinearScale(min=-0.6, max=rows - 0.4, reverse=True)
        scales = {"x": self.x_scale, "y": self.y_scale}
        # One grey track per order, from t=0 to the end of the run: the row the dots sit on.
        self.track_mark = bq.Lines(
            scales=scales, colors=[PALETTE["grey"]], stroke_width=1.5, opacities=[0.6]
        )
        self.ring_mark = bq.Scatter(
            scales=scales,
            colors=[VIOLATION],
            fill=False,
            stroke_width=3,
            default_size=340,
            marker="circle",
        )
        self.event_mark = bq.Scatter(scales=scales, default_size=110, stroke="white")
        # Step names above and below the dots, alternating along each row so that neighbours do
        # not collide (one bqplot Label mark has a single y offset, hence two marks).
        # Created with (empty) data: a Label without x, y and text fails to update in a live
        # notebook ("Error setting state").
        self.label_above = bq.Label(
            x=[],
            y=[],
            text=[],
            scales=scales,
            default_size=12,
            align="middle",
            font_weight="bold",
            y_offset=-19,
        )
        self.label_below = bq.Label(
            x=[],
            y=[],
            text=[],
            scales=scales,
            default_size=12,
            align="middle",
            font_weight="bold",
            y_offset=29,
        )
        self.figure = bq.Figure(
            marks=[
                self.track_mark,
                self.ring_mark,
                self.event_mark,
                self.label_above,
                self.label_below,
            ],
            axes=[
                bq.Axis(scale=self.x_scale, label="simulated time the event was processed (s)"),
                bq.Axis(
                    scale=self.y_scale,
                    side="left",
                    tick_values=list(range(rows)),
                    tick_labels={str(i): f"order {o}" for i, o in enumerate(self.run.orders)},
                    grid_lines="none",
                ),
            ],
            title="When each order's events were processed",
            fig_margin={"top": 40, "bottom": 50, "left": 80, "right": 30},
            layout=w.Layout(width="100%", height="260px"),
        )
        steps = " &nbsp; ".join(
            f'<span style="color:{c}">&#9679;</span> {s}' for s, c in STEP_COLOURS.items()
        )
        legend = w.HTML(
            f"{steps} &nbsp; "
            f'<span style="color:{VIOLATION}"><b>&#9711;</b></span> <b>violation</b>:'
            " processed before an earlier event of its order"
        )
        self.sequence_html = w.HTML()
        self.routing_html = w.HTML()

        self.mode_control = w.ToggleButtons(
            options=[("Partitioned topic", "partitions"), ("One queue", "queue")],
            tooltips=[
                "a topic split into partitions, one consumer per partition",
                "one queue, consumers compete for the next event",
            ],
            style={"button_width": "135px"},
        )
        self.mode_control.observe(self._on_control(self.set_mode), "value")
        self.partition_control = w.IntSlider(
            value=self.run.partitions,
            min=1,
            max=max(MAX_SLIDER_PARTITIONS, self.run.partitions),
            description="partitions",
            style={"description_width": "90px"},
            layout=w.Layout(width="290px"),
        )
        self.partition_control.observe(self._on_control(self.set_partitions), "value")
        self.keyed_control = w.Checkbox(
            description="key = order id",
            layout=w.Layout(width="290px"),
            style={"description_width": "90px"},
        )
        self.keyed_control.observe(self._on_control(self.set_keyed), "value")
        self.consumer_control = w.IntSlider(
            value=self.run.consumers,
            min=1,
            max=max(MAX_SLIDER_CONSUMERS, self.run.consumers),
            description="consumers",
            style={"description_width": "90px"},
            layout=w.Layout(width="290px"),
        )
        self.consumer_control.observe(self._on_control(self.set_consumers), "value")
        self.jitter_control = w.FloatSlider(
            value=self.run.jitter,
            min=0.0,
            max=max(MAX_SLIDER_JITTER, self.run.jitter),
            step=0.01,
            description="jitter (s)",
            readout_format=".2f",
            continuous_update=False,  # see SimulationView._slider
            style={"description_width": "90px"},
            layout=w.Layout(width="290px"),
        )
        self.jitter_control.observe(self._on_control(self.set_jitter), "value")
        self.buttons = {
            b.description: b
            for b in (
                self._button("Start over", self.start_over, "empty run: nothing sent yet"),
                self._button("Send a batch", self.send, "send created, paid, shipped per order"),
                self._button("Advance 0.1 s", lambda: self.advance(0.1), "let 100 ms pass"),
                self._button("Process all", self.process_all, "run until everything is done"),
            )
        }
        # The mode and the stepping buttons in one row; the settings beside the sequences and the
        # routing: so that everything fits on a 720-pixel screen with the chart.
        settings = w.VBox(
            [self.partition_control, self.keyed_control, self.consumer_control, self.jitter_control]
        )
        self.view = w.VBox(
            [
                self.figure,
                legend,
                self.summary_label,
                w.HBox(
                    [self.mode_control, *self.buttons.values()],
                    layout=w.Layout(flex_flow="row wrap", grid_gap="4px 4px"),
                ),
                w.HBox(
                    [
                        settings,
                        w.VBox(
                            [self.sequence_html, self.routing_html],
                            layout=w.Layout(flex="1 1 400px", min_width="400px"),
                        ),
                    ],
                    layout=w.Layout(flex_flow="row wrap", grid_gap="4px 20px"),
                ),
            ]
        )

    def _draw(self) -> None:
        run = self.run
        row = {order: i for i, order in enumerate(run.orders)}
        processed = run.processed()
        bad = [p["violation"] for p in processed]
        end = max([p["time"] for p in processed] + [run.now, 0.1])
        times = [p["time"] for p in processed]
        rows = [row[p["order"]] for p in processed]
        colours = [VIOLATION if b else PALETTE["black"] for b in bad]
        above = _label_sides(times, rows, span=end * 1.08)
        with held(self.figure):
            self.x_scale.max = end * 1.08
            self.track_mark.x = [[0.0, end * 1.08] for _ in run.orders]
            self.track_mark.y = [[i, i] for i in range(len(run.orders))]
            self.event_mark.x, self.event_mark.y = times, rows
            self.event_mark.colors = [STEP_COLOURS.get(p["step"], "black") for p in processed]
            self.ring_mark.x = [t for t, b in zip(times, bad, strict=True) if b]
            self.ring_mark.y = [r for r, b in zip(rows, bad, strict=True) if b]
            for mark, side in ((self.label_above, True), (self.label_below, False)):
                idx = [i for i, a in enumerate(above) if a is side]
                mark.x = [times[i] for i in idx]
                mark.y = [rows[i] for i in idx]
                mark.text = [processed[i]["step"] for i in idx]
                mark.colors = [colours[i] for i in idx] or [PALETTE["black"]]
        self.sequence_html.value = self._sequence_text(processed, bad)
        self.routing_html.value = self._routing_text()

    def describe_charts(self) -> list[str]:
        run = self.run
        sequences = "; ".join(
            f"order {o}: {' > '.join(steps) or 'nothing yet'}"
            for o, steps in run.sequences().items()
        )
        bad = run.system.violation_count
        return [
            f"Timeline of when each order's events were processed, up to {run.now:.2f} s: "
            f"{sequences}; {bad} event{'' if bad == 1 else 's'} out of order."
        ]

    def _sequence_text(self, processed: list[dict[str, Any]], bad: list[bool]) -> str:
        per_order: dict[int, list[str]] = {order: [] for order in self.run.orders}
        for p, b in zip(processed, bad, strict=True):
            text = html.escape(f"{p['step']} ({p['consumer']}, {p['time']:.2f} s)")
            if b:
                text = f'<b>{text} <span style="color:{VIOLATION}">&#10007;</span></b>'
            per_order[p["order"]].append(text)
        lines = [
            f"<b>order {order}:</b> "
            + (" &rarr; ".join(items) if items else "nothing processed yet")
            for order, items in per_order.items()
        ]
        body = "<b>Processing sequence</b> (consumer, time):<br>" + "<br>".join(lines)
        return f'<div style="{_TEXT_STYLE}">{body}</div>'

    def _routing_text(self) -> str:
        run = self.run
        times = run.processing_times()
        if run.mode == "queue":
            done: dict[str, list[str]] = {c: [] for c in times}
            for p in run.processed():
                done[p["consumer"]].append(f"{p['order']} {p['step']}")
            items = [f"consumer {c} ({_ms(t)}/event): {_latest(done[c])}" for c, t in times.items()]
            head = "<b>One queue</b>: whichever consumer is free takes the next event."
            return f'<div style="{_TEXT_STYLE}">{head}<br>{"<br>".join(items)}</div>'
        owner = {p: c for c, parts in run.assignment().items() for p in parts}
        items = []
        for p, log in enumerate(run.partition_logs()):
            c = owner.get(p)
            reader = f"consumer {c} ({_ms(times[c])}/event)" if c else "no consumer"
            items.append(f"partition {p} &rarr; {reader}: {_latest(log)}")
        idle = [c for c, parts in run.assignment().items() if not parts]
        if idle:
            items.append(f"idle (no partition left for them): {', '.join(idle)}")
        if run.keyed:
            where = run.mapping([run.partitions])
            keys = ", ".join(f"{o} &rarr; {where[o][run.partitions]}" for o in run.orders)
            head = (
                f"<b>Keyed</b>: the Java client's partitioner, murmur2(key) mod {run.partitions}: "
                f"{keys}."
            )
        else:
            head = (
                "<b>Unkeyed</b>: the simulated producer spreads events over the partitions in turn "
                "(round-robin, as Kafka did before 2.4; newer producers fill one partition per "
                "batch)."
            )
        return f'<div style="{_TEXT_STYLE}">{head}<br>{"<br>".join(items)}</div>'


class Repartitioning(SimulationView):
    """Which partition each order's key maps to before and after the partition count changes.

    ``before`` is the count the events already in the topic were written with, ``after`` the
    count new events are written with. :meth:`set_before` and :meth:`set_after` are the sliders.
    It draws what :func:`~mqlib.scenarios.ordering.repartition` computes.
    """

    def __init__(
        self, before: int = 4, after: int = 5, orders: Iterable[int] = DEFAULT_ORDERS
    ) -> None:
        super().__init__()
        self.change = repartition(before, after, orders)
        self.orders = tuple(self.change.mapping)
        self._build()
        self.refresh()

    @property
    def before(self) -> int:
        """The partition count the existing events were written with."""
        return self.change.before

    @property
    def after(self) -> int:
        """The partition count new events are written with."""
        return self.change.after

    def set_before(self, n: int) -> None:
        """The partition count the existing events were written with."""
        self.change = repartition(n, self.after, self.orders)
        self._sync(self.before_control, n, widen_max=True)
        self.refresh()

    def set_after(self, n: int) -> None:
        """The partition count new events are written with."""
        self.change = repartition(self.before, n, self.orders)
        self._sync(self.after_control, n, widen_max=True)
        self.refresh()

    def describe_charts(self) -> list[str]:
        where = "; ".join(
            f"key {o}: partition {old} then {new}" for o, (old, new) in self.change.mapping.items()
        )
        moved = len(self.change.moved)
        return [
            f"Where each key's events go with {self.before} and then {self.after} partitions: "
            f"{where}; {moved} of {len(self.orders)} keys move."
        ]

    def mapping(self) -> dict[int, tuple[int, int]]:
        """``{order: (partition before, partition after)}``."""
        return dict(self.change.mapping)

    def moved(self) -> list[int]:
        """The orders whose new events go to a different partition than their old ones."""
        return list(self.change.moved)

    def summary(self) -> str:
        return self.change.summary

    def _build(self) -> None:
        self._syncing = False
        rows = len(self.orders)
        self.x_scale = bq.LinearScale(min=-0.5, max=MAX_SLIDER_PARTITIONS - 0.5)
        self.y_scale = bq.LinearScale(min=-0.6, max=rows - 0.4, reverse=True)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.track_mark = bq.Lines(
            scales=scales, colors=[PALETTE["grey"]], stroke_width=1.5, opacities=[0.6]
        )
        self.move_mark = bq.Lines(
            scales=scales, colors=[VIOLATION], stroke_width=2.5, line_style="dashed"
        )
        self.old_mark = bq.Scatter(
            scales=scales,
            colors=[PALETTE["grey"]],
            fill=False,
            stroke_width=3,
            default_size=300,
        )
        self.new_mark = bq.Scatter(scales=scales, colors=[PALETTE["blue"]], default_size=140)
        self.x_axis = bq.Axis(scale=self.x_scale, label="partition number", tick_format="d")
        self.figure = bq.Figure(
            marks=[self.track_mark, self.move_mark, self.old_mark, self.new_mark],
            axes=[
                self.x_axis,
                bq.Axis(
                    scale=self.y_scale,
                    side="left",
                    tick_values=list(range(rows)),
                    tick_labels={str(i): f"key {o}" for i, o in enumerate(self.orders)},
                    grid_lines="none",
                ),
            ],
            title="Where each key's events go",
            fig_margin={"top": 40, "bottom": 50, "left": 70, "right": 30},
            layout=w.Layout(width="100%", height="240px"),
        )
        self.legend = w.HTML()
        # Both sliders share one range, wide enough for the counts given (never clamped).
        top = max(MAX_SLIDER_PARTITIONS, self.before, self.after)
        self.before_control = w.IntSlider(
            value=self.before,
            min=1,
            max=top,
            description="written with",
            style={"description_width": "100px"},
            layout=w.Layout(width="340px"),
        )
        self.after_control = w.IntSlider(
            value=self.after,
            min=1,
            max=top,
            description="partitions now",
            style={"description_width": "100px"},
            layout=w.Layout(width="340px"),
        )
        for control, action in (
            (self.before_control, self.set_before),
            (self.after_control, self.set_after),
        ):
            control.observe(self._on_control(action), "value")
        self.view = w.VBox(
            [
                self.figure,
                self.legend,
                self.summary_label,
                w.HBox([self.before_control, self.after_control]),
            ]
        )

    def _draw(self) -> None:
        mapping = self.change.mapping
        rows = range(len(self.orders))
        width = max(self.before, self.after, MAX_SLIDER_PARTITIONS)
        moved = [(i, *mapping[o]) for i, o in enumerate(self.orders) if o in self.change.moved]
        with held(self.figure):
            self.x_scale.max = width - 0.5
            self.x_axis.tick_values = list(range(width))
            self.track_mark.x = [[-0.5, max(self.before, self.after) - 0.5] for _ in rows]
            self.track_mark.y = [[i, i] for i in rows]
            self.old_mark.x = [old for old, _ in mapping.values()]
            self.old_mark.y = list(rows)
            self.new_mark.x = [new for _, new in mapping.values()]
            self.new_mark.y = list(rows)
            # A dashed line from the old partition to the new one for every key that moves.
            self.move_mark.x = [[old, new] for _, old, new in moved] or [[0.0, 0.0]]
            self.move_mark.y = [[i, i] for i, _, _ in moved] or [[-5, -5]]
        self.legend.value = (
            f'<span style="color:{PALETTE["grey"]}"><b>&#9711;</b></span> old events '
            f"(written with {self.before} partitions) &nbsp; "
            f'<span style="color:{PALETTE["blue"]}">&#9679;</span> new events '
            f"(with {self.after}) &nbsp; "
            f'<span style="color:{VIOLATION}">&#9476;&#9476;</span> moved'
        )


__all__ = ["MessageOrdering", "Repartitioning"]
