"""Kraken's symbols: its legacy asset codes (``XBT``) and the forms a pair is written in.

Apart from the adapter so that the book parsers, the REST side and the simulator
read symbols as the adapter does without importing it.
"""

from __future__ import annotations

from rtkit.venues.base import split_symbol

#: Kraken's legacy asset codes (v1 pairs, ``XBT/USD``) → the names v2 and everyone else use
LEGACY_TO_COMMON = {"XBT": "BTC", "XDG": "DOGE"}
COMMON_TO_LEGACY = {common: legacy for legacy, common in LEGACY_TO_COMMON.items()}


def kraken_symbol_parts(symbol: str) -> tuple[str, str] | None:
    """``BTC/USD``, ``XBT/USD``, ``XBTUSD``, ``btc-usd``… → ``('BTC', 'USD')``, or None.

    Legacy codes in a glued form are read first, so ``XBTUSD`` is not taken
    for ``XB`` + ``TUSD``.
    """
    s = symbol.strip().upper()
    if s.isalnum():
        for legacy, common in LEGACY_TO_COMMON.items():
            if s.startswith(legacy):
                s = common + s[len(legacy):]
            if s.endswith(legacy):
                s = s[: -len(legacy)] + common
    if not (parts := split_symbol(s)):
        return None
    base, quote = parts
    return LEGACY_TO_COMMON.get(base, base), LEGACY_TO_COMMON.get(quote, quote)
