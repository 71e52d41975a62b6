"""Events as contracts: envelopes, schema versions, compatible and breaking changes.

Once an event is published, its shape is a promise to every consumer group that reads it, and the
producer does not even know who they are (that was the point of publish/subscribe). A change to the
event is therefore a change to a contract with strangers.

**The envelope.** Every event carries, around its payload, the same few fields whatever its type
(:class:`Envelope`): a unique ``id`` (for deduplication, chapter 3), the event ``type``, the schema
``version`` of its payload, the ``time`` it happened and a ``correlation_id`` that ties together
every message caused by one original request. CloudEvents standardises the same idea (``id``,
``type``, ``time``, ``source``, ``specversion``).

**Compatible and breaking changes.** A :class:`Schema` lists the payload's fields, each with a type
and whether it is required. Whether a change is safe depends on who reads with which version:

* *backward compatible*: a consumer using the **new** schema can read events written with the
  **old** one (so consumers can upgrade first);
* *forward compatible*: a consumer still using the **old** schema can read events written with the
  **new** one (so the producer can upgrade first).

Adding an optional field is both. Removing a required field is backward but not forward
compatible: old consumers that need it break. Renaming a field or changing its type is neither.
:func:`compatibility` computes the two; the rules follow Avro's schema resolution (a reader's
field must be in the data or have a default; a field's type must match), simplified to four types
and no defaults.

**A schema registry** (Confluent Schema Registry, for example) stores each version and refuses one
that breaks the subject's compatibility mode; its default mode is ``BACKWARD``, checked against the
previous version (``BACKWARD_TRANSITIVE`` checks all of them). :func:`registry_accepts` applies a
mode. Note what ``BACKWARD`` promises: consumers may upgrade first. A producer that deploys first
needs ``FORWARD`` (or ``FULL``, both).

**A tolerant reader** reads only the fields it needs and ignores the rest, so an added field
cannot break it. A *strict* reader rejects fields it does not know; Jackson's ``ObjectMapper``, the
usual JSON library in Java, does that by default (``FAIL_ON_UNKNOWN_PROPERTIES``).
:class:`Reader` is either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _validate as check

__all__ = [
    "FIELD_TYPES",
    "REGISTRY_MODES",
    "Envelope",
    "Field",
    "Reader",
    "Schema",
    "add_field",
    "change_type",
    "compatibility",
    "example_payload",
    "registry_accepts",
    "remove_field",
    "rename_field",
]

FIELD_TYPES = ("int", "float", "str", "bool")
"""The payload field types the model knows."""

REGISTRY_MODES = ("BACKWARD", "FORWARD", "FULL", "NONE")
"""Compatibility modes of a schema registry, checked against the previous version only (the
``_TRANSITIVE`` variants, which check every earlier version, are left out)."""

_EXAMPLES: dict[str, Any] = {"int": 0, "float": 0.0, "str": "", "bool": False}


def _fits(value: Any, type_name: str) -> bool:
    """Does ``value`` have the payload type ``type_name``? (JSON has one number type, so an int
    is a valid float, but a bool is not an int.)"""
    if isinstance(value, bool):
        return type_name == "bool"
    if type_name == "float":
        return isinstance(value, int | float)
    return isinstance(value, {"int": int, "str": str, "bool": bool}[type_name])


@dataclass(frozen=True)
class Field:
    """One payload field: its ``name``, its ``type`` (one of :data:`FIELD_TYPES`) and whether
    every event must carry it."""

    name: str
    type: str
    required: bool = True

    def __post_init__(self) -> None:
        check.text("name", self.name)
        check.choice("type", self.type, FIELD_TYPES)
        check.boolean("required", self.required)


@dataclass(frozen=True)
class Schema:
    """Version ``version`` of the payload of events of type ``type``.

    >>> v1 = Schema("OrderCreated", 1, (Field("order_id", "int"), Field("total", "float")))
    >>> v1.names
    ('order_id', 'total')
    """

    type: str
    version: int
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        check.text("type", self.type)
        check.integer("version", self.version, minimum=1)
        if not isinstance(self.fields, tuple) or not all(isinstance(f, Field) for f in self.fields):
            raise TypeError(f"fields must be a tuple of Field, got {self.fields!r}")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"fields must have distinct names, got {names!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """The field names, in order."""
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field | None:
        """The field called ``name``, or ``None``."""
        if not isinstance(name, str):
            raise TypeError(
                f"name must be a field name (a string), got {check._show(name)} "
                f"({type(name).__name__})"
            )
        return next((f for f in self.fields if f.name == name), None)

    def conforms(self, payload: Mapping[str, Any]) -> bool:
        """Does ``payload`` carry every required field, each present field with its type?"""
        for f in self.fields:
            if f.name not in payload:
                if f.required:
                    return False
            elif not _fits(payload[f.name], f.type):
                return False
        return True

    def _next(self, fields: Iterable[Field]) -> Schema:
        return Schema(self.type, self.version + 1, tuple(fields))


def _schema(schema: Any) -> Schema:
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a Schema, got {type(schema).__name__}")
    return schema


def _existing(schema: Schema, name: str) -> Field:
    check.text("name", name)
    found = schema.field(name)
    if found is None:
        raise ValueError(
            f"name must be a field of {schema.type} v{schema.version}: "
            f"one of {list(schema.names)!r}, got {name!r}"
        )
    return found


def add_field(schema: Schema, name: str, type: str, *, required: bool = False) -> Schema:
    """The next version of ``schema`` with a new field (optional unless ``required``)."""
    schema = _schema(schema)
    check.text("name", name)
    if schema.field(name) is not None:
        raise ValueError(f"name must be a new field, but {name!r} is already in the schema")
    return schema._next((*schema.fields, Field(name, type, required)))


def remove_field(schema: Schema, name: str) -> Schema:
    """The next version of ``schema`` without field ``name``."""
    schema = _schema(schema)
    _existing(schema, name)
    return schema._next(f for f in schema.fields if f.name != name)


def rename_field(schema: Schema, name: str, new_name: str) -> Schema:
    """The next version of ``schema`` with field ``name`` called ``new_name``."""
    schema = _schema(schema)
    old = _existing(schema, name)
    check.text("new_name", new_name)
    if schema.field(new_name) is not None:
        raise ValueError(f"new_name must be a new field, but {new_name!r} is already in the schema")
    return schema._next(
        Field(new_name, f.type, f.required) if f is old else f for f in schema.fields
    )


def change_type(schema: Schema, name: str, new_type: str) -> Schema:
    """The next version of ``schema`` with field ``name`` of type ``new_type``."""
    schema = _schema(schema)
    old = _existing(schema, name)
    check.choice("new_type", new_type, FIELD_TYPES)
    if new_type == old.type:
        raise ValueError(f"new_type must differ from the field's type {old.type!r}")
    return schema._next(Field(name, new_type, f.required) if f is old else f for f in schema.fields)


def _can_read(reader: Schema, writer: Schema) -> list[str]:
    """Why a consumer using ``reader`` cannot read every event written with ``writer`` (empty:
    it can)."""
    problems = []
    for f in reader.fields:
        written = writer.field(f.name)
        if written is None:
            if f.required:
                problems.append(f"{f.name!r} is required but not written")
        elif written.type != f.type and not (f.type == "float" and written.type == "int"):
            problems.append(f"{f.name!r} is written as {written.type}, read as {f.type}")
        elif f.required and not written.required:
            problems.append(f"{f.name!r} is required but optional in what is written")
    return problems


def compatibility(old: Schema, new: Schema) -> dict[str, Any]:
    """Is ``new`` backward compatible (new readers read old events) and forward compatible (old
    readers read new events) with ``old``? Returns ``{"backward", "forward", "full", "why"}``;
    ``why`` lists what breaks, for each direction that breaks.

    >>> v1 = Schema("OrderCreated", 1, (Field("order_id", "int"), Field("total", "float")))
    >>> compatibility(v1, add_field(v1, "coupon", "str"))["full"]
    True
    >>> compatibility(v1, rename_field(v1, "total", "amount"))["why"]["forward"]
    ["'total' is required but not written"]
    """
    for label, value in (("old", old), ("new", new)):
        if not isinstance(value, Schema):
            raise TypeError(f"{label}: schema must be a Schema, got {type(value).__name__}")
    old, new = _schema(old), _schema(new)
    if old.type != new.type:
        raise ValueError(f"new must be a version of {old.type!r}, got {new.type!r}")
    backward = _can_read(new, old)
    forward = _can_read(old, new)
    why = {k: v for k, v in (("backward", backward), ("forward", forward)) if v}
    return {
        "backward": not backward,
        "forward": not forward,
        "full": not backward and not forward,
        "why": why,
    }


def registry_accepts(old: Schema, new: Schema, mode: str = "BACKWARD") -> bool:
    """Would a schema registry in compatibility ``mode`` (default ``"BACKWARD"``, Confluent
    Schema Registry's default) register ``new`` after ``old``?"""
    check.choice("mode", mode, REGISTRY_MODES)
    if mode == "NONE":
        return True
    result = compatibility(old, new)
    return bool(result[mode.lower()])


@dataclass(frozen=True)
class Envelope:
    """An event with its envelope: what every event carries whatever its type.

    ``id`` is unique per event, ``type`` and ``version`` name the payload's schema, ``time`` is
    when it happened (simulated seconds), ``correlation_id`` links every event caused by one
    original request.
    """

    id: str
    type: str
    version: int
    time: float
    correlation_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check.text("id", self.id)
        check.text("type", self.type)
        check.integer("version", self.version, minimum=1)
        check.non_negative("time", self.time)
        check.text("correlation_id", self.correlation_id)
        if not isinstance(self.payload, Mapping):
            raise TypeError(f"payload must be a mapping, got {type(self.payload).__name__}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "time": self.time,
            "correlation_id": self.correlation_id,
            "payload": dict(self.payload),
        }


class Reader:
    """How one consumer group reads an event's payload.

    Parameters
    ----------
    schema:
        The schema version the consumer's code was written against.
    needs:
        The fields the consumer uses; each must be a field of ``schema``.
    tolerant:
        A tolerant reader ignores fields it does not know. A strict one (``False``) refuses an
        event with any field outside ``schema``.

    :meth:`read` returns ``None`` when the consumer can handle the event, else the error its
    code would raise.
    """

    def __init__(self, schema: Schema, needs: Iterable[str], *, tolerant: bool = True) -> None:
        self.schema = _schema(schema)
        if isinstance(needs, str) or not isinstance(needs, Iterable):
            raise TypeError(f"needs must be a list of field names, got {needs!r}")
        self.needs = tuple(needs)
        if not self.needs:
            raise ValueError("needs must name at least one field")
        for name in self.needs:
            if not isinstance(name, str) or self.schema.field(name) is None:
                known = [f.name for f in self.schema.fields]
                raise ValueError(
                    f"needs must name a field of {self.schema.type} v{self.schema.version}: "
                    f"one of {known}, got {check._show(name)}"
                )
            _existing(self.schema, name)
        self.tolerant = check.boolean("tolerant", tolerant)

    def read(self, event: Envelope) -> str | None:
        """``None`` if the consumer can process ``event``; otherwise the error text."""
        if not isinstance(event, Envelope):
            raise TypeError(f"event must be an Envelope, got {type(event).__name__}")
        payload = event.payload
        if not self.tolerant:
            unknown = [k for k in payload if not isinstance(k, str) or self.schema.field(k) is None]
            if unknown:
                return f"UnrecognizedPropertyException: unknown field {unknown[0]!r}"
        for name in self.needs:
            wanted = self.schema.field(name)
            assert wanted is not None
            if name not in payload:
                return f"KeyError: {name!r}"
            if not _fits(payload[name], wanted.type):
                got = type(payload[name]).__name__
                return f"TypeError: {name!r} is {got}, expected {wanted.type}"
        return None

    def __repr__(self) -> str:
        return (
            f"Reader({self.schema.type} v{self.schema.version}, needs={list(self.needs)!r}, "
            f"tolerant={self.tolerant})"
        )


def example_payload(schema: Schema, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A payload conforming to ``schema``: every field, from ``values`` where given (an example
    value of its type otherwise)."""
    schema = _schema(schema)
    if values is not None and not isinstance(values, Mapping):
        raise TypeError(
            f"values must be a mapping field name -> value or None, got {values!r} "
            f"({type(values).__name__})"
        )
    values = {} if values is None else dict(values)
    payload = {}
    for f in schema.fields:
        value = values.get(f.name, _EXAMPLES[f.type])
        if not _fits(value, f.type):
            raise ValueError(f"values[{f.name!r}] must be of type {f.type}, got {value!r}")
        payload[f.name] = value
    return payload
