"""rtkit's REST side: a budgeted HTTP client per venue (depth snapshots, trade history,
market lists), the venues' endpoints as data, and ``markets``/``check_symbols``.

Names load on first use, so that the collector's configuration (which reads
:mod:`rtkit.rest.endpoints`) and ``import rtkit`` do not load httpx.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "rtkit.rest.budget": ("BUDGET_SHARE", "MAX_SHARE", "Banned", "Budget", "RestError",
                          "use_share"),
    "rtkit.rest.client": ("RateLimited", "RestClient", "RestTimeout"),
    "rtkit.rest.endpoints": ("DepthSnapshot", "Instrument", "Request", "RestTrade", "VenueRest",
                             "resolve_rest_url", "venue_rest"),
    "rtkit.rest.history": ("CannotFill", "fetch_trades"),
    "rtkit.rest.markets": ("check_symbols", "instruments", "markets"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'rtkit.rest' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
