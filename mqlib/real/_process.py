"""What every throwaway local broker needs: a free port, a child process, a bounded wait, a stop.

Every module of :mod:`mqlib.real` starts a real server as a child process of this Python: NATS
(:mod:`~mqlib.real.server`, :mod:`~mqlib.real.nats_cluster`), Tansu for Kafka
(:mod:`~mqlib.real.kafka`), RabbitMQ, moto for SQS and Valkey for Redis Streams. The life cycle
is the same for all of them, so it lives here once:

* :func:`free_port` asks the kernel for a port nobody uses on 127.0.0.1. (There is a short window
  between asking and the server binding it; a server that loses that race fails its start-up and
  says so, it never silently uses another port.)
* :func:`spawn` starts one child process in its own session, its output going to a log file,
  with :func:`die_with_parent` so that the kernel stops it even when this Python is killed.
* :func:`stop_processes` stops child processes: SIGTERM, a grace period, then SIGKILL.
* :func:`make_temp_dir` creates a server's temporary directory, marked with the PID of its owner
  so that a later start can delete the directories of owners that were killed.
* :func:`wait_for` polls a readiness check with a bound, and shows the server's log on failure.
* :class:`LocalServer` is the base class that puts these together. A subclass says how to
  *launch* its processes and how to tell that the server is *ready*; the base class runs them
  in a temporary directory, waits for readiness for at most ``startup_timeout`` seconds
  (showing the server's log when that fails or the process dies), and stops every process it
  started, by PID, on :meth:`~LocalServer.stop`, on leaving a ``with`` block, on garbage
  collection and at interpreter exit.
* :class:`ServerNotFoundError` is raised when a server's program is not installed; its message
  says what to install. :func:`start_or_skip` (the ``missing_ok=True`` of the ``start_*``
  functions) catches it and prints that message, so a lab cell skips instead of failing.

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
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
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
    "die_with_parent",
    "free_port",
    "free_ports",
    "make_temp_dir",
    "pid_alive",
    "record_startup",
    "spawn",
    "startup_records",
    "start_or_skip",
    "stop_processes",
    "tagged_broker_processes",
    "wait_for",
]

#: The only address any of these servers binds to.
HOST = "127.0.0.1"

_LOG_TAIL_CHARS = 4000
_STOP_GRACE_SECONDS = 10.0
_KILL_WAIT_SECONDS = 5.0  # SIGKILL cannot be refused; this only bounds the wait for the reaping
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


_STARTUPS: list[tuple[str, float, bool]] = []


def record_startup(name: str, seconds: float, *, upper_bound: bool = False) -> None:
    """Note that a server called ``name`` took ``seconds`` from launch to ready (see
    :func:`startup_records`). Called by every server when its readiness wait ends.

    ``upper_bound=True``: the server was already ready at its first check (it was started with
    ``wait=False`` and not needed until later), so it became ready at some time up to ``seconds``.
    """
    _validate.text("name", name)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
    _validate.boolean("upper_bound", upper_bound)
    _STARTUPS.append((name, float(seconds), upper_bound))


def startup_records() -> list[tuple[str, float, bool]]:
    """Every start-up this process has seen so far, oldest first: ``(name, seconds, upper_bound)``.

    ``benchmarks/bench_run_all.py`` reads it at the end of a notebook run to report how long each
    broker took from launch to ready (``upper_bound``: at most that long, see
    :func:`record_startup`)."""
    return list(_STARTUPS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is listening on right now.

    For servers that cannot pick their own port (Tansu), or whose ports must be known before
    they start (a cluster's route ports, which every node lists).
    """
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


def first_executable(candidates: Iterable[Path], on_path: str | None = None) -> Path | None:
    """The first of ``candidates`` that is an executable file; else the program ``on_path`` as
    found on ``PATH``; else ``None``."""
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(on_path) if on_path else None
    return Path(found) if found else None


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
    started: float | None = None,
    error: type[ServerError] = ServerError,
) -> float:
    """Poll ``check()`` until it returns true; return the seconds it took.

    Gives up ``timeout`` seconds after ``started`` (a ``time.monotonic()`` reading; default:
    now), or as soon as ``alive()`` returns an exit code (the process died), raising ``error``
    (a :class:`ServerError`) with ``what`` and the tail of ``log()``.
    """
    _validate.positive("timeout", timeout)
    if started is None:
        started = time.monotonic()
    deadline = started + timeout
    while True:
        if alive is not None:
            code = alive()
            if code is not None:
                tail = log() if log else ""
                raise error(f"{what}: the process exited (code {code}).\n{tail}")
        if check():
            return time.monotonic() - started
        if time.monotonic() > deadline:
            tail = log() if log else ""
            raise error(f"{what}: not ready within {timeout:g} s.\n{tail}")
        time.sleep(_POLL_SECONDS)


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
    notebook or test run that started it. Linux ties this to the *thread* that forked the child:
    when that thread ends, the child gets the signal although this process lives on. So
    :func:`spawn` forks from the main thread or from one long-lived spawner thread, never from a
    short-lived worker. Returns ``None`` elsewhere (there, only the normal clean-up runs).
    """
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    args: Sequence[str],
    *,
    log: IO[bytes],
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` as a child process whose stdout and stderr go to the open file ``log``.

    The child runs in its own session, so "interrupt kernel" in Jupyter or Ctrl-C in a terminal
    does not kill the server behind our back (the owner's ``stop()`` and exit hook do that), and
    with :func:`die_with_parent`, which covers an owner that is killed outright. An ``OSError``
    (no such program) reaches the caller, which knows what to install.
    """
    options: dict[str, Any] = {}
    if os.name == "nt":
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True
        options["preexec_fn"] = die_with_parent()

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            **options,
        )

    if threading.current_thread() is threading.main_thread() or _PRCTL is None:
        return popen()
    # A worker thread (mqlib.real.run's, a notebook's background experiment) may end long before
    # the server should: fork from the spawner thread, which lives as long as this process.
    return _Spawner.get().call(popen)


class _Spawner:
    """One daemon thread that forks children for callers on other threads (see :func:`spawn`).

    It is never joined, so it ends only with the process, and a parent-death signal tied to it
    fires only when this Python dies.
    """

    _instance: _Spawner | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import queue

        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="mqlib-spawner", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _Spawner:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    def _serve(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as error:  # handed to the caller, who re-raises it
                future.set_exception(error)

    def call(self, job: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()
        self._jobs.put((job, future))
        return future.result()


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """Stop child processes: SIGTERM to each live one, then SIGKILL what outstays ``grace``.

    All of them are signalled first and then waited for, so several nodes shut down side by
    side; callers that need an order (a launcher before its helpers) pass one process at a time.
    """
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=max(grace, _KILL_WAIT_SECONDS))


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
    grace: float = _STOP_GRACE_SECONDS,
) -> None:
    """Stop ``procs`` in order (SIGTERM; SIGKILL after ``grace``), and the PIDs in ``pid_files``.

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
            stop_processes([proc], grace)
            for pid in extra:  # whatever the launcher left behind goes before the next process
                if pid_alive(pid):
                    _stop_pid(pid, grace)
            extra = []
    finally:
        close_and_remove(logs, tmp_dir)


def close_and_remove(logs: Sequence[IO[bytes] | None], tmp_dir: str) -> None:
    """Close the log files and delete a server's temporary directory (the last step of a stop)."""
    for handle in logs:
        if handle is not None:
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


def make_temp_dir(name: str) -> str:
    """Create the temporary directory ``mqlib-<name>-*`` of a server about to start.

    It holds the server's data and logs and is deleted when the server stops. It names its
    owner (this process) in ``owner.pid``; first, the directories of owners that were killed
    before they could clean up are deleted.
    """
    _sweep_orphaned_dirs()
    tmp_dir = tempfile.mkdtemp(prefix=f"mqlib-{name.lower().replace(' ', '-')}-")
    (Path(tmp_dir) / _OWNER_FILE).write_text(str(os.getpid()))
    return tmp_dir


def start_or_skip(
    server_class: type[LocalServer], *, wait: bool, missing_ok: bool, **options: Any
) -> Any:
    """Create a ``server_class(**options)`` and start it: the body of the ``start_*`` functions.

    ``missing_ok=True``: if the server program is not installed, print what to install and
    return ``None`` instead of raising, so a lab cell can skip and the notebook keep going.
    """
    _validate.boolean("missing_ok", missing_ok)
    try:
        server = server_class(**options)
    except ServerNotFoundError as missing:
        if not missing_ok:
            raise
        print(f"Skipping the {server_class.name} lab: {missing}")
        return None
    return server.start(wait=wait)


def _lost_port_race(log: str) -> bool:
    lowered = log.lower()
    return "eaddrinuse" in lowered or "address already in use" in lowered


class LocalServer:
    """Base class of a broker run as child processes on 127.0.0.1 in a temporary directory.

    A subclass sets :attr:`name` and :attr:`install_hint` (and, if it has its own exception
    classes, :attr:`error` and :attr:`not_found_error`; :attr:`stop_grace` for a server that
    takes longer or shorter to shut down), and implements:

    * :meth:`_launch` (start the processes with :meth:`_spawn`; the first one's log is the one
      shown when start-up fails) and
    * :meth:`_ready` (one cheap check, polled until true).

    ``startup_timeout`` bounds the wait for readiness. A server can be started again after
    :meth:`stop`; it then gets a fresh, empty directory and fresh ports.
    """

    #: Shown in messages and in the name of the temporary directory.
    name = "server"
    #: What to install when the program cannot be executed.
    install_hint = ""
    #: Raised when the server is not running, dies or is not ready in time.
    error: type[ServerError] = ServerError
    #: Raised when the server's program cannot be executed.
    not_found_error: type[ServerNotFoundError] = ServerNotFoundError
    #: Seconds a process gets between SIGTERM and SIGKILL.
    stop_grace: float = _STOP_GRACE_SECONDS

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
        self._port: int | None = None  # set by _launch (or _ready, if the server picks it)
        #: Seconds from launching the process to the first successful readiness check.
        self.startup_seconds: float | None = None
        self.ready_at_first_check = False
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
        """Start one child process (see :func:`spawn`), its output going to ``<tmp>/<log_name>``.

        Processes are stopped in the order of :attr:`_procs`, the order they were spawned in
        unless :meth:`_launch` reorders the list.
        """
        assert self._tmp_dir is not None
        path = Path(self._tmp_dir) / log_name
        handle = open(path, "wb")  # noqa: SIM115 - closed by _terminate
        self._logs.append(handle)
        if main_log or self._log_path is None:
            self._log_path = path
        try:
            proc = spawn(args, log=handle, env=env, cwd=self._tmp_dir)
        except OSError as exc:
            raise self.not_found_error(
                f"Could not execute {args[0]}: {exc}. {self.install_hint}".rstrip()
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
            raise self.error(f"The {self.name} server is not running; call start() first.")
        code = self._exit_code()
        if code is not None:
            raise self.error(
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
    def port(self) -> int:
        """The port on 127.0.0.1 that clients connect to (a free one, new on every start)."""
        self._require_running()
        assert self._port is not None
        return self._port

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
        _validate.boolean("_retry", _retry)
        if self._procs and self._exit_code() is None:
            return self
        if self._procs:  # it died on its own; clean up before starting afresh
            self.stop()
        self._tmp_dir = make_temp_dir(self.name)
        self._last_log = ""
        self._finalizer = weakref.finalize(
            self,
            _terminate,
            self._procs,
            self._pid_files,
            self._logs,
            self._tmp_dir,
            self.stop_grace,
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
            raise self.error(f"The {self.name} server is not running; call start() first.")
        if self.startup_seconds is not None:
            return self
        checks = 0

        def ready() -> bool:
            nonlocal checks
            checks += 1
            return self._ready()

        try:
            wait_for(
                ready,
                timeout=self.startup_timeout,
                what=f"{self.name} start-up",
                alive=self._exit_code,
                log=self._log_tail,
                started=self._launched,
                error=self.error,
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - self._launched
        #: True when the server was ready at its very first check: started with ``wait=False``
        #: and first needed later, it became ready at some time up to ``startup_seconds``.
        self.ready_at_first_check = checks == 1
        record_startup(self.name, self.startup_seconds, upper_bound=self.ready_at_first_check)
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
        self._port = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
