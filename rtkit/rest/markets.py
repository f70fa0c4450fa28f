"""``rtkit.markets(venue)``: the markets a venue lists, as BASE-QUOTE symbols, and
``check_symbols`` to refuse an unknown symbol before connecting (issue 16: a wrong
symbol used to look like a healthy but silent feed).

Lists are cached for ``MARKETS_TTL_S`` per venue and base URL: Binance's
exchangeInfo weighs 20, and a notebook asks often.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Iterable

from rtkit.rest.client import RestClient
from rtkit.rest.endpoints import Instrument, venue_rest

#: seconds a fetched market list is reused
MARKETS_TTL_S = 600.0

_cache: dict[tuple[str, str | None], tuple[float, list[Instrument]]] = {}
_cache_lock = threading.Lock()


def instruments(venue: str, rest_url: str | None = None, *, refresh: bool = False,
                timeout_s: float = 10.0) -> list[Instrument]:
    """Every market ``venue`` lists (tradable or not), with the venue's own ids."""
    spec = venue_rest(venue)
    if spec.markets is None:
        raise ValueError(f"{venue} publishes no market list")
    key = (spec.venue, rest_url)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit and not refresh and now - hit[0] < MARKETS_TTL_S:
        return hit[1]
    with RestClient(spec.venue, rest_url, timeout_s=timeout_s, max_retries=1) as client:
        listed = client.instruments()
    with _cache_lock:
        _cache[key] = (now, listed)
    return listed


def markets(venue: str, rest_url: str | None = None, *, refresh: bool = False) -> list[str]:
    """The symbols ``venue`` trades now, as BASE-QUOTE, sorted: what ``collect`` accepts.

    ``rest_url``: a simulator's or proxy's base URL instead of the venue's API.
    Raises :class:`~rtkit.rest.budget.RestError` when the venue cannot be reached."""
    return sorted({i.symbol for i in instruments(venue, rest_url, refresh=refresh) if i.trading})


def check_symbols(venue: str, symbols: Iterable[str], rest_url: str | None = None) -> list[str]:
    """``symbols`` normalised to BASE-QUOTE when the venue lists every one of them;
    otherwise a ValueError naming each unknown symbol with the closest listed ones."""
    from rtkit.venues import get_adapter

    adapter = get_adapter(venue)
    wanted = [adapter.normalise_symbol(s) for s in symbols]
    listed = markets(venue, rest_url)
    known = set(listed)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        parts = []
        for s in unknown:
            close = difflib.get_close_matches(s, listed, n=3)
            parts.append(f"{s!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise ValueError(f"{venue} lists no market {', '.join(parts)}; rtkit.markets({venue!r}) "
                         f"lists the {len(listed):,} it trades")
    return wanted
