"""Chapter 7's rebalancing view: which member works on which partition, second by second.

:class:`Rebalancing` draws what :class:`~mqlib.scenarios.rebalance.RebalanceRun` samples: one row
per partition, one square per second, coloured by the member that processed the partition in that
second, grey where nobody did (a rebalance, a dead or stuck owner). Changing the protocol or the
commit habit replays the same story on a fresh group, so the two protocols can be compared on the
same events. Every button calls one of its methods.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..scenarios.rebalance import RebalanceRun, default_run
from ._base import PALETTE, SimulationView, assign, held

#: Member colours, in the order members appear; grey squares are seconds without processing.
MEMBER_COLOURS = [
    PALETTE["blue"],
    PALETTE["orange"],
    PALETTE["green"],
    PALETTE["purple"],
    PALETTE["sky"],
    PALETTE["vermillion"],
]
PAUSED_COLOUR = "#DDDDDD"
#: The chart shows at most this many seconds (the latest ones).
WINDOW = 60
#: The list under the chart shows at most this many rebalance rounds (the latest ones).
SHOWN_ROUNDS = 3


class Rebalancing(SimulationView):
    """A consumer group's partitions over time, and what each rebalance does to them.

    Methods (also the buttons): :meth:`join`, :meth:`leave`, :meth:`crash`, :meth:`stall`,
    :meth:`restart`, :meth:`advance` and :meth:`settings`. Pass ``run`` to view a run you
    scripted; the default is :func:`~mqlib.scenarios.rebalance.default_run` (6 partitions,
    3 members, eager, a fourth member joins at 11 s, 30 s in all).
    """

    def __init__(self, run: RebalanceRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, RebalanceRun, default_run)
        self._colours: dict[str, str] = {}
        self._build()
        self.refresh()

    # -- scriptable actions ----------------------------------------------------------------------
    def join(self) -> str:
        """A new member joins the group; returns its id."""
        before = len(self.run.group.rebalances)
        member = self.run.join()
        self._tell(
            f"{member} joined: the group rebalances "
            f"({self.run.group.rebalance_time:g} s per round); advance to see it."
            if len(self.run.group.rebalances) == before
            else f"{member} joined the rebalance under way."
        )
        self.refresh()
        return member

    def leave(self, member: str | None = None) -> str:
        """``member`` (the newest running one by default) shuts down cleanly."""
        member = self.run.leave(member)
        self._tell(f"{member} shut down cleanly and left the group: its partitions move on.")
        self.refresh()
        return member

    def crash(self, member: str) -> None:
        """``member`` dies; the group notices after the 45 s session timeout."""
        self.run.crash(member)
        self._tell(
            f"{member} died silently: the group notices when its heartbeats have stopped for "
            f"session.timeout.ms ({self.run.group.session_timeout:g} s); until then its "
            "partitions wait."
        )
        self.refresh()

    def stall(self, member: str, seconds: float = 400.0) -> None:
        """``member`` is stuck on one record for ``seconds`` (300 s is ``max.poll.interval.ms``)."""
        self.run.stall(member, seconds)
        self._tell(
            f"{member} is stuck on one record for {seconds:g} s. Its heartbeats go on, but after "
            f"max.poll.interval.ms ({self.run.group.max_poll_interval:g} s) without a poll its "
            "client takes it out of the group."
        )
        self.refresh()

    def restart(self, member: str, downtime: float = 30.0) -> None:
        """``member`` is restarted and back after ``downtime`` seconds."""
        self.run.restart(member, downtime)
        if self.run.settings["static_membership"]:
            how = (
                f"with static membership it gets its partitions back without a rebalance if it "
                f"returns within session.timeout.ms ({self.run.group.session_timeout:g} s)"
            )
        else:
            how = "it leaves the group now and joins again as a new member: two rebalances"
        self._tell(f"{member} restarts and is back in {downtime:g} s; {how}.")
        self.refresh()

    def advance(self, seconds: int) -> None:
        """Let ``seconds`` whole seconds pass."""
        before = len(self.run.group.rebalances)
        self.run.advance(seconds)
        rounds = len(self.run.group.rebalances) - before
        self._tell(
            f"{seconds:g} s passed; "
            + (f"{rounds} new rebalance round{'s' if rounds > 1 else ''}." if rounds
               else "no rebalance.")
        )  # fmt: skip
        self.refresh()

    def settings(self, **changes: Any) -> None:
        """Replay everything so far with other settings (``protocol="cooperative"``,
        ``commit_on_revoke=True``, ``static_membership=True``)."""
        self.run = self.run.with_settings(**changes)
        said = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in changes.items())
        self._tell(f"Replayed the same {self.run.now:g} s on a fresh group with {said}.")
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------------
    def window(self) -> tuple[float, float]:
        """The seconds the chart shows: ``(first, last)`` sample times."""
        last = max(self.run.now, 1.0)
        return max(1.0, last - WINDOW + 1), last

    def describe_charts(self) -> list[str]:
        """The chart in one sentence: the seconds shown, who works on which partition now, and
        how many partition-seconds nobody processed."""
        first, last = self.window()
        shown = [s for s in self.run.timeline() if first <= s["time"] <= last]
        idle = sum(s["worker"] is None for s in shown)
        owners = ", ".join(
            f"p{p} {owner or 'nobody'}" for p, owner in sorted(self.run.group.owner.items())
        )
        return [
            f"Grid of who processed each partition, second by second, from {first:g} to "
            f"{last:g} s: now {owners}; {idle} partition-seconds grey (nobody processed)."
        ]

    def _colour(self, member: str) -> str:
        if member not in self._colours:
            self._colours[member] = MEMBER_COLOURS[len(self._colours) % len(MEMBER_COLOURS)]
        return self._colours[member]

    def _build(self) -> None:
        partitions = self.run.group.partitions
        self.x_scale = bq.LinearScale(min=0.5, max=30.5)
        self.y_scale = bq.LinearScale(min=-0.6, max=partitions - 0.4, reverse=True)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.work_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="square", default_size=90, stroke="white"
        )
        self.paused_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="square", default_size=90,
            colors=[PAUSED_COLOUR], stroke="white",
        )  # fmt: skip
        self.figure = bq.Figure(
            marks=[self.paused_mark, self.work_mark],
            axes=[
                bq.Axis(scale=self.x_scale, label="time (s)", tick_format="d"),
                bq.Axis(
                    scale=self.y_scale,
                    side="left",
                    tick_values=list(range(partitions)),
                    tick_format="d",
                    label="partition",
                ),
            ],
            title="Who processes each partition, second by second (grey: nobody)",
            fig_margin={"top": 34, "bottom": 42, "left": 60, "right": 20},
            layout=w.Layout(width="100%", height=f"{96 + 24 * partitions}px"),
        )
        self.legend = w.HTML()
        self.rebalances_html = w.HTML()
        self.message = w.HTML()
        settings = self.run.settings
        self.protocol_control = w.Dropdown(
            options=["eager", "cooperative"], value=settings["protocol"], description="protocol",
            style={"description_width": "60px"}, layout=w.Layout(width="200px"),
        )  # fmt: skip
        self.commit_control = w.Checkbox(
            value=settings["commit_on_revoke"],
            description="commit on revoke",
            indent=False,
            layout=w.Layout(width="150px"),
        )
        self.static_control = w.Checkbox(
            value=settings["static_membership"],
            description="static membership",
            indent=False,
            layout=w.Layout(width="160px"),
        )
        self.member_control = w.Dropdown(description="member", layout=w.Layout(width="180px"))
        for control, name in (
            (self.protocol_control, "protocol"),
            (self.commit_control, "commit_on_revoke"),
            (self.static_control, "static_membership"),
        ):
            control.observe(
                self._on_control(
                    self._act(lambda value, name=name: self.settings(**{name: value}))
                ),
                "value",
            )
        member = lambda: self.member_control.value  # noqa: E731 - read when clicked
        self.buttons = {
            b.description: b
            for b in (
                self._button("+ member", self._act(self.join), "a new member joins"),
                self._button(
                    "Leave", self._act(lambda: self.leave(member())), "shuts down cleanly"
                ),
                self._button("Crash", self._act(lambda: self.crash(member())), "dies silently"),
                self._button(
                    "Stall 400 s",
                    self._act(lambda: self.stall(member(), 400.0)),
                    "stuck on one record for 400 s, longer than max.poll.interval.ms",
                ),
                self._button(
                    "Restart (30 s)",
                    self._act(lambda: self.restart(member(), 30.0)),
                    "restarted, back after 30 s",
                ),
                self._button("Advance 5 s", self._act(lambda: self.advance(5)), "let 5 s pass"),
                self._button("Advance 60 s", self._act(lambda: self.advance(60)), "let 60 s pass"),
            )
        }
        b = self.buttons
        self.view = w.VBox(
            [
                self.figure,
                self.legend,
                self.summary_label,
                self.rebalances_html,
                w.HBox(
                    [
                        self.protocol_control,
                        self.commit_control,
                        self.static_control,
                        b["Advance 5 s"],
                        b["Advance 60 s"],
                    ],
                    layout=w.Layout(grid_gap="0 8px"),
                ),
                w.HBox(
                    [
                        b["+ member"],
                        self.member_control,
                        b["Leave"],
                        b["Crash"],
                        b["Stall 400 s"],
                        b["Restart (30 s)"],
                    ]
                ),  # fmt: skip
                self.message,
            ]
        )

    def _act(self, action: Callable[..., Any]) -> Callable[..., None]:
        """A handler that shows a refused action's reason under the controls."""

        def handler(*args: Any) -> None:
            try:
                action(*args)
                self.message.value = ""
            except (ValueError, TypeError) as error:
                self.message.value = (
                    f'<span style="color:{PALETTE["vermillion"]}">Refused: '
                    f"{html.escape(str(error))}</span>"
                )

        return handler

    def _draw(self) -> None:
        first, last = self.window()
        wx, wy, colours, px, py = [], [], [], [], []
        for s in self.run.timeline():
            if not first <= s["time"] <= last:
                continue
            if s["worker"] is not None:
                wx.append(s["time"])
                wy.append(s["partition"])
                colours.append(self._colour(s["worker"]))
            else:
                px.append(s["time"])
                py.append(s["partition"])
        for m in self.run.group.members:
            self._colour(m)
        # One message per mark and scale, with only the traits that changed.
        with held(self.figure):
            assign(self.x_scale, min=first - 0.5, max=max(last, first + 29) + 0.5)
            assign(self.work_mark, x=wx, y=wy, colors=colours or [PALETTE["blue"]])
            assign(self.paused_mark, x=px, y=py)
        self.legend.value = (
            "Members: "
            + " &nbsp; ".join(
                f'<span style="color:{c}">&#9632;</span> {html.escape(m)}'
                for m, c in self._colours.items()
            )
            + f' &nbsp; <span style="color:{PAUSED_COLOUR}">&#9632;</span> nobody processed it'
        )
        rounds = self.run.group.rebalances
        rows = [
            f"t={r['time']:g}s {html.escape(r['reason'])}, round {r['round']}: "
            f"revoked {r['revoked'] or 'none'}, assigned {r['assigned'] or 'none'}"
            for r in rounds[-SHOWN_ROUNDS:]
        ]
        earlier = len(rounds) - len(rows)
        title = "Rebalance rounds" + (
            f" (the latest {len(rows)} of {len(rounds)})" if earlier else ""
        )
        self.rebalances_html.value = (
            f'<div style="line-height:1.4"><b>{title}:</b> '
            + ("<br>".join(rows) if rows else "none yet")
            + "</div>"
        )
        self._syncing = True
        try:
            running = self.run.running_members()
            self.member_control.options = running
            if running and self.member_control.value not in running:
                self.member_control.value = running[0]
            self.protocol_control.value = self.run.settings["protocol"]
            self.commit_control.value = self.run.settings["commit_on_revoke"]
            self.static_control.value = self.run.settings["static_membership"]
        finally:
            self._syncing = False
        for label in ("Leave", "Crash", "Stall 400 s", "Restart (30 s)"):
            self.buttons[label].disabled = not running
