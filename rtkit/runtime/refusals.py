"""Which subscribed symbols a venue's error names: a refused symbol shows in ``.status``.

A venue refuses a subscription with an error that names the symbol in its own
spelling (Binance ``FOOBAR``, Kraken ``XBT/USD``, OKX ``FOO-BAR``, Bybit
``publicTrade.FOOBAR``); an error that names none (Bitstamp's "Invalid channel
provided.") is matched to no symbol and shows as a plain venue error.
"""

from __future__ import annotations

import contextlib
import re

from rtkit.venues import Adapter


def symbols_named(adapter: Adapter, symbols: list[str], detail: str) -> list[str]:
    """The symbols among ``symbols`` that ``detail`` names, as ``BASE-QUOTE`` or in the
    venue's spelling, as a whole word (any case)."""
    named = []
    for symbol in symbols:
        spellings = {symbol}
        with contextlib.suppress(NotImplementedError, ValueError, KeyError):
            spellings.add(adapter.native_symbol(symbol))
        if any(re.search(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])", detail, re.I)
               for s in spellings if s):
            named.append(symbol)
    return named
