"""A collector's configuration, as given: what ``again()`` rebuilds from.

The venue adapter's own options travel in one explicit mapping,
``venue_options``, so that a misspelt collector keyword is the collector's
error (with a suggestion), not an adapter's complaint about an option it never
heard of. Adapter options given as plain keywords still work: a keyword that
is neither a collector's nor the adapter's is refused here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rtkit.backfill import DEFAULT_BACKFILL_MAX
from rtkit.books.keeper import DEFAULT_AUDIT_EVERY_S
from rtkit.buffer import DEFAULT_CAPACITY
from rtkit.kinds import get_kind
from rtkit.params import checked
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES, DEFAULT_PENDING_LIMIT
from rtkit.rest.budget import BUDGET_SHARE, check_share
from rtkit.rest.endpoints import http_base
from rtkit.runtime.writer_process import DEFAULT_WRITER, WRITERS
from rtkit.store import DEFAULT_DB
from rtkit.validate import ws_url
from rtkit.venues import Adapter, adapter_options, venue_names


@dataclass(frozen=True)
class CollectorConfig:
    """Every argument of :class:`rtkit.Collector`, as it was given."""

    venue: str | Adapter
    symbols: list[str] | str
    db: str | Path = DEFAULT_DB
    url: str | None = None
    capacity: int = DEFAULT_CAPACITY
    flush_interval_s: float = 1.0
    record_raw: str | Path | None = None
    name: str | None = None
    anomaly: Any = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    pending_limit: int = DEFAULT_PENDING_LIMIT
    stale_after_s: float | None = None
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 10.0
    sslopt: dict | None = None
    venue_options: Mapping[str, Any] = field(default_factory=dict)
    kinds: Sequence[str] = ("trades",)
    lake: str | Path | None = None
    rest_url: str | None = None
    depth: int | None = None
    audit_every_s: float = DEFAULT_AUDIT_EVERY_S
    redundancy: int = 1
    writer: str | None = None
    backfill: bool = True
    backfill_max: int = DEFAULT_BACKFILL_MAX
    rest_budget_share: float = BUDGET_SHARE

    def check(self) -> None:
        """A numeric parameter outside its range, a URL that is no WebSocket's, or a
        ``rest_url`` that is no base ``http(s)://host:port``, is a ValueError that says
        what is allowed."""
        for parameter in ("capacity", "flush_interval_s", "max_frame_bytes", "pending_limit",
                          "backoff_initial_s", "backoff_max_s", "connect_timeout_s",
                          "redundancy"):
            checked(parameter, getattr(self, parameter))
        if self.stale_after_s is not None:
            checked("stale_after_s", self.stale_after_s)
        if self.url is not None:
            ws_url(self.url)
        if self.rest_url is not None:
            http_base(self.rest_url)
        if self.depth is not None and (type(self.depth) is not int or self.depth < 1):
            raise ValueError(f"depth must be a whole number of levels >= 1 (e.g. 50), "
                             f"not {self.depth!r}")
        if type(self.backfill) is not bool:
            raise ValueError(f"backfill must be True or False, not {self.backfill!r}")
        if type(self.backfill_max) is not int or self.backfill_max < 1:
            raise ValueError(f"backfill_max must be a whole number of trades >= 1 (default "
                             f"{DEFAULT_BACKFILL_MAX:,}), not {self.backfill_max!r}")
        check_share(self.rest_budget_share)
        if not (type(self.audit_every_s) in (int, float) and self.audit_every_s >= 0):
            raise ValueError(f"audit_every_s must be seconds >= 0 (0: no audits), "
                             f"not {self.audit_every_s!r}")
        if self.writer not in (None, *WRITERS):
            raise ValueError(f"writer must be one of {', '.join(map(repr, WRITERS))} (or None: "
                             f"{DEFAULT_WRITER!r}), not {self.writer!r}")

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments that build the same collector."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def collector_keywords() -> list[str]:
    return [f.name for f in fields(CollectorConfig) if f.name not in ("venue", "symbols")]


def venue_options_from(venue: str | Adapter, venue_options: Mapping[str, Any] | None,
                       extra: Mapping[str, Any]) -> dict[str, Any]:
    """``venue_options`` merged with the adapter options given as plain keywords.

    A keyword that is no option of the collector nor of the venue's adapter is a
    TypeError that names the closest option of either.
    """
    options = dict(venue_options or {})
    if not extra or (isinstance(venue, str) and venue.lower() not in venue_names()):
        return {**options, **extra}  # an unknown venue: get_adapter says which there are
    known = [] if isinstance(venue, Adapter) else adapter_options(venue)
    unknown = sorted(set(extra) - set(known))
    if unknown:
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, collector_keywords() + known, n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        venue_text = f"venue {venue!r}" if isinstance(venue, str) else "this venue"
        raise TypeError(
            f"Collector got unknown keyword argument(s) {', '.join(parts)}. The collector "
            f"takes: {', '.join(collector_keywords())}; options of {venue_text} "
            f"({', '.join(known) or 'none'}) go in venue_options={{...}}.")
    options.update(extra)
    return options


def checked_kinds(kinds: Sequence[str] | str, adapter: Adapter) -> tuple[str, ...]:
    """The kinds of record to collect, each known and offered by the venue's adapter;
    a ValueError says which the venue offers."""
    names = tuple(dict.fromkeys([kinds] if isinstance(kinds, str) else kinds))
    if not names:
        raise ValueError(f"give at least one kind of record, e.g. kinds={list(adapter.kinds[:1])}")
    for name in names:
        get_kind(name)  # an unknown name: the error lists the kinds there are
    missing = [name for name in names if name not in adapter.kinds]
    if missing:
        raise ValueError(
            f"venue {adapter.name!r} offers {', '.join(adapter.kinds)}, not "
            f"{', '.join(missing)}; pass kinds= some of those, e.g. kinds={list(adapter.kinds)}")
    return names


def lake_sink(lake: str | Path | None, kinds: tuple[str, ...]):
    """The Parquet sink at ``lake`` (its folder made now, so a bad path fails at once)."""
    if lake is None:
        return None
    unfit = [k for k in kinds if not {"venue", "symbol", "timestamp"} <= set(get_kind(k).names)]
    if unfit:
        raise ValueError(f"the lake partitions records by venue, symbol and day; kinds "
                         f"{', '.join(unfit)} have no such columns and are kept in SQLite only, "
                         "so leave lake= out")
    from rtkit.sinks.parquet import ParquetSink  # pyarrow loads only when a lake is asked for

    sink = ParquetSink(Path(lake).expanduser())
    sink.probe()
    return sink
