"""The venue registry: every module in this package that defines ``ADAPTERS``."""

from __future__ import annotations

import inspect

from rtkit.registry import Registry
from rtkit.venues.base import Adapter, Control, Tick

__all__ = ["Adapter", "Control", "Tick", "adapter_options", "get_adapter", "venue_names"]

_REGISTRY = Registry(__name__, "ADAPTERS", "venue")


def venue_names() -> list[str]:
    """Names accepted by ``get_adapter`` and ``Collector(venue=…)``."""
    return _REGISTRY.names()


def get_adapter(venue: str, **options) -> Adapter:
    """A fresh adapter for ``venue``; options are the venue's own (e.g. ``channel``)."""
    return _REGISTRY.create(venue, **options)


def adapter_options(venue: str) -> list[str]:
    """The option names ``venue``'s adapter takes (``[]`` for an unknown venue)."""
    cls = _REGISTRY.entries().get(venue.lower() if isinstance(venue, str) else venue)
    if cls is None:
        return []
    return [name for name, p in inspect.signature(cls).parameters.items()
            if name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
