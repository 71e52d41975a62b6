"""A throwaway RabbitMQ node, for labs that talk to a real AMQP 0-9-1 broker with ``pika``.

This starts a *private* node of the ``rabbitmq-server`` that Debian's package installs
(``apt-get install rabbitmq-server``), never the system service: its own Erlang port mapper
(``epmd``), its own free ports on 127.0.0.1, its own database and log in a temporary directory, and
no plugins. It is ready when an AMQP handshake with the default ``guest`` user succeeds, which takes
about 5 seconds on two quiet cores (the Erlang VM loads and boots RabbitMQ's applications one by
one). To make that shorter the node runs from a *core home* in its temporary directory (see
:func:`_core_home`): RabbitMQ's own launcher scripts, copied, and a plugins folder that links only
the applications the broker needs, not the 50 others Debian installs beside them, all of which
the node otherwise reads at boot (about 2 s of the 6-8 s measured). Stopping sends SIGTERM
to the launcher script, which stops the Erlang VM (``beam.smp``) cleanly; the VM's PID is also read
from its PID file so that it cannot outlive the launcher; then ``epmd`` is stopped. Starting our
own ``epmd`` matters: without it, Erlang would start ``epmd -daemon``, which detaches itself and
stays running after the node has gone.

Typical use::

    from mqlib.real.rabbitmq import start_rabbitmq
    import pika

    rabbit = start_rabbitmq()                    # stopped by rabbit.stop() or at exit
    connection = pika.BlockingConnection(rabbit.parameters)
    channel = connection.channel()

or ``with RabbitMQServer() as rabbit: ...``. Each call of :meth:`RabbitMQServer.connect` opens a
new connection, so one script can play several consumers.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any

from mqlib.real._process import (
    HOST,
    LocalServer,
    ServerError,
    ServerNotFoundError,
    free_ports,
    start_or_skip,
)

__all__ = [
    "RabbitMQServer",
    "find_rabbitmq",
    "start_rabbitmq",
    "ServerError",
    "ServerNotFoundError",
]

#: Where Debian's package puts the launcher that runs in the foreground as the calling user.
#: (``/usr/sbin/rabbitmq-server`` is a wrapper that switches to the ``rabbitmq`` user.)
_LAUNCHER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")

INSTALL_HINT = (
    "RabbitMQ is not installed. On Debian or Ubuntu: `sudo apt-get install rabbitmq-server` "
    "(the course starts its own private node; the system service may stay disabled). "
    "Elsewhere see https://www.rabbitmq.com/docs/download."
)


def find_rabbitmq() -> tuple[Path, Path]:
    """Return the paths of the RabbitMQ launcher and of ``epmd``.

    Raises :class:`~mqlib.real._process.ServerNotFoundError` saying how to install RabbitMQ.
    """
    launcher = _LAUNCHER if _LAUNCHER.is_file() else None
    epmd = shutil.which("epmd") or next(
        (str(p) for p in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None
    )
    if launcher is None or epmd is None:
        raise ServerNotFoundError(INSTALL_HINT)
    return launcher, Path(epmd)


#: The launcher's neighbours that it sources (``rabbitmq-env``, ``rabbitmq-defaults``).
_SCRIPTS = ("rabbitmq-server", "rabbitmq-env", "rabbitmq-defaults")
_APPLICATIONS = re.compile(r"\{\s*(?:included_)?applications\s*,\s*\[([^\]]*)\]")


def _needed_applications(plugins: Path, roots: tuple[str, ...]) -> list[Path] | None:
    """The folders under ``plugins`` of ``roots`` and of every application they depend on."""
    folders = {}
    for folder in plugins.iterdir():
        name = folder.name.rsplit("-", 1)[0]
        if (folder / "ebin" / f"{name}.app").is_file():
            folders[name] = folder
    needed, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        if name in needed or name not in folders:
            continue  # seen, or an OTP application (found in Erlang's own lib folder)
        needed[name] = folders[name]
        text = (folders[name] / "ebin" / f"{name}.app").read_text(errors="replace")
        for listed in _APPLICATIONS.findall(text):
            todo += [n.strip() for n in listed.split(",") if n.strip()]
    if not all(root in needed for root in roots):
        return None
    return sorted(needed.values())


def _core_home(launcher: Path, target: Path) -> Path | None:
    """Make a RabbitMQ home in ``target`` that holds only the broker's core; return its launcher.

    RabbitMQ's launcher takes its home from its own location (``sbin/..``) and puts every
    application in ``<home>/plugins`` on the Erlang code path (``ERL_LIBS``), and the node reads
    that folder at boot: with the core alone, its debug log showed the time before its first
    line fall from 3.3 s to 1.7 s, and the pause before its boot steps from 3.5 s to 2.3 s.
    Here ``sbin`` holds copies of the launcher scripts, ``escript`` links to the real one, and
    ``plugins`` links only ``rabbit`` and ``rabbitmq_prelaunch`` with the applications their
    ``.app`` files name, transitively. Returns ``None`` (start from the installed home) when
    the installation does not look like that, e.g. a RabbitMQ of another layout.
    """
    sbin = launcher.resolve().parent
    home = sbin.parent
    plugins = home / "plugins"
    if not plugins.is_dir() or not all((sbin / name).is_file() for name in _SCRIPTS):
        return None
    needed = _needed_applications(plugins, ("rabbit", "rabbitmq_prelaunch"))
    if needed is None:
        return None
    (target / "sbin").mkdir(parents=True)
    (target / "plugins").mkdir()
    for name in _SCRIPTS:
        shutil.copy2(sbin / name, target / "sbin" / name)
    if (home / "escript").exists():
        (target / "escript").symlink_to(home / "escript")
    for folder in needed:
        (target / "plugins" / folder.name).symlink_to(folder)
    return target / "sbin" / "rabbitmq-server"


class RabbitMQServer(LocalServer):
    """A private RabbitMQ node on 127.0.0.1 with its own ``epmd``, free ports and temporary data.

    Parameters
    ----------
    startup_timeout:
        Seconds from launch until the AMQP port must answer a handshake (default 60: the node
        boots in about 5 s on two quiet cores, but took over 30 s on a 2-core machine at load 17).

    :attr:`port` is the AMQP port, :attr:`parameters` the ``pika.ConnectionParameters`` for it
    (user ``guest``, password ``guest``, which RabbitMQ accepts from loopback only).
    """

    name = "RabbitMQ"
    install_hint = INSTALL_HINT

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.launcher, self.epmd = find_rabbitmq()
        self.node: str | None = None

    def _launch(self, tmp_dir: Path) -> None:
        amqp, dist, epmd_port = free_ports(3)
        home, mnesia, logs = tmp_dir / "home", tmp_dir / "mnesia", tmp_dir / "log"
        for folder in (home, mnesia, logs):
            folder.mkdir()
        plugins = tmp_dir / "enabled_plugins"
        plugins.write_text("[].\n")  # no management UI: fewer ports, faster boot
        core = _core_home(self.launcher, tmp_dir / "rabbitmq_home")
        self.node = f"mqlib{amqp}@localhost"
        env = dict(os.environ)
        env.update(
            HOME=str(home),  # the Erlang cookie is created here
            ERL_EPMD_PORT=str(epmd_port),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(amqp),
            RABBITMQ_DIST_PORT=str(dist),
            RABBITMQ_MNESIA_BASE=str(mnesia),
            RABBITMQ_LOG_BASE=str(logs),
            RABBITMQ_LOGS="-",  # log to stdout, i.e. into our log file
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_CONF_ENV_FILE="/dev/null",  # ignore /etc/rabbitmq/rabbitmq-env.conf
            RABBITMQ_CONFIG_FILE=str(tmp_dir / "rabbitmq"),  # no such file: defaults only
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        if core is not None:  # plugin discovery reads this folder; the code path is <home>/plugins
            env["RABBITMQ_PLUGINS_DIR"] = str(core.parent.parent / "plugins")
        # epmd first and in the foreground, so that it is ours to stop (stopped last).
        self._spawn(
            [str(self.epmd), "-port", str(epmd_port), "-address", HOST],
            log_name="epmd.log",
            env=env,
        )
        # The core home's copy runs through sh (its #! line), so a temporary folder mounted
        # noexec does not stop it; it finds its home from its own path, $0.
        command = [shutil.which("sh") or "/bin/sh", str(core)] if core else [str(self.launcher)]
        self._spawn(command, log_name="rabbitmq.log", env=env, main_log=True)
        # The Erlang VM writes its PID here; stopped right after the launcher if still alive.
        self._watch_pid_file(mnesia / f"{self.node}.pid")
        self._port = amqp
        # Stop order: launcher (which stops beam.smp), then the PID file's process, then epmd.
        self._procs.reverse()

    def _ready(self) -> bool:
        # The start of an AMQP handshake by hand: the protocol header, answered by the broker's
        # Connection.Start method frame (frame type 1) once it accepts clients. (pika would do,
        # but it logs an ERROR line for every refused attempt while the node boots.)
        try:
            with socket.create_connection((HOST, self._port), timeout=1.0) as sock:
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                return sock.recv(1) == b"\x01"
        except OSError:
            return False

    def _parameters(self, *, timeout: float = 5.0) -> Any:
        import pika

        return pika.ConnectionParameters(
            host=HOST,
            port=self._port,
            credentials=pika.PlainCredentials("guest", "guest"),
            socket_timeout=timeout,
            blocked_connection_timeout=timeout,
            connection_attempts=1,
        )

    @property
    def pid(self) -> int:
        """Process id of the launcher script (its child is the Erlang VM)."""
        return self.pids[0]

    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:<port>/`` (for ``pika.URLParameters`` and others)."""
        return f"amqp://guest:guest@{HOST}:{self.port}/"

    @property
    def parameters(self) -> Any:
        """``pika.ConnectionParameters`` for this node."""
        self._require_running()
        return self._parameters()

    def connect(self) -> Any:
        """A new ``pika.BlockingConnection`` to this node (close it when done)."""
        import pika

        return pika.BlockingConnection(self.parameters)


def start_rabbitmq(
    *, wait: bool = True, missing_ok: bool = False, startup_timeout: float = 60.0
) -> RabbitMQServer | None:
    """Start a :class:`RabbitMQServer` and return it: the notebook-friendly form.

    It keeps running across cells until ``.stop()`` and is stopped when the kernel exits.
    ``wait=False`` returns while the node still boots (about 5 s), so other cells can run; the
    first use of an address waits for it. ``missing_ok=True``: without RabbitMQ installed,
    print how to install it and return ``None``, so the lab cell skips
    (:func:`~mqlib.real._process.start_or_skip`).
    """
    return start_or_skip(
        RabbitMQServer, wait=wait, missing_ok=missing_ok, startup_timeout=startup_timeout
    )
