"""Chapter 7's log view: each partition's records by offset, and where every consumer group is.

:class:`KafkaLog` draws what :class:`~mqlib.scenarios.kafka_log.KafkaLogRun` reports: the stored
records of each partition as boxes at their offsets (coloured by key), the offsets retention has
already deleted, the log end offset where the next record will go, and a marker per consumer group
at its committed offset (the next record it will read). Every button calls one of its methods.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..scenarios.kafka_log import KafkaLogRun, default_run
from ._base import PALETTE, SimulationView, assign, held

#: Record colours by key, in the order keys first appear (light colours: the offset is on top).
KEY_COLOURS = [PALETTE["sky"], PALETTE["green"], PALETTE["yellow"], PALETTE["purple"]]
NO_KEY_COLOUR = "#DDDDDD"
DELETED_COLOUR = "#EEEEEE"
#: Group marker colours, in the order groups appear.
GROUP_COLOURS = [PALETTE["blue"], PALETTE["vermillion"], PALETTE["black"], PALETTE["orange"]]
#: The chart shows this many offsets per partition: the latest ones.
WINDOW = 16
#: The window moves on in steps of this many offsets (once a log is longer than the window, the
#: chart shows its latest 9 to 16 offsets).
WINDOW_STEP = 8
KEYS = ("order-42", "order-43", "order-44", "order-45", "(no key)")
EVENTS = ("created", "paid", "shipped", "delivered")
NEW_GROUPS = ("audit", "search", "fraud-check", "warehouse", "email")


class KafkaLog(SimulationView):
    """A topic's partitions as logs, read by consumer groups at their own offsets.

    The buttons call the same methods a cell can: :meth:`produce`, :meth:`consume`, :meth:`seek`,
    :meth:`seek_to_beginning`, :meth:`add_group`, :meth:`add_member`, :meth:`remove_member`,
    :meth:`advance` and, for the slider beside the chart, :meth:`set_retention`. Pass ``run`` to
    view a run you scripted; the default is :func:`~mqlib.scenarios.kafka_log.default_run` (3
    partitions, 30 s retention, groups billing
    and analytics, nine order events, 34 s later). A seek to an offset that retention deleted is
    accepted, as in Kafka; the next poll resets it by the group's ``auto.offset.reset``.
    """

    def __init__(self, run: KafkaLogRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, KafkaLogRun, default_run)
        self._key_colours: dict[str, str] = {}
        self._note = ""  # what the last action did that the chart cannot show (offset resets)
        self._group_colours: dict[str, str] = {}
        self._build()
        self.refresh()

    # -- scriptable actions (each button calls one of these) ------------------------------------
    def produce(self, key: str | None = None, value: Any = None) -> dict[str, Any]:
        """Append one record (a key picks its partition); returns it as plain data."""
        record = self.run.produce(key, value)
        self.refresh()
        return record

    def consume(self, group: str, max_records: int | None = None) -> list[dict[str, Any]]:
        """Every live member of ``group`` polls (at most ``max_records`` per partition) and
        commits; returns the records read. A committed offset that no longer exists is reset
        first by the group's ``auto_offset_reset``, and the note under the controls says so."""
        seen = len(self.run.sim.trace.of_kind("offset_reset"))
        records = self.run.consume(group, max_records=max_records)
        resets = self.run.sim.trace.of_kind("offset_reset")[seen:]
        self._tell(
            f"{group} read {len(records)} record{'' if len(records) == 1 else 's'} and committed."
            if records
            else f"{group} had nothing new to read (lag 0 in every partition it owns)."
        )
        self._note = "<br>".join(
            f"{html.escape(e.data['group'])}: offset {e.data['offset']} of partition "
            f"{e.data['partition']} no longer exists, so auto.offset.reset moved it to "
            f"{e.data['reset_to']} before reading."
            for e in resets
        )
        self.refresh()
        return records

    def seek(self, group: str, partition: int, offset: int) -> None:
        """Move ``group``'s committed offset of ``partition`` to ``offset`` (rewind or skip)."""
        self.run.seek(group, partition, offset)
        bounds = self.run.offsets()[partition]
        if offset < bounds["log_start_offset"]:
            then = (
                f" Retention has deleted it, so the next poll resets by auto.offset.reset="
                f"{self.run.log.group(group).auto_offset_reset}."
            )
        elif offset > bounds["log_end_offset"]:
            then = " It is beyond the log end, so the next poll resets by auto.offset.reset."
        else:
            then = ""
        self._tell(f"{group} will read partition {partition} from offset {offset} next.{then}")
        self.refresh()

    def seek_to_beginning(self, group: str, partition: int | None = None) -> None:
        """Rewind ``group`` to the oldest stored record (of ``partition``, or of all)."""
        self.run.seek_to_beginning(group, partition)
        starts = {p: o["log_start_offset"] for p, o in self.run.offsets().items()}
        self._tell(f"{group} rewound to the oldest stored records: {_offsets_text(starts)}.")
        self.refresh()

    def add_group(
        self, name: str, members: int = 1, auto_offset_reset: str = "latest"
    ) -> list[str]:
        """A new consumer group; returns its members. ``auto_offset_reset`` says where it starts:
        ``"latest"`` (Kafka's default: the log end) or ``"earliest"`` (the oldest stored record).
        """
        added = self.run.add_group(name, members, auto_offset_reset=auto_offset_reset)
        where = "the log end" if auto_offset_reset == "latest" else "the oldest stored record"
        self._tell(
            f"{name} starts at {where} ({auto_offset_reset}): "
            f"{_offsets_text(self.run.committed()[name])}."
        )
        self.refresh()
        return added

    def add_member(self, group: str) -> str:
        """One more consumer joins ``group`` (the partitions are shared out again)."""
        member = self.run.add_member(group)
        self._tell(f"{member} joined {group}; the partitions were shared out again.")
        self.refresh()
        return member

    def remove_member(self, group: str) -> str:
        """The newest consumer of ``group`` leaves (the partitions are shared out again)."""
        member = self.run.remove_member(group)
        self._tell(f"{member} left {group}; the partitions were shared out again.")
        self.refresh()
        return member

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass: retention deletes records that are too old."""
        seen = len(self.run.sim.trace.of_kind("retention_delete"))
        self.run.advance(seconds)
        deleted = sum(
            e.data["last_offset"] - e.data["first_offset"] + 1
            for e in self.run.sim.trace.of_kind("retention_delete")[seen:]
        )
        limit = self.run.log.partitions[0].retention_seconds
        note = f"{seconds:g} s passed"
        if limit is not None:
            note += f"; retention deleted {deleted} record{'' if deleted == 1 else 's'}"
            edge = sum(
                abs(self.run.now - r["timestamp"] - limit) < 1e-9
                for records in self.run.logs().values()
                for r in records
            )
            if edge:
                note += (
                    f"; {edge} exactly {limit:g} s old stay{'s' if edge == 1 else ''}: a record "
                    f"goes once it is older than retention.ms"
                )
        self._tell(note + ".")
        self.refresh()

    def set_retention(self, seconds: float | None) -> None:
        """Change the topic's ``retention.ms`` (``seconds``); it applies from the next check."""
        self.run.set_retention(seconds)
        if seconds is not None:
            self._sync(self.retention_control, int(seconds))
            self._tell(
                f"retention.ms is now {seconds:g} s: records older than that go at the next "
                "check (here every simulated second; Kafka checks every "
                "log.retention.check.interval.ms, 5 minutes by default). Advance to see it."
            )
        else:
            self._tell("Retention off: records are kept forever.")
        self.refresh()

    # -- chart data ----------------------------------------------------------------------------
    def window(self) -> tuple[int, int]:
        """The offsets the chart shows: ``[first, last]``, :data:`WINDOW` of them, the log end
        among them (once the log is longer than the window, 0 to 7 offsets before ``last``).
        The window moves on in steps of :data:`WINDOW_STEP` offsets, so most records
        produced leave the axis as it is (a window that moved with every record would redraw
        every record, label and tick on each click)."""
        end = max(o["log_end_offset"] for o in self.run.offsets().values())
        first = max(0, -(-(end - WINDOW + 1) // WINDOW_STEP) * WINDOW_STEP)  # a ceiling
        return first, first + WINDOW - 1

    def describe_charts(self) -> list[str]:
        """The chart in one sentence: each partition's stored offsets and log end, and where
        each group reads next."""
        offsets, committed = self.run.offsets(), self.run.committed()
        parts = []
        for p, o in offsets.items():
            start, end = o["log_start_offset"], o["log_end_offset"]
            stored = f"offsets {start} to {end - 1} stored" if end > start else "nothing stored"
            groups = ", ".join(f"{g} at {c[p]}" for g, c in committed.items() if c[p] is not None)
            parts.append(
                f"partition {p}: {stored}, log end {end}" + (f"; {groups}" if groups else "")
            )
        return [f"Rows of records by offset at t={self.run.now:g} s. " + ". ".join(parts) + "."]

    # -- internals -----------------------------------------------------------------------------
    def _key_colour(self, key: str | None) -> str:
        if key is None:
            return NO_KEY_COLOUR
        if key not in self._key_colours:
            self._key_colours[key] = KEY_COLOURS[len(self._key_colours) % len(KEY_COLOURS)]
        return self._key_colours[key]

    def _group_colour(self, group: str) -> str:
        if group not in self._group_colours:
            n = len(self._group_colours)
            self._group_colours[group] = GROUP_COLOURS[n % len(GROUP_COLOURS)]
        return self._group_colours[group]

    def _act(self, action: Callable[[], Any]) -> Callable[[], None]:
        """A button handler: run ``action`` and show a refused action's reason under the
        controls instead of losing it in the browser's log."""

        def handler() -> None:
            try:
                self._note = ""
                action()
                self.message.value = self._note
            except (ValueError, KeyError) as error:
                text = str(error)
                self.message.value = (
                    f'<span style="color:{PALETTE["vermillion"]}">Refused: '
                    f"{html.escape(str(text))}</span>"
                )

        return handler

    def _build(self) -> None:
        partitions = len(self.run.offsets())
        self.x_scale = bq.LinearScale(min=-0.6, max=8.6)
        self.y_scale = bq.LinearScale(min=-0.5, max=partitions - 0.05, reverse=True)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.deleted_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="square", default_size=700,
            colors=[DELETED_COLOUR], stroke="#BBBBBB",
        )  # fmt: skip
        self.record_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="square", default_size=700, stroke="white"
        )
        self.next_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="square", default_size=700, fill=False,
            colors=[PALETTE["grey"]], stroke_width=2,
        )  # fmt: skip
        self.offset_labels = bq.Label(
            x=[], y=[], text=[], scales=scales, align="middle", default_size=12, y_offset=5,
            font_weight="bold",
        )  # fmt: skip
        self.group_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="triangle-up", default_size=90, stroke="white"
        )
        self.group_labels = bq.Label(
            x=[], y=[], text=[], scales=scales, align="start", default_size=11, x_offset=7,
            y_offset=4,
        )  # fmt: skip
        self.x_axis = bq.Axis(scale=self.x_scale, label="offset", tick_format="d")
        self.y_axis = bq.Axis(
            scale=self.y_scale,
            side="left",
            tick_values=list(range(partitions)),
            tick_labels={str(p): f"partition {p}" for p in range(partitions)},
            grid_lines="none",
        )
        self.figure = bq.Figure(
            marks=[
                self.deleted_mark,
                self.record_mark,
                self.next_mark,
                self.offset_labels,
                self.group_mark,
                self.group_labels,
            ],
            axes=[self.x_axis, self.y_axis],
            title="Each partition's log, and where each group reads next",
            fig_margin={"top": 34, "bottom": 40, "left": 80, "right": 50},
            layout=w.Layout(width="58%", height=f"{90 + 70 * partitions}px"),
        )
        self.legend = w.HTML()
        self.groups_html = w.HTML()
        self.message = w.HTML()

        wide = {"description_width": "60px"}
        narrow = {"description_width": "38px"}
        self.key_control = w.Dropdown(
            options=KEYS, value="order-42", description="key", style=narrow,
            layout=w.Layout(width="155px"),
        )  # fmt: skip
        self.value_control = w.Dropdown(
            options=EVENTS, value="delivered", description="value", style=narrow,
            layout=w.Layout(width="150px"),
        )  # fmt: skip
        self.group_control = w.Dropdown(
            description="group", style=wide, layout=w.Layout(width="190px")
        )
        self.partition_control = w.Dropdown(
            options=list(range(partitions)), description="partition", style=wide,
            layout=w.Layout(width="130px"),
        )  # fmt: skip
        self.offset_control = w.IntText(
            value=0, description="offset", style={"description_width": "45px"},
            layout=w.Layout(width="120px"),
        )  # fmt: skip
        self.new_group_control = w.Dropdown(
            description="new group", style={"description_width": "75px"},
            layout=w.Layout(width="220px"),
        )  # fmt: skip
        self.reset_control = w.Dropdown(
            options=[("latest (Kafka's default)", "latest"), ("earliest", "earliest")],
            value="latest", description="starts at", style={"description_width": "60px"},
            layout=w.Layout(width="250px"),
        )  # fmt: skip
        self.buttons = {
            b.description: b
            for b in (
                self._button("Produce", self._act(self._produce_selected), "append one record"),
                self._button(
                    "Poll all",
                    self._act(lambda: self.consume(self.group_control.value)),
                    "every member of the group reads everything it has not read yet",
                ),
                self._button(
                    "Poll 1",
                    self._act(lambda: self.consume(self.group_control.value, 1)),
                    "every member reads one record from each partition it owns",
                ),
                self._button(
                    "+ member",
                    self._act(lambda: self.add_member(self.group_control.value)),
                    "one more consumer joins the group",
                ),
                self._button(
                    "− member",
                    self._act(lambda: self.remove_member(self.group_control.value)),
                    "the group's newest consumer leaves",
                ),
                self._button(
                    "Seek",
                    self._act(
                        lambda: self.seek(
                            self.group_control.value,
                            self.partition_control.value,
                            self.offset_control.value,
                        )
                    ),
                    "move the group's position in this partition to this offset",
                ),
                self._button(
                    "Rewind to start",
                    self._act(lambda: self.seek_to_beginning(self.group_control.value)),
                    "move the group back to the oldest stored record of every partition",
                ),
                self._button(
                    "Add group",
                    self._act(
                        lambda: self.add_group(
                            self.new_group_control.value, 1, self.reset_control.value
                        )
                    ),
                    "a new group with one member; auto.offset.reset says where it starts",
                ),
                self._button("Advance 5 s", self._act(lambda: self.advance(5.0)), "let 5 s pass"),
                self._button(
                    "Advance 30 s", self._act(lambda: self.advance(30.0)), "let 30 s pass"
                ),
            )
        }
        b = self.buttons

        def row(title: str, *children: w.Widget) -> w.HBox:
            return w.HBox([w.HTML(f"<b>{title}</b>", layout=w.Layout(width="90px")), *children])

        limit = self.run.retention_seconds
        self.retention_control = self._slider(
            w.IntSlider, int(limit or 30), 5, 120, step=5, description="retention (s)",
            continuous_update=False, style={"description_width": "90px"},
            layout=w.Layout(width="330px", display="flex" if limit is not None else "none"),
        )  # fmt: skip
        self.retention_control.observe(
            self._on_control(lambda value: self._act(lambda: self.set_retention(value))()),
            "value",
        )
        side = w.VBox(
            [self.groups_html, self.retention_control],
            layout=w.Layout(width="40%", margin="34px 0 0 10px"),
        )
        self.view = w.VBox(
            [
                w.HBox([self.figure, side]),
                self.legend,
                self.summary_label,
                row(
                    "Producer:",
                    self.key_control,
                    self.value_control,
                    b["Produce"],
                    w.HTML("<b>Time:</b>", layout=w.Layout(width="50px", margin="0 0 0 16px")),
                    b["Advance 5 s"],
                    b["Advance 30 s"],
                ),
                row(
                    "Group:",
                    self.group_control,
                    b["Poll all"],
                    b["Poll 1"],
                    b["+ member"],
                    b["− member"],
                ),
                row(
                    "Position:",
                    self.partition_control,
                    self.offset_control,
                    b["Seek"],
                    b["Rewind to start"],
                ),
                row("New group:", self.new_group_control, self.reset_control, b["Add group"]),
                self.message,
            ]
        )

    def _produce_selected(self) -> None:
        key = self.key_control.value
        self.produce(None if key == "(no key)" else key, self.value_control.value)

    def _draw(self) -> None:
        run = self.run
        offsets = run.offsets()
        first, last = self.window()
        in_view = range(first, last + 1)
        rx, ry, colours, lx, ly, text = [], [], [], [], [], []
        for p, records in run.logs().items():
            for r in records:
                if r["offset"] in in_view:
                    rx.append(r["offset"])
                    ry.append(p)
                    colours.append(self._key_colour(r["key"]))
        dx, dy = [], []
        for p, o in offsets.items():
            for offset in range(max(first, 0), min(o["log_start_offset"], last + 1)):
                dx.append(offset)
                dy.append(p)
        for x, y in zip(dx + rx, dy + ry, strict=True):
            lx.append(x)
            ly.append(y)
            text.append(str(x))
        nx = [o["log_end_offset"] for o in offsets.values() if o["log_end_offset"] in in_view]
        ny = [p for p, o in offsets.items() if o["log_end_offset"] in in_view]
        gx, gy, gcolours, gtext = [], [], [], []
        committed = run.committed()
        for gi, (group, positions) in enumerate(committed.items()):
            colour = self._group_colour(group)
            for p, offset in positions.items():
                if offset is not None and offset in in_view:
                    gx.append(offset)
                    gy.append(p + 0.3 + 0.16 * (gi % 3))
                    gcolours.append(colour)
                    gtext.append(group)
        # One message per mark, axis and scale (held), with the traits whose value changed.
        with held(self.figure):
            assign(self.x_scale, min=first - 0.6, max=last + 1.6)
            assign(self.x_axis, tick_values=list(in_view))
            assign(self.deleted_mark, x=dx, y=dy)
            assign(self.record_mark, x=rx, y=ry, colors=colours or [NO_KEY_COLOUR])
            assign(self.next_mark, x=nx, y=ny)
            assign(
                self.offset_labels,
                x=lx,
                y=ly,
                text=text,
                colors=[PALETTE["black"]] * len(text) or [PALETTE["black"]],
            )
            assign(self.group_mark, x=gx, y=gy, colors=gcolours or [PALETTE["blue"]])
            assign(self.group_labels, x=gx, y=gy, text=gtext, colors=gcolours or [PALETTE["blue"]])
        self._draw_text(first)
        self._draw_controls()

    def _draw_text(self, first: int) -> None:
        run = self.run
        keys = " &nbsp; ".join(
            f'<span style="color:{c}">&#9632;</span> {html.escape(k)}'
            for k, c in self._key_colours.items()
        )
        earlier = f" Offsets before {first} are off the chart." if first else ""
        self.legend.value = (
            f"Records by key: {keys} &nbsp; "
            f'<span style="color:{NO_KEY_COLOUR}">&#9632;</span> no key &nbsp; '
            f'<span style="color:#BBBBBB">&#9633;</span> deleted by retention &nbsp; '
            f'<span style="color:{PALETTE["grey"]}">&#9633;</span> log end offset (the next '
            "append goes there) &nbsp; &#9650; a group's committed offset: the next record it "
            f"reads there.{earlier}"
        )
        lags, assignments, committed = run.lag(), run.assignments(), run.committed()
        lines = []
        for group, members in assignments.items():
            colour = self._group_colour(group)
            owners = "; ".join(
                f"{html.escape(m)} reads "
                + (", ".join(f"p{p}" for p in ps) if ps else "nothing (idle)")
                for m, ps in members.items()
            )
            positions = ", ".join(
                f"p{p} at {committed[group][p]} (lag {lags[group][p]})"
                if committed[group][p] is not None
                else f"p{p}: no committed offset"
                for p in committed[group]
            )
            lines.append(
                f'<span style="color:{colour}">&#9650;</span> <b>{html.escape(group)}</b>: '
                f"{owners or 'no members'}. Next offsets: {positions}; "
                f"total lag {sum(v for v in lags[group].values() if v is not None)}"
            )
        self.groups_html.value = (
            '<div style="line-height:1.35;font-size:13px">' + "<br>".join(lines) + "</div>"
        )

    def _draw_controls(self) -> None:
        groups = list(self.run.committed())
        if list(self.group_control.options) != groups:
            current = self.group_control.value
            self.group_control.options = groups
            self.group_control.value = current if current in groups else (groups or [None])[0]
        free = [n for n in NEW_GROUPS if n not in groups]
        if list(self.new_group_control.options) != free:
            self.new_group_control.options = free
            self.new_group_control.value = free[0] if free else None
        self.buttons["Add group"].disabled = not free
        for label in ("Poll all", "Poll 1", "+ member", "− member", "Seek", "Rewind to start"):
            self.buttons[label].disabled = not groups


def _offsets_text(offsets: dict[int, int | None]) -> str:
    """``{0: 2, 1: 1}`` as ``"p0 at 2, p1 at 1"``."""
    return ", ".join(f"p{p} at {'-' if o is None else o}" for p, o in offsets.items())
