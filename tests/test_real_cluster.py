"""A real three-node NATS JetStream cluster: failover of an R3 stream, an R1 stream that is down
with its node, fsync settings, and the cluster model's prediction beside the measurement.

One cluster for the module (127.0.0.1, free ports, temporary stores). The failover tests SIGKILL a
node and restart it on its old store afterwards, so the next test finds three nodes again. Every
wait is a retry loop with a deadline; nothing sleeps a fixed time to "let things settle".
"""

from __future__ import annotations

import asyncio
import time
import uuid

import nats
import pytest
from nats.js.api import Placement
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from mqlib.real import run
from mqlib.real.nats_cluster import NatsCluster, start_cluster
from mqlib.real.server import NatsServerError
from mqlib.scenarios.cluster import ClusterRun

DEADLINE = 30.0  # seconds; a JetStream election takes a few seconds (Raft election timeout)
#: What a client sees while a stream has no leader (electing, or its only node is down).
UNAVAILABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    NoStreamResponseError,
    ServiceUnavailableError,
)
RECORDS = 50


@pytest.fixture(scope="module")
def cluster():
    c = start_cluster(3)
    print(f"\n3-node cluster ready in {c.startup_seconds:.2f} s")
    yield c
    c.stop()


async def connect(cluster: NatsCluster) -> tuple[nats.NATS, object]:
    nc = await nats.connect(
        servers=cluster.urls, reconnect_time_wait=0.05, max_reconnect_attempts=-1
    )
    return nc, nc.jetstream(timeout=1.0)


async def publish_until_accepted(
    js, subject: str, deadline: float, data: bytes = b"after the crash"
) -> float:
    """Retry a publish until a stream leader acknowledges it; return the seconds it took. (Also
    the first publish to a new stream: its subject takes a moment to reach every server.)"""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        try:
            await js.publish(subject, data, timeout=0.5)
            return time.perf_counter() - started
        except UNAVAILABLE:
            await asyncio.sleep(0.05)
    raise AssertionError(f"no leader accepted a write on {subject} within {deadline} s")


async def read_all(js, stream: str, subject: str, count: int) -> list[bytes]:
    """Read ``count`` messages from the start with a fresh ephemeral consumer; retry (with a new
    consumer) while the stream is unavailable, up to the deadline."""
    started = time.perf_counter()
    while time.perf_counter() - started < DEADLINE:
        try:
            sub = await js.pull_subscribe(subject, stream=stream)
            got: list[bytes] = []
            while len(got) < count:
                got += [msg.data for msg in await sub.fetch(count - len(got), timeout=1.0)]
            await sub.unsubscribe()
            return got
        except UNAVAILABLE:
            await asyncio.sleep(0.1)
    raise AssertionError(f"could not read {count} messages from {stream} within {DEADLINE} s")


def predict(replicas: int) -> dict:
    """The cluster model (chapter 7) for the same experiment: acks=all, the leader crashes."""
    model = ClusterRun(
        partitions=1, replication_factor=replicas, min_insync_replicas=min(2, replicas)
    )
    for n in range(RECORDS):
        model.produce("orders", f"order-{n}")
    model.advance(1.0)
    leader = model.state()["partitions"][0]["leader"]
    model.kill_broker(leader)
    model.advance(15.0)
    after = model.produce("orders", "after the crash")
    model.advance(1.0)
    return {
        "acknowledged": sum(r["status"] == "acknowledged" for r in model.requests()[:RECORDS]),
        "acknowledged_lost": sum(x["acknowledged"] for x in model.lost_records()),
        "write_after_crash": model.requests()[-1]["status"] if after else None,
        "new_leader": model.state()["partitions"][0]["leader"],
        "old_leader": leader,
    }


def test_nodes_form_a_cluster_on_loopback_with_the_default_sync_interval(cluster):
    """``sync_interval`` defaults to 2 minutes (NATS server config reference, JetStream
    ``sync_interval``); /varz reports it in nanoseconds."""
    for name in cluster.names:
        varz = cluster.varz(name)
        assert varz["server_name"] == name
        assert varz["host"] == "127.0.0.1"
        assert varz["jetstream"]["config"]["sync_interval"] == 120 * 10**9
        assert len(cluster._get_json(name, "/routez")["routes"]) >= 2  # talks to both peers
    always = NatsCluster(1, sync_interval="always").start()
    try:
        assert always.varz("n1")["jetstream"]["config"]["sync_always"] is True
    finally:
        always.stop()
    with pytest.raises(ValueError, match="sync_interval"):
        NatsCluster(3, sync_interval="sometimes")
    with pytest.raises(ValueError, match="nodes"):
        NatsCluster(0)


def test_r3_stream_survives_a_sigkill_of_its_leader_and_agrees_with_the_model(cluster):
    async def experiment():
        nc, js = await connect(cluster)
        name = f"R3_{uuid.uuid4().hex[:6]}"
        await js.add_stream(name=name, subjects=[f"{name}.orders"], num_replicas=3)
        await publish_until_accepted(js, f"{name}.orders", DEADLINE, b"order-0")
        acked = [b"order-0"]  # the payloads whose publish was acknowledged
        for n in range(1, RECORDS):
            await js.publish(f"{name}.orders", f"order-{n}".encode())  # raises unless acked
            acked.append(f"order-{n}".encode())
        info = await js.stream_info(name)
        leader = info.cluster.leader
        cluster.kill(leader)
        took = await publish_until_accepted(js, f"{name}.orders", DEADLINE)
        new_leader = (await js.stream_info(name)).cluster.leader
        data = await read_all(js, name, f"{name}.orders", RECORDS + 1)
        await nc.close()
        cluster.restart(leader)
        return acked, leader, new_leader, took, data

    acked, leader, new_leader, took, data = run(experiment())
    print(f"R3 failover: a new leader accepted writes {took:.2f} s after the SIGKILL")
    assert len(acked) == RECORDS
    assert new_leader != leader and new_leader in cluster.names
    assert data[:RECORDS] == acked  # none lost
    assert data[RECORDS] == b"after the crash"
    model = predict(3)
    assert model["acknowledged"] == RECORDS
    real_lost = RECORDS - len(set(data[:RECORDS]))
    assert model["acknowledged_lost"] == real_lost == 0  # both: no acknowledged message lost
    assert (
        model["write_after_crash"] == "acknowledged" and model["new_leader"] != model["old_leader"]
    )


def test_r1_stream_is_unavailable_while_its_node_is_down(cluster):
    async def experiment():
        nc, js = await connect(cluster)
        name = f"R1_{uuid.uuid4().hex[:6]}"
        await js.add_stream(
            name=name, subjects=[f"{name}.orders"], num_replicas=1,
            placement=Placement(tags=["node:n3"]),
        )  # fmt: skip
        host = (await js.stream_info(name)).cluster.leader
        await publish_until_accepted(js, f"{name}.orders", DEADLINE, b"order-0")
        for n in range(1, RECORDS):
            await js.publish(f"{name}.orders", f"order-{n}".encode())
        cluster.kill(host)
        refused = 0
        for _ in range(3):  # every attempt while the node is down fails
            try:
                await js.publish(f"{name}.orders", b"during", timeout=0.5)
            except UNAVAILABLE:
                refused += 1
        cluster.restart(host)
        back = await publish_until_accepted(js, f"{name}.orders", DEADLINE)
        data = await read_all(js, name, f"{name}.orders", RECORDS + 1)
        await nc.close()
        return host, refused, back, data

    host, refused, back, data = run(experiment())
    print(
        f"R1: {refused}/3 writes refused while {host} was down; writable {back:.2f} s after restart"
    )
    assert host == "n3"  # the placement tag put it there
    assert refused == 3
    assert data[:RECORDS] == [f"order-{n}".encode() for n in range(RECORDS)]  # back with its data
    model = predict(1)
    assert model["write_after_crash"] == "failed"  # the model agrees: no other copy to lead
    assert model["new_leader"] is None


def test_a_cluster_started_without_waiting_forms_while_the_caller_goes_on():
    from mqlib.real._process import pid_alive

    c = start_cluster(3, wait=False)
    try:
        assert c.startup_seconds is None  # launched only
        pids = [c.pid(name) for name in c.names]
        urls = c.urls  # the first use waits for every node and the meta leader
        assert c.startup_seconds is not None and len(urls) == 3

        async def create_r3():
            nc, js = await connect(c)
            try:
                await js.add_stream(name="LAZY", subjects=["lazy"], num_replicas=3)
                return (await js.publish("lazy", b"x")).seq
            finally:
                await nc.close()

        assert run(create_r3()) == 1
        c.kill("n3")
        c.restart("n3", wait=False)  # launched; not waited for
        assert c.is_running("n3")
        with pytest.raises(NatsServerError, match="still running"):
            c.restart("n3")

        async def write_until_accepted():
            nc, js = await connect(c)
            try:
                return await publish_until_accepted(js, "lazy", DEADLINE)
            finally:
                await nc.close()

        assert run(write_until_accepted()) < DEADLINE
        with pytest.raises(TypeError, match="wait"):
            c.restart("n3", wait="no")
    finally:
        c.stop()
    assert not any(pid_alive(pid) for pid in pids)
    with pytest.raises(TypeError, match="wait"):
        start_cluster(1, wait=1)
