"""What every throwaway local broker needs: a free port, a child process, a bounded wait, a stop.

:mod:`mqlib.real.rabbitmq`, :mod:`mqlib.real.sqs` and :mod:`mqlib.real.redis_streams` start a real
server as a child process of this Python, exactly as :mod:`mqlib.real.server` does for NATS. The
life cycle is the same for all of them, so it lives here once:

* :func:`free_port` asks the kernel for a port nobody uses on 127.0.0.1. (There is a short window
  between asking and the server binding it; a server that loses that race fails its start-up and
  says so, it never silently uses another port.)
* :class:`LocalServer` is the base class. A subclass says how to *launch* its processes and how to
  tell that the server is *ready*; the base class runs them in a temporary directory, waits for
  readiness for at most ``startup_timeout`` seconds (showing the server's log when that fails or
  the process dies), and stops every process it started, by PID, on :meth:`~LocalServer.stop`, on
  leaving a ``with`` block, on garbage collection and at interpreter exit.
* :class:`ServerNotFoundError` is raised when a server's program is not installed; its message
  says what to install. Lab cells catch it and print that message instead of failing.

Nothing here knows about messaging: it is process management only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from mqlib import _validate

__all__ = [
    "BROKER_PROGRAMS",
    "HOST",
    "SESSION_ENV_VAR",
    "LocalServer",
    "ServerError",
    "ServerNotFoundError",
    "free_port",
    "free_ports",
    "pid_alive",
    "tagged_broker_processes",
    "wait_for",
]

#: The only address any of these servers binds to.
HOST = "127.0.0.1"

_LOG_TAIL_CHARS = 4000
_STOP_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.02


#: Environment variable a test session sets to a value of its own; every process it starts, and
#: every process those start, inherit it, so leftovers can be found even after they were orphaned.
SESSION_ENV_VAR = "MQLIB_TEST_SESSION"

#: Process names (``/proc/<pid>/comm``) of the brokers the course starts, and their helpers.
BROKER_PROGRAMS = frozenset(
    {"beam.smp", "epmd", "erl_child_setup", "inet_gethost", "rabbitmq-server", "valkey-server",
     "redis-server",
     "tansu", "nats-server", "moto_server"}
)  # fmt: skip


class ServerError(RuntimeError):
    """A local broker could not be started, died, or is not running."""


class ServerNotFoundError(ServerError, FileNotFoundError):
    """The broker's program is not installed; the message says how to install it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is listening on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all held open while choosing)."""
    _validate.integer("count", count, minimum=1, maximum=100)
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def pid_alive(pid: int) -> bool:
    """Is there a process with this id (not yet reaped)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours
        return True
    return True


def tagged_broker_processes(tag: str) -> dict[int, str]:
    """Broker processes whose environment has ``MQLIB_TEST_SESSION=<tag>``: ``{pid: command}``.

    Reads ``/proc`` (Linux); on other systems it finds nothing. A process that is gone or not
    readable between listing and reading is skipped. The calling process is never included.
    """
    _validate.text("tag", tag)
    marker = f"{SESSION_ENV_VAR}={tag}".encode()
    found: dict[int, str] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if comm not in BROKER_PROGRAMS and "moto_server" not in cmdline:
                continue
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":  # a zombie has exited already; only its parent's wait() is missing
            found[int(entry.name)] = cmdline.strip()[:200]
    return found


def wait_for(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], int | None] | None = None,
    log: Callable[[], str] | None = None,
) -> float:
    """Poll ``check()`` until it returns true; return the seconds it took.

    Gives up after ``timeout`` seconds, or as soon as ``alive()`` returns an exit code (the
    process died), raising :class:`ServerError` with ``what`` and the tail of ``log()``.
    """
    _validate.positive("timeout", timeout)
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if alive is not None:
            code = alive()
            if code is not None:
                tail = log() if log else ""
                raise ServerError(f"{what}: the process exited (code {code}).\n{tail}")
        if check():
            return time.monotonic() - started
        if time.monotonic() > deadline:
            tail = log() if log else ""
            raise ServerError(f"{what}: not ready within {timeout:g} s.\n{tail}")
        time.sleep(_POLL_SECONDS)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGTERM when this process dies (Linux).

    ``atexit`` and ``weakref.finalize`` cover a normal exit, but not a process that is killed:
    nbval and Jupyter Book stop notebook kernels with SIGKILL, and a server started in such a
    kernel would live on. Linux's ``PR_SET_PDEATHSIG`` asks the kernel to signal the child when
    its parent goes. (The signal is tied to the thread that starts the server, so start servers
    from the main thread, as notebooks and tests do.) Elsewhere this returns ``None``.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _stop_pid(pid: int, grace: float) -> None:
    """SIGTERM a process we do not hold a Popen for, then SIGKILL it if it outstays ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _terminate(
    procs: list[subprocess.Popen[bytes]],
    pid_files: list[Path],
    logs: list[IO[bytes]],
    tmp_dir: str,
) -> None:
    """Stop ``procs`` in order (SIGTERM, then SIGKILL after a grace) and the PIDs in ``pid_files``.

    A module-level function, not a method: ``weakref.finalize`` must not hold the server object.
    The PID files name processes that a launcher script started and that may outlive it (RabbitMQ's
    ``beam.smp``); they are read before the temporary directory goes.
    """
    try:
        extra = []
        for path in pid_files:
            with contextlib.suppress(OSError, ValueError):
                extra.append(int(path.read_text().strip()))
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=_STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=_STOP_GRACE_SECONDS)
            for pid in extra:  # whatever the launcher left behind goes before the next process
                if pid_alive(pid):
                    _stop_pid(pid, _STOP_GRACE_SECONDS)
            extra = []
    finally:
        for handle in logs:
            with contextlib.suppress(OSError):
                handle.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)


_OWNER_FILE = "owner.pid"


def _sweep_orphaned_dirs() -> None:
    """Delete temporary directories left by servers whose Python process was killed.

    Each directory names the process that made it in ``owner.pid``; when that process is gone,
    its servers went with it (see :func:`_die_with_parent`) and the directory is rubbish.
    """
    for folder in Path(tempfile.gettempdir()).glob("mqlib-*"):
        try:
            owner = int((folder / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if owner != os.getpid() and not pid_alive(owner):
            shutil.rmtree(folder, ignore_errors=True)


def _lost_port_race(log: str) -> bool:
    lowered = log.lower()
    return "eaddrinuse" in lowered or "address already in use" in lowered


class LocalServer:
    """Base class of a broker run as child processes on 127.0.0.1 in a temporary directory.

    A subclass sets :attr:`name` and :attr:`install_hint`, and implements:

    * :meth:`_launch` (start the processes with :meth:`_spawn`; the first one's log is the one
      shown when start-up fails) and
    * :meth:`_ready` (one cheap check, polled until true).

    ``startup_timeout`` bounds the wait for readiness. A server can be started again after
    :meth:`stop`; it then gets a fresh, empty directory and fresh ports.
    """

    name = "server"
    install_hint = ""

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        _validate.positive("startup_timeout", startup_timeout)
        self.startup_timeout = float(startup_timeout)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._pid_files: list[Path] = []
        self._logs: list[IO[bytes]] = []
        self._tmp_dir: str | None = None
        self._log_path: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._last_log = ""
        #: Seconds from launching the process to the first successful readiness check.
        self.startup_seconds: float | None = None
        self._launched = 0.0

    # -- for subclasses ----------------------------------------------------------------------

    def _launch(self, tmp_dir: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _ready(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _spawn(
        self,
        args: Sequence[str],
        *,
        log_name: str,
        env: dict[str, str] | None = None,
        main_log: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start one child process, its output going to ``<tmp>/<log_name>``; stopped in order."""
        assert self._tmp_dir is not None
        path = Path(self._tmp_dir) / log_name
        handle = open(path, "wb")  # noqa: SIM115 - closed by _terminate
        self._logs.append(handle)
        if main_log or self._log_path is None:
            self._log_path = path
        try:
            proc = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._tmp_dir,
                # Own session: "interrupt kernel" in Jupyter or Ctrl-C in a terminal does not
                # kill the server behind our back; stop() and the exit hook do that, and
                # _die_with_parent covers a kernel that is killed outright.
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            raise ServerNotFoundError(
                f"Could not execute {args[0]}: {exc}. {self.install_hint}"
            ) from exc
        self._procs.append(proc)
        return proc

    def _watch_pid_file(self, path: Path) -> None:
        """Also stop the process whose PID a launcher writes to ``path``."""
        self._pid_files.append(path)

    def _exit_code(self) -> int | None:
        for proc in self._procs:
            code = proc.poll()
            if code is not None:
                return code
        return None

    # -- state -------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`, while every process lives."""
        return bool(self._procs) and self._exit_code() is None

    def _require_running(self) -> None:
        if not self._procs:
            raise ServerError(f"The {self.name} server is not running; call start() first.")
        code = self._exit_code()
        if code is not None:
            raise ServerError(
                f"The {self.name} server exited unexpectedly (code {code}).\n{self._log_tail()}"
            )
        if self.startup_seconds is None:  # started with wait=False: wait now
            self.wait_until_ready()

    @property
    def pids(self) -> list[int]:
        """Process ids of the processes this object started (launcher first)."""
        self._require_running()
        return [proc.pid for proc in self._procs]

    @property
    def pid(self) -> int:
        """Process id of the server's main process."""
        return self.pids[-1]

    @property
    def tmp_dir(self) -> Path:
        """The temporary directory holding the server's data and logs (deleted on stop)."""
        self._require_running()
        assert self._tmp_dir is not None
        return Path(self._tmp_dir)

    def log(self) -> str:
        """The server's log output so far (after :meth:`stop`, the log of the last run)."""
        if self._log_path is not None and self._log_path.exists():
            with contextlib.suppress(OSError):
                self._last_log = self._log_path.read_text(errors="replace")
        return self._last_log

    def _log_tail(self) -> str:
        text = self.log().strip()
        if not text:
            return "(the server wrote nothing to its log)"
        if len(text) > _LOG_TAIL_CHARS:
            text = "..." + text[-_LOG_TAIL_CHARS:]
        return f"{self.name} log:\n{text}"

    def __repr__(self) -> str:
        if not self.is_running:
            state = "stopped"
        else:
            state = "ready" if self.startup_seconds is not None else "starting"
            state += " pids=" + ",".join(str(proc.pid) for proc in self._procs)
        return f"<{type(self).__name__} {state}>"

    # -- life cycle --------------------------------------------------------------------------

    def start(self, *, wait: bool = True, _retry: bool = True) -> Any:
        """Start the server and wait until it is ready. Returns ``self``.

        With ``wait=False`` it only launches the processes and returns at once, so a slow server
        (RabbitMQ needs seconds) boots while other work goes on; the first use of an address
        property, or :meth:`wait_until_ready`, then waits for it.

        Raises :class:`ServerError` (with the server's log) when a process exits during start-up
        or the server is not ready within ``startup_timeout``. Calling it on a running server
        does nothing.
        """
        _validate.boolean("wait", wait)
        if self._procs and self._exit_code() is None:
            return self
        if self._procs:  # it died on its own; clean up before starting afresh
            self.stop()
        _sweep_orphaned_dirs()
        self._tmp_dir = tempfile.mkdtemp(prefix=f"mqlib-{self.name.lower().replace(' ', '-')}-")
        (Path(self._tmp_dir) / _OWNER_FILE).write_text(str(os.getpid()))
        self._finalizer = weakref.finalize(
            self, _terminate, self._procs, self._pid_files, self._logs, self._tmp_dir
        )
        self.startup_seconds = None
        try:
            self._launched = time.monotonic()
            self._launch(Path(self._tmp_dir))
        except BaseException:
            self.stop()
            raise
        if wait:
            try:
                self.wait_until_ready()
            except ServerError as exc:
                # Another program took one of our free ports between choosing and binding it:
                # choose again, once.
                if not _retry or not _lost_port_race(str(exc)):
                    raise
                return self.start(wait=True, _retry=False)
        return self

    def wait_until_ready(self) -> Any:
        """Block until the started server answers (bounded by ``startup_timeout``); ``self``.

        If it does not come up, the server is stopped and :class:`ServerError` shows its log.
        """
        if not self._procs:
            raise ServerError(f"The {self.name} server is not running; call start() first.")
        if self.startup_seconds is not None:
            return self
        try:
            remaining = self.startup_timeout - (time.monotonic() - self._launched)
            wait_for(
                self._ready,
                timeout=max(remaining, _POLL_SECONDS),
                what=f"{self.name} start-up",
                alive=self._exit_code,
                log=self._log_tail,
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - self._launched
        return self

    def stop(self) -> None:
        """Stop every process this server started and delete its directory. Safe to repeat."""
        self.log()  # keep the last log readable after the files are gone
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once; later calls are no-ops
        self._finalizer = None
        self._procs = []
        self._pid_files = []
        self._logs = []
        self._tmp_dir = None
        self._log_path = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
