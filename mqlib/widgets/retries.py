"""Chapter 6's retry storm view: the load on a recovering dependency, retries in step versus
retries with full jitter."""

from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..scenarios.retries import RetryStormRun
from ._base import (
    FINE_STEPS,
    PALETTE,
    SimulationView,
    assign,
    held,
    line_swatch,
    nice_ceiling,
)

IN_STEP = PALETTE["vermillion"]
JITTERED = PALETTE["blue"]
CAPACITY = PALETTE["grey"]
#: The table's cells: padded and ruled, so that neither the headings nor the figures run together.
_CELL = "padding:1px 14px 1px 0;border-bottom:1px solid #ccc;text-align:left;vertical-align:bottom"
_NUMBER = _CELL.replace("text-align:left", "text-align:right")
#: Every slider's label in full ("backoff cap (s)"), not cut to "backoff ca…".
_SLIDER = {"style": {"description_width": "105px"}, "layout": w.Layout(width="275px")}


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

    def describe_charts(self) -> list[str]:
        """The chart in words: each storm's peak after the recovery and when it is over."""
        none, full = self.run.results["none"], self.run.results["full"]
        return [
            "Line chart of calls per second reaching the dependency, which is down until "
            f"t={none['recovers_at']:g} s and then serves {none['capacity']} per second: in step "
            f"the load after recovery peaks at {none['peak_after_recovery']} and the last call "
            f"ends at t={none['recovered_at']:.1f} s; with full jitter it peaks at "
            f"{full['peak_after_recovery']} and ends at t={full['recovered_at']:.1f} s."
        ]

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
        )
        self.jittered_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": y},
            colors=[JITTERED],
            stroke_width=2.5,
            interpolation="step-after",
            labels=["full jitter"],
        )
        self.capacity_mark = bq.Lines(
            x=[0.0, 1.0],
            y=[0.0, 0.0],
            scales={"x": x, "y": y},
            colors=[CAPACITY],
            stroke_width=2,
            line_style="dashed",
            labels=["capacity once recovered"],
        )
        self.figure = bq.Figure(
            marks=[self.capacity_mark, self.in_step_mark, self.jittered_mark],
            title="Calls reaching the dependency",
            axes=[
                bq.Axis(scale=x, label="simulated time (s)", tick_format="~g"),
                bq.Axis(scale=y, side="left", label="calls per second", tick_format="d"),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 60, "right": 20},
            layout=w.Layout(width="100%", height="290px"),
        )
        s = self.run.settings
        slider = self._slider
        self.consumers_control = slider(
            w.IntSlider, s["consumers"], 20, 1000, step=20, description="consumers", **_SLIDER
        )
        self.recovers_control = slider(
            w.FloatSlider,
            s["recovers_at"],
            1.0,
            60.0,
            step=1.0,
            description="down until (s)",
            readout_format=".0f",
            **_SLIDER,
        )
        self.capacity_control = slider(
            w.IntSlider, s["capacity"], 5, 500, step=5, description="capacity /s", **_SLIDER
        )
        self.attempts_control = slider(
            w.IntSlider, s["max_attempts"], 1, 20, description="max attempts", **_SLIDER
        )
        self.cap_control = slider(
            w.FloatSlider,
            s["cap"],
            1.0,
            120.0,
            step=1.0,
            description="backoff cap (s)",
            readout_format=".0f",
            **_SLIDER,
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

        # A legend in HTML: bqplot's own box draws its icons over the first letters of its labels.
        self.legend = w.HTML(
            '<div style="line-height:1.4;font-size:13px">'
            + " &nbsp; ".join(
                [
                    line_swatch(IN_STEP, "in step (no jitter)"),
                    line_swatch(JITTERED, "full jitter"),
                    line_swatch(CAPACITY, "capacity once recovered", True),
                ]
            )
            + "</div>"
        )
        self.view = w.VBox(
            [
                self.figure,
                self.legend,
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
        recovers = float(none["recovers_at"])
        top = float(max(max(none["load"]), max(full["load"]), none["capacity"]) * 1.1)
        # One message per mark and scale, with only what changed; round scale ends (FINE_STEPS:
        # 1, 1.25, 1.5, 2, ... times a power of ten), so that a setting which moves the curves a
        # little keeps the axes.
        with held(self.figure):
            assign(self.x_scale, max=nice_ceiling(end, FINE_STEPS))
            assign(self.y_scale, max=nice_ceiling(top, FINE_STEPS))
            assign(self.in_step_mark, x=[*none["time"], end], y=[*none["load"], 0])
            assign(self.jittered_mark, x=[*full["time"], end], y=[*full["load"], 0])
            assign(self.capacity_mark, x=[recovers, end], y=[float(none["capacity"])] * 2)
        table = self.run.table()

        def style(value: Any) -> str:
            return _CELL if isinstance(value, str) else _NUMBER

        rows = "".join(
            "<tr>"
            + "".join(f"<td style='{style(v)}'>{html.escape(str(v))}</td>" for v in row.values())
            + "</tr>"
            for row in table
        )
        head = "".join(
            f"<th style='{style(v)};border-bottom:2px solid #767676'>{html.escape(k)}</th>"
            for k, v in table[0].items()
        )
        self.table.value = (
            "<table class='mq-table' style='border-collapse:collapse;line-height:1.35;"
            f"margin:2px 0'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<small>Peak load after recovery {self.run.peak_ratio:.1f} times higher in step than "
            "with jitter.</small>"
        )
