"""The allowed range of every numeric parameter of a collector, checked where it is given.

A value outside its range (``inf``, NaN, zero, a negative, a bool, an absurdly
small or large number) is a ``ValueError`` at construction that names the range
and the default, instead of a writer that never flushes (``flush_interval_s=inf``),
a reconnect loop (``stale_after_s=-1``), a collector that drops every tick
(``pending_limit=-5``) or a thread that spins (``flush_interval_s=1e-9``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from rtkit.buffer import DEFAULT_CAPACITY
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES, DEFAULT_PENDING_LIMIT


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of one parameter, its unit and its default."""

    low: float
    high: float
    unit: str
    default: float | None
    whole: bool = False  # a count: an int, never a float or a bool


#: the ranges; ``capacity`` and ``pending_limit`` also bound memory (about 47 and
#: 250 bytes per tick), ``max_frame_bytes`` the largest frame held in memory
RANGES: dict[str, Range] = {
    "capacity": Range(1, 100_000_000, "ticks", DEFAULT_CAPACITY, whole=True),
    "flush_interval_s": Range(0.01, 3600, "seconds", 1.0),
    "max_frame_bytes": Range(256, 256 * 1024 * 1024, "bytes", DEFAULT_MAX_FRAME_BYTES,
                             whole=True),
    "pending_limit": Range(1, 10_000_000, "ticks", DEFAULT_PENDING_LIMIT, whole=True),
    "stale_after_s": Range(0.1, 86_400, "seconds", None),
    "backoff_initial_s": Range(0.01, 600, "seconds", 0.5),
    "backoff_max_s": Range(0.01, 3600, "seconds", 30.0),
    "connect_timeout_s": Range(0.1, 600, "seconds", 10.0),
    # connections on the same streams (rtkit.runtime.connections): 2 keeps each trade
    # once from either, for completeness over bandwidth
    "redundancy": Range(1, 2, "connections", 1, whole=True),
}


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def describe(name: str) -> str:
    """``between 0.01 and 3,600 seconds (default 1)``: the allowed range in words."""
    r = RANGES[name]
    default = "the venue's own" if r.default is None else _number(r.default)
    kind = "a whole number " if r.whole else ""
    return (f"{kind}between {_number(r.low)} and {_number(r.high)} {r.unit} "
            f"(default {default})")


def checked(name: str, value) -> int | float:
    """``value`` when it is within ``RANGES[name]``; otherwise a ValueError naming the range."""
    r = RANGES[name]
    if r.whole:
        ok = isinstance(value, Integral) and not isinstance(value, bool)
    else:
        ok = (isinstance(value, Real) and not isinstance(value, bool)
              and math.isfinite(value))
    if not ok or not r.low <= value <= r.high:
        raise ValueError(f"{name} must be {describe(name)}, not {value!r}")
    return int(value) if r.whole else float(value)


def checked_int(name: str, value: object) -> int:
    """``checked`` of a whole-number parameter (``capacity``, ``max_frame_bytes``…),
    typed as the int it is."""
    if not RANGES[name].whole:
        raise TypeError(f"{name} is not a whole-number parameter; use checked()")
    return int(checked(name, value))
