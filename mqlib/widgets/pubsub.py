"""Chapter 2's view: a topic, its consumer groups, and who received each message."""

from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as w

from .. import _validate as check
from ..scenarios.pubsub import PubSubRun, default_run
from ._base import PALETTE, SimulationView, assign, held, nice_ceiling

#: Colours given to groups in the order they first subscribe (payment, email, analytics, ...).
GROUP_COLOURS = [
    PALETTE["blue"],
    PALETTE["orange"],
    PALETTE["green"],
    PALETTE["purple"],
    PALETTE["vermillion"],
    PALETTE["sky"],
    PALETTE["yellow"],
    PALETTE["black"],
]
#: Text colour on top of each group colour (dark text on the light ones).
_TEXT_ON = {
    PALETTE["blue"]: "white",
    PALETTE["orange"]: "black",
    PALETTE["green"]: "white",
    PALETTE["purple"]: "black",
    PALETTE["vermillion"]: "white",
    PALETTE["sky"]: "black",
    PALETTE["yellow"]: "black",
    PALETTE["black"]: "white",
}
WAITING_COLOUR = "#BBBBBB"

#: Services the "subscribe a new group" menu offers (those not subscribed right now).
SERVICE_NAMES = (
    "inventory",
    "analytics",
    "warehouse",
    "fraud-check",
    "shipping",
    "search",
    "payment",
    "email",
)

#: How many columns (message slots) the "who got each message" chart has.
WINDOW = 20
#: Once the messages outgrow the slots, the chart's window moves on by this many messages at a
#: time: it shows the latest 11 to 20, and most publishes fill the next slot and leave the others.
WINDOW_STEP = 10


def chart_window(published: int) -> tuple[int, int]:
    """The message numbers ``(first, last)`` of the :data:`WINDOW` slots of the "who got each
    message" chart after ``published`` messages: 1 to 20 until more are published, then moved
    on by :data:`WINDOW_STEP` at a time so that the newest message is always in it, with 10 to
    19 before it. A publish that fits fills the next empty slot and leaves every other column,
    label and tick where it is.

    >>> chart_window(7), chart_window(20), chart_window(21), chart_window(30), chart_window(31)
    ((1, 20), (1, 20), (11, 30), (11, 30), (21, 40))
    """
    check.integer("published", published, minimum=0)
    first = 1 + max(0, -(-(published - WINDOW) // WINDOW_STEP) * WINDOW_STEP)  # a ceiling
    return first, first + WINDOW - 1


class PubSub(SimulationView):
    """Copies of each message per group, and deliveries per member, with a button per action.

    The buttons call the same methods you can call from code: :meth:`publish`, :meth:`add_group`,
    :meth:`remove_group`, :meth:`add_member`, :meth:`remove_member` and :meth:`advance`. Pass
    ``run`` to view a run you scripted; the default is
    :func:`~mqlib.scenarios.pubsub.default_run` (payment 2 members, email 3, analytics 1; ten
    messages; an inventory group joins after the sixth).
    """

    def __init__(self, run: PubSubRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, PubSubRun, default_run)
        self._colours: dict[str, str] = {}
        self._build()
        self.refresh()

    # -- scriptable actions (each button calls one of these) ------------------------------------
    def publish(self, count: int = 1) -> list[str]:
        """The producer publishes ``count`` messages to the topic; returns their ids."""
        ids = self.run.publish(count)
        self.refresh()
        return ids

    def add_group(self, name: str, members: int = 1) -> list[str]:
        """Subscribe a new consumer group with ``members`` instances; returns their ids."""
        added = self.run.add_group(name, members)
        self._tell(
            f"({name} subscribed with {members} member{'' if members == 1 else 's'}: it gets "
            "every message published from now on.)"
        )
        self.refresh()
        return added

    def remove_group(self, name: str) -> None:
        """Unsubscribe group ``name``: it receives nothing more."""
        self.run.remove_group(name)
        self._tell(f"({name} unsubscribed: it receives nothing more.)")
        self.refresh()

    def add_member(self, group: str) -> str:
        """Start one more instance in ``group``; returns its id."""
        backlog = self.run.pending().get(group, 0) if isinstance(group, str) else 0
        member = self.run.add_member(group)  # raises for an unknown group (or a non-string)
        got = f" and received the {backlog} waiting" if backlog else ""
        self._tell(f"({member} joined {group}{got}.)")
        self.refresh()
        return member

    def remove_member(self, group: str, member: str | None = None) -> str:
        """Stop ``member`` of ``group`` (its newest member when ``None``); returns its id."""
        removed = self.run.remove_member(group, member)
        left = len(self.run.groups()[group])
        self._tell(
            f"({removed} stopped; {group} has {left} member{'' if left == 1 else 's'} left"
            + ("" if left else ": new messages wait for one")
            + ".)"
        )
        self.refresh()
        return removed

    def advance(self, seconds: float = 1.0) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.run.advance(seconds)
        self.refresh()

    # -- chart data: the scenario's, for the messages in the chart's window -------------------
    def group_order(self) -> list[str]:
        """See :meth:`PubSubRun.group_order <mqlib.scenarios.pubsub.PubSubRun.group_order>`."""
        return self.run.group_order()

    def window(self) -> tuple[int, int]:
        """The message numbers of the chart's slots: :func:`chart_window` of the messages
        published so far."""
        return chart_window(self.run.published)

    def copies(self) -> dict[str, Any]:
        """What the left chart draws: :meth:`PubSubRun.copies
        <mqlib.scenarios.pubsub.PubSubRun.copies>` for the published messages in
        :meth:`window`."""
        first, _last = self.window()
        return self.run.copies(max(1, self.run.published - first + 1))

    # -- internals -----------------------------------------------------------------------------
    def _colour(self, group: str) -> str:
        if group not in self._colours:
            self._colours[group] = GROUP_COLOURS[len(self._colours) % len(GROUP_COLOURS)]
        return self._colours[group]

    def _build(self) -> None:
        mx = bq.OrdinalScale()
        my = bq.LinearScale(min=0.0)
        self.copies_mark = bq.Bars(
            x=[],
            y=[],
            scales={"x": mx, "y": my},
            type="stacked",
            padding=0.15,
            stroke="white",
        )
        self.member_labels = bq.Label(
            x=[],
            y=[],
            text=[],
            scales={"x": mx, "y": my},
            align="middle",
            default_size=12,
            font_weight="bold",
            y_offset=5,
        )
        self.copies_axis = bq.Axis(
            scale=my, side="left", label="copies (one per group)", tick_format="d"
        )
        self.copies_figure = bq.Figure(
            marks=[self.copies_mark, self.member_labels],
            title="Who got each message",
            axes=[
                bq.Axis(scale=mx, label="message (publish order)"),
                self.copies_axis,
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 55, "right": 15},
            layout=w.Layout(width="54%", height="260px"),
        )
        bx = bq.OrdinalScale(reverse=True)  # first member at the top
        by = bq.LinearScale(min=0.0)
        self.member_mark = bq.Bars(
            x=[], y=[], scales={"x": bx, "y": by}, padding=0.25, orientation="horizontal"
        )
        self.member_axis = bq.Axis(scale=by, label="messages delivered", tick_format="d")
        self.member_figure = bq.Figure(
            marks=[self.member_mark],
            title="Each member's share",
            axes=[
                bq.Axis(scale=bx, side="left"),
                self.member_axis,
            ],
            fig_margin={"top": 40, "bottom": 50, "left": 100, "right": 30},
            layout=w.Layout(width="44%", height="260px"),
        )
        # A legend in HTML: bqplot's own legend box sits on top of the bars it explains.
        self.legend = w.HTML()
        producer = w.HBox(
            [
                w.HTML("<b>Producer:</b>", layout=w.Layout(width="90px")),
                self._button("Publish 1", lambda: self.publish(1), "publish one order event"),
                self._button("Publish 5", lambda: self.publish(5), "publish five order events"),
            ]
        )
        self.group_rows = w.VBox()
        self._rows: dict[str, dict[str, Any]] = {}
        self.new_group_name = w.Dropdown(
            description="new group",
            style={"description_width": "75px"},
            layout=w.Layout(width="250px"),
        )
        self.new_group_members = w.IntSlider(
            value=2,
            min=0,
            max=5,
            description="members",
            style={"description_width": "75px"},
            layout=w.Layout(width="250px"),
        )
        self.subscribe_button = self._button(
            "Subscribe",
            self._subscribe_selected,
            "subscribe this group: it gets every message published from now on",
        )
        # Controls in two columns, so that the charts and every control fit on a 720-pixel screen.
        self.view = w.VBox(
            [
                w.HBox([self.copies_figure, self.member_figure]),
                self.legend,
                self.summary_label,
                w.HBox(
                    [
                        w.VBox(
                            [
                                producer,
                                self.new_group_name,
                                self.new_group_members,
                                self.subscribe_button,
                            ]
                        ),
                        self.group_rows,
                    ],
                    layout=w.Layout(flex_flow="row wrap", grid_gap="4px 24px"),
                ),
            ]
        )

    def _subscribe_selected(self) -> None:
        if self.new_group_name.value:
            self.add_group(self.new_group_name.value, self.new_group_members.value)

    def _group_row(self, name: str) -> dict[str, Any]:
        label = w.HTML(layout=w.Layout(width="175px"))
        add = self._button(
            "+ member", lambda: self.add_member(name), f"start one more {name} instance"
        )
        remove = self._button(
            "− member", lambda: self.remove_member(name), f"stop the newest {name} instance"
        )
        drop = self._button(
            "Unsubscribe", lambda: self.remove_group(name), f"{name} stops listening to the topic"
        )
        return {"box": w.HBox([label, add, remove, drop]), "label": label, "remove": remove}

    def _draw(self) -> None:
        order = self.group_order()
        for name in order:
            self._colour(name)
        data = self.copies()
        published = self.run.published
        first, last = self.window()
        title = (
            f"Who got each message ({first} to {published} of {published})"
            if first > 1
            else "Who got each message"
        )
        # every column of the window, before the first publish too: empty slots at height 0
        empty = [0] * (WINDOW - len(data["messages"]))
        heights, colours = [], []
        for name in order:
            row = data["groups"][name]
            heights += [list(row["delivered"]) + empty, list(row["waiting"]) + empty]
            colours += [self._colour(name), WAITING_COLOUR]
        # labels: the member's number in the middle of its segment ("…" while it waits)
        lx, ly, text, text_colours = [], [], [], []
        for i in range(len(data["messages"])):
            level = 0
            for name in order:
                row = data["groups"][name]
                if row["delivered"][i] or row["waiting"][i]:
                    member = row["member"][i]
                    lx.append(i)
                    ly.append(level + 0.5)
                    if member is None:
                        text.append("…")
                        text_colours.append("black")
                    else:
                        prefix = f"{name}-"
                        text.append(member[len(prefix) :] if member.startswith(prefix) else member)
                        text_colours.append(_TEXT_ON[self._colour(name)])
                    level += 1
        tallest = max((sum(column) for column in zip(*heights, strict=True)), default=0)
        ticks = _integer_ticks(tallest)
        # One message per changed widget (held), with the traits whose value changed.
        with held(self.copies_figure):
            assign(self.copies_figure, title=title)
            # Columns are slots 0 to WINDOW-1 from the start and the axis labels each with the
            # number of the message it holds or will hold, so the ordinal domain never changes
            # and the labels only when the window moves on. The scale takes its domain from its
            # marks. (Set here, it reached the page before the marks' new x, and bqplot drew a
            # column that had left at NaN.)
            slots = list(range(WINDOW))
            # every 2nd number, every 5th once they have three digits: twenty numbers do not
            # fit side by side under the chart
            every = 2 if last < 100 else 5
            labels = [str(seq) if seq % every == 0 else "" for seq in range(first, last + 1)]
            assign(
                self.copies_figure.axes[0],
                tick_labels=dict(zip(slots, labels, strict=True)),
            )
            assign(self.copies_axis, tick_values=ticks)
            assign(self.copies_axis.scale, max=float(ticks[-1]))
            assign(
                self.copies_mark,
                x=slots,
                y=heights if heights else [],
                colors=colours or [PALETTE["grey"]],
            )
            assign(self.member_labels, x=lx, y=ly, text=text, colors=text_colours or ["black"])

        names, counts, bar_colours = [], [], []
        current = self.run.groups()
        for group, members in self.run.deliveries().items():
            for member, count in members.items():
                left = member not in current[group]
                names.append(f"{member} (left)" if left else member)
                counts.append(count)
                bar_colours.append(PALETTE["grey"] if left else self._colour(group))
        # a round ceiling: the axis stays as it is until a member's count passes it
        ticks = _integer_ticks(int(nice_ceiling(max(counts, default=0))))
        with held(self.member_figure):
            assign(self.member_axis, tick_values=ticks)
            assign(self.member_axis.scale, max=float(ticks[-1]))
            assign(self.member_mark, x=names, y=counts, colors=bar_colours or [PALETTE["grey"]])

        self._draw_controls(current)
        swatches = " &nbsp; ".join(
            f'<span style="color:{self._colour(g)}">&#9632;</span> {html.escape(g)}'
            + ("" if g in current else " (unsubscribed)")
            for g in order
        )
        self.legend.value = (
            '<div style="line-height:1.45">'
            f"{swatches} &nbsp; "
            f'<span style="color:{WAITING_COLOUR}">&#9632;</span> waiting for a member (…)'
            "<br>Left: each column is one message; it gets one block per subscribed group, "
            "and the number in a block is the group member that received it. "
            "Right: how many messages each member received.</div>"
        )

    def describe_charts(self) -> list[str]:
        data = self.copies()
        shown = data["messages"]
        span = f"messages {shown[0]} to {shown[-1]}" if shown else "no messages yet"
        current = self.run.groups()
        per_group = ", ".join(
            f"{g} {sum(row['delivered'])}"
            + (f" ({sum(row['waiting'])} waiting)" if sum(row["waiting"]) else "")
            for g, row in data["groups"].items()
            if g in current or sum(row["delivered"])
        )
        members = ", ".join(
            f"{m} {c}" for members in self.run.deliveries().values() for m, c in members.items()
        )
        return [
            f"Stacked bar chart of {span} of {self.run.published}, one block per group that "
            f"received each: {per_group or 'no groups'}.",
            f"Bar chart of messages delivered per member: {members or 'no members'}.",
        ]

    def _draw_controls(self, current: dict[str, list[str]]) -> None:
        for name in list(self._rows):
            if name not in current:
                del self._rows[name]
        for name in current:
            if name not in self._rows:
                self._rows[name] = self._group_row(name)
        boxes = [self._rows[name]["box"] for name in current]
        if list(self.group_rows.children) != boxes:
            self.group_rows.children = boxes
        for name, members in current.items():
            row = self._rows[name]
            pending = self.run.pending()[name]
            waiting = f", {pending} waiting" if pending else ""
            row["label"].value = (
                f'<span style="color:{self._colour(name)}">&#9632;</span> '
                f"<b>{html.escape(name)}</b>: {len(members)} "
                f"member{'' if len(members) == 1 else 's'}{waiting}"
            )
            row["remove"].disabled = not members
        free = [n for n in SERVICE_NAMES if n not in current]
        if list(self.new_group_name.options) != free:
            self.new_group_name.options = free
        if self.new_group_name.value not in free:
            self.new_group_name.value = free[0] if free else None
        self.subscribe_button.disabled = not free


def _integer_ticks(top: int) -> list[int]:
    """Whole-number ticks from 0 to at least ``top``: steps of 1, 2, 5, 10, 20, 50, ..."""
    step, scale = 1, 1
    while top / step > 8:
        for mantissa in (1, 2, 5, 10):
            step = mantissa * scale
            if top / step <= 8:
                break
        else:
            scale *= 10
    last = max(top, 1)
    last = -(-last // step) * step
    return list(range(0, last + step, step))
