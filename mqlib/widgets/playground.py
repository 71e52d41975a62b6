"""Chapter 8's view: the message queue playground - a producer, a broker queue with its DLQ and
three consumers, with every control at once."""

from __future__ import annotations

import contextlib
import html

import bqplot as bq
import ipywidgets as w

from ..scenarios.playground import Playground, default_run
from ._base import PALETTE, SimulationView, assign, bounded, nice_ceiling
from ._base import held as hold_all

#: Seconds over which the throughput line is averaged (samples come every 0.5 s, and a consumer
#: finishes a message every 0.5 s, so the raw per-sample rate jumps between neighbouring values).
THROUGHPUT_WINDOW = 2.0

DEPTH_COLOUR = PALETTE["blue"]
DLQ_COLOUR = PALETTE["vermillion"]
THROUGHPUT_COLOUR = PALETTE["green"]
PRODUCER_COLOUR = PALETTE["orange"]


def _windowed_rate(
    times: list[float], totals: list[float], window: float = THROUGHPUT_WINDOW
) -> list[float]:
    """Per-second growth of the counter ``totals`` over the last ``window`` seconds at each sample
    (over what there is near the start). Drawing only: it smooths the scenario's own counter."""
    rates, start = [], 0
    for i, t in enumerate(times):
        while times[start] < t - window - 1e-9:
            start += 1
        dt = t - times[start]
        rates.append((totals[i] - totals[start]) / dt if dt > 0 else 0.0)
    return rates


def _card_layout(width: str = "200px") -> w.Layout:
    return w.Layout(
        border="1px solid #ccc",
        padding="0 4px 0 6px",
        margin="2px 6px 2px 0",
        width=width,
        align_items="center",
        flex="0 0 auto",
    )


def _row(title: str, children: list[w.Widget]) -> w.HBox:
    """A titled row of controls that wraps on a narrow page instead of squeezing its buttons."""
    for child in children:
        if isinstance(child, w.Button):
            child.layout.flex = "0 0 auto"
    return w.HBox(
        [w.HTML(f"<b>{title}</b>", layout=w.Layout(width="72px", flex="0 0 auto")), *children],
        layout=w.Layout(flex_flow="row wrap", align_items="center"),
    )


class MessageQueueSimulator(SimulationView):
    """Queue depth, DLQ depth and throughput over time, each consumer's state, and every control.

    Every control is also a method: :meth:`set_rate`, :meth:`advance`, :meth:`kill_consumer`,
    :meth:`revive_consumer`, :meth:`inject_poison`, :meth:`set_dlq`, :meth:`set_max_receives`,
    :meth:`set_backpressure`, :meth:`fix_bug`, :meth:`replay_dlq` and :meth:`drain`; each calls
    the method of the same name of the :class:`~mqlib.scenarios.playground.Playground` it draws,
    which checks its arguments first. Pass ``run`` to view a run you scripted; the default is
    :func:`~mqlib.scenarios.playground.default_run` (5 msg/s, a poison pill at 5 s, consumer B
    killed at 10 s and revived at 20 s, 30 s in all).
    """

    def __init__(self, run: Playground | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, Playground, default_run)
        self._build()
        self.refresh()

    # -- scriptable actions (each control calls one of these) -----------------------------------
    def set_rate(self, rate: float) -> None:
        """Messages per second from the producer (0 pauses it)."""
        self.run.set_rate(rate)
        self._tell(
            "(The producer is paused.)"
            if rate == 0
            else f"(The producer now sends {rate:g} msg/s, from its next message.)"
        )
        self.refresh()

    def advance(self, seconds: float = 5.0) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.run.advance(seconds)
        self.refresh()

    def kill_consumer(self, name: str) -> str | None:
        """Kill consumer ``name`` now; returns the id of the message it dropped, if any."""
        dropped = self.run.kill_consumer(name)
        timeout = f"{self.run.queue.visibility_timeout:g}"
        self._tell(
            f"({name} died holding {dropped}: it comes back after the {timeout} s visibility "
            "timeout and another consumer takes it.)"
            if dropped
            else f"({name} died while idle: it held no message.)"
        )
        self.refresh()
        return dropped

    def revive_consumer(self, name: str) -> None:
        """Bring the killed consumer ``name`` back."""
        self.run.revive_consumer(name)
        self._tell(f"({name} is back and takes messages again.)")
        self.refresh()

    def inject_poison(self) -> str:
        """Send one poison pill (a message the consumers' handler cannot process); returns its
        id."""
        poison = self.run.inject_poison()
        fixed = self.run.handler.bug_fixed
        self._tell(
            f"(Poison pill {poison} sent straight to the queue"
            + ("; the bug is fixed, so it will be processed.)" if fixed else ".)")
        )
        self.refresh()
        return poison

    def set_dlq(self, enabled: bool) -> None:
        """Attach or detach the dead letter queue (without it, failures are retried forever)."""
        self.run.set_dlq(enabled)
        kept = self.run.dlq.depth
        if enabled:
            self._tell(
                "(DLQ attached: a message that has used up its receives moves there at its "
                "next receive.)"
            )
        else:
            self._tell(
                "(DLQ detached: failures are retried forever from now on"
                + (f"; what it holds ({kept}) stays there.)" if kept else ".)")
            )
        self.refresh()

    def set_max_receives(self, max_receives: int) -> None:
        """Receives before a failing message goes to the DLQ."""
        self.run.set_max_receives(max_receives)
        self._tell(f"(Max receives is now {max_receives}, from each message's next receive.)")
        self.refresh()

    def set_backpressure(self, enabled: bool, capacity: int | None = None) -> None:
        """Bound the queue at ``capacity`` messages (a full queue blocks the producer), or not.
        Switched on while the queue holds more, the queue drains to the bound with the producer
        sending one message for every two processed (see the scenario's rule)."""
        self.run.set_backpressure(enabled, capacity)
        state = self.run.state()
        if not enabled:
            self._tell(
                "(Backpressure off: the queue is unbounded"
                + (f"; the capacity {capacity} applies when it is on.)" if capacity else ".)")
            )
        elif state["draining"]:
            self._tell(
                f"(The queue holds {state['depth']}, more than its capacity {state['capacity']}: "
                "it drains to it while the producer sends one message for every two processed.)"
            )
        else:
            self._tell(
                f"(Backpressure on: the producer waits whenever {state['capacity']} messages "
                "are in the queue.)"
            )
        self.refresh()

    def fix_bug(self) -> None:
        """Deploy the fix: poison pills are processed normally from now on."""
        already = self.run.handler.bug_fixed
        self.run.fix_bug()
        kept = self.run.dlq.depth
        if already:
            self._tell("(The fix is already deployed.)")
        else:
            self._tell(
                "(Fix deployed: from now on poison pills are processed like any message"
                + (f"; the DLQ's {kept} stay there until you press Replay DLQ.)" if kept else ".)")
            )
        self.refresh()

    def replay_dlq(self) -> list[str]:
        """Send every dead letter back to the queue; returns their ids."""
        ids = self.run.replay_dlq()
        if not ids:
            self._tell("(The DLQ is empty: nothing to replay.)")
        else:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            warning = (
                "" if self.run.handler.bug_fixed else " The bug is not fixed: they will fail again."
            )
            self._tell(f"(Replayed {len(ids)} to the back of the queue: {shown}.{warning})")
        self.refresh()
        return ids

    def drain(self) -> float:
        """Stop the producer and let time pass until the queue is empty; returns the seconds it
        took (``RuntimeError`` if it never empties: every consumer dead, or a poison pill stuck
        with no DLQ)."""
        try:
            seconds = self.run.drain()
        except RuntimeError as error:
            self._tell(f"(Cannot drain: {error}.)")
            raise
        else:
            self._tell(f"(Drained in {seconds:g} s of simulated time; the producer is paused.)")
            return seconds
        finally:
            self.refresh()

    def describe_charts(self) -> list[str]:
        """The two charts in one sentence each, for screen readers."""
        s = self.run.state()
        series = self.run.series
        processed, sent = self._rates()
        return [
            f"Line chart of messages waiting over {s['time']:g} s of simulated time: queue "
            f"depth {s['depth']} now (at most {max(series['depth'], default=0)}), dead letter "
            f"queue {s['dlq_depth']}.",
            f"Line chart of messages per second: processed {processed[-1]:.1f}, sent by the "
            f"producer {sent[-1]:.1f} (both averaged over the last "
            f"{self._window():g} s).",
        ]

    # -- internals -----------------------------------------------------------------------------
    def _build(self) -> None:
        names = list(self.run.consumers)
        self.x_scale = x = bq.LinearScale(min=0.0)
        self.depth_scale = y = bq.LinearScale(min=0.0)
        self.depth_mark = bq.Lines(
            scales={"x": x, "y": y},
            colors=[DEPTH_COLOUR],
            stroke_width=3,
            interpolation="step-after",
        )
        self.dlq_mark = bq.Lines(
            scales={"x": x, "y": y},
            colors=[DLQ_COLOUR],
            stroke_width=2.5,
            line_style="dashed",
            interpolation="step-after",
        )
        self.depth_figure = bq.Figure(
            marks=[self.depth_mark, self.dlq_mark],
            title="Messages waiting",
            axes=[
                bq.Axis(scale=x, label="simulated time (s)", tick_format="~g"),
                bq.Axis(scale=y, side="left", label="messages", tick_format="d"),
            ],
            fig_margin={"top": 30, "bottom": 42, "left": 50, "right": 12},
            layout=w.Layout(width="50%", height="215px"),
        )
        tx = bq.LinearScale(min=0.0)
        self.rate_scale = ty = bq.LinearScale(min=0.0)
        self.producer_mark = bq.Lines(
            scales={"x": tx, "y": ty},
            colors=[PRODUCER_COLOUR],
            stroke_width=2.5,
            line_style="dashed",
        )
        self.throughput_mark = bq.Lines(
            scales={"x": tx, "y": ty},
            colors=[THROUGHPUT_COLOUR],
            stroke_width=3,
        )
        self.throughput_figure = bq.Figure(
            marks=[self.producer_mark, self.throughput_mark],
            title="Messages per second",
            axes=[
                bq.Axis(scale=tx, label="simulated time (s)", tick_format="~g"),
                bq.Axis(scale=ty, side="left", label="msg/s", tick_format="~g"),
            ],
            fig_margin={"top": 30, "bottom": 42, "left": 50, "right": 12},
            layout=w.Layout(width="50%", height="215px"),
        )
        # A legend in HTML: bqplot's own legend box sits on top of the lines it explains.
        self.legend = w.HTML(layout=w.Layout(margin="0"))
        self._legend_window: float | None = None

        # One card per consumer: its state and a kill / revive button beside it.
        self.consumer_labels: dict[str, w.HTML] = {}
        self.consumer_buttons: dict[str, w.Button] = {}
        cards = []
        for name in names:
            label = w.HTML(layout=w.Layout(width="112px", flex="0 0 auto"))
            button = self._button(
                f"Kill {name}",
                lambda n=name: self._toggle(n),
                "kill this consumer now, mid-message (click again to revive it)",
            )
            button.layout.flex = "0 0 auto"
            self.consumer_labels[name], self.consumer_buttons[name] = label, button
            cards.append(w.HBox([label, button], layout=_card_layout()))
        self.dlq_label = w.HTML(layout=w.Layout(width="200px"))
        cards.append(w.HBox([self.dlq_label], layout=_card_layout("210px")))

        self.rate_control = self._slider(
            w.FloatSlider,
            self.run.producer.rate,
            0.0,
            20.0,
            step=0.5,
            description="rate (msg/s)",
            style={"description_width": "80px"},
            readout_format=".1f",
            layout=w.Layout(width="290px"),
        )
        self.rate_control.observe(self._on_control(self.set_rate), "value")
        time_row = _row(
            "Producer",
            [
                self.rate_control,
                self._button("Advance 1 s", lambda: self.advance(1.0), "let one second pass"),
                self._button("Advance 5 s", lambda: self.advance(5.0), "let five seconds pass"),
                self._button("Advance 30 s", lambda: self.advance(30.0), "let 30 seconds pass"),
                self._button(
                    "Drain",
                    self._drain_button,
                    "stop the producer and run until the queue is empty",
                ),
            ],
        )
        self.dlq_control = w.Checkbox(
            description="dead letter queue", indent=False, layout=w.Layout(width="auto")
        )
        self.dlq_control.observe(self._on_control(self.set_dlq), "value")
        self.max_receives_control = self._slider(
            w.IntSlider,
            self.run.queue.max_receives,
            1,
            10,
            description="max receives",
            style={"description_width": "90px"},
            layout=w.Layout(width="250px"),
        )
        self.max_receives_control.observe(self._on_control(self.set_max_receives), "value")
        failure_row = _row(
            "Failures",
            [
                self._button(
                    "Inject poison pill",
                    self.inject_poison,
                    "send a message the consumers' handler always fails on",
                    "bolt",
                ),
                self.dlq_control,
                self._button(
                    "Fix bug", self.fix_bug, "deploy the fix: poison pills now succeed", "wrench"
                ),
                self._button(
                    "Replay DLQ", self.replay_dlq, "send every dead letter back to the queue"
                ),
            ],
        )
        self.backpressure_control = w.Checkbox(
            description="backpressure (bounded queue)", indent=False, layout=w.Layout(width="auto")
        )
        self.backpressure_control.observe(
            self._on_control(lambda on: self.set_backpressure(on)), "value"
        )
        self.capacity_control = self._slider(
            w.IntSlider,
            self.run.capacity,
            1,
            100,
            description="capacity",
            style={"description_width": "60px"},
            layout=w.Layout(width="240px"),
        )
        self.capacity_control.observe(
            self._on_control(lambda c: self.set_backpressure(self.run.state()["backpressure"], c)),
            "value",
        )
        self.view = w.VBox(
            [
                w.HBox([self.depth_figure, self.throughput_figure]),
                self.legend,
                w.HBox(cards, layout=w.Layout(flex_flow="row wrap")),
                self.summary_label,
                time_row,
                failure_row,
                _row(
                    "Broker",
                    [self.backpressure_control, self.capacity_control, self.max_receives_control],
                ),
            ]
        )

    def _toggle(self, name: str) -> None:
        if self.run.consumers[name].alive:
            self.kill_consumer(name)
        else:
            self.revive_consumer(name)

    def _drain_button(self) -> None:
        # the state line says why it cannot drain (see drain)
        with contextlib.suppress(RuntimeError):
            self.drain()

    def _window(self) -> float:
        """Seconds the two rate lines are averaged over: THROUGHPUT_WINDOW, or the spacing of
        the series' points once a long run has merged them."""
        return max(THROUGHPUT_WINDOW, self.run.resolution)

    def _rates(self) -> tuple[list[float], list[float]]:
        series, window = self.run.series, self._window()
        return (
            _windowed_rate(series["time"], series["processed"], window),
            _windowed_rate(series["time"], series["sent_total"], window),
        )

    def _draw_legend(self) -> None:
        window = self._window()
        if window == self._legend_window:
            return
        self._legend_window = window
        self.legend.value = (
            '<span style="font-size:90%">'
            f'Left: <span style="color:{DEPTH_COLOUR}">&#9473;&#9473;</span> queue depth '
            "(waiting or in flight) &nbsp;"
            f'<span style="color:{DLQ_COLOUR}">&#9477;&#9477;</span> dead letter queue. '
            f'&nbsp; Right: <span style="color:{THROUGHPUT_COLOUR}">&#9473;&#9473;</span> '
            "processed &nbsp;"
            f'<span style="color:{PRODUCER_COLOUR}">&#9477;&#9477;</span> sent, poison pills '
            f"included (both averaged over {window:g} s)</span>"
        )

    def _draw(self) -> None:
        series = self.run.series
        times = series["time"]
        # Round ends (1, 2, 5, 10, 20, ...): a scale whose domain changes redraws its axis and
        # every mark on it (the time scale is shared by both charts), so the domains change
        # only when the data passes a round number; one message per mark, with what changed.
        x_max = nice_ceiling(self.run.now + max(1.0, 0.05 * self.run.now))
        with hold_all(self.depth_figure):
            assign(self.x_scale, max=x_max)
            assign(
                self.depth_scale,
                max=nice_ceiling(max(series["depth"] + series["dlq_depth"] + [1]) * 1.15 + 1),
            )
            # the points that draw the lines: repeats dropped, at most MAX_CHART_POINTS
            for mark, key in ((self.depth_mark, "depth"), (self.dlq_mark, "dlq_depth")):
                x, y = bounded(times, series[key])
                assign(mark, x=x, y=y)
        self._draw_legend()
        throughput, producer = self._rates()
        with hold_all(self.throughput_figure):
            assign(self.throughput_mark.scales["x"], max=x_max)
            assign(self.rate_scale, max=nice_ceiling(max(throughput + producer + [1]) * 1.15 + 0.5))
            for mark, values in (
                (self.throughput_mark, throughput),
                (self.producer_mark, producer),
            ):
                x, y = bounded(times, values, linear=True)
                assign(mark, x=x, y=y)
        state = self.run.state()
        for name, consumer in self.run.consumers.items():
            if not consumer.alive:
                doing, colour = "dead", PALETTE["grey"]
            elif consumer.current is not None:
                doing, colour = f"busy: {consumer.current.message.id}", PALETTE["green"]
            else:
                doing, colour = "idle", PALETTE["blue"]
            self.consumer_labels[name].value = (
                f'<div style="line-height:1.3;font-size:92%;white-space:nowrap"><b>{name}</b> '
                f'<span style="color:{colour}">&#9679;</span> {html.escape(doing)}'
                f"<br>{consumer.processed} done, {consumer.failed} failed</div>"
            )
            button = self.consumer_buttons[name]
            button.description = f"Kill {name}" if consumer.alive else f"Revive {name}"
            button.icon = ""  # (an icon would push "Revive C" out of its card)
        letters = [d["message_id"] for d in self.run.dlq.inspect()]
        shown = ", ".join(letters[:4]) + (", ..." if len(letters) > 4 else "")
        held = f"{len(letters)} message{'' if len(letters) == 1 else 's'}" + (
            f": {html.escape(shown)}" if letters else ""
        )
        if state["dlq"]:
            first = f"<b>DLQ</b> on: {held}"
        else:
            # detached, it still holds what it took before: the red line shows those
            first = "<b>DLQ</b> off (retry forever)" + (f"; keeps {held}" if letters else "")
        handler = "bug fixed" if state["bug_fixed"] else "bug present"
        self.dlq_label.value = (
            f'<div style="line-height:1.3;font-size:92%">{first}<br>handler: {handler}</div>'
        )
        self._sync(self.rate_control, state["rate"])
        self._sync(self.dlq_control, state["dlq"])
        self._sync(self.max_receives_control, self.run.queue.max_receives)
        self._sync(self.backpressure_control, state["backpressure"])
        self._sync(self.capacity_control, state["capacity"])
