"""Each venue's continuity rule (:class:`rtkit.books.ContinuityRule`), one module per venue.

A module here defines ``RULES = {venue name: rule class}``; :func:`rule_for`
finds the rule of an adapter's venue by name, the way venues and kinds are
found (``rtkit.registry``). An adapter may also name its rule itself
(``book_rule`` attribute, a venue name here) when it shares another's
(``binance_futures`` → its own module, a sandbox → its venue's).
"""

from __future__ import annotations

from typing import cast

from rtkit.books import ContinuityRule
from rtkit.registry import Registry

_REGISTRY = Registry(__name__, "RULES", "order book continuity rule")


def rules() -> dict[str, type]:
    """Every venue's rule class, by venue name."""
    return cast("dict[str, type]", dict(_REGISTRY.entries()))


def rule_for(venue: str) -> ContinuityRule:
    """A new rule for ``venue``; a ValueError names the venues that have one."""
    found = rules().get(venue)
    if found is None:
        raise ValueError(f"no order book rule for venue {venue!r}; the venues with books "
                         f"are: {', '.join(sorted(rules())) or 'none'}")
    return cast("ContinuityRule", found())
