"""Chapter 6's view: a poison pill in a stream of good messages, a redrive policy and its DLQ."""

from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..scenarios.dead_letter import DeadLetterRun, default_run
from ._base import (
    PALETTE,
    SimulationView,
    assign,
    folding_toggle,
    held,
    nice_ceiling,
    step_points,
)

#: How many messages the attempts chart shows at most (every poison pill, then the newest).
MAX_BARS = 24
FAILED = PALETTE["vermillion"]
SUCCEEDED = PALETTE["blue"]
WAITING = PALETTE["sky"]
DLQ_COLOUR = PALETTE["vermillion"]
PROCESSED = PALETTE["green"]
#: How many dead letters the contents table lists (the newest); the heading gives the total.
MAX_DLQ_ROWS = 3
#: The contents table's cells: padded and ruled, so the columns never run together.
_CELL = "padding:1px 12px 1px 0;border-bottom:1px solid #ccc;text-align:left;vertical-align:top"
_NUMBER = _CELL.replace("text-align:left", "text-align:right")


def _int_ticks(top: float, most: int = 6) -> list[int]:
    """Whole-number tick positions from 0 to ``top``, at most ``most`` of them."""
    magnitude = 1
    while True:
        for m in (1, 2, 5):
            if top / (m * magnitude) <= most - 1:
                return list(range(0, int(top) + 1, m * magnitude))
        magnitude *= 10


def _label_ticks(ids: list[str], keep: set[str], most: int = 6) -> list[str]:
    """The ids to label on the attempts chart: every one in ``keep`` (the poison pills), then
    evenly spaced others, no two labels next to each other."""
    if len(ids) <= most:
        return ids
    chosen = {i for i, m in enumerate(ids) if m in keep}
    spacing = max(2, len(ids) // most)
    for i in range(len(ids) - 1, -1, -spacing):  # the newest first
        if not any(abs(i - j) < 2 for j in chosen):
            chosen.add(i)
    return [ids[i] for i in sorted(chosen)]


def _error_text(entry: dict[str, Any]) -> str:
    """The error a consumer wrote into a dead letter, and who wrote it; the broker knows none."""
    if entry["last_error"] is None:
        return "none: no consumer wrote one"
    writer = entry["attributes"].get("error_by")
    return f"{entry['last_error']} ({writer})" if writer else str(entry["last_error"])


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


class DeadLetters(SimulationView):
    """The queue and its DLQ over time, the receives of each message, and the DLQ's contents.

    Every control is also a method: :meth:`start`, :meth:`stop`, :meth:`inject_poison`,
    :meth:`set_max_receives`, :meth:`set_dlq`, :meth:`set_alert_threshold`, :meth:`fix_bug`,
    :meth:`replay`, :meth:`purge`, :meth:`advance`, and :meth:`start_over` (a fresh run, for
    instance on a FIFO queue). Each calls the same method of the
    :class:`~mqlib.scenarios.dead_letter.DeadLetterRun` it draws. Pass ``run`` to view a run you
    scripted; the default is :func:`~mqlib.scenarios.dead_letter.default_run`.
    """

    def __init__(self, run: DeadLetterRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, DeadLetterRun, default_run)
        self._build()
        self.refresh()

    # -- scriptable actions (each button calls one of these) ------------------------------------
    def start(self, rate: float = 2.0) -> None:
        """The producer sends ``rate`` good messages per second."""
        self.run.start(rate)
        self._tell(f"(The producer now sends {rate:g} good messages per second.)")
        self.refresh()

    def stop(self) -> None:
        """The producer stops sending."""
        self.run.stop()
        self._tell("(The producer has stopped: no new messages until Start.)")
        self.refresh()

    def inject_poison(self) -> str:
        """Send one poison pill; returns its id."""
        message_id = self.run.inject_poison()
        self.refresh()
        return message_id

    def set_max_receives(self, max_receives: int) -> None:
        """Receives before a message is moved to the DLQ."""
        self.run.set_max_receives(max_receives)  # validates
        self._tell(f"(Max receives is now {max_receives}, from each message's next receive.)")
        self.refresh()

    def set_dlq(self, enabled: bool) -> None:
        """Attach (``True``) or detach (``False``) the dead letter queue."""
        self.run.set_dlq(enabled)
        self._tell(
            "(DLQ attached: from its next receive, a message past max receives moves there.)"
            if enabled
            else "(DLQ detached: a failing message is now retried forever.)"
        )
        self.refresh()

    def set_alert_threshold(self, threshold: int | None) -> None:
        """Alert when the DLQ holds more than ``threshold`` messages (``None``: no alerts)."""
        self.run.set_alert_threshold(threshold)
        self.refresh()

    def fix_bug(self) -> None:
        """Deploy the fixed handler: poison pills are processed from now on."""
        self.run.fix_bug()
        self._tell("(The fixed handler is deployed: poison pills from now on succeed.)")
        self.refresh()

    def replay(self) -> list[str]:
        """Send every dead letter back to the queue; returns their ids."""
        ids = self.run.replay()
        if not ids:
            self._tell("(The DLQ is empty: nothing to replay.)")
        self.refresh()
        return ids

    def purge(self) -> int:
        """Delete every dead letter for good; returns how many."""
        count = self.run.purge()
        self._tell(
            f"(Deleted {_messages(count)} for good.)" if count else "(The DLQ is already empty.)"
        )
        self.refresh()
        return count

    def advance(self, seconds: float = 1.0) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.run.advance(seconds)
        self.refresh()

    def start_over(self, *, ordered: bool | None = None) -> None:
        """A fresh run at t=0 with the producer stopped, the bug back in the handler and the
        current settings (consumers, timings, max receives, DLQ, alert threshold); ``ordered``
        switches between a standard and a FIFO queue."""
        old = self.run
        queue = old.queue
        consumer = next(iter(old.consumers.values()))
        self.run = DeadLetterRun(
            rate=0,
            consumers=len(old.consumers),
            processing_time=consumer.processing_time,
            visibility_timeout=queue.visibility_timeout,
            max_receives=queue.max_receives,
            dlq=queue.dead_letter_queue is not None,
            ordered=queue.ordered if ordered is None else ordered,  # validated by the run
            alert_threshold=old.dlq.alert_threshold,
            sample_every=old.sample_every,
        )
        kind = "FIFO" if self.run.queue.ordered else "standard"
        self._tell(f"(A fresh run on a {kind} queue: t=0, producer stopped, the bug is back.)")
        self.refresh()

    # -- what the charts draw --------------------------------------------------------------------
    #: The rows of the redraw under way: the chart and its sentence read them once per redraw.
    _rows: list[dict[str, Any]] | None = None

    def refresh(self) -> None:
        try:
            self._rows = self.attempt_rows()
            super().refresh()
        finally:
            self._rows = None

    def attempt_rows(self) -> list[dict[str, Any]]:
        """The messages the attempts chart shows, in the order they were first sent: every one
        that ever failed, then the newest others, at most :data:`MAX_BARS`. Each row counts the
        failed and the successful processings of one message over all its trips through the
        queue (a replayed message keeps its id), as the scenario's ``attempt_history()`` gives
        them."""
        if self._rows is not None:
            return self._rows
        order, failed, succeeded = self.run.attempt_counts()
        # the newest MAX_BARS that failed, then the newest others up to MAX_BARS in all: read
        # from the end, so a long run's thousands of trouble-free messages are not all visited
        troubled = sorted(failed, key=order.__getitem__)[-MAX_BARS:]
        shown = set(troubled)
        for message in reversed(order):
            if len(shown) >= MAX_BARS:
                break
            if message not in failed:
                shown.add(message)
        return [
            {"message": m, "failed": failed.get(m, 0), "succeeded": succeeded.get(m, 0)}
            for m in sorted(shown, key=order.__getitem__)
        ]

    def describe_charts(self) -> list[str]:
        """The two charts in words: the queue over time, and the attempts per message."""
        series, run = self.run.series, self.run
        rows = self.attempt_rows()
        troubled = [
            f"{r['message']} failed {r['failed']} time{'' if r['failed'] == 1 else 's'}"
            + (" then was processed" if r["succeeded"] else "")
            for r in rows
            if r["failed"]
        ]
        others = "; every other one processed at its first attempt or not tried yet"
        return [
            f"Line chart of the queue over {run.now:g} s of simulated time: "
            f"{series['depth'][-1]} waiting and {series['dlq_depth'][-1]} in the DLQ now "
            f"(at most {max(series['dlq_depth'], default=0)} in the DLQ), "
            f"{series['processed'][-1]} processed in total.",
            f"Bar chart of attempts per message, {len(rows)} messages shown"
            + (f": {'; '.join(troubled)}{others}." if troubled else ": none has failed."),
        ]

    # -- internals -----------------------------------------------------------------------------
    def _build(self) -> None:
        self._syncing = False
        # Left: the queue and the DLQ over time, with the total processed on a second axis.
        self.x_scale = x = bq.LinearScale(min=0.0)
        self.y_scale = y = bq.LinearScale(min=0.0)
        self.total_scale = yt = bq.LinearScale(min=0.0)
        self.waiting_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": y},
            colors=[WAITING],
            stroke_width=2.5,
            interpolation="step-after",
        )
        self.dlq_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": y},
            colors=[DLQ_COLOUR],
            stroke_width=3,
            interpolation="step-after",
        )
        self.processed_mark = bq.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": x, "y": yt},
            colors=[PROCESSED],
            stroke_width=2,
            line_style="dashed",
        )
        self.time_figure = bq.Figure(
            marks=[self.processed_mark, self.waiting_mark, self.dlq_mark],
            title="Queue and DLQ over time",
            axes=[
                bq.Axis(scale=x, label="simulated time (s)", tick_format="~g"),
                bq.Axis(scale=y, side="left", label="messages waiting / in DLQ", tick_format="d"),
                bq.Axis(
                    scale=yt,
                    side="right",
                    label="processed in total",
                    tick_format="d",
                    label_color=PROCESSED,
                    color=PROCESSED,
                ),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 60, "right": 60},
            layout=w.Layout(width="55%", height="225px"),
        )
        # Right: receives per message, failed ones stacked under the successful one.
        ax = bq.OrdinalScale()
        self.attempt_scale = ay = bq.LinearScale(min=0.0, max=4.0)
        self.attempts_mark = bq.Bars(
            x=[" "],
            y=[[0], [0]],
            scales={"x": ax, "y": ay},
            type="stacked",
            colors=[FAILED, SUCCEEDED],
            padding=0.2,
        )
        # The limit line spans the chart on an x scale of its own (0 to 1, never changed): on
        # the ordinal scale its ends would change the message axis's domain a second time on
        # every click, one more redraw of that axis and of every bar.
        self.limit_mark = bq.Lines(
            x=[0.0, 1.0],
            y=[3.0, 3.0],
            scales={"x": bq.LinearScale(min=0.0, max=1.0), "y": ay},
            colors=[PALETTE["black"]],
            stroke_width=1.5,
            line_style="dashed",
        )
        self.attempts_figure = bq.Figure(
            marks=[self.attempts_mark, self.limit_mark],
            title="Attempts per message",
            axes=[
                bq.Axis(scale=ax, label="message (send order)"),
                bq.Axis(scale=ay, side="left", label="attempts", tick_format="d"),
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 50, "right": 15},
            layout=w.Layout(width="43%", height="225px"),
        )
        legend = w.HTML(
            "<small>Left: "
            f'<span style="color:{WAITING}">&#9473;&#9473;</span> waiting &nbsp; '
            f'<span style="color:{DLQ_COLOUR}">&#9473;&#9473;</span> in the DLQ &nbsp; '
            f'<span style="color:{PROCESSED}">&#9477;&#9477;</span> processed in total '
            "(right axis; flat: throughput zero). &nbsp; Right: "
            f'<span style="color:{FAILED}">&#9632;</span> failed attempt &nbsp; '
            f'<span style="color:{SUCCEEDED}">&#9632;</span> processed &nbsp; '
            "<b>- -</b> max receives</small>"
        )
        self.alert_label = w.HTML()
        self.dlq_table = w.HTML()

        self.producer_button = self._button("Start", self._toggle_producer, "", "play")
        producer = w.HBox(
            [
                w.HTML("<b>Producer</b>", layout=w.Layout(width="90px")),
                self.producer_button,
                self._button(
                    "Inject poison",
                    self.inject_poison,
                    "send one message the handler always fails on",
                    "flask",
                ),
                self._button("Advance 1 s", lambda: self.advance(1.0), "let one second pass"),
                self._button("Advance 5 s", lambda: self.advance(5.0), "let five seconds pass"),
                self._button("Advance 30 s", lambda: self.advance(30.0), "let 30 seconds pass"),
                self._button(
                    "Start over",
                    self.start_over,
                    "a fresh run at t=0 with these settings (the bug is back)",
                    "rotate-left",
                ),
            ]
        )
        queue = self.run.queue
        self.max_receives_control = self._slider(
            w.IntSlider,
            queue.max_receives,
            1,
            10,
            description="max receives",
            style={"description_width": "95px"},
            layout=w.Layout(width="300px"),
        )
        self.max_receives_control.observe(self._on_control(self.set_max_receives), "value")
        self.dlq_control = w.Checkbox(
            value=queue.dead_letter_queue is not None,
            description="dead letter queue attached",
            indent=False,
            layout=w.Layout(width="220px"),
        )
        self.dlq_control.observe(self._on_control(self.set_dlq), "value")
        self.ordered_control = w.ToggleButtons(
            options=[("Standard", False), ("FIFO (ordered)", True)],
            value=queue.ordered,
            tooltips=[
                "consumers take any visible message (an SQS standard queue)",
                "one message at a time in send order (an SQS FIFO queue with one message "
                "group: every message waits behind the head)",
            ],
            style={"button_width": "120px"},
        )
        self.ordered_control.observe(
            self._on_control(lambda v: self.start_over(ordered=v)), "value"
        )
        threshold = self.run.dlq.alert_threshold
        self.alert_control = self._slider(
            w.IntSlider,
            0 if threshold is None else threshold,
            0,
            10,
            description="alert above",
            style={"description_width": "95px"},
            layout=w.Layout(width="300px"),
        )
        self.alert_control.observe(self._on_control(self._set_threshold_from_controls), "value")
        self.alert_on_control = w.Checkbox(
            value=threshold is not None,
            description="alerting on",
            indent=False,
            layout=w.Layout(width="120px"),
        )
        self.alert_on_control.observe(
            self._on_control(lambda _v: self._set_threshold_from_controls()), "value"
        )
        self.fix_button = self._button(
            "Deploy the fix", self.fix_bug, "the handler stops failing on poison pills", "wrench"
        )
        dlq_row = w.HBox(
            [
                w.HTML("<b>DLQ</b>", layout=w.Layout(width="90px")),
                self.fix_button,
                self._button(
                    "Replay", self.replay, "send every dead letter back to the queue", "redo"
                ),
                self._button("Purge", self.purge, "delete every dead letter", "trash"),
            ]
        )
        # The settings a learner changes less often, collapsed so that the charts, the DLQ's
        # contents and the buttons fit on one screen together.
        settings = w.VBox(
            [
                w.HBox(
                    [
                        w.HTML("<b>Queue</b>", layout=w.Layout(width="90px")),
                        self.ordered_control,
                    ]
                ),
                w.HBox(
                    [
                        w.HTML("<b>Redrive</b>", layout=w.Layout(width="90px")),
                        self.dlq_control,
                        self.max_receives_control,
                    ]
                ),
                w.HBox(
                    [
                        w.HTML("<b>Alert</b>", layout=w.Layout(width="90px")),
                        self.alert_on_control,
                        self.alert_control,
                    ]
                ),
                w.HTML(
                    "<small>Switching between Standard and FIFO starts a fresh run (stopped, at "
                    "t=0, bug present). Changing max receives or the DLQ applies at each "
                    "message's next receive: a message whose receive count would exceed max "
                    "receives is moved to the DLQ instead of being handed out.</small>"
                ),
            ]
        )
        self.settings = settings
        self.settings_toggle = folding_toggle(
            settings, "Settings: queue type, redrive, alert", "show or hide the less used settings"
        )
        self.view = w.VBox(
            [
                w.HBox([self.time_figure, self.attempts_figure]),
                legend,
                self.summary_label,
                self.alert_label,
                self.dlq_table,
                producer,
                dlq_row,
                self.settings_toggle,
                self.settings,
            ]
        )

    def _toggle_producer(self) -> None:
        if self.run.producer.rate > 0:
            self.stop()
        else:
            self.start()

    def _set_threshold_from_controls(self, _value: Any = None) -> None:
        on = self.alert_on_control.value
        self.set_alert_threshold(self.alert_control.value if on else None)

    def _draw(self) -> None:
        series, run = self.run.series, self.run
        with held(self.time_figure):
            # Room to the right of the newest sample and above the highest value, rounded up to
            # 1, 2, 5, 10, 20, ...: a scale whose domain changes redraws its axis and every mark
            # on it, so the domains change only when the data passes a round number.
            x_max = nice_ceiling(run.now + max(1.0, 0.05 * run.now))
            y_top = nice_ceiling(max(series["depth"] + series["dlq_depth"] + [1]) * 1.15 + 1)
            total_top = nice_ceiling(max(series["processed"] + [1]) * 1.1 + 1)
            assign(self.x_scale, max=x_max)
            assign(self.y_scale, max=y_top)
            assign(self.total_scale, max=total_top)
            assign(self.time_figure.axes[1], tick_values=_int_ticks(y_top))
            assign(self.time_figure.axes[2], tick_values=_int_ticks(total_top))
            # Only the samples that change the picture (bounded after hours of history).
            times = series["time"]
            for mark, values, linear in (
                (self.waiting_mark, series["depth"], False),
                (self.dlq_mark, series["dlq_depth"], False),
                (self.processed_mark, series["processed"], True),
            ):
                x, y = step_points(times, values, linear=linear)
                assign(mark, x=x, y=y)
        rows = self.attempt_rows()
        ids = [r["message"] for r in rows] or [" "]
        failed = [r["failed"] for r in rows] or [0]
        succeeded = [r["succeeded"] for r in rows] or [0]
        limit = run.queue.max_receives
        top = max([limit + 1, *(f + s + 1 for f, s in zip(failed, succeeded, strict=True))])
        with held(self.attempts_figure):
            # The ordinal scale takes its domain from its marks. (Set here, it reached the page
            # before the bars' new x: for a moment the bars of messages no longer listed had no
            # place, and bqplot drew them at NaN.)
            assign(self.attempt_scale, max=float(top))
            assign(self.attempts_figure.axes[1], tick_values=_int_ticks(top))
            poison = {r["message"] for r in rows if r["failed"]}
            labelled = set(_label_ticks(ids, poison))
            # Bars stand in slots 0-23 and the axis labels a slot with its message (or leaves it
            # blank), so once the chart is full the ordinal domain stays as messages come and
            # go: the axis is relabelled instead of every bar and tick moving.
            assign(
                self.attempts_figure.axes[0],
                tick_labels={slot: m if m in labelled else "" for slot, m in enumerate(ids)},
            )
            assign(self.attempts_mark, x=list(range(len(ids))), y=[failed, succeeded])
            assign(
                self.limit_mark,
                y=[float(limit), float(limit)],
                visible=run.queue.dead_letter_queue is not None,
            )
        # the controls follow the run (a method called from code, or a fresh run)
        queue, dlq = run.queue, run.dlq
        self._sync(self.max_receives_control, queue.max_receives)
        self._sync(self.dlq_control, queue.dead_letter_queue is not None)
        self._sync(self.ordered_control, queue.ordered)
        self._sync(self.alert_on_control, dlq.alert_threshold is not None)
        if dlq.alert_threshold is not None:
            self._sync(self.alert_control, dlq.alert_threshold)
        self.alert_control.disabled = dlq.alert_threshold is None
        running = run.producer.rate > 0
        self.producer_button.description = "Stop" if running else "Start"
        self.producer_button.icon = "stop" if running else "play"
        self.producer_button.tooltip = (
            "stop the producer" if running else "the producer sends 2 good messages per second"
        )
        self.fix_button.disabled = run.handler.bug_fixed
        self.fix_button.description = "Fix deployed" if run.handler.bug_fixed else "Deploy the fix"
        self._draw_alert()
        self._draw_dlq()

    def _draw_alert(self) -> None:
        dlq = self.run.dlq
        if dlq.alert_threshold is None:
            self.alert_label.value = "Alerting is off."
            return
        fired = ", ".join(f"t={a['time']:g} s (depth {a['depth']})" for a in dlq.alerts)
        history = f" Alerts fired: {len(dlq.alerts)}" + (f", at {fired}." if fired else ".")
        if dlq.alerting:
            marker = f'<span style="color:{PALETTE["vermillion"]}">&#9888;</span>'
            self.alert_label.value = (
                f"{marker} <b>ALERT: the DLQ holds {_messages(dlq.depth)}, more than "
                f"{dlq.alert_threshold}.</b>{history}"
            )
        else:
            self.alert_label.value = (
                f"No alert: the DLQ holds {_messages(dlq.depth)}, the threshold is "
                f"{dlq.alert_threshold}."
                f"{history}"
            )

    def _draw_dlq(self) -> None:
        entries = self.run.inspect_dlq()
        if self.run.queue.dead_letter_queue is None:
            head = "<b>Dead letter queue:</b> detached (failed messages are retried forever)"
        else:
            head = f"<b>Dead letter queue</b> <code>{html.escape(self.run.dlq.name)}</code>"
        if not entries:
            self.dlq_table.value = f"{head}: empty."
            return
        shown = entries[-MAX_DLQ_ROWS:]
        cells = "".join(
            "<tr>"
            f"<td style='{_CELL}'>{html.escape(e['message_id'])}</td>"
            f"<td style='{_NUMBER}'>{e['receive_count']}</td>"
            f"<td style='{_CELL}'><code>{html.escape(_error_text(e))}</code></td>"
            f"<td style='{_NUMBER}'>{e['dead_lettered_at']:g}</td>"
            f"<td style='{_CELL}'>{html.escape(e['source'])}</td>"
            "</tr>"
            for e in shown
        )
        newest = f" (the newest {len(shown)} below)" if len(entries) > len(shown) else ""
        header = "".join(
            f"<th style='{_NUMBER if numeric else _CELL};border-bottom:2px solid #767676'>"
            f"{name}</th>"
            for name, numeric in (
                ("message", False),
                ("receives", True),
                ("error (written by)", False),
                ("moved at (s)", True),
                ("from queue", False),
            )
        )
        self.dlq_table.value = (
            f"{head}, {_messages(len(entries))}{newest}:"
            "<table class='mq-dlq-table' style='border-collapse:collapse;margin:2px 0 4px 0;"
            f"line-height:1.35'><thead><tr>{header}</tr></thead><tbody>{cells}</tbody></table>"
        )
