"""Chapter 1's view: a work queue with three competing consumers."""

from __future__ import annotations

import bqplot as bq
import ipywidgets as w

from ..scenarios.point_to_point import PointToPointRun, default_run
from ._base import PALETTE, SimulationView, assign, held, nice_ceiling, step_points

CONSUMER_COLOURS = [
    PALETTE["blue"],
    PALETTE["orange"],
    PALETTE["green"],
    PALETTE["purple"],
    PALETTE["sky"],
    PALETTE["vermillion"],
]


class PointToPoint(SimulationView):
    """Queue depth over time and messages per consumer, with buttons for every action.

    The buttons call the same methods you can call from code: :meth:`send`, :meth:`crash_consumer`,
    :meth:`restart_consumer`, :meth:`set_processing_time`, :meth:`set_visibility_timeout` and
    :meth:`advance`. Pass ``run`` to view a run you scripted; the default is
    :func:`~mqlib.scenarios.point_to_point.default_run`.
    """

    def __init__(self, run: PointToPointRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, PointToPointRun, default_run)
        self._build()
        self.refresh()

    # -- scriptable actions (each button calls one of these) ------------------------------------
    def send(self, count: int = 1) -> None:
        """The producer sends ``count`` messages."""
        self.run.send(count)
        self.refresh()

    def crash_consumer(self, name: str) -> str | None:
        """Kill consumer ``name`` mid-message; returns the message it dropped, if any."""
        dropped = self.run.crash_consumer(name)
        timeout = self.run.queue.visibility_timeout
        self._tell(
            f"({name} crashed holding {dropped}: it stays in flight until its {timeout:g} s "
            "visibility timeout runs out.)"
            if dropped
            else f"({name} crashed while idle: it held no message.)"
        )
        self.refresh()
        return dropped

    def restart_consumer(self, name: str) -> None:
        """Bring consumer ``name`` back."""
        self.run.restart_consumer(name)
        self.refresh()

    def set_processing_time(self, name: str, seconds: float) -> None:
        """Seconds consumer ``name`` needs per message."""
        known = isinstance(name, str) and name in self.run.consumers  # a list is not hashable
        before = self.run.consumers[name].processing_time if known else None
        self.run.set_processing_time(name, seconds)
        self._sync(self.speed_controls[name], seconds)
        # (A slider in the page may send back its value rounded to its step: no news.)
        if before is None or abs(before - seconds) > 1e-9:
            self._tell(f"({name} now needs {seconds:g} s per message, from its next message.)")
        self.refresh()

    def set_visibility_timeout(self, seconds: float) -> None:
        """The queue's visibility timeout in seconds."""
        before = self.run.queue.visibility_timeout
        self.run.set_visibility_timeout(seconds)
        self._sync(self.visibility_control, seconds)
        if abs(before - seconds) > 1e-9:
            self._tell(
                f"(Visibility timeout now {seconds:g} s, for messages received from now on.)"
            )
        self.refresh()

    def advance(self, seconds: float = 1.0) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.run.advance(seconds)
        self.refresh()

    # -- internals -----------------------------------------------------------------------------
    def _build(self) -> None:
        self._syncing = False
        names = list(self.run.consumers)
        self.x_scale = x = bq.LinearScale(min=0.0)
        self.y_scale = y = bq.LinearScale(min=0.0)
        # Two marks so the in-flight line can be dashed: where both are equal, both stay visible.
        self.depth_mark = bq.Lines(
            scales={"x": x, "y": y},
            colors=[PALETTE["blue"]],
            stroke_width=3,
            labels=["waiting (visible)"],
            interpolation="step-after",
        )
        self.in_flight_mark = bq.Lines(
            scales={"x": x, "y": y},
            colors=[PALETTE["vermillion"]],
            stroke_width=2.5,
            line_style="dashed",
            labels=["in flight"],
            interpolation="step-after",
        )
        self.depth_figure = bq.Figure(
            marks=[self.depth_mark, self.in_flight_mark],
            title="Messages in the queue",
            axes=[
                bq.Axis(scale=x, label="simulated time (s)"),
                bq.Axis(scale=y, side="left", label="messages", tick_format="d"),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 55, "right": 20},
            layout=w.Layout(width="62%", height="270px"),
        )
        cx = bq.OrdinalScale()
        self.count_scale = cy = bq.LinearScale(min=0.0)
        self.count_mark = bq.Bars(
            x=names,
            y=[0] * len(names),
            scales={"x": cx, "y": cy},
            colors=[CONSUMER_COLOURS[i % len(CONSUMER_COLOURS)] for i in range(len(names))],
            padding=0.3,
        )
        self.count_figure = bq.Figure(
            marks=[self.count_mark],
            title="Processed",
            axes=[
                bq.Axis(scale=cx, label="consumer"),
                bq.Axis(scale=cy, side="left", label="messages processed", tick_format="d"),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 55, "right": 10},
            layout=w.Layout(width="36%", height="270px"),
        )

        producer = w.HBox(
            [
                self._button("Send 1", lambda: self.send(1), "the producer sends one message"),
                self._button(
                    "Burst of 10", lambda: self.send(10), "the producer sends ten messages"
                ),
                self._button("Advance 1 s", lambda: self.advance(1.0), "let one second pass"),
                self._button("Advance 5 s", lambda: self.advance(5.0), "let five seconds pass"),
            ]
        )
        self.speed_controls: dict[str, w.FloatSlider] = {}
        consumer_rows = []
        for name in names:
            slider = self._slider(
                w.FloatSlider,
                self.run.consumers[name].processing_time,
                0.2,
                5.0,
                step=0.1,
                description=f"{name}: s/message",
                style={"description_width": "110px"},
                readout_format=".1f",
                layout=w.Layout(width="340px"),
            )
            slider.observe(
                self._on_control(lambda v, n=name: self.set_processing_time(n, v)), "value"
            )
            self.speed_controls[name] = slider
            consumer_rows.append(
                w.HBox(
                    [
                        slider,
                        self._button(
                            f"Crash {name}",
                            lambda n=name: self._toggle_crash(n),
                            "kill this consumer now, before it acks (click again to restart)",
                        ),
                    ]
                )
            )
        self.visibility_control = self._slider(
            w.FloatSlider,
            self.run.queue.visibility_timeout,
            0.5,
            30.0,
            step=0.5,
            description="visibility timeout (s)",
            style={"description_width": "150px"},
            readout_format=".1f",
            layout=w.Layout(width="420px"),
        )
        self.visibility_control.observe(self._on_control(self.set_visibility_timeout), "value")
        self.crash_buttons = {
            name: row.children[1] for name, row in zip(names, consumer_rows, strict=True)
        }
        # A legend in HTML: bqplot's own legend box sits on top of the lines it explains.
        legend = w.HTML(
            f'<span style="color:{PALETTE["blue"]}">&#9473;&#9473;</span> waiting (visible) &nbsp; '
            f'<span style="color:{PALETTE["vermillion"]}">&#9477;&#9477;</span> in flight'
            " &nbsp; (messages in the queue over time) &nbsp; bars: messages each consumer "
            f'finished, <span style="color:{PALETTE["grey"]}">&#9632;</span> grey = crashed'
        )
        # Controls in two columns, so that the charts and every control fit on a 720-pixel screen.
        self.view = w.VBox(
            [
                w.HBox([self.depth_figure, self.count_figure]),
                legend,
                self.summary_label,
                w.HBox(
                    [w.VBox([producer, self.visibility_control]), w.VBox(consumer_rows)],
                    layout=w.Layout(flex_flow="row wrap", grid_gap="4px 24px"),
                ),
            ]
        )

    def describe_charts(self) -> list[str]:
        series = self.run.series
        now = self.run.now
        crashed = [n for n, c in self.run.consumers.items() if not c.alive]
        counts = ", ".join(
            f"{n} {c}{' (crashed)' if n in crashed else ''}"
            for n, c in self.run.processed_by().items()
        )
        return [
            f"Line chart of messages in the queue over {now:g} s of simulated time: "
            f"{series['visible'][-1]} waiting and {series['in_flight'][-1]} in flight now, "
            f"at most {max(series['visible'], default=0)} waiting.",
            f"Bar chart of messages processed per consumer: {counts}.",
        ]

    def _toggle_crash(self, name: str) -> None:
        if self.run.consumers[name].alive:
            self.crash_consumer(name)
        else:
            self.restart_consumer(name)

    def _draw(self) -> None:
        series = self.run.series
        with held(self.depth_figure):
            # Room to the right of the newest sample and above the highest value, so the latest
            # change is never drawn on the frame, rounded up to 1, 2, 5, 10, 20, ...: a domain
            # that changes redraws the axis and every mark on it, so most clicks keep it.
            assign(self.x_scale, max=nice_ceiling(self.run.now + max(1.0, 0.05 * self.run.now)))
            assign(
                self.y_scale,
                max=nice_ceiling(max(series["visible"] + series["in_flight"] + [1]) * 1.15 + 1),
            )
            # Only the samples that change the picture (bounded after hours of history).
            for mark, values in (
                (self.depth_mark, series["visible"]),
                (self.in_flight_mark, series["in_flight"]),
            ):
                x, y = step_points(series["time"], values)
                assign(mark, x=x, y=y)
        counts = list(self.run.processed_by().values())
        with held(self.count_figure):
            assign(self.count_scale, max=nice_ceiling(max(counts + [1]) * 1.15 + 1))
            # A crashed consumer's bar turns grey.
            assign(
                self.count_mark,
                y=counts,
                colors=[
                    CONSUMER_COLOURS[i % len(CONSUMER_COLOURS)]
                    if consumer.alive
                    else PALETTE["grey"]
                    for i, consumer in enumerate(self.run.consumers.values())
                ],
            )
        for name, button in self.crash_buttons.items():
            alive = self.run.consumers[name].alive
            button.description = f"Crash {name}" if alive else f"Restart {name}"
            button.icon = "" if alive else "rotate-right"
