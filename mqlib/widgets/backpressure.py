"""Chapter 5's view: a fast producer, slow consumers and the ways to push back."""

from __future__ import annotations

import math
from typing import Any

import bqplot as bq
import ipywidgets as w

from .. import _validate
from ..scenarios.backpressure import BackpressureRun, default_run
from ._base import (
    PALETTE,
    SimulationView,
    assign,
    bounded,
    folding_toggle,
    held,
    line_swatch,
    nice_ceiling,
)

#: Height of each of the three charts (side by side): readable, and the whole view fits 560 px.
CHART_HEIGHT = "250px"

#: The mode buttons: label shown -> the scenario's mode name.
MODE_LABELS = {
    "unbounded": "Unbounded",
    "block": "Block when full",
    "reject": "Reject when full",
    "rate_limit": "Rate limit on lag",
    "shed": "Shed low priority",
}

#: What each chart line is drawn in.
COLOURS = {
    "depth": PALETTE["blue"],
    "lag": PALETTE["orange"],
    "limit": PALETTE["grey"],
    "producer_rate": PALETTE["vermillion"],
    "consumer_rate": PALETTE["green"],
    "rejected": PALETTE["purple"],
    "dropped": PALETTE["sky"],
}


class Backpressure(SimulationView):
    """Depth and lag, effective rates and lost messages over time, with a control per setting.

    The controls call the same methods you can call from code: :meth:`set_mode`,
    :meth:`set_rate`, :meth:`set_consumer_rate`, :meth:`add_consumer`, :meth:`remove_consumer`,
    :meth:`set_capacity`, :meth:`set_shed_threshold`, :meth:`set_lag_threshold`,
    :meth:`set_partitions` (starts the run over), :meth:`start_over` and :meth:`advance`. Pass
    ``run`` to view a run you scripted; the default is
    :func:`~mqlib.scenarios.backpressure.default_run` (10 msg/s into one consumer doing 2 msg/s,
    a queue bounded at 20 that blocks the producer, 30 s).
    """

    def __init__(self, run: BackpressureRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, BackpressureRun, default_run)
        self._build()
        self.refresh()

    # -- scriptable actions (each control calls one of these) ----------------------------------
    def set_mode(self, mode: str) -> None:
        """Switch the backpressure policy: one of ``"unbounded"``, ``"block"``, ``"reject"``,
        ``"rate_limit"``, ``"shed"``."""
        self.run.set_mode(mode)
        self._sync(self.mode_control, mode)
        limit = self.run.limit()
        if mode in ("block", "reject") and self.run.broker.depth > self.run.broker.capacity:
            self._tell(
                f"(The queue already holds more than its capacity of {limit[1]}: it only drains "
                "until it is back under it.)"
            )
        elif limit is not None:
            self._tell(
                f"({MODE_LABELS[mode]}: the grey dashed line is its {limit[0]}, {limit[1]}.)"
            )
        else:
            self._tell("(Unbounded: nothing limits the queue.)")
        self.refresh()

    def set_rate(self, rate: float) -> None:
        """Messages per second the producer tries to send (0 pauses it)."""
        self.run.set_rate(rate)
        self._sync(self.rate_control, rate)
        self.refresh()

    def set_consumer_rate(self, rate: float) -> None:
        """Messages per second each consumer processes."""
        self.run.set_consumer_rate(rate)
        self._sync(self.consumer_rate_control, rate)
        self._tell(f"(Each consumer now finishes {rate:g} msg/s, from its next message on.)")
        self.refresh()

    def add_consumer(self) -> str:
        """A consumer joins the group (idle if there is no partition left for it)."""
        name = self.run.add_consumer()
        if self.run.broker.assignment.get(name):
            self._tell(f"({name} joined and owns partition(s) {self.run.broker.assignment[name]}.)")
        else:
            self._tell(f"({name} joined but sits idle: every partition already has an owner.)")
        self.refresh()
        return name

    def remove_consumer(self) -> str:
        """The newest consumer leaves the group."""
        name = self.run.remove_consumer()
        self._tell(f"({name} left the group after the message in hand; partitions reassigned.)")
        self.refresh()
        return name

    def set_capacity(self, capacity: int) -> None:
        """The bound of the queue in the two bounded modes."""
        self.run.set_capacity(capacity)
        self._sync(self.capacity_control, capacity)
        self._tell(f"(Capacity now {capacity}, from the next publish on.)")
        self.refresh()

    def set_shed_threshold(self, threshold: int) -> None:
        """Depth from which load shedding drops low-priority messages."""
        self.run.set_shed_threshold(threshold)
        self._sync(self.shed_control, threshold)
        self._tell(f"(Shedding now starts at {threshold} waiting, from the next publish on.)")
        self.refresh()

    def set_lag_threshold(self, threshold: int) -> None:
        """Lag above which the rate-limited producer slows down."""
        self.run.set_lag_threshold(threshold)
        self._sync(self.lag_control, threshold)
        self._tell(f"(The producer now slows down above a lag of {threshold}, from its next send.)")
        self.refresh()

    def set_partitions(self, partitions: int) -> None:
        """Start over at t=0 on a topic with ``partitions`` partitions, keeping every other
        setting (a topic's partition count is chosen when it is created)."""
        self._restart(partitions)
        self._sync(self.partition_control, partitions)
        self._tell(f"(Started over at t=0 on {partitions} partition(s), other settings kept.)")
        self.refresh()

    def start_over(self) -> None:
        """Start over at t=0 with the current settings."""
        self._restart(self.run.broker.partition_count)
        self._tell("(Started over at t=0 with the current settings.)")
        self.refresh()

    def advance(self, seconds: float = 1.0) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.run.advance(seconds)
        self.refresh()

    def chart_data(self) -> dict[str, list[float]]:
        """What the three charts draw: the scenario's :attr:`series` (time, depth, lag,
        producer_rate, consumer_rate, dropped, rejected)."""
        return self.run.series

    def limit(self) -> tuple[str, int] | None:
        """The dashed line on the queue chart: what limits the current mode, and its value."""
        return self.run.limit()

    def describe_charts(self) -> list[str]:
        """One sentence per chart for screen readers: what each shows at the latest sample."""
        s = self.chart_data()
        limit = self.limit()
        bound = f"; the {limit[0]} is {limit[1]}" if limit else "; nothing limits it"
        return [
            f"Line chart of the queue over {self.run.now:g} s: depth now {s['depth'][-1]:g} "
            f"(highest {max(s['depth']):g}), lag {s['lag'][-1]:g}{bound}.",
            f"Line chart of effective rates: the producer got {s['producer_rate'][-1]:g} msg/s "
            f"into the queue and the consumers finished {s['consumer_rate'][-1]:g} msg/s over "
            "the latest interval.",
            f"Line chart of lost messages so far: {s['rejected'][-1]:g} rejected, "
            f"{s['dropped'][-1]:g} dropped.",
        ]

    # -- internals -----------------------------------------------------------------------------
    def _restart(self, partitions: int) -> None:
        # Built before it replaces the old run: a refused value leaves the view as it was.
        self.run = self.run.restarted(partitions=partitions)

    def _figure(self, title: str, marks: list, x: Any, y: Any, ylabel: str) -> bq.Figure:
        return bq.Figure(
            marks=marks,
            title=title,
            axes=[
                bq.Axis(scale=x, label="simulated time (s)", tick_format="d"),
                bq.Axis(scale=y, side="left", label=ylabel, tick_format="d"),
            ],
            fig_margin={"top": 36, "bottom": 46, "left": 62, "right": 12},
            title_style={"font-size": "14px"},
            layout=w.Layout(flex="1 1 300px", min_width="240px", height=CHART_HEIGHT),
        )

    def _line(self, key: str, x: Any, y: Any, dashed: bool = False, width: float = 2.5):
        return bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": y},
            colors=[COLOURS[key]],
            stroke_width=width,
            line_style="dashed" if dashed else "solid",
            interpolation="linear" if key.endswith("_rate") else "step-after",
        )

    def _build(self) -> None:
        self.x_scale = x = bq.LinearScale(min=0.0)
        self.queue_scale = qy = bq.LinearScale(min=0.0)
        self.rate_scale = ry = bq.LinearScale(min=0.0)
        self.lost_scale = ly = bq.LinearScale(min=0.0)
        self.marks = {
            "depth": self._line("depth", x, qy, width=3.5),
            "lag": self._line("lag", x, qy, dashed=True, width=2),
            "limit": self._line("limit", x, qy, dashed=True, width=1.5),
            # the producer wide underneath, the consumers thin on top: both stay visible where
            # the producer has been slowed to the consumers' rate
            "producer_rate": self._line("producer_rate", x, ry, width=4),
            "consumer_rate": self._line("consumer_rate", x, ry, dashed=True, width=2),
            "rejected": self._line("rejected", x, ly, width=3.5),
            "dropped": self._line("dropped", x, ly, dashed=True, width=2),
        }
        m = self.marks
        self.queue_figure = self._figure(
            "Queue: depth and lag", [m["limit"], m["depth"], m["lag"]], x, qy, "messages"
        )
        self.rate_figure = self._figure(
            "Effective rates",
            [m["producer_rate"], m["consumer_rate"]],
            x,
            ry,
            "messages per second",
        )
        self.lost_figure = self._figure(
            "Lost: running totals", [m["rejected"], m["dropped"]], x, ly, "messages"
        )
        self.time_axes = [
            f.axes[0] for f in (self.queue_figure, self.rate_figure, self.lost_figure)
        ]
        self.axes = {
            "queue": self.queue_figure.axes[1],
            "rate": self.rate_figure.axes[1],
            "lost": self.lost_figure.axes[1],
        }

        def swatch(key: str, text: str, dashed: bool = False) -> str:
            return line_swatch(COLOURS[key], text, dashed)

        # Legends in HTML: bqplot's own legend box sits on top of the lines it explains.
        self.legend = w.HTML(
            '<div style="line-height:1.4;font-size:13px">'
            + " &nbsp; ".join(
                [
                    swatch("depth", "depth (waiting)"),
                    swatch("lag", "lag (produced &minus; consumed offset)", True),
                    swatch("limit", "the mode's limit", True),
                    swatch("producer_rate", "producer (got into the queue)"),
                    swatch("consumer_rate", "consumers (finished)", True),
                    swatch("rejected", "rejected (refused by a full queue)"),
                    swatch("dropped", "dropped (shed: low priority only)", True),
                ]
            )
            + "</div>"
        )
        self.lost_legend = self.legend  # one legend for the three charts

        self.mode_control = w.ToggleButtons(
            options=[(label, mode) for mode, label in MODE_LABELS.items()],
            value=self.run.broker.mode,
            style={"button_width": "142px"},
            tooltips=[
                "no limit: the queue grows as long as the producer is faster",
                "a full queue makes the producer wait: nothing is lost, but the sends it "
                "cannot make are held back upstream",
                "a full queue refuses the message: the producer gets an error",
                "the producer slows down while the consumer lag is above the threshold: the "
                "sends it skips are held back upstream, not free",
                "above the threshold the queue drops low-priority messages",
            ],
        )
        self.mode_control.observe(self._on_control(self.set_mode), "value")
        producer = self.run.producer
        self.rate_control = self._slider(
            w.FloatSlider,
            producer.rate,
            0.0,
            30.0,
            step=0.5,
            description="producer (msg/s)",
            style={"description_width": "165px"},
            readout_format=".1f",
            layout=w.Layout(width="410px"),
        )
        self.rate_control.observe(self._on_control(self.set_rate), "value")
        self.consumer_rate_control = self._slider(
            w.FloatSlider,
            self.run.consumer_rate,
            0.5,
            10.0,
            step=0.5,
            description="each consumer (msg/s)",
            style={"description_width": "165px"},
            readout_format=".1f",
            layout=w.Layout(width="410px"),
        )
        self.consumer_rate_control.observe(self._on_control(self.set_consumer_rate), "value")
        self.consumer_label = w.HTML(layout=w.Layout(width="auto", margin="0 8px 0 12px"))
        self.add_button = self._button(
            "+ consumer", self.add_consumer, "a consumer joins the group (idle without a partition)"
        )
        self.remove_button = self._button(
            "− consumer", self.remove_consumer, "the newest consumer leaves the group"
        )
        self.partition_control = self._slider(
            w.IntSlider,
            self.run.broker.partition_count,
            1,
            8,
            description="partitions (starts over)",
            style={"description_width": "170px"},
            layout=w.Layout(width="380px"),
        )
        self.partition_control.observe(self._on_control(self.set_partitions), "value")
        self.capacity_control = self._slider(
            w.IntSlider,
            self.run.broker.capacity,
            1,
            100,
            description="capacity (block/reject)",
            style={"description_width": "170px"},
            layout=w.Layout(width="380px"),
        )
        self.capacity_control.observe(self._on_control(self.set_capacity), "value")
        self.lag_control = self._slider(
            w.IntSlider,
            producer.lag_threshold,
            0,
            100,
            description="lag threshold (rate limit)",
            style={"description_width": "170px"},
            layout=w.Layout(width="380px"),
        )
        self.lag_control.observe(self._on_control(self.set_lag_threshold), "value")
        self.shed_control = self._slider(
            w.IntSlider,
            self.run.broker.shed_threshold,
            0,
            100,
            description="shed threshold (shed)",
            style={"description_width": "170px"},
            layout=w.Layout(width="380px"),
        )
        self.shed_control.observe(self._on_control(self.set_shed_threshold), "value")
        self.buttons = {
            "Advance 1 s": self._button("Advance 1 s", lambda: self.advance(1), "let 1 s pass"),
            "Advance 10 s": self._button("Advance 10 s", lambda: self.advance(10), "let 10 s pass"),
            "Advance 60 s": self._button(
                "Advance 60 s", lambda: self.advance(60), "let a minute pass"
            ),
            "Start over": self._button(
                "Start over", self.start_over, "back to t=0 with the current settings", "undo"
            ),
        }
        # The less-used settings fold away, so that charts and main controls fit a 720 px
        # screen together (at most 560 px tall with the section closed).
        self.settings_box = w.VBox(
            [
                w.HBox([self.partition_control, self.capacity_control]),
                w.HBox([self.lag_control, self.shed_control]),
            ]
        )
        self.settings_toggle = folding_toggle(
            self.settings_box,
            "More settings: partitions, capacity, thresholds",
            "show or hide the partitions, capacity and threshold sliders",
            icons=("chevron-right", "chevron-down"),
            shown="",
        )
        self.settings = w.VBox([self.settings_toggle, self.settings_box])
        self.view = w.VBox(
            [
                # (not scrollable: a scrolling region would need to take the keyboard focus)
                w.HBox(
                    [self.queue_figure, self.rate_figure, self.lost_figure],
                    layout=w.Layout(width="100%", overflow="hidden"),
                ),
                self.legend,
                self.summary_label,
                w.HBox(
                    [
                        *self.buttons.values(),
                        self.add_button,
                        self.remove_button,
                        self.consumer_label,
                    ],
                    layout=w.Layout(flex_flow="row wrap", align_items="center"),
                ),
                self.mode_control,
                w.HBox([self.rate_control, self.consumer_rate_control]),
                self.settings,
            ]
        )

    def _draw(self) -> None:
        s = self.chart_data()
        t = [float(v) for v in s["time"]]
        now = float(self.run.now)
        limit = self.limit()
        queue_top = max(s["depth"] + s["lag"] + [limit[1] if limit else 0, 1])
        rate_top = max(s["producer_rate"] + s["consumer_rate"] + [self.run.producer.rate, 1])
        lost_top = max(s["rejected"] + s["dropped"] + [1])
        m = self.marks
        # held: each mark, axis and scale sends its changed traits in one message (x and y
        # together), so the page redraws each line once
        with held(self.queue_figure), held(self.rate_figure), held(self.lost_figure):
            # Room right of the newest sample and above the highest value, so the latest change
            # is never drawn on the frame. The ends are round ceilings (1, 2, 5, 10, 20, ...):
            # a domain that changes redraws every mark on its scale (three charts share the time
            # scale), so most clicks must leave the domains as they are.
            time_ticks = integer_ticks(nice_ceiling(now + max(1.0, 0.05 * now)), steps=7)
            assign(self.x_scale, min=0.0, max=float(time_ticks[-1]))
            for axis in self.time_axes:
                assign(axis, tick_values=time_ticks)
            for name, scale, top in (
                ("queue", self.queue_scale, queue_top),
                ("rate", self.rate_scale, rate_top),
                ("lost", self.lost_scale, lost_top),
            ):
                ticks = integer_ticks(nice_ceiling(top * 1.1), steps=6)
                assign(self.axes[name], tick_values=ticks)
                assign(scale, max=float(ticks[-1]))
            # the points that draw the lines (bounded: repeats dropped, at most
            # MAX_CHART_POINTS), not the 3,600 samples an hour at one a second would send
            for key in ("depth", "lag", "producer_rate", "consumer_rate", "rejected", "dropped"):
                x, y = bounded(t, s[key], linear=key.endswith("_rate"))
                assign(m[key], x=x, y=y)
            if limit is None:
                assign(m["limit"], visible=False)
            else:
                # a setting, not history: drawn across the chart, so it is sent only when the
                # time axis or the limit changes (not with every click's new sample)
                end = float(time_ticks[-1])
                assign(m["limit"], x=[0.0, end], y=[float(limit[1])] * 2, visible=True)
        consumers = self.run.state()["assignment"]
        idle = [c for c, parts in consumers.items() if not parts]
        self.consumer_label.value = (
            f"<b>{len(consumers)} consumer{'' if len(consumers) == 1 else 's'}</b> on "
            f"{self.run.broker.partition_count} partition"
            f"{'' if self.run.broker.partition_count == 1 else 's'}"
            + (f", idle: {', '.join(idle)}" if idle else "")
        )
        self.remove_button.disabled = not consumers
        self.add_button.disabled = len(consumers) >= 26
        mode = self.run.broker.mode
        self.capacity_control.disabled = mode not in ("block", "reject")
        self.lag_control.disabled = mode != "rate_limit"
        self.shed_control.disabled = mode != "shed"


def integer_ticks(top: float, steps: int = 8) -> list[int]:
    """Whole-number ticks from 0 to at least ``top`` in at most ``steps`` steps of 1, 2, 5, 10,
    20, ... (round numbers, never below 0).

    >>> integer_ticks(23)
    [0, 5, 10, 15, 20, 25]
    >>> integer_ticks(158, steps=6)
    [0, 50, 100, 150, 200]
    """
    _validate.number("top", top, minimum=0, maximum=1e18)
    _validate.integer("steps", steps, minimum=2, maximum=20)
    scale = 1
    while True:
        for step in (scale, 2 * scale, 5 * scale):
            if top / step <= steps:
                return list(range(0, math.ceil(max(top, 1) / step) * step + 1, step))
        scale *= 10
