"""Argument checks shared by every public constructor and method.

Each check raises an error that names the parameter, the value it got and what is allowed, so a
learner who types a wrong number sees at once what to change. Nothing is clamped silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_min: bool = True,
) -> float:
    """Check that ``value`` is a finite real number within ``[minimum, maximum]``.

    ``allow_min=False`` makes the lower bound exclusive (for "must be positive").
    """
    if not _is_number(value):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None:
        if allow_min and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
        if not allow_min and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def non_negative(name: str, value: Any) -> float:
    """A finite number >= 0 (latencies, timeouts, durations)."""
    return number(name, value, minimum=0)


def positive(name: str, value: Any) -> float:
    """A finite number > 0 (rates, speeds)."""
    return number(name, value, minimum=0, allow_min=False)


def integer(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An ``int`` (not a bool, not a float) within ``[minimum, maximum]``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """One of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {shown}; got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    """A real ``bool`` (so that the string "False" is not taken as true)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def text(name: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value
