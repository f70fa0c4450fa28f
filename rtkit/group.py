"""CollectorGroup: several venues at once, into one database, with one start and one stop.

The data for cross-venue (arbitrage) work: one :class:`Collector` per venue,
all writing to the same SQLite file (each with its own writer thread; WAL
and the writers' retries share the file), seen together as one DataFrame::

    g = rtkit.collect_many({"binance": ["BTC-USDT"], "coinbase": ["BTC-USD"]})
    g.df        # both venues' ticks, in trade-time order
    g.stats     # per venue
    rtkit.analysis.spread(g.df, ("binance", "BTC-USDT"), ("coinbase", "BTC-USD"), "1s",
                          quote_map={"USDT": "USD"})
    g.stop()    # all of them, within about two seconds
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from pandas.api.types import union_categoricals

from rtkit.collector import Collector, Status
from rtkit.store import DEFAULT_DB, TickStore

#: extra time ``stop`` allows past each collector's own deadline
_STOP_GRACE_S = 0.5


class CollectorGroup:
    """One collector per venue of ``symbols_by_venue``, e.g. ``{"binance": ["BTC-USDT"]}``.

    ``urls`` maps venues to endpoints other than their public one (a
    simulator, a testnet); ``venue_options`` maps venues to their adapter's
    options. ``name`` prefixes each collector's name (``<name>:<venue>``);
    without it each has the Collector's default name. The other keyword
    arguments go to every Collector (``flush_interval_s``, ``capacity``…);
    a recording is per venue: ``venue_options={"binance": {"record_raw": …}}``.
    """

    def __init__(
        self,
        symbols_by_venue: Mapping[str, list[str] | str],
        *,
        db: str | Path = DEFAULT_DB,
        urls: Mapping[str, str] | None = None,
        venue_options: Mapping[str, dict] | None = None,
        name: str | None = None,
        **collector_options,
    ) -> None:
        if not isinstance(symbols_by_venue, Mapping) or not symbols_by_venue:
            raise ValueError("give the venues and their symbols as a dict, e.g. "
                             "{'binance': ['BTC-USDT'], 'coinbase': ['BTC-USD']}")
        urls, venue_options = dict(urls or {}), dict(venue_options or {})
        for what, mapping in (("urls", urls), ("venue_options", venue_options)):
            unknown = sorted(set(mapping) - set(symbols_by_venue))
            if unknown:
                raise ValueError(f"{what} names venue(s) {', '.join(unknown)} that are not "
                                 f"collected; the venues are {', '.join(symbols_by_venue)}")
        if "record_raw" in collector_options:
            raise ValueError("one recording per venue: pass record_raw through venue_options, "
                             "e.g. venue_options={'binance': {'record_raw': 'binance.jsonl.gz'}}")
        self.db = Path(db)
        self.collectors: dict[str, Collector] = {
            venue: Collector(venue, symbols, db=self.db, url=urls.get(venue),
                             name=f"{name}:{venue}" if name else None,
                             **collector_options, **venue_options.get(venue, {}))
            for venue, symbols in symbols_by_venue.items()
        }

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> CollectorGroup:
        """Start every collector; returns at once."""
        for c in self.collectors.values():
            c.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> CollectorGroup:
        """Stop every collector at the same time (each flushes and joins its threads)."""
        stoppers = [threading.Thread(target=c.stop, args=(timeout_s,), daemon=True,
                                     name=f"rtkit-stop-{c.name}")
                    for c in self.collectors.values()]
        deadline = time.monotonic() + timeout_s + _STOP_GRACE_S
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
        return self

    close = stop

    @property
    def running(self) -> bool:
        return any(c.running for c in self.collectors.values())

    def __enter__(self) -> CollectorGroup:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __getitem__(self, venue: str) -> Collector:
        return self.collectors[venue]

    # --- what a notebook reads -----------------------------------------------------------
    @property
    def df(self) -> pd.DataFrame:
        """Every venue's ticks in memory, as one DataFrame in trade-time order."""
        return _combined([c.df for c in self.collectors.values()])

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The newest ``n`` ticks over all venues, by trade time."""
        return _combined([c.tail(n) for c in self.collectors.values()]).tail(n)

    @property
    def status(self) -> dict[str, Status]:
        """Each venue's status."""
        return {venue: c.status for venue, c in self.collectors.items()}

    @property
    def stats(self) -> dict[str, dict]:
        """Each venue's counters (``Collector.stats``); ``pd.DataFrame(g.stats).T`` shows them."""
        return {venue: c.stats for venue, c in self.collectors.items()}

    def store(self) -> TickStore:
        """A read-only view of the shared database."""
        return TickStore(self.db, readonly=True)

    def __repr__(self) -> str:
        parts = ", ".join(f"{venue} {c.status!r} {c.pipeline.ticks:,} ticks"
                          for venue, c in self.collectors.items())
        return f"<CollectorGroup {parts} → {self.db}>"


def collect_many(symbols_by_venue: Mapping[str, list[str] | str], **options) -> CollectorGroup:
    """Create a :class:`CollectorGroup` and start it; returns at once with the group."""
    return CollectorGroup(symbols_by_venue, **options).start()


def _combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Tick frames as one, keeping the tick dtypes (categoricals over the union of names)."""
    df = pd.concat(frames, ignore_index=True)
    for column in ("venue", "symbol"):
        df[column] = union_categoricals([f[column] for f in frames])
    if not all(f["trade_id"].dtype == "int64" for f in frames):
        df["trade_id"] = pd.array(df["trade_id"].astype(str), "string")
    return df.sort_values(["timestamp", "received_at"], kind="stable", ignore_index=True)
