"""A real replicated broker: three ``nats-server`` processes clustered on 127.0.0.1.

Chapter 7 explains replication with a model (:mod:`mqlib.models.cluster`); this module lets a
learner do it to a real cluster. :class:`NatsCluster` starts ``nodes`` JetStream servers (``n1``,
``n2``, ``n3``) that find each other over cluster routes on loopback, each with its own client,
monitoring and route port (all free ports on 127.0.0.1) and its own store directory under one
temporary folder. A stream created with ``num_replicas=3`` is then kept by all three, with one of
them its *leader* (JetStream uses Raft per stream); ``num_replicas=1`` keeps it on one node only.

The cluster is a tool for experiments, so it offers what an operator's hands would do:

* :meth:`kill` sends **SIGKILL** to one node (a crash: no shutdown, no goodbye to the peers);
* :meth:`restart` starts that node again **on its old store**, as a machine that reboots would;
* :meth:`varz` reads a node's ``/varz`` monitoring page (for example ``sync_interval``).

``sync_interval`` is passed into every node's ``jetstream {}`` block: ``None`` keeps the server's
default (the store is fsynced every 2 minutes), ``"always"`` fsyncs every write.

Messaging code stays the learner's: connect with ``nats.connect(servers=cluster.urls)`` and use
nats-py as usual. Like the single server (:mod:`mqlib.real.server`), every process listens only on
127.0.0.1 and is stopped (and its files deleted) on :meth:`stop`, on leaving a ``with`` block, on
garbage collection and at interpreter exit. The process handling (free ports, starting a node so
that it dies with this Python, the bounded readiness wait, SIGTERM then SIGKILL, the temporary
folder) is :mod:`mqlib.real._process`'s; a cluster is not a
:class:`~mqlib.real._process.LocalServer` only because its nodes are killed and restarted one by
one.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mqlib import _validate
from mqlib.real._process import (
    close_and_remove,
    free_ports,
    make_temp_dir,
    record_startup,
    spawn,
    stop_processes,
    wait_for,
)
from mqlib.real.server import HOST, NatsServerError, find_nats_server

__all__ = ["NatsCluster", "start_cluster"]

_LOG_TAIL_CHARS = 3000
_STOP_GRACE_SECONDS = 5.0


@dataclass
class _Node:
    name: str
    client_port: int
    http_port: int
    route_port: int
    config: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None


def _stop_all(nodes: list[_Node], tmp_dir: str) -> None:
    """SIGTERM every live node, SIGKILL what does not stop; delete the files.

    A module-level function, not a method: ``weakref.finalize`` must not hold the cluster.
    """
    try:
        stop_processes([node.proc for node in nodes if node.proc is not None], _STOP_GRACE_SECONDS)
    finally:
        close_and_remove([node.log_file for node in nodes], tmp_dir)


class NatsCluster:
    """``nodes`` clustered JetStream servers on 127.0.0.1 (see the module docstring).

    Parameters: ``nodes`` (1-5; 1 gives a single server with the same config file, handy for
    comparing settings), ``sync_interval`` (``None`` for the server default, ``"always"``, or a
    duration string such as ``"10s"``), ``binary`` (the ``nats-server`` executable, found as in
    :func:`~mqlib.real.server.find_nats_server`), ``startup_timeout`` (seconds per node to
    report healthy).
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        sync_interval: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        _validate.integer("nodes", nodes, minimum=1, maximum=5)
        if sync_interval is not None:
            _validate.text("sync_interval", sync_interval)
            if not (sync_interval == "always" or sync_interval[:-1].isdigit()):
                raise ValueError(
                    f"sync_interval must be None, 'always' or a duration like '10s' or '2m', "
                    f"got {sync_interval!r}"
                )
        _validate.positive("startup_timeout", startup_timeout)
        self.size = nodes
        self.sync_interval = sync_interval
        self.binary = find_nats_server(binary)
        self.startup_timeout = float(startup_timeout)
        self.startup_seconds: float | None = None
        self._started = 0.0
        self._nodes: dict[str, _Node] = {}
        self._tmp_dir: str | None = None
        self._finalizer: weakref.finalize | None = None

    # -- addresses -----------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Node names, ``["n1", "n2", "n3"]``."""
        return [f"n{i}" for i in range(1, self.size + 1)]

    def _node(self, name: str) -> _Node:
        _validate.choice("name", name, self.names)
        if not self._nodes:
            raise NatsServerError("The cluster is not running; call start() first.")
        return self._nodes[name]

    def url(self, name: str) -> str:
        """``nats://127.0.0.1:<port>`` of one node."""
        return f"nats://{HOST}:{self._node(name).client_port}"

    @property
    def urls(self) -> list[str]:
        """Every node's client URL: pass it as ``nats.connect(servers=cluster.urls)``.

        Waits for a cluster started with ``wait=False`` to be ready first."""
        if self._nodes and self.startup_seconds is None:
            self.wait_until_ready()
        return [self.url(name) for name in self.names]

    def pid(self, name: str) -> int:
        node = self._node(name)
        if node.proc is None or node.proc.poll() is not None:
            raise NatsServerError(f"node {name} is not running")
        return node.proc.pid

    def is_running(self, name: str) -> bool:
        node = self._node(name)
        return node.proc is not None and node.proc.poll() is None

    def log(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return self._node(name).log_path.read_text(errors="replace")
        return ""

    def varz(self, name: str) -> dict[str, Any]:
        """The node's ``/varz`` monitoring document (server settings and counters)."""
        return self._get_json(name, "/varz")

    def _get_json(self, name: str, path: str) -> dict[str, Any]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://{HOST}:{self._node(name).http_port}{path}"
        with opener.open(url, timeout=2.0) as response:
            return json.loads(response.read())

    # -- life cycle ----------------------------------------------------------------------------

    def _config(self, node: _Node, store: Path, routes: list[int]) -> str:
        sync = f"\n  sync_interval: {self.sync_interval}" if self.sync_interval else ""
        text = (
            f"server_name: {node.name}\n"
            # A tag per node, so a stream can be placed on a chosen node
            # (Placement(tags=["node:n2"])), e.g. beside another stream's leader.
            f'server_tags: ["node:{node.name}"]\n'
            f"listen: {HOST}:{node.client_port}\n"
            f"http: {HOST}:{node.http_port}\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(store))}\n"
            f"  max_memory_store: 64MB\n  max_file_store: 256MB{sync}\n}}\n"
        )
        if self.size > 1:
            route_urls = ", ".join(f"nats-route://{HOST}:{port}" for port in routes)
            text += (
                f"cluster {{\n  name: mqlib\n  listen: {HOST}:{node.route_port}\n"
                f"  routes: [{route_urls}]\n}}\n"
            )
        return text

    def start(self, *, wait: bool = True) -> NatsCluster:
        """Start every node and wait until each reports JetStream healthy. Returns ``self``.

        ``wait=False`` only launches the nodes (from this thread, which they are tied to: see
        :func:`~mqlib.real._process.die_with_parent`) and returns at once, so the cluster forms
        while other cells run; :meth:`wait_until_ready`, or the first use of :attr:`urls`, then
        waits for it.
        """
        _validate.boolean("wait", wait)
        if self._nodes:
            return self.wait_until_ready() if wait else self
        self._started = time.perf_counter()
        self._tmp_dir = make_temp_dir("nats-cluster")
        tmp = Path(self._tmp_dir)
        # Route ports must be known before any node starts (each node lists all routes), so
        # every port is chosen here rather than by the server (-1).
        ports = iter(free_ports(3 * self.size))
        nodes = [
            _Node(name, next(ports), next(ports), next(ports), tmp / f"{name}.conf",
                  tmp / f"{name}.log")
            for name in self.names
        ]  # fmt: skip
        routes = [n.route_port for n in nodes]
        for node in nodes:
            node.config.write_text(self._config(node, tmp / node.name / "js", routes))
        self._nodes = {n.name: n for n in nodes}
        self._finalizer = weakref.finalize(self, _stop_all, nodes, self._tmp_dir)
        self.startup_seconds = None
        try:
            for node in nodes:
                self._launch(node)
        except BaseException:
            self.stop()
            raise
        return self.wait_until_ready() if wait else self

    def wait_until_ready(self) -> NatsCluster:
        """Block until every node is healthy and the meta leader sees them all (bounded by
        ``startup_timeout`` per step); ``self``. On failure the cluster is stopped."""
        if not self._nodes:
            raise NatsServerError("The cluster is not running; call start() first.")
        if self.startup_seconds is not None:
            return self
        nodes = list(self._nodes.values())
        try:
            for node in nodes:
                self._wait_healthy(node)
            self._wait_for_meta_leader(nodes)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - self._started
        record_startup(f"nats-cluster-{self.size}", self.startup_seconds)
        return self

    def _launch(self, node: _Node) -> None:
        if node.log_file is not None:
            with contextlib.suppress(OSError):
                node.log_file.close()
        # Appended to: a restarted node's log follows the log of its first life.
        node.log_file = open(node.log_path, "ab")  # noqa: SIM115 - closed by _stop_all
        node.proc = spawn([str(self.binary), "-c", str(node.config)], log=node.log_file)

    def _wait_healthy(self, node: _Node) -> None:
        # /healthz?js-enabled-only=true: the server is up and JetStream is enabled. (Plain
        # /healthz also waits for every stream to be current, which is not the point here.)
        def healthy() -> bool:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                self._get_json(node.name, "/healthz?js-enabled-only=true")
                return True
            return False

        assert node.proc is not None
        wait_for(
            healthy,
            timeout=self.startup_timeout,
            what=f"node {node.name} start-up",
            alive=node.proc.poll,
            log=lambda: self.log(node.name)[-_LOG_TAIL_CHARS:],
            error=NatsServerError,
        )

    def _wait_for_meta_leader(self, nodes: list[_Node]) -> None:
        # Healthy is not yet usable: the nodes must first elect the JetStream *meta leader*
        # (the Raft group that places streams); until then stream creation times out.
        if self.size == 1:
            return
        leaders: set[str] = set()

        def agreed() -> bool:
            leaders.clear()
            for node in nodes:
                with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                    meta = self._get_json(node.name, "/jsz").get("meta_cluster") or {}
                    leaders.add(meta.get("leader") or "")
            if len(leaders) != 1 or "" in leaders:
                return False
            # The leader places new streams only on peers it sees as current: until it sees every
            # running node so, creating an R3 stream fails with "no suitable peers for placement".
            (leader,) = leaders
            try:
                meta = self._get_json(leader, "/jsz").get("meta_cluster") or {}
            except (KeyError, urllib.error.URLError, OSError, ValueError):
                return False
            seen = {p.get("name"): p for p in meta.get("replicas") or []}
            running = [n for n in self.names if n != leader and self.is_running(n)]
            return all(
                n in seen and seen[n].get("current") and not seen[n].get("offline") for n in running
            )

        wait_for(
            agreed,
            timeout=self.startup_timeout,
            what="the JetStream meta leader election",
            log=lambda: f"The nodes report the leaders {sorted(leaders)}.",
            error=NatsServerError,
        )

    def kill(self, name: str) -> None:
        """Crash node ``name`` with SIGKILL (its store stays on disk for :meth:`restart`)."""
        node = self._node(name)
        if node.proc is None or node.proc.poll() is not None:
            raise NatsServerError(f"node {name} is not running")
        node.proc.kill()
        node.proc.wait(timeout=5)

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Start a killed node again on its old store and wait until it is healthy and the meta
        leader sees it current. ``wait=False`` returns once the process is launched: a client
        that retries (as every client must while a node recovers) then finds out by itself when
        the node's streams answer again, which is often well before the meta leader's view is."""
        _validate.boolean("wait", wait)
        node = self._node(name)
        if node.proc is not None and node.proc.poll() is None:
            raise NatsServerError(f"node {name} is still running; kill() it first")
        self._launch(node)
        if wait:
            self._wait_healthy(node)
            self._wait_for_meta_leader([node])

    def stop(self) -> None:
        """Stop every node and delete all stores. Safe to call more than once."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._nodes = {}
        self._tmp_dir = None

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        if not self._nodes:
            return f"<NatsCluster of {self.size} stopped>"
        up = [n for n in self.names if self.is_running(n)]
        return f"<NatsCluster of {self.size} on 127.0.0.1, running: {', '.join(up) or 'none'}>"


def start_cluster(nodes: int = 3, *, wait: bool = True, **options: Any) -> NatsCluster:
    """Start a :class:`NatsCluster` and return it running (the notebook-friendly form).

    ``wait=False``: launch the nodes and return; the first use of ``urls`` waits for them."""
    _validate.boolean("wait", wait)
    return NatsCluster(nodes, **options).start(wait=wait)
