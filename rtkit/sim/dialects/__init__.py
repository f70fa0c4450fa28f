"""Simulator dialects, discovered like the venue adapters: one module per venue."""

from __future__ import annotations

from rtkit.registry import Registry
from rtkit.sim.dialects.base import Dialect, Session

__all__ = ["Dialect", "Session", "dialect_names", "get_dialect"]

_REGISTRY = Registry(__name__, "DIALECTS", "simulator dialect")


def dialect_names() -> list[str]:
    return _REGISTRY.names()


def get_dialect(venue: str, **options) -> Dialect:
    return _REGISTRY.create(venue, **options)
