"""Chapter 0's facts: synchronous waits add up and fail partially; asynchronous ones do not."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlib import OrderFlow, Step, compare_modes


def test_sync_wait_is_order_plus_every_call_plus_the_timeout():
    for timeout in (3500.0, 5000.0, 8000.0):
        result = OrderFlow("sync", down=["warehouse"], timeout_ms=timeout).run()
        assert result.user_wait_ms == 50 + 200 + 30 + 3000 + timeout
        assert result.outcome == "error"


def test_sync_warehouse_down_flags_payment_charged_but_warehouse_not_told():
    result = OrderFlow("sync", down=["warehouse"]).run()
    assert result.step("payment").status == "ok"
    assert result.step("warehouse").status == "timeout"
    assert result.step("analytics").status == "not_reached"
    assert result.inconsistent
    assert "payment charged" in result.explanation
    assert "warehouse" in result.explanation.split("but", 1)[1]


def test_sync_all_up_confirms_after_the_sum_of_latencies():
    result = OrderFlow("sync", down=[]).run()
    assert result.outcome == "confirmed"
    assert result.user_wait_ms == 50 + 200 + 30 + 3000 + 100 + 20
    assert not result.inconsistent


def test_sync_first_service_down_is_a_clean_failure():
    result = OrderFlow("sync", down=["payment"], timeout_ms=2000).run()
    assert result.user_wait_ms == 50 + 2000
    assert not result.inconsistent


def test_sync_call_slower_than_the_timeout_times_out():
    result = OrderFlow("sync", down=[], timeout_ms=1000).run()
    assert result.step("email").status == "timeout"
    assert result.user_wait_ms == 50 + 200 + 30 + 1000


@settings(max_examples=40, deadline=None)
@given(
    email=st.floats(0, 60_000),
    down=st.sets(st.sampled_from(["payment", "inventory", "email", "warehouse", "analytics"])),
)
def test_async_wait_is_order_plus_publish_whatever_the_services_do(email, down):
    result = OrderFlow("async", latencies_ms={"email": email}, down=down).run()
    assert result.user_wait_ms == 50 + 5
    assert result.outcome == "confirmed"


def test_async_down_service_processes_its_event_after_recovering():
    result = OrderFlow("async", down=["warehouse"], recovers_at_ms={"warehouse": 6000}).run()
    step = result.step("warehouse")
    assert step.status == "ok"
    assert (step.start_ms, step.end_ms) == (6000, 6100)
    assert result.step("payment").end_ms == 55 + 200


def test_async_service_still_down_keeps_its_event_queued():
    result = OrderFlow("async", down=["warehouse"]).run()
    assert result.step("warehouse").status == "queued"
    assert "Still waiting in a queue: warehouse" in result.summary()


def test_compare_modes_defaults_to_the_lesson_example():
    results = compare_modes()
    assert results["sync"].user_wait_ms == 8280
    assert results["async"].user_wait_ms == 55
    with pytest.raises(ValueError, match="do not pass mode"):
        compare_modes(mode="sync")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "batch"}, "mode must be one of 'sync', 'async'"),
        ({"latencies_ms": {"email": -5}}, "latency of 'email' \\(ms\\) must be >= 0"),
        ({"latencies_ms": {"sms": 5}}, "service must be one of 'payment'"),
        ({"down": ["billing"]}, "down must be one of"),
        ({"down": "warehouse"}, "down must be a collection of service names"),
        ({"timeout_ms": 0}, "timeout_ms must be > 0"),
        ({"failure": "crash"}, "failure must be one of 'hang', 'refuse'"),
        ({"refuse_ms": -1}, "refuse_ms must be >= 0"),
        ({"order_ms": -1}, "order_ms must be >= 0"),
        ({"recovers_at_ms": {"warehouse": -1}}, "recovers_at_ms\\['warehouse'\\] must be >= 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    mode = kwargs.pop("mode", "sync")
    with pytest.raises((ValueError, TypeError), match=message):
        OrderFlow(mode, **kwargs)


def test_async_slow_service_finishes_and_one_cut_off_is_reported_working():
    done = OrderFlow("async", latencies_ms={"email": 30_000}, down=[]).run()
    assert done.step("email") == Step("email", "ok", 55.0, 30_055.0)
    cut = OrderFlow("async", latencies_ms={"email": 30_000}, down=[], horizon_ms=10_000).run()
    assert cut.step("email") == Step("email", "working", 55.0, None)
    assert "Still working when the run stopped: email" in cut.summary()


@pytest.mark.parametrize("name", ["latencies_ms", "recovers_at_ms"])
def test_settings_that_must_be_mappings_say_so(name):
    with pytest.raises(TypeError, match=f"{name} must be a mapping"):
        OrderFlow("async", **{name: 5})
    with pytest.raises(TypeError, match=f"{name} must be a mapping"):
        OrderFlow("async", **{name: []})


def test_a_refused_connection_fails_at_once_but_the_partial_failure_stays():
    """A dead process on a live host: the host's TCP stack answers the connection attempt with a
    reset (RFC 9293, section 3.10.7.1: a SYN to a port with no listener gets a RST), so the call
    fails within a round trip; only a hung process or an unreachable host costs the timeout."""
    hung = OrderFlow("sync", down=["warehouse"]).run()
    refused = OrderFlow("sync", down=["warehouse"], failure="refuse").run()
    assert (hung.user_wait_ms, refused.user_wait_ms) == (8280.0, 3281.0)
    assert refused.step("warehouse") == Step("warehouse", "refused", 3280.0, 3281.0)
    assert refused.inconsistent and refused.outcome == "error"
    assert refused.step("analytics").status == "not_reached"
    assert hung.explanation == refused.explanation  # failing fast does not undo the payment
    # the chapter's "try this": a longer timeout costs only the hung case
    long_refused = OrderFlow("sync", failure="refuse", timeout_ms=30_000).run()
    long_hung = OrderFlow("sync", failure="hang", timeout_ms=30_000).run()
    assert (long_refused.user_wait_ms, long_hung.user_wait_ms) == (3281.0, 33_280.0)
