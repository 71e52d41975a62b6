"""Chapter 7's cluster view: which broker leads each partition, who is in sync, what is committed.

:class:`KafkaCluster` draws what :class:`~mqlib.scenarios.cluster.ClusterRun` reports: a grid with
one cell per replica (partition row, broker column) coloured by its role (leader, in-sync follower,
out of the ISR, broker down) and labelled with the replica's log end offset; each row's label gives
the partition's high watermark and leader epoch. Every button calls one of its methods.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as w

from ..models.cluster import _acks
from ..scenarios.cluster import ClusterRun, default_run
from ..scenarios.durability import durability_run, outcome, summary
from ._base import PALETTE, SimulationView, assign, held

ROLE_COLOURS = {
    "leader": PALETTE["blue"],
    "in sync": PALETTE["sky"],
    "out of sync": PALETTE["orange"],
    "down": "#BBBBBB",
}
#: Label colour on each role's cell.
_TEXT_ON = {"leader": "white", "in sync": "black", "out of sync": "black", "down": "black"}
KEYS = ("order-42", "order-43", "order-44", "order-45")
ACKS: tuple[tuple[str, Any], ...] = (("all", "all"), ("1", 1), ("0", 0))


class KafkaCluster(SimulationView):
    """Topic "orders" on a broker cluster: replicas, leaders, the ISR and the high watermark.

    The buttons call the same methods a cell can: :meth:`produce`, :meth:`kill_broker`,
    :meth:`restart_broker`, :meth:`set_unclean_leader_election`, :meth:`advance` and
    :meth:`run_failure_script` (chapter 7's durability script with the chosen ``acks`` and
    unclean election, on this view's replication factor and ``min.insync.replicas``). Pass ``run``
    to view a run you scripted; the default is :func:`~mqlib.scenarios.cluster.default_run`
    (3 brokers, 3 partitions, RF 3, min ISR 2; broker 1 crashed and was replaced as leader).
    """

    def __init__(self, run: ClusterRun | None = None) -> None:
        super().__init__()
        self.run = self._take_run(run, ClusterRun, default_run)
        self.last_request: dict[str, Any] | None = None
        self.script_outcome: dict[str, Any] | None = None
        self._build()
        self.refresh()

    # -- scriptable actions (each button calls one of these) ------------------------------------
    def produce(self, key: str | None, value: Any = None, *, acks: int | str = "all") -> dict:
        """Send one record to the partition Kafka picks for ``key``; returns the request."""
        self.last_request = self.run.produce(key, value, acks=acks)
        self._tell(_request_note(self.last_request))
        self.refresh()
        return self.last_request

    def kill_broker(self, broker_id: int) -> None:
        """Crash broker ``broker_id`` (the controller notices after the session timeout)."""
        self.run.kill_broker(broker_id)
        timeout = self.run.cluster.session_timeout
        led = [p["partition"] for p in self.run.state()["partitions"] if p["leader"] == broker_id]
        if len(led) > 1:
            then = f"until then partitions {', '.join(map(str, led))} have no working leader."
        elif led:
            then = f"until then partition {led[0]} has no working leader."
        else:
            then = "it led no partition."
        self._tell(
            f"Broker {broker_id} crashed. The controller notices after "
            f"broker.session.timeout.ms ({timeout:g} s); {then}"
        )
        self.refresh()

    def restart_broker(self, broker_id: int) -> None:
        """Start broker ``broker_id`` again with the log it had on disk."""
        self.run.restart_broker(broker_id)
        self._tell(
            f"Broker {broker_id} is back with its log. Its replicas fetch from the leaders every "
            f"{self.run.cluster.fetch_interval:g} s and rejoin the ISR once caught up."
        )
        self.refresh()

    def set_unclean_leader_election(self, enabled: bool) -> None:
        """Allow (``True``) or forbid an out-of-sync replica to become leader."""
        seen = self.run.sim.trace._total
        self.run.set_unclean_leader_election(enabled)
        self._sync(self.unclean_control, bool(self.run.cluster.unclean_leader_election))
        changes = _changes(self.run, seen)
        self._tell(
            (
                "Unclean leader election on: a partition with no in-sync replica alive may be "
                "led by an out-of-sync one, losing what it lacks."
                if enabled
                else "Unclean leader election off: only an in-sync replica may lead."
            )
            + (f" {changes}" if changes else " Nothing changed now.")
        )
        self.refresh()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (followers fetch, the controller reacts)."""
        seen = self.run.sim.trace._total
        self.run.advance(seconds)
        changes = _changes(self.run, seen)
        self._tell(
            f"{seconds:g} s passed: {changes}"
            if changes
            else f"{seconds:g} s passed: nothing changed (every live follower was caught up)."
        )
        self.refresh()

    def run_failure_script(
        self, acks: int | str | None = None, unclean_leader_election: bool | None = None
    ) -> dict[str, Any]:
        """Replace the view's run with :func:`~mqlib.scenarios.durability.durability_run`: a
        follower falls behind, the leader dies, the stale replicas come back. It uses this view's
        replication factor and ``min.insync.replicas`` and the ``acks`` and unclean-election
        controls (or the values given, which move the controls). Returns the outcome row."""
        cluster = self.run.cluster
        acks = self.acks_control.value if acks is None else _acks(acks)  # -1 means "all"
        if unclean_leader_election is None:
            unclean_leader_election = self.unclean_control.value
        run = durability_run(
            cluster.replication_factor,
            cluster.min_insync_replicas,
            acks,
            unclean_leader_election,
            brokers=cluster.num_brokers,
            partitions=cluster.num_partitions,
        )
        self.run = run
        self._sync(self.acks_control, acks)
        self._sync(self.unclean_control, bool(unclean_leader_election))
        self.script_outcome = outcome(run)
        self._tell(f"The failure script ran to t={run.now:g} s; its outcome is under the chart.")
        self.script_html.value = (
            f"<b>Failure script:</b> {html.escape(summary(self.script_outcome))}"
        )
        self.refresh()
        return self.script_outcome

    # -- chart data ----------------------------------------------------------------------------
    def cells(self) -> list[dict[str, Any]]:
        """One entry per replica: partition, broker, role and log end offset, from the
        scenario's :meth:`~mqlib.scenarios.cluster.ClusterRun.state`."""
        state = self.run.state()
        rows = []
        for part in state["partitions"]:
            for broker in part["replicas"]:
                if state["brokers"][broker] == "down":
                    role = "down"
                elif broker == part["leader"]:
                    role = "leader"
                elif broker in part["isr"]:
                    role = "in sync"
                else:
                    role = "out of sync"
                rows.append(
                    {
                        "partition": part["partition"],
                        "broker": broker,
                        "role": role,
                        "log_end_offset": part["log_end_offsets"][broker],
                    }
                )
        return rows

    def describe_charts(self) -> list[str]:
        """The grid in one sentence: each partition's leader, ISR and high watermark, and the
        brokers that are down."""
        state = self.run.state()
        parts = "; ".join(
            f"p{p['partition']} led by "
            + (f"broker {p['leader']}" if p["leader"] is not None else "nobody (offline)")
            + f", in sync {p['isr']}, HW {p['high_watermark']}"
            for p in state["partitions"]
        )
        down = [b for b, s in state["brokers"].items() if s == "down"]
        return [
            f"Grid of the replicas of topic {state['topic']} at t={state['time']:g} s: {parts}; "
            f"brokers down: {', '.join(map(str, down)) or 'none'}."
        ]

    # -- internals -----------------------------------------------------------------------------
    def _act(self, action: Callable[[], Any]) -> Callable[[], None]:
        def handler() -> None:
            try:
                action()
                self.message.value = ""
            except (ValueError, KeyError) as error:
                text = str(error)
                self.message.value = (
                    f'<span style="color:{PALETTE["vermillion"]}">Refused: '
                    f"{html.escape(str(text))}</span>"
                )

        return handler

    def _build(self) -> None:
        state = self.run.state()
        brokers = sorted(state["brokers"])
        partitions = len(state["partitions"])
        self.x_scale = bq.LinearScale(min=min(brokers) - 0.5, max=max(brokers) + 0.5)
        self.y_scale = bq.LinearScale(min=-0.5, max=partitions - 0.5, reverse=True)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.cell_mark = bq.Scatter(
            x=[], y=[], scales=scales, marker="square", default_size=2900, stroke="white"
        )
        self.role_labels = bq.Label(
            x=[], y=[], text=[], scales=scales, align="middle", default_size=12,
            font_weight="bold", y_offset=-4,
        )  # fmt: skip
        self.offset_labels = bq.Label(
            x=[], y=[], text=[], scales=scales, align="middle", default_size=11, y_offset=12
        )
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", grid_lines="none")
        self.figure = bq.Figure(
            marks=[self.cell_mark, self.role_labels, self.offset_labels],
            axes=[
                bq.Axis(
                    scale=self.x_scale,
                    tick_values=brokers,
                    tick_labels={str(b): f"broker {b}" for b in brokers},
                    grid_lines="none",
                    label="each cell: one broker's copy",
                    label_offset="36px",
                ),
                self.y_axis,
            ],
            title="Replicas of topic orders: role and LEO",
            fig_margin={"top": 36, "bottom": 50, "left": 125, "right": 10},
            layout=w.Layout(width="55%", height=f"{90 + 72 * partitions}px"),
        )
        swatches = " &nbsp; ".join(
            f'<span style="color:{c}">&#9632;</span> {role}' for role, c in ROLE_COLOURS.items()
        )
        self.legend = w.HTML(
            f"{swatches} &nbsp; HW (high watermark): every in-sync replica has the records "
            "below it, and consumers see only those."
        )
        self.request_html = w.HTML()
        self.script_html = w.HTML()
        self.lost_html = w.HTML()
        self.message = w.HTML()
        narrow = {"description_width": "32px"}
        self.key_control = w.Dropdown(
            options=KEYS, value="order-42", description="key", style=narrow,
            layout=w.Layout(width="145px"),
        )  # fmt: skip
        self.acks_control = w.Dropdown(
            options=ACKS, value="all", description="acks", style=narrow,
            layout=w.Layout(width="105px"),
        )  # fmt: skip
        self.key_control.observe(self._on_control(self._act_value(self._key_chosen)), "value")
        self.acks_control.observe(self._on_control(self._act_value(self._acks_chosen)), "value")
        self.unclean_control = w.Checkbox(
            value=bool(self.run.cluster.unclean_leader_election),
            description="unclean leader election",
            indent=False,
        )
        self.unclean_control.observe(
            self._on_control(self._act_value(self.set_unclean_leader_election)), "value"
        )
        self.buttons: dict[str, w.Button] = {}
        for label, action, tip in (
            ("Produce", self._produce_selected, "send one record with the chosen acks"),
            ("Advance 1 s", lambda: self.advance(1.0), "followers fetch every 0.5 s"),
            ("Advance 10 s", lambda: self.advance(10.0), "long enough to notice a dead broker"),
            (
                "Run the failure script",
                self.run_failure_script,
                "start again: a follower falls behind at 10 s, the leader dies at 60 s, the "
                "follower recovers at 80 s, the old leader returns at 100 s (chosen acks and "
                "unclean election)",
            ),
        ):
            self.buttons[label] = self._button(label, self._act(action), tip)
        self.broker_buttons: dict[int, w.Button] = {}
        for b in brokers:
            button = self._button(f"Kill broker {b}", self._act(lambda b=b: self._toggle(b)), "")
            button.layout.width = "150px"
            self.broker_buttons[b] = button

        def row(title: str, *children: w.Widget) -> w.HBox:
            return w.HBox([w.HTML(f"<b>{title}</b>", layout=w.Layout(width="82px")), *children])

        controls = w.VBox(
            [
                row("Producer:", self.key_control, self.acks_control),
                row("", self.buttons["Produce"]),
                w.HBox(list(self.broker_buttons.values()), layout=w.Layout(flex_flow="row wrap")),
                row("Time:", self.buttons["Advance 1 s"], self.buttons["Advance 10 s"]),
                row("Election:", self.unclean_control),
                row("Durability:", self.buttons["Run the failure script"]),
            ],
            layout=w.Layout(width="44%", min_width="330px", margin="30px 0 0 8px"),
        )
        self.view = w.VBox(
            [
                w.HBox([self.figure, controls]),
                self.legend,
                self.summary_label,
                self.request_html,
                self.script_html,
                self.lost_html,
                self.message,
            ]
        )

    def _act_value(self, action: Callable[[Any], Any]) -> Callable[[Any], None]:
        return lambda value: self._act(lambda: action(value))()

    def _toggle(self, broker: int) -> None:
        if self.run.state()["brokers"][broker] == "up":
            self.kill_broker(broker)
        else:
            self.restart_broker(broker)

    def _key_chosen(self, key: str) -> None:
        partition = self.run.partitioner.partition(key)
        self._tell(
            f"{key} goes to partition {partition} (murmur2 of the key), from the next Produce."
        )
        self.refresh()

    def _acks_chosen(self, acks: Any) -> None:
        self._tell(f"acks={acks} applies from the next Produce (and to the failure script).")
        self.refresh()

    def _produce_selected(self) -> None:
        self.produce(self.key_control.value, "event", acks=self.acks_control.value)

    def _draw(self) -> None:
        state = self.run.state()
        cells = self.cells()
        xs = [c["broker"] for c in cells]
        ys = [c["partition"] for c in cells]
        text_colours = [_TEXT_ON[c["role"]] for c in cells]
        # One message per mark and axis, with only the traits that changed: a produce changes
        # the offsets' text and nothing else.
        with held(self.figure):
            assign(self.cell_mark, x=xs, y=ys, colors=[ROLE_COLOURS[c["role"]] for c in cells])
            assign(
                self.role_labels,
                x=xs,
                y=ys,
                text=[c["role"] for c in cells],
                colors=text_colours,
            )
            assign(
                self.offset_labels,
                x=xs,
                y=ys,
                text=[f"LEO {c['log_end_offset']}" for c in cells],
                colors=text_colours,
            )
            assign(
                self.y_axis,
                tick_values=[p["partition"] for p in state["partitions"]],
                tick_labels={
                    str(p["partition"]): f"p{p['partition']}: HW {p['high_watermark']}, "
                    f"epoch {p['leader_epoch']}"
                    for p in state["partitions"]
                },
            )
        for b, button in self.broker_buttons.items():
            up = state["brokers"][b] == "up"
            button.description = f"{'Kill' if up else 'Restart'} broker {b}"
            button.tooltip = (
                f"crash broker {b}" if up else f"start broker {b} again with its log on disk"
            )
        self.request_html.value = self._request_text()
        lost = self.run.lost_records()
        if lost:
            self.lost_html.value = (
                f'<span style="color:{LOST_TEXT}"><b>Lost records:</b> {_lost_text(lost)}</span>'
            )
        else:
            self.lost_html.value = "<b>Lost records:</b> none"

    def _request_text(self) -> str:
        requests = self.run.requests()
        if not requests:
            return "Last request: none yet"
        r = requests[-1]
        where = f"p{r['partition']}" + (f" offset {r['offset']}" if r["offset"] is not None else "")
        error = f" ({r['error']})" if r.get("error") else ""
        return (
            f"Last request: {html.escape(str(r['key']))} acks={r['acks']} &rarr; {where}: "
            f"<b>{r['status']}</b>{html.escape(error)}"
        )


def _changes(run: ClusterRun, seen: int) -> str:
    """What the trace recorded after its ``seen``-th event, in a few words: brokers fenced,
    leaders elected, partitions offline, ISR changes, writes acknowledged, failed or lost."""
    trace = run.sim.trace
    new = list(trace)[max(0, len(trace) - (trace._total - seen)) :]
    said: list[str] = []
    for e in new:
        d = e.data
        if e.kind == "broker_fenced":
            said.append(f"the controller fenced broker {d['broker']}")
        elif e.kind == "leader_elected":
            kind = "" if d["clean"] else " (unclean)"
            said.append(
                f"p{d['partition']} leader now broker {d['leader']}{kind}, epoch {d['epoch']}"
            )
        elif e.kind == "partition_offline":
            said.append(f"p{d['partition']} offline (no in-sync replica alive)")
        elif e.kind == "isr_shrink":
            said.append(f"p{d['partition']} ISR {d['isr']}")
        elif e.kind == "isr_expand":
            said.append(f"p{d['partition']} ISR {d['isr']} (broker {d['broker']} caught up)")
        elif e.kind == "records_lost":
            said.append(f"p{d['partition']} lost offsets {d['offsets']}")
    acked = sum(e.kind == "ack" for e in new)
    failed = [e.data["error"] for e in new if e.kind == "produce_error"]
    if acked:
        said.append(f"{acked} write{'s' if acked > 1 else ''} acknowledged")
    if failed:
        said.append(
            f"{len(failed)} pending write{'s' if len(failed) > 1 else ''} failed ({failed[-1]})"
        )
    return "; ".join(said) + "." if said else ""


def _request_note(request: dict[str, Any]) -> str:
    """What a produce request's answer means, and what a real producer would do about it."""
    status, error = request["status"], request.get("error")
    p = request["partition"]
    if status == "pending":
        return (
            f"p{p} offset {request['offset']} is waiting for the in-sync followers to fetch it "
            "(acks=all): advance time."
        )
    if status == "acknowledged":
        return f"p{p} offset {request['offset']} acknowledged."
    if status == "sent":
        return f"p{p} offset {request['offset']} sent with acks=0: no answer is awaited."
    if error == "LeaderNotAvailableError" and "not noticed" in (request.get("message") or ""):
        return (
            f"p{p}'s leader is down and the controller has not fenced it yet (the engine's "
            "LeaderNotAvailableError; a real producer finds the broker unreachable and retries "
            "for up to delivery.timeout.ms, 120 s)."
        )
    if error == "NotEnoughReplicasError":
        return (
            f"p{p}'s ISR is smaller than min.insync.replicas: nothing was appended (a real "
            "producer retries for up to delivery.timeout.ms, 120 s)."
        )
    return f"p{p}: {error}."


# Vermillion darkened until text in it passes WCAG AA contrast on white (about 6:1).
LOST_TEXT = "#a04000"


def _lost_text(lost: list[dict]) -> str:
    """The lost records, one by one when there are a few, else as runs of offsets per partition
    and status ("51: p0 offsets 10-60 (acknowledged)"), so a long loss stays one readable line."""
    if len(lost) <= 5:
        return ", ".join(
            f"p{x['partition']} offset {x['offset']} ({html.escape(str(x['value']))}, "
            f"{x['status']})"
            for x in lost
        )
    runs: list[list] = []  # [partition, status, first offset, last offset]
    for x in sorted(lost, key=lambda r: (r["partition"], r["offset"])):
        last = runs[-1] if runs else None
        if last and last[:2] == [x["partition"], x["status"]] and x["offset"] == last[3] + 1:
            last[3] = x["offset"]
        else:
            runs.append([x["partition"], x["status"], x["offset"], x["offset"]])
    parts = [
        f"p{p} offset {a} ({status})" if a == b else f"p{p} offsets {a}-{b} ({status})"
        for p, status, a, b in runs
    ]
    return f"{len(lost)}: " + ", ".join(parts)
