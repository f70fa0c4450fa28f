"""Kinds of record: each described once, and everything per kind derived from it.

A :class:`Kind` names its columns (with the numpy dtype of the ring's column,
the DataFrame dtype and the SQLite type of each), its natural key (what makes
two records the same one: SQLite's primary key, the dedup of a sink without
keys), its continuity rule (how a missing record shows: ``consecutive_ids``,
``venue_sequence``, ``checksum`` or ``none``) and the names of its counters in
``stats``. The SQLite schema (:mod:`rtkit.kinds.sql`), the ring's columns and
the replay summary come from these descriptions.

Adding a kind is one module here that defines ``KINDS`` (it is found like a
venue is) plus its tests; the adapters that emit it say so in their ``kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rtkit.registry import Registry

if TYPE_CHECKING:  # imported by the ring: a writer process does without (35 ms, issue 17)
    import numpy as np

#: how a kind's stream shows that a record is missing
CONTINUITY = ("consecutive_ids", "venue_sequence", "checksum", "none")
_SQL_TYPES = ("TEXT", "INTEGER", "REAL")
#: the numpy dtypes a ring's column may have, named without importing numpy
RING_DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                         "uint32", "uint64", "float32", "float64", "object"})


@dataclass(frozen=True)
class Column:
    """One column: its SQLite type, its pandas dtype, and its numpy dtype in the ring
    (None when the ring does not keep it)."""

    name: str
    sql: str
    frame: str
    ring: str | None = None
    not_null: bool = False

    def __post_init__(self) -> None:
        if self.sql not in _SQL_TYPES:
            raise ValueError(f"column {self.name!r}: SQLite type must be one of {_SQL_TYPES}")
        # a typo fails at import, not at the first tick
        if self.ring is not None and self.ring not in RING_DTYPES:
            raise ValueError(f"column {self.name!r}: the ring's dtype must be one of "
                             f"{sorted(RING_DTYPES)}")


@dataclass(frozen=True)
class Kind:
    """A kind of record, and the table that keeps it."""

    name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    continuity: str = "none"
    indexes: tuple[tuple[str, ...], ...] = ()
    #: rows live in their key's B-tree (no rowid table plus key index): one tree less
    #: to update per insert; sqlite-utils cannot say it, so its DDL is written out
    without_rowid: bool = False
    #: ``stats`` names of (received, stored, duplicates, pending) for this kind
    counters: tuple[str, str, str, str] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        names = self.names
        if self.continuity not in CONTINUITY:
            raise ValueError(f"kind {self.name!r}: continuity must be one of {CONTINUITY}")
        unknown = [c for c in (*self.key, *(c for i in self.indexes for c in i)) if c not in names]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"kind {self.name!r}: key/index columns {unknown} or repeated names")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def ring_dtypes(self) -> dict[str, np.dtype]:
        """The ring's numpy column per column it keeps."""
        import numpy as np

        return {c.name: np.dtype(c.ring) for c in self.columns if c.ring is not None}

    def frame_dtypes(self) -> dict[str, str]:
        return {c.name: c.frame for c in self.columns}

    def insert_sql(self, conflict: str = "IGNORE") -> str:
        """``INSERT OR <conflict>`` of a whole row, in column order."""
        names = self.names
        return (f"INSERT OR {conflict} INTO {self.table} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))})")


#: the DataFrame dtype of every time column: ns since the epoch, in UTC
UTC_NS = "datetime64[ns, UTC]"


def venue_symbol(ring: bool = True) -> tuple[Column, Column]:
    """The venue and the symbol of a market kind's row: categoricals in the DataFrame,
    codes in the ring when ``ring`` (int16, int32), never NULL."""
    return (Column("venue", "TEXT", "category", "int16" if ring else None, not_null=True),
            Column("symbol", "TEXT", "category", "int32" if ring else None, not_null=True))


def event_times(ring: bool = True, timestamp_required: bool = True) -> tuple[Column, Column]:
    """The venue's time of an event and the time it was received, in ns (int64 in the
    ring when ``ring``); the venue's time may be missing unless ``timestamp_required``."""
    ns = "int64" if ring else None
    return (Column("timestamp", "INTEGER", UTC_NS, ns, not_null=timestamp_required),
            Column("received_at", "INTEGER", UTC_NS, ns, not_null=True))


def market_columns() -> tuple[Column, ...]:
    """What every market kind's row begins with, in the ring too: venue, symbol, the
    venue's time and the receive time."""
    return (*venue_symbol(), *event_times())


class Rows(dict):
    """A frame's rows tagged by kind, ``{kind name: rows}``, as an adapter that emits
    more than trades returns them from ``parse``: trades as the ring's tuples
    (``(symbol, trade_id, timestamp, price, volume, side)``), every other kind as
    tuples in its columns' order. A plain list from ``parse`` is trades (the fast path)."""


_REGISTRY = Registry(__name__, "KINDS", "kind of record")


def kinds() -> dict[str, Kind]:
    """Every described kind, by name."""
    return cast("dict[str, Kind]", dict(_REGISTRY.entries()))


def get_kind(name: str) -> Kind:
    """The kind called ``name``; a ValueError lists the others."""
    found = kinds().get(name)
    if found is None:
        raise ValueError(f"unknown kind of record {name!r}; the kinds are: "
                         f"{', '.join(sorted(kinds()))}")
    return found
