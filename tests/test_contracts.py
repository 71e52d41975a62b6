"""Events as contracts (chapter 2): schema compatibility, tolerant readers, the registry's modes,
and the scenario in which a producer deploys a breaking change. Every number the chapter states
is asserted here."""

import doctest

import pytest

import mqlib.models.contracts as contracts_module
from mqlib.models.contracts import (
    Envelope,
    Field,
    Reader,
    Schema,
    add_field,
    change_type,
    compatibility,
    example_payload,
    registry_accepts,
    remove_field,
    rename_field,
)
from mqlib.scenarios.contracts import (
    CHANGES,
    GROUP_NEEDS,
    ORDER_CREATED_V1,
    ContractRun,
    compare_changes,
    default_run,
)

V1 = ORDER_CREATED_V1


def test_doctests():
    assert doctest.testmod(contracts_module).failed == 0


# -- compatibility -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "backward", "forward"),
    [
        # Confluent's summary: BACKWARD allows adding optional fields and removing fields;
        # FORWARD allows adding fields and removing optional ones; FULL only optional ones.
        ("add optional coupon", True, True),
        ("add required coupon", False, True),
        ("remove customer_email", True, False),
        ("rename total to amount", False, False),
        ("total as a string", False, False),
    ],
)
def test_each_change_is_compatible_in_the_directions_schema_evolution_rules_say(
    change, backward, forward
):
    """Confluent Schema Registry, "Schema Evolution and Compatibility": backward = consumers on
    the new schema read data written with the old; forward = consumers on the old schema read
    data written with the new."""
    result = compatibility(V1, CHANGES[change](V1))
    assert (result["backward"], result["forward"]) == (backward, forward)
    assert result["full"] == (backward and forward)
    assert set(result["why"]) == {
        d for d, ok in (("backward", backward), ("forward", forward)) if not ok
    }


def test_removing_an_optional_field_is_compatible_both_ways():
    with_coupon = add_field(V1, "coupon", "str")
    assert compatibility(with_coupon, remove_field(with_coupon, "coupon"))["full"] is True


@pytest.mark.parametrize(
    ("mode", "accepted"),
    [
        ("BACKWARD", {"add optional coupon", "remove customer_email"}),
        ("FORWARD", {"add optional coupon", "add required coupon"}),
        ("FULL", {"add optional coupon"}),
        ("NONE", set(CHANGES)),
    ],
)
def test_the_registry_accepts_what_its_mode_allows(mode, accepted):
    """BACKWARD is Confluent Schema Registry's default mode (checked against the previous
    version only, as the non-transitive modes are)."""
    assert {c for c in CHANGES if registry_accepts(V1, CHANGES[c](V1), mode)} == accepted
    assert registry_accepts(V1, rename_field(V1, "total", "amount")) is False  # default BACKWARD


# -- readers ---------------------------------------------------------------------------------
def event(schema, **values):
    return Envelope("e1", schema.type, schema.version, 0.0, "c1", example_payload(schema, values))


def test_a_tolerant_reader_ignores_new_fields_and_a_strict_one_refuses_them():
    v2 = add_field(V1, "coupon", "str")
    tolerant = Reader(V1, ["order_id", "customer_email"])
    strict = Reader(V1, ["order_id", "customer_email"], tolerant=False)
    assert tolerant.read(event(v2, coupon="SPRING")) is None
    assert strict.read(event(v2)) == "UnrecognizedPropertyException: unknown field 'coupon'"
    assert strict.read(event(V1)) is None


def test_a_reader_reports_a_missing_field_and_a_wrong_type():
    payment = Reader(V1, ["order_id", "total"])
    assert payment.read(event(rename_field(V1, "total", "amount"))) == "KeyError: 'total'"
    as_text = change_type(V1, "total", "str")
    assert (
        payment.read(event(as_text, total="59.90")) == "TypeError: 'total' is str, expected float"
    )
    assert payment.read(event(V1, total=59)) is None  # JSON has one number type: 59 is a float


# -- the scenario ------------------------------------------------------------------------------
def test_the_rename_fails_payment_only_and_dead_letters_the_five_new_events():
    run = default_run()
    rows = {r["group"]: r for r in run.table()}
    assert (rows["payment"]["handled"], rows["payment"]["dead_lettered"]) == (5, 5)
    assert rows["payment"]["failed_attempts"] == 15  # 5 events x 3 attempts
    assert rows["payment"]["first_failure"] == 5.0  # the sixth event, published at t=5 s
    for group in ("email", "analytics"):
        assert (rows[group]["handled"], rows[group]["dead_lettered"]) == (10, 0)
        assert rows[group]["first_failure"] is None
    first = run.dead_letters["payment"][0]
    assert first == {
        "event": "evt-6",
        "version": 2,
        "error": "KeyError: 'total'",
        "attempts": 3,
        "at": 7.0,
    }
    assert [e.version for e in run.published] == [1] * 5 + [2] * 5


def test_the_envelope_of_each_event():
    run = default_run()
    sixth = run.published[5].as_dict()
    assert set(sixth) == {"id", "type", "version", "time", "correlation_id", "payload"}
    assert (sixth["id"], sixth["type"], sixth["version"], sixth["time"]) == (
        "evt-6",
        "OrderCreated",
        2,
        5.0,
    )
    assert sixth["correlation_id"] == "checkout-6"
    assert set(sixth["payload"]) == {"order_id", "amount", "customer_email"}
    assert len({e.id for e in run.published}) == 10


def test_every_change_side_by_side():
    dead = {
        c: {r["group"]: r["dead_lettered"] for r in run.table()}
        for c, run in compare_changes().items()
    }
    assert dead == {
        "add optional coupon": {"payment": 0, "email": 0, "analytics": 0},
        "add required coupon": {"payment": 0, "email": 0, "analytics": 0},
        "rename total to amount": {"payment": 5, "email": 0, "analytics": 0},
        "total as a string": {"payment": 5, "email": 0, "analytics": 0},
        "remove customer_email": {"payment": 0, "email": 5, "analytics": 0},
    }
    summary = compare_changes()["add optional coupon"].summary()
    assert summary.startswith("add optional coupon (v2, compatible both ways)")


def test_a_registry_that_refuses_keeps_the_producer_on_version_1():
    refused = ContractRun("rename total to amount", registry="BACKWARD")
    assert refused.deployed is False
    assert {e.version for e in refused.published} == {1}
    assert all(r["dead_lettered"] == 0 for r in refused.table())
    assert "refused by the BACKWARD registry" in refused.summary()
    slipped = ContractRun("remove customer_email", registry="BACKWARD")
    assert slipped.deployed is True
    assert {r["group"]: r["dead_lettered"] for r in slipped.table()}["email"] == 5
    assert ContractRun("remove customer_email", registry="FORWARD").deployed is False
    assert ContractRun("remove customer_email", registry="FULL").deployed is False


def test_the_try_this_prompts():
    strict = ContractRun("add optional coupon", strict=["email"])
    assert {r["group"]: r["dead_lettered"] for r in strict.table()} == {
        "payment": 0,
        "email": 5,
        "analytics": 0,
    }
    early = ContractRun(deploy_after=0)
    assert {r["group"]: r["dead_lettered"] for r in early.table()}["payment"] == 10
    once = ContractRun(max_attempts=1)
    assert {r["group"]: r["failed_attempts"] for r in once.table()}["payment"] == 5


def test_same_settings_same_trace():
    assert ContractRun().sim.trace.as_dicts() == ContractRun().sim.trace.as_dicts()
    assert set(GROUP_NEEDS) == {"payment", "email", "analytics"}


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ContractRun("drop everything"), "change must be one of"),
        (lambda: ContractRun(events=0), "events must be >= 1"),
        (lambda: ContractRun(deploy_after=11), "deploy_after must be <= 10"),
        (lambda: ContractRun(strict="email"), "strict must be a list of group names"),
        (lambda: ContractRun(strict=["billing"]), "group in strict must be one of"),
        (lambda: ContractRun(registry="STRICT"), "registry must be one of"),
        (lambda: ContractRun(max_attempts=0), "max_attempts must be >= 1"),
        (lambda: Field("total", "decimal"), "type must be one of"),
        (lambda: Field("", "int"), "name must be a non-empty string"),
        (lambda: Schema("OrderCreated", 0, ()), "version must be >= 1"),
        (lambda: Schema("OrderCreated", 1, [Field("a", "int")]), "fields must be a tuple of Field"),
        (lambda: Schema("O", 1, (Field("a", "int"), Field("a", "str"))), "distinct names"),
        (lambda: add_field(V1, "total", "float"), "name must be a new field"),
        (lambda: remove_field(V1, "coupon"), "name must be a field of OrderCreated v1"),
        (lambda: rename_field(V1, "total", "order_id"), "new_name must be a new field"),
        (lambda: change_type(V1, "total", "float"), "new_type must differ"),
        (lambda: change_type(V1, "total", "money"), "new_type must be one of"),
        (lambda: compatibility(V1, "v2"), "schema must be a Schema"),
        (lambda: compatibility(V1, Schema("Other", 2, ())), "new must be a version of"),
        (lambda: registry_accepts(V1, V1, "backward"), "mode must be one of"),
        (lambda: Reader(V1, []), "needs must name at least one field"),
        (lambda: Reader(V1, "total"), "needs must be a list of field names"),
        (lambda: Reader(V1, ["coupon"]), "needs must name a field of"),
        (lambda: Reader(V1, ["total"]).read({"total": 1}), "event must be an Envelope"),
        (lambda: Envelope("", "T", 1, 0.0, "c"), "id must be a non-empty string"),
        (lambda: Envelope("e", "T", 1, -1.0, "c"), "time must be >= 0"),
        (lambda: Envelope("e", "T", 1, 0.0, "c", payload=[1]), "payload must be a mapping"),
        (lambda: example_payload(V1, {"total": "x"}), "values\\['total'\\] must be of type float"),
        (lambda: default_run().first_failure("billing"), "group must be one of"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
