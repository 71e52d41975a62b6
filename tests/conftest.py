"""Shared fixtures: the built book (built once per test session) and a headless Chromium.

Also the guard against leaked brokers: the session tags its environment with a value of its own
(``MQLIB_TEST_SESSION``), which every process it starts inherits (notebook kernels, the servers
they start, RabbitMQ's ``beam.smp`` and ``epmd``), and at the end it fails if any broker process
carrying that tag is still running, even one that was orphaned and re-parented.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from mqlib.real._process import SESSION_ENV_VAR, tagged_broker_processes

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

#: This session's tag, inherited by every process it starts (see the module docstring).
SESSION_TAG = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
os.environ[SESSION_ENV_VAR] = SESSION_TAG
#: How long a broker may take to exit after the last test before it counts as leaked.
LEAK_GRACE_SECONDS = 15.0


def leaked_brokers(grace: float = LEAK_GRACE_SECONDS) -> dict[int, str]:
    """Broker processes of this session still alive after waiting up to ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        alive = tagged_broker_processes(SESSION_TAG)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


# -- real brokers shared by the test session (each boots once; every test uses fresh queues) ------


@pytest.fixture(scope="session")
def rabbitmq_server():
    """A private RabbitMQ node for the whole session (it takes seconds to boot)."""
    from mqlib.real.rabbitmq import RabbitMQServer

    with RabbitMQServer() as server:
        yield server


@pytest.fixture(scope="session")
def sqs_server():
    """moto's SQS emulator for the whole session."""
    from mqlib.real.sqs import SQSServer

    with SQSServer() as server:
        yield server


@pytest.fixture(scope="session")
def valkey_server():
    """A Valkey server (Redis Streams) for the whole session."""
    from mqlib.real.redis_streams import RedisServer

    with RedisServer() as server:
        yield server


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a broker process started by this session outlives it (then stop it)."""
    leaked = leaked_brokers()
    if not leaked:
        return
    lines = [f"  pid {pid}: {cmd}" for pid, cmd in sorted(leaked.items())]
    message = "broker processes started by this test session outlived it:\n" + "\n".join(lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message, file=sys.stderr)
    for pid in leaked:  # ours by the tag: stop them so the machine is clean for the next run
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the whole book the way the README says, into a temporary folder; return its html dir.

    Warnings are errors (-W), references are checked (-n), and every notebook is executed.
    """
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(jupyter_book),
            "build",
            "--all",
            "-W",
            "-n",
            "--keep-going",
            "--path-output",
            str(out),
            str(ROOT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    elapsed = time.perf_counter() - started
    log = result.stdout + result.stderr
    (out / "build.log").write_text(log)
    assert result.returncode == 0, f"book build failed after {elapsed:.0f} s:\n{log[-6000:]}"
    print(f"book built in {elapsed:.1f} s")
    return out / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on 127.0.0.1 and a free port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def book_url(built_book):
    with serve(built_book) as url:
        yield url


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    home = tmp_path_factory.mktemp("chromium-home")
    os.environ.setdefault("XDG_CONFIG_HOME", str(home / "config"))
    os.environ.setdefault("XDG_CACHE_HOME", str(home / "cache"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
