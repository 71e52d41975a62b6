"""Chapter 6's retry storm view: the load on a recovering dependency, retries in step versus
retries with full jitter."""

from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..scenarios.retries import RetryStormRun
from ._base import PALETTE, SimulationView

IN_STEP = PALETTE["vermillion"]
JITTERED = PALETTE["blue"]
CAPACITY = PALETTE["grey"]


class RetryStorm(SimulationView):
    """Calls per second reaching the dependency over time, for the same storm with retries in step
    (no jitter) and with full jitter, against what the dependency can serve once it is back.

    Every control is also a method: :meth:`configure` (``consumers``, ``recovers_at``,
    ``capacity``, ``max_attempts``, ``cap``, ``seed``) plays both storms again with the new
    settings, as :meth:`~mqlib.scenarios.retries.RetryStormRun.configure` does. Pass ``run`` to
    view a run you made; the default is ``RetryStormRun()``.
    """

    def __init__(self, run: RetryStormRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, RetryStormRun, RetryStormRun)
        self._build()
        self.refresh()

    def configure(self, **settings: Any) -> None:
        """Change settings and play both storms again."""
        self.run.configure(**settings)
        self._sync_controls()
        self.refresh()

    # -- internals -----------------------------------------------------------------------------
    def _build(self) -> None:
        x, y = bq.LinearScale(min=0.0), bq.LinearScale(min=0.0)
        self.x_scale, self.y_scale = x, y
        self.in_step_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": y},
            colors=[IN_STEP],
            stroke_width=2.5,
            interpolation="step-after",
            labels=["in step (no jitter)"],
            display_legend=True,
        )
        self.jittered_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": y},
            colors=[JITTERED],
            stroke_width=2.5,
            interpolation="step-after",
            labels=["full jitter"],
            display_legend=True,
        )
        self.capacity_mark = bq.Lines(
            x=[0.0, 1.0],
            y=[0.0, 0.0],
            scales={"x": x, "y": y},
            colors=[CAPACITY],
            stroke_width=2,
            line_style="dashed",
            labels=["capacity once recovered"],
            display_legend=True,
        )
        self.figure = bq.Figure(
            marks=[self.capacity_mark, self.in_step_mark, self.jittered_mark],
            title="Calls reaching the dependency",
            axes=[
                bq.Axis(scale=x, label="simulated time (s)", tick_format="~g"),
                bq.Axis(scale=y, side="left", label="calls per second", tick_format="d"),
            ],
            legend_location="top-right",
            fig_margin={"top": 40, "bottom": 50, "left": 60, "right": 20},
            layout=w.Layout(width="100%", height="340px"),
        )
        s = self.run.settings
        slider = self._slider
        self.consumers_control = slider(
            w.IntSlider, s["consumers"], 20, 1000, step=20, description="consumers"
        )
        self.recovers_control = slider(
            w.FloatSlider, s["recovers_at"], 1.0, 60.0, step=1.0, description="down until (s)"
        )
        self.capacity_control = slider(
            w.IntSlider, s["capacity"], 5, 500, step=5, description="capacity /s"
        )
        self.attempts_control = slider(
            w.IntSlider, s["max_attempts"], 1, 20, description="max attempts"
        )
        self.cap_control = slider(
            w.FloatSlider, s["cap"], 1.0, 120.0, step=1.0, description="backoff cap (s)"
        )
        controls = {
            "consumers": self.consumers_control,
            "recovers_at": self.recovers_control,
            "capacity": self.capacity_control,
            "max_attempts": self.attempts_control,
            "cap": self.cap_control,
        }
        for name, control in controls.items():
            control.observe(
                self._on_control(lambda value, n=name: self.configure(**{n: value})), "value"
            )
        self.table = w.HTML()
        self.view = w.VBox(
            [
                self.figure,
                w.HBox([self.consumers_control, self.recovers_control, self.capacity_control]),
                w.HBox([self.attempts_control, self.cap_control]),
                self.table,
                self.summary_label,
            ]
        )

    def _sync_controls(self) -> None:
        s = self.run.settings
        self._sync(self.consumers_control, s["consumers"])
        self._sync(self.recovers_control, s["recovers_at"])
        self._sync(self.capacity_control, s["capacity"])
        self._sync(self.attempts_control, s["max_attempts"])
        self._sync(self.cap_control, s["cap"])

    def _draw(self) -> None:
        none, full = self.run.results["none"], self.run.results["full"]
        end = max(none["time"][-1], full["time"][-1]) + 1.0
        with self.in_step_mark.hold_sync(), self.jittered_mark.hold_sync():
            self.in_step_mark.x, self.in_step_mark.y = [*none["time"], end], [*none["load"], 0]
            self.jittered_mark.x, self.jittered_mark.y = [*full["time"], end], [*full["load"], 0]
        recovers = float(none["recovers_at"])
        self.capacity_mark.x = [recovers, end]
        self.capacity_mark.y = [float(none["capacity"])] * 2
        self.x_scale.max = end
        self.y_scale.max = float(max(max(none["load"]), max(full["load"]), none["capacity"]) * 1.1)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
            for row in self.run.table()
        )
        head = "".join(f"<th>{html.escape(k)}</th>" for k in self.run.table()[0])
        self.table.value = (
            f"<table class='mq-table'><tr>{head}</tr>{rows}</table>"
            f"<small>Peak load after recovery {self.run.peak_ratio:.1f} times higher in step than "
            "with jitter.</small>"
        )
