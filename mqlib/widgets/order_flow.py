"""Chapter 0's view: one order through five services, synchronously or with events."""

from __future__ import annotations

import bqplot as bq
import ipywidgets as w

from .. import _validate as check
from ..models.service_chain import DEFAULT_LATENCIES_MS, MODES, FlowResult, OrderFlow
from ._base import PALETTE, SimulationView, assign, held, nice_ceiling

STATUS_COLOURS = {
    "ok": PALETTE["blue"],
    "timeout": PALETTE["vermillion"],
    "refused": PALETTE["vermillion"],
}
ROWS = ["order service", *DEFAULT_LATENCIES_MS]
NOTES = {"not_reached": "never called", "queued": "still waiting in its queue"}


class SyncVsAsync(SimulationView):
    """Timeline of one order: which service worked when, and when the user got an answer.

    Every control is also a method: :meth:`set_mode`, :meth:`set_latency`, :meth:`set_down`,
    :meth:`set_timeout`, :meth:`set_recovery`. :attr:`result` is the latest
    :class:`~mqlib.models.service_chain.FlowResult`.

    The default is the lesson's example in synchronous mode: email takes 3 s, the warehouse is down
    and the call to it times out after 5 s.
    """

    def __init__(
        self,
        mode: str = "sync",
        *,
        down: tuple[str, ...] = ("warehouse",),
        timeout_ms: float = 5000.0,
        recovers_at_ms: float = 6000.0,
    ) -> None:
        super().__init__()
        self.flow = OrderFlow(mode, down=down, timeout_ms=timeout_ms)
        self.recovers_at_ms = check.non_negative("recovers_at_ms", recovers_at_ms)
        self._apply_recovery()
        self.result: FlowResult = self.flow.run()
        self._syncing = False
        self._build()
        self.refresh()

    # -- scriptable actions --------------------------------------------------------------------
    def set_mode(self, mode: str) -> FlowResult:
        """``"sync"`` or ``"async"``."""
        self.flow.mode = check.choice("mode", mode, MODES)
        self._sync(self.mode_control, mode)
        return self._rerun()

    def set_latency(self, service: str, ms: float) -> FlowResult:
        """Latency of ``service`` in milliseconds."""
        check.choice("service", service, self.flow.services)  # before a lookup: may be a list
        before = self.flow.latencies_ms.get(service)
        self.flow.set_latency(service, ms)
        self._sync(self.latency_controls[service], ms)
        step = next(s for s in self.result.steps if s.service == service)
        if step.status == "not_reached" and before != ms:
            failed = next(
                s.service
                for s in self.result.steps
                if s.status in STATUS_COLOURS and s.status != "ok"
            )
            self._tell(
                f"({service} now takes {ms:,.0f} ms, but it is never called: "
                f"the chain stops at {failed}.)"
            )
        return self._rerun()

    def set_down(self, service: str, down: bool = True) -> FlowResult:
        """Take ``service`` down (``True``) or bring it up (``False``)."""
        self.flow.set_down(service, down)
        self._sync(self.down_controls[service], down)
        return self._rerun()

    def set_timeout(self, ms: float) -> FlowResult:
        """How long a synchronous call waits before failing."""
        before, self.flow.timeout_ms = self.flow.timeout_ms, check.positive("timeout_ms", ms)
        self._sync(self.timeout_control, ms)
        if before == ms:
            pass  # a slider echoing its own value: nothing to say
        elif self.flow.mode == "async":
            self._tell(
                f"(Call timeout now {ms:,.0f} ms; asynchronous mode makes no calls to time out.)"
            )
        elif not self.flow.down:
            self._tell(f"(Call timeout now {ms:,.0f} ms; no service is down, so none times out.)")
        return self._rerun()

    def set_recovery(self, ms: float) -> FlowResult:
        """Async mode: when the services that are down come back."""
        before, self.recovers_at_ms = self.recovers_at_ms, check.non_negative("ms", ms)
        self._sync(self.recovery_control, ms)
        if before == ms:
            pass  # a slider echoing its own value: nothing to say
        elif self.flow.mode == "sync":
            self._tell(
                f"(Down services now come back at {ms:,.0f} ms; that matters only in "
                "asynchronous mode, where their events wait for them.)"
            )
        elif not self.flow.down:
            self._tell(f"(Down services would come back at {ms:,.0f} ms; none is down.)")
        return self._rerun()

    def summary(self) -> str:
        return self.result.summary()

    def describe_charts(self) -> list[str]:
        r = self.result
        parts = []
        for step in r.steps:
            if step.status in ("not_reached", "queued"):
                parts.append(f"{step.service} {NOTES[step.status]}")
            elif step.start_ms is not None and step.end_ms is not None:
                parts.append(
                    f"{step.service} {step.status} from {step.start_ms:,.0f} to "
                    f"{step.end_ms:,.0f} ms"
                )
        return [
            f"Timeline of one order ({'synchronous' if r.mode == 'sync' else 'asynchronous'}): "
            f"{'; '.join(parts)}; the user gets an answer at {r.user_wait_ms:,.0f} ms."
        ]

    # -- internals -----------------------------------------------------------------------------
    def _apply_recovery(self) -> None:
        self.flow.recovers_at_ms = {name: self.recovers_at_ms for name in self.flow.services}

    def _rerun(self) -> FlowResult:
        self._apply_recovery()
        self.result = self.flow.run()
        self.refresh()
        return self.result

    def _build(self) -> None:
        self.x_scale = bq.LinearScale(min=0.0)
        self.y_scale = bq.LinearScale(min=-0.6, max=len(ROWS) - 0.4, reverse=True)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.waiting_mark = bq.Lines(
            scales=scales,
            colors=[PALETTE["grey"]],
            stroke_width=3,
            line_style="dashed",
            labels=["waiting in queue"],
        )
        self.work_mark = bq.Lines(scales=scales, stroke_width=14, labels=["working"])
        self.user_mark = bq.Lines(
            scales=scales,
            colors=[PALETTE["black"]],
            stroke_width=2,
            line_style="dash_dotted",
            labels=["user gets an answer"],
        )
        # Labels start with (empty) data: a Label created without x, y and text fails to update
        # in a live notebook ("Error setting state").
        self.user_label = bq.Label(
            x=[],
            y=[],
            text=[],
            scales=scales,
            colors=[PALETTE["black"]],
            font_weight="bold",
            default_size=13,
            x_offset=6,
            y_offset=-4,
            align="start",
        )
        # Says what happened on rows without a bar: "never called", "still waiting in its queue".
        self.status_label = bq.Label(
            x=[],
            y=[],
            text=[],
            scales=scales,
            colors=[PALETTE["black"]],
            default_size=12,
            x_offset=6,
            y_offset=-6,
            align="start",
        )
        x_axis = bq.Axis(
            scale=self.x_scale, label="time since the user clicked 'Buy' (ms)", tick_format=",d"
        )
        y_axis = bq.Axis(
            scale=self.y_scale,
            side="left",
            tick_values=list(range(len(ROWS))),
            tick_labels={str(i): name for i, name in enumerate(ROWS)},
            grid_lines="none",
        )
        self.figure = bq.Figure(
            # The answer line goes under the bars so it never hides where a service starts.
            marks=[
                self.waiting_mark,
                self.user_mark,
                self.work_mark,
                self.status_label,
                self.user_label,
            ],
            axes=[x_axis, y_axis],
            title="One order, service by service",
            fig_margin={"top": 40, "bottom": 50, "left": 110, "right": 30},
            layout=w.Layout(width="100%", height="260px"),
        )

        self.mode_control = w.ToggleButtons(
            options=[("Synchronous", "sync"), ("Asynchronous", "async")],
            value=self.flow.mode,
        )
        self.mode_control.observe(self._on_control(self.set_mode), "value")
        # Float sliders: a latency set from code (12.5 ms) is shown as it is, not truncated.
        self.latency_controls: dict[str, w.FloatSlider] = {}
        self.down_controls: dict[str, w.Checkbox] = {}
        rows = []
        for name in self.flow.services:
            slider = self._slider(
                w.FloatSlider,
                self.flow.latencies_ms[name],
                0,
                6000,
                step=10,
                readout_format=",.0f",
                description=f"{name} (ms)",
                style={"description_width": "110px"},
                layout=w.Layout(width="340px"),
            )
            slider.observe(self._on_control(lambda v, n=name: self.set_latency(n, v)), "value")
            box = w.Checkbox(
                value=name in self.flow.down,
                # The service's name is for screen readers: five boxes all called "down" would
                # not say which service each one takes down.
                description=f'down<span class="mq-sr-only"> ({name})</span>',
                description_allow_html=True,
                tooltip="down = hung or unreachable: a synchronous call waits for its timeout",
                indent=False,
                layout=w.Layout(width="70px"),
            )
            box.observe(self._on_control(lambda v, n=name: self.set_down(n, v)), "value")
            self.latency_controls[name] = slider
            self.down_controls[name] = box
            rows.append(w.HBox([slider, box]))
        self.timeout_control = self._slider(
            w.FloatSlider,
            self.flow.timeout_ms,
            100,
            10000,
            step=100,
            readout_format=",.0f",
            description="call timeout (ms)",
            style={"description_width": "130px"},
            layout=w.Layout(width="360px"),
        )
        self.timeout_control.observe(self._on_control(self.set_timeout), "value")
        self.recovery_control = self._slider(
            w.FloatSlider,
            self.recovers_at_ms,
            0,
            15000,
            step=500,
            readout_format=",.0f",
            description="down → up at (ms)",
            style={"description_width": "130px"},
            layout=w.Layout(width="360px"),
        )
        self.recovery_control.observe(self._on_control(self.set_recovery), "value")
        # Two columns, so that the chart and every control fit on one 720-pixel screen.
        controls = w.HBox(
            [
                w.VBox([self.mode_control, self.timeout_control, self.recovery_control]),
                w.VBox(rows),
            ],
            layout=w.Layout(flex_flow="row wrap", grid_gap="4px 24px"),
        )
        legend = w.HTML(
            f'<span style="color:{PALETTE["green"]}">&#9632;</span> order service\'s own work '
            f'&nbsp; <span style="color:{PALETTE["blue"]}">&#9632;</span> service working '
            f'&nbsp; <span style="color:{PALETTE["vermillion"]}">&#9632;</span> call timed out '
            f'&nbsp; <span style="color:{PALETTE["grey"]}">- - -</span> event waiting in its queue'
            " &nbsp; -&middot;- the user gets an answer"
        )
        self.view = w.VBox([self.figure, legend, self.summary_label, controls])

    def _draw(self) -> None:
        r = self.result
        work_x, work_y, colours = [[0.0, self.flow.order_ms]], [[0, 0]], [PALETTE["green"]]
        wait_x, wait_y = [], []
        notes_x, notes_y, notes = [], [], []
        for row, step in enumerate(r.steps, start=1):
            if step.status in NOTES:
                notes_x.append(r.user_wait_ms if step.status == "queued" else 0.0)
                notes_y.append(row)
                notes.append(NOTES[step.status])
            if step.status in STATUS_COLOURS:
                work_x.append([step.start_ms, step.end_ms])
                work_y.append([row, row])
                colours.append(STATUS_COLOURS[step.status])
            if r.mode == "async" and step.start_ms is not None and step.start_ms > r.user_wait_ms:
                wait_x.append([r.user_wait_ms, step.start_ms])  # event queued while it was down
                wait_y.append([row, row])
        end = max([x for pair in work_x + wait_x for x in pair] + [r.user_wait_ms + 1000])
        for row, step in enumerate(r.steps, start=1):
            if step.status == "queued":  # still waiting when everything else is done
                wait_x.append([r.user_wait_ms, end])
                wait_y.append([row, row])
        # A round end (1, 2, 5, 10 thousand ms...): both modes of the default order fit in
        # 10,000 ms, so switching modes redraws the bars but not the axis and every mark on it.
        x_max = nice_ceiling(float(end) * 1.05)
        # Write the label on whichever side of the line has room for it.
        right_half = r.user_wait_ms > 0.5 * x_max
        verdict = "confirmed" if r.outcome == "confirmed" else "error"
        with held(self.figure):
            assign(self.x_scale, max=x_max)
            assign(self.work_mark, x=work_x, y=work_y, colors=colours)
            assign(
                self.waiting_mark,
                x=wait_x or [[0.0, 0.0]],
                y=wait_y or [[-5, -5]],  # off-chart when nothing waits
            )
            assign(self.user_mark, x=[r.user_wait_ms, r.user_wait_ms], y=[-0.5, len(ROWS) - 0.5])
            assign(
                self.status_label,
                x=notes_x or [0.0],
                y=notes_y or [-5],  # off-chart when every row has a bar
                text=notes or [""],
            )
            assign(
                self.user_label,
                x=[r.user_wait_ms],
                y=[-0.35],
                align="end" if right_half else "start",
                x_offset=-6 if right_half else 6,
                text=[f"user sees '{verdict}' at {r.user_wait_ms:,.0f} ms"],
            )
