"""A throwaway Amazon SQS endpoint, served by moto, for labs that use ``boto3``.

Amazon SQS is a managed service: there is no SQS server to download. `moto
<https://docs.getmoto.org/>`_ is a widely used *emulator* of AWS APIs, and its server mode answers
the same HTTP API as SQS, so ``boto3`` code written for AWS runs against it unchanged apart from
``endpoint_url``. This module runs ``moto_server`` (from ``pip install "moto[server]"``) as a
child process on 127.0.0.1 and a free port; it is ready when ``/moto-api/`` answers (under a
second), and keeps everything in memory, so each start is an empty account.

An emulator is not the service. Where moto and AWS's documentation disagree, the course shows
AWS's documented rule; two differences that matter in the labs:

* **Deleting with a stale receipt handle.** AWS documents that if a message was received again,
  a ``DeleteMessage`` with the *older* receipt handle succeeds but the message "might not be
  deleted"; moto deletes it.
* **StartMessageMoveTask** (the DLQ redrive back to the source queue) is not implemented by moto.

Typical use::

    from mqlib.real.sqs import start_sqs

    sqs_server = start_sqs()           # stopped by sqs_server.stop() or at exit
    sqs = sqs_server.client()          # boto3 SQS client with endpoint_url set
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
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

__all__ = [
    "REGION",
    "SQSServer",
    "find_moto_server",
    "start_sqs",
    "ServerError",
    "ServerNotFoundError",
]

#: The region the emulated account lives in (any region works; the client must name the same).
REGION = "us-east-1"

INSTALL_HINT = (
    "moto's server is not installed. Install it into this environment with "
    '`python -m pip install "moto[server]" boto3`.'
)


def find_moto_server() -> Path:
    """Return the ``moto_server`` script of this Python's environment (or from PATH).

    Raises :class:`~mqlib.real._process.ServerNotFoundError` saying how to install it.
    """
    found = first_executable([Path(sys.executable).with_name("moto_server")], "moto_server")
    if found is None:
        raise ServerNotFoundError(INSTALL_HINT)
    return found


class SQSServer(LocalServer):
    """``moto_server`` on 127.0.0.1 and a free port: an in-memory SQS emulator.

    Parameters
    ----------
    startup_timeout:
        Seconds to wait for ``/moto-api/`` to answer (default 20).

    :attr:`port` is the HTTP port of the emulated API, :attr:`endpoint_url` its address.
    """

    name = "moto"
    install_hint = INSTALL_HINT

    def __init__(self, *, startup_timeout: float = 20.0) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.binary = find_moto_server()

    def _launch(self, tmp_dir: Path) -> None:
        self._port = free_port()
        env = dict(os.environ)
        # boto inside moto must never look for real credentials or a real endpoint.
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        env.update(AWS_DEFAULT_REGION=REGION)
        self._spawn(
            [str(self.binary), "-H", HOST, "-p", str(self._port)], log_name="moto.log", env=env
        )

    def _ready(self) -> bool:
        # urllib honours http_proxy; the check must never leave the machine.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{HOST}:{self._port}/moto-api/", timeout=1.0) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: pass it to ``boto3.client("sqs", endpoint_url=...)``."""
        return f"http://{HOST}:{self.port}"

    def client(self, **kwargs: Any) -> Any:
        """A ``boto3`` SQS client for this endpoint (dummy credentials, region us-east-1)."""
        import boto3

        kwargs.setdefault("region_name", REGION)
        kwargs.setdefault("aws_access_key_id", "testing")
        kwargs.setdefault("aws_secret_access_key", "testing")
        return boto3.client("sqs", endpoint_url=self.endpoint_url, **kwargs)


def start_sqs(
    *, wait: bool = True, missing_ok: bool = False, startup_timeout: float = 20.0
) -> SQSServer | None:
    """Start a :class:`SQSServer` and return it: the notebook-friendly form.

    It keeps running across cells until ``.stop()`` and is stopped when the kernel exits.
    ``wait=False`` returns at once (the first use waits for ``/moto-api/``).
    ``missing_ok=True``: without ``moto[server]``, print how to install it and return ``None``,
    so the lab cell skips (:func:`~mqlib.real._process.start_or_skip`).
    """
    return start_or_skip(
        SQSServer, wait=wait, missing_ok=missing_ok, startup_timeout=startup_timeout
    )
