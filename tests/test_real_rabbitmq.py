"""A private RabbitMQ node (Debian's rabbitmq-server) and the course's experiments on it.

One node serves the whole module (it takes seconds to boot); each experiment declares its own
queues. Every wait in the experiments is bounded and ends on the event it waits for.
"""

from __future__ import annotations

from pathlib import Path

import pika
import pytest

from mqlib.real import rabbitmq
from mqlib.real._process import ServerError, ServerNotFoundError, pid_alive
from mqlib.real.rabbitmq import RabbitMQServer
from mqlib.real.scripts import ROWS
from mqlib.real.scripts import rabbitmq as experiments


@pytest.fixture
def rabbit(rabbitmq_server):
    """The session's server (tests/conftest.py); each experiment declares its own queues."""
    return rabbitmq_server


def test_node_is_private_on_loopback_and_speaks_amqp(rabbit):
    assert rabbit.is_running and rabbit.startup_seconds is not None
    assert rabbit.url.startswith("amqp://guest:guest@127.0.0.1:")
    connection = pika.BlockingConnection(rabbit.parameters)
    try:
        channel = connection.channel()
        channel.queue_declare("smoke")
        channel.basic_publish(exchange="", routing_key="smoke", body=b"hello")
        method, _props, body = channel.basic_get("smoke", auto_ack=True)
        assert body == b"hello" and method.redelivered is False
    finally:
        connection.close()
    # its own epmd and a node name of its own, never the system service's rabbit@host
    assert rabbit.node.startswith("mqlib") and rabbit.node.endswith("@localhost")
    assert len(rabbit.pids) == 2 and all(pid_alive(pid) for pid in rabbit.pids)


def test_closed_channel_redelivers_to_the_other_consumer(rabbit):
    result = experiments.crash_before_ack(rabbit)
    assert result["deliveries"] == [("A", "m1", False), ("B", "m1", True)]
    assert result["left_in_queue"] == 0


def test_prefetch_bounds_unacked_and_keeps_order(rabbit):
    result = experiments.prefetch_window(rabbit, prefetch=2, messages=5)
    assert result["unacked"] == ["m1", "m2"]
    assert result["ready"] == 3
    assert result["order"] == ["m1", "m2", "m3", "m4", "m5"]


def test_quorum_delivery_limit_dead_letters_with_x_death(rabbit):
    result = experiments.poison_to_dead_letters(rabbit, delivery_limit=3)
    # delivered limit + 1 times; the header is absent on the first delivery
    assert result["delivery_counts"] == [None, 1, 2, 3]
    [dead] = result["dead"]
    assert dead["body"] == "order-3 (malformed)"
    assert dead["reason"] == "delivery_limit" and dead["count"] == 1
    assert dead["queue"] == "poison.orders"


@pytest.mark.parametrize(
    ("policy", "kept", "nacked", "dropped"),
    [
        ("drop-head", ["m4", "m5"], [], ["m1", "m2", "m3"]),
        ("reject-publish", ["m1", "m2"], ["m3", "m4", "m5"], []),
    ],
)
def test_max_length_overflow_policies(rabbit, policy, kept, nacked, dropped):
    result = experiments.overflow(rabbit, policy, max_length=2, messages=5)
    assert (result["kept"], result["nacked"], result["dropped"]) == (kept, nacked, dropped)


def test_fanout_copies_to_every_group_and_members_split(rabbit):
    result = experiments.fan_out(rabbit)
    got = result["deliveries"]
    for group in ("payment", "email", "analytics"):
        assert sorted(m for _, m in got[group]) == ["e1", "e2", "e3", "e4"]
    payment = {who for who, _ in got["payment"]}
    assert payment == {"payment-1", "payment-2"}


def test_no_broker_side_deduplication(rabbit):
    assert experiments.duplicate_publish(rabbit)["delivered_ids"] == ["charge-42", "charge-42"]


def test_observe_fills_every_row_from_evidence(rabbit):
    cells = experiments.observe(rabbit)
    assert set(cells) == set(ROWS)
    assert "redelivered=True" in cells["what triggers redelivery"].text
    assert "'delivery_limit'" in cells["dead-letter mechanism"].text
    assert cells["overflow policies"].evidence["drop-head"]["kept"] == ["m4", "m5"]


def test_node_runs_from_a_core_home_with_only_the_brokers_applications(rabbit):
    home = rabbit.tmp_dir / "rabbitmq_home"
    assert (home / "sbin" / "rabbitmq-server").is_file()
    linked = {p.name.rsplit("-", 1)[0] for p in (home / "plugins").iterdir()}
    assert {"rabbit", "rabbitmq_prelaunch", "rabbit_common", "ra", "osiris", "ranch"} <= linked
    installed = rabbit.launcher.resolve().parent.parent / "plugins"
    assert not linked & {"rabbitmq_management", "rabbitmq_mqtt", "rabbitmq_stream", "cowboy"}
    assert len(linked) < len(list(installed.iterdir())) / 2
    # the node really booted from it: the Erlang VM's code path is the core home's plugins
    beam = int((rabbit.tmp_dir / "mnesia" / f"{rabbit.node}.pid").read_text())
    raw = Path(f"/proc/{beam}/environ").read_bytes().split(b"\0")
    environ = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    assert environ["ERL_LIBS"] == str(home / "plugins")
    assert environ["RABBITMQ_PLUGINS_DIR"] == str(home / "plugins")


def test_core_home_falls_back_when_the_layout_is_unknown(tmp_path):
    launcher = tmp_path / "bin" / "rabbitmq-server"
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\n")
    assert rabbitmq._core_home(launcher, tmp_path / "home") is None  # no sbin/plugins beside it
    assert not (tmp_path / "home").exists()


def test_stop_leaves_no_process_and_a_second_start_is_fresh():
    server = RabbitMQServer()
    server.start(wait=False)
    pids = list(p.pid for p in server._procs)
    assert server.wait_until_ready() is server
    pid_file = server.tmp_dir / "mnesia" / f"{server.node}.pid"
    beam = int(pid_file.read_text())
    tmp = server.tmp_dir
    installed = server.launcher.resolve().parent.parent / "plugins"
    count = len(list(installed.iterdir()))
    server.stop()
    assert not any(pid_alive(pid) for pid in [*pids, beam])
    assert not tmp.exists()
    assert len(list(installed.iterdir())) == count  # removing the core home kept the links' targets
    server.stop()  # twice is fine
    with pytest.raises(ServerError, match="not running"):
        _ = server.port


def test_missing_rabbitmq_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(rabbitmq, "_LAUNCHER", tmp_path / "no-such-rabbitmq-server")
    with pytest.raises(ServerNotFoundError, match="apt-get install rabbitmq-server"):
        RabbitMQServer()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_bad_startup_timeout(bad):
    with pytest.raises(ValueError, match="startup_timeout"):
        RabbitMQServer(startup_timeout=bad)


def test_missing_rabbitmq_in_a_lab_cell_prints_and_returns_none(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(rabbitmq, "_LAUNCHER", tmp_path / "no-such-rabbitmq-server")
    assert rabbitmq.start_rabbitmq(missing_ok=True) is None
    assert "apt-get install rabbitmq-server" in capsys.readouterr().out
    with pytest.raises(TypeError, match="missing_ok"):
        rabbitmq.start_rabbitmq(missing_ok="yes")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: experiments.overflow(None, "drop-tail"), ValueError),
        (lambda: experiments.overflow(None, "drop-head", max_length=-1), ValueError),
        (lambda: experiments.prefetch_window(None, prefetch=0), ValueError),
        (lambda: experiments.poison_to_dead_letters(None, delivery_limit="3"), TypeError),
    ],
)
def test_experiments_check_their_arguments_first(call, error):
    with pytest.raises(error):
        call()
