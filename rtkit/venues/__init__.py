"""The venue registry: every module in this package that defines ``ADAPTERS``."""

from __future__ import annotations

from rtkit.registry import Registry
from rtkit.venues.base import Adapter, Control, Tick

__all__ = ["Adapter", "Control", "Tick", "get_adapter", "venue_names"]

_REGISTRY = Registry(__name__, "ADAPTERS", "venue")


def venue_names() -> list[str]:
    """Names accepted by ``get_adapter`` and ``Collector(venue=…)``."""
    return _REGISTRY.names()


def get_adapter(venue: str, **options) -> Adapter:
    """A fresh adapter for ``venue``; options are the venue's own (e.g. ``channel``)."""
    return _REGISTRY.create(venue, **options)
