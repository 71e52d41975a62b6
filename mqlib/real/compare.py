"""How real brokers differ: the same experiments on every broker, as one table.

:func:`compare_brokers` starts each broker the course can run (all at once, so the slowest start-up
sets the pace), calls its experiment module's ``observe(server)`` from
:mod:`mqlib.real.scripts`, stops the broker, and returns a :class:`Comparison`: rows are
:data:`~mqlib.real.scripts.ROWS`, columns the brokers plus the simulator. Every cell's sentence is
formatted from what that run measured; a broker whose server is not installed, or whose module is
not there, gets a column saying so instead of failing the table.

The simulator column comes from running the engine's own scenarios (chapters 1, 3, 4, 5 and 6),
so it shows what the course's model does for each row.

    from mqlib.real.compare import compare_brokers
    table = compare_brokers()
    table                      # an HTML table in Jupyter
    print(table.to_markdown())
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import html
import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mqlib import _validate
from mqlib.real._process import ServerError
from mqlib.real.scripts import ROWS, Cell

__all__ = [
    "BROKERS",
    "Column",
    "Comparison",
    "compare_brokers",
    "side_by_side",
    "simulator_column",
    "start_brokers",
]

SIMULATOR = "simulator (mqlib)"


def _jetstream() -> Any:
    from mqlib.real.server import JetStreamServer

    return JetStreamServer().start(wait=False)  # about 0.2 s


def _rabbitmq() -> Any:
    from mqlib.real.rabbitmq import RabbitMQServer

    return RabbitMQServer().start(wait=False)  # boots (seconds) while the others run


def _sqs() -> Any:
    from mqlib.real.sqs import SQSServer

    return SQSServer().start(wait=False)


def _redis() -> Any:
    from mqlib.real.redis_streams import RedisServer

    return RedisServer().start(wait=False)


def _kafka() -> Any:
    from mqlib.real import kafka

    return kafka.start_kafka()  # about 0.1 s; waiting keeps its retry if its port is taken


#: Column name -> (experiment module under ``mqlib.real.scripts``, a function that starts the
#: server and returns it, running or still starting up).
BROKERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "NATS JetStream": ("jetstream", _jetstream),
    "RabbitMQ": ("rabbitmq", _rabbitmq),
    "Amazon SQS (moto)": ("sqs", _sqs),
    "Redis Streams (Valkey)": ("redis_streams", _redis),
    "Kafka protocol (Tansu)": ("kafka", _kafka),
}


@dataclass(frozen=True)
class Column:
    """One broker's results: its cells, or the reason it has none; timings in seconds."""

    broker: str
    cells: dict[str, Cell] = field(default_factory=dict)
    note: str | None = None
    startup_seconds: float | None = None
    run_seconds: float | None = None

    def text(self, row: str) -> str:
        """The cell text of ``row`` (a name from :data:`ROWS`), or the column's note."""
        _validate.text("row", row)
        if self.note is not None:
            return self.note
        cell = self.cells.get(row)
        return cell.text if cell is not None else "(not observed)"


@dataclass(frozen=True)
class Comparison:
    """The comparison table: :data:`ROWS` by broker columns. Renders as HTML in Jupyter."""

    columns: list[Column]
    seconds: float = 0.0

    def column(self, broker: str) -> Column:
        for col in self.columns:
            if col.broker == broker:
                return col
        raise KeyError(f"broker must be one of {[c.broker for c in self.columns]}, got {broker!r}")

    def rows(self) -> list[list[str]]:
        """The table as text: a header row, then one row per :data:`ROWS` entry."""
        return [["", *(c.broker for c in self.columns)]] + [
            [row, *(c.text(row) for c in self.columns)] for row in ROWS
        ]

    def to_markdown(self) -> str:
        def esc(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        header, *body = self.rows()
        lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        header, *body = self.rows()
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = "".join(
            "<tr><th>"
            + html.escape(row[0])
            + "</th>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in row[1:])
            + "</tr>"
            for row in body
        )
        return (
            '<table class="broker-comparison"><thead><tr>'
            f"{head}</tr></thead><tbody>{rows}</tbody></table>"
        )

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return self.to_markdown()


def side_by_side(simulated: Any, real: Any, broker: str) -> str:
    """Two work-queue runs (:class:`~mqlib.real.differential.QueueOutcome`) row by row.

    Like :func:`mqlib.real.differential.side_by_side`, with the real broker's name as the
    heading: each receive as ``who: message #count ACK``, whether the rows agree, and what each
    run left in its queue.
    """
    from mqlib.real.differential import QueueOutcome

    if not isinstance(simulated, QueueOutcome) or not isinstance(real, QueueOutcome):
        raise TypeError(
            "simulated and real must be QueueOutcome objects, got "
            f"{type(simulated).__name__} and {type(real).__name__}"
        )
    _validate.text("broker", broker)

    def cell(d: Any) -> str:
        if d is None:
            return "-"
        if d.message is None:
            return f"{d.who}: (nothing)"
        return f"{d.who}: {d.message} #{d.count} {'ACK' if d.acked else 'no ACK'}"

    lines = [f"{'simulator':28} {broker:28} same?"]
    rows = max(len(simulated.deliveries), len(real.deliveries))
    for i in range(rows):
        a = simulated.deliveries[i] if i < len(simulated.deliveries) else None
        b = real.deliveries[i] if i < len(real.deliveries) else None
        lines.append(f"{cell(a):28} {cell(b):28} {'yes' if a == b else 'NO'}")
    lines.append(f"left in the queue: simulator {simulated.remaining}, {broker} {real.remaining}")
    return "\n".join(lines)


def simulator_column() -> Column:
    """What the course's engine does for each row, from running its chapter scenarios."""
    from mqlib import kafka_partition
    from mqlib.real.differential import CHAPTER_1, CHAPTER_6, simulate_script
    from mqlib.scenarios.backpressure import compare_modes
    from mqlib.scenarios.guarantees import compare_guarantees

    started = time.monotonic()
    ch1 = simulate_script(CHAPTER_1)
    ch6 = simulate_script(CHAPTER_6)
    back = [d for d in ch1.deliveries if d.message is not None and d.count > 1][0]
    poison = [d.count for d in ch6.deliveries if d.message == "m3"]
    dead = ch6.dead_letters[0]
    rows = {row["guarantee"]: row for row in compare_guarantees()}
    partitions = {key: kafka_partition(key, 4) for key in ("42", "43", "44")}
    modes = compare_modes(seconds=60)
    losses = {
        mode: r["state"]["rejected"] + sum(r["state"]["dropped"].values())
        for mode, r in modes.items()
    }
    cells = {
        "unit of delivery": Cell(
            f"a message, one per receive ({len(ch1.deliveries)} receives in chapter 1's script)",
            {"deliveries": len(ch1.deliveries)},
        ),
        "what triggers redelivery": Cell(
            f"the visibility timeout ({CHAPTER_1.visibility_timeout} s): {back.message} came "
            f"back to {back.who}",
            {"message": back.message, "who": back.who},
        ),
        "delivery counter": Cell(
            f"receive_count ({back.message}: {back.count} on its second receive)",
            {"count": back.count},
        ),
        "dead-letter mechanism": Cell(
            f"redrive policy: receive counts {', '.join(map(str, poison))}, then the DLQ with "
            f"receive count {dead.receive_count} and the last error",
            {"counts": poison, "dead": dead._asdict()},
        ),
        "deduplication": Cell(
            f"chapter 3: at-least-once processed {rows['at-least-once']['duplicates']} "
            f"duplicates, exactly-once (sequence numbers + processed ids) "
            f"{rows['exactly-once']['duplicates']}",
            {"rows": rows},
        ),
        "ordering unit": Cell(
            "the partition (Kafka's murmur2 partitioner: keys "
            + ", ".join(f"{k}→{p}" for k, p in partitions.items())
            + " of 4)",
            {"partitions": partitions},
        ),
        "overflow policies": Cell(
            "chapter 5 modes: "
            + ", ".join(f"{mode} (rejected or dropped {lost})" for mode, lost in losses.items())
            + " over 60 s at 10 msg/s in, 2 msg/s out",
            {"losses": losses},
        ),
    }
    return Column(SIMULATOR, cells, run_seconds=time.monotonic() - started)


def _stop(server: Any) -> None:
    stop = getattr(server, "stop", None)
    if stop is not None:
        stop()


def start_brokers(brokers: Iterable[str] | None = None) -> dict[str, Any]:
    """Launch the servers of :func:`compare_brokers` now, without waiting for any of them.

    A notebook calls this in a cell near its top, so that the servers boot (RabbitMQ takes
    seconds) while other cells run, and later passes the result as ``compare_brokers(servers=...)``.
    Returns ``{broker name: server}`` for the servers that could be launched, from this thread
    (their processes are tied to it); a broker whose program is not installed is left out, so
    ``compare_brokers`` reports it in its column. Stop them with ``server.stop()``; they also stop
    when the process exits.
    """
    names = list(BROKERS) if brokers is None else list(_validate.collection("brokers", brokers))
    for name in names:
        _validate.choice("brokers", name, BROKERS)
    started: dict[str, Any] = {}
    for name in names:
        try:
            started[name] = BROKERS[name][1]()
        except (FileNotFoundError, ModuleNotFoundError):
            continue
    return started


def _observe(name: str, module: Any, server: Any, started: float | None) -> Column:
    """Run one broker's experiments; ``started`` is None for a server the caller owns (its
    start-up time is then the server's own ``startup_seconds``, if it records one)."""
    ready = getattr(server, "wait_until_ready", None)
    if ready is not None:
        ready()
    own = getattr(server, "startup_seconds", None)
    up = own if started is None else time.monotonic() - started
    began = time.monotonic()
    try:
        cells = module.observe(server)
    finally:
        if started is not None:
            _stop(server)
    return Column(name, cells, startup_seconds=up, run_seconds=time.monotonic() - began)


def compare_brokers(
    brokers: Iterable[str] | None = None,
    *,
    simulator: bool = True,
    servers: Mapping[str, Any] | None = None,
) -> Comparison:
    """Run every broker's experiments and return the :class:`Comparison` table.

    ``brokers``: names from :data:`BROKERS` (default: all of them, in that order). Servers start
    concurrently and each broker's experiments run in its own thread; every server started here
    is stopped before this returns, also on error. ``servers`` maps broker names to servers you
    already run (a notebook's, a test session's): those are used as they are and left running.
    A missing server program or experiment module gives a column that says what to install or
    that the module is not there; any other failure is raised, since the table must not hide a
    broken experiment.
    """
    names = list(BROKERS) if brokers is None else list(_validate.collection("brokers", brokers))
    if not names:
        raise ValueError("brokers must name at least one broker, got an empty list")
    for name in names:
        _validate.choice("brokers", name, BROKERS)
    _validate.boolean("simulator", simulator)
    if servers is not None and not isinstance(servers, Mapping):
        raise TypeError(
            "servers must be a mapping of broker names to running servers, or None, got "
            f"{_validate._show(servers)} ({type(servers).__name__})"
        )
    given = dict(servers or {})
    for name in given:
        _validate.choice("servers", name, names)
    t0 = time.monotonic()
    columns: dict[str, Column] = {}
    running: dict[str, tuple[Any, Any, float | None]] = {}
    try:
        for name in names:
            module_name, factory = BROKERS[name]
            try:
                module = importlib.import_module(f"mqlib.real.scripts.{module_name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"mqlib.real.scripts.{module_name}":
                    raise
                columns[name] = Column(name, note=f"not run: no mqlib.real.scripts.{module_name}")
                continue
            if name in given:
                running[name] = (module, given[name], None)
                continue
            try:
                started = time.monotonic()
                running[name] = (module, factory(), started)
            except (FileNotFoundError, ModuleNotFoundError) as exc:
                columns[name] = Column(name, note=f"not run: {exc}")
        with concurrent.futures.ThreadPoolExecutor(max(1, len(running))) as pool:
            futures = {
                name: pool.submit(_observe, name, module, server, started)
                for name, (module, server, started) in running.items()
            }
            for name, future in futures.items():
                columns[name] = future.result()
    finally:
        for _module, server, started in running.values():
            if started is not None:
                with contextlib.suppress(ServerError):
                    _stop(server)
    ordered = [columns[name] for name in names]
    if simulator:
        ordered.append(simulator_column())
    return Comparison(ordered, seconds=time.monotonic() - t0)
