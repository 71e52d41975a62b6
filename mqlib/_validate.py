"""Argument checks shared by every public constructor and method.

Each check raises an error that names the parameter, the value it got and what is allowed, so a
learner who types a wrong number sees at once what to change. Nothing is clamped silently.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Iterable, Mapping
from typing import Any

LARGEST = sys.float_info.max
#: The largest magnitude :func:`integer` accepts when a check names no tighter bound: a signed
#: 64-bit integer, what real brokers store offsets, sequence numbers and counts in. A larger int
#: (``10**400``) is never a meaningful count, offset or id, and would overflow any float arithmetic.
MAX_INTEGER = 2**63 - 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """``repr(value)``, shortened so that a huge int or a long list does not flood the message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {len(str(abs(value)))} digits"
    shown = repr(value)
    return shown if len(shown) <= 120 else shown[:100] + "..." + shown[-10:]


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
        raise TypeError(f"{name} must be a number, got {_show(value)} ({type(value).__name__})")
    try:
        as_float = float(value)
    except OverflowError:
        # an int too large for a float (10**400): finite, but no model can compute with it
        raise ValueError(
            f"{name} must be a finite number no larger than {LARGEST:.3g} in size, "
            f"got {_show(value)}"
        ) from None
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None:
        if allow_min and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {_show(value)}")
        if not allow_min and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {_show(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_show(value)}")
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
    """An ``int`` (not a bool, not a float) within ``[minimum, maximum]``.

    Without an explicit bound the range is ``[-MAX_INTEGER, MAX_INTEGER]`` (a signed 64-bit
    integer), so that a huge int is refused here rather than overflowing later.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {_show(value)} ({type(value).__name__})")
    if maximum is None:
        maximum = MAX_INTEGER
    if minimum is None:
        minimum = -MAX_INTEGER
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_show(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_show(value)}")
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


def simulation(name: str, value: Any) -> Any:
    """An :class:`mqlib.core.Simulation` (imported late: core imports this module)."""
    from .core import Simulation

    if not isinstance(value, Simulation):
        raise TypeError(
            f"{name} must be an mqlib Simulation, got {_show(value)} ({type(value).__name__})"
        )
    return value


def instance(name: str, value: Any, cls: type | tuple[type, ...], what: str = "") -> Any:
    """An instance of ``cls``; ``what`` describes it for the message (default: the class name)."""
    if not isinstance(value, cls):
        if not what:
            classes = cls if isinstance(cls, tuple) else (cls,)
            what = " or ".join(c.__name__ for c in classes)
        raise TypeError(f"{name} must be a {what}, got {_show(value)} ({type(value).__name__})")
    return value


def same_simulation(name: str, value: Any, sim: Any) -> Any:
    """``value`` (a model object with a ``sim``) belongs to ``sim``, not to another run."""
    if getattr(value, "sim", None) is not sim:
        raise ValueError(
            f"{name} belongs to another simulation ({_show(value)}): every object of one run "
            "must be made with the same Simulation"
        )
    return value


def names(
    name: str,
    value: Any,
    *,
    allow_empty: bool = False,
    unique: bool = True,
    maximum: int | None = None,
) -> list[str]:
    """A list, tuple or set of non-empty strings (a single string is refused, not split into
    letters); ``unique`` refuses duplicates, ``maximum`` caps the count."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise TypeError(
            f"{name} must be a list of names (strings), got {_show(value)} ({type(value).__name__})"
        )
    items = list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise TypeError(f"{name} must hold non-empty strings, got {_show(item)} in it")
    if not items and not allow_empty:
        raise ValueError(f"{name} must name at least one, got an empty {type(value).__name__}")
    if unique and len(set(items)) != len(items):
        twice = sorted({i for i in items if items.count(i) > 1})
        raise ValueError(f"{name} must not repeat a name, got {twice} more than once")
    if maximum is not None and len(items) > maximum:
        raise ValueError(f"{name} may hold at most {maximum} names, got {len(items)}")
    return items


def later_time(name: str, now: float, seconds: float) -> float:
    """``now + seconds``, refusing a step that a float cannot represent (at ``now`` = 1e16 one
    second more is the same number, so a loop stepping by it would never end)."""
    end = now + seconds
    if seconds > 0 and end == now:
        raise ValueError(
            f"{name} = {seconds!r} is too small to move a clock that stands at {now!r} "
            "(float precision): use a smaller time scale"
        )
    return end


def collection(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """A list, tuple, set, deque, range or other sized collection (``None`` too if
    ``allow_none``); a string, a mapping or a single object is refused rather than iterated
    letter by letter or failing later."""
    if value is None and allow_none:
        return value
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Collection):
        raise TypeError(
            f"{name} must be a list or tuple, got {_show(value)} ({type(value).__name__})"
        )
    return value
